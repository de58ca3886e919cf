"""Empirical check of the Fourier-head scaling law (paper §3.2, Theorem 3.3).

    python misc/scaling-law/scaling_law.py            # ~10-20 s on a 2-core CPU
    python misc/scaling-law/scaling_law.py --quick    # smoke run into runs/quick/

Theorem 3.3 (part 2): if a density's Fourier coefficients decay like 1/k^t (t >= 2), its N-frequency
truncation, discretised at the m bin centres and normalised (y^(N)), has smoothness
    s(y^(N)) = C1 - C2 / N^(2t-1) + O(1/N^(2t)),   1 << N < m/2,
so smoothness gets worse (s grows) with N and saturates, more slowly the slower the decay.

We build densities p(z) = 1/2 + sum_k r_k cos(pi k z + phi_k) on [-1, 1] with r_k proportional to
k^-t (scaled so p >= 0) and random phases, truncate them at every N < m/2, measure
`fourier_head.smoothness`, and fit both the theorem's form (exponent fixed at 2t-1) and a free
exponent beta. The smoothness metric sums 100 Gaussian filters of width sigma = 1..100 *bins*; to
see where the exponent comes from we also follow the sigma = 1 and sigma = 100 terms alone
(per-sigma residuals by FFT, the same circular filter as the metric).

Expected (measured, see README): s increases monotonically in N and saturates, faster for larger t;
the fitted exponent is smaller than 2t-1 because the small-sigma terms, which carry most of the
metric's weight, see a frequency k through (1 - exp(-2 pi^2 sigma^2 k^2 / m^2))^2 ~ k^4 while
sigma k << m, giving a tail ~ N^-(2t-5); only terms with sigma k >~ m follow N^-(2t-1).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import curve_fit
from scipy.special import zeta

import plot_style
from fourier_head import bin_centers, smoothness
from scaffold import Field, config_dict, parse_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # misc/: misc_common
from misc_common import (Clock, machine_text, measured, refuse_quick_into_committed, save_figure,  # noqa: E402
                         save_study, saved_results)

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    num_bins: tuple[int, ...] = Field((128, 4096), "bin counts m (demo / Chronos size)", low=16)
    decay_exponents: tuple[float, ...] = Field((2.0, 3.0, 4.0), "t in |c_k| ~ 1/k^t", low=1.0, low_open=True)
    num_densities: int = Field(4, "random-phase densities per t (curves are means)", low=1)
    amplitude: float = Field(0.9, "sum_k r_k = amplitude / 2, so p >= (1 - amplitude)/2", low=0.0, low_open=True,
                             high=1.0)
    fit_from: int = Field(4, "fit on N >= fit_from (the theorem is asymptotic)", low=1)
    seed: int = Field(0, "seed of the random phases", low=0)
    out_dir: str = Field(str(HERE / "results"), "where the JSON results go")
    fig_dir: str = Field(str(HERE / "figures"), "where the PNG figures go")


# --quick: m = 128 only, 2 densities, outputs under runs/quick/
QUICK = {"num_bins": (128,), "num_densities": 2,
         "out_dir": str(HERE / "runs" / "quick" / "results"), "fig_dir": str(HERE / "runs" / "quick" / "figures")}
TRACKED_SIGMAS = (1, 100)  # per-sigma terms followed on their own
README, RESULTS = HERE / "README.md", HERE / "results"


# ------------------------------------------------------------------------------------------------
# data: truncated densities with power-law spectra
# ------------------------------------------------------------------------------------------------

def frequency_grid(m: int) -> np.ndarray:
    """N = 1..64, then ~60 geometric steps up to m/2 - 1 (the theorem's range N < m/2)."""
    top = m // 2 - 1
    return np.unique(np.r_[np.arange(1, min(64, top) + 1), np.geomspace(64, top, 60).round().astype(int)]
                     if top > 64 else np.arange(1, top + 1))


def truncated_pmfs(m: int, t: float, grid: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """(len(grid), m): y^(N) = p_N(bin centres) / sum, p_N = 1/2 + sum_{k<=N} r_k cos(pi k z + phi_k)."""
    k = np.arange(1, grid.max() + 1)
    radii = amplitude / (2 * zeta(t)) * k ** -t  # sum over all k < amplitude / 2: p > 0
    phases = rng.uniform(0, 2 * np.pi, len(k))
    z = bin_centers(m).numpy()
    terms = radii[:, None] * np.cos(np.pi * k[:, None] * z[None, :] + phases[:, None])  # (K, m)
    densities = 0.5 + np.cumsum(terms, axis=0)[grid - 1]
    assert densities.min() > 0
    return densities / densities.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------
# metric terms (duplicated from smoothness-appendix: the head module exposes only the sum)
# ------------------------------------------------------------------------------------------------

def sigma_terms(pmfs: np.ndarray, sigmas) -> np.ndarray:
    """(len(sigmas), B): 6/(pi^2 sigma^2) ||y - G_sigma * y||_2, G_sigma = scipy's wrap filter, radius m-1."""
    m = pmfs.shape[-1]
    t = np.arange(-(m - 1), m)
    spectrum = np.fft.rfft(pmfs, axis=-1)
    out = []
    for sigma in sigmas:
        kernel = np.exp(-0.5 * (t / sigma) ** 2)
        folded = np.zeros(m)
        np.add.at(folded, t % m, kernel / kernel.sum())
        residual = pmfs - np.fft.irfft(spectrum * np.fft.rfft(folded), n=m, axis=-1)
        out.append(6 / (np.pi ** 2 * sigma ** 2) * np.linalg.norm(residual, axis=-1))
    return np.array(out)


# ------------------------------------------------------------------------------------------------
# fits
# ------------------------------------------------------------------------------------------------

def fit_curves(n: np.ndarray, s: np.ndarray, t: float, fit_from: int) -> dict:
    """Theorem form C1 - C2 N^-(2t-1) (linear least squares) and the free-exponent form C1 - C2 N^-beta."""
    keep = n >= fit_from
    x, y = n[keep].astype(float), s[keep]
    exponent = 2 * t - 1
    design = np.stack([np.ones_like(x), -x ** -exponent], axis=1)
    (c1, c2), *_ = np.linalg.lstsq(design, y, rcond=None)
    theorem_rms = float(np.sqrt(np.mean((design @ [c1, c2] - y) ** 2)) / y.mean())

    def model(x, c1, c2, beta):
        return c1 - c2 * x ** -beta

    scale = y.mean()  # fit in units of the mean so the optimiser sees O(1) numbers
    (f1, f2, beta), _ = curve_fit(model, x, y / scale, p0=[y[-1] / scale, (y[-1] - y[0]) / scale, 1.0],
                                  bounds=([-np.inf, -np.inf, 0.01], [np.inf, np.inf, 20]), maxfev=20000)
    free_rms = float(np.sqrt(np.mean((model(x, f1, f2, beta) - y / scale) ** 2)))
    return {"theorem": {"C1": float(c1), "C2": float(c2), "exponent": exponent, "relative_rms": theorem_rms},
            "free": {"C1": float(f1 * scale), "C2": float(f2 * scale), "exponent": float(beta),
                     "relative_rms": free_rms}}


def deficit_slope(n: np.ndarray, values: np.ndarray, lo: int, hi: int) -> float:
    """Least-squares slope of log(values[-1] - values) against log N on lo <= N <= hi (minus sign: decay rate)."""
    deficit = values[-1] - values
    keep = (n >= lo) & (n <= hi) & (deficit > 1e-12 * np.abs(values[-1]))
    if keep.sum() < 3:
        return float("nan")
    return float(-np.polyfit(np.log(n[keep]), np.log(deficit[keep]), 1)[0])


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------

def compute(config: Config) -> dict:
    rng = np.random.default_rng(config.seed)
    curves = []
    for m in config.num_bins:
        grid = frequency_grid(m)
        for t in config.decay_exponents:
            s_all, terms_all = [], []
            for _ in range(config.num_densities):
                pmfs = truncated_pmfs(m, t, grid, config.amplitude, rng)
                s_all.append(smoothness(torch.from_numpy(pmfs)).numpy())
                terms_all.append(sigma_terms(pmfs, TRACKED_SIGMAS))
            s_mean = np.mean(s_all, axis=0)
            terms_mean = np.mean(terms_all, axis=0)
            hi = min(32, grid[-1] // 4)
            curves.append({
                "num_bins": m, "t": t, "num_frequencies": grid.tolist(),
                "smoothness": s_mean.tolist(), "smoothness_per_density": np.array(s_all).tolist(),
                "sigma_terms": {str(sg): terms_mean[i].tolist() for i, sg in enumerate(TRACKED_SIGMAS)},
                "monotone": bool(np.all(np.diff(np.array(s_all), axis=1) > 0)),
                "fit": fit_curves(grid, s_mean, t, config.fit_from),
                "deficit_slope_range": [config.fit_from, int(hi)],
                "deficit_slope": {"metric": deficit_slope(grid, s_mean, config.fit_from, hi),
                                  **{f"sigma={sg}": deficit_slope(grid, terms_mean[i], config.fit_from, hi)
                                     for i, sg in enumerate(TRACKED_SIGMAS)}},
            })
    return {"curves": curves}


def plot(results: dict, config: Config, quick: bool = False) -> list[Path]:
    import matplotlib.pyplot as plt

    plot_style.use()
    curves = results["curves"]
    ms = sorted({c["num_bins"] for c in curves})
    ts = sorted({c["t"] for c in curves})
    blue, orange, green, grey = (plot_style.COLORS[k] for k in ("fourier", "fourier_noreg", "true", "regression"))

    def grid_axes():
        fig, axes = plt.subplots(len(ms), len(ts), figsize=(4.2 * len(ts), 3.3 * len(ms)), squeeze=False)
        return fig, {(c["num_bins"], c["t"]): axes[ms.index(c["num_bins"]), ts.index(c["t"])] for c in curves}

    # smoothness against N with both fits
    fig, axes = grid_axes()
    for c in curves:
        ax, n, s = axes[(c["num_bins"], c["t"])], np.array(c["num_frequencies"]), np.array(c["smoothness"])
        ax.plot(n, s, "o", ms=2.5, color=blue, label="measured (mean of densities)")
        x = np.geomspace(config.fit_from, n.max(), 200)
        th, fr = c["fit"]["theorem"], c["fit"]["free"]
        ax.plot(x, th["C1"] - th["C2"] * x ** -th["exponent"], color=orange,
                label=f"$C_1 - C_2/N^{{{th['exponent']:g}}}$ (theorem)")
        ax.plot(x, fr["C1"] - fr["C2"] * x ** -fr["exponent"], "--", color=grey,
                label=f"$C_1 - C_2/N^{{\\beta}}$, $\\beta$ = {fr['exponent']:.2f}")
        ax.set_xscale("log")
        ax.set_title(f"m = {c['num_bins']} bins, t = {c['t']:g}")
        ax.set_xlabel("number of frequencies N")
        ax.set_ylabel("smoothness")
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths = [save_figure(fig, Path(config.fig_dir) / "smoothness_vs_n.png", quick)]

    # where the exponent comes from: deficit of the whole metric and of single sigma terms, log-log
    fig, axes = grid_axes()
    for c in curves:
        ax, n = axes[(c["num_bins"], c["t"])], np.array(c["num_frequencies"])
        keep = n <= n.max() // 2  # the deficit is measured against N_max; stop well before it
        series = [("metric", np.array(c["smoothness"]), blue)] + [
            (f"$\\sigma$ = {sg} term", np.array(c["sigma_terms"][str(sg)]), col)
            for sg, col in zip(TRACKED_SIGMAS, (green, orange))]
        for label, values, color in series:
            deficit = (values[-1] - values) / (values[-1] - values[0])
            ok = keep & (deficit > 1e-11)
            ax.loglog(n[ok], deficit[ok], color=color, label=label)
        for exponent, style in ((2 * c["t"] - 1, ":"), (2 * c["t"] - 5, "-.")):
            if exponent > 0:
                ax.loglog(n[keep], n[keep].astype(float) ** -exponent, style, color="k", lw=0.8,
                          label=f"$N^{{-{exponent:g}}}$")
        ax.set_ylim(1e-9, 2)
        ax.set_title(f"m = {c['num_bins']}, t = {c['t']:g}")
        ax.set_xlabel("N")
        ax.set_ylabel("$(s_{N_{max}} - s_N)\\,/\\,(s_{N_{max}} - s_1)$")
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(save_figure(fig, Path(config.fig_dir) / "deficit_loglog.png", quick))
    return paths


def readme_table(results: dict, summary: dict) -> str:
    rows = ["| m | t | monotone | theorem fit (2t-1) rel. RMS | free fit beta | free fit rel. RMS | "
            "slope range N | deficit slope: metric | sigma=1 | sigma=100 |",
            "|---:|---:|:---:|---:|---:|---:|:---:|---:|---:|---:|"]
    for c in results["curves"]:
        f, d = c["fit"], c["deficit_slope"]
        rows.append(f"| {c['num_bins']} | {c['t']:g} | {'yes' if c['monotone'] else 'NO'} | "
                    f"{f['theorem']['exponent']:g}: {f['theorem']['relative_rms']:.1e} | {f['free']['exponent']:.2f} | "
                    f"{f['free']['relative_rms']:.1e} | {c['deficit_slope_range'][0]}..{c['deficit_slope_range'][1]} | "
                    f"{d['metric']:.2f} | {d['sigma=1']:.2f} | {d['sigma=100']:.2f} |")
    prov = summary["provenance"]
    rows += ["", "Deficit slope: minus the least-squares slope of log(s(N_max) - s(N)) against log N over the "
             f"slope range. Measured: {prov['wall_seconds']:.1f} s wall ({prov['cpu_seconds']:.1f} s CPU time) "
             f"on a {machine_text(prov)}."]
    return "\n".join(rows)


def readme_blocks(out_dir: Path = RESULTS) -> dict[str, str]:
    """The README's generated block, from the JSON in `out_dir` alone (misc/check_readmes.py checks it)."""
    results, summary = (json.loads((Path(out_dir) / name).read_text()) for name in ("scaling_law.json", "summary.json"))
    return {"results": readme_table(results, summary)}


def main(argv=None) -> None:
    clock = Clock()
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK, extra=lambda p: p.add_argument(
        "--plot-only", action="store_true", help="redraw the figures from the saved JSON"))
    quick = cfg._args.quick
    if cfg.fit_from > min(cfg.num_bins) // 2 - 4:  # the free fit needs at least 3 points N >= fit_from, N < m/2
        sys.exit(f"error: --fit-from must be <= {min(cfg.num_bins) // 2 - 4} for m = {min(cfg.num_bins)} "
                 f"(got {cfg.fit_from})")
    refuse_quick_into_committed(HERE, quick, out_dir=cfg.out_dir, fig_dir=cfg.fig_dir)
    out_dir = Path(cfg.out_dir)
    results_path = out_dir / "scaling_law.json"
    if cfg._args.plot_only:
        return print("figures:", *plot(saved_results(results_path), cfg, quick))
    results = compute(cfg)
    paths = plot(results, cfg, quick)
    env = measured()
    summary = {
        "experiment": "scaling-law",
        "paper": "§3.2 Theorem 3.3 (s(y^(N)) = C1 - C2/N^(2t-1) + O(1/N^(2t)))",
        "metrics": {f"m{c['num_bins']}/t{c['t']:g}/{key}": value for c in results["curves"] for key, value in (
            ("fitted_exponent", c["fit"]["free"]["exponent"]), ("theorem_exponent", c["fit"]["theorem"]["exponent"]),
            ("monotone", c["monotone"]), ("deficit_slope_sigma100", c["deficit_slope"]["sigma=100"]))},
        "provenance": {**env, **clock.seconds()},
    }
    save_study(out_dir, {**config_dict(cfg), "quick": quick}, env, results_path, results, summary, README,
               readme_blocks, committed=not quick and out_dir.resolve() == RESULTS)
    for c in results["curves"]:
        print(f"m={c['num_bins']:>5} t={c['t']:g}: monotone={c['monotone']} fitted beta="
              f"{c['fit']['free']['exponent']:.2f} (theorem {c['fit']['theorem']['exponent']:g}); deficit slopes "
              + ", ".join(f"{k} {v:.2f}" for k, v in c["deficit_slope"].items()))
    print("figures:", ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
