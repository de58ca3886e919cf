"""results/ -> figures/ (no training needed): the Figure 2 layout and metrics vs number of frequencies.

    python plot.py                                   # results/ -> figures/
    python plot.py --results R --figures F --num-frequencies 1
"""

import argparse
import json
from pathlib import Path

import numpy as np

import plot_style

HERE = Path(__file__).resolve().parent


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
    fig.suptitle(f"Learned PMFs for one test clip (test position {example['test_position']}, seed {example['seed']})",
                 y=1.04)
    plot_style.save(fig, path)


def metrics_vs_frequencies(summary: dict, path: Path) -> None:
    """F1, accuracy, MSE (BPM) and smoothness vs N: Fourier mean +- std, linear as a dashed band."""
    import matplotlib.pyplot as plt

    fourier = [r for r in summary["rows"] if r["head"] == "fourier"]
    linear = next((r for r in summary["rows"] if r["head"] == "linear"), None)
    ns = np.array([r["num_frequencies"] for r in fourier])
    panels = (("f1", "Macro F1 (higher is better)"), ("accuracy", "Accuracy (higher is better)"),
              ("mse_bpm", "MSE in BPM² (lower is better)"), ("smoothness", "Smoothness (lower is smoother)"))
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.3))
    for ax, (m, label) in zip(axes, panels):
        mean = np.array([r[m]["mean"] for r in fourier])
        std = np.array([r[m]["std"] for r in fourier])
        ax.plot(ns, mean, "o-", color=plot_style.COLORS["fourier"], label="Fourier head")
        ax.fill_between(ns, mean - std, mean + std, color=plot_style.COLORS["fourier"], alpha=0.2)
        if linear:
            lm, ls = linear[m]["mean"], linear[m]["std"]
            ax.axhline(lm, color=plot_style.COLORS["linear"], ls="--", label="Linear head")
            ax.axhspan(lm - ls, lm + ls, color=plot_style.COLORS["linear"], alpha=0.12)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.set_xlabel("Fourier frequencies N")
        ax.set_title(label)
    axes[0].legend()
    s = summary["setting"]
    seeds = sorted({r["n_seeds"] for r in summary["rows"]})
    fig.suptitle(f"Tempo classification ({s['num_classes']} classes, split {s['split']}, {s['epochs']} epochs): "
                 f"mean ± std over {'/'.join(map(str, seeds))} seeds", y=1.05)
    plot_style.save(fig, path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--figures", type=Path, default=HERE / "figures")
    ap.add_argument("--num-frequencies", type=int, default=2, help="Fourier head of Figure 2 (paper: 2)")
    args = ap.parse_args(argv)
    plot_style.use()
    if not (args.results / "summary.json").exists():
        raise SystemExit(f"error: {args.results / 'summary.json'} not found: run aggregate.py first")
    fig2_pmfs(json.loads((args.results / "example_pmfs.json").read_text()), args.num_frequencies,
              args.figures / "fig2_pmfs")
    for path in sorted(args.results.glob("summary*.json")):
        suffix = path.stem[len("summary"):]
        metrics_vs_frequencies(json.loads(path.read_text()), args.figures / f"metrics_vs_frequencies{suffix}")
    print(f"figures in {args.figures}")


if __name__ == "__main__":
    main()
