"""Synthetic conditional-density datasets of the paper's toy example (v1 §4, App. C).

Each sample is a triple (x, y, z); the task is to predict the distribution of z given (x, y).
The generators draw from numpy's `default_rng(seed)` in the same order as the authors' code, so the
same seed gives the same 5000 triples; the 80/20 split reproduces `train_test_split(test_size=0.2,
random_state=42)` without scikit-learn. All coordinates are quantised into 50 uniform bins on [-1, 1].
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats

DATASETS = ("gaussian", "gmm", "gmm2", "beta")


# ---- generators: (n, 3) arrays of (x, y, z) --------------------------------------------------------

def generate(name: str, n_samples: int, var: float, seed: int) -> np.ndarray:
    """Draw n_samples triples of dataset `name` with numpy's default_rng(seed)."""
    rng = np.random.default_rng(seed)
    sd = np.sqrt(var)
    if name == "gaussian":  # x ~ U(-.8,.8), y ~ N(x, var), z ~ N(y, var)
        x = rng.uniform(-0.8, 0.8, n_samples)
        y = rng.normal(loc=x, scale=sd)
        z = rng.normal(loc=y, scale=sd)
    elif name == "gmm":  # v1's GMM: z ~ mixture at min(x,y) - .1 and max(x,y) + .1
        x = rng.uniform(-0.8, 0.8, n_samples)
        y = rng.normal(loc=x, scale=sd, size=n_samples)
        lo, hi = np.minimum(x, y) - 0.1, np.maximum(x, y) + 0.1
        z = np.empty(n_samples)
        for i in range(n_samples):  # one draw at a time, as the reference does (same RNG stream)
            z[i] = rng.normal(lo[i], sd) if rng.uniform(0, 1) < 0.5 else rng.normal(hi[i], sd)
    elif name == "gmm2":  # x, y ~ U(-.8,.8) independent, z ~ .5 N(x, var) + .5 N(y, var)
        x = rng.uniform(-0.8, 0.8, n_samples)
        y = rng.uniform(-0.8, 0.8, n_samples)
        z = np.empty(n_samples)
        for i in range(n_samples):
            z[i] = rng.normal(x[i], sd) if rng.uniform(0, 1) < 0.5 else rng.normal(y[i], sd)
    elif name == "beta":  # z = s * Beta(100|x|, 100|y|), s uniform on {+1, -1}
        x = rng.uniform(-0.8, 0.8, n_samples)
        y = rng.normal(loc=x, scale=sd)
        sign = rng.choice([1, -1], size=n_samples)
        z = np.array([sign[i] * rng.beta(abs(100 * x[i]), abs(100 * y[i])) for i in range(n_samples)])
    else:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return np.stack([x, y, z], axis=1)


MIXTURE_TRUTHS = ("joint", "per-component")


def mixture_means(name: str, features: np.ndarray):
    """The two component means of the mixture datasets (gmm, gmm2): two (n, 1) arrays."""
    x, y = features[:, :1], features[:, 1:2]
    if name == "gmm":
        return np.minimum(x, y) - 0.1, np.maximum(x, y) + 0.1
    if name == "gmm2":
        return x, y
    raise ValueError(f"{name!r} is not a mixture dataset")


def true_density(name: str, features: np.ndarray, points: np.ndarray, var: float) -> np.ndarray:
    """Conditional density of z given continuous (x, y) at `points`: (n, 2), (K,) -> (n, K).

    For beta the density is evaluated on the non-negative points and mirrored, as the reference
    does (it assumes a grid symmetric about 0).
    """
    x, y = features[:, :1], features[:, 1:2]
    sd = np.sqrt(var)
    if name == "gaussian":
        return stats.norm.pdf(points[None], y, sd)
    if name in ("gmm", "gmm2"):
        a, b = mixture_means(name, features)
        return 0.5 * stats.norm.pdf(points[None], a, sd) + 0.5 * stats.norm.pdf(points[None], b, sd)
    if name == "beta":
        positive = points[points >= 0]
        half = stats.beta.pdf(positive[None], np.abs(100 * x), np.abs(100 * y)) / 2
        return np.concatenate([half[:, ::-1], half], axis=1)
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")


def true_pmfs(name: str, features: np.ndarray, num_bins: int, var: float, mixture: str = "joint") -> np.ndarray:
    """The ground truth: the density at the bin centres, renormalised. (n, num_bins).

    mixture (gmm, gmm2 only): "joint" renormalises the mixture as a whole (our default);
    "per-component" renormalises each Gaussian over the bins, then averages the two, as the
    authors' `gmm1_pdf` / `gmm2_pdf` do. They differ where a component reaches past [-1, 1]:
    per-component gives the truncated component its full weight 1/2 on the bins it still covers.
    """
    if mixture not in MIXTURE_TRUTHS:
        raise ValueError(f"unknown mixture truth {mixture!r}; choose from {', '.join(MIXTURE_TRUTHS)}")
    centers = bin_centers(num_bins)
    if mixture == "per-component" and name in ("gmm", "gmm2"):
        parts = [stats.norm.pdf(centers[None], mean, np.sqrt(var)) for mean in mixture_means(name, features)]
        return sum(p / p.sum(axis=1, keepdims=True) for p in parts) / 2
    dens = true_density(name, features, centers, var)
    return dens / dens.sum(axis=1, keepdims=True)


# ---- quantisation and split ---------------------------------------------------------------------------

def bin_centers(num_bins: int) -> np.ndarray:
    edges = np.linspace(-1, 1, num_bins + 1)
    return (edges[:-1] + edges[1:]) / 2


def quantize(values: np.ndarray, num_bins: int) -> np.ndarray:
    """Index of the uniform bin on [-1, 1] holding each value (values outside are clipped)."""
    edges = np.linspace(-1, 1, num_bins + 1)
    return np.clip(np.digitize(values, edges) - 1, 0, num_bins - 1)


def split_indices(n_samples: int, test_fraction: float = 0.2, split_seed: int = 42):
    """(train, test) indices exactly as sklearn's train_test_split(random_state=split_seed)."""
    n_test = int(np.ceil(test_fraction * n_samples))
    perm = np.random.RandomState(split_seed).permutation(n_samples)
    return perm[n_test:], perm[:n_test]


@dataclass
class ToyData:
    """One dataset draw, split and quantised. Arrays are numpy; the trainer moves them to torch."""
    name: str
    seed: int
    x_train_bins: np.ndarray   # (n_train, 2) float: bin indices of (x, y), the model input
    x_test_bins: np.ndarray    # (n_test, 2)
    x_train: np.ndarray        # (n_train, 2) continuous (x, y): the MLE heads' input
    x_test: np.ndarray         # (n_test, 2)
    z_train: np.ndarray        # (n_train,) continuous z
    z_test: np.ndarray         # (n_test,)
    y_train: np.ndarray        # (n_train,) int bin index of z: the classification label
    y_test: np.ndarray         # (n_test,)
    true_test_pmfs: np.ndarray  # (n_test, num_bins)


def make_data(name: str, seed: int, n_samples: int = 5000, var: float = 0.01, num_bins: int = 50,
              split_seed: int = 42, mixture: str = "joint") -> ToyData:
    triples = generate(name, n_samples, var, seed)
    train, test = split_indices(n_samples, 0.2, split_seed)
    features, z = triples[:, :2], triples[:, 2]
    return ToyData(
        name=name, seed=seed,
        x_train_bins=quantize(features[train], num_bins).astype(np.float32),
        x_test_bins=quantize(features[test], num_bins).astype(np.float32),
        x_train=features[train].astype(np.float32), x_test=features[test].astype(np.float32),
        z_train=z[train].astype(np.float32), z_test=z[test].astype(np.float32),
        y_train=quantize(z[train], num_bins), y_test=quantize(z[test], num_bins),
        true_test_pmfs=true_pmfs(name, features[test], num_bins, var, mixture),
    )
