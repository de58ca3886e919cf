#!/usr/bin/env bash
# Create .venv (once) and install this repository into it with the given extras.
#   bash scripts/bootstrap.sh [EXTRAS]          (EXTRAS default: dev)
# Environment: VENV (default <repo>/.venv), PYTHON (default python3), TORCH_SPEC (default torch==2.13.0).
# A torch already importable in the venv is kept, so a CUDA build installed beforehand stays.
# Re-running is quick: a stamp records what was installed for this pyproject.toml.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
EXTRAS=${1:-dev}
PYTHON=${PYTHON:-python3}

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "error: Python >= 3.10 is needed ($PYTHON is $("$PYTHON" -V 2>&1))" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp="$VENV/.installed-${EXTRAS//,/-}-$(cat "$ROOT/pyproject.toml" | cksum | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
  if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    # Installing torch first, pinned, keeps pip from resolving a multi-GB CUDA build as a dependency.
    "$VENV/bin/python" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
  fi
  "$VENV/bin/python" -m pip install -q -e "$ROOT[$EXTRAS]"
  if [[ ",$EXTRAS," == *",audio,"* || ",$EXTRAS," == *",dev,"* ]]; then
    # the SoundFont renderer; its declared pyaudio dependency is unused and needs PortAudio headers
    "$VENV/bin/python" -m pip install -q --no-deps tinysoundfont
  fi
  touch "$stamp"
fi
