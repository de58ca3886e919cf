#!/usr/bin/env bash
# fnet-cifar end to end: the ablation grid -> results/ -> README block -> figures/.
#   bash fnet-cifar/run.sh            the convergence grid (11 variants x 2 data sets x 3 seeds, 30 epochs) into
#                                     runs/converged/, then aggregate + plot. A GPU job: ~2.2 h of single-stream
#                                     work on an H100-class GPU (estimated from the short grid's per-epoch times);
#                                     gpu_job.sh runs it detached in 12 shards. On 2 CPU cores: ~840 h.
#   bash fnet-cifar/run.sh --quick    tiny synthetic grid on the CPU (about a minute), written only under
#                                     runs/quick/ (runs, results/table.md, figures/): nothing committed changes
#   bash fnet-cifar/run.sh --help     this text
# Other flags go to grid.py (e.g. --seeds 0 1 2 3, --epochs-fmnist 50, --device cuda, --compile, --force);
# OUT (default runs/converged, relative to fnet-cifar/) is the grid's run folder.
# Finished runs are skipped, so an interrupted grid resumes; a failed run stops the chain before aggregation.
# Interpreter: $PYTHON if set, else the repository's .venv if present, else python3.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
PY=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # scaffold.py, plot_style.py when the repo is not pip-installed
case "${1:-}" in
  -h|--help) sed -n '2,13p' run.sh | sed 's/^# \{0,1\}//'; exit 0 ;;
  --quick)
    shift
    "$PY" grid.py --quick "$@"
    "$PY" aggregate.py --quick
    "$PY" plot.py --quick
    ;;
  *)
    OUT=${OUT:-runs/converged}
    "$PY" grid.py --out-dir "$OUT" "$@"
    "$PY" aggregate.py --runs "$OUT"
    "$PY" plot.py
    ;;
esac
