"""CPU smoke tests: the CLI scripts run end to end as subprocesses on tiny settings."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
TINY = ["--width", "4", "--depth", "1", "--n-linear", "0", "--pe-freqs", "2", "--batch-size", "32", "--device", "cpu",
        "--no-progress"]


def run(script, *args, check=True):
    return subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=check)


def test_train_on_fashion_mnist_files_and_resume(tmp_path, fake_fashion_mnist):
    fake_fashion_mnist(tmp_path / "data" / "fashion-mnist", n_train=64, n_test=30)
    args = ["--data-dir", tmp_path / "data", "--out-dir", tmp_path / "runs", "--epochs", "2", "--eval-batch-size", "8",
            *TINY]
    run("train.py", *args)
    out = tmp_path / "runs" / "fashion-mnist" / "spectracles-realify-pesinusoidal2-w4d1l0" / "seed0"
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_test"] == 30  # 30 = 3 full eval batches of 8 + 6: no test image dropped
    assert m["epochs_run"] == 2 and len(m["history"]) == 2 and m["params"] > 0
    assert json.loads((out / "config.json").read_text())["seed"] == 0
    assert "torch" in json.loads((out / "env.json").read_text())
    assert "skip" in run("train.py", *args).stdout  # finished runs are not redone
    bad = run("train.py", *args[:-1], "--lr", "0.5", check=False)  # same dir, other settings
    assert bad.returncode != 0 and "other settings" in bad.stderr


def test_missing_data_is_one_clear_line(tmp_path):
    r = run("train.py", "--dataset", "cifar100", "--data-dir", tmp_path, "--out-dir", tmp_path, check=False)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "cifar-100-python" in r.stderr


def test_quick_grid_then_aggregate(tmp_path):
    run("grid.py", "--quick", "--device", "cpu", "--out-dir", tmp_path / "runs", "--seeds", "0", "1",
        "--variants", "head", "real-only", "fnet-patches")
    run("aggregate.py", "--runs-dir", tmp_path / "runs", "--results-dir", tmp_path / "results", "--no-docs")
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    rows = {r["variant"]: r for r in summary["rows"]}
    assert set(rows) == {"head", "real-only", "fnet-patches"}
    for r in rows.values():
        assert r["dataset"] == "synthetic" and r["n_seeds"] == 2 and r["params"] > 0
        assert set(r["accuracy"]) >= {"mean", "std"} and r["seconds_per_epoch"] > 0
    assert set(summary["provenance"]) >= {"gpu", "torch", "commit", "wall_seconds"}
    assert (tmp_path / "results" / "ablation.png").stat().st_size > 0
    # Everything re-derives from the committed per-run file alone.
    run("aggregate.py", "--runs-dir", tmp_path / "nothing", "--results-dir", tmp_path / "results", "--no-docs",
        "--from-results")
