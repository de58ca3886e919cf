#!/usr/bin/env bash
# Set up (first run only) and run the main job on a CPU: the synthetic toy example's quick mode
# (train -> aggregate -> plot, about a minute), written under toy-example-synthetic/runs/quick/.
#   bash run.sh [extra flags for toy-example-synthetic/train.py]
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh toy
PYTHON="$PWD/.venv/bin/python" bash toy-example-synthetic/run.sh --quick "$@"
echo "figures: toy-example-synthetic/runs/quick/figures/"
