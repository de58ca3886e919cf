"""The project-page demo: an unconditional Fourier head learns 1-D densities as N grows.

    python misc/head-demo/train.py            # all three targets, N = 1..64, 10k steps: ~5 min, 2-core CPU
    python misc/head-demo/train.py --quick    # smoke run (N = 1..4, 100 steps) into runs/quick/
    python misc/head-demo/plot_demo.py        # only redraw figures + GIF from results/

For every N = 1..64 a Fourier head with 128 output bins and no input (the official demo feeds a
constant zero vector, so only the bias-like parameters matter) is fitted by cross-entropy to fresh
samples of a target on [-1, 1]: a square wave (uniform on [-0.5, 0.5]), a 10-component and a
33-component mixture of Gaussians (each component truncated to [-1, 1], equal weights). Settings of
the official demo: 10,000 Adam steps, lr 1e-3 decayed linearly to 0, batch 1024, gamma = 1e-6 with
the regulariser added to the loss.

All 64 heads train at once as the 64 rows of ONE `Fourier_Head(64, 128, 64)`: row n gets the one-hot
input e_n, so its coefficients are column n of the linear layer; the entries for frequencies > n are
zeroed and their gradients masked, which makes row n exactly the N = n head (the test checks this
against a standalone `Fourier_Head(1, 128, n)`). The bias is frozen at 0 so rows share nothing; the
cross-entropy is summed over rows and gamma is multiplied by 64 because the head's regulariser is a
mean over rows. Adam is per-coordinate, so this is 64 independent trainings in one set of tensor ops.

Outputs: runs/<name>/{config,env,metrics}.json per target (skipped when metrics.json exists; a run
directory holding other settings stops the program, `--force` retrains it), then results/head_demo.json +
results/summary.json, then figures/, ../assets/head_demo.gif and the README's results block.
Expected: KL falls and smoothness rises with N (the paper's scaling law); see README.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import norm
from torch import nn
from tqdm import tqdm

from fourier_head import Fourier_Head, regularization_loss, smoothness
from scaffold import Field, Tracker, config_dict, parse_config, pick_device, prepare_run, update_block, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # misc/: misc_common
from misc_common import Clock, measured, refuse_quick_into_committed  # noqa: E402

HERE = Path(__file__).resolve().parent
README, RESULTS = HERE / "README.md", HERE / "results"

# The targets of the official demo: (mean, std) of equally weighted Gaussians, or None for the square wave.
TARGETS = {
    "square-wave": None,  # uniform on [-0.5, 0.5]
    "mog-10": [(-0.7, 0.1), (-0.55, 0.07), (-0.45, 0.2), (-0.4, 0.15), (-0.37, 0.05), (-0.4, 0.2),
               (0.1, 0.05), (0.45, 0.04), (0.5, 0.1), (0.6, 0.06)],
    "mog-33": [(-0.98, 0.04), (-0.94, 0.07), (-0.92, 0.02), (-0.63, 0.05), (-0.6, 0.03), (-0.55, 0.06),
               (-0.53, 0.015), (-0.5, 0.08), (-0.45, 0.03), (-0.4, 0.06), (-0.38, 0.02), (-0.36, 0.08),
               (-0.34, 0.03), (-0.3, 0.06), (-0.25, 0.015), (-0.2, 0.05), (-0.15, 0.03), (-0.1, 0.08),
               (-0.05, 0.02), (0.0, 0.07), (0.05, 0.015), (0.1, 0.05), (0.15, 0.04), (0.2, 0.06),
               (0.25, 0.015), (0.3, 0.08), (0.35, 0.03), (0.4, 0.07), (0.82, 0.03), (0.85, 0.06),
               (0.9, 0.02), (0.92, 0.07), (0.95, 0.015)],
}


@dataclass
class Config:
    num_bins: int = Field(128, "output bins m on [-1, 1]", low=2)
    max_frequencies: int = Field(64, "train every N = 1..max_frequencies", low=1)
    steps: int = Field(10_000, "Adam steps per head", low=1)
    batch_size: int = Field(1024, "fresh samples per step and head", low=1)
    lr: float = Field(1e-3, "Adam learning rate, decayed linearly to 0", low=0.0, low_open=True)
    regularization_gamma: float = Field(1e-6, "Fourier regulariser weight per head", low=0.0)
    targets: tuple[str, ...] = Field(tuple(TARGETS), "targets to learn", choices=tuple(TARGETS))
    eval_every: int = Field(1000, "record KL of every head this often", low=1)
    seed: int = Field(0, "seeds torch (init) and the sampler", low=0)
    device: str = Field("auto", "auto, cpu, cuda, cuda:N")
    threads: int = Field(1, "CPU threads (tiny tensors: 1 is fastest, ~5x on a busy CPU)", low=1)
    runs_dir: str = Field(str(HERE / "runs"), "per-target run directories")
    out_dir: str = Field(str(RESULTS), "aggregated JSON results")
    fig_dir: str = Field(str(HERE / "figures"), "PNG figures")
    gif: str = Field(str(HERE.parent / "assets" / "head_demo.gif"), "animation path")


# --quick: N = 1..4, 100 steps, everything under runs/quick/
QUICK_DIR = HERE / "runs" / "quick"
QUICK = {"max_frequencies": 4, "steps": 100, "eval_every": 50, "runs_dir": str(QUICK_DIR / "runs"),
         "out_dir": str(QUICK_DIR / "results"), "fig_dir": str(QUICK_DIR / "figures"),
         "gif": str(QUICK_DIR / "figures" / "head_demo.gif")}
# settings a finished per-target run may differ in and still be reused
NOT_IN_RUN = ("device", "threads", "targets", "runs_dir", "out_dir", "fig_dir", "gif", "quick")


# ------------------------------------------------------------------------------------------------
# data: the targets' densities and exact bin probabilities
# ------------------------------------------------------------------------------------------------

def true_cdf(target: str, z: np.ndarray) -> np.ndarray:
    """CDF on [-1, 1]; each Gaussian is truncated to [-1, 1] on its own (sampling by rejection per component)."""
    z = np.clip(z, -1, 1)
    if TARGETS[target] is None:
        return np.clip(z + 0.5, 0, 1)
    cdf = np.zeros_like(z, dtype=np.float64)
    for mean, std in TARGETS[target]:
        lo, hi = norm.cdf(-1, mean, std), norm.cdf(1, mean, std)
        cdf += (norm.cdf(z, mean, std) - lo) / (hi - lo)
    return cdf / len(TARGETS[target])


def true_density(target: str, z: np.ndarray) -> np.ndarray:
    """Density on [-1, 1] (integrates to 1)."""
    if TARGETS[target] is None:
        return ((z >= -0.5) & (z <= 0.5)).astype(np.float64)
    pdf = np.zeros_like(z, dtype=np.float64)
    for mean, std in TARGETS[target]:
        pdf += norm.pdf(z, mean, std) / (norm.cdf(1, mean, std) - norm.cdf(-1, mean, std))
    return pdf / len(TARGETS[target])


def bin_probabilities(target: str, num_bins: int) -> np.ndarray:
    """(num_bins,) probability that a sample falls in each equal-width bin: the labels' exact law."""
    return np.diff(true_cdf(target, np.linspace(-1, 1, num_bins + 1)))


# ------------------------------------------------------------------------------------------------
# model: the heads for N = 1..N_max as rows of one Fourier_Head
# ------------------------------------------------------------------------------------------------

class HeadsForAllN(nn.Module):
    """Row n-1 of the output is an unconditional Fourier head with N = n frequencies: (N_max, m) log-PMFs."""

    def __init__(self, max_frequencies: int, num_bins: int, regularization_gamma: float):
        super().__init__()
        rows = max_frequencies
        # The head's regulariser is gamma * mean over rows; times `rows` it is the sum of per-head terms.
        self.head = Fourier_Head(rows, num_bins, max_frequencies, regularization_gamma=regularization_gamma * rows)
        fc = self.head.fc_extract_autocorrelation_params  # weight: (2(N_max+1), rows) = [Re a; Im a] per column
        j = torch.arange(max_frequencies + 1)[:, None]
        mask = (j <= torch.arange(1, rows + 1)[None, :]).repeat(2, 1).to(fc.weight.dtype)
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("inputs", torch.eye(rows), persistent=False)
        with torch.no_grad():
            fc.weight.mul_(mask)
            fc.bias.zero_()
        fc.bias.requires_grad_(False)  # a shared bias would couple the rows
        fc.weight.register_hook(lambda grad: grad * self.mask)  # frequencies > n stay exactly 0 under Adam

    def forward(self) -> torch.Tensor:
        return self.head(self.inputs)


# ------------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------------

def kl_divergence(true_pmf: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """KL(true || probs) per row; 0 log 0 = 0."""
    terms = true_pmf * (torch.log(true_pmf.clamp_min(1e-300)) - torch.log(probs))
    return torch.where(true_pmf > 0, terms, torch.zeros_like(terms)).sum(-1)


def train_target(target: str, config: Config, device: torch.device, tracker: Tracker | None = None) -> dict:
    torch.manual_seed(config.seed)
    sampler = torch.Generator(device).manual_seed(config.seed)
    rows, m, batch = config.max_frequencies, config.num_bins, config.batch_size
    true_pmf = torch.tensor(bin_probabilities(target, m), dtype=torch.float64, device=device)
    label_probs = true_pmf.float().expand(rows, m)
    model = HeadsForAllN(rows, m, config.regularization_gamma).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / config.steps)
    ones = torch.ones(rows, batch, device=device)

    history = {"step": [], "kl": []}
    for step in tqdm(range(1, config.steps + 1), desc=target, mininterval=2):
        # Each head gets its own fresh batch of labels; only the per-bin histogram enters the loss.
        labels = torch.multinomial(label_probs, batch, replacement=True, generator=sampler)  # (rows, batch)
        histogram = torch.zeros(rows, m, device=device).scatter_add_(1, labels, ones) / batch
        log_pmf = model()
        loss = F.cross_entropy(log_pmf, histogram, reduction="sum") + regularization_loss(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % config.eval_every == 0 or step == config.steps:
            with torch.no_grad():
                probs = torch.softmax(model(), dim=-1).double()
            history["step"].append(step)
            history["kl"].append(kl_divergence(true_pmf, probs).tolist())
            if tracker is not None:
                tracker.log({f"{target}/kl_mean_over_N": sum(history["kl"][-1]) / rows, f"{target}/loss": loss.item()},
                            step=step)

    with torch.no_grad():
        probs = torch.softmax(model(), dim=-1).double()  # the distribution the CE loss trains
        coeffs = model.head.fourier_coefficients(model.inputs)  # (rows, N_max+1), c_k / c_0
    return {
        "num_frequencies": list(range(1, rows + 1)),
        "kl": kl_divergence(true_pmf, probs).tolist(),
        "smoothness": smoothness(probs).tolist(),
        "true_smoothness": smoothness(true_pmf).item(),
        "true_pmf": true_pmf.tolist(),
        "pmf": probs.cpu().numpy().round(8).tolist(),
        # coefficient k of row n is 0 for k > n+1; keep the non-zero ones only
        "coeff_real": [coeffs[n, 1:n + 2].real.cpu().numpy().round(8).tolist() for n in range(rows)],
        "coeff_imag": [coeffs[n, 1:n + 2].imag.cpu().numpy().round(8).tolist() for n in range(rows)],
        "history": history,
    }


def run_name(target: str, config: Config) -> str:
    return (f"{target}-m{config.num_bins}-N{config.max_frequencies}-steps{config.steps}-bs{config.batch_size}"
            f"-lr{config.lr:g}-g{config.regularization_gamma:g}-seed{config.seed}")


def main(argv=None) -> None:
    def extra(parser):
        parser.add_argument("--force", action="store_true", help="retrain a target whose run directory holds other settings")
        parser.add_argument("--wandb", action="store_true", help="also log to wandb (offline unless WANDB_MODE says otherwise)")

    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK, extra=extra)
    quick = cfg._args.quick
    refuse_quick_into_committed(HERE, quick, out_dir=cfg.out_dir, fig_dir=cfg.fig_dir, gif=cfg.gif)
    device = pick_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    tracker = Tracker(cfg._args.wandb, "fourier-head-demo", config_dict(cfg), directory=cfg.runs_dir)
    results, wall, cpu = {}, 0.0, 0.0
    for target in cfg.targets:
        run_dir = Path(cfg.runs_dir) / run_name(target, cfg)
        metrics_path = run_dir / "metrics.json"
        state = prepare_run(run_dir, {**config_dict(cfg), "quick": quick, "target": target}, force=cfg._args.force,
                            ignore=NOT_IN_RUN)
        if state == "done":  # resume: finished targets are not retrained
            print(f"{target}: found {metrics_path}, skipping")
        else:
            clock = Clock()
            metrics = train_target(target, cfg, device, tracker)
            metrics.update(clock.seconds())
            write_json(run_dir / "env.json", measured(device))
            write_json(metrics_path, metrics, indent=None)
        results[target] = json.loads(metrics_path.read_text())
        wall += results[target]["wall_seconds"]
        cpu += results[target]["cpu_seconds"]
        kl, s = results[target]["kl"], results[target]["smoothness"]
        print(f"{target}: KL N=1 {kl[0]:.4f} -> N={len(kl)} {kl[-1]:.4f}; smoothness {s[0]:.4f} -> {s[-1]:.4f} "
              f"(true {results[target]['true_smoothness']:.4f})")

    tracker.finish()
    pick = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= cfg.max_frequencies]
    summary = {
        "experiment": "head-demo",
        "paper": "project-page demo (Fourier head with N = 1..64 learning 1-D densities); Theorem 3.3 trend",
        "config": {**config_dict(cfg), "quick": quick},
        "metrics": {f"{t}/N{n}/{k}": results[t][k][n - 1] for t in results for n in pick
                    for k in ("kl", "smoothness")},
        "true_smoothness": {t: results[t]["true_smoothness"] for t in results},
        "provenance": {**measured(device), "wall_seconds": wall, "cpu_seconds": cpu},
    }
    out_dir = Path(cfg.out_dir)
    write_json(out_dir / "head_demo.json", results, indent=None)

    import plot_demo  # sibling script: results -> figures, GIF, README table

    clock = Clock()
    plot_demo.draw(results, Path(cfg.fig_dir), Path(cfg.gif), quick)
    summary["provenance"]["plot_wall_seconds"] = clock.seconds()["wall_seconds"]
    write_json(out_dir / "summary.json", summary)
    if not quick and out_dir.resolve() == RESULTS:
        for name, text in plot_demo.readme_blocks().items():
            update_block(README, name, text)


if __name__ == "__main__":
    main()
