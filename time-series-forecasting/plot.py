"""Figures from saved results (never from live training):

    python plot.py [--results results] [--figures figures]
    python plot.py --quick          # runs/quick/results -> runs/quick/figures, titles say "quick run"

figures/pmf.png      the predictive PMF of one forecast step, linear vs the Fourier head with the most
                     frequencies (full 4094-token range and a zoom window around the mode; smoothness
                     in the titles); PMFs from results/pmf_examples.npz (aggregate.py)
figures/metrics.png  MASE, WQL (aggregate relative scores) and smoothness vs number of frequencies,
                     the linear head as a horizontal line
figures/learning_curves.png   (runs that logged them: issue 21's --slice / --pilot runs) per run, against the
                     training step: the held-out training-mix cross-entropy (log.jsonl `heldout_ce`) and the
                     benchmark's relative MASE and WQL at each intermediate evaluation (curve.jsonl, with the
                     final evaluation as the last point; the summary rows' `heldout_ce` and `curve`)

    python plot.py --results results/pilot --figures figures/pilot     # the issue-21 pilot's figures
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import plot_style
from fourier_head import smoothness
from scaffold import Field, parse_config

HERE = Path(__file__).resolve().parent


def pmf_figure(rows, examples, dataset: str, out: Path, prefix: str = ""):
    linear = next((r for r in rows if r["head"] == "linear" and r["binning"] == "mixed"), None)
    fouriers = [r for r in rows if r["head"] == "fourier" and r["binning"] == "mixed" and r["gamma"]]
    if linear is None or not fouriers:
        return
    fourier = max(fouriers, key=lambda r: r["num_frequencies"])
    if linear["run"] not in examples or fourier["run"] not in examples:
        return
    pmfs = {r["label"]: examples[r["run"]][0] for r in (linear, fourier)}  # first forecast step
    plot_style.use()
    fig, axes = plt.subplots(2, 2, figsize=(11, 6), gridspec_kw=dict(width_ratios=[2, 1]))
    mode = int(np.argmax(pmfs[linear["label"]]))
    lo, hi = max(0, mode - 60), min(len(pmfs[linear["label"]]), mode + 60)
    for i, (name, pmf) in enumerate(pmfs.items()):
        color = plot_style.COLORS["linear" if i == 0 else "fourier"]
        s = float(smoothness(torch.tensor(pmf, dtype=torch.float64)[None])[0])
        axes[i, 0].bar(np.arange(len(pmf)), pmf, width=1.0, color=color)
        axes[i, 0].axvspan(lo, hi, color="grey", alpha=0.15)
        axes[i, 0].set_title(f"{name}: smoothness {s:.4f}")
        axes[i, 1].bar(np.arange(lo, hi), pmf[lo:hi], width=1.0, color=color)
        axes[i, 1].set_title(f"zoom: grid indices {lo}-{hi - 1}")
        axes[i, 0].set_ylabel("probability")
    for ax in axes[-1]:
        ax.set_xlabel("value token (index on the head's grid)")
    fig.suptitle(f"{prefix}Predictive PMF of the first forecast step ({dataset}, first series)")
    fig.tight_layout()
    plot_style.save(fig, out)


def metrics_figure(rows, out: Path, prefix: str = ""):
    fourier = sorted([r for r in rows if r["head"] == "fourier" and r["binning"] == "mixed" and r["gamma"]],
                     key=lambda r: r["num_frequencies"])
    linear = next((r for r in rows if r["head"] == "linear" and r["binning"] == "mixed"), None)
    if not fourier:
        return
    plot_style.use()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key, title in zip(axes, ("mase", "wql", "smoothness"),
                              ("MASE (relative to seasonal naive)", "WQL (relative to seasonal naive)", "smoothness")):
        x = [r["num_frequencies"] for r in fourier]
        ax.plot(x, [r[key] for r in fourier], "o-", color=plot_style.COLORS["fourier"], label="Fourier head")
        if linear:
            ax.axhline(linear[key], color=plot_style.COLORS["linear"], ls="--", label="linear head")
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [str(v) for v in x])
        ax.set_xlabel("number of frequencies")
        ax.set_title(title)
    axes[0].legend()
    fig.suptitle(f"{prefix}{fourier[0]['size']} model, {fourier[0]['steps']} steps, {fourier[0]['num_datasets']} datasets")
    fig.tight_layout()
    plot_style.save(fig, out)


def learning_curves_figure(rows, out: Path, prefix: str = "") -> bool:
    """Held-out CE and benchmark scores against the step, one line per run (the rows' `heldout_ce` and `curve`,
    aggregate.py's, from log.jsonl and curve.jsonl); False when no run logged more than its final evaluation."""
    curves = []
    for r in rows:
        held = sorted((int(k), v) for k, v in (r.get("heldout_ce") or {}).items())
        bench = sorted((int(k), v["mase"], v["wql"]) for k, v in (r.get("curve") or {}).items())
        if held or len(bench) > 1:
            curves.append((r, held, bench))
    if not curves:
        return False
    plot_style.use()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for r, held, bench in curves:
        color = plot_style.COLORS["linear" if r["head"] == "linear" else "fourier"]
        style = dict(color=color, marker="o", ms=3, label=f"{r['label']}, seed {r['seed']}")
        if held:
            axes[0].plot(*zip(*held), **style)
        axes[1].plot([b[0] for b in bench], [b[1] for b in bench], **style)
        axes[2].plot([b[0] for b in bench], [b[2] for b in bench], **style)
    for ax, title in zip(axes, ("held-out training-mix cross-entropy (nats)", "MASE (relative to seasonal naive)",
                                "WQL (relative to seasonal naive)")):
        ax.set_xlabel("training step")
        ax.set_title(title)
    for ax in axes[1:]:
        ax.axhline(1.0, color="0.5", ls=":", lw=1)  # seasonal naive
    axes[0].legend()
    r0 = curves[0][0]
    fig.suptitle(f"{prefix}{r0['size']} model, batch {r0['batch_size']}, {r0['num_datasets']} datasets "
                 "(dotted: seasonal naive)")
    fig.tight_layout()
    plot_style.save(fig, out)
    return True


@dataclass
class Config:
    results: str = Field(str(HERE / "results"), "folder with summary.json and pmf_examples.npz (aggregate.py)")
    figures: str = Field(str(HERE / "figures"), "where the PNGs go")
    dataset: str = Field("aus_retail", "label only: the dataset aggregate.py kept PMFs of")


QUICK = dict(results=str(HERE / "runs" / "quick" / "results"), figures=str(HERE / "runs" / "quick" / "figures"))


def main(argv=None):
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK)
    summary_path = Path(cfg.results) / "summary.json"
    if not summary_path.exists():
        sys.exit(f"error: {summary_path}: no such file (run aggregate.py first)")
    summary = json.loads(summary_path.read_text())
    figures = Path(cfg.figures)
    quick = summary.get("quick", False)
    if quick and figures.resolve() == (HERE / "figures").resolve():
        sys.exit("error: a quick run's figures never go into the committed figures/; use --quick (runs/quick/figures)")
    prefix = "quick run (not results): " if quick else ""
    figures.mkdir(parents=True, exist_ok=True)
    examples = Path(cfg.results) / "pmf_examples.npz"  # written by aggregate.py
    if examples.exists():
        pmf_figure(summary["rows"], np.load(examples), cfg.dataset, figures / "pmf.png", prefix)
    metrics_figure(summary["rows"], figures / "metrics.png", prefix)
    learning_curves_figure(summary["rows"], figures / "learning_curves.png", prefix)
    print(f"figures in {figures}")


if __name__ == "__main__":
    main()
