"""Every generated README block and table, regenerated from the committed results, equals what is committed.

Each folder's check writes nothing and exits 1 with one line naming the stale block; here all of them run
from a clean checkout, so a result committed without its README (or a README edited by hand) fails CI.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKS = {  # folder -> the command, run inside that folder
    "toy-example-synthetic": ["aggregate.py", "--check"],  # also the root README's toy-summary block
    "toy_example_audio": ["aggregate.py", "--check"],
    "imitation-learning": ["aggregate.py", "--check"],
    "time-series-forecasting": ["aggregate.py", "--check"],
    "fnet-cifar": ["aggregate.py", "--check"],
    "misc": ["check_readmes.py"],  # also the root README's head-speed block
}


@pytest.mark.parametrize("folder", sorted(CHECKS))
def test_generated_blocks_match_committed_results(folder):
    before = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, *CHECKS[folder]], cwd=ROOT / folder, capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, f"{folder}: {done.stdout[-500:]}{done.stderr[-1500:]}"
    assert "Traceback" not in done.stderr
    after = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    assert after == before, f"{folder}'s check wrote files"
