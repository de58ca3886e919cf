"""Tests of the time-series experiment (CPU, no network, < 1 minute together)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import data as tsdata  # noqa: E402
from metrics import QUANTILES, mase, naive_scores, seasonal_naive, wql  # noqa: E402
from tokenizer import N_SPECIAL, PAD, Tokenizer, mixed_segments  # noqa: E402

ENV = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=f"{HERE.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")



# ---- tokenizers -------------------------------------------------------------------------------------

def test_mixed_bin_layout():
    assert mixed_segments() == (603, 3278, 215)
    tok = Tokenizer("mixed")
    assert tok.n_values == 4094
    e = tok.edges.numpy()
    # 601 value bins on [-15, -1], 3278 on [-1, 10], 215 on [10, 15]: ids 2..602, 603..3880, 3881..4095
    assert e[0] == -15 and e[601] == pytest.approx(-1) and e[601 + 3278] == pytest.approx(10) and e[-1] == 15
    widths = np.diff(e)
    assert np.allclose(widths[:601], 14 / 601) and np.allclose(widths[601:3879], 11 / 3278)
    assert np.allclose(widths[3879:], 5 / 215)
    ids, _ = tok.encode(torch.tensor([[-1.0 + 1e-9, 10.0 - 1e-9, 10.0 + 1e-9]], dtype=torch.float64), torch.ones(1))
    assert ids.tolist() == [[603, 3880, 3881]]


@pytest.mark.parametrize("binning", ["mixed", "uniform"])
def test_tokenizer_round_trip(binning):
    tok = Tokenizer(binning)
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(8, 200, generator=gen, dtype=torch.float64) * 3 + 2
    y[0, :5] = float("nan")  # left padding
    ids, mask, scale = tok.encode_context(y)
    assert (ids[0, :5] == PAD).all() and not mask[0, :5].any() and mask[:, 5:].all()
    assert ids[mask].min() >= N_SPECIAL and ids.max() <= 4095
    back = tok.decode(ids, scale)
    x = y / scale[:, None]
    inside = mask & (x.abs() < 15)
    half_width = torch.tensor(np.diff(tok.edges.numpy()).max() / 2, dtype=torch.float64)
    assert ((back - y).abs()[inside] <= half_width * scale[:, None].expand_as(y)[inside] + 1e-9).all()
    # ordered tokens: a monotone series maps to non-decreasing ids
    ramp = torch.linspace(-20, 20, 1000, dtype=torch.float64)[None]
    r_ids, _ = tok.encode(ramp, torch.ones(1, dtype=torch.float64))
    # (Chronos' MeanScaleUniformBins never emits id N_SPECIAL: its first bucket starts at -1e20)
    lowest = N_SPECIAL + 1 if binning == "uniform" else N_SPECIAL
    assert (r_ids.diff() >= 0).all() and r_ids.min() == lowest and r_ids.max() == 4095
    # mean scaling: zero series get scale 1
    assert tok.mean_scale(torch.zeros(1, 10)).item() == 1.0


# ---- KernelSynth / TSMixup ----------------------------------------------------------------------------

def test_kernel_synth_shapes_and_determinism():
    a = tsdata.kernel_synth(20, 64, seed=3, batch_size=8, progress=False)
    b = tsdata.kernel_synth(20, 64, seed=3, batch_size=8, progress=False)
    c = tsdata.kernel_synth(20, 64, seed=4, batch_size=8, progress=False)
    assert a.shape == (20, 64) and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.std(axis=1).min() > 0  # no degenerate all-zero draws
    bank, names = tsdata.kernel_bank(16)
    assert bank.shape == (len(names), 16, 16) and torch.allclose(bank, bank.transpose(1, 2))


def test_tsmixup_and_window_sampler():
    _, pool = tsdata.load_benchmark()
    mix = tsdata.tsmixup(pool, 50, length=256, seed=0)
    assert mix.shape == (50, 256)
    assert np.isfinite(mix[:, -128:]).all()  # at least min_length observed values at the end
    ks = torch.tensor(tsdata.kernel_synth(10, 256, seed=0, progress=False))
    sampler = tsdata.WindowSampler(ks, torch.tensor(mix), 100, 16, 20, 0.5, torch.Generator().manual_seed(0))
    ctx, label = sampler.sample(32)
    assert ctx.shape == (32, 100) and label.shape == (32, 16)
    assert torch.isfinite(label).all() and (torch.isfinite(ctx).sum(1) >= 20).all()


# ---- benchmark and metrics ----------------------------------------------------------------------------

def test_benchmark_m1_yearly_pin():
    """Seasonal naive on the bundled M1-yearly: the published Chronos baseline values."""
    bench, _ = tsdata.load_benchmark(datasets=["m1_yearly"])
    m1 = bench["m1_yearly"]
    assert len(m1["items"]) == 181 and m1["prediction_length"] == 6
    scores = naive_scores(m1)
    assert scores["mase"] == pytest.approx(4.894322, abs=1e-6)
    assert scores["wql"] == pytest.approx(0.209296, abs=1e-6)


def test_benchmark_has_enough_datasets():
    bench, pool = tsdata.load_benchmark()
    assert len(bench) >= 15
    assert {d["freq"] for d in bench.values()} >= {"30min", "H", "D", "W", "M", "Q", "Y"}
    assert len(pool) > 50


def test_metrics_match_gluonts():
    gluonts = pytest.importorskip("gluonts")  # noqa: F841
    from gluonts.ev.metrics import MASE, MeanWeightedSumQuantileLoss
    from gluonts.model.evaluation import evaluate_forecasts
    from gluonts.model.forecast import QuantileForecast
    import pandas as pd
    bench, _ = tsdata.load_benchmark(datasets=["classic_quarterly"])
    ds = bench["classic_quarterly"]
    rng = np.random.default_rng(0)
    H, s = ds["prediction_length"], ds["season"]
    pasts = [p for _, p, _ in ds["items"]]
    future = np.stack([f for _, _, f in ds["items"]])
    q = np.sort(future[:, None, :] * rng.uniform(0.8, 1.2, (len(pasts), 9, H)), axis=1)
    start = pd.Period("2000Q1", freq="Q")
    test_data = [({"target": p, "start": start}, {"target": f, "start": start + len(p)}) for p, f in zip(pasts, future)]

    class Pairs:  # the minimal TestData interface evaluate_forecasts needs
        input = [a for a, _ in test_data]
        label = [b for _, b in test_data]

        def __iter__(self):
            return iter(test_data)

    fcs = [QuantileForecast(q[i], start_date=start + len(p), forecast_keys=[str(v) for v in QUANTILES])
           for i, p in enumerate(pasts)]
    res = evaluate_forecasts(fcs, test_data=Pairs(), metrics=[MASE(), MeanWeightedSumQuantileLoss(QUANTILES)],
                             seasonality=s)
    assert res.iloc[0, 0] == pytest.approx(mase(pasts, future, q[:, 4], s), rel=1e-9)
    assert res.iloc[0, 1] == pytest.approx(wql(future, q), rel=1e-9)


def test_seasonal_naive_short_series_uses_mean():
    fc = seasonal_naive([np.array([1.0, 2.0, 3.0])], 4, 12)
    assert np.allclose(fc, 2.0)


# ---- model ---------------------------------------------------------------------------------------------

def test_fourier_regulariser_is_in_the_loss():
    from model import ModelConfig, build_model
    torch.manual_seed(0)
    ids = torch.randint(2, 4096, (2, 16))
    labels = torch.randint(2, 4096, (2, 4))
    labels[0, -1] = PAD  # ignored
    mask = torch.ones_like(ids, dtype=torch.bool)
    losses = {}
    for gamma in (0.0, 1e-2):
        torch.manual_seed(0)
        m = build_model(ModelConfig(size="smoke", head="fourier", num_frequencies=8, gamma=gamma, dropout=0.0))
        loss, parts = m.loss(ids, mask, labels)
        assert loss.item() == pytest.approx((parts["ce"] + parts["reg"]).item())
        losses[gamma] = (loss.item(), parts["reg"].item(), parts["ce"].item())
    assert losses[0.0][1] == 0 and losses[1e-2][1] > 0
    assert losses[0.0][2] == pytest.approx(losses[1e-2][2])  # same CE: the difference is the regulariser


# ---- CLI: smoke run (train -> evaluate) and the forecast command ---------------------------------------------

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Tiny T5, tiny data, a few steps on the CPU, then evaluation on two small datasets."""
    out = tmp_path_factory.mktemp("runs")
    r = subprocess.run([sys.executable, "train.py", "--quick", "--steps", "6", "--log-every", "3", "--out-dir", str(out),
                        "--kernel-synth-dir", str(out / "ks"), "--name", "smoke"],
                       cwd=HERE, env=ENV, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    run = out / "smoke"
    r = subprocess.run([sys.executable, "evaluate.py", str(run), "--datasets", "m1_yearly", "classic_quarterly",
                        "--num-samples", "4", "--smoothness-items", "4", "--device", "cpu"],
                       cwd=HERE, env=ENV, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    return run


def test_smoke_train_and_evaluate(smoke_run):
    train = json.loads((smoke_run / "train.json").read_text())
    assert train["steps"] == 6 and train["tokens_seen"] == 6 * 8 * (64 + 8)
    met = json.loads((smoke_run / "metrics.json").read_text())
    assert set(met["per_dataset"]) == {"m1_yearly", "classic_quarterly"}
    assert np.isfinite([met["mase"], met["wql"], met["smoothness"]]).all()
    assert met["per_dataset"]["m1_yearly"]["naive_mase"] == pytest.approx(4.894322, abs=1e-6)
    env = json.loads((smoke_run / "env.json").read_text())
    assert {"torch", "gpu", "commit"} <= set(env)


def _forecast(run, csv, *extra):
    return subprocess.run([sys.executable, "forecast.py", "--checkpoint", str(run / "checkpoint.pt"), "--csv", str(csv),
                           "--horizon", "4", "--num-samples", "4", "--device", "cpu", *extra],
                          cwd=HERE, env=ENV, capture_output=True, text=True, timeout=90)


def test_forecast_wide_and_long(smoke_run, tmp_path):
    """The real CLI on a train.py checkpoint (tests/test_forecast.py checks the input handling in-process)."""
    import pandas as pd
    t = np.arange(40)
    pd.DataFrame({"date": range(40), "a": 10 + np.sin(t), "b": np.r_[[np.nan] * 5, t[5:] + 1.0]}).to_csv(tmp_path / "w.csv", index=False)
    r = _forecast(smoke_run, tmp_path / "w.csv")
    assert r.returncode == 0, r.stderr
    out = pd.read_csv(tmp_path / "w_forecast.csv")
    assert list(out.columns) == ["id", "step", "date"] + [f"q{q:g}" for q in QUANTILES] + ["mean"]
    assert len(out) == 8 and set(out["id"]) == {"a", "b"} and list(out["date"][:4]) == [40, 41, 42, 43]
    assert (np.diff(out[[f"q{q:g}" for q in QUANTILES]].to_numpy(), axis=1) >= 0).all()
    assert (tmp_path / "w_forecast.png").exists()
    pd.DataFrame({"id": ["x"] * 10 + ["y"] * 12, "value": np.arange(22.0)}).to_csv(tmp_path / "l.csv", index=False)
    r = _forecast(smoke_run, tmp_path / "l.csv")
    assert r.returncode == 0, r.stderr
    assert set(pd.read_csv(tmp_path / "l_forecast.csv")["id"]) == {"x", "y"}


@pytest.mark.parametrize("content, extra, message", [
    ("a\n1\n\n3\n4\n", (), "error: series 'a' has a missing value at row 3"),  # a gap
    ("a\n1\n2\n3\n", ("--num-samples", "0"), "error: --num-samples must be >= 1 (got 0)"),
])
def test_forecast_bad_input_cli(smoke_run, tmp_path, content, extra, message):
    (tmp_path / "bad.csv").write_text(content)
    r = _forecast(smoke_run, tmp_path / "bad.csv", *extra)
    assert r.returncode == 2 and r.stderr.startswith(message) and r.stderr.count("\n") == 1
