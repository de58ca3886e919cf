#!/usr/bin/env bash
# GPU: the PQN agent of the dqn-replay-like data (issue 19), one game. Carry imitation-learning/.whl (ale-py,
# gymnasium, farama-notifications wheels for Python 3.12) and, to resume a run, its checkpoint
# (imitation-learning/runs/pqn/<game>/checkpoint.pt; the run's snapshots need not travel).
#
#   MODE=pilot bash imitation-learning/gpu_jobs/pqn_agent.sh   # foreground, PILOT_SECONDS (180) into
#                               runs/pqn_pilot/<game>: the first rows of the learning curve and the steps/s
#                               (AGENT_OUT=runs/pqn/<game>: the pilot is the first minutes of the real run)
#   bash imitation-learning/gpu_jobs/pqn_agent.sh              # start or resume DETACHED (setsid nohup) for
#                               AGENT_SECONDS (1380); returns after WAIT (90) s with the log's tail
#   MODE=status bash imitation-learning/gpu_jobs/pqn_agent.sh  # log tail, last curve rows, GPU use; as the
#                               next commands: `sleep 540; MODE=status bash imitation-learning/gpu_jobs/pqn_agent.sh`
#   MODE=stop bash imitation-learning/gpu_jobs/pqn_agent.sh    # SIGTERM: the agent saves after its update, exits
# Then gpu_jobs/pqn_collect.sh puts snapshots, curve, checkpoint and log into $OUT.
# Environment: GAME (Seaquest), TOTAL_STEPS (10000000; may be raised when resuming), AGENT_SECONDS, PILOT_SECONDS,
# WAIT, AGENT_OUT (default runs/pqn/<game>; pilot: runs/pqn_pilot/<game>), EXTRA (more pqn.py flags).
source "$(dirname "$0")/common.sh"
GAME=${GAME:-Seaquest}
MODE=${MODE:-start}
AGENT_OUT=${AGENT_OUT:-$([[ $MODE == pilot ]] && echo runs/pqn_pilot/$GAME || echo runs/pqn/$GAME)}
mkdir -p runs/logs
LOG=runs/logs/pqn_$GAME.log
PIDFILE=runs/logs/pqn_$GAME.pid
running() { [[ -f $PIDFILE ]] && kill -0 "$(cat $PIDFILE)" 2>/dev/null; }
curve_tail() {
  python3 - "$AGENT_OUT/curve.json" <<'PY'
import json, sys
from pathlib import Path
p = Path(sys.argv[1])
if not p.exists():
    sys.exit(print(f"no {p} yet"))
c = json.loads(p.read_text())
for r in c["rows"][-8:]:
    print({k: r[k] for k in ("agent_steps", "seconds", "epsilon", "train_return_last100", "eval_return_last16",
                             "td_loss", "agent_steps_per_second")})
print(f"{len(c['snapshots'])} snapshots, last {c['snapshots'][-1]['file'] if c['snapshots'] else None}; "
      f"sessions (from, to, steps/s): "
      f"{[(s['start_agent_steps'], s['end_agent_steps'], s['agent_steps_per_second']) for s in c['sessions']]}")
PY
}

case $MODE in
  pilot)
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    python3 pqn.py --game "$GAME" --total-steps "${TOTAL_STEPS:-10000000}" --max-seconds "${PILOT_SECONDS:-180}" \
      --out-dir "$AGENT_OUT" ${EXTRA:-} 2>&1 | tee "$OUT/pqn_pilot.log"
    cp "$AGENT_OUT/curve.json" "$OUT/pqn_pilot_curve.json"
    curve_tail ;;
  start)
    if running; then echo "already running (pid $(cat $PIDFILE))"; tail -n 5 "$LOG"; exit 0; fi
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    touch "runs/logs/pqn_$GAME.started"  # pqn_collect.sh brings back the snapshots newer than this
    setsid nohup python3 pqn.py --game "$GAME" --total-steps "${TOTAL_STEPS:-10000000}" \
      --max-seconds "${AGENT_SECONDS:-1380}" --out-dir "$AGENT_OUT" ${EXTRA:-} >> "$LOG" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    echo "started pid $(cat $PIDFILE), log imitation-learning/$LOG"
    sleep "${WAIT:-90}"
    tail -n 20 "$LOG" ;;
  status)
    running && echo "running (pid $(cat $PIDFILE))" || echo "not running"
    tail -n 6 "$LOG"
    curve_tail
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader ;;
  stop)
    running && kill -TERM "$(cat $PIDFILE)" && echo "SIGTERM sent to $(cat $PIDFILE)"
    for _ in $(seq 60); do running || break; sleep 2; done
    tail -n 3 "$LOG" ;;
  *) echo "MODE must be pilot, start, status or stop" >&2; exit 2 ;;
esac
