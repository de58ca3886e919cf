"""Figures and the teaser GIF of the head demo, from results/head_demo.json (no training).

    python misc/head-demo/plot_demo.py      # ~30 s on a 2-core CPU (the GIF is most of it)

figures/kl_smoothness_vs_n.png  KL(true || learned) and smoothness against N, one column per target
figures/density_vs_pmf.png      learned continuous density vs true density vs the 128-bin PMF, N = 4, 16, 64
../assets/head_demo.gif         the same three panels for N = 1..64 (the README teaser)
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import torch

import plot_style
from fourier_head import Fourier_Head
from train import HERE, true_density

TITLES = {"square-wave": "square wave", "mog-10": "10 Gaussians", "mog-33": "33 Gaussians"}


def learned_densities(result: dict, z: np.ndarray) -> np.ndarray:
    """(N_max, len(z)): p(z) = 1/2 + Re sum_k c_k e^{i pi k z} of every head, via Fourier_Head.evaluate_pdf."""
    max_n, m = len(result["num_frequencies"]), len(result["pmf"][0])
    head = Fourier_Head(1, m, max_n)
    coeffs = torch.zeros(max_n, max_n, dtype=torch.complex128)
    for n, (re, im) in enumerate(zip(result["coeff_real"], result["coeff_imag"])):
        coeffs[n, :len(re)] = torch.complex(torch.tensor(re, dtype=torch.float64), torch.tensor(im, dtype=torch.float64))
    return head.evaluate_pdf(coeffs, torch.from_numpy(z)).numpy()


def draw_panel(ax, target: str, result: dict, n: int, z: np.ndarray, density: np.ndarray, ymax: float):
    """True density (green), learned density (blue line) and the PMF as density bars (pmf * m / 2)."""
    m = len(result["pmf"][0])
    centers = -1 + (2 * np.arange(m) + 1) / m
    blue = plot_style.COLORS["fourier"]
    bars = ax.bar(centers, np.array(result["pmf"][n - 1]) * m / 2, width=2 / m, color=blue, alpha=0.3,
                  linewidth=0, label=f"PMF ({m} bins)")
    (true_line,) = ax.plot(z, true_density(target, z), color=plot_style.COLORS["true"], lw=1.4, label="true density")
    (learned_line,) = ax.plot(z, density, color=blue, lw=1.4, label="learned density")
    ax.set_xlim(-1, 1)
    ax.set_ylim(0, ymax)
    ax.set_xlabel("z")
    return bars, learned_line, true_line


def panel_title(target: str, result: dict, n: int) -> str:
    return f"{TITLES[target]}: KL {result['kl'][n - 1]:.3f}, smoothness {result['smoothness'][n - 1]:.3f}"


def plot_curves(results: dict, fig_dir: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(4 * len(results), 6), squeeze=False, sharex=True)
    for col, (target, r) in enumerate(results.items()):
        n = r["num_frequencies"]
        axes[0, col].plot(n, r["kl"], "o-", ms=2.5, color=plot_style.COLORS["fourier"], label="Fourier head")
        axes[0, col].set_yscale("log")
        axes[0, col].set_title(TITLES[target])
        axes[1, col].plot(n, r["smoothness"], "o-", ms=2.5, color=plot_style.COLORS["fourier"], label="Fourier head")
        axes[1, col].axhline(r["true_smoothness"], color=plot_style.COLORS["true"], ls="--", label="true PMF")
        axes[1, col].set_xlabel("number of frequencies N")
    axes[0, 0].set_ylabel("KL(true || learned)")
    axes[1, 0].set_ylabel("smoothness (lower = smoother)")
    axes[1, 0].legend()
    fig.tight_layout()
    return plot_style.save(fig, fig_dir / "kl_smoothness_vs_n.png")


def plot_grid(results: dict, densities: dict, z: np.ndarray, ymax: dict, fig_dir: Path) -> Path:
    import matplotlib.pyplot as plt

    max_n = min(len(r["kl"]) for r in results.values())
    columns = sorted({n for n in (4, 16, 64) if n <= max_n} | {max_n})
    fig, axes = plt.subplots(len(results), len(columns), figsize=(3.6 * len(columns), 2.6 * len(results)),
                             squeeze=False)
    for row, (target, r) in enumerate(results.items()):
        for col, n in enumerate(columns):
            ax = axes[row, col]
            draw_panel(ax, target, r, n, z, densities[target][n - 1], ymax[target])
            ax.set_title(f"N = {n}: KL {r['kl'][n - 1]:.3f}, s {r['smoothness'][n - 1]:.3f}", fontsize=10)
        axes[row, 0].set_ylabel(f"{TITLES[target]}\ndensity")
    axes[0, 0].legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return plot_style.save(fig, fig_dir / "density_vs_pmf.png")


def make_gif(results: dict, densities: dict, z: np.ndarray, ymax: dict, path: Path) -> Path:
    """One frame per N; artists are updated in place, frames share one 64-colour palette."""
    import matplotlib.pyplot as plt
    from PIL import Image

    max_n = min(len(r["kl"]) for r in results.values())
    fig, axes = plt.subplots(1, len(results), figsize=(3.6 * len(results), 3.0), dpi=100, squeeze=False)
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.16, top=0.76, wspace=0.18)  # fixed: equal frame sizes
    artists = {}
    for ax, (target, r) in zip(axes[0], results.items()):
        artists[target] = (ax, *draw_panel(ax, target, r, 1, z, densities[target][0], ymax[target]))
    axes[0, 0].legend(loc="upper left", fontsize=7)
    suptitle = fig.suptitle("", y=0.98)
    frames = []
    for n in range(1, max_n + 1):
        for target, (ax, bars, learned_line, _) in artists.items():
            r = results[target]
            m = len(r["pmf"][0])
            for bar, height in zip(bars, np.array(r["pmf"][n - 1]) * m / 2):
                bar.set_height(height)
            learned_line.set_ydata(densities[target][n - 1])
            ax.set_title(f"{TITLES[target]}\nKL {r['kl'][n - 1]:.3f}, smoothness {r['smoothness'][n - 1]:.3f}",
                         fontsize=10)
        suptitle.set_text(f"Fourier head with N = {n} frequenc{'y' if n == 1 else 'ies'} ({m} bins)")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches=None)
        frames.append(Image.open(buffer).convert("RGB"))
    plt.close(fig)
    palette = frames[-1].quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    durations = [350] * (len(frames) - 1) + [2500]  # hold the last frame
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
    return path


def readme_table(results: dict, summary: dict) -> str:
    picks = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= min(len(r["kl"]) for r in results.values())]
    head = "| N | " + " | ".join(f"{TITLES[t]} KL | {TITLES[t]} smoothness" for t in results) + " |"
    rows = [head, "|---:|" + "---:|---:|" * len(results)]
    for n in picks:
        rows.append(f"| {n} | " + " | ".join(f"{r['kl'][n - 1]:.4f} | {r['smoothness'][n - 1]:.4f}"
                                             for r in results.values()) + " |")
    rows.append("| true PMF | " + " | ".join(f"0 | {r['true_smoothness']:.4f}" for r in results.values()) + " |")
    prov = summary["provenance"]
    per_target = ", ".join(f"{t} {r['wall_seconds']:.0f} s" for t, r in results.items())
    rows += ["", f"Measured: training {prov['wall_seconds']:.0f} s wall ({per_target}), {prov['cpu_seconds']:.0f} s "
             f"CPU time, figures + GIF {prov.get('plot_wall_seconds', float('nan')):.0f} s, on a {prov['cpu_count']}-core CPU "
             f"(1-min load average {prov.get('load_average_1min', float('nan')):.1f}: the machine was shared) "
             f"({prov['platform']}), torch {prov['torch']}, commit {prov['commit'][:10]}."]
    return "\n".join(rows)


def update_readme(table: str) -> None:
    readme = HERE / "README.md"
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    text = readme.read_text() if readme.exists() else ""
    if start in text and end in text:
        before, rest = text.split(start, 1)
        readme.write_text(before + start + "\n" + table + "\n" + end + rest.split(end, 1)[1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", default=str(HERE / "results"), help="where head_demo.json is")
    parser.add_argument("--fig-dir", default=str(HERE / "figures"), help="where the PNGs go")
    parser.add_argument("--gif", default=str(HERE.parent / "assets" / "head_demo.gif"), help="animation path")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the README results table")
    args = parser.parse_args(argv)
    results_path = Path(args.out_dir) / "head_demo.json"
    if not results_path.exists():
        raise SystemExit(f"error: {results_path} not found; run train.py first")
    results = json.loads(results_path.read_text())
    summary = json.loads((Path(args.out_dir) / "summary.json").read_text())

    plot_style.use()
    z = np.linspace(-1, 1, 801)
    densities = {t: learned_densities(r, z) for t, r in results.items()}
    ymax = {t: 1.08 * max(densities[t].max(), true_density(t, z).max(),
                          np.max(results[t]["pmf"]) * len(results[t]["pmf"][0]) / 2) for t in results}
    paths = [plot_curves(results, Path(args.fig_dir)),
             plot_grid(results, densities, z, ymax, Path(args.fig_dir)),
             make_gif(results, densities, z, ymax, Path(args.gif))]
    if not args.no_readme:
        update_readme(readme_table(results, summary))
    for p in paths:
        print(f"wrote {p} ({p.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
