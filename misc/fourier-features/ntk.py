"""Fourier features and spectral bias through the neural tangent kernel, and the same view of a
linear head vs a Fourier head over bins.

    python misc/fourier-features/ntk.py                # CPU sizes (MLP width 256): ~20-30 s, 2-core CPU
    python misc/fourier-features/ntk.py --seed-sizes   # the seed's MLP width 1024 (~3.2M parameters): ~4-5 min
    python misc/fourier-features/ntk.py --quick        # smoke run into runs/quick/

Part 1 (the Fourier-features seed, after Tancik et al. 2020): a scalar input x is encoded as
FF(band_limit, p)(x) = [a_i sin(2 pi b_i x), a_i cos(2 pi b_i x)]_i / ||a||, b_i = 1..band_limit,
a_i = b_i^-p, then fed to a ReLU MLP. Its NTK, with every per-input gradient normalised to unit length
(so the diagonal is 1) and averaged over 10 freshly initialised networks, is a stationary kernel
whose bandwidth p tunes: p = 0 is a narrow spike (all frequencies learnt at once), p = inf keeps one
harmonic (a broad, smooth kernel). Figures: spectral weights, kernels, cross section, spectrum, the
zero-padded weights and the 64-point spectrum that shows the hard cut-off at band_limit.

Part 2 (connects to the Fourier head): the same normalised NTK over the m bins of a classification
head, K_ij = <grad log p_i, grad log p_j> / norms, averaged over 10 initialisations. A linear head's
kernel is (almost) the identity: a gradient step on bin i tells nothing to bin j. A Fourier head with N
frequencies has a broad, nearly stationary kernel whose spectrum is cut at |k| = N: N plays the role of
band_limit, i.e. the head builds in the spectral bias that Fourier features tune.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from tqdm import tqdm

import plot_style
from fourier_head import Fourier_Head
from scaffold import Field, config_dict, parse_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # misc/: misc_common
from misc_common import (Clock, machine_text, measured, refuse_quick_into_committed, save_figure,  # noqa: E402
                         save_study, saved_results)

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    band_limit: int = Field(16, "Fourier-feature frequencies b = 1..band_limit", low=1)
    ps: tuple[float, ...] = Field((0.0, 0.5, 1.0, 1.5, 2.0, math.inf), "a_i = b_i^-p (the default's last p is inf)",
                                  low=0.0, allow_inf=True)
    width: int = Field(256, "MLP width (the seed: 1024, see --seed-sizes)", low=1)
    hidden_layers: int = Field(4, "ReLU hidden layers of the MLP", low=1)
    num_networks: int = Field(10, "NTKs averaged over this many initialisations", low=1)
    grid_points: int = Field(32, "x = linspace(-0.5, 0.5, grid_points) for the kernel", low=4)
    full_grid_points: int = Field(64, "finer grid of the full-spectrum figure (> 2 band_limit)", low=4)
    shown_weights: int = Field(7, "components in the spectral-weights figure", low=1)
    head_bins: int = Field(64, "bins m of the linear / Fourier heads", low=4)
    head_frequencies: tuple[int, ...] = Field((2, 4, 8, 16), "N of the Fourier heads (< head_bins / 2)", low=1)
    head_dim_input: int = Field(32, "input size of the heads (random Gaussian input)", low=1)
    seed: int = Field(0, "torch seed (network initialisations, head inputs)", low=0)
    threads: int = Field(1, "CPU threads (1 avoids thread-sync stalls on a busy CPU)", low=1)
    out_dir: str = Field(str(HERE / "results"), "where the JSON results go (--seed-sizes: results/seed-sizes/)")
    fig_dir: str = Field(str(HERE / "figures"), "where the PNG figures go (--seed-sizes: figures/seed-sizes/)")


# What the seed's note reports for its figures (width 1024, read off its plots): reference values only.
SEED_DESCRIBED = {"floor": {"0.0": 0.925, "inf": 0.90}, "dc": 30.0, "tail": {"0.0": 0.1, "inf": 0.004}}
# --quick: width 32, 2 networks, outputs under runs/quick/ (wins over --seed-sizes)
QUICK = {"width": 32, "num_networks": 2, "out_dir": str(HERE / "runs" / "quick" / "results"),
         "fig_dir": str(HERE / "runs" / "quick" / "figures")}
# --seed-sizes: the seed's MLP width, outputs in */seed-sizes/
SEED_SIZES = {"width": 1024, "out_dir": str(HERE / "results" / "seed-sizes"),
              "fig_dir": str(HERE / "figures" / "seed-sizes")}
README, RESULTS = HERE / "README.md", HERE / "results"


# ------------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------------

class FourierFeatures(nn.Module):
    """x (n, 1) -> (n, 2 band_limit): [a_i sin(2 pi b_i x), a_i cos(2 pi b_i x)] / ||a||, a_i = b_i^-p."""

    def __init__(self, band_limit: int, p: float):
        super().__init__()
        b = torch.arange(1, band_limit + 1, dtype=torch.float32)
        a = b.pow(-p)  # p = inf: a = (1, 0, 0, ...), only the first harmonic
        self.register_buffer("b", b)
        self.register_buffer("a", a / a.norm())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phase = 2 * math.pi * x * self.b  # the lowest frequency spans the whole unit interval: no aliasing
        return torch.cat([self.a * torch.sin(phase), self.a * torch.cos(phase)], dim=-1)


def ff_network(config: Config, p: float) -> nn.Sequential:
    """FF(band_limit, p) -> Linear -> ReLU -> ... -> Linear(width, 1), PyTorch default initialisation."""
    layers = [FourierFeatures(config.band_limit, p), nn.Linear(2 * config.band_limit, config.width), nn.ReLU()]
    for _ in range(config.hidden_layers - 1):
        layers += [nn.Linear(config.width, config.width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(config.width, 1))


def spectral_weights(p: float, count: int) -> np.ndarray:
    """a_i = 1 / b_i^p for b_i = 1..count (not normalised)."""
    return 1.0 / np.arange(1, count + 1, dtype=np.float64) ** p


# ------------------------------------------------------------------------------------------------
# the normalised NTK
# ------------------------------------------------------------------------------------------------

def normalized_ntk(jacobian: dict[str, torch.Tensor]) -> np.ndarray:
    """(n, n) Gram matrix of unit-normalised gradients; jacobian: name -> (n, *parameter shape)."""
    grads = torch.cat([j.reshape(j.shape[0], -1) for j in jacobian.values()], dim=1)
    grads = grads / grads.norm(dim=1, keepdim=True)
    return (grads @ grads.T).double().numpy()


def ff_kernel(config: Config, p: float, num_points: int) -> np.ndarray:
    """Mean over `num_networks` fresh FF networks of the normalised NTK on linspace(-0.5, 0.5, num_points)."""
    xs = torch.linspace(-0.5, 0.5, num_points)[:, None]
    kernel = np.zeros((num_points, num_points))
    for _ in range(config.num_networks):
        net = ff_network(config, p)
        params = {k: v.detach() for k, v in net.named_parameters()}
        buffers = dict(net.named_buffers())

        def output(params, x):  # one input -> scalar output
            return functional_call(net, (params, buffers), (x[None],))[0, 0]

        kernel += normalized_ntk(vmap(grad(output), in_dims=(None, 0))(params, xs)) / config.num_networks
    return kernel


def head_kernel(config: Config, head: str, num_frequencies: int = 0) -> np.ndarray:
    """Mean over initialisations of the normalised NTK over the m bins of log p(bin | h), h ~ N(0, I)."""
    m, d = config.head_bins, config.head_dim_input
    kernel = np.zeros((m, m))
    for _ in range(config.num_networks):
        h = torch.randn(1, d)
        if head == "linear":
            layer = nn.Linear(d, m)
            log_probs = torch.log_softmax(layer(h), dim=-1)[0]
        else:
            layer = Fourier_Head(d, m, num_frequencies)
            log_probs = layer(h)[0]  # log(pmf + eps): what cross-entropy differentiates
        # one backward per bin (the head's hand-written backward is not a torch.func transform)
        named = dict(layer.named_parameters())
        jacobian = {k: [] for k in named}
        for i in range(m):
            for k, g in zip(named, torch.autograd.grad(log_probs[i], list(named.values()), retain_graph=True)):
                jacobian[k].append(g)
        kernel += normalized_ntk({k: torch.stack(v) for k, v in jacobian.items()}) / config.num_networks
    return kernel


def centered_spectrum(row: np.ndarray) -> np.ndarray:
    """|FFT| of a kernel row, zero frequency in the middle (fftshift)."""
    return np.abs(np.fft.fftshift(np.fft.fft(row)))


# ------------------------------------------------------------------------------------------------
# main: compute -> JSON -> figures (+ README table)
# ------------------------------------------------------------------------------------------------

def compute(config: Config) -> dict:
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    n, n_full = config.grid_points, config.full_grid_points
    ff = {}
    for p in tqdm(config.ps, desc="FF kernels"):
        kernel = ff_kernel(config, p, n)
        full = ff_kernel(config, p, n_full)
        cross, full_cross = kernel[n // 2], full[n_full // 2]
        spectrum, full_spectrum = centered_spectrum(cross), centered_spectrum(full_cross)
        k_full = np.abs(np.arange(n_full) - n_full // 2)
        ff[str(p)] = {
            "kernel": kernel.round(6).tolist(), "cross_section": cross.tolist(), "spectrum": spectrum.tolist(),
            "full_cross_section": full_cross.tolist(), "full_spectrum": full_spectrum.tolist(),
            "floor": float(cross.min()), "dc": float(spectrum[n // 2]),
            "tail": float(spectrum[np.abs(np.arange(n) - n // 2) >= 3 * n // 8].mean()),  # high-frequency level
            # the hard cut-off: mean |FFT| just inside vs just outside the band limit on the 64-point grid
            "full_inside_band": float(full_spectrum[(k_full > config.band_limit // 2) & (k_full <= config.band_limit)].mean()),
            "full_outside_band": float(full_spectrum[k_full > config.band_limit].mean()),
        }
    heads = {"linear": head_kernel(config, "linear")}
    for num_frequencies in config.head_frequencies:
        heads[f"fourier-{num_frequencies}"] = head_kernel(config, "fourier", num_frequencies)
    m = config.head_bins
    k_bins = np.abs(np.arange(m) - m // 2)
    head_results = {}
    for name, kernel in heads.items():
        spectrum = centered_spectrum(kernel[m // 2])
        band = int(name.split("-")[1]) if name != "linear" else m // 2
        outside = spectrum[k_bins > band]
        head_results[name] = {
            "kernel": kernel.round(6).tolist(), "cross_section": kernel[m // 2].tolist(), "spectrum": spectrum.tolist(),
            "neighbour_similarity": float(kernel[m // 2, m // 2 + 1]),  # K between adjacent bins
            "outside_band_ratio": float(outside.max() / spectrum[k_bins <= band].max()) if outside.size else 0.0,
        }
    weights = {str(p): spectral_weights(p, config.shown_weights).tolist() for p in config.ps}
    num_params = sum(t.numel() for t in ff_network(config, 0.0).parameters())
    return {"ff": ff, "heads": head_results, "weights": weights, "num_params": num_params}


def p_label(p: str) -> str:
    return "p = ∞" if float(p) == math.inf else f"p = {float(p):g}"


def plot(results: dict, config: Config, quick: bool = False) -> list[Path]:
    import matplotlib.pyplot as plt

    plot_style.use()
    fig_dir = Path(config.fig_dir)
    ps = list(results["ff"])
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(ps)))
    paths = []

    def line_figure(name, title, ylabel, series, xlabel, logy=False, xs=None):
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for p, color in zip(ps, colors):
            y = np.array(series(p))
            ax.plot(xs if xs is not None else np.arange(len(y)), y, color=color, label=p_label(p))
        if logy:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        paths.append(save_figure(fig, fig_dir / name, quick))

    line_figure("spectral_weights.png", "Spectral weights $a_i = 1/b_i^{\\,p}$", "$a_i$",
                lambda p: results["weights"][p], "component $b_i$", xs=np.arange(1, config.shown_weights + 1))
    line_figure("cross_section.png", f"NTK cross section (row {config.grid_points // 2})", "K(x_16, x)",
                lambda p: results["ff"][p]["cross_section"], "grid index")
    n = config.grid_points
    line_figure("spectrum.png", "Spectrum of the cross section", "|FFT|",
                lambda p: results["ff"][p]["spectrum"], "frequency k", logy=True, xs=np.arange(n) - n // 2)
    full_a = {p: np.r_[spectral_weights(float(p), config.band_limit), np.zeros(config.band_limit)] for p in ps}
    line_figure("full_a.png", f"Weights zero-padded to {2 * config.band_limit}", "$a_i$",
                lambda p: full_a[p], "component $b_i$", xs=np.arange(1, 2 * config.band_limit + 1))
    nf = config.full_grid_points
    line_figure("full_spectrum.png", f"Spectrum on a {nf}-point grid (band limit {config.band_limit})", "|FFT|",
                lambda p: results["ff"][p]["full_spectrum"], "frequency k", logy=True, xs=np.arange(nf) - nf // 2)

    fig, axes = plt.subplots(1, len(ps), figsize=(2.6 * len(ps), 2.9))
    low = min(np.min(results["ff"][p]["kernel"]) for p in ps)  # one colour scale for all p
    for ax, p in zip(np.atleast_1d(axes), ps):
        image = ax.imshow(np.array(results["ff"][p]["kernel"]), cmap="inferno", vmin=low, vmax=1.0)
        ax.set_title(p_label(p))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    fig.colorbar(image, ax=axes, shrink=0.8, label="normalised NTK")
    paths.append(save_figure(fig, fig_dir / "kernels.png", quick))

    # linear head vs Fourier heads over bins
    heads = results["heads"]
    head_colors = {"linear": plot_style.COLORS["linear"]}
    blues = plt.cm.Blues(np.linspace(0.45, 1.0, len(heads) - 1))
    head_colors.update({name: c for name, c in zip([h for h in heads if h != "linear"], blues)})
    label = {name: "linear head" if name == "linear" else f"Fourier head, N = {name.split('-')[1]}" for name in heads}
    fig, axes = plt.subplots(1, len(heads), figsize=(2.6 * len(heads), 2.9))
    low = min(np.min(r["kernel"]) for r in heads.values())
    for ax, (name, r) in zip(axes, heads.items()):
        image = ax.imshow(np.array(r["kernel"]), cmap="inferno", vmin=low, vmax=1.0)
        ax.set_title(label[name], fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    fig.colorbar(image, ax=axes, shrink=0.8, label="normalised NTK over bins")
    paths.append(save_figure(fig, fig_dir / "head_kernels.png", quick))

    m = config.head_bins
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, r in heads.items():
        ax1.plot(r["cross_section"], color=head_colors[name], label=label[name])
        ax2.plot(np.arange(m) - m // 2, r["spectrum"], color=head_colors[name], label=label[name])
    ax1.set_title(f"Cross section (bin {m // 2})")
    ax1.set_xlabel("bin")
    ax1.set_ylabel("K(bin %d, bin)" % (m // 2))
    ax2.set_yscale("log")
    ax2.set_title("Spectrum: the Fourier head is (nearly) band-limited to |k| ≤ N")
    ax2.set_xlabel("frequency k")
    ax2.set_ylabel("|FFT|")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    paths.append(save_figure(fig, fig_dir / "head_ntk.png", quick))
    return paths


def readme_table(results: dict, summary: dict) -> str:
    def seed(key, p):
        value = SEED_DESCRIBED[key] if key == "dc" else SEED_DESCRIBED[key].get(p)
        return "" if value is None else f" (seed ≈ {value:g})"

    n = summary["config"]["grid_points"]
    rows = [f"| p | floor of cross section | DC of spectrum | spectrum tail (mean \\|FFT\\|, \\|k\\| ≥ {3 * n // 8}) | "
            f"{summary['config']['full_grid_points']}-pt grid: mean \\|FFT\\| inside / outside band |",
            "|---|---:|---:|---:|---:|"]
    for p, r in results["ff"].items():
        rows.append(f"| {p_label(p)[4:]} | {r['floor']:.3f}{seed('floor', p)} | {r['dc']:.1f}{seed('dc', p)} | "
                    f"{r['tail']:.4f}{seed('tail', p)} | {r['full_inside_band']:.4f} / {r['full_outside_band']:.4f} |")
    rows += ["", "| head | K(bin i, bin i+1) | max \\|FFT\\| beyond \\|k\\| = N / max inside |", "|---|---:|---:|"]
    for name, r in results["heads"].items():
        rows.append(f"| {name} | {r['neighbour_similarity']:.3f} | "
                    f"{'-' if name == 'linear' else format(r['outside_band_ratio'], '.2f')} |")
    prov = summary["provenance"]
    rows += ["", f"MLP width {summary['config']['width']} ({results['num_params']:,} parameters), "
             f"{summary['config']['num_networks']} networks. Measured: {prov['wall_seconds']:.0f} s wall "
             f"({prov['cpu_seconds']:.0f} s CPU time) on a {machine_text(prov)}."]
    return "\n".join(rows)


def readme_blocks() -> dict[str, str]:
    """The README's two generated blocks, from the JSON in results/ and results/seed-sizes/ alone
    (misc/check_readmes.py checks them)."""
    blocks = {}
    for name, out_dir in (("results", RESULTS), ("seed-sizes", RESULTS / "seed-sizes")):
        results, summary = (json.loads((out_dir / f).read_text()) for f in ("ntk.json", "summary.json"))
        blocks[name] = readme_table(results, summary)
    return blocks


def main(argv=None) -> None:
    clock = Clock()

    def extra(parser):
        parser.add_argument("--plot-only", action="store_true", help="redraw the figures from the saved JSON")

    def check(cfg):
        if cfg.full_grid_points <= 2 * cfg.band_limit or max(cfg.head_frequencies) >= cfg.head_bins // 2:
            return ("need --full-grid-points > 2 x --band-limit (a spectrum beyond the band) and --head-frequencies "
                    f"< --head-bins / 2 (Nyquist) (got {cfg.full_grid_points}, {cfg.band_limit}, "
                    f"{max(cfg.head_frequencies)}, {cfg.head_bins})")
        return None

    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK, extra=extra,
                       presets={"seed_sizes": SEED_SIZES}, check=check)
    quick = cfg._args.quick
    refuse_quick_into_committed(HERE, quick, out_dir=cfg.out_dir, fig_dir=cfg.fig_dir)
    out_dir = Path(cfg.out_dir)
    results_path = out_dir / "ntk.json"
    if cfg._args.plot_only:
        return print("figures:", *plot(saved_results(results_path), cfg, quick))
    results = compute(cfg)
    paths = plot(results, cfg, quick)
    env = measured()
    config = {**config_dict(cfg), "seed_sizes": cfg._args.seed_sizes, "quick": quick}
    summary = {
        "experiment": "fourier-features",
        "paper": "Fourier-features seed (spectral bias, NTK of FF(band_limit, p) networks); Fourier head over bins",
        "config": config,
        "metrics": {**{f"ff/{p_label(p)[4:]}/{k}": r[k] for p, r in results["ff"].items()
                       for k in ("floor", "dc", "tail", "full_inside_band", "full_outside_band")},
                    **{f"heads/{name}/{k}": r[k] for name, r in results["heads"].items()
                       for k in ("neighbour_similarity", "outside_band_ratio")}},
        "provenance": {**env, **clock.seconds()},
    }
    save_study(out_dir, config, env, results_path, results, summary, README, readme_blocks,
               committed=not quick and out_dir.resolve() in (RESULTS, RESULTS / "seed-sizes"))
    for p, r in results["ff"].items():
        print(f"{p_label(p):>8}: floor {r['floor']:.3f}, DC {r['dc']:.1f}, spectrum tail {r['tail']:.4f}")
    for name, r in results["heads"].items():
        print(f"{name:>11}: K(i, i+1) {r['neighbour_similarity']:.3f}, outside-band ratio {r['outside_band_ratio']:.1e}")
    print("figures:", ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
