#!/usr/bin/env bash
# GPU (issue 19, item 4): the dqn-replay-like data and the DT comparison on it, on a 2-GPU machine (nvidia-h200-x2).
# Carry imitation-learning/.whl (ale-py, gymnasium, farama-notifications for Python 3.12); nothing else: the data
# is rebuilt from the committed PQN snapshots on every machine, and no DT checkpoint travels (see PLAN).
#
#   bash imitation-learning/gpu_jobs/dqn_dt.sh               # MODE=start: data (unless built on this machine),
#        diagnostics (stops with exit 1 if it refuses the data), then the runs of HEADS x SEEDS DETACHED (setsid),
#        spread round-robin over the GPUs; returns after WAIT (60) s with the logs' tails
#   MODE=status bash imitation-learning/gpu_jobs/dqn_dt.sh   # epochs done per run, last lines, GPU use;
#        $OUT/dqn_dt_partial.tgz (histories and logs so far, no checkpoints)
#   MODE=wait bash imitation-learning/gpu_jobs/dqn_dt.sh     # waits (LIMIT, 540 s) until every run is done, then
#        status and collect in one call (send these back to back: a machine idle 30 s goes back with its runs)
#   MODE=collect bash imitation-learning/gpu_jobs/dqn_dt.sh  # $OUT/dqn_dt_runs.tgz: run folders without
#        checkpoints, logs, the data's manifest and diagnostics, the data figure (a few MB; 1 file)
#   MODE=stop bash imitation-learning/gpu_jobs/dqn_dt.sh     # ends the runs this script started (by pid)
# Environment: SEEDS (default "123 231"), HEADS (default "linear fourier8 fourier14"), WORKERS (30: dataset
# processes, one (split, snapshot) part each, for 32 cores), WAIT (60), EXTRA (more train.py flags),
# FOURIER_HEAD_COMMIT (the commit; the machine has no .git). Finished runs (metrics.json) are skipped; a run
# whose process died resumes from its checkpoint (ckpt.pt, every 500 steps) when started again on the SAME machine.
# Unpack the results here, from the repository root:
#   tar xzf <files_at>/dqn_dt_runs.tgz -C imitation-learning
#   cd imitation-learning && python aggregate.py --update-readme && python plot.py
#
# PLAN (two GPU sessions; times from the H100 measurements in README/results/gpu_calls.json, not yet measured here):
# - Why not all 12 runs in one session, 6 per GPU: with 6 runs sharing an H100 a full-length run took 1,352 s of
#   wall time (22.5 min; 4 sharing: 1,025-1,030 s); with the data (~2 min), the diagnostics and the machine's start
#   (~1.5 min) that passes the 30 minutes a machine (and a session's device time) lasts. Resuming in a later
#   session does not fit either: a DT checkpoint with its optimizer is ~24 MB (~25 MB on this data: its longer
#   episodes enlarge the timestep embedding), and what travels in is 64 MiB in all, of which the repository
#   takes ~52 MB (`git ls-files | xargs du -ch`: 28 MB of them the 50 PQN snapshots that the data needs) and
#   the wheels 3.6 MB; ~8 MB are left, not one checkpoint. Carrying fewer snapshots would change the data.
# - So the 12 runs are split by seed over two sessions; every run finishes inside its session and only small
#   result folders come back (no checkpoint travels in either direction). Each session, on nvidia-h200-x2:
#     call 1  FOURIER_HEAD_COMMIT=<commit> SEEDS="123 231" bash imitation-learning/gpu_jobs/dqn_dt.sh
#             wheels, data (550k transitions from 50 snapshots, 30 workers: ~1-3 min), diagnostics (~0.5 min),
#             6 runs started (3 per GPU); ~4-6 min. Its $OUT: the manifest, diagnostics.json, the data figure.
#             If the diagnostics refuse the data (exit 1), stop here: no DT run is started.
#     call 2+ MODE=wait bash imitation-learning/gpu_jobs/dqn_dt.sh   (each call: at most 9 min, then the curves
#             so far and every finished run come back; repeat until "runs still going: 0")
#   Estimate per session: start ~1.5 min + call 1 ~5 min + DT 3 runs per GPU ~14-17 min (5 epochs of ~500k windows,
#   5 evaluations of 10 episodes, a final evaluation of 50) + collect ~0.5 min = ~21-24 min of the 30.
#   Session 2: the same with SEEDS="312 42". Its data must have the same hashes (aggregate.py checks each run's
#   env.json against the manifest: provenance.data_hashes_match_runs).
# - If a machine goes back before its runs finish, their folders are lost with it (collect first when in doubt):
#   rerun those seeds in the next session, from scratch.
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")  # common.sh changes the directory
source "$(dirname "$0")/common.sh"
GAME=${GAME:-Seaquest}
DATASET=dqn-replay-like
DATA=data/$DATASET/$GAME
MODE=${MODE:-start}
mkdir -p runs/logs
PIDS=runs/logs/dqn_dt.pids
run_folder() { echo "runs/$DATASET/$GAME/$1/seed$2"; }

case $MODE in
  start)
    T0=$(date +%s)
    nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
    NGPU=$(nvidia-smi -L | wc -l)
    if [[ ! -f $DATA/manifest.json ]]; then
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
    for h in ${HEADS:-linear fourier8 fourier14}; do
      case $h in linear) args="--head linear";; *) args="--head fourier --num-frequencies ${h#fourier}";; esac
      for s in ${SEEDS:-123 231}; do
        gpu=$(( i % NGPU )); i=$((i + 1))
        [[ -f $(run_folder "$h" "$s")/metrics.json ]] && { echo "$h seed $s: finished"; continue; }
        if [[ -f $PIDS ]] && grep -q " $h $s\$" $PIDS && kill -0 "$(grep " $h $s\$" $PIDS | tail -1 | cut -d' ' -f1)" 2>/dev/null; then
          echo "$h seed $s: running"; continue
        fi
        # 4 ALE threads for the 50-episode final evaluation (32 cores, 6 runs); episodes capped at 10,000 steps
        # (40k frames; the PQN agent's last games took ~2,700-3,200 steps), cut episodes are counted
        CUDA_VISIBLE_DEVICES=$gpu setsid nohup python3 train.py --game "$GAME" --dataset $DATASET $args --seed "$s" \
          --eval-max-steps 10000 --final-eval-threads 4 ${EXTRA:-} >> "runs/logs/dqn_${h}_$s.log" 2>&1 < /dev/null &
        echo "$! $h $s" >> $PIDS
        echo "$h seed $s: started on GPU $gpu (pid $!)"
      done
    done
    sleep "${WAIT:-60}"
    tail -n 3 runs/logs/dqn_*.log ;;
  status)
    for f in runs/logs/dqn_*.log; do
      name=$(basename "$f" .log); h=$(echo "$name" | cut -d_ -f2); s=$(echo "$name" | cut -d_ -f3)
      dir=$(run_folder "$h" "$s")
      epochs=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$dir/history.json" 2>/dev/null || echo 0)
      state=$([[ -f $dir/metrics.json ]] && echo finished || echo "epochs done: $epochs")
      echo "== $h seed $s: $state"
      grep -a "^epoch\|^final\|resuming\|Error\|error" "$f" | tail -n 2
    done
    nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader
    # the curves so far, in case the machine goes back before collect (no checkpoints)
    tar czf "$OUT/dqn_dt_partial.tgz" --exclude 'ckpt.pt*' $(ls -d runs/$DATASET runs/logs/dqn_*.log 2>/dev/null) ;;
  wait)
    # sleeps until every started run has metrics.json or has no live process, at most LIMIT (540) s, then does
    # status and collect in the same call: a machine that goes back after this call has lost nothing finished
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
    MODE=status bash "$SELF"; MODE=collect bash "$SELF" ;;
  collect)
    files=$(ls -d runs/$DATASET runs/logs/dqn_*.log $DATA/manifest.json $DATA/diagnostics.json \
                  "figures/${GAME}_${DATASET}_data.png" 2>/dev/null)
    tar czf "$OUT/dqn_dt_runs.tgz" --exclude 'ckpt.pt*' $files
    ls -la "$OUT"; tar tzf "$OUT/dqn_dt_runs.tgz" | grep -c metrics.json | sed 's/^/finished runs: /' ;;
  stop)
    [[ -f $PIDS ]] && while read -r pid h s; do kill "$pid" 2>/dev/null && echo "stopped $h seed $s ($pid)"; done < $PIDS ;;
  *) echo "MODE must be start, status, wait, collect or stop" >&2; exit 2 ;;
esac
