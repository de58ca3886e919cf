#!/usr/bin/env bash
# GPU (issue 19, item 4): the dqn-replay-like data and the DT comparison on it, for Seaquest: game_dt.sh Seaquest
# (one script for every game; its logs, pids and archives are dt_Seaquest_*). Runs on 1 or 2 GPUs.
# Carry imitation-learning/.whl (ale-py, gymnasium, farama-notifications for Python 3.12); nothing else: the data
# is rebuilt from the committed PQN snapshots on every machine, and no DT checkpoint travels (see PLAN).
#
#   bash imitation-learning/gpu_jobs/dqn_dt.sh               # MODE=start: data (unless built on this machine),
#        diagnostics (stops with exit 1 if it refuses the data), then the runs of HEADS x SEEDS DETACHED (setsid),
#        spread round-robin over the GPUs; returns after WAIT (60) s with the logs' tails
#   MODE=status bash imitation-learning/gpu_jobs/dqn_dt.sh   # epochs done per run, last lines, GPU use;
#        $OUT/dt_Seaquest_partial.tgz (histories and logs so far, no checkpoints)
#   MODE=wait bash imitation-learning/gpu_jobs/dqn_dt.sh     # waits (LIMIT, 540 s) until every run is done, then
#        status and collect in one call (send these back to back: a machine idle 30 s goes back with its runs)
#   MODE=collect bash imitation-learning/gpu_jobs/dqn_dt.sh  # $OUT/dt_Seaquest_runs.tgz: run folders without
#        checkpoints, logs, the data's manifest and diagnostics, the data figure (a few MB; 1 file)
#   MODE=stop bash imitation-learning/gpu_jobs/dqn_dt.sh     # ends the runs this script started (by pid)
# Environment: SEEDS (default "123 231"), HEADS (default "linear fourier8 fourier14"), WORKERS (30: dataset
# processes, one (split, snapshot) part each, for 32 cores), WAIT (60), EXTRA (more train.py flags),
# FOURIER_HEAD_COMMIT (the commit; the machine has no .git). Finished runs (metrics.json) are skipped; a run
# whose process died resumes from its checkpoint (ckpt.pt, every 500 steps) when started again on the SAME machine.
# Unpack the results here, from the repository root:
#   tar xzf <files_at>/dt_Seaquest_runs.tgz -C imitation-learning
#   cd imitation-learning && python aggregate.py --update-readme && python plot.py
#
# PLAN (1 GPU: one seed, 3 runs, per session, SEEDS=123 then 231, 312, 42; 2 GPUs: two seeds per session; times from the H100 measurements in README/results/gpu_calls.json, not yet measured here):
# - Why not all 12 runs in one session, 6 per GPU: with 6 runs sharing an H100 a full-length run took 1,352 s of
#   wall time (22.5 min; 4 sharing: 1,025-1,030 s); with the data (~2 min), the diagnostics and the machine's start
#   (~1.5 min) that passes the 30 minutes a machine (and a session's device time) lasts. Resuming in a later
#   session does not fit either: a DT checkpoint with its optimizer is ~24 MB (~25 MB on this data: its longer
#   episodes enlarge the timestep embedding), and what travels in is 64 MiB in all, of which the repository
#   takes ~52 MB (`git ls-files | xargs du -ch`: 28 MB of them the 50 PQN snapshots that the data needs) and
#   the wheels 3.6 MB; ~8 MB are left, not one checkpoint. Carrying fewer snapshots would change the data.
# - So the 12 runs are split by seed over two sessions; every run finishes inside its session and only small
#   result folders come back (no checkpoint travels in either direction). Each session, on nvidia-h200-x2:
#     call 1  FOURIER_HEAD_COMMIT=<commit> SEEDS="123 231" bash imitation-learning/gpu_jobs/dqn_dt.sh
#             wheels, data (550k transitions from 50 snapshots, 30 workers: ~1-3 min), diagnostics (~0.5 min),
#             6 runs started (3 per GPU); ~4-6 min. Its $OUT: the manifest, diagnostics.json, the data figure.
#             If the diagnostics refuse the data (exit 1), stop here: no DT run is started.
#     call 2+ MODE=wait bash imitation-learning/gpu_jobs/dqn_dt.sh   (each call: at most 9 min, then the curves
#             so far and every finished run come back; repeat until "runs still going: 0")
#   Estimate per session: start ~1.5 min + call 1 ~5 min + DT 3 runs per GPU ~14-17 min (5 epochs of ~500k windows,
#   5 evaluations of 10 episodes, a final evaluation of 50) + collect ~0.5 min = ~21-24 min of the 30.
#   Session 2: the same with SEEDS="312 42". Its data must have the same hashes (aggregate.py checks each run's
#   env.json against the manifest: provenance.data_hashes_match_runs).
# - If a machine goes back before its runs finish, their folders are lost with it (collect first when in doubt):
#   rerun those seeds in the next session, from scratch.
exec bash "$(dirname "$0")/game_dt.sh" Seaquest
