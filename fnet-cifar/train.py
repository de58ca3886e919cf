"""
Train one image classifier of the fnet-cifar side study and score it on the whole test set.

The default model is the seed's HEAD "Spectracles": FFT2 -> real-ified coefficients -> 1x1 convs,
sinusoidal positional channels, width 32, 4 blocks of 2 inner layers, Adam 1e-3 with betas (0.9, 0.99),
batch 128, 50 epochs, no augmentation. The default data set is Fashion-MNIST (Debian's
`dataset-fashion-mnist`); `--dataset cifar100` runs the seed's own setting on CIFAR-100 if you have it.
`--model logistic-regression | mlp | cnn` trains an anchor model through the same loader and loop.

    python fnet-cifar/train.py --epochs 10 --mix real --pe none          # one ablation run
    python fnet-cifar/train.py --dataset cifar100 --epochs 50            # the seed's HEAD run (not run by us)
    python fnet-cifar/train.py --quick                                   # a tiny CPU run under runs/quick/

Writes <out-dir>/<dataset>/<variant>/seed<k>/{config,env,metrics}.json, log.txt and model.pt. A finished
run with the same settings is skipped; one with other settings stops with the differing fields named
(--force overwrites). Accuracy is the last epoch's, on every test image.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from data import CIFAR100_ARCHIVE_MD5, DATASETS, load_dataset
from model import (FFT_NORMS, MIXES, MLP, NORM_DIMS, PE_KINDS, LogisticRegression, PatchClassifier, SmallCNN,
                   Spectracles, count_parameters)
from scaffold import Field, Tracker, config_dict, parse_config, pick_device, prepare_run, provenance, \
    seed_everything, write_json

HERE = Path(__file__).resolve().parent
MODELS = ("spectracles", "fnet", "attention", "logistic-regression", "mlp", "cnn")


@dataclass
class Config:
    # data
    dataset: str = Field("fashion-mnist", "data set", choices=DATASETS)
    data_dir: str = Field(str(HERE / "data"), "folder holding fashion-mnist/, cifar-100-python/ or its .tar.gz")
    cifar_md5: str = Field(CIFAR100_ARCHIVE_MD5, "expected MD5 of cifar-100-python.tar.gz ('' skips the check)")
    input_channels: int = Field(0, "0 = the data's; 3 on a gray set replicates it (the seed's stem hard-codes 3)",
                                choices=(0, 1, 3))
    synthetic_train: int = Field(10000, "synthetic set: training images", low=10)
    synthetic_test: int = Field(5000, "synthetic set: test images", low=10)
    synthetic_noise: float = Field(2.0, "synthetic set: white-noise std (class grating amplitude is 0.5-1)", low=0.0)
    synthetic_size: int = Field(32, "synthetic set: image side", low=4)
    limit_train: int = Field(0, "use the first N training images (0 = all)", low=0)
    limit_test: int = Field(0, "score the first N test images (0 = all, as every reported run)", low=0)
    # model
    model: str = Field("spectracles", "Spectracles, the patch baselines (fnet, attention) or an anchor",
                       choices=MODELS)
    mix: str = Field("realify", "realify (Re and Im) | real (Re only, FNet-style) | legacy (the seed's scrambled "
                     "layout)", choices=MIXES)
    pe: str = Field("sinusoidal", "positional channels: none | simple (2) | sinusoidal (4 x pe_freqs)",
                    choices=PE_KINDS)
    pe_freqs: int = Field(8, "frequencies F of the sinusoidal positional channels", low=1)
    fft_norm: str = Field("backward", "torch.fft norm (the seed's: backward, unnormalised)", choices=FFT_NORMS)
    norm_dims: str = Field("chw", "standardize over chw (the seed's) | c | hw | none", choices=tuple(NORM_DIMS))
    residual: bool = Field(True, "residual connection around the non-stem blocks")
    width: int = Field(32, "channels between blocks (the seed's mid_layer_size)", low=1)
    depth: int = Field(4, "blocks after the stem (the seed's num_layers)", low=0)
    n_linear: int = Field(2, "inner [ReLU, standardize, PE, 1x1 conv] layers per block", low=0)
    single_conv: bool = Field(False, "one 1x1 conv per block (the seed's first design, its run 3); ignores n_linear")
    patch: int = Field(4, "patch models: patch side", low=1)
    dim: int = Field(64, "patch models: token width", low=1)
    ffn: int = Field(160, "patch models: feed-forward width", low=1)
    layers: int = Field(4, "patch models: encoder blocks", low=1)
    heads: int = Field(4, "attention model: heads (must divide --dim)", low=1)
    mlp_hidden: int = Field(112, "mlp anchor: hidden units (112: 89k parameters on Fashion-MNIST)", low=1)
    cnn_channels: int = Field(32, "cnn anchor: channels of the first stage (32: 84k parameters)", low=1)
    # optimisation
    epochs: int = Field(50, "training epochs", low=1)
    batch_size: int = Field(128, "training batch size", low=1)
    lr: float = Field(1e-3, "Adam learning rate (constant)", low=0.0, low_open=True)
    beta2: float = Field(0.99, "Adam beta2", low=0.0, high=0.999999)
    seed: int = Field(0, "seed of init and shuffling (the synthetic set itself is always drawn with seed 0)", low=0)
    eval_batch_size: int = Field(1000, "test batch size (every test image is scored)", low=1)
    # system
    device: str = Field("auto", "auto | cpu | cuda | cuda:N")
    amp: str = Field("auto", "bf16 autocast: auto (on cuda, off elsewhere) | bf16 | off",
                     choices=("auto", "bf16", "off"))
    compile: bool = Field(False, "torch.compile the model (about 2x faster epochs after a minute of compiling)")
    out_dir: str = Field(str(HERE / "runs" / "full"), "root of the run directories (--quick: runs/quick)")
    variant: str = Field("", "run name; empty = derived from the model settings")
    progress: bool = Field(True, "print one line per epoch")
    wandb: bool = Field(False, "also log to wandb (offline unless WANDB_MODE says otherwise)")


# A tiny CPU run: the whole chain in seconds, written only under runs/quick/.
QUICK = dict(dataset="synthetic", synthetic_train=256, synthetic_test=128, synthetic_size=16, width=8, depth=1,
             n_linear=0, pe_freqs=2, dim=16, ffn=32, layers=1, heads=2, mlp_hidden=16, cnn_channels=4, batch_size=64,
             epochs=1, out_dir=str(HERE / "runs" / "quick"))
# Settings that may differ when a finished run is found again (they do not change the result).
SYSTEM_FIELDS = ("device", "out_dir", "progress", "data_dir", "wandb", "eval_batch_size", "cifar_md5")


def variant_name(cfg: Config) -> str:
    if cfg.variant:
        return cfg.variant
    if cfg.model == "spectracles":
        name = f"spectracles-{cfg.mix}-pe{cfg.pe}{cfg.pe_freqs if cfg.pe == 'sinusoidal' else ''}"
        name += f"-w{cfg.width}d{cfg.depth}l{cfg.n_linear}"
        name += "" if cfg.fft_norm == "backward" else f"-{cfg.fft_norm}"
        name += "" if cfg.norm_dims == "chw" else f"-std{cfg.norm_dims}"
        name += "" if cfg.residual else "-nores"
        name += "-single" if cfg.single_conv else ""
    elif cfg.model in ("fnet", "attention"):
        name = f"{cfg.model}-p{cfg.patch}-d{cfg.dim}-f{cfg.ffn}-l{cfg.layers}"
    else:
        name = {"mlp": f"mlp-h{cfg.mlp_hidden}", "cnn": f"cnn-c{cfg.cnn_channels}"}.get(cfg.model, cfg.model)
    return name + (f"-in{cfg.input_channels}" if cfg.input_channels else "")


def run_dir(cfg: Config) -> Path:
    return Path(cfg.out_dir) / cfg.dataset / variant_name(cfg) / f"seed{cfg.seed}"


def check(cfg: Config) -> None:
    """Combinations no single field's range can express; raised before any work."""
    if cfg.model == "attention" and cfg.dim % cfg.heads:
        raise ValueError(f"--heads {cfg.heads} does not divide --dim {cfg.dim}")


def build_model(cfg: Config, in_channels: int, num_classes: int, image_size: tuple[int, int]) -> torch.nn.Module:
    if cfg.model == "spectracles":
        return Spectracles(in_channels, num_classes, image_size, width=cfg.width, depth=cfg.depth,
                           n_linear=cfg.n_linear, mix=cfg.mix, pe=cfg.pe, pe_freqs=cfg.pe_freqs,
                           norm_dims=cfg.norm_dims, fft_norm=cfg.fft_norm, residual=cfg.residual,
                           single_conv=cfg.single_conv)
    if cfg.model in ("fnet", "attention"):
        return PatchClassifier(in_channels, num_classes, image_size, cfg.model, patch=cfg.patch, dim=cfg.dim,
                               ffn=cfg.ffn, layers=cfg.layers, heads=cfg.heads)
    if cfg.model == "logistic-regression":
        return LogisticRegression(in_channels, num_classes, image_size)
    if cfg.model == "mlp":
        return MLP(in_channels, num_classes, image_size, hidden=cfg.mlp_hidden)
    return SmallCNN(in_channels, num_classes, image_size, channels=cfg.cnn_channels)


def load(cfg: Config, device: torch.device):
    """The data set as uint8 tensors on the device (batches are index gathers, no DataLoader)."""
    data = load_dataset(cfg.dataset, cfg.data_dir, cifar_md5=cfg.cifar_md5, n_train=cfg.synthetic_train,
                        n_test=cfg.synthetic_test, noise=cfg.synthetic_noise, size=cfg.synthetic_size)
    n_train = min(cfg.limit_train or len(data.y_train), len(data.y_train))
    n_test = min(cfg.limit_test or len(data.y_test), len(data.y_test))
    c = data.shape[0]
    in_ch = cfg.input_channels or c
    if in_ch != c and not (c == 1 and in_ch == 3):
        raise ValueError(f"--input-channels {cfg.input_channels} does not fit {cfg.dataset}'s {c} channels")
    tensors = [torch.from_numpy(a).to(device) for a in (data.x_train[:n_train], data.y_train[:n_train],
                                                         data.x_test[:n_test], data.y_test[:n_test])]
    return data, in_ch, tensors


def prepare(xb: torch.Tensor, in_ch: int) -> torch.Tensor:
    """uint8 -> [0, 1] floats, as the seed's ToTensor() (no mean/std normalisation); gray -> RGB if asked."""
    return (xb.float() / 255).expand(-1, in_ch, -1, -1)


@torch.no_grad()
def evaluate(model, x_test, y_test, in_ch: int, batch_size: int, amp: bool) -> dict:
    """Loss and accuracy on every test image (no dropped batch), plus how concentrated the predictions are:
    `top_class_share` = 1 means every image got the same class (the start-of-training plateau)."""
    device = x_test.device
    was_training = model.training
    model.eval()
    loss, preds = torch.zeros((), device=device), []
    for i in range(0, len(y_test), batch_size):
        xb, yb = prepare(x_test[i:i + batch_size], in_ch), y_test[i:i + batch_size]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(xb).float()
        loss += F.cross_entropy(logits, yb, reduction="sum")
        preds.append(logits.argmax(1))
    model.train(was_training)
    pred = torch.cat(preds)
    counts = torch.bincount(pred)
    return {"test/loss": loss.item() / len(y_test), "test/acc": (pred == y_test).float().mean().item(),
            "test/top_class_share": counts.max().item() / len(y_test), "test/top_class": int(counts.argmax())}


def train(cfg: Config, force: bool = False, quick: bool = False) -> dict:
    check(cfg)
    device = pick_device(cfg.device)
    out = run_dir(cfg)
    config = {**config_dict(cfg), "quick": quick}  # aggregate.py never lets a quick run into results/
    state = prepare_run(out, config, force=force, ignore=SYSTEM_FIELDS)
    if state == "done":
        print(f"skip {out} (finished with the same settings)")
        return json.loads((out / "metrics.json").read_text())

    seed_everything(cfg.seed)
    data, in_ch, (x_train, y_train, x_test, y_test) = load(cfg, device)
    n_train, n_test = len(y_train), len(y_test)
    model = build_model(cfg, in_ch, len(data.classes), data.shape[1:]).to(device)
    params = count_parameters(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2))
    amp = cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
    if cfg.compile:
        torch._dynamo.reset()  # a grid compiles many models in one process: don't hit the recompile limit
    forward = torch.compile(model) if cfg.compile else model

    write_json(out / "env.json", provenance(device))
    tracker = Tracker(cfg.wandb, "fnet-cifar", config, name=str(out.relative_to(cfg.out_dir)), directory=out)
    log = open(out / "log.txt", "w")
    print(f"{out}: {params:,} parameters, {n_train} train / {n_test} test images, device {device}, amp {amp}",
          file=log, flush=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    shuffle = torch.Generator().manual_seed(cfg.seed)
    history, t_run = [], time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        sync()
        t0 = time.perf_counter()
        perm = torch.randperm(n_train, generator=shuffle).to(device)
        loss_sum, correct = torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long)
        for i in range(0, n_train, cfg.batch_size):  # the last, smaller batch is kept
            idx = perm[i:i + cfg.batch_size]
            xb, yb = prepare(x_train[idx], in_ch), y_train[idx]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = forward(xb).float()
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == yb).sum()
        train_loss, train_acc = loss_sum.item() / n_train, correct.item() / n_train  # .item() syncs
        t1 = time.perf_counter()
        row = {"epoch": epoch, "steps": epoch * -(-n_train // cfg.batch_size), "train/loss": train_loss,
               "train/acc": train_acc, **evaluate(forward, x_test, y_test, in_ch, cfg.eval_batch_size, amp),
               "train_seconds": t1 - t0, "eval_seconds": time.perf_counter() - t1}
        history.append(row)
        print(json.dumps(row), file=log, flush=True)
        tracker.log({k: v for k, v in row.items() if "/" in k}, step=epoch)
        if cfg.progress:
            print(f"{variant_name(cfg)} seed {cfg.seed} epoch {epoch}/{cfg.epochs}: train loss {train_loss:.4f}, "
                  f"test acc {row['test/acc']:.4f}", flush=True)
        if not np.isfinite(train_loss):
            print(f"{out}: loss is {train_loss} at epoch {epoch}; stopping", file=log, flush=True)
            break

    # Epoch 1 holds warm-up (cuDNN/cuFFT plans, compilation): the per-epoch time is the median of the rest.
    times = [r["train_seconds"] for r in history]
    last = history[-1]
    metrics = {**{k: last[k] for k in ("test/acc", "test/loss", "test/top_class_share", "test/top_class",
                                       "train/acc", "train/loss")},
               "collapsed": last["test/top_class_share"] == 1.0, "params": params, "n_test": n_test,
               "n_train": n_train, "epochs_run": len(history), "steps": last["steps"],
               "seconds_per_epoch": float(np.median(times[1:] if len(times) > 1 else times)),
               "first_epoch_seconds": times[0], "wall_seconds": time.perf_counter() - t_run,
               "diverged": not np.isfinite(last["train/loss"]), "amp": amp, "history": history}
    torch.save(model.state_dict(), out / "model.pt")
    write_json(out / "metrics.json", metrics)  # last: its presence marks the run finished
    log.close()
    tracker.finish()
    note = (f" -- every test image got class {last['test/top_class']}: still on the start-of-training plateau "
            f"after {last['steps']} steps (README, 'A score of exactly chance')") if metrics["collapsed"] else ""
    print(f"{out}: test acc {metrics['test/acc']:.4f}, {params:,} params, "
          f"{metrics['seconds_per_epoch']:.2f} s/epoch{note}")
    return metrics


def main(argv=None) -> None:
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK,
                       extra=lambda p: p.add_argument("--force", action="store_true",
                                                      help="overwrite a run directory holding other settings"))
    try:
        train(cfg, force=cfg._args.force, quick=cfg._args.quick)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
