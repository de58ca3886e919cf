#!/usr/bin/env bash
# GPU: bring the PQN run back through $OUT (at most 8 files of 16 MiB each, 64 MiB together):
#   pqn_<game>_snapshots.tgz.partN   the policy_*.pt snapshots written since pqn_agent.sh started on this
#                                    machine (ALL=1: every one), with curve.json, tar.gz split in 15 MiB parts
#   pqn_<game>_checkpoint.pt         resume state (carry it back to the next GPU session)
#   pqn_<game>_curve.json, pqn_<game>.log
# Unpack here, from the repository root, into the git-ignored run folder (nothing there travels uncarried):
#   mkdir -p imitation-learning/runs/pqn/Seaquest
#   cat <files_at>/pqn_Seaquest_snapshots.tgz.part* | tar xzf - -C imitation-learning/runs/pqn/Seaquest
#   cp <files_at>/pqn_Seaquest_checkpoint.pt imitation-learning/runs/pqn/Seaquest/checkpoint.pt
# then, once the agent is done: python imitation-learning/publish_snapshots.py (50 -> snapshots/pqn/Seaquest).
# Run it while the agent is still running too: it takes what has been saved so far (the checkpoint and the
# snapshots are written atomically).
source "$(dirname "$0")/common.sh"
GAME=${GAME:-Seaquest}
AGENT_OUT=${AGENT_OUT:-runs/pqn/$GAME}
MARK=runs/logs/pqn_$GAME.started
cd "$AGENT_OUT" || exit 1
if [[ -f "$OLDPWD/$MARK" && -z "${ALL:-}" ]]; then
  files=$(find . -maxdepth 1 -name 'policy_*.pt' -newer "$OLDPWD/$MARK" | sort)
else
  files=$(find . -maxdepth 1 -name 'policy_*.pt' | sort)
fi
echo "$(echo $files | wc -w) snapshots, $(du -ch $files curve.json 2>/dev/null | tail -1 | cut -f1) in all"
tar czf - $files curve.json | split -b 15M -d -a 1 - "$OUT/pqn_${GAME}_snapshots.tgz.part"
cp checkpoint.pt "$OUT/pqn_${GAME}_checkpoint.pt"
cp curve.json "$OUT/pqn_${GAME}_curve.json"
cd "$OLDPWD"
cp "runs/logs/pqn_$GAME.log" "$OUT/pqn_$GAME.log" 2>/dev/null
ls -la "$OUT"
n=$(ls "$OUT" | wc -l); size=$(du -sm "$OUT" | cut -f1)
(( n > 8 || size > 63 )) && echo "WARNING: $n files, $size MiB in \$OUT: more than comes back (8 files, 64 MiB)"
exit 0
