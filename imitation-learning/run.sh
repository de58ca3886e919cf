#!/usr/bin/env bash
# Decision Transformer on Atari with a linear or Fourier action head, end to end, for one game.
#   bash run.sh                 Seaquest: dataset from the committed PPO snapshots, 3 heads x 2 seeds
#                               trained concurrently on one GPU, then aggregate (README blocks) + plots
#   bash run.sh --quick         CPU, ~1 min: random-policy data, tiny DTs, one short episode; everything
#                               (data, runs, results/table.md, figures) under runs/quick/, nothing committed
#   bash run.sh --help          this text
#   GAME=BankHeist bash run.sh  another game (first: python agent.py --game BankHeist, on a GPU)
# Environment: SEEDS (default "123 231"), HEADS (default "linear fourier:8 fourier:14"), EXTRA (more
# train.py flags, e.g. "--epoch-samples 128000"). Finished runs are skipped; stopped ones resume; a run
# folder holding other settings stops that run with one line naming them (EXTRA="--force" starts afresh).
# Interpreter: $PYTHON if set, else the repository's .venv if present, else python3.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
PY=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # scaffold.py, fourier_head.py, plot_style.py
GAME=${GAME:-Seaquest}
case "${1:-}" in
  -h|--help) sed -n '2,12p' run.sh | sed 's/^# \{0,1\}//'; exit 0 ;;
  --quick)
    "$PY" make_dataset.py --quick --game "$GAME"
    "$PY" train.py --quick --game "$GAME" --head linear ${EXTRA:-}
    "$PY" train.py --quick --game "$GAME" --head fourier --num-frequencies 4 ${EXTRA:-}
    "$PY" aggregate.py --quick
    "$PY" plot.py --quick
    exit 0 ;;
  "") ;;
  *) echo "error: unknown argument $1 (bash run.sh [--quick|--help])" >&2; exit 2 ;;
esac
[[ -f "data/$GAME/manifest.json" ]] || "$PY" make_dataset.py --game "$GAME"
pids=()
mkdir -p runs/logs
for head in ${HEADS:-linear fourier:8 fourier:14}; do
  for seed in ${SEEDS:-123 231}; do
    if [[ $head == fourier:* ]]; then args=(--head fourier --num-frequencies "${head#fourier:}"); else args=(--head linear); fi
    "$PY" train.py --game "$GAME" "${args[@]}" --seed "$seed" ${EXTRA:-} > "runs/logs/${GAME}_${head/:/}_$seed.log" 2>&1 &
    pids+=($!)
  done
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
if (( failed )); then echo "error: $failed run(s) failed; see runs/logs/" >&2; exit 1; fi
"$PY" aggregate.py --update-readme
"$PY" plot.py
