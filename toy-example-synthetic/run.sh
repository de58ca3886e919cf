#!/usr/bin/env bash
# The toy example, end to end: train -> aggregate -> GMM-head stability -> plot.
#   bash run.sh            the paper's full sweep (704 models, 500 epochs) and the GMM-head stability study
#                          (192 models). Measured: sweep 113 s on one H200 at b68f23f (368 classification
#                          models 56 s, 336 MLE models 57 s); at 88af116 on an H100: 126 s. Stability:
#                          not yet measured on a GPU. On a CPU: hours.
#   bash run.sh --quick    a reduced sweep on a CPU (about a minute): writes only under runs/quick/
# Extra flags go to train.py (e.g. --device cpu, --seeds 1 2); DEVICE sets gmm_stability.py's device
# (default auto). Finished runs are skipped, so an interrupted sweep resumes where it stopped.
# PYTHON selects the interpreter (default: the repository's .venv if it exists, else python3).
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0; fi
cd "$(dirname "$0")"
# the repository's environment (bash scripts/bootstrap.sh toy) unless PYTHON names another interpreter
PY=${PYTHON:-$([[ -x ../.venv/bin/python ]] && echo ../.venv/bin/python || echo python3)}
if [[ "${1:-}" == "--quick" ]]; then
  shift
  "$PY" train.py --quick "$@"
  "$PY" aggregate.py --runs runs/quick --results runs/quick/results
  "$PY" gmm_stability.py --quick --device "${DEVICE:-auto}"
  "$PY" plot.py --results runs/quick/results --figures runs/quick/figures
else
  # two trainings: the classification heads, then the continuous (MLE) heads
  "$PY" train.py --heads linear gmm fourier regression "$@"
  "$PY" train.py --heads fourier-mle gmm-mle "$@"
  "$PY" gmm_stability.py --device "${DEVICE:-auto}"
  "$PY" aggregate.py --runs runs/paper --results results --update-readme  # also the stability table
  "$PY" plot.py --results results --figures figures
fi
