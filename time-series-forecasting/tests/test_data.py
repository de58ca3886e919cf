"""Tests of the training data (kernel bank, pool disjointness), the tokenizer oracle and KV-cache sampling.
CPU, no network, a few seconds each."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import data as tsdata  # noqa: E402
from prepare import window_hashes  # noqa: E402
from tokenizer import N_SPECIAL, PAD, Tokenizer  # noqa: E402


# ---- KernelSynth bank -----------------------------------------------------------------------------------

def test_kernel_bank_is_chronos_bank():
    """Chronos' KERNEL_BANK: 21 ExpSineSquared (period 4 three times, 730 included) + 3 DotProduct + 3 RBF
    + 3 RationalQuadratic + 2 White + 1 Constant = 33 entries."""
    bank, names = tsdata.kernel_bank(64)
    assert len(names) == 33 and bank.shape == (33, 64, 64)
    periods = [n for n in names if n.startswith("periodic")]
    assert len(periods) == 21 and periods.count("periodic(4)") == 3 and "periodic(730)" in periods
    assert sum(n.startswith(k) for n in names for k in ("linear", "rbf", "rq")) == 9
    assert torch.allclose(bank, bank.transpose(1, 2))
    # every entry is a valid covariance (PSD up to rounding)
    assert (torch.linalg.eigvalsh(bank).min(-1).values > -1e-8 * bank.abs().amax((1, 2))).all()


def test_kernel_synth_cache(tmp_path):
    a = tsdata.kernel_synth_cached(tmp_path / "ks", 12, 48, seed=1, batch_size=8, progress=False)
    assert (tmp_path / "ks" / "meta.json").exists() and not list(tmp_path.glob("ks.tmp*"))
    b = tsdata.kernel_synth_cached(tmp_path / "ks", 12, 48, seed=1, batch_size=8, progress=False)  # read back
    assert np.array_equal(a, b)
    with pytest.raises(SystemExit):  # a folder holding another set is never silently reused
        tsdata.kernel_synth_cached(tmp_path / "ks", 12, 48, seed=2, batch_size=8, progress=False)


# ---- the TSMixup pool --------------------------------------------------------------------------------------

@pytest.mark.skipif(not tsdata.POOL.exists(), reason="benchmark/training_pool.npz not built (prepare_pool.py)")
def test_pool_is_disjoint_from_benchmark():
    """No window of 16 consecutive values of any pool series equals (after z-normalisation, so also rescaled
    or shifted) a window of any benchmark series, past or future."""
    bench, _ = tsdata.load_benchmark()
    bench_hashes = np.unique(np.concatenate([window_hashes(np.concatenate([p, f]), 16)
                                             for ds in bench.values() for _, p, f in ds["items"]]))
    pool, info, meta = tsdata.load_pool()
    assert len(bench_hashes) > 100_000
    pool_hashes = np.concatenate([window_hashes(v, 16) for v in pool])
    assert len(pool_hashes) > 100_000
    assert not np.isin(pool_hashes, bench_hashes).any()
    # and no source item of the benchmark appears in the pool
    items = set(info["items"].tolist())
    assert not any(k in i for i in items for k in ("global_economy", "aus_retail", "PBS", "m1_yearly", "::tourism"))
    assert meta["num_series"] == len(pool) >= 1000
    assert {"Y", "Q", "M", "W", "D", "H"} <= set(meta["per_freq"])


def test_window_hashes_catch_copies():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(200).cumsum()
    assert np.isin(window_hashes(3.5 * x[50:150] + 7), window_hashes(x)).mean() > 0.9  # rescaled, shifted slice
    assert not np.isin(window_hashes(rng.standard_normal(200).cumsum()), window_hashes(x)).any()
    assert len(window_hashes(np.arange(100.0))) == 0  # linear ramps (index columns) carry no identity


def test_tsmixup_weights():
    pool = [np.arange(1, 200.0), np.ones(200) * 5 + np.sin(np.arange(200))]
    mix = tsdata.tsmixup(pool, 200, length=256, seed=0, max_k=1, weights=[1.0, 0.0])
    observed = mix[np.isfinite(mix)]
    assert np.all(np.isfinite(mix[:, -128:])) and np.ptp(observed) > 0
    assert tsdata.item_weights(["a", "a", "a", "a", "b"]).tolist() == [0.5, 0.5, 0.5, 0.5, 1.0]


# ---- tokenizer oracle ----------------------------------------------------------------------------------------

def test_uniform_binning_equals_chronos():
    """'uniform' is chronos-forecasting's MeanScaleUniformBins(-15, 15): same ids, scale and decoded values."""
    chronos = pytest.importorskip("chronos")
    cfg = chronos.ChronosConfig(tokenizer_class="MeanScaleUniformBins", tokenizer_kwargs=dict(low_limit=-15.0, high_limit=15.0),
                                context_length=512, prediction_length=64, n_tokens=4096, n_special_tokens=2,
                                pad_token_id=PAD, eos_token_id=1, use_eos_token=False, model_type="seq2seq",
                                num_samples=20, temperature=1.0, top_k=50, top_p=1.0)
    ref = cfg.create_tokenizer()
    tok = Tokenizer("uniform")
    assert tok.n_values == 4094
    assert torch.equal(tok.centers[1:].float(), ref.centers) and tok.centers[0] == -15
    gen = torch.Generator().manual_seed(0)
    ctx = (torch.randn(64, 300, generator=gen) * torch.logspace(-3, 4, 64)[:, None]
           + torch.randn(64, 1, generator=gen) * 5).float()
    ctx[:8, :40] = float("nan")                        # left padding
    ctx[8] = 0.0                                       # zero series: scale 1
    ctx[9, -5:] = torch.tensor([1e6, -1e6, 1e30, -1e30, 0.0])  # far outside [-15, 15]
    ctx[10] = ref.centers[torch.randint(0, 4093, (300,), generator=gen)]  # exactly on centres ...
    ctx[10, 0] = 2000.0                                              # (scale ~ 1)
    ids_ref, mask_ref, scale_ref = ref.context_input_transform(ctx)
    ids, mask, scale = tok.encode_context(ctx)
    assert torch.equal(scale, scale_ref) and torch.equal(mask, mask_ref)
    assert torch.equal(ids, ids_ref)
    label = torch.randn(64, 64, generator=gen) * 20
    label[3, 10:] = float("nan")
    label_ref, _ = ref.label_input_transform(label, scale_ref)
    assert torch.equal(tok.encode(label, scale)[0], label_ref)
    samples = torch.randint(N_SPECIAL, 4096, (64, 5, 12), generator=gen)
    assert torch.allclose(tok.decode(samples, scale), ref.output_transform(samples, scale_ref), rtol=1e-6, atol=0)


def test_equal_width_binning_kept():
    tok = Tokenizer("equal_width")
    assert tok.n_values == 4094 and np.allclose(np.diff(tok.edges.numpy()), 30 / 4094)


# ---- sampling ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("head", ["linear", "fourier"])
def test_kv_cache_sampling_equals_full_forward(head):
    """The cached decoder loop of model.sample gives the PMFs of a full (uncached) forward pass over the
    sampled prefix, to 1e-9 in float64."""
    from model import ModelConfig, build_model
    torch.manual_seed(0)
    model = build_model(ModelConfig(size="smoke", head=head, num_frequencies=8, dropout=0.0)).double().eval()
    ids = torch.randint(N_SPECIAL, 4096, (3, 20))
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[0, :5] = False
    ids[0, :5] = PAD
    out, pmfs = model.sample(ids, mask, horizon=6, num_samples=2, top_k=0, return_pmfs=True,
                             generator=torch.Generator().manual_seed(1))
    assert out.shape == (3, 2, 6) and pmfs.shape == (3, 2, 6, 4094)
    with torch.no_grad():
        full = model(ids.repeat_interleave(2, 0), mask.repeat_interleave(2, 0), out.reshape(6, 6)).exp()
    assert torch.allclose(pmfs.reshape(6, 6, -1), full, atol=1e-9, rtol=0)


def test_sampling_uses_the_current_cache_api(monkeypatch):
    """model.sample passes an EncoderDecoderCache under the decoder's current argument name (`cache` from
    transformers 5.2x; `past_key_values`, deprecated, is removed in 5.40): no deprecation warning, and the
    same tokens and PMFs as the legacy name gives where this version still takes it."""
    import warnings

    import model as tsmodel
    from model import ModelConfig, build_model
    torch.manual_seed(0)
    m = build_model(ModelConfig(size="smoke", head="fourier", num_frequencies=8, dropout=0.0)).eval()
    ids = torch.randint(N_SPECIAL, 4096, (2, 12))
    mask = torch.ones_like(ids, dtype=torch.bool)

    def sample():
        return m.sample(ids, mask, horizon=5, num_samples=3, return_pmfs=True, generator=torch.Generator().manual_seed(2))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a deprecation (FutureWarning) would fail here
        out, pmfs = sample()
    if tsmodel.CACHE_ARG == "past_key_values":
        pytest.skip("this transformers has only the legacy argument name")
    monkeypatch.setattr(tsmodel, "CACHE_ARG", "past_key_values")
    with pytest.warns(FutureWarning, match="past_key_values"):
        legacy_out, legacy_pmfs = sample()
    assert torch.equal(out, legacy_out) and torch.equal(pmfs, legacy_pmfs)
