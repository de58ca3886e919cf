"""
The ablation figure from a summary.json (no training needed): test accuracy per variant, mean ± std over
seeds with the seeds as dots, one panel per (grid, data set). The accuracy axis starts at zero.

    python fnet-cifar/plot.py                  # results/summary.json -> figures/ablation.png
    python fnet-cifar/plot.py --quick          # runs/quick/results -> runs/quick/figures ("quick run" in the title)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from aggregate import DATASET_NAMES, NUM_CLASSES
from scaffold import Field, parse_config

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    results: str = Field(str(HERE / "results"), "folder holding summary.json")
    figures: str = Field(str(HERE / "figures"), "output folder")


QUICK = dict(results=str(HERE / "runs" / "quick" / "results"), figures=str(HERE / "runs" / "quick" / "figures"))


def plot(summary: dict, path: Path, quick: bool = False) -> Path:
    import matplotlib.pyplot as plt

    import plot_style

    plot_style.use()
    grids = list(dict.fromkeys(r["grid"] for r in summary["rows"]))  # one row of panels per grid
    datasets = list(dict.fromkeys(r["dataset"] for r in summary["rows"]))  # one column per data set
    n_rows = max(sum(1 for r in summary["rows"] if r["grid"] == g and r["dataset"] == d) for g in grids for d in datasets)
    fig, axes = plt.subplots(len(grids), len(datasets), figsize=(5.2 * len(datasets), (0.9 + 0.32 * n_rows) * len(grids)),
                             squeeze=False)
    fig.subplots_adjust(wspace=0.6, hspace=0.35)
    panels = [(g, d) for g in grids for d in datasets]
    for ax, (grid, dataset) in zip(axes.flat, panels):
        rows = [r for r in summary["rows"] if (r["grid"], r["dataset"]) == (grid, dataset)][::-1]
        if not rows:
            ax.set_visible(False)
            continue
        colours = [plot_style.COLORS["fourier"] if r["variant"] == "head" else
                   plot_style.COLORS["linear"] if r["model"] in ("logistic-regression", "mlp", "cnn") else
                   plot_style.COLORS["regression"] for r in rows]
        ax.barh(range(len(rows)), [100 * r["accuracy"]["mean"] for r in rows],
                xerr=[100 * r["accuracy"]["std"] for r in rows], color=colours, capsize=3)
        for i, r in enumerate(rows):  # the seeds themselves
            ax.plot([100 * a for a in r["accuracy"]["per_seed"]], [i] * r["n_seeds"], "k.", ms=3)
        ax.set_yticks(range(len(rows)), [r["variant"] for r in rows])
        ax.set_ylim(-0.6, len(rows) - 0.1)
        ax.set_xlim(0, 100)  # from zero: bar lengths compare
        if dataset in NUM_CLASSES:
            ax.axvline(100 / NUM_CLASSES[dataset], color="k", ls=":", lw=1)
            ax.text(100 / NUM_CLASSES[dataset] + 1, len(rows) - 0.5, "chance", fontsize=8, va="bottom")
        ax.set_xlabel("test accuracy (%)")
        epochs = "/".join(map(str, sorted({r["epochs"] for r in rows})))
        title = f"{DATASET_NAMES.get(dataset, dataset)}, {epochs} epoch(s), grid {grid}"
        if quick:
            ax.set_title(f"quick run (tiny CPU settings, not results)\n{title}", color="firebrick")
        else:
            ax.set_title(title)
    return plot_style.save(fig, path)


def main(argv=None) -> None:
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK)
    source = Path(cfg.results) / "summary.json"
    if not source.is_file():
        sys.exit(f"error: {source} not found (run aggregate.py first)")
    summary = json.loads(source.read_text())
    quick = cfg._args.quick or "quick" in Path(cfg.results).resolve().parts
    print(plot(summary, Path(cfg.figures) / "ablation.png", quick=quick))


if __name__ == "__main__":
    main()
