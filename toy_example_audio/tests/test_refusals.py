"""Every documented script refuses a bad flag as a user sees it: a subprocess that exits non-zero with one
stderr line starting with "error:", no traceback, and nothing written (the run would start after parsing)."""

import subprocess
import sys

import pytest
import torch

# The cases issue 16 names, as subprocesses (each pays torch's import: a few seconds); the other scripts' and
# fields' refusals are checked in-process below and in test_train.py / test_pretrained.py.
CASES = [
    ("train.py", ["--epochs", "0"]),          # once saved an untrained run marked finished
    ("train.py", ["--epochs", "-1"]),
    ("train.py", ["--batch-size", "0"]),
    ("train.py", ["--lr", "-1"]),
    ("train.py", ["--regularization-gamma=-1e-6"]),
    ("pretrained.py", ["--weight-decay", "-0.01"]),
    ("train.py", ["--head", "gmm"]),
    ("saturation.py", ["--num-bins", "0"]),
]


def refuse(folder, tmp_path, script, argv):
    out = tmp_path / "out"
    extra = ["--out-dir", str(out), "--data-dir", str(out)] if script in ("train.py", "pretrained.py", "sweep.py") \
        else []
    result = subprocess.run([sys.executable, str(folder / script), *argv, *extra], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    err = result.stderr.strip()
    assert result.returncode != 0, result.stdout
    assert len(err.splitlines()) == 1 and err.startswith("error:") and "Traceback" not in err, err
    assert not out.exists()  # nothing was written
    return err


@pytest.mark.parametrize("script,argv", CASES, ids=[f"{s}{' '.join(a)}" for s, a in CASES])
def test_refusal(folder, tmp_path, script, argv):
    flag = argv[-2] if len(argv) > 1 else argv[0].split("=")[0]
    assert flag in refuse(folder, tmp_path, script, argv)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_device_cuda_without_gpu(folder, tmp_path):
    assert "no CUDA GPU" in refuse(folder, tmp_path, "train.py", ["--device", "cuda"])


@pytest.mark.parametrize("module,argv,message", [
    ("sweep", ["--jobs", "0"], "--jobs"), ("sweep", ["--heads", "linear,gmm"], "--heads"),
    ("sweep", ["--seeds", "0,-1"], "--seeds"), ("sweep", ["--seeds", "0,1", "--epochs", "0"], "--epochs"),
    ("data", ["--renderer", "fluidsynth"], "--renderer"), ("data", ["--workers", "-1"], "--workers"),
    ("aggregate", ["--example-position", "-1"], "--example-position"),
    ("plot", ["--num-frequencies", "0"], "--num-frequencies")])
def test_refusal_in_process(audio, refusal, module, argv, message):
    assert message in refusal(getattr(audio, module).main, argv)
