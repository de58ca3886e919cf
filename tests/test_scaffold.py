"""The shared experiment scaffolding (`scaffold.py`): validated configs, run identity, atomic JSON, device
choice, paired statistics, README blocks."""

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import scaffold
from scaffold import Field, parse_config, prepare_run, update_block, write_json

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Config:
    lr: float = Field(1e-3, "learning rate", low=0.0, low_open=True)
    epochs: int = Field(500, "training epochs", low=1)
    head: str = Field("fourier", "output head", choices=("linear", "fourier"))
    seeds: tuple = Field((1, 2), "seeds", low=0)
    amp: bool = Field(True, "bf16 autocast")


def test_parse_config_defaults_flags_and_quick():
    assert parse_config(Config, []) == Config()
    cfg = parse_config(Config, ["--lr", "0.01", "--seeds", "3", "4", "5", "--no-amp"], quick=dict(epochs=2))
    assert (cfg.lr, cfg.seeds, cfg.amp, cfg.epochs) == (0.01, (3, 4, 5), False, 500)
    assert parse_config(Config, ["--quick"], quick=dict(epochs=2)).epochs == 2
    assert parse_config(Config, ["--quick", "--epochs", "7"], quick=dict(epochs=2)).epochs == 7  # flags win


@pytest.mark.parametrize("argv,message", [
    (["--epochs", "0"], "error: --epochs must be >= 1 (got 0)"),
    (["--lr", "0"], "error: --lr must be > 0.0 (got 0.0)"),
    (["--lr", "nan"], "error: --lr must be a finite number (got nan)"),
    (["--head", "gmm"], "error: argument --head: invalid choice"),
    (["--seeds", "1", "-1"], "error: --seeds must be >= 0 (got -1)"),
    (["--epochs", "two"], "error: argument --epochs: invalid int value"),
    (["--nosuch", "1"], "error: unrecognized arguments"),
])
def test_bad_values_exit_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_config(Config, argv)
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_run_identity(tmp_path):
    run = tmp_path / "run"
    assert prepare_run(run, {"lr": 0.1, "epochs": 5}) == "new"
    assert prepare_run(run, {"lr": 0.1, "epochs": 5}) == "resume"
    write_json(run / "metrics.json", {"kl": 0.1})
    assert prepare_run(run, {"lr": 0.1, "epochs": 5}) == "done"
    with pytest.raises(SystemExit, match=r"other settings \(epochs: 5 -> 40\)"):
        prepare_run(run, {"lr": 0.1, "epochs": 40})
    assert prepare_run(run, {"lr": 0.1, "epochs": 5, "device": "cuda"}, ignore=("device",)) == "done"
    assert prepare_run(run, {"lr": 0.1, "epochs": 40}, force=True) == "new"
    assert not (run / "metrics.json").exists()
    assert json.loads((run / "config.json").read_text())["epochs"] == 40


def test_write_json_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(scaffold.os, "replace", broken)
    with pytest.raises(OSError):
        write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}  # the old file is untouched


def test_pick_device():
    assert scaffold.pick_device("cpu") == torch.device("cpu")
    assert scaffold.pick_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="no CUDA GPU"):
            scaffold.pick_device("cuda")
    with pytest.raises(SystemExit, match="unknown device"):
        scaffold.pick_device("gpu0")


def test_update_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table:start -->\nold\n<!-- table:end -->\nrest\n")
    assert update_block(readme, "table", "| a |", check=True)
    assert "old" in readme.read_text()  # check mode writes nothing
    assert update_block(readme, "table", "| a |")
    assert readme.read_text() == "intro\n<!-- table:start -->\n| a |\n<!-- table:end -->\nrest\n"
    assert not update_block(readme, "table", "| a |", check=True)
    with pytest.raises(SystemExit, match="no '<!-- other:start -->'"):
        update_block(readme, "other", "x")


def test_provenance_names_the_commit():
    info = scaffold.provenance("cpu", wall_seconds=1.5)
    assert info["commit"] != "unknown" and info["torch"] == torch.__version__ and info["wall_seconds"] == 1.5


def test_run_state_writes_nothing_and_prepare_runs_reports_every_clash(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert scaffold.run_state(a, {"lr": 1}) == "new" and not a.exists()
    assert scaffold.prepare_runs({a: {"lr": 1}, b: {"lr": 1}}) == {a: "new", b: "new"}
    (b / "metrics.json").write_text("{}")
    assert scaffold.run_state(b, {"lr": 1}) == "done"
    with pytest.raises(SystemExit, match=r"lr: 1 -> 2\) \(and 1 more of the selected runs\)"):
        scaffold.prepare_runs({a: {"lr": 2}, b: {"lr": 2}})
    assert json.loads((a / "config.json").read_text()) == {"lr": 1}  # nothing claimed
    assert scaffold.prepare_runs({a: {"lr": 2}}, force=True) == {a: "new"}


def test_parse_config_presets_checks_inf_and_percent(capsys):
    @dataclass
    class C:
        width: int = scaffold.Field(8, "width, in % of nothing", low=1)
        p: float = scaffold.Field(float("inf"), "decay", low=0.0, allow_inf=True)
        depth: int = scaffold.Field(2, "depth", low=1)

    cfg = scaffold.parse_config(C, ["--big", "--depth", "3"], presets={"big": {"width": 64, "depth": 9}})
    assert (cfg.width, cfg.depth, cfg.p) == (64, 3, float("inf"))
    assert scaffold.parse_config(C, ["--p", "inf"]).p == float("inf")
    with pytest.raises(SystemExit) as e:
        scaffold.parse_config(C, ["--p", "nan"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        scaffold.parse_config(C, ["--width", "3"], check=lambda c: "--width must be even" if c.width % 2 else None)
    assert e.value.code == 2 and "error: --width must be even" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        scaffold.parse_config(C, ["--help"])
    assert e.value.code == 0 and "in % of nothing" in capsys.readouterr().out


def test_negative_scientific_value_is_a_value_not_a_flag(capsys):
    @dataclass
    class C:
        lr: float = Field(1e-3, "learning rate", low=0.0, low_open=True)

    with pytest.raises(SystemExit) as e:
        parse_config(C, ["--lr", "-1e-3"])
    assert e.value.code == 2 and "error: --lr must be > 0.0 (got -0.001)" in capsys.readouterr().err


def test_provenance_keeps_a_named_commit_that_git_contradicts(monkeypatch):
    monkeypatch.setenv("FOURIER_HEAD_COMMIT", "0000000")
    assert scaffold.provenance()["commit_named"] == "0000000"
    monkeypatch.setenv("FOURIER_HEAD_COMMIT", scaffold.git_commit().split("+")[0])
    assert "commit_named" not in scaffold.provenance()


def test_exact_bootstrap_against_all_resamples_and_scipy():
    """scaffold.bootstrap_interval (every experiment's paired Fourier - linear interval)."""
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    for n in (1, 2, 4, 5):
        d = rng.normal(0.3, 0.4, n)
        every = np.array([d[list(idx)].mean() for idx in itertools.product(range(n), repeat=n)])  # all n^n resamples
        ref = np.quantile(every, [0.025, 0.975], method="inverted_cdf")
        np.testing.assert_allclose(scaffold.bootstrap_interval(d), ref, rtol=0, atol=1e-12)
    d = rng.normal(0.3, 0.4, 7)
    ours = scaffold.bootstrap_interval(d)
    res = stats.bootstrap((d,), np.mean, confidence_level=0.95, method="percentile", n_resamples=20_000,
                          random_state=np.random.default_rng(0))
    spread = d.max() - d.min()
    assert ours[0] == pytest.approx(res.confidence_interval.low, abs=0.03 * spread)
    assert ours[1] == pytest.approx(res.confidence_interval.high, abs=0.03 * spread)
    # above the exact limit: a seeded Monte Carlo estimate, close to the exact one
    mc = scaffold.bootstrap_interval(d, exact_up_to=0)
    np.testing.assert_allclose(mc, ours, atol=0.02 * spread)
