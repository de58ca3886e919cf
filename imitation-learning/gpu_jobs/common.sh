# Sourced by the GPU job scripts: wheels for gymnasium + ale-py (the GPU image lacks them), paths.
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
