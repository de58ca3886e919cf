#!/usr/bin/env bash
# The toy example, end to end: train -> aggregate -> plot.
#   bash run.sh            the paper's full sweep (704 models, 500 epochs; ~7 min on one H100)
#   bash run.sh --quick    a reduced sweep on a CPU (~1 min): writes only under runs/quick/
# Extra flags go to train.py (e.g. --device cpu, --seeds 1 2). Finished runs are skipped, so an
# interrupted sweep resumes where it stopped. PYTHON selects the interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [[ "${1:-}" == "--quick" ]]; then
  shift
  "$PY" train.py --quick "$@"
  "$PY" aggregate.py --runs runs/quick --results runs/quick/results
  "$PY" plot.py --results runs/quick/results --figures runs/quick/figures
else
  # two trainings of a few minutes each: the classification heads, then the continuous (MLE) heads
  "$PY" train.py --heads linear gmm fourier regression "$@"
  "$PY" train.py --heads fourier-mle gmm-mle "$@"
  "$PY" aggregate.py --runs runs/paper --results results --update-readme
  "$PY" plot.py --results results --figures figures
fi
