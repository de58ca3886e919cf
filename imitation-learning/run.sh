#!/usr/bin/env bash
# Decision Transformer on Atari with a linear or Fourier action head, end to end, for one game.
#   bash run.sh                 Seaquest: dataset from the committed PPO snapshots, 3 heads x 2 seeds
#                               trained concurrently on one GPU, then aggregate + plots
#   bash run.sh --quick         CPU, ~1 min: random-policy data, tiny DTs, one short episode, runs/quick/
#   GAME=BankHeist bash run.sh  another game (first: python agent.py --game BankHeist, on a GPU)
# Environment: SEEDS (default "123 231"), HEADS (default "linear fourier:8 fourier:14"), EXTRA (more
# train.py flags, e.g. "--epoch-samples 128000"). Finished runs are skipped; stopped ones resume.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
GAME=${GAME:-Seaquest}
if [[ "${1:-}" == "--quick" ]]; then
  "$PY" make_dataset.py --quick --game "$GAME"
  "$PY" train.py --quick --game "$GAME" --head linear
  "$PY" train.py --quick --game "$GAME" --head fourier --num-frequencies 4
  "$PY" aggregate.py --runs runs/quick --results runs/quick/results --data runs/quick/data
  "$PY" plot.py --results runs/quick/results --figures runs/quick/figures
  exit 0
fi
[[ -f "data/$GAME/manifest.json" ]] || "$PY" make_dataset.py --game "$GAME"
pids=()
for head in ${HEADS:-linear fourier:8 fourier:14}; do
  for seed in ${SEEDS:-123 231}; do
    if [[ $head == fourier:* ]]; then args=(--head fourier --num-frequencies "${head#fourier:}"); else args=(--head linear); fi
    mkdir -p runs/logs
    "$PY" train.py --game "$GAME" "${args[@]}" --seed "$seed" ${EXTRA:-} > "runs/logs/${GAME}_${head/:/}_$seed.log" 2>&1 &
    pids+=($!)
  done
done
wait "${pids[@]}"
"$PY" aggregate.py --update-readme
"$PY" plot.py
