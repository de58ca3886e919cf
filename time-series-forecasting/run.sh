#!/usr/bin/env bash
# Chronos + Fourier head (paper v1 §6, Table 3), end to end.
#   bash run.sh --help      this text
#   bash run.sh --quick     CPU smoke chain (~1 min): 2 tiny models, 2 small datasets -> runs/quick/ only
#   bash run.sh             reduced GPU budget (one H100, ~9 min): linear, Fourier-550 and Fourier-128
#                           (T5-efficient-mini, batch 64) trained CONCURRENTLY for the same number of
#                           steps, chosen from a measured step time so that training takes ~BUDGET s;
#                           then all three are evaluated on the 20-dataset benchmark -> runs/h100/
#   bash run.sh --paper     the paper's 7 configs at full scale (200k steps, global batch 256) with
#                           torchrun on 8 GPUs (days; never run here) -> runs/paper/
#   bash run.sh --ablations Fourier-550 with gamma = 0 and with uniform binning, same budget (STEPS=900)
#   bash run.sh --ddp       DDP check: 1 vs 2 GPUs at the same global batch, then a short 2-GPU run
#   bash run.sh --slice     issue 21: 16k steps x batch 64 per run, one run per GPU (RUNS="linear:0 fourier550:0"),
#                           learning curves, held-out CE; bundle_<tag>.tgz for $OUT (see the mode's comment)
#   bash run.sh --pilot     the same at 1,500 steps (a few minutes)
# Then aggregate.py (-> results/) and plot.py (-> figures/). Finished runs with the same settings are
# skipped, interrupted ones resume from their checkpoint, a run directory holding other settings stops
# the run (train.py --force overwrites). Interpreter: $PYTHON if set, else the repository's .venv if present,
# else python3. Env: BUDGET (training seconds, default 330), COPY_TO (a folder that receives tarballs
# of the run outputs after each stage), FOURIER_HEAD_COMMIT (the commit env.json records where the
# checkout has no .git, e.g. a GPU machine; git's answer wins where there is one).
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd .. && pwd)"
PY=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT:${PYTHONPATH:-}"   # fourier_head.py and scaffold.py at the repository root
MODE=${1:-}
case "$MODE" in
  -h|--help) sed -n '2,/^set -euo/p' run.sh | grep '^#' | cut -c3-; exit 0 ;;
  ""|--quick|--paper|--ablations|--ddp|--slice|--pilot) ;;
  *) echo "error: unknown mode '$MODE' (bash run.sh --help lists them)" >&2; exit 2 ;;
esac
if [[ "$MODE" != "--quick" ]] && ! git -C "$ROOT" rev-parse HEAD > /dev/null 2>&1 && [[ -z "${FOURIER_HEAD_COMMIT:-}" ]]; then
  echo "warning: no .git and no FOURIER_HEAD_COMMIT: env.json will say commit 'unknown'" >&2
fi
# Every mode but --quick trains on the TSMixup pool, which is generated (prepare_pool.py reads the tsf-data
# packages, which a GPU machine lacks): build it first (`bash scripts/gpu_carry.sh prepare tsf`) and carry
# time-series-forecasting/data/training_pool.npz.
if [[ "$MODE" != "--quick" && ! -f data/training_pool.npz ]]; then
  echo "error: data/training_pool.npz missing: build it with prepare_pool.py (README 'Data') and carry it" >&2; exit 2
fi
TORCHRUN=("$PY" -m torch.distributed.run)

copy_out() {  # run outputs without checkpoints, one tarball per runs folder
  [[ -n "${COPY_TO:-}" ]] || return 0
  tar czf "$COPY_TO/$(basename "$1").tgz" --exclude='checkpoint.*' --exclude='kernelsynth' "$1" 2>/dev/null || true
}

if [[ "$MODE" == "--slice" || "$MODE" == "--pilot" ]]; then
  # Issue 21: one run per GPU, >= 1M training windows each (16k steps x batch 64), inside one GPU slice.
  # Start it detached so that later calls keep the machine:  setsid nohup bash run.sh --slice > slice.log 2>&1 &
  # RUNS: one "head:seed[:extra flags]" per GPU (default the main pair, seed $SEED). Each run generates the
  # 200k KernelSynth series on its GPU (cached under data/), trains with a held-out training-mix CE every 500
  # steps and a benchmark evaluation every 5k steps (curve.jsonl), then evaluate.py scores the final weights.
  # When every run is done: runs/slice/bundle_<tag>.tgz (everything but checkpoints) and DONE_<tag>.
  # Each run also leaves <run>/forecaster_int8.pt (export.py; T5-mini: ~21 MB, over the 16 MiB a file may
  # have in $OUT: bring it back in parts, `split -b 15M <file> $OUT/<run>.part_`, then `cat` them here).
  # --pilot: the same at 1,500 steps (evaluations every 500), ~4-5 min with data generation.
  R=runs/slice; mkdir -p $R
  SEED=${SEED:-0}
  RUNS=${RUNS:-"linear:$SEED fourier550:$SEED"}
  if [[ "$MODE" == "--pilot" ]]; then STEPS=${STEPS:-1500}; EVAL_EVERY=${EVAL_EVERY:-500}; HELD=${HELD:-250}
  else STEPS=${STEPS:-16000}; EVAL_EVERY=${EVAL_EVERY:-5000}; HELD=${HELD:-500}; fi
  TAG=${TAG:-$(echo "${MODE#--}_$RUNS" | tr ' :' '_-')}
  export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
  NGPU=$("$PY" -c "import torch; print(max(1, torch.cuda.device_count()))")
  i=0
  for spec in $RUNS; do
    IFS=: read -r HEAD RSEED REST <<< "$spec"
    case $HEAD in
      linear) H="--head linear" ;;
      fourier*) H="--head fourier --num-frequencies ${HEAD#fourier}" ;;
      *) echo "unknown head $HEAD in RUNS" >&2; exit 2 ;;
    esac
    NAME="${HEAD}_seed${RSEED}${REST:+_$(echo "$REST" | tr -d ' -')}_steps${STEPS}"
    (
      export CUDA_VISIBLE_DEVICES=$((i % NGPU))
      "$PY" train.py $H --seed "$RSEED" $REST --steps "$STEPS" --batch-size 64 --out-dir $R --name "$NAME" \
        --eval-every "$EVAL_EVERY" --heldout-every "$HELD" --log-every 50 --ckpt-every 4000 ${EXTRA:-} \
        > "$R/$NAME.train.log" 2>&1 \
      && "$PY" evaluate.py "$R/$NAME" ${EVAL_EXTRA:-} > "$R/$NAME.eval.log" 2>&1
      rc=$?
      # the forecaster file: its own log line; a refusal (e.g. int8 too far from the weights) leaves rc alone
      [ $rc -eq 0 ] && { "$PY" export.py --run "$R/$NAME" --out "$R/$NAME/forecaster_int8.pt" --max-mb 100 \
        --force > "$R/$NAME.export.log" 2>&1 || echo "$NAME export failed (see $NAME.export.log)" >> "$R/status_$TAG.txt"; }
      echo "$NAME exit $rc" >> "$R/status_$TAG.txt"
    ) &
    i=$((i + 1))
  done
  wait
  runs=$(for spec in $RUNS; do IFS=: read -r HEAD RSEED REST <<< "$spec"; echo "${HEAD}_seed${RSEED}${REST:+_$(echo "$REST" | tr -d ' -')}_steps${STEPS}"; done)
  (cd $R && tar czf "bundle_$TAG.tgz" --exclude='checkpoint.*' --exclude='forecaster_*' status_"$TAG".txt \
     $(for n in $runs; do echo "$n" "$n.train.log" "$n.eval.log" "$n.export.log"; done) 2>/dev/null || true)
  touch "$R/DONE_$TAG"
  echo "bundle: $R/bundle_$TAG.tgz ($(du -h "$R/bundle_$TAG.tgz" | cut -f1))"
elif [[ "$MODE" == "--quick" ]]; then
  R=runs/quick
  "$PY" train.py --quick --head linear
  "$PY" train.py --quick --head fourier --num-frequencies 64
  "$PY" evaluate.py $R/smoke_* --datasets m1_yearly classic_quarterly --num-samples 5 --smoothness-items 8
  "$PY" aggregate.py --quick      # runs/quick -> runs/quick/results
  "$PY" plot.py --quick           # -> runs/quick/figures
elif [[ "$MODE" == "--paper" ]]; then
  R=runs/paper; T="${TORCHRUN[*]} --nproc-per-node ${NGPU:-8} train.py --out-dir $R --batch-size 256 --steps 200000"
  "$PY" data.py --num-series 1000000 --out data/kernelsynth-1m
  C="--kernel-synth-dir data/kernelsynth-1m --kernel-synth-series 1000000 --tsmixup-series 1000000 --p-kernel-synth 0.1"
  $T $C --head linear
  for N in 64 128 256 550; do $T $C --head fourier --num-frequencies $N; done
  $T $C --head fourier --num-frequencies 550 --gamma 0
  $T $C --head fourier --num-frequencies 550 --binning uniform
  "$PY" evaluate.py $R/*/
  "$PY" aggregate.py --runs $R --results results/paper-scale
elif [[ "$MODE" == "--ablations" ]]; then
  # Table 3's two Fourier-550 ablations (gamma = 0; uniform binning) at the budget of the main runs
  R=runs/h100; mkdir -p $R; STEPS=${STEPS:-900}
  "$PY" data.py --num-series 200000
  for H in "--gamma 0" "--binning uniform"; do
    "$PY" train.py --batch-size 64 --out-dir $R --head fourier --num-frequencies 550 $H --steps "$STEPS" \
      --ckpt-every 500 --log-every 50 > "$R/train_f550_$(echo $H | tr -d ' -').log" 2>&1 &
  done
  wait
  copy_out $R
  for d in $R/mini_fourier550_g0_*_steps"$STEPS"_*/ $R/mini_fourier550_g1e-06_uniform_steps"$STEPS"_*/; do
    "$PY" evaluate.py "$d" > "$d/eval.log" 2>&1 &
  done
  wait
  copy_out $R
elif [[ "$MODE" == "--ddp" ]]; then
  R=runs/ddp; mkdir -p $R
  export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
  "$PY" data.py --num-series 200000
  B="--head fourier --num-frequencies 550 --batch-size 64 --bench-steps 40"
  "$PY" train.py $B | tee -a $R/bench.txt
  "${TORCHRUN[@]}" --nproc-per-node 2 train.py $B | tee -a $R/bench.txt
  "${TORCHRUN[@]}" --nproc-per-node 2 train.py --head fourier --num-frequencies 550 --batch-size 64 --steps 400 \
    --log-every 20 --out-dir $R --name ddp2_fourier550 | tail -n 3
  copy_out $R
else
  R=runs/h100; mkdir -p $R
  BUDGET=${BUDGET:-330}
  "$PY" data.py --num-series "${KS_SERIES:-200000}" --length "${KS_LENGTH:-1024}"
  COMMON="--batch-size 64 --out-dir $R ${EXTRA:-}"  # EXTRA: e.g. a tiny model for a CPU dry run
  # step times of each head alone (also the throughput measurement: tokens/s, linear vs Fourier)
  : > $R/bench.jsonl
  for H in "--head linear" "--head fourier --num-frequencies 550" "--head fourier --num-frequencies 128"; do
    "$PY" train.py $COMMON $H --bench-steps 30 | grep '^BENCH' | cut -c7- >> $R/bench.jsonl
  done
  STEPS=$("$PY" -c "import json,sys; t=sum(json.loads(l)['seconds_per_step'] for l in open('$R/bench.jsonl')); print(max(100, int(0.85 * $BUDGET / t) // 100 * 100))")
  echo "training steps per model: $STEPS (budget ${BUDGET} s for the three runs side by side)"
  copy_out $R
  for H in "--head linear" "--head fourier --num-frequencies 550" "--head fourier --num-frequencies 128"; do
    "$PY" train.py $COMMON $H --steps "$STEPS" --ckpt-every 500 --log-every 50 --max-seconds $((BUDGET + 120)) > "$R/train_$(echo $H | tr -d ' -').log" 2>&1 &
  done
  wait
  copy_out $R
  for d in $R/*_steps"$STEPS"_*/; do "$PY" evaluate.py "$d" ${EVAL_EXTRA:-} > "$d/eval.log" 2>&1 & done
  wait
  copy_out $R
  "$PY" aggregate.py --runs $R --results results
  "$PY" plot.py --results results --figures figures
fi
