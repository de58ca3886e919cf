#!/usr/bin/env bash
# Chronos + Fourier head (paper v1 §6, Table 3), end to end.
#   bash run.sh --quick     CPU smoke chain (~1 min): 2 tiny models, 2 small datasets -> runs/quick/
#   bash run.sh             reduced GPU budget (one H100, ~9 min): linear, Fourier-550 and Fourier-128
#                           (T5-efficient-mini, batch 64) trained CONCURRENTLY for the same number of
#                           steps, chosen from a measured step time so that training takes ~BUDGET s;
#                           then all three are evaluated on the 20-dataset benchmark -> runs/h100/
#   bash run.sh --paper     the paper's 7 configs at full scale (200k steps, global batch 256) with
#                           torchrun on 8 GPUs (days; never run here) -> runs/paper/
#   bash run.sh --ablations Fourier-550 with gamma = 0 and with uniform binning, same budget (STEPS=900)
#   bash run.sh --ddp       DDP check: 1 vs 2 GPUs at the same global batch, then a short 2-GPU run
# Then aggregate.py (-> results/) and plot.py (-> figures/). Finished runs are skipped; interrupted
# ones resume from their checkpoint. Env: PYTHON (default python3), BUDGET (training seconds, default
# 330), COPY_TO (a folder that receives tarballs of the run outputs after each stage).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
export PYTHONPATH="$(cd .. && pwd):${PYTHONPATH:-}"   # fourier_head.py at the repository root
MODE=${1:-}

copy_out() {  # run outputs without checkpoints, one tarball per runs folder
  [[ -n "${COPY_TO:-}" ]] || return 0
  tar czf "$COPY_TO/$(basename "$1").tgz" --exclude='checkpoint.*' --exclude='kernelsynth' "$1" 2>/dev/null || true
}

if [[ "$MODE" == "--quick" ]]; then
  R=runs/quick
  "$PY" train.py --quick --head linear
  "$PY" train.py --quick --head fourier --num-frequencies 64
  "$PY" evaluate.py $R/smoke_* --datasets m1_yearly classic_quarterly --num-samples 5 --smoothness-items 8
  "$PY" aggregate.py --runs $R --results $R/results
  "$PY" plot.py --results $R/results --figures $R/figures
elif [[ "$MODE" == "--paper" ]]; then
  R=runs/paper; T="torchrun --nproc-per-node ${NGPU:-8} train.py --out-dir $R --batch-size 256 --steps 200000"
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
  "$PY" data.py --num-series 20000
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
  "$PY" data.py --num-series 20000
  B="--head fourier --num-frequencies 550 --batch-size 64 --bench-steps 40"
  "$PY" train.py $B | tee -a $R/bench.txt
  torchrun --nproc-per-node 2 train.py $B | tee -a $R/bench.txt
  torchrun --nproc-per-node 2 train.py --head fourier --num-frequencies 550 --batch-size 64 --steps 400 \
    --log-every 20 --out-dir $R --name ddp2_fourier550 | tail -n 3
  copy_out $R
else
  R=runs/h100; mkdir -p $R
  BUDGET=${BUDGET:-330}
  "$PY" data.py --num-series "${KS_SERIES:-20000}" --length "${KS_LENGTH:-1024}"
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
