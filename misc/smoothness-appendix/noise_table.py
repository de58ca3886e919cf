"""The smoothness metric against spectral entropy on brown, pink, white and blue noise (paper App. B, Table 4).

    python misc/smoothness-appendix/noise_table.py            # ~15 s on a 2-core CPU
    python misc/smoothness-appendix/noise_table.py --quick    # smoke run into runs/quick/

Each noise colour is Gaussian noise whose power spectrum falls as f^-beta (brown 2, pink 1, white 0,
blue -1): white noise shaped in the frequency domain. A draw of `num_points` (= 4096) samples becomes a
PMF by subtracting its minimum and dividing by its sum. On each PMF we compute the paper's L2 smoothness
metric (`fourier_head.smoothness`, lower = smoother) and its spectral entropy (Eq. B.2)

    H(y) = - sum_{f=0}^{f_s/2} P(f) log P(f),   P(f) = |Y(f)|^2 / sum_f' |Y(f')|^2,

with Y the one-sided DFT of the PMF (mean kept, so f = 0 is included) and the natural log. The table is
the mean over `num_trials` (= 1000) draws per colour; a bootstrap over the draws (`num_bootstrap` = 1000
resamples) gives the standard error and a 95% interval of each mean. Several of these choices are not
in our copy of the paper (length, noise -> PMF, the PSD estimator and the log's base); the README says
what we chose and why, and the sensitivity rows show what the other readings give.

Expected: L2 rises brown < pink < white < blue and rounds to the paper's 0.0003 / 0.0017 / 0.0034 / 0.0038;
spectral entropy does not order the colours (paper: 0.4516 / 0.3878 / 0.4266 / 0.4191).
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
from scaffold import Field, config_dict, parse_config, update_block, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # misc/: misc_common
from misc_common import Clock, commit_text, measured, refuse_quick_into_committed, save_figure  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# beta in PSD ~ f^-beta
COLOURS = {"brown": 2.0, "pink": 1.0, "white": 0.0, "blue": -1.0}
# Table 4 of the paper (App. B), as printed (4 decimals).
PAPER_TABLE4 = {
    "brown": {"l2": 0.0003, "spectral_entropy": 0.4516},
    "pink": {"l2": 0.0017, "spectral_entropy": 0.3878},
    "white": {"l2": 0.0034, "spectral_entropy": 0.4266},
    "blue": {"l2": 0.0038, "spectral_entropy": 0.4191},
}
METRICS = ("l2", "spectral_entropy")
PRINTED_HALF_ULP = 0.5e-4  # the paper prints 4 decimals: a printed p stands for [p - 5e-5, p + 5e-5]


@dataclass
class Config:
    num_points: int = Field(4096, "samples per noise draw = PMF length", low=8)
    num_trials: int = Field(1000, "noise draws per colour (paper: 1000 trials)", low=2)
    num_bootstrap: int = Field(1000, "bootstrap resamples of the draws, for the SE/CI", low=2)
    seed: int = Field(0, "seed of every draw and resample", low=0)
    sensitivity_points: tuple[int, ...] = Field((2048,), "other lengths for the sensitivity rows", low=8)
    out_dir: str = Field(str(HERE / "results"), "where noise_table.json goes")
    fig_dir: str = Field(str(HERE / "figures"), "where the PNG figure goes")


# --quick: few draws, outputs under runs/quick/
QUICK = {"num_points": 1024, "num_trials": 64, "num_bootstrap": 200, "sensitivity_points": (),
         "out_dir": str(HERE / "runs" / "quick" / "results"), "fig_dir": str(HERE / "runs" / "quick" / "figures")}
README, RESULTS = HERE / "README.md", HERE / "results"


# ------------------------------------------------------------------------------------------------
# data: coloured noise, and noise -> PMF
# ------------------------------------------------------------------------------------------------

def colored_noise(beta: float, num: int, num_points: int, rng: np.random.Generator) -> np.ndarray:
    """(num, num_points) Gaussian noise with E|X(f)|^2 ~ f^-beta; zero mean, unit std per row.

    White Gaussian noise is shaped in the frequency domain: amplitudes times f^(-beta/2), f > 0; the
    f = 0 bin (the mean) is set to zero. Mean and scale do not matter for the PMFs built from it.
    """
    spectrum = np.fft.rfft(rng.standard_normal((num, num_points)), axis=-1)
    spectrum[:, 1:] *= np.fft.rfftfreq(num_points)[1:] ** (-beta / 2)
    spectrum[:, 0] = 0
    x = np.fft.irfft(spectrum, n=num_points, axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def noise_to_pmf(x: np.ndarray) -> np.ndarray:
    """Shift each row to a minimum of 0 and divide by its sum (invariant to the noise's offset and scale)."""
    shifted = x - x.min(axis=-1, keepdims=True)
    return shifted / shifted.sum(axis=-1, keepdims=True)


def spectral_slope(x: np.ndarray) -> float:
    """Least-squares slope of log(mean periodogram) against log f over 0 < f < f_s/2: -beta for f^-beta noise."""
    power = (np.abs(np.fft.rfft(x, axis=-1)) ** 2).mean(axis=0)[1:-1]
    freqs = np.fft.rfftfreq(x.shape[-1])[1:-1]
    return float(np.polyfit(np.log(freqs), np.log(power), 1)[0])


# ------------------------------------------------------------------------------------------------
# metric: spectral entropy (Eq. B.2)
# ------------------------------------------------------------------------------------------------

def entropy_of_spectrum(power: np.ndarray, log_base: float = np.e) -> np.ndarray:
    """Shannon entropy of the last axis of a power spectrum normalised to sum 1 (0 log 0 = 0)."""
    p = power / power.sum(axis=-1, keepdims=True)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=-1) / np.log(log_base)


def spectral_entropy(y: np.ndarray, log_base: float = np.e) -> np.ndarray:
    """Eq. B.2 on rows y (..., m): entropy of |rfft(y)|^2 over f = 0..f_s/2, normalised to a distribution.

    The mean is not removed (a PMF's f = 0 bin holds (sum y)^2 = 1) and the one-sided bins are not doubled.
    Lies in [0, log(m // 2 + 1)]: 0 for a spectrum in one bin, the maximum for a flat one.
    """
    return entropy_of_spectrum(np.abs(np.fft.rfft(y, axis=-1)) ** 2, log_base)


def smoothness_l2(pmfs: np.ndarray) -> np.ndarray:
    return smoothness(torch.from_numpy(pmfs)).numpy()


# ------------------------------------------------------------------------------------------------
# statistics
# ------------------------------------------------------------------------------------------------

def bootstrap_mean(values: np.ndarray, num: int, rng: np.random.Generator) -> tuple[float, list[float]]:
    """Standard error (std of the resampled means) and 95% percentile interval of the mean of `values`."""
    means = values[rng.integers(0, len(values), size=(num, len(values)))].mean(axis=1)
    return float(means.std(ddof=1)), [float(q) for q in np.percentile(means, [2.5, 97.5])]


def consistent_with_printed(ci: list[float], printed: float) -> bool:
    """Does our 95% interval overlap the interval the paper's 4-decimal number stands for?"""
    return ci[0] <= printed + PRINTED_HALF_ULP and ci[1] >= printed - PRINTED_HALF_ULP


# ------------------------------------------------------------------------------------------------
# main: compute -> JSON -> figure (+ README table)
# ------------------------------------------------------------------------------------------------

def draw(config: Config, colour_index: int, num_points: int, purpose: int) -> np.ndarray:
    """Noise draws of one colour; the seed depends on (seed, purpose, colour, length) only, not on call order."""
    rng = np.random.default_rng([config.seed, purpose, colour_index, num_points])
    return colored_noise(list(COLOURS.values())[colour_index], config.num_trials, num_points, rng)


def sensitivity(config: Config, noise: dict[str, np.ndarray]) -> list[dict]:
    """Other readings of the unstated choices: what L2 and spectral entropy give under each (means only)."""
    pmfs = {c: noise_to_pmf(x) for c, x in noise.items()}
    m = config.num_points
    one_sided_density = np.full(m // 2 + 1, 2.0)  # scipy.signal.periodogram(detrend=False) doubles 0 < f < f_s/2
    one_sided_density[0] = 1.0
    if m % 2 == 0:
        one_sided_density[-1] = 1.0

    def entropy_rows(name, fn):
        return {"variant": name, "num_points": m, "l2": None,
                "spectral_entropy": {c: float(fn(c).mean()) for c in COLOURS}}

    rows = [
        entropy_rows("log base 2 (bits)", lambda c: spectral_entropy(pmfs[c], log_base=2)),
        entropy_rows("normalised by log(m/2 + 1), in [0, 1]",
                     lambda c: spectral_entropy(pmfs[c]) / np.log(m // 2 + 1)),
        entropy_rows("mean removed (f = 0 bin empty; = the noise's own spectral entropy)",
                     lambda c: entropy_of_spectrum(np.abs(np.fft.rfft(pmfs[c], axis=-1)[:, 1:]) ** 2)),
        entropy_rows("two-sided spectrum (all m DFT bins)",
                     lambda c: entropy_of_spectrum(np.abs(np.fft.fft(pmfs[c], axis=-1)) ** 2)),
        entropy_rows("one-sided density (interior bins doubled)",
                     lambda c: entropy_of_spectrum(np.abs(np.fft.rfft(pmfs[c], axis=-1)) ** 2 * one_sided_density)),
    ]
    abs_pmfs = {c: np.abs(x) / np.abs(x).sum(axis=-1, keepdims=True) for c, x in noise.items()}
    rows.append({"variant": "PMF = abs(x) / sum abs(x), not shifted by the minimum", "num_points": m,
                 "l2": {c: float(smoothness_l2(abs_pmfs[c]).mean()) for c in COLOURS},
                 "spectral_entropy": {c: float(spectral_entropy(abs_pmfs[c]).mean()) for c in COLOURS}})
    for other in config.sensitivity_points:
        other_pmfs = {c: noise_to_pmf(draw(config, i, other, purpose=2)) for i, c in enumerate(COLOURS)}
        rows.append({"variant": f"length {other}", "num_points": other,
                     "l2": {c: float(smoothness_l2(p).mean()) for c, p in other_pmfs.items()},
                     "spectral_entropy": {c: float(spectral_entropy(p).mean()) for c, p in other_pmfs.items()}})
    return rows


def compute(config: Config) -> tuple[dict, dict]:
    noise = {c: draw(config, i, config.num_points, purpose=0) for i, c in enumerate(COLOURS)}
    rows, per_draw = [], {}
    for i, (colour, beta) in enumerate(COLOURS.items()):
        pmfs = noise_to_pmf(noise[colour])
        values = {"l2": smoothness_l2(pmfs), "spectral_entropy": spectral_entropy(pmfs)}
        per_draw[colour] = values
        boot_rng = np.random.default_rng([config.seed, 1, i])
        row = {"noise": colour, "psd_exponent": 0.0 - beta, "spectral_slope": spectral_slope(noise[colour]),
               "num_trials": config.num_trials}
        for metric in METRICS:
            se, ci = bootstrap_mean(values[metric], config.num_bootstrap, boot_rng)
            paper = PAPER_TABLE4[colour][metric]
            row.update({f"{metric}_mean": float(values[metric].mean()),
                        f"{metric}_std": float(values[metric].std(ddof=1)),
                        f"{metric}_mean_se": se, f"{metric}_mean_ci95": ci,
                        f"paper_{metric}": paper, f"{metric}_consistent_with_paper": consistent_with_printed(ci, paper)})
        rows.append(row)
    l2_means = [r["l2_mean"] for r in rows]
    results = {
        "experiment": "smoothness-appendix/noise_table",
        "paper": "App. B, Table 4",
        "rows": rows,
        "l2_increases_brown_to_blue": bool(np.all(np.diff(l2_means) > 0)),
        "spectral_entropy_order_low_to_high": sorted(COLOURS, key=lambda c: per_draw[c]["spectral_entropy"].mean()),
        "sensitivity": sensitivity(config, noise),
    }
    examples = {c: (noise_to_pmf(noise[c][:1])[0], per_draw[c]["l2"][0], per_draw[c]["spectral_entropy"][0])
                for c in COLOURS}
    return results, {"noise": noise, "per_draw": per_draw, "examples": examples}


NOISE_COLOURS = {"brown": "saddlebrown", "pink": "hotpink", "white": "0.45", "blue": "tab:blue"}


def plot(results: dict, arrays: dict, config: Config, quick: bool = False) -> Path:
    import matplotlib.pyplot as plt

    plot_style.use()
    fig = plt.figure(figsize=(13, 6.2))
    grid = fig.add_gridspec(2, 4, height_ratios=(1, 1.1))
    for i, (colour, (pmf, l2, entropy)) in enumerate(arrays["examples"].items()):
        ax = fig.add_subplot(grid[0, i])
        ax.plot(pmf, color=NOISE_COLOURS[colour], lw=0.6)
        ax.set_title(f"{colour}: L2 = {l2:.5f}, H = {entropy:.3f}", fontsize=10)
        ax.set_xlabel("bin")
        if i == 0:
            ax.set_ylabel("probability mass")

    ax = fig.add_subplot(grid[1, :2])
    freqs = np.fft.rfftfreq(config.num_points)[1:]
    for row in results["rows"]:
        x = arrays["noise"][row["noise"]]
        power = (np.abs(np.fft.rfft(x, axis=-1)) ** 2).mean(axis=0)[1:]
        ax.loglog(freqs, power, color=NOISE_COLOURS[row["noise"]], lw=0.8,
                  label=f"{row['noise']}: slope {row['spectral_slope']:.2f} (f^{row['psd_exponent']:g})")
    ax.set_xlabel("frequency (cycles per sample)")
    ax.set_ylabel("mean periodogram of the noise")
    ax.legend()

    for j, metric, label in ((2, "l2", "L2 smoothness (lower = smoother)"),
                             (3, "spectral_entropy", "spectral entropy (nats)")):
        ax = fig.add_subplot(grid[1, j])
        data = [arrays["per_draw"][c][metric] for c in COLOURS]
        parts = ax.violinplot(data, showextrema=False)
        for body, colour in zip(parts["bodies"], COLOURS):
            body.set_facecolor(NOISE_COLOURS[colour])
            body.set_alpha(0.6)
        ax.plot(range(1, 5), [r[f"{metric}_mean"] for r in results["rows"]], "o", color="k", ms=4, label="ours (mean)")
        if not quick:  # a quick run's short, few draws are not the paper's setting
            ax.plot(range(1, 5), [PAPER_TABLE4[c][metric] for c in COLOURS], "x", color=plot_style.COLORS["linear"],
                    ms=7, label="paper")
        ax.set_xticks(range(1, 5), list(COLOURS))
        ax.set_title(label, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"Table 4: smoothness vs spectral entropy on coloured noise ({config.num_points} bins, "
                 f"{config.num_trials} draws per colour)", y=1.0)
    fig.tight_layout()
    return save_figure(fig, Path(config.fig_dir) / "noise_table4.png", quick)


def readme_table(results: dict) -> str:
    """The README's generated block, from noise_table.json alone."""
    yes = {True: "yes", False: "NO"}
    lines = ["| noise | PSD | L2 ours (mean ± std) | ours, 4 dp | paper | consistent | "
             "spectral entropy ours (mean ± std) | 95% CI of the mean | paper | consistent |",
             "|---|---|---:|---:|---:|:---:|---:|---:|---:|:---:|"]
    for r in results["rows"]:
        lo, hi = r["spectral_entropy_mean_ci95"]
        lines.append(
            f"| {r['noise']} | f^{r['psd_exponent']:g} | {r['l2_mean']:.5f} ± {r['l2_std']:.5f} | "
            f"{r['l2_mean']:.4f} | {r['paper_l2']:.4f} | {yes[r['l2_consistent_with_paper']]} | "
            f"{r['spectral_entropy_mean']:.4f} ± {r['spectral_entropy_std']:.4f} | [{lo:.4f}, {hi:.4f}] | "
            f"{r['paper_spectral_entropy']:.4f} | {yes[r['spectral_entropy_consistent_with_paper']]} |")
    lines += ["", "Sensitivity: the same means under other readings of the unstated choices "
                  "(L2 only where the PMFs change).", "",
              "| variant | " + " | ".join(f"{c} L2 / H" for c in COLOURS) + " |",
              "|---|" + "---:|" * len(COLOURS)]
    main = {c: (r["l2_mean"], r["spectral_entropy_mean"]) for c, r in zip(COLOURS, results["rows"])}
    lines.append("| **ours (above)** | " + " | ".join(f"{main[c][0]:.4f} / {main[c][1]:.4f}" for c in COLOURS) + " |")
    for s in results["sensitivity"]:
        cells = [(f"{s['l2'][c]:.4f} / " if s["l2"] else "") + f"{s['spectral_entropy'][c]:.4f}" for c in COLOURS]
        lines.append(f"| {s['variant']} | " + " | ".join(cells) + " |")
    lines.append("| paper | " + " | ".join(f"{PAPER_TABLE4[c]['l2']:.4f} / {PAPER_TABLE4[c]['spectral_entropy']:.4f}"
                                          for c in COLOURS) + " |")
    prov = results["provenance"]
    lines += ["", f"L2 increases brown → blue: {results['l2_increases_brown_to_blue']}. Spectral entropy, low to "
                  f"high: {' < '.join(results['spectral_entropy_order_low_to_high'])}.", "",
              f"Command: `{results['command']}` (seed {results['config']['seed']}, "
              f"{results['config']['num_trials']} draws and {results['config']['num_bootstrap']} bootstrap "
              f"resamples per colour). Measured: {prov['wall_seconds']:.1f} s wall ({prov['cpu_seconds']:.1f} s "
              f"CPU time) on a {prov['cpu_count']}-core CPU (1-min load average {prov['load_average_1min']:.1f}) "
              f"({prov['platform']}), torch {prov['torch']}, "
              f"numpy {prov['numpy']}, commit {commit_text(prov)}."]
    return "\n".join(lines)


def readme_blocks(out_dir: Path = RESULTS) -> dict[str, str]:
    """The README's generated block, from noise_table.json in `out_dir` alone (misc/check_readmes.py checks it)."""
    return {"noise-table": readme_table(json.loads((Path(out_dir) / "noise_table.json").read_text()))}


def main(argv=None) -> None:
    clock = Clock()
    argv = sys.argv[1:] if argv is None else list(argv)
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK)
    quick = cfg._args.quick
    refuse_quick_into_committed(HERE, quick, out_dir=cfg.out_dir, fig_dir=cfg.fig_dir)
    results, arrays = compute(cfg)
    fig_path = plot(results, arrays, cfg, quick)
    script = Path(__file__).resolve()
    script = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    results = {
        **results,
        "command": " ".join(["python", str(script), *argv]),
        "config": {**config_dict(cfg), "quick": quick},
        # the whole command (compute + figure), excluding the Python/torch start-up
        "provenance": {**measured(), **clock.seconds()},
    }
    out_dir = Path(cfg.out_dir)
    write_json(out_dir / "noise_table.json", results)
    if not quick and out_dir.resolve() == RESULTS:
        for name, text in readme_blocks().items():
            update_block(README, name, text)
    for r in results["rows"]:
        l2_paper, h_paper = ("", "") if quick else (f" (paper {r['paper_l2']})", f" (paper {r['paper_spectral_entropy']})")
        print(f"{r['noise']:>5}  L2 {r['l2_mean']:.5f}{l2_paper}  "
              f"H {r['spectral_entropy_mean']:.4f} ± SE {r['spectral_entropy_mean_se']:.4f}{h_paper}")
    print("figure:", fig_path)


if __name__ == "__main__":
    main()
