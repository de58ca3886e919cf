#!/usr/bin/env bash
# GPU calls 4a-4d (all 6 runs) and 5a-5c (HEADS="fourier8 fourier14", the Fourier reruns): the paper's full length (5 epochs of one window per transition, about 2.5M windows
# per run) for linear, Fourier-8 and Fourier-14 x seeds 123 and 231, six runs sharing one H100. Each call
# trains until its BUDGET (seconds) is nearly spent, checkpoints and stops; the next call on the still
# warm machine resumes every run where it stopped (data/ and runs/ are ignored folders, so they stay on the
# machine between calls). Finished runs are skipped. Results: $OUT/dt_full.tgz (runs without checkpoints,
# logs), unpacked over imitation-learning/; then `python aggregate.py --update-readme && python plot.py`.
# HEADS (default "linear fourier8 fourier14") and SEEDS (default "123 231") pick the runs.
source "$(dirname "$0")/common.sh"
T0=$(date +%s); BUDGET=${BUDGET:-570}
nvidia-smi --query-gpu=name --format=csv,noheader
ppo_data manifest.json
LEFT=$(( BUDGET - ($(date +%s) - T0) ))
echo "seconds left for the DTs: $LEFT"
mkdir -p runs/logs
PIDS=()
for h in ${HEADS:-linear fourier8 fourier14}; do
  case $h in linear) args="--head linear";; *) args="--head fourier --num-frequencies ${h#fourier}";; esac
  for s in ${SEEDS:-123 231}; do
    [[ -f runs/Seaquest/$h/seed$s/metrics.json ]] && { echo "$h seed $s: finished"; continue; }
    # stop 80 s early: an epoch-end evaluation that starts just before the limit takes up to a minute
    python3 train.py $args --seed $s --eval-max-steps 6000 --max-seconds $(( LEFT - 80 )) \
      >> "runs/logs/${h}_$s.log" 2>&1 &
    PIDS+=($!)
  done
done
start_copier 30 dt_full.tgz runs/Seaquest runs/logs
[[ ${#PIDS[@]} -gt 0 ]] && wait "${PIDS[@]}"
kill $COPIER
pack_runs dt_full.tgz runs/Seaquest runs/logs
grep -h "^epoch\|resuming\|finished" runs/logs/*.log | tail -40
for f in runs/Seaquest/*/seed*/metrics.json; do echo "done: $f"; done
echo "call wall: $(( $(date +%s) - T0 )) s"
