#!/usr/bin/env bash
# GPU (issue 20): one game's dqn-replay-like data and its DT runs, as dqn_dt.sh does for Seaquest (issue-19
# protocol unchanged), with per-game logs, pids and archives so that games never mix. Needs the game's 50 PQN
# snapshots in imitation-learning/snapshots/pqn/<GAME>/ (publish_snapshots.py; see TRAVEL below) and carries
# imitation-learning/.whl (common.sh).
#
#   bash imitation-learning/gpu_jobs/game_dt.sh GAME             # MODE=start: data (unless built on this machine),
#        diagnostics (exit 1 if they refuse the data: no run starts), then the GRID's runs DETACHED, round-robin
#        over the GPUs; returns after WAIT (60) s with the logs' tails
#   MODE=wait bash imitation-learning/gpu_jobs/game_dt.sh GAME   # waits (at most LIMIT, 540 s) until every run is
#        done, then status and collect in one call; repeat back to back until "runs still going: 0"
#   MODE=status|collect|stop bash imitation-learning/gpu_jobs/game_dt.sh GAME
# GAME: BankHeist, DoubleDunk, Gravitar or Seaquest.
# GRID=main (default): HEADS "linear fourier8 fourier14" x SEEDS (default "123 231"; then "312 42");
# GRID=sweep: HEADS "fourier2 fourier20 fourier26 fourier32" x SEEDS "123 231" (N = 8, 14 and the linear
#   baseline come from the main grid's seeds 123 and 231: together N in {2, 8, 14, 20, 26, 32}, atari.SWEEP).
# HEADS and SEEDS override either grid. Other environment: WORKERS (30: dataset processes; 60 on a 64-core
# x4 machine), WAIT, LIMIT, EXTRA (more train.py flags), FOURIER_HEAD_COMMIT (the machine has no .git).
# collect: $OUT/dt_<GAME>_runs.tgz (run folders without checkpoints, logs, the data's manifest, diagnostics and
# figure). Here: tar xzf <files_at>/dt_<GAME>_runs.tgz -C imitation-learning, then from imitation-learning/
# `python aggregate.py --update-readme && python plot.py`.
#
# TRAVEL: what goes to a machine is 64 MiB in all, the repository's tracked files included (~56 MB, 28 MB of
# them Seaquest's 50 PQN snapshots); a second game's 28 MB of snapshots does not fit beside them. So only one
# game's snapshots can be in the tree at a time: commit a new game's snapshots after removing the previous
# game's from the tree (`git rm -r imitation-learning/snapshots/pqn/<old>/policy_*.pt`; they stay in git
# history, and its data manifest in results/ records their SHA-256; `git checkout <commit> -- <path>` brings
# them back), or bring them to the machine untracked in parts (scripts/carry_parts.sh, 8 MB a call).
#
# COST (estimates from Seaquest's measurements, not measured for these games): Seaquest on H200 x2 (commit
# 6eccb82): machine start ~1.5 min, data + diagnostics 108 s (30 workers), then ~197 s per epoch with 3 runs
# sharing a GPU, 5 epochs ~16.5 min plus the 50-episode final evaluation: ~22-24 min of a 30-minute machine.
# Training costs the same per window for every game (500k transitions, the same model); the evaluations scale
# with episode length (rollouts capped at 10,000 steps; random play lasts ~500 (BankHeist), ~650 (Gravitar),
# ~2,000 (DoubleDunk) steps, and a DT's episodes are longer). So per game:
#   main grid, 12 runs: two sessions of nvidia-h200-x2 (SEEDS "123 231", then "312 42"), 3 runs per GPU, or
#     one session of a x4 machine (3 per GPU, WORKERS=60; ~25 min, tight: check the first epoch's time);
#   sweep, 8 runs: one session of a x4 machine (2 per GPU, ~20 min), or two of x2 (HEADS "fourier2 fourier20"
#     then "fourier26 fourier32", 2 per GPU).
# A lost machine loses its unfinished runs (no DT checkpoint travels: ~25 MB each): rerun those from scratch.
GAMES="Seaquest BankHeist DoubleDunk Gravitar"  # as atari.GAMES
GAME=${1:-}
[[ -n $GAME && " $GAMES " == *" $GAME "* ]] || { echo "error: unknown game '${GAME}' (bash $0 GAME; GAME one of ${GAMES// /, })" >&2; exit 2; }
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")  # common.sh changes the directory
source "$(dirname "$0")/common.sh"
DATASET=dqn-replay-like
DATA=data/$DATASET/$GAME
MODE=${MODE:-start}
case ${GRID:-main} in
  main) HEADS=${HEADS:-linear fourier8 fourier14} ;;
  sweep) HEADS=${HEADS:-fourier2 fourier20 fourier26 fourier32} ;;
  *) echo "error: GRID must be main or sweep (got ${GRID})" >&2; exit 2 ;;
esac
SEEDS=${SEEDS:-123 231}
mkdir -p runs/logs
PIDS=runs/logs/dt_$GAME.pids
run_folder() { echo "runs/$DATASET/$GAME/$1/seed$2"; }

case $MODE in
  start)
    T0=$(date +%s)
    n=$(ls snapshots/pqn/$GAME/policy_*.pt 2>/dev/null | wc -l)
    if [[ ! -f $DATA/manifest.json ]] && (( n == 0 )); then
      echo "error: no PQN snapshots in imitation-learning/snapshots/pqn/$GAME (game_agent.sh, publish_snapshots.py; TRAVEL above)" >&2
      exit 1
    fi
    nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
    NGPU=$(nvidia-smi -L | wc -l)
    if [[ ! -f $DATA/manifest.json ]]; then
      echo "$n snapshots in snapshots/pqn/$GAME"
      python3 make_dataset.py --game "$GAME" --dataset $DATASET --workers "${WORKERS:-30}" 2>&1 | grep -v "it/s"
    fi
    [[ -f $DATA/manifest.json ]] || { echo "no dataset"; exit 1; }
    echo "data ready after $(( $(date +%s) - T0 )) s"
    cp $DATA/manifest.json "$OUT/manifest_${DATASET}_$GAME.json"
    python3 diagnostics.py --game "$GAME" --dataset $DATASET
    rc=$?
    cp $DATA/diagnostics.json "$OUT/diagnostics_${DATASET}_$GAME.json" 2>/dev/null
    cp "figures/${GAME}_${DATASET}_data.png" "$OUT/" 2>/dev/null
    if (( rc != 0 )); then echo "diagnostics refused the data (exit $rc): no DT run started"; exit 1; fi
    echo "diagnostics passed after $(( $(date +%s) - T0 )) s"
    i=0
    for h in $HEADS; do
      case $h in linear) args="--head linear";; fourier*) args="--head fourier --num-frequencies ${h#fourier}";;
        *) echo "error: head $h (linear or fourier<N>)" >&2; exit 2;; esac
      for s in $SEEDS; do
        gpu=$(( i % NGPU )); i=$((i + 1))
        [[ -f $(run_folder "$h" "$s")/metrics.json ]] && { echo "$h seed $s: finished"; continue; }
        if [[ -f $PIDS ]] && grep -q " $h $s\$" $PIDS && kill -0 "$(grep " $h $s\$" $PIDS | tail -1 | cut -d' ' -f1)" 2>/dev/null; then
          echo "$h seed $s: running"; continue
        fi
        # as dqn_dt.sh: 4 ALE threads for the final evaluation, rollouts capped at 10,000 steps (cut ones counted)
        CUDA_VISIBLE_DEVICES=$gpu setsid nohup python3 train.py --game "$GAME" --dataset $DATASET $args --seed "$s" \
          --eval-max-steps 10000 --final-eval-threads 4 ${EXTRA:-} >> "runs/logs/dt_${GAME}_${h}_$s.log" 2>&1 < /dev/null &
        echo "$! $h $s" >> $PIDS
        echo "$h seed $s: started on GPU $gpu (pid $!)"
      done
    done
    sleep "${WAIT:-60}"
    tail -n 3 runs/logs/dt_${GAME}_*.log ;;
  status)
    [[ -f $PIDS ]] || { echo "no run was started on this machine (MODE=start first)"; exit 1; }
    while read -r pid h s; do
      dir=$(run_folder "$h" "$s")
      epochs=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$dir/history.json" 2>/dev/null || echo 0)
      state=$([[ -f $dir/metrics.json ]] && echo finished || echo "epochs done: $epochs")
      echo "== $h seed $s: $state"
      grep -a "^epoch\|^final\|resuming\|Error\|error" "runs/logs/dt_${GAME}_${h}_$s.log" | tail -n 2
    done < $PIDS
    nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader
    # the curves so far, in case the machine goes back before collect (no checkpoints)
    tar czf "$OUT/dt_${GAME}_partial.tgz" --exclude 'ckpt.pt*' $(ls -d runs/$DATASET/$GAME runs/logs/dt_${GAME}_*.log 2>/dev/null) ;;
  wait)
    [[ -f $PIDS ]] || { echo "no run was started on this machine (MODE=start first)"; exit 1; }
    t=0; left=0
    while (( t < ${LIMIT:-540} )); do
      left=0
      while read -r pid h s; do
        [[ -f $(run_folder "$h" "$s")/metrics.json ]] || ! kill -0 "$pid" 2>/dev/null || left=$((left + 1))
      done < $PIDS
      (( left == 0 )) && break
      sleep 15; t=$((t + 15))
    done
    echo "waited $t s; runs still going: $left"
    MODE=status bash "$SELF" "$GAME"; MODE=collect bash "$SELF" "$GAME" ;;
  collect)
    files=$(ls -d runs/$DATASET/$GAME runs/logs/dt_${GAME}_*.log $DATA/manifest.json $DATA/diagnostics.json \
                  "figures/${GAME}_${DATASET}_data.png" 2>/dev/null)
    tar czf "$OUT/dt_${GAME}_runs.tgz" --exclude 'ckpt.pt*' $files
    ls -la "$OUT"; tar tzf "$OUT/dt_${GAME}_runs.tgz" | grep -c metrics.json | sed 's/^/finished runs: /' ;;
  stop)
    [[ -f $PIDS ]] && while read -r pid h s; do kill "$pid" 2>/dev/null && echo "stopped $h seed $s ($pid)"; done < $PIDS ;;
  *) echo "error: MODE must be start, status, wait, collect or stop" >&2; exit 2 ;;
esac
