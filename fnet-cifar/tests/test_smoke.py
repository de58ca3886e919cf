"""The command-line chain on tiny settings: train -> evaluate, run identity, invalid values, the quick chain
in a temporary copy (nothing committed changes), aggregate's guards and its README check."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1]
TINY = ["--width", "4", "--depth", "1", "--n-linear", "0", "--pe-freqs", "2", "--batch-size", "32", "--device", "cpu",
        "--no-progress"]


def one_line_exit(capsys, fn, argv, code=None):
    """Run a CLI main in-process; return (exit code, the one stderr line)."""
    with pytest.raises(SystemExit) as stop:
        fn(argv)
    err = capsys.readouterr().err.strip()
    status = stop.value.code
    if isinstance(status, str):  # sys.exit("error: ...") prints the message and exits 1
        err, status = status, 1
    assert status != 0 and (code is None or status == code)
    assert len(err.splitlines()) == 1 and err.startswith("error:") and "Traceback" not in err, err
    return err


def test_train_evaluate_and_run_identity(tmp_path, fake_fashion_mnist, capsys):
    import evaluate
    import train

    fake_fashion_mnist(tmp_path / "data" / "fashion-mnist", n_train=64, n_test=30)
    args = ["--data-dir", str(tmp_path / "data"), "--out-dir", str(tmp_path / "runs"), "--epochs", "2",
            "--eval-batch-size", "8", *TINY]
    train.main(args)
    out = tmp_path / "runs" / "fashion-mnist" / "spectracles-realify-pesinusoidal2-w4d1l0" / "seed0"
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_test"] == 30  # 30 = 3 full eval batches of 8 + 6: no test image dropped
    assert m["epochs_run"] == 2 and len(m["history"]) == 2 and m["params"] > 0 and m["steps"] == 4
    assert 0 < m["test/top_class_share"] <= 1 and isinstance(m["collapsed"], bool)
    assert json.loads((out / "config.json").read_text())["quick"] is False
    assert json.loads((out / "env.json").read_text())["commit"]
    capsys.readouterr()
    train.main(args)  # finished with the same settings: skipped
    assert "skip" in capsys.readouterr().out
    err = one_line_exit(capsys, train.main, [*args, "--lr", "0.5"])  # same directory, other settings
    assert "other settings (lr: 0.001 -> 0.5)" in err and "--force" in err
    train.main([*args, "--lr", "0.5", "--force"])
    assert json.loads((out / "config.json").read_text())["lr"] == 0.5
    evaluate.main([str(out), "--device", "cpu"])
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["test/acc"] == pytest.approx(scored["logged test/acc"])


def test_anchor_runs_through_the_same_loop(tmp_path, fake_fashion_mnist):
    import train

    fake_fashion_mnist(tmp_path / "data" / "fashion-mnist", n_train=40, n_test=20)
    for model in ("logistic-regression", "mlp", "cnn"):
        train.main(["--model", model, "--data-dir", str(tmp_path / "data"), "--out-dir", str(tmp_path / "runs"),
                    "--epochs", "1", "--variant", model, "--device", "cpu", "--no-progress"])
        m = json.loads((tmp_path / "runs" / "fashion-mnist" / model / "seed0" / "metrics.json").read_text())
        assert m["n_test"] == 20 and m["params"] > 0


@pytest.mark.parametrize("argv,message", [
    (["--epochs", "0"], "--epochs must be >= 1 (got 0)"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--width", "0"], "--width must be >= 1"),
    (["--lr", "-1"], "--lr must be > 0.0"),
    (["--lr", "inf"], "--lr must be a finite number"),
    (["--pe", "nosuch"], "argument --pe: invalid choice"),
    (["--model", "resnet"], "argument --model: invalid choice"),
    (["--dataset", "cifar10"], "argument --dataset: invalid choice"),
    (["--input-channels", "2"], "argument --input-channels: invalid choice"),
    (["--model", "attention", "--dim", "10", "--heads", "4"], "--heads 4 does not divide --dim 10"),
])
def test_train_refuses_invalid_values_before_any_work(argv, message, tmp_path, capsys):
    import train

    err = one_line_exit(capsys, train.main, [*argv, "--out-dir", str(tmp_path / "runs")])
    assert message in err
    assert not (tmp_path / "runs").exists()  # nothing written


def test_device_and_data_errors_are_one_line(tmp_path, capsys):
    import torch

    import train

    if not torch.cuda.is_available():
        assert "no CUDA GPU" in one_line_exit(capsys, train.main, ["--device", "cuda", "--out-dir", str(tmp_path)])
    err = one_line_exit(capsys, train.main, ["--dataset", "cifar100", "--data-dir", str(tmp_path),
                                             "--out-dir", str(tmp_path / "runs")])
    assert "cifar-100-python.tar.gz" in err


@pytest.mark.parametrize("script,argv,message", [
    ("grid", ["--epochs-fmnist", "0"], "--epochs-fmnist must be >= 1"),
    ("grid", ["--variants", "nosuch"], "--variants must be one of head"),
    ("grid", ["--seeds", "-1"], "--seeds must be >= 0"),
    ("aggregate", ["--runs", "/nonexistent"], "no such folder"),
    ("evaluate", ["/nonexistent"], "not a finished run directory"),
    ("plot", ["--results", "/nonexistent"], "not found"),
])
def test_other_scripts_refuse_bad_input(script, argv, message, capsys):
    module = __import__(script)
    assert message in one_line_exit(capsys, module.main, argv)


def digest(folder: Path) -> dict:
    files = [folder / "README.md", *sorted((folder / "results").rglob("*")), *sorted((folder / "figures").rglob("*"))]
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def test_quick_chain_writes_only_under_runs_quick(tmp_path):
    """`run.sh --quick` in a copy of the folder: committed results, figures and README stay byte-identical."""
    copy = tmp_path / "fnet-cifar"
    shutil.copytree(HERE, copy, ignore=shutil.ignore_patterns("runs", "data", "__pycache__", "tests"))
    before = digest(copy)
    assert before == digest(HERE)
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "HOME": str(tmp_path)}
    r = subprocess.run(["bash", str(copy / "run.sh"), "--quick", "--variants", "head", "mlp"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert digest(copy) == before
    quick = copy / "runs" / "quick"
    table = (quick / "results" / "table.md").read_text()
    assert table.startswith("**Quick run**") and "paper" not in table.lower()
    assert (quick / "figures" / "ablation.png").stat().st_size > 0
    assert {p.parent.parent.name for p in (quick / "synthetic").glob("*/seed0/metrics.json")} == {"head", "mlp"}
    help_text = subprocess.run(["bash", str(copy / "run.sh"), "--help"], capture_output=True, text=True, env=env)
    assert help_text.returncode == 0 and "--quick" in help_text.stdout and not (copy / "runs" / "converged").exists()


def test_aggregate_refuses_quick_runs_into_committed_results(tmp_path, monkeypatch, capsys):
    import aggregate
    import train

    train.main(["--quick", "--out-dir", str(tmp_path / "quick"), "--no-progress", "--model", "logistic-regression"])
    results = tmp_path / "results"
    shutil.copytree(HERE / "results", results)
    monkeypatch.setattr(aggregate, "RESULTS", results)  # "committed" = this copy
    before = digest_dir(results)
    assert "quick runs never go into the committed results" in one_line_exit(
        capsys, aggregate.main, ["--runs", str(tmp_path / "quick"), "--results", str(results)])
    assert digest_dir(results) == before


def digest_dir(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_readme_block_check(tmp_path, monkeypatch):
    import aggregate

    assert aggregate.check_committed() == 0  # the committed README block is what results/ gives
    readme = tmp_path / "README.md"
    readme.write_text((HERE / "README.md").read_text().replace("| `head` |", "| `head (edited)` |", 1))
    monkeypatch.setattr(aggregate, "README", readme)
    assert aggregate.check_committed() == 1
    summary = json.loads((HERE / "results" / "summary.json").read_text())
    for row in summary["rows"]:  # issue 18: every row says how long and over how many seeds
        assert row["epochs"] >= 1 and row["n_seeds"] >= 1 and row["variant"]


def test_aggregate_adds_a_new_grid_beside_the_committed_one(tmp_path, fake_fashion_mnist):
    """What happens when a grid's runs come back (the GPU job's runs/converged/): its rows join the committed
    ones, which stay as they were. (Named "trial": the committed results already hold a converged grid.)"""
    import aggregate
    import plot
    import train

    fake_fashion_mnist(tmp_path / "data" / "fashion-mnist", n_train=40, n_test=20)
    runs = tmp_path / "trial"
    for seed in (0, 1):
        train.main(["--model", "mlp", "--variant", "mlp", "--seed", str(seed), "--epochs", "2", "--device", "cpu",
                    "--data-dir", str(tmp_path / "data"), "--out-dir", str(runs), "--no-progress"])
    (runs / "job.json").write_text(json.dumps({"wall_seconds": 12, "gpus": 1}))
    results = tmp_path / "results"
    shutil.copytree(HERE / "results", results)
    aggregate.main(["--runs", str(runs), "--results", str(results), "--no-readme"])
    summary = json.loads((results / "summary.json").read_text())
    new = [r for r in summary["rows"] if r["grid"] == "trial"]
    assert [(r["variant"], r["model"], r["epochs"], r["n_seeds"]) for r in new] == [("mlp", "mlp", 2, 2)]
    old = json.loads((HERE / "results" / "summary.json").read_text())
    assert [r for r in summary["rows"] if r["grid"] != "trial"] == old["rows"]  # committed rows untouched
    assert summary["provenance"]["trial"]["wall_seconds"] == 12
    assert "grid `trial`" in (results / "table.md").read_text()
    plot.main(["--results", str(results), "--figures", str(tmp_path / "figures")])
    assert (tmp_path / "figures" / "ablation.png").stat().st_size > 0
