#!/usr/bin/env bash
# Issue 17's GPU runs, detached, on one GPU machine with no network (run from the repository root):
#
#   here, once per checkout: bash scripts/gpu_carry.sh prepare audio     # wheels + CREPE-tiny weights
#   GPU call 1:   FOURIER_HEAD_COMMIT=<commit> bash toy_example_audio/scripts/gpu_job.sh start   # returns in
#                 ~20 s; the job runs detached (the copy there has no .git: scaffold.git_commit() then reads
#                 FOURIER_HEAD_COMMIT into every env.json)
#   GPU call 2+:  bash toy_example_audio/scripts/gpu_job.sh wait 540       # waits <= 540 s, then bundles $OUT
#   carry:        toy_example_audio/gpu_carry only (7.5 MB; with the ~56 MB repository under the 64 MiB a call
#                 carries). The job renders the clips and builds the features there (the pretrained arm needs
#                 the audio anyway); carrying data/features (28 MB) too no longer fits.
#
# The job renders the dataset there (same bytes: data.py checks the manifest's SHA-256 against ours in
# results/dataset.json), then runs, in this order (STAGES, default all five):
#   bench       scripts/pretrained_step_bench.py: one training step in 7 variants (~1-2 min); the fastest
#               full fine-tune's pretrained.py flags (CREPE's conv1 as conv1d | gemm | polyphase, cudnn
#               autotuning; the same numbers) go to the pretrained stage
#   pretrained  pretrained.py: CREPE-tiny fine-tuned, linear + Fourier N in {1,2,4,8,16} x SEEDS, first all
#               seeds at the paper's 2 epochs, then at 5 (60 runs; validation split = 15% of train; the
#               schedule is chosen on it later)
#   fair        train.py at the first pilot's lr 1e-3 / 100 epochs, every head, head weight decay 0,
#               validation split 15% (30 runs; FAIR_SEEDS, default SEEDS)    est. 7-9 min (3 seeds: ~5)
#   headwd      train.py in the committed 60-epoch setting but head weight decay 0 (30 runs; paired by
#               seed with the committed runs: the weight-decay ablation)    est. 4-5 min
#   pilot       scripts/pilot.sh again, seed 0, with the validation split (8 runs at once)  est. 1.5 min
#   rerun       not in the default STAGES: the committed 60-epoch, 15-epoch and odd/even sweeps again (78 runs),
#               so that their tables get ECE (their PMFs were not kept)   est. 9 min (their H100 wall times)
# (estimates from the H100 wall times of the committed sweeps, 6 jobs per GPU.) MEASURED for the pretrained
# arm on an H200 at 1c4a611 (before the bench stage existed): 703-742 s per 2-epoch run with 6 sharing the GPU
# (results/gpu_pilot_pretrained_seed0); on an H100 at 3289743 with the bench's pick (conv1 as gemm): bench
# ~10 s, all 60 runs in 760 s, pilot 97 s, headwd 262 s; fair (18 runs at FAIR_SEEDS=0,1,2) did not finish
# in the ~500 s left (results/gpu_logs/). LIMIT (seconds from the job's start, default 1500: a machine is held
# at most 30 minutes) bounds the pretrained stage: a sweep starts no run that the measured time of the runs
# before it says would end after LIMIT, and the runs go seed by seed, so complete seeds are left behind.
# Each `wait` writes at most 3 files to $OUT: job.log, status.json and runs.tar.gz (configs, metrics and
# test PMFs of every finished run, a few MB). Untar it in toy_example_audio/ here, then
#   python aggregate.py --update-readme --pilot runs/pilot-val && python plot.py && python aggregate.py --check
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
A="$ROOT/toy_example_audio"
STATE=/tmp/issue17_job
SEEDS=${SEEDS:-0,1,2,3,4}
FAIR_SEEDS=${FAIR_SEEDS:-$SEEDS}
JOBS=${JOBS:-6}
STAGES=${STAGES:-bench,pretrained,fair,headwd,pilot}
LIMIT=${LIMIT:-1500}

setup() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$A"/gpu_carry/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$ROOT:$A CREPE_WEIGHTS_DIR=$A/gpu_carry PYTHONUNBUFFERED=1
  export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
}

job() {
  setup
  cd "$A"
  # env.json's commit: git where there is a .git, else FOURIER_HEAD_COMMIT (scaffold.git_commit)
  export FOURIER_HEAD_COMMIT=${FOURIER_HEAD_COMMIT:-unknown}
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
  python3 data.py --renderer sf2 --record "$STATE/dataset.json" || exit 1
  python3 - "$STATE/dataset.json" <<'EOF' || exit 1
import json, sys
ours = json.load(open("results/dataset.json"))["dataset_manifest"]["sha256"]
there = json.load(open(sys.argv[1]))["dataset_manifest"]["sha256"]
print("dataset bytes identical to results/dataset.json:", ours == there)
sys.exit(0 if ours == there else 1)
EOF
  T0=$(date +%s); PICK=""
  for stage in ${STAGES//,/ }; do
    echo "=== stage $stage $(date +%T)"
    case $stage in
      bench)      python3 scripts/pretrained_step_bench.py --steps 10 --warmup 3 --out "$STATE/bench.json" \
                    --variants default,conv1d+bench,gemm,gemm+bench,polyphase,polyphase+bench,frozen1 --pick \
                    | tee "$STATE/bench.log"
                  PICK=$(tail -n 1 "$STATE/bench.log"); echo "picked: $PICK" ;;
      pretrained) # 2 epochs for every seed first, then 5; no run starts that would end after LIMIT
                  guess=0
                  for E in 2 5; do
                    left=$((LIMIT - ($(date +%s) - T0)))
                    t=$(date +%s); n0=$(find runs/pretrained-crepe-tiny -path "*-ep$E/seed*" -name metrics.json 2>/dev/null | wc -l)
                    python3 sweep.py --trainer pretrained --seeds "$SEEDS" --epochs-grid $E --jobs "$JOBS" \
                      --time-budget "$left" --run-seconds-guess "$guess" $PICK
                    n=$(find runs/pretrained-crepe-tiny -path "*-ep$E/seed*" -name metrics.json | wc -l)
                    # the 5-epoch runs' first guess: 2.5x the wall time of a batch of 2-epoch runs
                    [ $((n - n0)) -gt 0 ] && guess=$(( ($(date +%s) - t) * JOBS / (n - n0) * 5 / 2 ))
                  done ;;
      fair)       python3 sweep.py --seeds "$FAIR_SEEDS" --jobs "$JOBS" --lr 1e-3 --epochs 100 --eval-every 20 \
                    --val-fraction 0.15 --head-weight-decay 0 --out-dir runs/lr1e-3-ep100 ;;
      headwd)     python3 sweep.py --seeds "$SEEDS" --jobs "$JOBS" --head-weight-decay 0 --out-dir runs/head-wd0 ;;
      pilot)      PYTHON=python3 EXTRA="--val-fraction 0.15" bash scripts/pilot.sh runs/pilot-val ;;
      rerun)      # the three committed from-scratch sweeps again, with their test PMFs kept (ECE): the
                  # committed rows came from results/runs.csv, whose runs' predictions.npz were not kept
                  python3 sweep.py --seeds "$SEEDS" --jobs "$JOBS"
                  python3 sweep.py --seeds "$SEEDS" --jobs "$JOBS" --epochs 15 --eval-every 5 --out-dir runs/short-15ep
                  python3 sweep.py --seeds "${SPLIT_SEEDS:-0,1,2}" --jobs "$JOBS" --split odds_evens ;;
      *) echo "unknown stage $stage"; exit 2 ;;
    esac
  done
  echo "=== done $(date +%T)"
}

bundle() {
  mkdir -p "${OUT:-/tmp/out}"
  cp "$STATE/job.log" "$OUT/job.log" 2>/dev/null
  (cd "$A" && find runs -name metrics.json -path '*seed*' | sed 's|/metrics.json||' > "$STATE/done.txt"
   tar czf "$OUT/runs.tar.gz" --exclude=quick $(sed 's|$|/config.json|' "$STATE/done.txt") \
     $(sed 's|$|/env.json|' "$STATE/done.txt") $(sed 's|$|/metrics.json|' "$STATE/done.txt") \
     $(sed 's|$|/predictions.npz|' "$STATE/done.txt") $(find runs -name sweep_log.json) \
     $(ls runs/pilot-val/*.log 2>/dev/null) 2>/dev/null)
  cp "$STATE/bench.json" "$OUT/bench.json" 2>/dev/null
  python3 - "$STATE" "$OUT/status.json" <<'EOF'
import json, os, sys
state, out = sys.argv[1], sys.argv[2]
rc = open(f"{state}/rc").read().strip() if os.path.exists(f"{state}/rc") else None
runs = open(f"{state}/done.txt").read().split() if os.path.exists(f"{state}/done.txt") else []
json.dump({"finished": rc is not None, "rc": rc, "runs_done": len(runs)}, open(out, "w"), indent=2)
print(json.load(open(out)))
EOF
}

case "${1:-}" in
  start)
    # the carried files first: one line per missing one (carry toy_example_audio/gpu_carry), nothing started
    bash "$ROOT/scripts/gpu_carry.sh" check audio > /dev/null || { bash "$ROOT/scripts/gpu_carry.sh" check audio; exit 1; }
    mkdir -p "$STATE"; rm -f "$STATE/rc"
    setsid nohup bash -c "bash '$0' _job > '$STATE/job.log' 2>&1; echo \$? > '$STATE/rc'" > /dev/null 2>&1 &
    sleep 20; tail -n 5 "$STATE/job.log" ;;
  wait)
    limit=${2:-540}; t=0
    # bundle every 2 minutes as well: a call cut short by the session's device budget (its limit can be
    # shorter than asked) still leaves the latest finished runs in $OUT (2026-12-07 lost a stage that way)
    while [ ! -f "$STATE/rc" ] && [ "$t" -lt "$limit" ]; do
      sleep 10; t=$((t + 10)); [ $((t % 120)) -eq 0 ] && bundle > /dev/null
    done
    tail -n 15 "$STATE/job.log"; bundle ;;
  _job) job ;;
  *) echo "usage: $0 start | wait [seconds]"; exit 2 ;;
esac
