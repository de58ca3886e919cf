"""
Train one image classifier of the fnet-cifar experiment and score it on the whole test set.

The default model is the seed's HEAD "Spectracles" (spec §A): FFT2 -> real-ified coefficients ->
1x1 convs, sinusoidal positional channels, width 32, 4 blocks of 2 inner layers, Adam 1e-3 with
betas (0.9, 0.99), batch 128, 50 epochs, no augmentation. The default data set is Fashion-MNIST (Debian's
`dataset-fashion-mnist`): CIFAR-100, the seed's data, cannot be downloaded here; `--dataset cifar100`
runs the seed's setting on a `cifar-100-python` folder under `--data-dir`.

    python fnet-cifar/scripts/train.py --epochs 10 --mix real --pe none      # one ablation run
    python fnet-cifar/scripts/train.py --dataset cifar100 --batch-size 128 --epochs 50   # the seed's HEAD run

Writes <out-dir>/<dataset>/<variant>/seed<k>/{config,env,metrics}.json and log.txt; a run whose
metrics.json exists is skipped (so sweeps resume). Accuracy is the last epoch's, on every test image.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

EXP_ROOT = Path(__file__).resolve().parents[1]  # fnet-cifar/
# src/ holds this experiment's library; the hyphenated experiment folder is not an installed package.
sys.path.insert(0, str(EXP_ROOT / "src"))
from fnet_cifar.data import load_dataset  # noqa: E402
from fnet_cifar.model import PatchClassifier, Spectracles, count_parameters  # noqa: E402


def _f(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class Config:
    # data
    dataset: str = _f("fashion-mnist", "fashion-mnist | cifar100 | cifar100-coarse | synthetic")
    data_dir: str = _f(str(EXP_ROOT / "data"), "folder holding cifar-100-python/ or fashion-mnist/")
    input_channels: int = _f(0, "0 = the data's; 3 on a gray set replicates it (the seed's stem hard-codes 3)")
    synthetic_train: int = _f(10000, "synthetic set: training images")
    synthetic_test: int = _f(5000, "synthetic set: test images")
    synthetic_noise: float = _f(2.0, "synthetic set: white-noise std (class grating amplitude is 0.5-1)")
    synthetic_size: int = _f(32, "synthetic set: image side")
    limit_train: int = _f(0, "smoke tests only: use the first N training images (0 = all)")
    limit_test: int = _f(0, "smoke tests only: score the first N test images (0 = all, as every reported run)")
    # model
    model: str = _f("spectracles", "spectracles | fnet (FNet mixing on patches) | attention (ViT on patches)")
    mix: str = _f("realify", "realify (Re and Im) | real (Re only, FNet-style) | legacy (the seed's scrambled layout)")
    pe: str = _f("sinusoidal", "positional channels: none | simple (2) | sinusoidal (4 x pe_freqs)")
    pe_freqs: int = _f(8, "frequencies F of the sinusoidal positional channels")
    fft_norm: str = _f("backward", "torch.fft norm: backward (the seed's, unnormalised) | ortho | forward")
    norm_dims: str = _f("chw", "standardize over chw (the seed's) | c | hw | none")
    residual: bool = _f(True, "residual connection around the non-stem blocks")
    width: int = _f(32, "channels between blocks (the seed's mid_layer_size)")
    depth: int = _f(4, "blocks after the stem (the seed's num_layers)")
    n_linear: int = _f(2, "inner [ReLU, standardize, PE, 1x1 conv] layers per block")
    patch: int = _f(4, "patch models: patch side")
    dim: int = _f(64, "patch models: token width")
    ffn: int = _f(160, "patch models: feed-forward width")
    layers: int = _f(4, "patch models: encoder blocks")
    heads: int = _f(4, "attention model: heads")
    # optimisation
    epochs: int = _f(50, "training epochs")
    batch_size: int = _f(128, "training batch size")
    lr: float = _f(1e-3, "Adam learning rate (constant)")
    beta2: float = _f(0.99, "Adam beta2")
    seed: int = _f(0, "seed of init and shuffling (the synthetic set itself is always drawn with seed 0)")
    eval_batch_size: int = _f(1000, "test batch size (every test image is scored)")
    # system
    device: str = _f("auto", "auto | cpu | cuda | cuda:N | mps")
    amp: str = _f("auto", "auto (bf16 autocast on cuda, off elsewhere) | bf16 | off")
    compile: bool = _f(False, "torch.compile the model (costs a compile per variant; see README)")
    out_dir: str = _f(str(EXP_ROOT / "runs"), "root of the run directories")
    variant: str = _f("", "run name; empty = derived from the model settings")
    progress: bool = _f(True, "tqdm progress bar")


SYSTEM_FIELDS = {"device", "out_dir", "progress", "data_dir"}  # may differ when a finished run is skipped


def parse_config(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=f.metadata["help"])
        else:
            typ = {"int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
            p.add_argument(flag, type=typ, default=f.default, help=f.metadata["help"])
    return Config(**vars(p.parse_args(argv)))


def variant_name(cfg: Config) -> str:
    if cfg.variant:
        return cfg.variant
    if cfg.model == "spectracles":
        name = f"spectracles-{cfg.mix}-pe{cfg.pe}{cfg.pe_freqs if cfg.pe == 'sinusoidal' else ''}"
        name += f"-w{cfg.width}d{cfg.depth}l{cfg.n_linear}"
        name += "" if cfg.fft_norm == "backward" else f"-{cfg.fft_norm}"
        name += "" if cfg.norm_dims == "chw" else f"-std{cfg.norm_dims}"
        name += "" if cfg.residual else "-nores"
    else:
        name = f"{cfg.model}-p{cfg.patch}-d{cfg.dim}-f{cfg.ffn}-l{cfg.layers}"
    return name + (f"-in{cfg.input_channels}" if cfg.input_channels else "")


def run_dir(cfg: Config) -> Path:
    return Path(cfg.out_dir) / cfg.dataset / variant_name(cfg) / f"seed{cfg.seed}"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def environment(device: torch.device) -> dict:
    try:
        commit = subprocess.run(["git", "-C", str(EXP_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = os.environ.get("GIT_COMMIT", "unknown")  # the GPU machine gets the tree without .git
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "cuda": torch.version.cuda, "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "platform": platform.platform(), "commit": commit}


def build_model(cfg: Config, in_channels: int, num_classes: int, image_size: tuple[int, int]) -> torch.nn.Module:
    if cfg.model == "spectracles":
        return Spectracles(in_channels, num_classes, image_size, width=cfg.width, depth=cfg.depth,
                           n_linear=cfg.n_linear, mix=cfg.mix, pe=cfg.pe, pe_freqs=cfg.pe_freqs,
                           norm_dims=cfg.norm_dims, fft_norm=cfg.fft_norm, residual=cfg.residual)
    if cfg.model in ("fnet", "attention"):
        return PatchClassifier(in_channels, num_classes, image_size, cfg.model, patch=cfg.patch, dim=cfg.dim,
                               ffn=cfg.ffn, layers=cfg.layers, heads=cfg.heads)
    raise ValueError(f"unknown model {cfg.model!r}: use spectracles, fnet or attention")


def write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)  # atomic: a half-written metrics.json never marks a run as finished


def main(cfg: Config) -> dict:
    out = run_dir(cfg)
    config = dataclasses.asdict(cfg)
    if (out / "metrics.json").exists():
        old = json.loads((out / "config.json").read_text())
        diff = {k for k in config if k not in SYSTEM_FIELDS and old.get(k) != config[k]}
        if diff:
            raise ValueError(f"{out} holds a finished run with other settings ({sorted(diff)}): use another --out-dir")
        print(f"skip {out} (finished)")
        return json.loads((out / "metrics.json").read_text())

    # ---- data: whole set on the device as uint8, batches are index gathers (no DataLoader) ----
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    data = load_dataset(cfg.dataset, cfg.data_dir, n_train=cfg.synthetic_train, n_test=cfg.synthetic_test,
                        noise=cfg.synthetic_noise, size=cfg.synthetic_size)
    n_train = min(cfg.limit_train or len(data.y_train), len(data.y_train))
    n_test = min(cfg.limit_test or len(data.y_test), len(data.y_test))
    x_train = torch.from_numpy(data.x_train[:n_train]).to(device)
    y_train = torch.from_numpy(data.y_train[:n_train]).to(device)
    x_test = torch.from_numpy(data.x_test[:n_test]).to(device)
    y_test = torch.from_numpy(data.y_test[:n_test]).to(device)
    c, h, w = data.shape
    in_ch = cfg.input_channels or c
    if in_ch != c and not (c == 1 and in_ch == 3):
        raise ValueError(f"input_channels={cfg.input_channels} does not fit {cfg.dataset}'s {c} channels")

    def prepare(xb: torch.Tensor) -> torch.Tensor:  # uint8 -> [0, 1] floats, as ToTensor(); gray -> RGB if asked
        return (xb.float() / 255).expand(-1, in_ch, -1, -1)

    # ---- model and optimiser ----
    model = build_model(cfg, in_ch, len(data.classes), (h, w)).to(device)
    params = count_parameters(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2))
    amp = cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
    autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)  # noqa: E731
    if cfg.compile:
        torch._dynamo.reset()  # a grid compiles many models in one process: don't hit the recompile limit
    forward = torch.compile(model) if cfg.compile else model

    out.mkdir(parents=True, exist_ok=True)
    env = environment(device)
    write_json(out / "config.json", config)
    write_json(out / "env.json", env)
    log = open(out / "log.txt", "w")
    print(f"{out}: {params:,} parameters, {n_train} train / {n_test} test images, device {device}, amp {amp}",
          file=log, flush=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    @torch.no_grad()
    def evaluate() -> tuple[float, float]:
        model.eval()
        loss, correct = torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long)
        for i in range(0, n_test, cfg.eval_batch_size):  # every test image, no dropped batch
            xb, yb = prepare(x_test[i:i + cfg.eval_batch_size]), y_test[i:i + cfg.eval_batch_size]
            with autocast():
                logits = forward(xb).float()
            loss += F.cross_entropy(logits, yb, reduction="sum")
            correct += (logits.argmax(1) == yb).sum()
        model.train()
        return loss.item() / n_test, correct.item() / n_test

    # ---- training ----
    shuffle = torch.Generator().manual_seed(cfg.seed)
    history = []
    t_run = time.perf_counter()
    for epoch in tqdm(range(1, cfg.epochs + 1), desc=variant_name(cfg), disable=not cfg.progress, leave=False):
        sync()
        t0 = time.perf_counter()
        perm = torch.randperm(n_train, generator=shuffle).to(device)
        loss_sum, correct = torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long)
        for i in range(0, n_train, cfg.batch_size):  # the last, smaller batch is kept
            idx = perm[i:i + cfg.batch_size]
            xb, yb = prepare(x_train[idx]), y_train[idx]
            with autocast():
                logits = forward(xb).float()
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == yb).sum()
        train_loss, train_acc = loss_sum.item() / n_train, correct.item() / n_train  # .item() syncs
        t1 = time.perf_counter()
        test_loss, test_acc = evaluate()
        row = {"epoch": epoch, "train/loss": train_loss, "train/acc": train_acc, "test/loss": test_loss,
               "test/acc": test_acc, "train_seconds": t1 - t0, "eval_seconds": time.perf_counter() - t1}
        history.append(row)
        print(json.dumps(row), file=log, flush=True)
        if not np.isfinite(train_loss):
            print(f"{out}: loss is {train_loss} at epoch {epoch}; stopping", file=log, flush=True)
            break

    # Epoch 1 holds warm-up (cuDNN/cuFFT plans, compilation): the per-epoch time is the median of the rest.
    times = [r["train_seconds"] for r in history]
    metrics = {"test/acc": history[-1]["test/acc"], "test/loss": history[-1]["test/loss"],
               "train/acc": history[-1]["train/acc"], "params": params, "n_test": n_test, "n_train": n_train,
               "epochs_run": len(history), "seconds_per_epoch": float(np.median(times[1:] if len(times) > 1 else times)),
               "first_epoch_seconds": times[0], "wall_seconds": time.perf_counter() - t_run,
               "diverged": not np.isfinite(history[-1]["train/loss"]), "amp": amp, "gpu": env["gpu"],
               "history": history}
    write_json(out / "metrics.json", metrics)
    log.close()
    print(f"{out}: test acc {metrics['test/acc']:.4f}, {params:,} params, {metrics['seconds_per_epoch']:.2f} s/epoch")
    return metrics


if __name__ == "__main__":
    try:
        main(parse_config())
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
