# Sourced by the GPU job scripts: wheels for gymnasium + ale-py (the GPU image lacks them), paths, and the steps
# the DT calls share. The wheels (git-ignored, for the GPU image's Python 3.12) are made here once per checkout:
#   bash scripts/gpu_carry.sh prepare imitation      # -> imitation-learning/.whl
# FOURIER_HEAD_COMMIT=<commit> is the commit the provenance files record (the GPU machine has no .git).
set -uo pipefail
export PYTHONUNBUFFERED=1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! python3 -c "import ale_py" 2>/dev/null; then
  bash "$ROOT/scripts/gpu_carry.sh" check imitation > /dev/null || { bash "$ROOT/scripts/gpu_carry.sh" check imitation; exit 1; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$ROOT"/imitation-learning/.whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
if [[ ! -d $ROOT/.git && -z ${FOURIER_HEAD_COMMIT:-} ]]; then
  echo "warning: no .git and no FOURIER_HEAD_COMMIT: the results will record commit 'unknown'" >&2
fi
OUT=${OUT:-$ROOT/imitation-learning/runs/out}
mkdir -p "$OUT"
cd "$ROOT/imitation-learning"

# ppo_data <name>: the ppo-sampled data from the committed snapshots (unless this machine built it already),
# its manifest copied to $OUT/<name>
ppo_data() {
  [[ -f data/Seaquest/manifest.json ]] || python3 make_dataset.py --workers 8 --num-envs 16 2>&1 | grep -v "it/s"
  cp data/Seaquest/manifest.json "$OUT/$1"
}

# pack_runs <archive> <paths...>: the run folders without checkpoints into $OUT/<archive>
pack_runs() {
  local archive=$1; shift
  tar czf "$OUT/$archive" --exclude ckpt.pt --exclude ckpt.pt.tmp "$@"
}

# start_copier <seconds> <archive> <paths...>: pack_runs every <seconds> while the runs go on (the last copy
# survives a lost machine); stop it with `kill $COPIER`
start_copier() {
  local every=$1 archive=$2; shift 2
  ( while sleep "$every"; do pack_runs "$archive.tmp" "$@" 2>/dev/null && mv "$OUT/$archive.tmp" "$OUT/$archive"; done ) &
  COPIER=$!
}
