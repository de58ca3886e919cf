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

Outputs: runs/<name>/{config,env,metrics}.json per target (skipped when metrics.json exists), then
results/head_demo.json + results/summary.json, then figures/ and ../assets/head_demo.gif.
Expected: KL falls and smoothness rises with N (the paper's scaling law); see README.
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
import torch.nn.functional as F
from scipy.stats import norm
from torch import nn
from tqdm import tqdm

from fourier_head import Fourier_Head, regularization_loss, smoothness

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    num_bins: int = field(default=128, metadata={"help": "output bins m on [-1, 1]"})
    max_frequencies: int = field(default=64, metadata={"help": "train every N = 1..max_frequencies"})
    steps: int = field(default=10_000, metadata={"help": "Adam steps per head"})
    batch_size: int = field(default=1024, metadata={"help": "fresh samples per step and head"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate, decayed linearly to 0"})
    regularization_gamma: float = field(default=1e-6, metadata={"help": "Fourier regulariser weight per head"})
    targets: tuple[str, ...] = field(default=("square-wave", "mog-10", "mog-33"),
                                     metadata={"help": "targets to learn (square-wave, mog-10, mog-33)"})
    eval_every: int = field(default=1000, metadata={"help": "record KL of every head this often"})
    seed: int = field(default=0, metadata={"help": "seeds torch (init) and the sampler"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, ..."})
    threads: int = field(default=1, metadata={"help": "CPU threads (tiny tensors: 1 is fastest, ~5x on a busy CPU)"})
    runs_dir: str = field(default=str(HERE / "runs"), metadata={"help": "per-target run directories"})
    out_dir: str = field(default=str(HERE / "results"), metadata={"help": "aggregated JSON results"})
    fig_dir: str = field(default=str(HERE / "figures"), metadata={"help": "PNG figures"})
    gif: str = field(default=str(HERE.parent / "assets" / "head_demo.gif"), metadata={"help": "animation path"})
    quick: bool = field(default=False, metadata={"help": "smoke run: N = 1..4, 100 steps, under runs/quick/"})


QUICK_DIR = HERE / "runs" / "quick"
QUICK = {"max_frequencies": 4, "steps": 100, "eval_every": 50, "runs_dir": str(QUICK_DIR / "runs"),
         "out_dir": str(QUICK_DIR / "results"), "fig_dir": str(QUICK_DIR / "figures"),
         "gif": str(QUICK_DIR / "figures" / "head_demo.gif")}


def parse_config(argv=None) -> Config:
    """Dataclass fields -> CLI flags; --quick applies QUICK first, explicit flags win (misc boilerplate)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in dataclasses.fields(Config):
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
    config = Config()
    if given.get("quick"):
        config = dataclasses.replace(config, **QUICK)
    config = dataclasses.replace(config, **given)
    unknown = [t for t in config.targets if t not in TARGETS]
    if unknown:
        sys.exit(f"error: unknown target(s) {unknown}; choose from {list(TARGETS)}")
    if config.max_frequencies < 1 or config.num_bins < 2 or config.steps < 1:
        sys.exit("error: need max_frequencies >= 1, num_bins >= 2 and steps >= 1")
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
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "platform": platform.platform(), "cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0], "gpu": gpu,
            "commit": commit, "dirty": dirty}


# ------------------------------------------------------------------------------------------------
# data: the three targets (means and standard deviations of the official demo)
# ------------------------------------------------------------------------------------------------

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


def train_target(target: str, config: Config, device: torch.device) -> dict:
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
    config = parse_config(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" \
        else torch.device(config.device)
    torch.set_num_threads(config.threads)
    results, wall, cpu = {}, 0.0, 0.0
    for target in config.targets:
        run_dir = Path(config.runs_dir) / run_name(target, config)
        metrics_path = run_dir / "metrics.json"
        if metrics_path.exists():  # resume: finished targets are not retrained
            print(f"{target}: found {metrics_path}, skipping")
        else:
            t0, c0 = time.time(), time.process_time()
            metrics = train_target(target, config, device)
            metrics["wall_seconds"], metrics["cpu_seconds"] = time.time() - t0, time.process_time() - c0
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.json").write_text(json.dumps({**dataclasses.asdict(config), "target": target},
                                                            indent=1) + "\n")
            (run_dir / "env.json").write_text(json.dumps({**env_info(), "device": str(device)}, indent=1) + "\n")
            metrics_path.write_text(json.dumps(metrics) + "\n")
        results[target] = json.loads(metrics_path.read_text())
        wall += results[target]["wall_seconds"]
        cpu += results[target]["cpu_seconds"]
        kl, s = results[target]["kl"], results[target]["smoothness"]
        print(f"{target}: KL N=1 {kl[0]:.4f} -> N={len(kl)} {kl[-1]:.4f}; smoothness {s[0]:.4f} -> {s[-1]:.4f} "
              f"(true {results[target]['true_smoothness']:.4f})")

    pick = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= config.max_frequencies]
    summary = {
        "experiment": "head-demo",
        "paper": "project-page demo (Fourier head with N = 1..64 learning 1-D densities); Theorem 3.3 trend",
        "config": dataclasses.asdict(config),
        "metrics": {f"{t}/N{n}/{k}": results[t][k][n - 1] for t in results for n in pick
                    for k in ("kl", "smoothness")},
        "true_smoothness": {t: results[t]["true_smoothness"] for t in results},
        "provenance": {**env_info(), "device": str(device), "wall_seconds": wall, "cpu_seconds": cpu},
    }
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "head_demo.json").write_text(json.dumps(results) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")

    import plot_demo  # sibling script: results -> figures, GIF, README table

    t0 = time.time()
    plot_demo.main(["--out-dir", config.out_dir, "--fig-dir", config.fig_dir, "--gif", config.gif, "--no-readme"])
    summary["provenance"]["plot_wall_seconds"] = time.time() - t0
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    if not config.quick and out_dir == HERE / "results":
        plot_demo.update_readme(plot_demo.readme_table(results, summary))


if __name__ == "__main__":
    main()
