"""The command line as a user meets it (subprocesses): bad flags stop with one line `error: ...`, a non-zero
status and no traceback, before anything is written; a run folder holding other settings is refused by
name; `aggregate.py --check` passes on the committed README and names a stale block. CPU, no emulator."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))  # the experiment's modules are plain files

import train  # noqa: E402


def run(script, *args, timeout=120):
    return subprocess.run([sys.executable, script, *map(str, args)], cwd=HERE, capture_output=True, text=True,
                          timeout=timeout)


def assert_refused(p, *words):
    lines = p.stderr.strip().splitlines()
    assert p.returncode != 0, p.stdout
    assert "Traceback" not in p.stderr and len(lines) == 1 and lines[0].startswith("error:"), p.stderr
    for w in words:
        assert w in lines[0], lines[0]


TRAIN_REFUSALS = [
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--context", "0"], "--context must be >= 1"),
    (["--lr", "-0.001"], "--lr must be > 0"),
    (["--head", "nosuch"], "invalid choice: 'nosuch'"),
    (["--game", "Pong"], "invalid choice: 'Pong'"),
    (["--data-dir", "nowhere"], "no dataset at nowhere"),
]


@pytest.mark.parametrize("args,words", TRAIN_REFUSALS, ids=[" ".join(a) for a, _ in TRAIN_REFUSALS])
def test_train_refuses_bad_flags_in_one_line(tmp_path, args, words):
    p = run("train.py", "--out-dir", tmp_path / "run", *args)
    assert_refused(p, words)
    assert not (tmp_path / "run").exists()  # nothing written


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")
def test_train_refuses_cuda_without_a_gpu(tmp_path):
    assert_refused(run("train.py", "--device", "cuda", "--out-dir", tmp_path / "run"), "no CUDA GPU")
    assert not (tmp_path / "run").exists()


def refused_in_process(main, args, capsys) -> str:
    """The one line a refused command prints (argparse's on stderr, or the SystemExit message), in this process:
    the other scripts' refusals go through the same scaffold.parse_config, so no torch import per case."""
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code not in (0, None)
    lines = (capsys.readouterr().err + (e.value.code if isinstance(e.value.code, str) else "")).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    return lines[0]


def test_the_other_scripts_refuse_in_one_line(tmp_path, capsys):
    import agent
    import diagnostics
    import make_dataset
    import pqn
    import publish_snapshots
    for main, args, words in [
        (train.main, ["--dataset", "dqn-replay"], "invalid choice: 'dqn-replay'"),
        (train.main, ["--head", "fourier"], "--num-frequencies N"),
        (train.main, ["--n-head", "3"], "--n-head 3 must divide --n-embd 128"),
        (pqn.main, ["--num-envs", "0"], "--num-envs must be >= 1"),
        (pqn.main, ["--num-minibatches", "7"], "--num-minibatches must divide"),
        (make_dataset.main, ["--policy", "nosuch"], "invalid choice: 'nosuch'"),
        (make_dataset.main, ["--sticky", "-0.5"], "--sticky must be -1"),
        (diagnostics.main, ["--states", "0"], "--states must be >= 1"),
        (diagnostics.main, ["--data-dir", str(tmp_path)], "no manifest.json"),
        (agent.main, ["--game", "Pong"], "invalid choice: 'Pong'"),
        (publish_snapshots.main, ["--count", "0"], "--count must be >= 1"),
        (publish_snapshots.main, ["--source", str(tmp_path)], "no curve.json"),
    ]:
        assert words in refused_in_process(main, args, capsys)
    assert not any(tmp_path.iterdir())


def fake_data(root: Path) -> Path:
    """Enough of a dataset folder for train.py's checks (they run before the data is loaded)."""
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        (root / split / "frames.npy").write_bytes(b"")
        np.save(root / split / "episode_starts.npy", np.array([0, 100]))
    return root


def test_rerun_with_other_settings_is_refused_by_name(tmp_path):
    data, out = fake_data(tmp_path / "data"), tmp_path / "run"
    cfg = train.parse_config(["--quick", "--data-dir", str(data), "--out-dir", str(out)])
    out.mkdir()
    (out / "config.json").write_text(json.dumps({**train.run_config(cfg), "epoch_samples_resolved": 64}))
    (out / "metrics.json").write_text("{}")  # finished
    p = run("train.py", "--quick", "--data-dir", data, "--out-dir", out, "--lr", "0.001", "--epochs", "3")
    assert_refused(p, "epochs: 1 -> 3", "lr: 0.0006 -> 0.001", "--force")
    train.main(["--quick", "--data-dir", str(data), "--out-dir", str(out)])  # the same settings: nothing to do
    assert (out / "metrics.json").read_text() == "{}"


def test_aggregate_check_passes_on_the_committed_readme_and_names_a_stale_block(tmp_path, capsys):
    nowhere = tmp_path / "absent"  # --check needs neither runs/ nor data/ (a fresh clone has neither)
    p = run("aggregate.py", "--check", "--runs", nowhere, "--data", nowhere)
    assert p.returncode == 0, p.stderr
    import aggregate
    readme = tmp_path / "README.md"
    text = (HERE / "README.md").read_text()
    start = text.index("<!-- results:start -->")
    stale = text[:start] + text[start:].replace("| 1.64 ± 0.02 (10) |", "| 9.99 ± 0.02 (10) |", 1)
    assert stale != text
    readme.write_text(stale)
    line = refused_in_process(aggregate.main, ["--check", "--readme", str(readme), "--runs", str(nowhere)], capsys)
    assert "README.md: results (" in line and "throughput" not in line and "data_dqn" not in line
    assert readme.read_text() == stale  # writes nothing


def test_run_sh_help_and_unknown_argument():
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    p = subprocess.run(["bash", "run.sh", "--help"], cwd=HERE, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "--quick" in p.stdout
    p = subprocess.run(["bash", "run.sh", "--nosuch"], cwd=HERE, capture_output=True, text=True, timeout=30)
    assert_refused(p, "unknown argument")
