"""Figures and the teaser GIF of the head demo, from results/head_demo.json (no training).

    python misc/head-demo/plot_demo.py           # ~30 s on a 2-core CPU (the GIF is most of it)
    python misc/head-demo/plot_demo.py --quick   # redraw a quick run's, under runs/quick/figures/

figures/kl_smoothness_vs_n.png  KL(true || learned) and smoothness against N, one column per target
figures/density_vs_pmf.png      learned continuous density vs true density vs the 128-bin PMF, N = 4, 16, 64
../assets/head_demo.gif         the same three panels for N = 1..64 (the README teaser)
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import plot_style
from fourier_head import Fourier_Head
from scaffold import Field, parse_config, update_block
from train import HERE, QUICK, README, RESULTS, true_density

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # misc/: misc_common
from misc_common import machine_text, quick_title, refuse_quick_into_committed, save_figure  # noqa: E402

TITLES = {"square-wave": "square wave", "mog-10": "10 Gaussians", "mog-33": "33 Gaussians"}


@dataclass
class Config:
    out_dir: str = Field(str(RESULTS), "where head_demo.json and summary.json are")
    fig_dir: str = Field(str(HERE / "figures"), "where the PNGs go")
    gif: str = Field(str(HERE.parent / "assets" / "head_demo.gif"), "animation path")


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


def plot_curves(results: dict, fig_dir: Path, quick: bool) -> Path:
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
    return save_figure(fig, fig_dir / "kl_smoothness_vs_n.png", quick)


def plot_grid(results: dict, densities: dict, z: np.ndarray, ymax: dict, fig_dir: Path, quick: bool) -> Path:
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
    return save_figure(fig, fig_dir / "density_vs_pmf.png", quick)


def make_gif(results: dict, densities: dict, z: np.ndarray, ymax: dict, path: Path, quick: bool) -> Path:
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
        suptitle.set_text(quick_title(f"Fourier head with N = {n} frequenc{'y' if n == 1 else 'ies'} ({m} bins)", quick))
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
             f"CPU time, figures + GIF {prov.get('plot_wall_seconds', float('nan')):.0f} s, on a {machine_text(prov)}."]
    return "\n".join(rows)


def readme_blocks(out_dir: Path = RESULTS) -> dict[str, str]:
    """The README's generated block, from the JSON in `out_dir` alone (misc/check_readmes.py checks it)."""
    results, summary = (json.loads((Path(out_dir) / name).read_text()) for name in ("head_demo.json", "summary.json"))
    return {"results": readme_table(results, summary)}


def draw(results: dict, fig_dir: Path, gif: Path, quick: bool = False) -> list[Path]:
    """The two figures and the GIF (a quick run's say so in their titles)."""
    plot_style.use()
    z = np.linspace(-1, 1, 801)
    densities = {t: learned_densities(r, z) for t, r in results.items()}
    ymax = {t: 1.08 * max(densities[t].max(), true_density(t, z).max(),
                          np.max(results[t]["pmf"]) * len(results[t]["pmf"][0]) / 2) for t in results}
    return [plot_curves(results, fig_dir, quick), plot_grid(results, densities, z, ymax, fig_dir, quick),
            make_gif(results, densities, z, ymax, gif, quick)]


def main(argv=None) -> None:
    cfg = parse_config(Config, argv, description=__doc__,
                       quick={k: QUICK[k] for k in ("out_dir", "fig_dir", "gif")})
    results_path = Path(cfg.out_dir) / "head_demo.json"
    if not results_path.exists():
        raise SystemExit(f"error: {results_path} not found; run train.py first")
    summary = json.loads((Path(cfg.out_dir) / "summary.json").read_text())
    quick = cfg._args.quick or summary["config"].get("quick", False)  # a quick run's results stay quick
    refuse_quick_into_committed(HERE, quick, fig_dir=cfg.fig_dir, gif=cfg.gif)
    paths = draw(json.loads(results_path.read_text()), Path(cfg.fig_dir), Path(cfg.gif), quick)
    if not quick and Path(cfg.out_dir).resolve() == RESULTS:
        for name, text in readme_blocks().items():
            update_block(README, name, text)
    for p in paths:
        print(f"wrote {p} ({p.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
