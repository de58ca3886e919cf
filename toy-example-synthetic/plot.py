"""Figures of the toy example, from results/*.json only (no training, no run directories needed).

    python plot.py [--results results] [--figures figures]
    python plot.py --quick        # runs/quick/results -> runs/quick/figures, "quick run" in every title

figures/varying_frequencies.png  KL and smoothness vs N per dataset (paper v1 Fig. 8 / camera-ready); bands
                                 +-0.67 std: over seeds for KL, over all test PMFs for smoothness (the authors')
figures/pmf_grid.png             learned vs true PMF, rows datasets, columns linear / GMM / Fourier N=12, seed 1
figures/pmf_grid_paper.png       the same with the camera-ready's choices: Fourier N = 18 / 10 / 16, seeds 1 / 1 / 42
                                 (gaussian / gmm2 / beta; drawn when results/examples.json has them)
figures/mle_vs_frequencies.png   Fourier-MLE KL (1000-bin grid) and perplexity vs N, GMM-MLE as a line
figures/mle_densities.png        learned continuous densities vs the true one
figures/training.gif             the PMF of one test point being learned, linear vs GMM vs Fourier
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaffold import Field, parse_config

try:
    import plot_style
except ImportError:  # forked without the repository's plot_style.py: matplotlib defaults
    plot_style = None

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    results: str = Field(str(HERE / "results"), "folder holding summary.json and examples.json (aggregate.py)")
    figures: str = Field(str(HERE / "figures"), "where the figures go")


QUICK = dict(results=str(HERE / "runs" / "quick" / "results"), figures=str(HERE / "runs" / "quick" / "figures"))
QUICK_TITLE = "quick run (CPU smoke settings, not results)"
BAND = 0.67  # +-0.67 std ~ a 50% interval, as the paper's figures
COLORS = plot_style.COLORS if plot_style else {"linear": "C3", "gmm": "C4", "fourier": "C0", "fourier_noreg": "C1",
                                               "true": "C2", "regression": "C7"}
DATASET_TITLES = {"gaussian": "Gaussian", "gmm": "GMM (v1)", "gmm2": "GMM-2", "beta": "Beta"}
ORDER = ["gaussian", "gmm2", "beta", "gmm"]


def setup():
    import matplotlib
    if plot_style:
        plot_style.use()
    else:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, path: Path, quick: bool = False):
    if quick:
        fig.suptitle(QUICK_TITLE, color="C3")
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", dpi=150)
    import matplotlib.pyplot as plt
    plt.close(fig)
    print("wrote", path)


def stat(row, metric):
    """(mean, std) of a summary row's metric. Smoothness: over all test PMFs of all seeds when the row
    has them (the authors' bands), else over the seed means."""
    s = row.get("smoothness_all_pmfs") if metric == "smoothness" and row.get("smoothness_all_pmfs") else row.get(metric)
    if not s:
        return np.nan, 0.0
    return s["mean"], s["std"] or 0.0


def baseline(ax, row, metric, color, label):
    if not row or metric not in row:
        return
    mean, std = stat(row, metric)
    ax.axhline(mean, color=color, ls="--", lw=1.5, label=label)
    ax.axhspan(mean - BAND * std, mean + BAND * std, color=color, alpha=0.12, lw=0)


def sweep_line(ax, rows, metric, color, label):
    rows = sorted(rows, key=lambda r: r["num_frequencies"])
    if not rows:
        return
    n = np.array([r["num_frequencies"] for r in rows])
    mean, std = np.array([stat(r, metric) for r in rows]).T
    ax.plot(n, mean, "o-", color=color, ms=3.5, lw=1.5, label=label)
    ax.fill_between(n, mean - BAND * std, mean + BAND * std, color=color, alpha=0.15, lw=0)


def varying_frequencies(plt, rows, out: Path, heads=("fourier", "linear", "gmm"),
                        metrics=(("kl", "KL divergence"), ("smoothness", "Smoothness")), name="varying_frequencies.png",
                        quick: bool = False):
    datasets = [d for d in ORDER if any(r["dataset"] == d and r["head"] == heads[0] for r in rows)]
    if not datasets:
        return
    fig, axes = plt.subplots(len(datasets), len(metrics), figsize=(4.2 * len(metrics), 2.9 * len(datasets)),
                             squeeze=False)
    for i, d in enumerate(datasets):
        mine = [r for r in rows if r["dataset"] == d]
        for j, (metric, label) in enumerate(metrics):
            ax = axes[i, j]
            for gamma, color in ((0.0, COLORS["fourier_noreg"]), (1e-6, COLORS["fourier"])):
                sweep_line(ax, [r for r in mine if r["head"] == heads[0] and r["gamma"] == gamma], metric, color,
                           f"{'Fourier-MLE' if heads[0] == 'fourier-mle' else 'Fourier'} γ={gamma:g}")
            baseline(ax, next((r for r in mine if r["head"] == heads[1]), None), metric, COLORS["linear" if heads[1] == "linear" else "gmm"],
                     {"linear": "Linear", "gmm-mle": "GMM-MLE"}.get(heads[1], heads[1]))
            if len(heads) > 2:
                baseline(ax, next((r for r in mine if r["head"] == heads[2]), None), metric, COLORS["gmm"], "GMM head")
            n_seeds = max((r["n_seeds"] for r in mine), default=0)
            pooled = metric == "smoothness" and any(r.get("smoothness_all_pmfs") for r in mine)
            ax.set_title(f"{DATASET_TITLES.get(d, d)}: {label} (n={n_seeds} seeds{', all PMFs' if pooled else ''})")
            ax.set_xlabel("Fourier frequencies N")
            ax.set_ylabel(label)
            if i == 0 and j == 0:
                ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out / name, quick)


def pmf_grid(plt, examples, out: Path, key="pmf_grid", name="pmf_grid.png", quick: bool = False):
    entries = [e for e in examples.get(key, []) if e["dataset"] in ("gaussian", "gmm2", "beta")]
    if not entries:
        return
    heads = [("linear", "Linear head"), ("gmm", "GMM head"), ("fourier", "Fourier head")]
    fig, axes = plt.subplots(len(entries), 3, figsize=(12, 2.8 * len(entries)), squeeze=False, sharey="row")
    for i, e in enumerate(entries):
        true = np.array(e["true_pmf"])
        centers = -1 + (2 * np.arange(len(true)) + 1) / len(true)
        for j, (head, title) in enumerate(heads):
            ax = axes[i, j]
            h = e["heads"].get(head)
            if h:
                ax.bar(centers, h["pmf"], width=2 / len(true), color=COLORS[head], alpha=0.75,
                       label=f"predicted (smoothness {h['smoothness']:.4f})")
                if head == "fourier":
                    title += f" (N={h['config'].split('-f')[1].split('-')[0]})"
                title += f", seed {h['seed']}"
            ax.plot(centers, true, color=COLORS["true"], lw=2, label="true")
            ax.set_title(f"{DATASET_TITLES[e['dataset']]} — {title}", fontsize=10)
            ax.legend(fontsize=8, loc="upper left")
            if j == 0:
                ax.set_ylabel("Probability mass")
            if i == len(entries) - 1:
                ax.set_xlabel("z")
    fig.tight_layout()
    save(fig, out / name, quick)


def mle_densities(plt, examples, out: Path, quick: bool = False):
    entries = examples["mle"]
    datasets = [d for d in ORDER if any(e["dataset"] == d for e in entries)]
    if not datasets:
        return
    n_points = len(entries[0]["test_indices"])
    fig, axes = plt.subplots(len(datasets), n_points, figsize=(3.8 * n_points, 2.6 * len(datasets)), squeeze=False)
    for i, d in enumerate(datasets):
        for e in (e for e in entries if e["dataset"] == d):
            grid = np.array(e["grid"])
            fourier = e["config"].startswith("fourier")
            for j in range(n_points):
                ax = axes[i, j]
                ax.plot(grid, e["density"][j], color=COLORS["fourier" if fourier else "gmm"], lw=1.6,
                        label="Fourier-MLE N=12" if fourier else "GMM-MLE")
                if fourier:
                    ax.plot(grid, e["true_density"][j], color=COLORS["true"], lw=1.6, ls="--", label="true")
                ax.set_title(f"{DATASET_TITLES[d]}, test point {e['test_indices'][j]}", fontsize=10)
        axes[i, 0].set_ylabel("density")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    save(fig, out / "mle_densities.png", quick)


def training_gif(plt, examples, out: Path, quick: bool = False):
    anim = examples.get("animation")
    if not anim or not anim["heads"]:
        return
    from matplotlib import animation

    true = np.array(anim["true_pmf"])
    centers = -1 + (2 * np.arange(len(true)) + 1) / len(true)
    names = list(anim["heads"])
    epochs = anim["heads"][names[0]]["epochs"]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), sharey=True)
    axes = np.atleast_1d(axes)
    ymax = max(true.max(), max(np.max(h["pmfs"]) for h in anim["heads"].values())) * 1.1
    bars = []
    for ax, name in zip(axes, names):
        kind = "fourier" if name.startswith("fourier") else "gmm" if name.startswith("gmm") else "linear"
        bars.append(ax.bar(centers, anim["heads"][name]["pmfs"][0], width=2 / len(true), color=COLORS[kind], alpha=0.75))
        ax.plot(centers, true, color=COLORS["true"], lw=2)
        ax.set_ylim(0, ymax)
        ax.set_title({"linear": "Linear head", "gmm": "GMM head", "fourier": "Fourier head (N=12)"}[kind])
    title = fig.suptitle("")
    fig.tight_layout()

    def frame(t):
        for bar_set, name in zip(bars, names):
            for rect, h in zip(bar_set, anim["heads"][name]["pmfs"][t]):
                rect.set_height(h)
        title.set_text(f"{QUICK_TITLE + ' | ' if quick else ''}{DATASET_TITLES[anim['dataset']]}: learned PMF vs true "
                       f"(green), epoch {epochs[t]}")
        return [r for b in bars for r in b]

    frames = list(range(len(epochs))) + [len(epochs) - 1] * 8  # hold the last frame
    ani = animation.FuncAnimation(fig, frame, frames=frames, blit=False)
    path = out / "training.gif"
    path.parent.mkdir(parents=True, exist_ok=True)
    ani.save(path, writer=animation.PillowWriter(fps=8), dpi=70)
    plt.close(fig)
    print("wrote", path)


def main(argv=None):
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK)
    results, figures = Path(cfg.results), Path(cfg.figures)
    for name in ("summary.json", "examples.json"):
        if not (results / name).exists():
            sys.exit(f"error: {results / name} not found (run aggregate.py first)")
    summary = json.loads((results / "summary.json").read_text())
    rows, quick = summary["rows"], summary.get("quick", False) or cfg._args.quick
    if quick and figures.resolve() == (HERE / "figures").resolve():
        sys.exit("error: figures of quick runs never go into the committed figures/; use --quick")
    examples = json.loads((results / "examples.json").read_text())
    plt = setup()
    varying_frequencies(plt, rows, figures, quick=quick)
    varying_frequencies(plt, rows, figures, heads=("fourier-mle", "gmm-mle"),
                        metrics=(("kl_grid", "KL (1000 bins)"), ("perplexity", "Perplexity")),
                        name="mle_vs_frequencies.png", quick=quick)
    pmf_grid(plt, examples, figures, quick=quick)
    pmf_grid(plt, examples, figures, key="pmf_grid_paper", name="pmf_grid_paper.png", quick=quick)
    mle_densities(plt, examples, figures, quick=quick)
    training_gif(plt, examples, figures, quick=quick)


if __name__ == "__main__":
    main()
