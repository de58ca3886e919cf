#!/usr/bin/env bash
# Pilot of the from-scratch encoder: encoder size, patch shape, learning rate and epochs (seed 0 only),
# all variants at once as parallel processes on one GPU.   Usage: [EXTRA=...] bash scripts/pilot.sh OUT_DIR
# The first run (H100, before the sweeps) scored the variants on the TEST split and had no Fourier head at
# lr 1e-3 / 100 epochs; scripts/gpu_job.sh re-runs it with EXTRA="--val-fraction 0.15" (validation
# scores) and the two Fourier variants below, and `aggregate.py --pilot runs/pilot-val` writes
# results/pilot.json with provenance.
# Interpreter: the repository's .venv if present, else $PYTHON, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(cd .. && pwd)
if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=${PYTHON:-python3}; fi
OUT=${1:-runs/pilot}
common="--renderer sf2 --seed 0 --eval-every 20 ${EXTRA:-}"
run() { name=$1; shift; timeout "${PILOT_TIMEOUT:-0}" "$PY" train.py $common --out-dir "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1 & }
mkdir -p "$OUT"
run base-linear   --head linear
run base-f1       --head fourier --num-frequencies 1
run base-f2       --head fourier --num-frequencies 2
run base-f8       --head fourier --num-frequencies 8
run strips-linear --head linear --patch-mels 32 --patch-frames 2
run lr1e-3-ep100-linear --head linear --lr 1e-3 --epochs 100
run lr1e-3-ep100-f1 --head fourier --num-frequencies 1 --lr 1e-3 --epochs 100
run lr1e-3-ep100-f8 --head fourier --num-frequencies 8 --lr 1e-3 --epochs 100
run wide-linear   --head linear --d-model 192 --n-layers 6 --n-heads 6
run oddeven-linear --head linear --split odds_evens
wait
grep -h "epoch" "$OUT"/*.log
