#!/usr/bin/env bash
# GPU (issue 20): the PQN agent of one game's dqn-replay-like data, the issue-19 protocol unchanged
# (pqn.py's defaults: 128 games, epsilon 1 -> 0.01 over 1M steps, sticky actions 0.25, a snapshot every 125k
# steps). pqn_agent.sh and pqn_collect.sh do the work; this script names the game and waits without losing the
# machine. Carry imitation-learning/.whl (common.sh) and, to resume, the game's checkpoint
# (imitation-learning/runs/pqn/<GAME>/checkpoint.pt).
#
#   bash imitation-learning/gpu_jobs/game_agent.sh GAME              # start or resume DETACHED for AGENT_SECONDS
#                                   (1380), returns after WAIT (90) s with the log's tail
#   MODE=wait bash imitation-learning/gpu_jobs/game_agent.sh GAME    # waits (at most LIMIT, 540 s) until the
#                                   agent exits, then status and collect in the same call: send it back to back
#                                   (a machine idle ~30 s goes back, with the agent and its snapshots)
#   MODE=status|stop|collect bash imitation-learning/gpu_jobs/game_agent.sh GAME
#   MODE=pilot bash imitation-learning/gpu_jobs/game_agent.sh GAME   # foreground, PILOT_SECONDS (180)
# GAME: BankHeist, DoubleDunk, Gravitar or Seaquest. Environment as pqn_agent.sh (TOTAL_STEPS 10000000, ...).
# collect ($OUT): pqn_<GAME>_snapshots.tgz.part*, pqn_<GAME>_checkpoint.pt, curve and log; unpack as pqn_collect.sh
# says (runs/pqn/<GAME>/), then `python publish_snapshots.py --game <GAME>` (50 -> snapshots/pqn/<GAME>, 28 MB).
#
# COST (estimate, not measured for these games): Seaquest's agent ran 8,980 agent steps/s on an H200 (32 cores;
# 7.0M steps in 780 s). The emulator's speed differs per game (CPU, random play, 8 envs, this repository's
# machine: Seaquest 5.4k, Gravitar 4.4k, BankHeist 3.8k, DoubleDunk 2.8k env steps/s), so expect ~0.5-0.8x
# Seaquest's rate: 10M steps in ~25-35 min, i.e. one full session (AGENT_SECONDS 1380) plus part of a second
# (resume: carry the checkpoint, 3.4 MB). The target returns ask for different things: Gravitar 250 is near a
# random policy (173), BankHeist 700 is near human (753), DoubleDunk -10 is above human (-16.4); check the
# curve (eval_return_last16) against the target before building the data (diagnostics.py refuses data whose
# best episode is below it).
set -uo pipefail
GAMES="Seaquest BankHeist DoubleDunk Gravitar"  # as atari.GAMES
GAME=${1:-}
[[ -n $GAME && " $GAMES " == *" $GAME "* ]] || { echo "error: unknown game '${GAME}' (bash $0 GAME; GAME one of ${GAMES// /, })" >&2; exit 2; }
export GAME
HERE=$(cd "$(dirname "$0")" && pwd)
MODE=${MODE:-start}
case $MODE in
  start|pilot|status|stop) MODE=$MODE bash "$HERE/pqn_agent.sh" ;;
  collect) bash "$HERE/pqn_collect.sh" ;;
  wait)
    PIDFILE=$HERE/../runs/logs/pqn_$GAME.pid
    [[ -f $PIDFILE ]] || { echo "no agent was started on this machine (start it first)"; exit 1; }
    t=0
    while (( t < ${LIMIT:-540} )) && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; do sleep 15; t=$((t + 15)); done
    echo "waited $t s; agent $(kill -0 "$(cat "$PIDFILE")" 2>/dev/null && echo still running || echo finished)"
    MODE=status bash "$HERE/pqn_agent.sh"
    bash "$HERE/pqn_collect.sh" ;;
  *) echo "error: MODE must be start, pilot, status, wait, stop or collect" >&2; exit 2 ;;
esac
