"""Smoothness metric on truncated square waves (paper App. B, Fig. 6 and Fig. 7).

    python misc/smoothness-appendix/square_waves.py            # ~5 s on a 2-core CPU
    python misc/smoothness-appendix/square_waves.py --quick    # smoke run into runs/quick/

A square wave's Fourier series keeps only odd sines, f(x) = 4/pi * sum_{n odd} sin(n pi x / L) / n
(paper Eq. B.1). Truncated to K sines, clipped at 0 and normalised, it becomes a PMF over
`num_points` (= 2048, the paper's "sample rate") ordered bins; more sines means sharper edges and
Gibbs ripples, so the smoothness metric (lower = smoother) should grow with K. Fig. 6 shows
K = 1, 2, 3, 4, 10, 20 with the metric in the titles; Fig. 7 shows the metric against K for the
L2 discrepancy (the paper's choice) and for L1, which the paper reports as non-monotone beyond
~80 sines.

The L2 values come from `fourier_head.smoothness`. The L1 variant is not in the head module, so the
per-sigma residuals y - G_sigma * y are computed here by FFT (the same circular convolution as
scipy's gaussian_filter1d(mode="wrap", radius=m-1), checked in the test) and the L2 value from them
is checked against `fourier_head.smoothness`.

Expected: the six Fig. 6 values round to the paper's 0.00004, 0.00008, 0.00011, 0.00014, 0.00027,
0.00040; L2 increases monotonically in K, L1 does not.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import plot_style
from fourier_head import smoothness
from scaffold import Field, config_dict, parse_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # misc/: misc_common
from misc_common import (Clock, machine_text, measured, refuse_quick_into_committed, save_figure,  # noqa: E402
                         save_study, saved_results)

HERE = Path(__file__).resolve().parent

# Fig. 6 of the paper (App. B): smoothness printed in each panel title, 5 decimals.
PAPER_FIG6 = {1: 0.00004, 2: 0.00008, 3: 0.00011, 4: 0.00014, 10: 0.00027, 20: 0.00040}


@dataclass
class Config:
    num_points: int = Field(2048, "samples per wave = PMF length (paper: 2048)", low=8)
    x_start: float = Field(21.0, "first x sample (official script: 21)")
    x_span: float = Field(10.0, "x range sampled, [x_start, x_start + x_span]", low=0.0, low_open=True)
    half_period: float = Field(4.0, "L in sin(n pi x / L) (official script: 4)", low=0.0, low_open=True)
    panel_sines: tuple[int, ...] = Field((1, 2, 3, 4, 10, 20), "K of the Fig. 6 panels (up to six are drawn)", low=1)
    max_sines: int = Field(200, "Fig. 7 sweeps K = 1..max_sines (>= the largest panel)", low=1)
    plot_from: int = Field(61, "Fig. 7 x axis starts here (paper: 61)", low=1)
    sensitivity_points: tuple[int, ...] = Field((1024, 2048, 4096), "sample rates for the sensitivity table", low=8)
    out_dir: str = Field(str(HERE / "results"), "where the JSON results go")
    fig_dir: str = Field(str(HERE / "figures"), "where the PNG figures go")


# --quick: few sines, outputs under runs/quick/
QUICK = {"max_sines": 30, "plot_from": 1, "sensitivity_points": (2048,),
         "out_dir": str(HERE / "runs" / "quick" / "results"), "fig_dir": str(HERE / "runs" / "quick" / "figures")}
README, RESULTS = HERE / "README.md", HERE / "results"


# ------------------------------------------------------------------------------------------------
# data: square-wave PMFs
# ------------------------------------------------------------------------------------------------

def square_wave_pmfs(num_sines: list[int], config: Config, num_points: int | None = None,
                     clip_and_normalize: bool = True) -> np.ndarray:
    """(len(num_sines), num_points): the K-sine square-wave series, clipped at 0 and normalised to sum 1."""
    num_points = num_points or config.num_points
    x = np.linspace(config.x_start, config.x_start + config.x_span, num_points)
    n = np.arange(1, 2 * max(num_sines), 2)  # odd harmonics 1, 3, 5, ...
    terms = 4 / np.pi * np.sin(np.pi * n[:, None] * x[None, :] / config.half_period) / n[:, None]
    partial_sums = np.cumsum(terms, axis=0)[np.asarray(num_sines) - 1]  # row i: first K_i sines
    if not clip_and_normalize:
        return partial_sums
    pmfs = np.clip(partial_sums, 0, None)
    return pmfs / pmfs.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------
# metric with a choice of discrepancy
# ------------------------------------------------------------------------------------------------

def folded_gaussian_kernels(m: int, sigmas: np.ndarray) -> np.ndarray:
    """(len(sigmas), m): scipy's gaussian_filter1d kernel (radius m-1) folded modulo m (= mode "wrap")."""
    t = np.arange(-(m - 1), m)
    kernels = np.exp(-0.5 * (t[None, :] / sigmas[:, None]) ** 2)
    kernels /= kernels.sum(axis=1, keepdims=True)
    folded = np.zeros((len(sigmas), m))
    np.add.at(folded, (slice(None), t % m), kernels)
    return folded


def smoothness_by_discrepancy(pmfs: np.ndarray, sigmas: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """s_D(y) = sum_sigma 6/(pi^2 sigma^2) D(y - G_sigma * y) for D = L2 and L1; pmfs (B, m) -> {D: (B,)}."""
    sigmas = np.arange(1, 101) if sigmas is None else sigmas
    m = pmfs.shape[-1]
    spectrum = np.fft.rfft(pmfs, axis=-1)
    kernel_spectra = np.fft.rfft(folded_gaussian_kernels(m, sigmas), axis=-1)
    alphas = 6 / (np.pi ** 2 * sigmas ** 2)
    out = {"L2": np.zeros(len(pmfs)), "L1": np.zeros(len(pmfs))}
    for alpha, kernel_spectrum in zip(alphas, kernel_spectra):  # one sigma at a time: (B, m) memory
        residual = pmfs - np.fft.irfft(spectrum * kernel_spectrum, n=m, axis=-1)
        out["L2"] += alpha * np.linalg.norm(residual, axis=-1)
        out["L1"] += alpha * np.abs(residual).sum(axis=-1)
    return out


# ------------------------------------------------------------------------------------------------
# main: compute -> JSON -> figures (+ README table)
# ------------------------------------------------------------------------------------------------

def compute(config: Config) -> dict:
    panels = list(config.panel_sines)
    panel_values = smoothness(torch.from_numpy(square_wave_pmfs(panels, config))).tolist()

    sweep = list(range(1, config.max_sines + 1))
    sweep_pmfs = square_wave_pmfs(sweep, config)
    by_d = smoothness_by_discrepancy(sweep_pmfs)
    head_l2 = smoothness(torch.from_numpy(sweep_pmfs)).numpy()
    assert np.allclose(by_d["L2"], head_l2, rtol=1e-9, atol=0), "FFT L2 disagrees with fourier_head.smoothness"
    drops = [k for k in sweep[1:] if by_d["L1"][k - 1] < by_d["L1"][k - 2]]  # K where L1 went down

    # Which choices the printed numbers depend on: sample rate, and the clip+normalise step.
    sensitivity = {}
    for num_points in config.sensitivity_points:
        sensitivity[f"num_points={num_points}"] = smoothness(
            torch.from_numpy(square_wave_pmfs(panels, config, num_points))).tolist()
    raw = square_wave_pmfs(panels, config, clip_and_normalize=False)
    sensitivity["no clip, no normalisation"] = smoothness(torch.from_numpy(raw)).tolist()
    clipped = np.clip(raw, 0, None)
    sensitivity["clip, no normalisation"] = smoothness(torch.from_numpy(clipped)).tolist()
    sensitivity["clipped mass sum"] = clipped.sum(axis=1).tolist()

    return {
        "panels": [{"num_sines": k, "smoothness": v, "rounded_5dp": round(v, 5),
                    "paper": PAPER_FIG6.get(k), "matches_paper": PAPER_FIG6.get(k) == round(v, 5)}
                   for k, v in zip(panels, panel_values)],
        "panel_pmfs_every_8th_point": square_wave_pmfs(panels, config)[:, ::8].round(8).tolist(),
        "sweep": {"num_sines": sweep, "L2": by_d["L2"].tolist(), "L1": by_d["L1"].tolist()},
        "l2_monotone": bool(np.all(np.diff(by_d["L2"]) > 0)),
        "l1_decreases_at": drops,
        "sensitivity": sensitivity,
    }


def plot(results: dict, config: Config, quick: bool = False) -> list[Path]:
    import matplotlib.pyplot as plt

    plot_style.use()
    fig_dir = Path(config.fig_dir)
    blue = plot_style.COLORS["fourier"]

    # Fig. 6: the six PMFs (recomputed from the config; the JSON keeps every 8th point only).
    panels = results["panels"]
    pmfs = square_wave_pmfs([p["num_sines"] for p in panels], config)
    fig, axes = plt.subplots(3, 2, figsize=(11, 6.5), sharex=True, sharey=True)
    for ax, panel, pmf in zip(axes.flat, panels, pmfs):
        ax.plot(pmf, color=blue, lw=1.2)
        paper = f" (paper {panel['paper']:.5f})" if panel["paper"] is not None and not quick else ""
        k = panel["num_sines"]
        ax.set_title(f"{k} sine{'s' if k > 1 else ''}: smoothness = {panel['smoothness']:.5f}{paper}")
    for ax in axes[-1]:
        ax.set_xlabel("sample index")
    for ax in axes[:, 0]:
        ax.set_ylabel("probability mass")
    fig.suptitle(f"Truncated square waves as densities ({config.num_points} bins)", y=1.0)
    fig.tight_layout()
    paths = [save_figure(fig, fig_dir / "square_waves_fig6.png", quick)]

    # Fig. 7: smoothness against K for D = L2 and D = L1.
    sweep = results["sweep"]
    k = np.array(sweep["num_sines"])
    shown = k >= config.plot_from
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, name, color in zip(axes, ("L2", "L1"), (blue, plot_style.COLORS["fourier_noreg"])):
        values = np.array(sweep[name])
        ax.plot(k[shown], values[shown], color=color, lw=1.5)
        drops = [d for d in (results["l1_decreases_at"] if name == "L1" else []) if d >= config.plot_from]
        if drops:
            ax.plot(drops, values[np.array(drops) - 1], "v", color=plot_style.COLORS["linear"], ms=4,
                    label=f"decrease from K-1 ({len(drops)} of {shown.sum() - 1})")
            ax.legend()
        ax.set_title(f"D = {name} distance" + (" (monotone)" if name == "L2" and results["l2_monotone"] else ""))
        ax.set_xlabel("number of sine waves K")
        ax.set_ylabel("smoothness")
    fig.suptitle("Smoothness metric on a square wave with an increasing number of sine waves", y=1.02)
    fig.tight_layout()
    paths.append(save_figure(fig, fig_dir / "smoothness_l2_vs_l1_fig7.png", quick))
    return paths


def readme_table(results: dict, summary: dict) -> str:
    """The README's results block, generated from the JSON."""
    sens = results["sensitivity"]

    def cell(table, key, i):
        return f"{table[key][i]:.2e}" if key in table else "-"

    rows = ["| K sines | ours | ours, 5 dp | paper | match | 1024 points | 4096 points | no clip/normalise |",
            "|---:|---:|---:|---:|:---:|---:|---:|---:|"]
    for i, p in enumerate(results["panels"]):
        rows.append(f"| {p['num_sines']} | {p['smoothness']:.3e} | {p['rounded_5dp']:.5f} | "
                    f"{'-' if p['paper'] is None else format(p['paper'], '.5f')} | "
                    f"{'-' if p['paper'] is None else 'yes' if p['matches_paper'] else 'NO'} | "
                    f"{cell(sens, 'num_points=1024', i)} | {cell(sens, 'num_points=4096', i)} | "
                    f"{sens['no clip, no normalisation'][i]:.3f} |")
    first_drop = results["l1_decreases_at"][0] if results["l1_decreases_at"] else None
    prov = summary["provenance"]
    rows += ["", f"L2 monotone in K = 1..{results['sweep']['num_sines'][-1]}: {results['l2_monotone']}. "
             f"L1 first decreases at K = {first_drop}; it decreases at {len(results['l1_decreases_at'])} of "
             f"{len(results['sweep']['num_sines']) - 1} steps.", "",
             f"Measured: {prov['wall_seconds']:.1f} s wall ({prov['cpu_seconds']:.1f} s CPU time) on a {machine_text(prov)}."]
    return "\n".join(rows)


def readme_blocks(out_dir: Path = RESULTS) -> dict[str, str]:
    """The README's generated block, from the JSON in `out_dir` alone (misc/check_readmes.py checks it)."""
    results, summary = (json.loads((Path(out_dir) / name).read_text()) for name in ("square_waves.json", "summary.json"))
    return {"results": readme_table(results, summary)}


def main(argv=None) -> None:
    clock = Clock()
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK, extra=lambda p: p.add_argument(
        "--plot-only", action="store_true", help="redraw the figures from the saved JSON"))
    quick = cfg._args.quick
    if cfg.max_sines < max(cfg.panel_sines) or cfg.plot_from > cfg.max_sines:
        sys.exit(f"error: need max(--panel-sines) <= --max-sines and --plot-from <= --max-sines (got panels up to "
                 f"{max(cfg.panel_sines)}, max-sines {cfg.max_sines}, plot-from {cfg.plot_from})")
    refuse_quick_into_committed(HERE, quick, out_dir=cfg.out_dir, fig_dir=cfg.fig_dir)
    out_dir = Path(cfg.out_dir)
    results_path = out_dir / "square_waves.json"
    if cfg._args.plot_only:
        return print("figures:", *plot(saved_results(results_path), cfg, quick))

    results = compute(cfg)
    paths = plot(results, cfg, quick)
    env = measured()
    summary = {
        "experiment": "smoothness-appendix",
        "paper": "App. B, Fig. 6 and Fig. 7",
        "metrics": {f"smoothness/square_wave_K{p['num_sines']}": p["smoothness"] for p in results["panels"]},
        "paper_values": {f"smoothness/square_wave_K{k}": v for k, v in PAPER_FIG6.items()},
        "all_match_paper_5dp": all(p["matches_paper"] for p in results["panels"]),
        "l2_monotone": results["l2_monotone"],
        "l1_first_decrease_at": results["l1_decreases_at"][0] if results["l1_decreases_at"] else None,
        # the whole command (compute + figures), excluding the Python/torch start-up
        "provenance": {**env, **clock.seconds()},
    }
    save_study(out_dir, {**config_dict(cfg), "quick": quick}, env, results_path, results, summary, README,
               readme_blocks, committed=not quick and out_dir.resolve() == RESULTS)
    for p in results["panels"]:
        print(f"K={p['num_sines']:>3}  smoothness={p['smoothness']:.6f}  paper={p['paper']}  "
              f"match={p['matches_paper']}")
    print("figures:", ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
