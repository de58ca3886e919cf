#!/usr/bin/env bash
# The ablation grid of fnet-cifar, then the committed results, figure and tables.
#   bash fnet-cifar/run.sh                          # what produced results/ (epochs fitted to BUDGET_S)
#   EPOCHS_FMNIST=10 EPOCHS_SYNTHETIC=10 bash fnet-cifar/run.sh   # fixed lengths, any machine
#   QUICK=1 DEVICE=cpu bash fnet-cifar/run.sh       # tiny synthetic grid, the whole chain in about a minute
# Env: SEEDS (default "0 1 2"), DEVICE (auto), OUT (fnet-cifar/runs), BUDGET_S (480), EPOCHS_FMNIST and
# EPOCHS_SYNTHETIC (unset = fitted to the budget from short timed runs), COMPILE (unset; 1 = torch.compile,
# about 2x faster epochs after a minute of compilation per variant), QUICK (unset).
# Re-running resumes: runs whose metrics.json exists are skipped.
set -euo pipefail
cd "$(dirname "$0")"
SEEDS=${SEEDS:-"0 1 2"}
DEVICE=${DEVICE:-auto}
OUT=${OUT:-runs}
BUDGET_S=${BUDGET_S:-480}
args=(--seeds $SEEDS --device "$DEVICE" --out-dir "$OUT" --budget-s "$BUDGET_S")
[ -n "${EPOCHS_FMNIST:-}" ] && args+=(--epochs-fmnist "$EPOCHS_FMNIST")
[ -n "${EPOCHS_SYNTHETIC:-}" ] && args+=(--epochs-synthetic "$EPOCHS_SYNTHETIC")
[ -n "${COMPILE:-}" ] && args+=(--compile)
if [ -n "${QUICK:-}" ]; then
  python scripts/grid.py "${args[@]}" --quick
  python scripts/aggregate.py --runs-dir "$OUT" --results-dir "$OUT/results" --no-docs  # never overwrite results/
else
  python scripts/grid.py "${args[@]}"
  python scripts/aggregate.py --runs-dir "$OUT"
fi
