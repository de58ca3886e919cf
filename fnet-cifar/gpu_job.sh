#!/usr/bin/env bash
# The convergence grid (11 variants x {Fashion-MNIST, synthetic} x seeds 0 1 2, 30 epochs) on GPUs, detached.
#   bash fnet-cifar/gpu_job.sh start          start it in the background (returns at once); writes runs/converged/
#   bash fnet-cifar/gpu_job.sh status         finished runs, running shards, last log lines
#   bash fnet-cifar/gpu_job.sh collect DIR    bundle the results into two files in DIR:
#                                             fnet_converged.tar.gz (configs, metrics, logs, job.json; ~1 MB)
#                                             fnet_models.tar.gz (model.pt of every run; ~20 MB)
# Then, in the repository: tar xzf fnet_converged.tar.gz -C fnet-cifar && python fnet-cifar/aggregate.py
#   --runs fnet-cifar/runs/converged && python fnet-cifar/plot.py
# Needs fnet-cifar/data/fashion-mnist/*.gz on the GPU machine (30 MB, ignored by git; `bash scripts/gpu_carry.sh
# prepare fnet` makes them here), and
# FOURIER_HEAD_COMMIT=<commit> when the machine has no .git (env.json records it). The repository itself is
# ~56 MB of the 64 MiB one call may carry, so the data goes in 8 MB parts over 4 calls sent back to back:
#   here:  bash scripts/carry_parts.sh split fnet-cifar/data/fashion-mnist
#   calls: carry [".carry/part_0K", ".carry/manifest"], command `bash scripts/carry_parts.sh take` (K = 0..3);
#          the 4th adds `&& bash scripts/carry_parts.sh join && bash fnet-cifar/gpu_job.sh start`
# Budget: the whole grid (~2.1 h single-stream, estimated) does not fit a 30-minute machine; run one seed per
# session on nvidia-h200-x2 (SEEDS=0, then 1, then 2; ~40 min single-stream each, ~15-20 min on 2 GPUs x 2),
# collect before the machine goes back.
# Env: GPUS (default: every visible GPU), PER_GPU (shards run at once per GPU, default 2), SEEDS ("0 1 2"),
#      EPOCHS (30), EXTRA (more grid.py flags, e.g. "--compile"), SKIP (what is not run there: <variant> or
#      <dataset>/<variant>, e.g. the runs already trained on a CPU by the same grid.py into runs/converged here).
# Work: 12 shards (per seed: Fashion-MNIST in 3 variant groups, synthetic in 1). Estimated single-stream cost,
# eager, from the short grid's H100 epoch times (Spectracles 10 s/Fashion-MNIST epoch, 1.8 s/synthetic epoch;
# patch models 4-7 s) and, for the new rows, `grid.py --time-batches` on a CPU (seed-run3 and the anchors cost
# a fraction of `head`): about 7,500 s = 2.1 h. Wall: ~1.5 h on one GPU (PER_GPU=2, if sharing gives ~1.4x),
# ~35 min on 4 GPUs, ~22 min on 8 (the longest shard: ~900 s + the next). Not yet measured on a GPU.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
PY=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # scaffold.py, plot_style.py when the repo is not pip-installed
OUT=runs/converged
SEEDS=${SEEDS:-"0 1 2"}
EPOCHS=${EPOCHS:-30}
PER_GPU=${PER_GPU:-2}
GROUP_A="head real-only pe-none"
GROUP_B="pe-simple legacy-layout seed-run3"
GROUP_C="fnet-patches attention-patches logistic-regression mlp cnn"
ALL="$GROUP_A $GROUP_B $GROUP_C"

keep() {  # keep <dataset> <variants...>: those SKIP names neither as <variant> nor as <dataset>/<variant>
  local d=$1 v out=()
  shift
  for v in "$@"; do [[ " ${SKIP:-} " == *" $v "* || " ${SKIP:-} " == *" $d/$v "* ]] || out+=("$v"); done
  echo "${out[*]}"
}

shards() {  # one line per shard, most expensive first: "<dataset> <seed> <variants...>" (empty ones left out)
  local s group
  for group in "fashion-mnist:$GROUP_A" "fashion-mnist:$GROUP_B" "synthetic:$ALL" "fashion-mnist:$GROUP_C"; do
    set -- $(keep ${group%%:*} ${group#*:})
    [ $# -gt 0 ] || continue
    for s in $SEEDS; do echo "${group%%:*} $s $*"; done
  done
}

worker() {  # worker <slot> <n_slots> <gpu>: runs shards slot, slot + n_slots, ... one after another
  local slot=$1 n=$2 gpu=$3 i=0 rc=0
  while read -r dataset seed variants; do
    if (( i % n == slot )); then
      CUDA_VISIBLE_DEVICES=$gpu "$PY" grid.py --datasets "$dataset" --seeds "$seed" --variants $variants \
        --epochs-fmnist "$EPOCHS" --epochs-synthetic "$EPOCHS" --device cuda --out-dir "$OUT" ${EXTRA:-} \
        >> "$OUT/logs/worker$slot.log" 2>&1 || rc=1
    fi
    i=$((i + 1))
  done < <(shards)
  return $rc
}

run_all() {
  local t0 gpus n pids=() failed=0
  t0=$(date +%s)
  gpus=(${GPUS:-$(nvidia-smi --query-gpu=index --format=csv,noheader | tr '\n' ' ')})
  n=$(( ${#gpus[@]} * PER_GPU ))
  echo "$(date -u +%FT%TZ) start: ${#gpus[@]} GPU(s) x $PER_GPU, $(shards | wc -l) shards, epochs $EPOCHS"
  for ((slot = 0; slot < n; slot++)); do
    worker "$slot" "$n" "${gpus[$((slot % ${#gpus[@]}))]}" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
  local t1; t1=$(date +%s)
  "$PY" - "$OUT/job.json" "$((t1 - t0))" "${#gpus[@]}" "$PER_GPU" "$failed" <<'PY'
import sys
from scaffold import write_json
path, wall, gpus, per_gpu, failed = sys.argv[1], *map(int, sys.argv[2:])
write_json(path, {"wall_seconds": wall, "gpus": gpus, "shards_per_gpu": per_gpu, "failed_workers": failed})
PY
  echo "$(date -u +%FT%TZ) done in $((t1 - t0)) s, $failed failed worker(s)"
}

case "${1:-}" in
  start)
    "$PY" -c "from data import load_fashion_mnist; load_fashion_mnist('data')" || exit 1  # fail now, not later
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: no CUDA GPU here')"
    git -C "$ROOT" rev-parse HEAD > /dev/null 2>&1 || [ -n "${FOURIER_HEAD_COMMIT:-}" ] \
      || echo "warning: no .git and no FOURIER_HEAD_COMMIT: env.json will say commit 'unknown'" >&2
    mkdir -p "$OUT/logs"
    setsid nohup bash "$0" _run > "$OUT/logs/job.log" 2>&1 < /dev/null &
    echo $! > "$OUT/job.pid"
    echo "started (pid $(cat "$OUT/job.pid")); follow with: bash fnet-cifar/gpu_job.sh status"
    ;;
  _run) run_all ;;
  status)
    total=$(shards | awk '{n += NF - 2} END {print n}')
    echo "finished runs: $(find "$OUT" -name metrics.json 2>/dev/null | wc -l) (this job's shards hold $total)"
    if [ -f "$OUT/job.pid" ] && kill -0 "$(cat "$OUT/job.pid")" 2>/dev/null; then echo "job running"; else echo "job not running"; fi
    tail -n 3 "$OUT/logs/job.log" 2>/dev/null || true
    for f in "$OUT"/logs/worker*.log; do [ -f "$f" ] && echo "$f: $(tail -n 1 "$f")"; done
    ;;
  collect)
    dest=${2:?usage: gpu_job.sh collect DIR}
    mkdir -p "$dest"
    tar czf "$dest/fnet_converged.tar.gz" --exclude=model.pt runs/converged
    find runs/converged -name model.pt -print0 | tar czf "$dest/fnet_models.tar.gz" --null -T -
    ls -l "$dest"/fnet_*.tar.gz
    ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ] ;;
esac
