#!/usr/bin/env bash
# GPU call 1: DT training throughput (random-policy data), the PPO agent (-> snapshots), the dataset.
source "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, ale_py, gymnasium; print('torch', torch.__version__, 'ale_py', ale_py.__version__, 'gymnasium', gymnasium.__version__)"

# 1) DT training throughput: one process alone, then 6 at once (2 linear, 2 Fourier-8, 2 Fourier-14)
python3 make_dataset.py --policy random --train-steps 30000 --test-steps 3000 --out-dir runs/timing/data/Seaquest 2>&1 | grep -v it/s
T="--data-dir runs/timing/data/Seaquest --epochs 1 --epoch-samples 25600 --eval-episodes 1 --eval-max-steps 1"
python3 train.py $T --out-dir runs/timing/alone --head fourier --num-frequencies 14 2>&1 | grep -v "it/s"
i=0
for h in "linear" "fourier --num-frequencies 8" "fourier --num-frequencies 14"; do
  for s in 1 2; do python3 train.py $T --out-dir runs/timing/six$i --head $h --seed $s > runs/timing/six$i.log 2>&1 & i=$((i+1)); done
done
wait
python3 - <<'PY'
import json, glob, os
rows = {p: json.load(open(p))["train_samples_per_second"] for p in sorted(glob.glob("runs/timing/*/metrics.json"))}
six = [v for k, v in rows.items() if "six" in k]
res = {"per_run": rows, "six_concurrent_total": sum(six), "alone": rows.get("runs/timing/alone/metrics.json")}
print(json.dumps(res, indent=1)); json.dump(res, open(os.environ["OUT"] + "/dt_timing.json", "w"), indent=1)
PY

# 2) the online agent (PPO), stopped cleanly after AGENT_SECONDS
python3 agent.py --total-steps ${AGENT_STEPS:-2000000} --max-seconds ${AGENT_SECONDS:-270} 2>&1 | grep -v "it/s"
tar czf "$OUT/snapshots.tgz" --exclude checkpoint.pt snapshots/Seaquest
cp snapshots/Seaquest/checkpoint.pt "$OUT/agent_checkpoint.pt" 2>/dev/null

# 3) the dataset from the snapshots (its manifest; the frames stay here)
python3 make_dataset.py 2>&1 | grep -v "it/s"
cp data/Seaquest/manifest.json "$OUT/manifest_call1.json"
ls -la "$OUT"
