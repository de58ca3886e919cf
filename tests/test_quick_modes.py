"""Every folder's documented `bash <folder>/run.sh --quick` runs verbatim and changes no tracked file.

The six quick chains together take ~6-7 min on two CPU cores, about half of CI's time budget, and each
folder's own tests already run the pieces of its chain, so this test is opt-in:

    FOURIER_HEAD_QUICK_MODES=1 .venv/bin/python -m pytest -q tests/test_quick_modes.py

It runs them in a fresh clone of this checkout's HEAD (the outputs go to the clone's runs/quick/ folders,
which git ignores) and then compares `git status` there with a clean tree.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["toy-example-synthetic", "toy_example_audio", "imitation-learning", "time-series-forecasting",
           "fnet-cifar", "misc"]
opt_in = pytest.mark.skipif(os.environ.get("FOURIER_HEAD_QUICK_MODES") != "1",
                            reason="opt-in (~6-7 min): FOURIER_HEAD_QUICK_MODES=1")


@pytest.mark.parametrize("folder", FOLDERS)
@pytest.mark.parametrize("where", ["root", "folder"])
def test_help_prints_and_exits_from_anywhere(folder, where):
    cmd = ["bash", f"{folder}/run.sh" if where == "root" else "run.sh", "--help"]
    cwd = ROOT if where == "root" else ROOT / folder
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and len(done.stdout.splitlines()) >= 5 and done.stderr == "", done.stderr


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    path = tmp_path_factory.mktemp("quick") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(path)], check=True)
    return path


@opt_in
@pytest.mark.parametrize("folder", FOLDERS)
def test_quick_mode_runs_verbatim_and_leaves_the_tree_clean(clone, folder):
    env = {**os.environ, "PYTHON": sys.executable, "MPLBACKEND": "Agg"}
    done = subprocess.run(["bash", f"{folder}/run.sh", "--quick"], cwd=clone, capture_output=True, text=True,
                          env=env, timeout=900)
    assert done.returncode == 0, f"{folder}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    assert status == "", f"{folder}'s quick run changed the tree:\n{status}"
