#!/usr/bin/env bash
# The toy example, end to end: train -> GMM-head stability -> aggregate -> plot.
#   bash run.sh            the paper's full sweep (704 models, 500 epochs) and the GMM-head stability study
#                          (192 models), then results/, the README tables and figures/. Measured: sweep 113 s
#                          on one H200 at b68f23f (368 classification models 56 s, 336 MLE models 57 s); at
#                          88af116 on an H100: 126 s. Stability: 54 s on one H200 at 6eccb82. On a CPU: hours.
#   bash run.sh --quick    a reduced sweep on a CPU (about two minutes): writes only under runs/quick/
#                          (its table has no paper columns, its figures say "quick run")
#   bash run.sh --help     this text
# Extra flags go to train.py (e.g. --device cpu, --seeds 1 2). Finished runs with the same settings are
# skipped, so an interrupted sweep resumes; a run directory holding runs with other settings (e.g. after
# --epochs 40) stops train.py with the differing fields named: add --out-dir runs/<name> (then the call
# trains, aggregates and plots there: runs/<name>/results, runs/<name>/figures, never the committed ones,
# and skips the stability study) or --force (retrains the selected models in place).
# DEVICE sets gmm_stability.py's device (default auto). PYTHON selects the interpreter (default: the
# repository's .venv if it exists, else python3).
set -euo pipefail
if [[ " $* " == *" -h "* || " $* " == *" --help "* ]]; then sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0; fi
cd "$(dirname "$0")"
# the repository's environment (bash scripts/bootstrap.sh toy) unless PYTHON names another interpreter
PY=${PYTHON:-$([[ -x ../.venv/bin/python ]] && echo ../.venv/bin/python || echo python3)}
QUICK=0
if [[ "${1:-}" == "--quick" ]]; then QUICK=1; shift; fi
# an --out-dir among the extra flags: everything of this call goes there
OUT=""
args=("$@")
for i in "${!args[@]}"; do
  case "${args[$i]}" in
    --out-dir) OUT="${args[$((i + 1))]:-}" ;;
    --out-dir=*) OUT="${args[$i]#--out-dir=}" ;;
  esac
done
if [[ $QUICK == 1 ]]; then
  "$PY" train.py --quick "$@"
  if [[ -n "$OUT" ]]; then
    "$PY" aggregate.py --quick --runs "$OUT" --results "$OUT/results"
    "$PY" gmm_stability.py --quick --device "${DEVICE:-auto}" --out-dir "$OUT/gmm_stability" --results "$OUT/results"
    "$PY" plot.py --quick --results "$OUT/results" --figures "$OUT/figures"
  else
    "$PY" aggregate.py --quick
    "$PY" gmm_stability.py --quick --device "${DEVICE:-auto}"
    "$PY" plot.py --quick
  fi
else
  # two trainings: the classification heads, then the continuous (MLE) heads
  "$PY" train.py --heads linear gmm fourier regression "$@"
  "$PY" train.py --heads fourier-mle gmm-mle "$@"
  if [[ -n "$OUT" ]]; then
    "$PY" aggregate.py --runs "$OUT" --results "$OUT/results"
    "$PY" plot.py --results "$OUT/results" --figures "$OUT/figures"
  else
    "$PY" gmm_stability.py --device "${DEVICE:-auto}"
    "$PY" aggregate.py --runs runs/paper --results results --update-readme  # every README table
    "$PY" plot.py --results results --figures figures
  fi
fi
