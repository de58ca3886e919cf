"""train.py and evaluate.py: flags refused before any work, reruns that never silently reuse other settings,
resume without repeated log lines, provenance. Tiny CPU runs in-process (a few seconds each)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import evaluate  # noqa: E402
import train  # noqa: E402

ENV = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=f"{HERE.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")



def quick(tmp_path, *extra):
    return ["--quick", "--steps", "8", "--batch-size", "4", "--ckpt-every", "4", "--log-every", "2",
            "--heldout-every", "4", "--out-dir", str(tmp_path), "--kernel-synth-dir", str(tmp_path / "ks"), *extra]


def refusal(main, argv, capsys):
    """(exit status, the message) of a command that must stop with one line."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    code, err = e.value.code, capsys.readouterr().err
    if isinstance(code, str):  # raise SystemExit("error: ...") prints it and exits 1
        code, err = 1, err + code + "\n"
    return code, err


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "--steps must be >= 1 (got 0)"),
    (["--steps", "-1"], "--steps must be >= 1 (got -1)"),
    (["--context", "0"], "--context-length must be >= 1 (got 0)"),
    (["--batch-size", "0"], "--batch-size must be >= 1 (got 0)"),
    (["--gamma", "-0.5"], "--gamma must be >= 0.0"),
    (["--precision", "fp8"], "invalid choice: 'fp8'"),
    (["--p-kernel-synth", "2"], "--p-kernel-synth must be <= 1.0 (got 2.0)"),
    (["--lr", "0"], "--lr must be > 0.0 (got 0.0)"),
    (["--lr", "-0.001"], "--lr must be > 0.0"),
    (["--num-frequencies", "0"], "--num-frequencies must be >= 1"),
    (["--min-past", "600"], "--min-past 600 is longer than --context-length 512"),
    (["--prediction-length", "100"], "--min-past + --prediction-length must be <= 128"),
])
def test_train_refuses_bad_flags(argv, message, capsys):
    code, err = refusal(train.main, argv, capsys)
    assert code == 2 and err.startswith("error:") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["--num-series", "0"], "--num-series must be >= 1 (got 0)"),
    (["--batch-size", "0"], "--batch-size must be >= 1 (got 0)"),
    (["--length", "1"], "--length must be >= 2 (got 1)"),
])
def test_data_refuses_bad_flags(argv, message, capsys):
    import data
    code, err = refusal(data.main, argv, capsys)
    assert code == 2 and err == f"error: {message}\n"


def test_wandb_without_the_package_is_refused_before_the_run_dir(tmp_path, capsys):
    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed")
    code, err = refusal(train.main, quick(tmp_path, "--wandb"), capsys)
    assert code == 2 and err == "error: --wandb needs the wandb package (pip install wandb)\n"
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_cuda_refused_on_cpu(capsys):
    for main in (train.main, lambda a: evaluate.main(["/tmp", *a])):
        code, err = refusal(main, ["--device", "cuda"], capsys)
        assert code != 0 and err.startswith("error: --device cuda") and err.count("\n") == 1


def test_cli_one_line_and_help(capsys):
    r = subprocess.run([sys.executable, "train.py", "--steps", "0"], cwd=HERE, env=ENV, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr == "error: --steps must be >= 1 (got 0)\n" and r.stdout == ""
    with pytest.raises(SystemExit) as e:
        train.main(["--help"])
    assert e.value.code == 0 and "--max-seconds" in capsys.readouterr().out


def test_evaluate_refuses_missing_runs(tmp_path, capsys):
    code, err = refusal(evaluate.main, ["/nonexistent"], capsys)
    assert code == 2 and err == "error: /nonexistent: no such run directory\n"
    (tmp_path / "empty").mkdir()
    code, err = refusal(evaluate.main, [str(tmp_path / "empty")], capsys)
    assert code == 2 and "no checkpoint.pt" in err
    code, err = refusal(evaluate.main, [str(tmp_path), "--num-samples", "0"], capsys)
    assert code == 2 and "--num-samples must be >= 1" in err
    code, err = refusal(evaluate.main, [str(tmp_path), "--datasets", "m1_yearly", "nope"], capsys)
    assert code == 2 and "'nope'" in err


def log_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


def test_interrupted_run_resumes_without_repeated_steps(tmp_path, monkeypatch):
    """Killed at step 7 (checkpoint at 4, log line at 6): the resumed run logs step 6 once, and its losses are
    those of an uninterrupted run (bit-exact resume on the CPU)."""
    clip, calls = torch.nn.utils.clip_grad_norm_, []

    def interrupt_at_step_7(*args, **kwargs):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return clip(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", interrupt_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        train.main(quick(tmp_path, "--name", "resumed"))
    monkeypatch.undo()
    run = tmp_path / "resumed"
    assert log_steps(run) == [2, 4, 6] and torch.load(run / "checkpoint.pt")["step"] == 4
    assert not (run / "train.json").exists()
    train.main(quick(tmp_path, "--name", "resumed"))
    steps = log_steps(run)
    assert steps == [2, 4, 6, 8] and all(a < b for a, b in zip(steps, steps[1:]))
    train.main(quick(tmp_path, "--name", "straight"))
    losses = [[json.loads(line)["loss"] for line in (tmp_path / n / "log.jsonl").read_text().splitlines()]
              for n in ("resumed", "straight")]
    assert losses[0] == losses[1]
    assert json.loads((run / "train.json").read_text())["steps"] == 8


def test_rerun_with_other_settings_is_refused(tmp_path, capsys):
    argv = quick(tmp_path, "--steps", "2", "--name", "r")
    train.main(argv)
    env = json.loads((tmp_path / "r" / "env.json").read_text())
    assert {"commit", "torch", "transformers", "gpu", "world_size"} <= set(env)
    assert set(json.loads((tmp_path / "r" / "config.json").read_text())) == {*train.run_config(train.parse(argv)), "quick"}
    capsys.readouterr()
    train.main(argv)  # same settings, finished: nothing to do
    assert "nothing to do" in capsys.readouterr().out
    train.main(argv + ["--device", "cpu"])  # where it runs is not a setting
    code, err = refusal(train.main, argv + ["--lr", "0.05"], capsys)
    assert code == 1 and "lr: 0.001 -> 0.05" in err and "--force" in err and err.count("\n") == 1
    train.main(argv + ["--lr", "0.05", "--force"])
    assert json.loads((tmp_path / "r" / "config.json").read_text())["lr"] == 0.05
    assert log_steps(tmp_path / "r") == [2]


def test_commit_from_fourier_head_commit(tmp_path):
    """Where the checkout has no .git, env.json's commit is FOURIER_HEAD_COMMIT (scaffold.git_commit)."""
    r = subprocess.run([sys.executable, "-c", "import scaffold; print(scaffold.git_commit())"],
                       env=dict(ENV, FOURIER_HEAD_COMMIT="abc1234", PATH=str(tmp_path)),  # no git here
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "abc1234"
    assert "GIT_COMMIT" not in (HERE / "train.py").read_text() and "GIT_COMMIT" not in (HERE / "run.sh").read_text()


def test_compile_check_flags_a_lost_gradient():
    """scripts/compile_check.py's comparison: a gradient missing or zero under compile, or off by more than
    the tolerance, is reported by name; equal gradients are not."""
    sys.path.insert(0, str(HERE / "scripts"))
    import compile_check
    g = {"a": torch.ones(3), "b": torch.ones(2), "c": torch.ones(2), "d": None}
    run = lambda grads: {"loss": 1.0, "ce": 1.0, "reg": 0.0, "grads": grads}  # noqa: E731
    same = compile_check.compare(run(g), run(dict(g)), 0.05)
    assert same["bad"] == [] and same["max_relative_difference"] == 0.0
    lost = compile_check.compare(run(g), run({"a": None, "b": torch.zeros(2), "c": 1.2 * torch.ones(2), "d": None}), 0.05)
    assert lost["bad"] == ["a", "b", "c"]
