"""Training data generated here: KernelSynth (synthetic Gaussian-process series) and TSMixup, plus the
benchmark reader and the random training windows.

KernelSynth (Chronos, Ansari et al. 2024, App. A): a series is one draw from a zero-mean GP whose kernel
is 1-5 kernels from a fixed bank, combined with randomly chosen + or x, on x = linspace(0, 1, L).
Because every series uses the same x grid, each bank kernel is ONE fixed L x L matrix: a batch of series
is a gather of bank matrices, elementwise + / x, a batched Cholesky and a matrix-vector product. It
runs on a GPU in seconds for tens of thousands of series (float64, jitter escalated on failure).

TSMixup (Chronos §4.1): convex combinations (Dirichlet(1.5) weights) of 1-3 mean-scaled windows of
real series; our pool is data/training_pool.npz, built by prepare_pool.py from packages that bundle data
(not committed; benchmark/training_pool_manifest.json records its series and content hashes), disjoint
from the benchmark. `--pool benchmark` uses the 96 series stored inside benchmark.npz instead.

    python data.py --num-series 200000 --device cuda   # -> data/kernelsynth-n200000-L1024-s0-bank33/ (shards)
"""

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from scaffold import Field, parse_config, pick_device

HERE = Path(__file__).resolve().parent
BENCHMARK = HERE / "benchmark" / "benchmark.npz"
POOL = HERE / "data" / "training_pool.npz"   # prepare_pool.py (generated, not committed)
POOL_MANIFEST = HERE / "benchmark" / "training_pool_manifest.json"  # its committed record
MIN_MIXUP_LENGTH = 128  # observed values of every TSMixup series, at least

# ---- KernelSynth -----------------------------------------------------------------------------------
# Periods in time steps, exactly Chronos' KERNEL_BANK (scripts/kernel-synth.py): hourly (24, 48, 96 and the
# weekly 168, 336, 672), daily (7, 14, 30, 60, 365, 730), weekly (4, 26, 52), monthly (4, 6, 12), quarterly
# (4, 40), yearly (10). Period 4 is listed three times there (weekly, monthly, quarterly) and so here: the
# bank is sampled uniformly, so the repeats triple its weight. 21 periodic + 12 others = 33 entries.
PERIODS = (24, 48, 96, 168, 336, 672, 7, 14, 30, 60, 365, 730, 4, 26, 52, 4, 6, 12, 4, 40, 10)


def kernel_bank(length: int, device=None) -> tuple[torch.Tensor, list[str]]:
    """(K, L, L) float64 kernel matrices on x = linspace(0, 1, L) and their names."""
    x = torch.linspace(0, 1, length, dtype=torch.float64, device=device)
    d = (x[:, None] - x[None, :]).abs()
    mats, names = [], []
    for p in PERIODS:  # ExpSineSquared, length scale 1
        mats.append(torch.exp(-2 * torch.sin(math.pi * d / (p / length)) ** 2)); names.append(f"periodic({p})")
    for s0 in (0.0, 1.0, 10.0):  # DotProduct (linear trend)
        mats.append(s0 ** 2 + x[:, None] * x[None, :]); names.append(f"linear({s0})")
    for ls in (0.1, 1.0, 10.0):  # RBF
        mats.append(torch.exp(-d ** 2 / (2 * ls ** 2))); names.append(f"rbf({ls})")
    for a in (0.1, 1.0, 10.0):  # RationalQuadratic, length scale 1
        mats.append((1 + d ** 2 / (2 * a)) ** -a); names.append(f"rq({a})")
    eye = torch.eye(length, dtype=torch.float64, device=device)
    for n in (0.1, 1.0):  # WhiteKernel
        mats.append(n * eye); names.append(f"white({n})")
    mats.append(torch.ones_like(d)); names.append("constant")
    return torch.stack(mats), names


def kernel_synth(num_series: int, length: int = 1024, max_kernels: int = 5, seed: int = 0,
                 batch_size: int = 256, device="cpu", progress: bool = True) -> np.ndarray:
    """(num_series, length) float32 KernelSynth series, deterministic given (seed, batch_size)."""
    bank, _ = kernel_bank(length, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    eye = torch.eye(length, dtype=torch.float64, device=device)
    out = []
    batches = range(0, num_series, batch_size)
    for start in tqdm(batches, desc="KernelSynth", disable=not progress):
        b = min(batch_size, num_series - start)
        n_k = torch.randint(1, max_kernels + 1, (b,), generator=gen, device=device)
        idx = torch.randint(0, len(bank), (b, max_kernels), generator=gen, device=device)
        add = torch.rand(b, max_kernels, generator=gen, device=device) < 0.5
        z = torch.randn(b, length, 1, generator=gen, device=device, dtype=torch.float64)
        k = bank[idx[:, 0]]
        for j in range(1, max_kernels):
            kj = bank[idx[:, j]]
            combined = torch.where(add[:, j, None, None], k + kj, k * kj)
            k = torch.where((j < n_k)[:, None, None], combined, k)
        scale = k.diagonal(dim1=-2, dim2=-1).mean(-1).abs().clamp_min(1e-12)[:, None, None]
        for jitter in (1e-6, 1e-4, 1e-2):  # escalate only where the factorisation failed
            chol, info = torch.linalg.cholesky_ex(k + jitter * scale * eye)
            if not bool((info > 0).any()):
                break
            k = torch.where((info > 0)[:, None, None], k + jitter * scale * eye, k)
        out.append(torch.nan_to_num((chol @ z)[..., 0]).float().cpu())
    return torch.cat(out).numpy()


def write_shards(series: np.ndarray, out_dir: Path, shard_size: int = 4096, meta: dict | None = None):
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, len(series), shard_size)):
        np.save(out_dir / f"shard-{i:04d}.npy", series[start:start + shard_size])
    (out_dir / "meta.json").write_text(json.dumps(dict(meta or {}, num_series=len(series),
                                                       length=series.shape[1], shard_size=shard_size), indent=1))


def read_shards(out_dir: Path) -> np.ndarray:
    return np.concatenate([np.load(p) for p in sorted(Path(out_dir).glob("shard-*.npy"))])


def kernel_synth_dir(num_series: int, length: int = 1024, seed: int = 0) -> Path:
    """Default cache folder of a KernelSynth set (named by what determines it)."""
    return HERE / "data" / f"kernelsynth-n{num_series}-L{length}-s{seed}-bank{len(PERIODS) + 12}"


def kernel_synth_cached(out_dir, num_series: int, length: int = 1024, seed: int = 0, device="cpu",
                        batch_size: int = 256, progress: bool = True) -> np.ndarray:
    """KernelSynth series from `out_dir` if it holds this exact set, else generated (on `device`) and cached.
    The folder is written under a temporary name and renamed, so concurrent runs never read half a set
    (two runs that both miss generate it twice; one rename wins)."""
    out_dir = Path(out_dir)
    want = dict(num_series=num_series, length=length, seed=seed, batch_size=batch_size, generator="kernel_synth",
                bank_size=len(PERIODS) + 12)
    if (out_dir / "meta.json").exists():
        meta = json.loads((out_dir / "meta.json").read_text())
        if all(meta.get(k) == v for k, v in want.items()):
            return read_shards(out_dir)
        raise SystemExit(f"error: {out_dir} holds another KernelSynth set ({meta}); remove it or pass another folder")
    series = kernel_synth(num_series, length, seed=seed, batch_size=batch_size, device=device, progress=progress)
    tmp = out_dir.with_name(f"{out_dir.name}.tmp{os.getpid()}")
    write_shards(series, tmp, meta=want)
    try:
        os.rename(tmp, out_dir)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return series


# ---- benchmark file and TSMixup ----------------------------------------------------------------------

def load_benchmark(path=BENCHMARK, datasets=None):
    """{name: dict(freq, prediction_length, season, source, items=[(name, past, future)])}, pool list."""
    z = np.load(path, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    out = {}
    for name, info in meta["datasets"].items():
        if datasets is not None and name not in datasets:
            continue
        values, offsets, names = z[f"{name}/values"], z[f"{name}/offsets"], z[f"{name}/names"]
        H = info["prediction_length"]
        items = [(str(n), values[a:b - H], values[b - H:b]) for n, a, b in zip(names, offsets[:-1], offsets[1:])]
        out[name] = dict(info, items=items)
    pv, po = z["pool/values"], z["pool/offsets"]
    pool = [pv[a:b] for a, b in zip(po[:-1], po[1:])]
    return out, pool


def benchmark_names(path=BENCHMARK) -> list[str]:
    """The benchmark's dataset names (from the file's metadata only)."""
    with np.load(path, allow_pickle=False) as z:
        return list(json.loads(str(z["meta"]))["datasets"])


def load_pool(path=POOL):
    """The TSMixup pool: (list of float64 arrays, dict of per-series arrays names/items/freqs, meta).
    `path` is a file of prepare_pool.py, or "benchmark" for the 96-series pool inside benchmark.npz (the
    pool of the committed 900-step runs and of --quick). A missing file is an error, never a fallback."""
    if str(path) == "benchmark":
        _, pool = load_benchmark()
        return pool, dict(items=np.array(["benchmark.npz pool"] * len(pool))), {}
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"error: TSMixup pool {path} not found: build it with `pip install -e '.[tsf-data]'` and "
                         "`python prepare_pool.py`, or pass --pool benchmark (the 96 series inside benchmark.npz)")
    z = np.load(path, allow_pickle=False)
    v, o = z["values"].astype(np.float64), z["offsets"]
    series = [v[a:b] for a, b in zip(o[:-1], o[1:])]
    return series, {k: z[k] for k in ("names", "items", "freqs")}, json.loads(str(z["meta"]))


def item_weights(items) -> np.ndarray:
    """Sampling weight per series so that a source item with n series is drawn with probability ~ sqrt(n)
    (a panel of 300 series is not 300x a single series, nor does it count as only one)."""
    _, inverse, counts = np.unique(np.asarray(items), return_inverse=True, return_counts=True)
    return 1 / np.sqrt(counts[inverse])


def tsmixup(pool: list, num_series: int, length: int = 1024, min_length: int = MIN_MIXUP_LENGTH, max_k: int = 3,
            alpha: float = 1.5, seed: int = 0, weights=None) -> np.ndarray:
    """(num_series, length) float32, left-padded with NaN: mixtures of 1..max_k mean-scaled windows of pool
    series of >= min_length values, each drawn with probability proportional to `weights` (default equal)."""
    rng = np.random.default_rng(seed)
    out = np.full((num_series, length), np.nan, dtype=np.float32)
    lens = np.array([len(p) for p in pool])
    eligible = np.flatnonzero(lens >= min_length)  # every mixture has at least min_length values
    w = np.ones(len(pool)) if weights is None else np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(w[eligible]) / w[eligible].sum()
    for i in range(num_series):
        k = rng.integers(1, max_k + 1)
        chosen = eligible[np.minimum(np.searchsorted(cdf, rng.random(k), side="right"), len(eligible) - 1)]
        n = int(min(rng.integers(min_length, length + 1), lens[chosen].min()))
        w = rng.dirichlet([alpha] * k)
        mix = np.zeros(n)
        for wj, j in zip(w, chosen):
            start = rng.integers(0, lens[j] - n + 1)
            seg = pool[j][start:start + n]
            mix += wj * seg / max(np.abs(seg).mean(), 1e-8)
        out[i, length - n:] = mix
    return out


class WindowSampler:
    """Random (context, label) training windows from a padded series bank, on the bank's device.

    A series is picked from KernelSynth with probability p_kernel_synth, else from TSMixup; the window
    ends at a uniformly random position leaving >= min_past observed context values; context positions
    before the series starts are NaN (-> PAD, masked)."""

    def __init__(self, kernel_synth_bank: torch.Tensor, tsmixup_bank: torch.Tensor, context_length: int,
                 prediction_length: int, min_past: int, p_kernel_synth: float, generator: torch.Generator):
        self.banks = (kernel_synth_bank, tsmixup_bank)
        self.starts = tuple((torch.isnan(b).cumprod(-1)).sum(-1) for b in self.banks)  # first observed index
        self.C, self.H, self.min_past, self.p = context_length, prediction_length, min_past, p_kernel_synth
        self.gen = generator

    def sample(self, batch_size: int):
        dev = self.banks[0].device
        use_ks = torch.rand(batch_size, generator=self.gen, device=dev) < self.p
        out = torch.empty(batch_size, self.C + self.H, device=dev)
        for flag, bank, starts in ((True, self.banks[0], self.starts[0]), (False, self.banks[1], self.starts[1])):
            rows = torch.nonzero(use_ks == flag)[:, 0]
            if len(rows) == 0:
                continue
            L = bank.shape[1]
            idx = torch.randint(0, bank.shape[0], (len(rows),), generator=self.gen, device=dev)
            lo = starts[idx] + self.min_past + self.H  # smallest admissible window end (exclusive)
            end = lo + (torch.rand(len(rows), generator=self.gen, device=dev) * (L - lo + 1)).long().clamp_max(L - lo)
            pos = end[:, None] - (self.C + self.H) + torch.arange(self.C + self.H, device=dev)
            vals = bank[idx[:, None], pos.clamp_min(0)]
            out[rows] = torch.where(pos >= 0, vals, torch.full_like(vals, float("nan")))
        return out[:, :self.C], out[:, self.C:]


@dataclass
class Config:
    num_series: int = Field(200_000, "KernelSynth series to generate (train.py's default)", low=1)
    length: int = Field(1024, "values per series", low=2)
    seed: int = Field(0, "seed of the set", low=0)
    batch_size: int = Field(256, "series per batched Cholesky (the set depends on it)", low=1)
    device: str = Field("auto", "auto | cpu | cuda | cuda:N")
    out: str = Field("", "folder (default: data/kernelsynth-n<N>-L<length>-s<seed>-bank33, what train.py reads)")


def main(argv=None):
    cfg = parse_config(Config, argv, description=__doc__)
    device = pick_device(cfg.device)
    out = Path(cfg.out) if cfg.out else kernel_synth_dir(cfg.num_series, cfg.length, cfg.seed)
    series = kernel_synth_cached(out, cfg.num_series, cfg.length, seed=cfg.seed, device=device,
                                 batch_size=cfg.batch_size)
    print(f"{len(series)} KernelSynth series in {out}")


if __name__ == "__main__":
    main()
