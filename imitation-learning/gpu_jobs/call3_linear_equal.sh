#!/usr/bin/env bash
# GPU follow-up (not run yet): the two linear runs again, with the Fourier runs' epoch size, so that
# linear and Fourier see the same number of windows (5 x 98,304) and finish their schedule.
# About 6 minutes on one H100: dataset 95 s, then 2 runs at once. Results: $OUT/dt_runs_linear.tgz;
# unpack it over imitation-learning/ (it replaces runs/Seaquest/linear), then
#   python aggregate.py --update-readme && python plot.py
source "$(dirname "$0")/common.sh"
ppo_data manifest_call3.json
rm -rf runs/Seaquest/linear; mkdir -p runs/logs
PIDS=()
for s in ${SEEDS:-123 231}; do
  python3 train.py --head linear --seed $s --epoch-samples 98304 --eval-max-steps 6000 --max-seconds 420 \
    > "runs/logs/linear_$s.log" 2>&1 &
  PIDS+=($!)
done
start_copier 20 dt_runs_linear.tgz runs/Seaquest/linear runs/logs
wait "${PIDS[@]}"
kill $COPIER
pack_runs dt_runs_linear.tgz runs/Seaquest/linear runs/logs
grep -h "epoch" runs/logs/linear_*.log
