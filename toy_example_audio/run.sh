#!/usr/bin/env bash
# toy_example_audio end to end: dataset + features (CPU, ~1 min), the GPU sweeps, aggregation, figures.
#   bash run.sh            from-scratch sweeps ~9 min on one H100 with JOBS=6 (measured: 289 s + 92 s + 142 s),
#                          then issue 17's runs (pretrained arm, lr 1e-3/100-epoch heads, head-wd ablation,
#                          pilot on validation): ~20 min more, estimated (scripts/gpu_job.sh has the split)
#   bash run.sh --quick    tiny CPU chain (a few min: 6 tiny runs + 2 tiny pretrained runs), written only
#                          under runs/quick/ (its tiny dataset, runs, results/ and figures/): nothing committed changes
#   bash run.sh --help     this text
#   DRY=1 bash run.sh      print the runs still to do, run nothing
# Env: SEEDS (main and 15-epoch grids, default 0,1,2,3,4), SPLIT_SEEDS (odd/even grid, default 0,1,2),
#      JOBS (parallel training processes; 6 share one H100 well), DEVICE (auto | cpu | cuda | cuda:N).
# Finished runs (runs/.../metrics.json) are skipped, so an interrupted run.sh resumes where it stopped.
# Interpreter: $PYTHON if set, else the repository's .venv if present, else python3.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
PY=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # scaffold.py, fourier_head.py when the repo is not pip-installed
SEEDS=${SEEDS:-0,1,2,3,4}
SPLIT_SEEDS=${SPLIT_SEEDS:-0,1,2}
JOBS=${JOBS:-6}
DEVICE=${DEVICE:-auto}
DRY=${DRY:+--dry-run}

case "${1:-}" in
  -h|--help) sed -n '2,13p' run.sh | sed 's/^# \{0,1\}//'; exit 0 ;;
  --quick)
    export PYTHONDONTWRITEBYTECODE=1  # nothing outside runs/quick/, not even __pycache__/
    "$PY" sweep.py --quick --seeds 0 --device "$DEVICE" $DRY
    "$PY" sweep.py --trainer pretrained --quick --seeds 0 --num-frequencies-grid 2 --device "$DEVICE" $DRY
    if [ -n "$DRY" ]; then exit 0; fi
    "$PY" aggregate.py --quick
    "$PY" plot.py --quick
    exit 0 ;;
  "") ;;
  *) echo "error: unknown argument '$1' (bash run.sh [--quick | --help])" >&2; exit 2 ;;
esac

if [ -z "$DRY" ]; then  # render + cache the 4,025 clips and their features (reused when cached)
  "$PY" data.py --check-tempo 300 --check-out results/tempo_check.json --record results/dataset.json
fi
# 1. the paper's setting: 5-BPM buckets (33 classes), shuffled 70/30 split (seed 42), all heads x SEEDS
"$PY" sweep.py --seeds "$SEEDS" --jobs "$JOBS" --device "$DEVICE" $DRY
# 2. a 4x shorter schedule (15 epochs), closer to the reference's 2-epoch fine-tuning budget
"$PY" sweep.py --seeds "$SEEDS" --jobs "$JOBS" --device "$DEVICE" --epochs 15 --eval-every 5 --out-dir runs/short-15ep $DRY
# 3. the reference's other split: train on odd BPMs, test on the unseen even ones
"$PY" sweep.py --seeds "$SPLIT_SEEDS" --jobs "$JOBS" --device "$DEVICE" --split odds_evens $DRY
# 4. the paper's regime: CREPE-tiny (pretrained) fine-tuned with a fresh head, 2 or 5 epochs (chosen on validation)
"$PY" sweep.py --trainer pretrained --seeds "$SEEDS" --epochs-grid 2,5 --jobs "$JOBS" --device "$DEVICE" $DRY
# 5. fairness: every head at the first pilot's lr 1e-3 / 100 epochs (validation split, no decay on the head)
"$PY" sweep.py --seeds "$SEEDS" --jobs "$JOBS" --device "$DEVICE" --lr 1e-3 --epochs 100 --eval-every 20 \
  --val-fraction 0.15 --head-weight-decay 0 --out-dir runs/lr1e-3-ep100 $DRY
# 6. ablation: the 60-epoch setting without weight decay on the head (paired by seed with step 1)
"$PY" sweep.py --seeds "$SEEDS" --jobs "$JOBS" --device "$DEVICE" --head-weight-decay 0 --out-dir runs/head-wd0 $DRY
if [ -n "$DRY" ]; then exit 0; fi
"$PY" saturation.py
"$PY" aggregate.py --update-readme
"$PY" plot.py
