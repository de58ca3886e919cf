#!/usr/bin/env bash
# The misc studies, each regenerating its committed results and figures:
#   bash misc/run.sh           head demo (~5 min on a CPU), scaling law, smoothness appendix (square waves and
#                              App. B Table 4), Fourier-features NTK study
#   bash misc/run.sh --quick   the same four as smoke runs on a CPU, written only under each study's
#                              runs/quick/ (committed results, figures and READMEs are never touched)
# Extra flags go to every script. PYTHON selects the interpreter (default: the repository's .venv if it
# exists, else python3). `python misc/check_readmes.py` checks every generated README block against the
# committed results (seconds). Speed benchmarks of the head: misc/benchmarks/gpu_run.sh (a GPU).
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0; fi
cd "$(dirname "$0")"
PY=${PYTHON:-$([[ -x ../.venv/bin/python ]] && echo ../.venv/bin/python || echo python3)}
for script in head-demo/train.py scaling-law/scaling_law.py smoothness-appendix/square_waves.py \
              smoothness-appendix/noise_table.py fourier-features/ntk.py; do
  echo "== $script $*"
  "$PY" "$script" "$@"
done
