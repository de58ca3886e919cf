"""results/ -> figures/ (no training needed): the Figure 2 layout, metrics vs number of frequencies
(one figure per results/summary_<setting>.json) and the saturation cap (saturation.py) vs learned PMFs.

    python plot.py                                   # results/ -> figures/
    python plot.py --quick                           # runs/quick/results -> runs/quick/figures ("quick run")
    python plot.py --results R --figures F --num-frequencies 1

Figures of quick runs (their summaries say `quick`) say "quick run" in their titles and never go to figures/.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import plot_style
import saturation
from scaffold import Field, parse_config

HERE = Path(__file__).resolve().parent
QUICK_TITLE = "Quick run (tiny CPU settings, not results): "


def fig2_pmfs(example: dict, num_frequencies: int, path: Path) -> None:
    """One test clip: linear vs Fourier PMF bars, true class marked (green), smoothness in the legend."""
    import matplotlib.pyplot as plt

    heads = {(h["head"], h["num_frequencies"]): h for h in example["heads"]}
    if ("fourier", num_frequencies) not in heads or ("linear", 0) not in heads:
        raise SystemExit(f"error: example_pmfs.json lacks the linear or the Fourier N={num_frequencies} PMF")
    centers = np.array(example["centers"])
    x = np.arange(len(centers))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), sharey=True)
    for ax, key, title in ((axes[0], ("linear", 0), "Linear head"),
                           (axes[1], ("fourier", num_frequencies), f"Fourier head ({num_frequencies} frequenc"
                                                                   f"{'y' if num_frequencies == 1 else 'ies'})")):
        h = heads[key]
        color = plot_style.COLORS["linear" if key[0] == "linear" else "fourier"]
        ax.bar(x, h["pmf"], width=0.85, color=color, label=f"Smoothness = {h['smoothness']:.4f}")
        ax.plot([example["label"]], [0], "o", color=plot_style.COLORS["true"], markersize=8, clip_on=False,
                zorder=5, label=f"True tempo: {example['bpm']} BPM")
        ax.set_title(title)
        ax.set_xlabel("Tempo bucket (BPM, bucket centre)")
        ticks = x[::4]
        ax.set_xticks(ticks, [f"{centers[t]:.0f}" for t in ticks])
        ax.legend(loc="upper left")
    axes[0].set_ylabel("Mass")
    fig.suptitle(f"{QUICK_TITLE if example.get('quick') else ''}Learned PMFs for one test clip "
                 f"(test position {example['test_position']}, seed {example['seed']})", y=1.04)
    plot_style.save(fig, path)


def metrics_vs_frequencies(summary: dict, path: Path) -> None:
    """F1, accuracy, MSE (BPM) and smoothness vs N: Fourier mean +- std, linear as a dashed band."""
    import matplotlib.pyplot as plt

    fourier = [r for r in summary["rows"] if r["head"] == "fourier"]
    linear = next((r for r in summary["rows"] if r["head"] == "linear"), None)
    ns = np.array([r["num_frequencies"] for r in fourier])
    panels = (("f1", "Macro F1 (higher is better)"), ("accuracy", "Accuracy (higher is better)"),
              ("mse_bpm", "MSE in BPM² (lower is better)"), ("nll", "NLL (lower is better)"),
              ("ece", "ECE (lower is better)"), ("smoothness", "Smoothness (lower is smoother)"))
    fig, axes = plt.subplots(1, 6, figsize=(22, 3.3))
    num_classes = summary.get("setting_info", {}).get("num_classes", 33)
    for ax, (m, label) in zip(axes, panels):
        if any(r[m]["mean"] is None for r in fourier):
            ax.set_title(label + "\n(not available for these runs)")
            ax.set_axis_off()
            continue
        mean = np.array([r[m]["mean"] for r in fourier])
        std = np.array([r[m]["std"] for r in fourier])
        ax.plot(ns, mean, "o-", color=plot_style.COLORS["fourier"], label="Fourier head")
        ax.fill_between(ns, mean - std, mean + std, color=plot_style.COLORS["fourier"], alpha=0.2)
        if m == "nll":  # no N-frequency head can do better than -log((N+1)/m) on any clip
            floor = [-np.log(saturation.max_bin_mass(int(n), num_classes)) for n in ns]
            ax.plot(ns, floor, ":", color="0.3", label="floor −log((N+1)/m)")
            ax.legend(fontsize=7)
        if linear and linear[m]["mean"] is not None:
            lm, ls = linear[m]["mean"], linear[m]["std"]
            ax.axhline(lm, color=plot_style.COLORS["linear"], ls="--", label="Linear head")
            ax.axhspan(lm - ls, lm + ls, color=plot_style.COLORS["linear"], alpha=0.12)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.set_xlabel("Fourier frequencies N")
        ax.set_title(label)
    axes[0].legend()
    seeds = sorted({r["n_seeds"] for r in summary["rows"]})
    fig.suptitle(f"{QUICK_TITLE if summary.get('quick') else ''}Tempo classification, {summary['setting']} "
                 f"({num_classes} classes): "
                 f"mean ± std over {'/'.join(map(str, seeds))} seeds", y=1.05)
    plot_style.save(fig, path)


def saturation_figure(example: dict, path: Path) -> None:
    """Per N: the learned Fourier PMF of the Figure 2 clip (bars) and the most concentrated PMF an
    N-frequency head can produce on the same bins, centred on the learned peak (line)."""
    import matplotlib.pyplot as plt

    heads = sorted((h for h in example["heads"] if h["head"] == "fourier"), key=lambda h: h["num_frequencies"])
    if not heads:
        return
    m = len(example["centers"])
    fig, axes = plt.subplots(1, len(heads), figsize=(4 * len(heads), 3.2), sharey=True)
    for ax, h in zip(np.atleast_1d(axes), heads):
        n, pmf = h["num_frequencies"], np.array(h["pmf"])
        peak = int(pmf.argmax())
        best = saturation.most_concentrated_pmf(n, m, peak)
        ax.bar(np.arange(m), pmf, width=0.85, color=plot_style.COLORS["fourier"],
               label=f"learned (max {pmf.max():.4f})")
        ax.plot(np.arange(m), best, "-", color="0.15", lw=1.2, label=f"cap (N+1)/m = {n + 1}/{m} = {best.max():.4f}")
        ax.plot([example["label"]], [0], "o", color=plot_style.COLORS["true"], markersize=7, clip_on=False, zorder=5)
        ax.set_title(f"Fourier head, N = {n}")
        ax.set_xlabel("Tempo bucket")
        ax.legend(loc="upper left", fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("Mass")
    fig.suptitle(f"{QUICK_TITLE if example.get('quick') else ''}Saturation: learned PMFs (one test clip, seed "
                 f"{example['seed']}) vs the most concentrated "
                 f"N-frequency PMF (Fejér kernel)", y=1.04)
    plot_style.save(fig, path)


@dataclass
class Config:
    results: str = Field(str(HERE / "results"), "results folder (--quick: runs/quick/results)")
    figures: str = Field(str(HERE / "figures"), "figures folder (--quick: runs/quick/figures)")
    num_frequencies: int = Field(2, "Fourier head of Figure 2 (paper: 2)", low=1)


QUICK = dict(results=str(HERE / "runs" / "quick" / "results"), figures=str(HERE / "runs" / "quick" / "figures"))


def main(argv=None) -> None:
    args = parse_config(Config, argv, description=__doc__, quick=QUICK)
    results, figures = Path(args.results), Path(args.figures)
    summaries = sorted(results.glob("summary_*.json"))
    if not summaries:
        sys.exit(f"error: no summary_*.json in {results}: run aggregate.py first")
    quick = any(json.loads(path.read_text()).get("quick") for path in summaries)
    if quick and figures.resolve() == (HERE / "figures").resolve():
        sys.exit(f"error: {results} holds quick results: their figures never go to figures/ (use --quick)")
    plot_style.use()
    if (results / "example_pmfs.json").exists():
        example = json.loads((results / "example_pmfs.json").read_text())
        fig2_pmfs(example, args.num_frequencies, figures / "fig2_pmfs")
        saturation_figure(example, figures / "saturation_cap")
    for path in summaries:
        suffix = path.stem[len("summary"):]
        metrics_vs_frequencies(json.loads(path.read_text()), figures / f"metrics_vs_frequencies{suffix}")
    print(f"figures in {figures}")


if __name__ == "__main__":
    main()
