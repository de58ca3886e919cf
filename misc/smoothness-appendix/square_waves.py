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

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import plot_style
from fourier_head import smoothness

HERE = Path(__file__).resolve().parent

# Fig. 6 of the paper (App. B): smoothness printed in each panel title, 5 decimals.
PAPER_FIG6 = {1: 0.00004, 2: 0.00008, 3: 0.00011, 4: 0.00014, 10: 0.00027, 20: 0.00040}


@dataclass
class Config:
    num_points: int = field(default=2048, metadata={"help": "samples per wave = PMF length (paper: 2048)"})
    x_start: float = field(default=21.0, metadata={"help": "first x sample (official script: 21)"})
    x_span: float = field(default=10.0, metadata={"help": "x range sampled, [x_start, x_start + x_span]"})
    half_period: float = field(default=4.0, metadata={"help": "L in sin(n pi x / L) (official script: 4)"})
    panel_sines: tuple[int, ...] = field(default=(1, 2, 3, 4, 10, 20), metadata={"help": "K of the Fig. 6 panels"})
    max_sines: int = field(default=200, metadata={"help": "Fig. 7 sweeps K = 1..max_sines"})
    plot_from: int = field(default=61, metadata={"help": "Fig. 7 x axis starts here (paper: 61)"})
    sensitivity_points: tuple[int, ...] = field(default=(1024, 2048, 4096),
                                                metadata={"help": "sample rates for the sensitivity table"})
    out_dir: str = field(default=str(HERE / "results"), metadata={"help": "where the JSON results go"})
    fig_dir: str = field(default=str(HERE / "figures"), metadata={"help": "where the PNG figures go"})
    quick: bool = field(default=False, metadata={"help": "smoke run: few sines, outputs under runs/quick/"})
    plot_only: bool = field(default=False, metadata={"help": "redraw the figures from the saved JSON"})


QUICK = {"max_sines": 30, "plot_from": 1, "sensitivity_points": (2048,),
         "out_dir": str(HERE / "runs" / "quick" / "results"), "fig_dir": str(HERE / "runs" / "quick" / "figures")}


def config_from_cli(config_cls, quick: dict, argv=None, description: str | None = None):
    """Dataclass fields -> CLI flags; --quick applies `quick` first, explicit flags win (misc boilerplate)."""
    parser = argparse.ArgumentParser(description=description)
    for f in dataclasses.fields(config_cls):
        flag, kind = "--" + f.name.replace("_", "-"), type(f.default)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=f.metadata["help"])
        elif kind is tuple:
            parser.add_argument(flag, type=type(f.default[0]), nargs="+", default=argparse.SUPPRESS,
                                help=f.metadata["help"] + f" (default {' '.join(map(str, f.default))})")
        else:
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS,
                                help=f.metadata["help"] + f" (default {f.default})")
    given = vars(parser.parse_args(argv))
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
    config = config_cls()
    if given.get("quick"):
        config = dataclasses.replace(config, **quick)
    return dataclasses.replace(config, **given)


def parse_config(argv=None) -> Config:
    config = config_from_cli(Config, QUICK, argv, description=__doc__.split("\n\n")[1])
    if config.num_points < 8 or config.max_sines < max(config.panel_sines):
        sys.exit(f"error: need num_points >= 8 and max_sines >= {max(config.panel_sines)} (the largest panel)")
    return config


def env_info() -> dict:
    """Versions, hardware and git commit, written next to every result (misc boilerplate)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True,
                                check=True).stdout.strip()
        # uncommitted changes to this folder's code (its own outputs do not count) or to the head
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "*.py", "../../fourier_head.py"],
                                    cwd=HERE, capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", None
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "platform": platform.platform(), "cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0], "gpu": None,
            "commit": commit, "dirty": dirty}


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


def plot(results: dict, config: Config) -> list[Path]:
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
        paper = f" (paper {panel['paper']:.5f})" if panel["paper"] is not None else ""
        k = panel["num_sines"]
        ax.set_title(f"{k} sine{'s' if k > 1 else ''}: smoothness = {panel['smoothness']:.5f}{paper}")
    for ax in axes[-1]:
        ax.set_xlabel("sample index")
    for ax in axes[:, 0]:
        ax.set_ylabel("probability mass")
    fig.suptitle(f"Truncated square waves as densities ({config.num_points} bins)", y=1.0)
    fig.tight_layout()
    paths = [plot_style.save(fig, fig_dir / "square_waves_fig6.png")]

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
    paths.append(plot_style.save(fig, fig_dir / "smoothness_l2_vs_l1_fig7.png"))
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
                    f"{p['paper']:.5f} | {'yes' if p['matches_paper'] else 'NO'} | "
                    f"{cell(sens, 'num_points=1024', i)} | {cell(sens, 'num_points=4096', i)} | "
                    f"{sens['no clip, no normalisation'][i]:.3f} |")
    first_drop = results["l1_decreases_at"][0] if results["l1_decreases_at"] else None
    prov = summary["provenance"]
    rows += ["", f"L2 monotone in K = 1..{results['sweep']['num_sines'][-1]}: {results['l2_monotone']}. "
             f"L1 first decreases at K = {first_drop}; it decreases at {len(results['l1_decreases_at'])} of "
             f"{len(results['sweep']['num_sines']) - 1} steps.", "",
             f"Measured: {prov['wall_seconds']:.1f} s wall ({prov['cpu_seconds']:.1f} s CPU time) on a "
             f"{prov['cpu_count']}-core CPU (1-min load average {prov.get('load_average_1min', float('nan')):.1f}: the machine was shared) "
             f"({prov['platform']}), torch {prov['torch']}, commit {prov['commit'][:10]}."]
    return "\n".join(rows)


def update_readme(table: str, block: str = "results") -> None:
    """Replace the README's generated block between <!-- {block}:start --> and <!-- {block}:end -->."""
    readme = HERE / "README.md"
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    text = readme.read_text()
    if start in text and end in text:
        head, rest = text.split(start, 1)
        readme.write_text(head + start + "\n" + table + "\n" + end + rest.split(end, 1)[1])


def main(argv=None) -> None:
    t0, c0 = time.time(), time.process_time()
    config = parse_config(argv)
    out_dir = Path(config.out_dir)
    results_path = out_dir / "square_waves.json"
    if config.plot_only:
        if not results_path.exists():
            sys.exit(f"error: {results_path} not found; run without --plot-only first")
        plot(json.loads(results_path.read_text()), config)
        return

    results = compute(config)
    paths = plot(results, config)
    env = env_info()
    summary = {
        "experiment": "smoothness-appendix",
        "paper": "App. B, Fig. 6 and Fig. 7",
        "metrics": {f"smoothness/square_wave_K{p['num_sines']}": p["smoothness"] for p in results["panels"]},
        "paper_values": {f"smoothness/square_wave_K{k}": v for k, v in PAPER_FIG6.items()},
        "all_match_paper_5dp": all(p["matches_paper"] for p in results["panels"]),
        "l2_monotone": results["l2_monotone"],
        "l1_first_decrease_at": results["l1_decreases_at"][0] if results["l1_decreases_at"] else None,
        # the whole command (compute + figures), excluding the Python/torch start-up
        "provenance": {**env, "wall_seconds": time.time() - t0, "cpu_seconds": time.process_time() - c0},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1) + "\n")
    (out_dir / "env.json").write_text(json.dumps(env, indent=1) + "\n")
    results_path.write_text(json.dumps(results) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    if not config.quick and out_dir == HERE / "results":
        update_readme(readme_table(results, summary))
    for p in results["panels"]:
        print(f"K={p['num_sines']:>3}  smoothness={p['smoothness']:.6f}  paper={p['paper']}  "
              f"match={p['matches_paper']}")
    print("figures:", ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
