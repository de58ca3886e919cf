#!/usr/bin/env bash
# GPU call 2: regenerate the dataset from the committed snapshots, then train and evaluate the 6 DTs
# (linear, Fourier-8, Fourier-14) x seeds (123, 231) concurrently on the one GPU.
# BUDGET: seconds this call may use. Each run sizes its epochs (train.py --time-budget) from the speed
# it measures over its steps 100-200, so that 5 epochs + 5 evaluations fit what is left after the dataset.
source "$(dirname "$0")/common.sh"
T0=$(date +%s); BUDGET=${BUDGET:-550}
ppo_data manifest.json
LEFT=$(( BUDGET - ($(date +%s) - T0) ))
echo "seconds left for the DTs: $LEFT"
mkdir -p runs/logs
PIDS=()
for h in "linear" "fourier --num-frequencies 8" "fourier --num-frequencies 14"; do
  for s in 123 231; do
    python3 train.py --head $h --seed $s --time-budget $(( LEFT - 25 )) --max-seconds $(( LEFT - 10 )) --eval-max-steps 6000 \
      > "runs/logs/$(echo $h | tr -d ' -')_$s.log" 2>&1 &
    PIDS+=($!)
  done
done
start_copier 20 dt_runs.tgz runs/Seaquest runs/logs
wait "${PIDS[@]}"
kill $COPIER
pack_runs dt_runs.tgz runs/Seaquest runs/logs
grep -h "epoch" runs/logs/*.log | tail -40
ls -la "$OUT"
