#!/usr/bin/env bash
# The GPU runs behind misc/benchmarks/*.json and the README's speed section, in two calls of the device
# (each under 10 minutes on an H100). The commit recorded is git's, or FOURIER_HEAD_COMMIT where the copy
# has no .git (e.g. FOURIER_HEAD_COMMIT=$(git rev-parse --short HEAD) on the GPU call); results go to $OUT.
#   bash misc/benchmarks/gpu_run.sh heads      the head's tests on CUDA, the two-GPU check (on a 2-GPU
#                                              machine), interleaved step times, head_speed at gamma 0
#                                              and 1e-6, end_to_end eager
#   bash misc/benchmarks/gpu_run.sh compiled   end_to_end with torch.compile (DT and Chronos T5)
# Then here: copy the JSONs over misc/benchmarks/, merge end_to_end with --merge-into, and
#   python misc/benchmarks/head_speed.py --readme README.md --out misc/benchmarks/head_speed.json
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-misc/benchmarks/out}
mkdir -p "$OUT"
C=$(python3 -c "import scaffold; print(scaffold.git_commit())")  # git, else $FOURIER_HEAD_COMMIT, else unknown
B=misc/benchmarks
if [[ ${1:-heads} == heads ]]; then
  python3 -m pytest -q -p no:cacheprovider tests/test_fused.py tests/test_head_contract.py tests/test_fourier_head.py \
    2>&1 | tail -5 | tee "$OUT/test_head_cuda.txt"
  if [[ $(python3 -c "import torch; print(torch.cuda.device_count())") -ge 2 ]]; then
    python3 $B/multi_gpu_check.py --out "$OUT/multi_gpu_check.json" --commit "$C" 2>&1 | tee "$OUT/multi_gpu_check.txt"
  fi
  python3 $B/profile_step.py --interleaved 2>&1 | grep "===" | tee "$OUT/interleaved.txt"
  python3 $B/head_speed.py --rounds 3 --out "$OUT/head_speed.json" --commit "$C" 2>&1 | tail -12
  python3 $B/head_speed.py --gamma 1e-6 --rounds 3 --out "$OUT/head_speed_gamma1e-6.json" --commit "$C" 2>&1 | tail -12
  python3 $B/end_to_end.py --modes eager --rounds 3 --out "$OUT/end_to_end_eager.json" --commit "$C"
else
  python3 $B/end_to_end.py --models "decision transformer" "chronos T5 mini" --modes compiled --rounds 3 \
    --out "$OUT/end_to_end_compiled.json" --commit "$C" 2>&1 | grep -v "UserWarning\|warnings.warn"
fi
ls -la "$OUT"
