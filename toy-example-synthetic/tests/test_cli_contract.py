"""The command-line contract of the toy example: bad values stop every script with one line before any work,
reruns with other settings are refused (never silently reused), old run files stay readable, quick outputs
are marked as such, and `aggregate.py --check` says whether the README's generated tables are stale."""

import importlib.util
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))  # the experiment's own modules are plain files

import aggregate  # noqa: E402
import gmm_stability  # noqa: E402
import plot  # noqa: E402
import train  # noqa: E402
import train_single  # noqa: E402

NO_CUDA = not torch.cuda.is_available()
NO_WANDB = importlib.util.find_spec("wandb") is None
# (script, flags, start of the one line on stderr); each must stop before any work.
REFUSALS = [
    ("train.py", ["--epochs", "0"], "error: --epochs must be >= 1 (got 0)"),
    ("train.py", ["--batch-size", "0"], "error: --batch-size must be >= 1 (got 0)"),
    ("train.py", ["--num-bins", "0"], "error: --num-bins must be >= 2 (got 0)"),
    ("train.py", ["--gammas", "0", "-1"], "error: --gammas must be >= 0.0 (got -1.0)"),
    ("train.py", ["--lr", "-0.001"], "error: --lr must be > 0.0 (got -0.001)"),
    ("train.py", ["--heads", "linear", "softmax"], "error: --heads must be one of"),
    ("train.py", ["--datasets", "cauchy"], "error: --datasets must be one of gaussian, gmm, gmm2, beta (got 'cauchy')"),
    ("train.py", ["--mixture-truth", "mean"], "error: argument --mixture-truth: invalid choice"),
    *([("train.py", ["--device", "cuda"], "error: --device cuda:"),
       ("train_single.py", ["--device", "cuda"], "error: --device cuda:"),
       ("gmm_stability.py", ["--device", "cuda"], "error: --device cuda:")] if NO_CUDA else []),
    *([("train.py", ["--wandb"], "error: --wandb needs the wandb package")] if NO_WANDB else []),
    ("train_single.py", ["--gamma", "-1"], "error: --gamma must be >= 0.0"),
    ("train_single.py", ["--batch-size", "0"], "error: --batch-size must be >= 1 (got 0)"),
    ("gmm_stability.py", ["--epochs", "0"], "error: --epochs must be >= 1 (got 0)"),
    ("gmm_stability.py", ["--heads", "linear"], "error: --heads must be one of gmm, gmm-mle"),
    ("gmm_stability.py", ["--fit-steps", "0"], "error: --fit-steps must be >= 1 (got 0)"),
    ("gmm_stability.py", ["--update-readme"], "error: --update-readme with --quick would put smoke numbers"),
    ("gmm_stability.py", ["--results", str(HERE / "results")], "error: quick runs never go into the committed"),
    ("aggregate.py", ["--runs", "no/such/runs"], "error: no finished runs under no/such/runs"),
    ("aggregate.py", ["--update-readme", "--results", "elsewhere"], "error: --update-readme writes the README from"),
    ("plot.py", ["--results", "no/such/results"], "error: no/such/results/summary.json not found"),
]


def _run(script, flags):
    return subprocess.run([sys.executable, script, *flags], cwd=HERE, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("script,flags,message", REFUSALS, ids=[" ".join([c[0], *c[1]]) for c in REFUSALS])
def test_bad_values_stop_with_one_line_before_any_work(script, flags, message, tmp_path, capsys, monkeypatch):
    """In-process (an interpreter per case would cost seconds each); tiny settings come first, so a refusal
    that stopped working would run a few seconds of work, not the paper's sweep."""
    monkeypatch.chdir(HERE)
    tiny = {"train.py": ["--quick", "--epochs", "1", "--datasets", "gaussian", "--heads", "linear"],
            "train_single.py": ["--epochs", "1", "--n-samples", "50"],
            "gmm_stability.py": ["--quick", "--epochs", "1", "--seeds", "1", "--datasets", "gaussian",
                                 "--fit-steps", "1"]}.get(script, [])
    out = ["--out-dir", str(tmp_path)] if script != "aggregate.py" and script != "plot.py" else []
    main = {"train.py": train, "train_single.py": train_single, "gmm_stability.py": gmm_stability,
            "aggregate.py": aggregate, "plot.py": plot}[script].main
    with pytest.raises(SystemExit) as stop:
        main([*tiny, *out, *flags])
    code, err = stop.value.code, capsys.readouterr().err
    lines = (err or f"{code}\n").strip().splitlines()  # argparse prints, SystemExit("error: ...") carries it
    assert code not in (0, None) and len(lines) == 1 and lines[0].startswith(message), (code, err)
    assert not any(tmp_path.iterdir())  # nothing written


def test_refusals_as_a_user_sees_them():
    cases = [("train.py", ["--epochs", "0"], "error: --epochs must be >= 1 (got 0)"),
             ("gmm_stability.py", ["--quick", "--update-readme"], "error: --update-readme with --quick"),
             ("plot.py", ["--results", "no/such/results"], "error: no/such/results/summary.json not found")]
    if NO_CUDA:
        cases[0] = ("train.py", ["--device", "cuda"], "error: --device cuda: this torch build or machine has no CUDA")
    with ThreadPoolExecutor(len(cases)) as pool:  # one interpreter per case, side by side
        outs = list(pool.map(lambda case: _run(*case[:2]), cases))
    for (script, flags, message), out in zip(cases, outs):
        where = f"{script} {' '.join(flags)}: {out.stderr!r}"
        assert out.returncode != 0 and "Traceback" not in out.stderr and out.stdout == "", where
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), where


@pytest.fixture
def keep_torch_threads():
    threads = torch.get_num_threads()  # train.main sets one thread on a CPU
    yield
    torch.set_num_threads(threads)


def test_rerun_with_other_settings_is_refused_and_old_run_files_still_read(tmp_path, capsys, keep_torch_threads):
    runs = tmp_path / "runs"
    argv = ["--quick", "--epochs", "1", "--datasets", "gaussian", "--heads", "linear", "fourier",
            "--frequencies", "4", "--gammas", "0", "--out-dir", str(runs)]
    train.main(argv)
    assert "2 models in the sweep, 0 already done" in capsys.readouterr().out
    run = runs / "gaussian" / "linear" / "seed1"
    metrics = (run / "metrics.json").read_text()

    refused = _run("train.py", [*argv, "--epochs", "2"])
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        f"error: {run} holds a run with other settings (epochs: 1 -> 2) (and 1 more of the selected runs); "
        "use another output directory, or --force to overwrite it"]
    assert (run / "metrics.json").read_text() == metrics  # untouched

    # run files of the code before the scaffold (no "wandb" in config.json, the old env.json) are the same runs
    for config_file in runs.glob("*/*/seed*/config.json"):
        config = json.loads(config_file.read_text())
        del config["wandb"]
        config_file.write_text(json.dumps(config))
    (run / "env.json").write_text(json.dumps({"python": "3.11.7", "torch": "2.11.0+cu130", "numpy": "2.3.4",
                                              "platform": "Linux", "commit": "b68f23f", "device": "cuda",
                                              "gpu": "NVIDIA H200", "family_train_seconds": 1.0,
                                              "models_trained_together": 2}))
    train.main(argv)
    assert "2 models in the sweep, 2 already done" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="quick runs never go into the committed results/"):
        aggregate.main(["--runs", str(runs)])
    aggregate.main(["--runs", str(runs), "--results", str(tmp_path / "results")])
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["quick"] is True and summary["provenance"]["gpu"] == ["NVIDIA H200", "None"]
    assert "paper" not in (tmp_path / "results" / "table.md").read_text()

    train.main([*argv, "--epochs", "2", "--force"])  # --force retrains in place
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    assert "error:" not in capsys.readouterr().err

    # runs of other settings side by side are not aggregated together
    other = runs / "gaussian" / "linear" / "seed2"
    shutil.copytree(run, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "seed": 2, "lr": 0.01}))
    with pytest.raises(SystemExit, match=r"different settings \(lr: 0.001 -> 0.01"):
        aggregate.main(["--runs", str(runs), "--results", str(tmp_path / "results")])


def test_check_passes_on_the_committed_readme():
    out = _run("aggregate.py", ["--check"])
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


def test_check_names_the_stale_block_and_writes_nothing(tmp_path, monkeypatch):
    readme, results = tmp_path / "README.md", tmp_path / "results"
    shutil.copytree(HERE / "results", results)
    monkeypatch.setattr(aggregate, "RESULTS", results)
    monkeypatch.setattr(aggregate, "ROOT_README", tmp_path / "no-root-README.md")
    text = (HERE / "README.md").read_text()
    monkeypatch.setattr(aggregate, "README", readme)
    readme.write_text(text)
    aggregate.main(["--check"])  # the committed blocks: nothing stale

    stale = text.replace("| gmm2 | GMM-MLE (K=2) | 24 | 0/24 (0%) |", "| gmm2 | GMM-MLE (K=2) | 24 | 1/24 (4%) |")
    assert stale != text
    readme.write_text(stale)
    with pytest.raises(SystemExit) as stop:
        aggregate.main(["--check"])
    message = str(stop.value.code)
    assert len(message.splitlines()) == 1 and message.startswith("stale: README.md block gmm-stability ")
    assert "results-table" not in message
    assert readme.read_text() == stale  # --check writes nothing

    (results / "table.md").write_text("old\n")
    with pytest.raises(SystemExit, match="stale: results/table.md, README.md block gmm-stability"):
        aggregate.main(["--check"])
    assert (results / "table.md").read_text() == "old\n"


def test_quick_tables_and_figures_are_marked(tmp_path):
    rows = json.loads((HERE / "results" / "summary.json").read_text())["rows"]
    paper = json.loads((HERE / "paper_numbers.json").read_text())
    full, quick = aggregate.table(rows, paper), aggregate.table(rows, paper, quick=True)
    assert "KL (paper)" in full and "paper" not in quick.splitlines()[2]
    assert quick.startswith("**Quick run**") and "| gaussian | Linear | 4 | 0.139 ± 0.033 | 0.1138 ± 0.0454 |" in quick
    plt = plot.setup()
    for flag in (False, True):
        fig, _ = plt.subplots()
        plot.save(fig, tmp_path / f"figure_{flag}.png", quick=flag)
        title = fig._suptitle.get_text() if fig._suptitle else ""
        assert ("quick run" in title) == flag
