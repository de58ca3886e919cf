#!/usr/bin/env bash
# Move files larger than one call's travel allowance to a GPU machine in parts, over consecutive calls.
#
# What travels to a lent machine in one call is at most 64 MiB, the repository included (~56 MB of it), so
# e.g. the Fashion-MNIST files (30 MB) or the audio features (28 MB) cannot go in one call. The machine keeps
# what earlier calls left while it stays warm, so the parts can go one call after another:
#
#   here:   bash scripts/carry_parts.sh split fnet-cifar/data/fashion-mnist     # -> .carry/part_00 ... (8 MB)
#           prints one `run` per part: carry [".carry/part_0K", ".carry/manifest"] and the command below
#   there:  bash scripts/carry_parts.sh take            # each call: moves the arrived part to /tmp/carry_parts
#   there:  bash scripts/carry_parts.sh join            # last call: checks every part's SHA-256, unpacks the
#                                                       # files at their paths in the repository
# Send the calls back to back: a machine left idle for ~30 s goes back, and the parts with it.
# Env: MB (part size in MB, default 8), CARRY_STORE (default /tmp/carry_parts).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR="$ROOT/.carry"
STORE=${CARRY_STORE:-/tmp/carry_parts}
usage() { echo "usage: bash scripts/carry_parts.sh split PATH... | take | join" >&2; exit 2; }
[[ $# -ge 1 ]] || usage

case $1 in
  split)
    shift; [[ $# -ge 1 ]] || usage
    cd "$ROOT"
    for p in "$@"; do [[ -e $p ]] || { echo "error: $p does not exist (paths are relative to the repository root)" >&2; exit 2; }; done
    rm -rf "$DIR"; mkdir -p "$DIR"
    grep -qx '/.carry/' .git/info/exclude 2>/dev/null || echo '/.carry/' >> .git/info/exclude
    tar cf - "$@" | split -b "${MB:-8}M" -d -a 2 - "$DIR/part_"
    (cd "$DIR" && sha256sum part_* > manifest)
    n=$(ls "$DIR"/part_* | wc -l)
    echo "$n part(s) of at most ${MB:-8} MB in .carry/; one call each, back to back:"
    for f in "$DIR"/part_*; do
      echo "  carry [\".carry/$(basename "$f")\", \".carry/manifest\"]  command: bash scripts/carry_parts.sh take"
    done
    echo "  then, in the last call (after its take): bash scripts/carry_parts.sh join" ;;
  take)
    mkdir -p "$STORE"
    found=0
    for f in "$DIR"/part_*; do [[ -e $f ]] && { mv "$f" "$STORE/"; found=1; }; done
    [[ -f $DIR/manifest ]] && cp "$DIR/manifest" "$STORE/manifest"
    (( found )) || { echo "error: no .carry/part_* arrived (name it in carry)" >&2; exit 1; }
    echo "parts here: $(cd "$STORE" && ls part_* | tr '\n' ' ')" ;;
  join)
    [[ -f $STORE/manifest ]] || { echo "error: no manifest in $STORE (take the parts first)" >&2; exit 1; }
    missing=$(cd "$STORE" && awk '{print $2}' manifest | while read -r p; do [[ -f $p ]] || echo "$p"; done)
    [[ -z $missing ]] || { echo "error: parts missing: $(echo $missing) (the machine went back in between?)" >&2; exit 1; }
    (cd "$STORE" && sha256sum --quiet -c manifest) || { echo "error: a part's SHA-256 differs" >&2; exit 1; }
    cat "$STORE"/part_* | tar xf - -C "$ROOT"
    echo "unpacked $(cat "$STORE"/part_* | tar tf - | wc -l) entries into $ROOT" ;;
  *) usage ;;
esac
