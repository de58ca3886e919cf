# Sourced by the GPU job scripts: wheels for gymnasium + ale-py (the GPU image lacks them), paths.
# The wheels (git-ignored) are made here once, for the GPU image's Python 3.12:
#   pip download --only-binary=:all: --no-deps --python-version 3.12 --platform manylinux_2_28_x86_64 \
#     -d imitation-learning/.whl ale-py==0.12.1 gymnasium==1.4.0 farama-notifications==0.0.6
set -uo pipefail
export PYTHONUNBUFFERED=1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! python3 -c "import ale_py" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$ROOT"/imitation-learning/.whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-$ROOT/imitation-learning/runs/out}
mkdir -p "$OUT"
cd "$ROOT/imitation-learning"
