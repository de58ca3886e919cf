"""export.py: a train.py checkpoint -> a small forecaster file (each tensor once; float16 or int8 with per-row
scales) that evaluate.load_checkpoint and forecast.py load; its fidelity is measured and bounded; bad
inputs end with one line before anything is written; forecast.py falls back to the shipped file."""

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import export  # noqa: E402
import forecast  # noqa: E402
from evaluate import load_checkpoint  # noqa: E402
from model import ModelConfig, build_model  # noqa: E402


@pytest.fixture(scope="module", params=["linear", "fourier"])
def run_dir(request, tmp_path_factory):
    """A run directory in train.py's layout (checkpoint with optimizer state, config, metrics, env)."""
    run = tmp_path_factory.mktemp(f"run_{request.param}")
    torch.manual_seed(0)
    cfg = ModelConfig(size="smoke", head=request.param, num_frequencies=8)
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters())
    torch.save(dict(model=model.state_dict(), optimizer=opt.state_dict(), model_config=asdict(cfg), binning="mixed",
                    step=7), run / "checkpoint.pt")
    (run / "config.json").write_text(json.dumps({"context_length": 64}))
    (run / "metrics.json").write_text(json.dumps({"mase": 1.1, "wql": 0.9, "datasets": ["m1_yearly"]}))
    (run / "env.json").write_text(json.dumps({"commit": "c", "gpu": "G"}))
    return run


def call(*argv):
    """export.main in-process -> exit status (0 when it returns)."""
    try:
        export.main(list(argv))
    except SystemExit as e:
        return e.code
    return 0


@pytest.mark.parametrize("weights", ["int8", "float16"])
def test_export_round_trip(run_dir, tmp_path, weights):
    out = tmp_path / f"f_{weights}.pt"
    assert call("--run", str(run_dir), "--out", str(out), "--weights", weights) == 0
    original, tok, _ = load_checkpoint(run_dir / "checkpoint.pt", "cpu")
    loaded, tok2, f = load_checkpoint(out, "cpu")
    assert f["format"] == export.FORMAT and f["step"] == 7 and f["context_length"] == 64
    assert f["scores"] == {"mase": 1.1, "wql": 0.9, "datasets": ["m1_yearly"]}
    assert f["provenance"]["run"] == {"commit": "c", "gpu": "G"}
    # T5 ties its embedding to the decoder's input (and the linear head): stored once, restored under every name
    state = original.state_dict()
    assert set(f["weights"]) | set(f["aliases"]) == set(state)
    assert "shared.weight" in str(list(f["weights"])) and f["aliases"]
    for name, stored in f["weights"].items():
        if weights == "int8" and state[name].dim() == 2:
            assert stored["q"].dtype == torch.int8 and stored["scale"].shape == (state[name].shape[0], 1)
            bound = stored["scale"] / 2 + 1e-7  # round to nearest: at most half a step per entry
            assert ((export.unpack(stored) - state[name]).abs() <= bound).all()
        else:
            assert stored.dtype == torch.float16
    assert f["fidelity"]["kl_mean"] <= 1e-2 and 0 <= f["fidelity"]["top1_agreement"] <= 1
    ids, mask, labels = export.probe_batch(tok, context=32, horizon=4, n=2)
    with torch.no_grad():
        diff = (original(ids, mask, labels) - loaded(ids, mask, labels)).abs().max().item()
    assert diff < (0.5 if weights == "int8" else 0.05)
    assert out.stat().st_size < (run_dir / "checkpoint.pt").stat().st_size


def test_refusals_write_nothing(run_dir, tmp_path, capsys):
    out = tmp_path / "f.pt"
    cases = [(["--run", str(tmp_path / "nope")], "no such file"),
             (["--run", str(run_dir), "--out", str(out), "--max-mb", "0.0001"], "MB > --max-mb"),
             (["--run", str(run_dir), "--out", str(out), "--max-kl", "0"], "--max-kl"),
             (["--run", str(run_dir), "--weights", "int4"], "invalid choice: 'int4'"),
             ([], "name the run to export")]
    for argv, message in cases:
        capsys.readouterr()
        assert call(*argv, *([] if "--out" in argv else ["--out", str(out)])) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("error:") and err.count("\n") == 1, err
        assert not out.exists() and not list(tmp_path.glob("*.tmp"))
    assert call("--run", str(run_dir), "--out", str(out)) == 0
    assert call("--run", str(run_dir), "--out", str(out)) == 2  # exists: --force to overwrite
    assert "pass --force" in capsys.readouterr().err
    assert call("--run", str(out), "--out", str(tmp_path / "g.pt")) == 2  # a forecaster is not a checkpoint
    assert "already a forecaster file" in capsys.readouterr().err


def test_forecast_uses_the_shipped_model_by_default(run_dir, tmp_path, monkeypatch, capsys):
    csv = tmp_path / "air.csv"
    n = 30
    pd.DataFrame({"Month": pd.period_range("1949-01", periods=n, freq="M").astype(str),
                  "passengers": 100 + 10 * np.sin(np.arange(n) / 2) + np.arange(n)}).to_csv(csv, index=False)
    shipped = tmp_path / "model" / "forecaster.pt"
    monkeypatch.setattr(forecast, "SHIPPED", shipped)
    argv = ["--csv", str(csv), "--horizon", "3", "--num-samples", "4", "--device", "cpu"]
    assert forecast.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no --checkpoint, and no shipped model at") and err.count("\n") == 1
    assert call("--run", str(run_dir), "--out", str(shipped)) == 0
    assert forecast.main(argv) == 0
    out = pd.read_csv(tmp_path / "air_forecast.csv")
    assert len(out) == 3 and [d[:7] for d in out["date"]] == ["1951-07", "1951-08", "1951-09"]
