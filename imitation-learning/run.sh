#!/usr/bin/env bash
# Decision Transformer on Atari with a linear or Fourier action head, end to end, for one game.
#   bash run.sh [GAME] [--quick]   GAME: Seaquest (default), BankHeist, DoubleDunk or Gravitar (atari.GAMES)
#   bash run.sh                    Seaquest, ppo-sampled data from the committed PPO snapshots, 3 heads x 2 seeds
#                                  trained concurrently on one GPU, then aggregate (README blocks) + plots
#   bash run.sh Gravitar           dqn-replay-like data from the committed PQN snapshots (snapshots/pqn/Gravitar,
#                                  from pqn.py + publish_snapshots.py on a GPU), its diagnostics, the runs, ...
#   bash run.sh --quick            CPU, ~1 min: random-policy data, tiny DTs, one short episode
#   bash run.sh Gravitar --quick   CPU, ~1-2 min: a tiny PQN agent, its dqn-replay-like data and diagnostics,
#                                  tiny DTs; everything under runs/quick/ (data, runs, results, figures)
#   bash run.sh --help             this text
# Environment: DATASET (default ppo-sampled for Seaquest, dqn-replay-like for the other games), SEEDS (default
# "123 231"), HEADS (default "linear fourier:8 fourier:14"; the sweep: "linear fourier:2 fourier:8 fourier:14
# fourier:20 fourier:26 fourier:32"), EXTRA (more train.py flags, e.g. "--epoch-samples 128000"). Finished runs
# are skipped; stopped ones resume; a run folder holding other settings stops that run with one line naming
# them (EXTRA="--force" starts afresh). Interpreter: $PYTHON if set, else the repository's .venv, else python3.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
PY=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # scaffold.py, fourier_head.py, plot_style.py
GAMES="Seaquest BankHeist DoubleDunk Gravitar"  # as atari.GAMES (tests/test_games.py checks)
GAME=${GAME:-Seaquest}
QUICK=0
for arg in "$@"; do
  case $arg in
    -h|--help) sed -n '2,17p' run.sh | sed 's/^# \{0,1\}//'; exit 0 ;;
    --quick) QUICK=1 ;;
    -*) echo "error: unknown argument $arg (bash run.sh [GAME] [--quick|--help])" >&2; exit 2 ;;
    *) [[ " $GAMES " == *" $arg "* ]] || { echo "error: unknown game $arg (choose from ${GAMES// /, })" >&2; exit 2; }
       GAME=$arg ;;
  esac
done
DATASET=${DATASET:-$([[ $GAME == Seaquest ]] && echo ppo-sampled || echo dqn-replay-like)}

if (( QUICK )); then
  if [[ $DATASET == ppo-sampled ]]; then
    "$PY" make_dataset.py --quick --game "$GAME"
  else  # the issue-19 protocol in miniature: agent, its snapshots logged epsilon-greedy with sticky actions
    "$PY" pqn.py --quick --game "$GAME"
    "$PY" make_dataset.py --quick --game "$GAME" --dataset "$DATASET" --policy snapshots
    "$PY" diagnostics.py --quick --game "$GAME" --dataset "$DATASET" --force  # a tiny agent: report, never refuse
  fi
  "$PY" train.py --quick --game "$GAME" --dataset "$DATASET" --head linear ${EXTRA:-}
  "$PY" train.py --quick --game "$GAME" --dataset "$DATASET" --head fourier --num-frequencies 4 ${EXTRA:-}
  "$PY" aggregate.py --quick
  "$PY" plot.py --quick
  exit 0
fi

DATA=$("$PY" -c "from make_dataset import DATASETS; print(DATASETS['$DATASET']['data'].format(game='$GAME'))")
if [[ ! -f $DATA/manifest.json ]]; then
  "$PY" make_dataset.py --game "$GAME" --dataset "$DATASET"
  [[ $DATASET == ppo-sampled ]] || "$PY" diagnostics.py --game "$GAME" --dataset "$DATASET"  # exit 1: refused
fi
pids=()
mkdir -p runs/logs
for head in ${HEADS:-linear fourier:8 fourier:14}; do
  for seed in ${SEEDS:-123 231}; do
    if [[ $head == fourier:* ]]; then args=(--head fourier --num-frequencies "${head#fourier:}"); else args=(--head linear); fi
    log="runs/logs/${GAME}_${head/:/}_$seed.log"
    [[ $DATASET == ppo-sampled ]] || log="runs/logs/${DATASET}_${GAME}_${head/:/}_$seed.log"
    "$PY" train.py --game "$GAME" --dataset "$DATASET" "${args[@]}" --seed "$seed" ${EXTRA:-} > "$log" 2>&1 &
    pids+=($!)
  done
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
if (( failed )); then echo "error: $failed run(s) failed; see runs/logs/" >&2; exit 1; fi
"$PY" aggregate.py --update-readme
"$PY" plot.py
