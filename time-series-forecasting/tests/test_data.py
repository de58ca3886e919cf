"""Tests of the training data (kernel bank, pool disjointness), the tokenizer oracle and KV-cache sampling.
CPU, no network, a few seconds each."""

import json
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
import prepare_pool  # noqa: E402
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

BENCH_FREQS = {"Y", "Q", "M", "W", "D", "B", "H", "30min"}  # every frequency of the benchmark


def benchmark_series():
    bench, _ = tsdata.load_benchmark()
    return [np.concatenate([p, f]) for ds in bench.values() for _, p, f in ds["items"]]


def manifest():
    return json.loads(tsdata.POOL_MANIFEST.read_text())


def test_pool_manifest_counts_and_disjointness():
    """The committed record of the pool: >= 1,000 series, every benchmark frequency represented by series
    long enough to mix, counts that add up, no source item of the benchmark, and no series whose content
    hash (z-normalised values) equals that of a benchmark series or of another pool series."""
    m = manifest()
    meta, rows = m["meta"], [dict(zip(m["columns"], r)) for r in m["series"]]
    assert meta["num_series"] == len(rows) >= 1000
    assert sum(r["length"] >= meta["mixable_min_len"] for r in rows) == meta["num_mixable"] >= 1000
    mixable_freqs = {r["freq"] for r in rows if r["length"] >= meta["mixable_min_len"]}
    assert BENCH_FREQS <= mixable_freqs
    for table in ("per_freq", "per_source"):
        assert sum(v["series"] for v in meta[table].values()) == len(rows)
    assert sum(sum(v.values()) for v in meta["per_source_freq"].values()) == len(rows)
    items = {r["item"] for r in rows}
    assert not [i for i in items if i.split("::")[-1] in prepare_pool.BLOCKED.get(i.split("::")[0], ())]
    assert not any(k in i for i in items for k in ("global_economy", "aus_retail", "PBS", "m1_yearly", "::tourism",
                                                    "prisonLF", "us-employment"))
    bench_hashes = {prepare_pool.series_hash(v) for v in benchmark_series()}
    pool_hashes = [r["hash"] for r in rows]
    assert not bench_hashes & set(pool_hashes)
    assert len(set(pool_hashes)) == len(pool_hashes)


@pytest.mark.skipif(not tsdata.POOL.exists(),
                    reason="data/training_pool.npz not built: pip install -e '.[tsf-data]'; python prepare_pool.py")
def test_pool_is_disjoint_from_benchmark():
    """The built pool is the one the manifest records (same series, same content hashes), and no window of
    16 consecutive values of any pool series equals (after z-normalisation, so also rescaled or shifted) a
    window of any benchmark series, past or future."""
    pool, info, meta = tsdata.load_pool()
    m = manifest()
    assert [[str(i), str(n), str(f), len(v), prepare_pool.series_hash(v)]
            for i, n, f, v in zip(info["items"], info["names"], info["freqs"], pool)] == m["series"]
    # the drop report may differ with package versions (an item one version lacks is not dropped: it is
    # absent); the kept series and their counts may not
    assert {k: v for k, v in meta.items() if k != "dropped"} == {k: v for k, v in m["meta"].items() if k != "dropped"}
    bench_hashes = np.unique(np.concatenate([window_hashes(v, 16) for v in benchmark_series()]))
    assert len(bench_hashes) > 100_000
    pool_hashes = np.concatenate([window_hashes(v, 16) for v in pool])
    assert len(pool_hashes) > 1_000_000
    assert not np.isin(pool_hashes, bench_hashes).any()


def test_pool_file_missing_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="not found: build it with .*prepare_pool.py.*--pool benchmark"):
        tsdata.load_pool(tmp_path / "none.npz")
    pool, info, meta = tsdata.load_pool("benchmark")  # the 96 series inside benchmark.npz, on request only
    assert len(pool) == len(info["items"]) > 50 and meta == {}


def test_pool_cleaning_rules():
    """Trailing NaNs (not yet reported) are cut before the NaN-free tail; a sub-sampled copy (values of a
    benchmark series in its order) is caught, values shared by chance in no order are not."""
    v = np.r_[np.nan, np.arange(40.0) ** 1.5, np.nan, np.nan]
    assert np.array_equal(prepare_pool.clean(v), np.arange(40.0) ** 1.5)
    assert prepare_pool.clean(np.r_[np.arange(30.0), np.nan, np.arange(10.0)]) is None  # tail too short
    rng = np.random.default_rng(0)
    daily = np.round(100 + rng.standard_normal(3000).cumsum(), 2)
    assert prepare_pool.in_order(daily[::21][:120], daily)             # a "monthly" sub-sample: a copy
    counts = rng.integers(0, 500, 200).astype(float)
    assert not prepare_pool.in_order(rng.permutation(np.unique(counts))[:150], counts)  # chance, any order
    assert prepare_pool.in_order(daily[:5], daily)                     # too few matches to tell: a copy
    h = prepare_pool.series_hash
    assert h(daily) == h(3 * daily + 7) != h(daily[1:])                # rescaled / shifted copies share it


def test_grouped_panels():
    import pandas as pd
    df = pd.DataFrame(dict(city=["b", "a", "a", "b", "a"], date=["2001", "2001", "2000", "2000", "2002"],
                           sales=[4.0, 2.0, 1.0, 3.0, 5.0], rownames=range(5)))
    assert [(n, v.tolist()) for n, v in prepare_pool.grouped(df, "city", ["sales"], "date")] == [
        ("a::sales", [1.0, 2.0, 5.0]), ("b::sales", [3.0, 4.0])]
    assert [(n, v.tolist()) for n, v in prepare_pool.grouped(df, None, None, "date")] == [
        ("sales", [1.0, 3.0, 4.0, 2.0, 5.0])]  # time order (stable); rownames is no series


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


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kv_cache_samples_equal_full_forward_samples(dtype):
    """The tokens model.sample draws with its KV cache are the tokens a sampler that reruns the full
    (uncached) decoder over the prefix at every step draws from the same generator, top-k 50 included."""
    from model import ModelConfig, build_model
    torch.manual_seed(0)
    model = build_model(ModelConfig(size="smoke", head="fourier", num_frequencies=8, dropout=0.0)).to(dtype).eval()
    ids = torch.randint(N_SPECIAL, 4096, (3, 20))
    mask = torch.ones_like(ids, dtype=torch.bool)
    B, S, H = 3, 4, 7
    cached, _ = model.sample(ids, mask, horizon=H, num_samples=S, top_k=50, temperature=0.9,
                             generator=torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    ids_r, mask_r = ids.repeat_interleave(S, 0), mask.repeat_interleave(S, 0)
    prefix = torch.empty(B * S, 0, dtype=torch.long)
    with torch.no_grad():
        for t in range(H):
            labels = torch.cat([prefix, torch.full((B * S, 1), PAD)], 1)  # the last label is never read
            probs = (model(ids_r, mask_r, labels)[:, t] / 0.9).softmax(-1)
            kth = probs.topk(50, dim=-1).values[:, -1:]
            probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
            prefix = torch.cat([prefix, torch.multinomial(probs, 1, generator=gen) + N_SPECIAL], 1)
    assert torch.equal(cached, prefix.view(B, S, H))
