"""Tempo classification with a linear vs a Fourier head (paper v1 §2.3, Figure 2), one run.

The reference fine-tunes a pretrained Audio Spectrogram Transformer on SynTheory "tempos" and swaps
its classifier for a Fourier head. Neither the checkpoint nor the data can be fetched offline, so
this trains a small AST-style encoder (log-mel patches -> transformer -> CLS) from scratch on the
locally rendered dataset of data.py. Head: linear, or Fourier_Head with N frequencies and gamma=1e-6,
whose regulariser IS added to the loss (the reference's Trainer dropped it).

    python train.py --head fourier --num-frequencies 2 --seed 0        # one run (GPU: under a minute)
    python train.py --quick                                          # tiny CPU run (seconds)

Writes runs/<split>-bin<k>/<head>[-f<N>-g<gamma>]/seed<k>/{config,env,metrics}.json and
predictions.npz (test PMFs); a run whose metrics.json exists is skipped.
"""

import argparse
import dataclasses
import json
import math
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
from torch import nn
from torch.nn import functional as F

import data
from fourier_head import Fourier_Head, regularization_loss
from metrics import tempo_metrics

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------------------
# config
# ------------------------------------------------------------------------------------------------

@dataclass
class Config:
    # data (defaults: the paper's labelling and split)
    data_dir: str = field(default=str(data.DEFAULT_DATA_DIR), metadata={"help": "dataset/feature cache"})
    renderer: str = field(default="sf2", metadata={"help": "sf2 (GM soundfont) | numpy | auto (sf2 if installed)"})
    bin_size: int = field(default=5, metadata={"help": "BPMs per class: 5 -> 33 classes (paper), 7, 15"})
    split: str = field(default="standard", metadata={"help": "standard (70/30, seed 42) | odds_evens"})
    split_seed: int = field(default=42, metadata={"help": "shuffle seed of the standard split"})
    val_fraction: float = field(default=0.0, metadata={"help": "share of train held out for model selection "
                                                       "(0: none, the committed 60/15-epoch and odd/even runs)"})
    val_seed: int = field(default=0, metadata={"help": "seed of the validation split (fixed across runs)"})
    data_seed: int = field(default=0, metadata={"help": "seed of the clips' random start offsets"})
    bpm_step: int = field(default=1, metadata={"help": "use every k-th tempo (1 = all 161)"})
    num_offsets: int = field(default=5, metadata={"help": "random start offsets per (tempo, timbre)"})
    clip_seconds: float = field(default=4.0, metadata={"help": "clip length (SynTheory: 4 s)"})
    num_frames: int = field(default=256, metadata={"help": "log-mel frames kept (hop 15.6 ms)"})
    # model: a small AST-style encoder
    patch_mels: int = field(default=16, metadata={"help": "patch height in mel bins (of 32)"})
    patch_frames: int = field(default=4, metadata={"help": "patch width in frames"})
    d_model: int = field(default=128, metadata={"help": "transformer width"})
    n_layers: int = field(default=4, metadata={"help": "transformer layers"})
    n_heads: int = field(default=4, metadata={"help": "attention heads"})
    dropout: float = field(default=0.1, metadata={"help": "dropout in the transformer"})
    # head
    head: str = field(default="fourier", metadata={"help": "linear | fourier"})
    num_frequencies: int = field(default=2, metadata={"help": "Fourier frequencies N (ignored for linear)"})
    regularization_gamma: float = field(default=1e-6, metadata={"help": "Fourier regulariser weight (paper)"})
    # optimisation (the reference fine-tuned 2 epochs at 5e-5; from scratch needs more)
    epochs: int = field(default=60, metadata={"help": "training epochs"})
    batch_size: int = field(default=64, metadata={"help": "batch size"})
    lr: float = field(default=5e-4, metadata={"help": "peak AdamW learning rate (linear warmup, cosine decay)"})
    warmup_fraction: float = field(default=0.05, metadata={"help": "share of steps spent warming up"})
    weight_decay: float = field(default=0.05, metadata={"help": "AdamW weight decay"})
    head_weight_decay: float = field(default=-1.0, metadata={"help": "weight decay on the head's weights (-1: same "
                                                             "as --weight-decay, as the committed runs; 0: none)"})
    grad_clip: float = field(default=1.0, metadata={"help": "gradient norm clip"})
    eval_every: int = field(default=10, metadata={"help": "log eval metrics every k epochs (validation if "
                                                  "--val-fraction > 0, else test: curves only, no selection)"})
    seed: int = field(default=0, metadata={"help": "seeds init, dropout and batch order"})
    # system
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:1 | mps"})
    out_dir: str = field(default=str(HERE / "runs"), metadata={"help": "root of the run folders"})
    quick: bool = field(default=False, metadata={"help": "tiny data/model/epochs preset for a CPU smoke run"})

    @property
    def head_tag(self) -> str:
        return "linear" if self.head == "linear" else f"fourier-f{self.num_frequencies}-g{self.regularization_gamma:g}"

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / f"{self.split}-bin{self.bin_size}" / self.head_tag / f"seed{self.seed}"


# The --quick preset: 23 tempos (odd and even) x 5 timbres x 2 offsets of 2 s, a 1-layer encoder, 3 epochs.
QUICK = dict(renderer="auto", bpm_step=7, num_offsets=2, clip_seconds=2.0, num_frames=128, d_model=32, n_layers=1,
             n_heads=2, epochs=3, batch_size=32, eval_every=1, out_dir=str(HERE / "runs" / "quick"))


def parse_dataclass(cls, quick: dict, argv=None, doc: str = __doc__):
    """CLI overrides of the dataclass defaults; --quick applies the `quick` preset first (the CLI wins).
    Shared with pretrained.py."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=f.metadata["help"])
        else:
            kind = {"int": int, "float": float, "str": str}.get(f.type, f.type)
            ap.add_argument(flag, type=kind, default=f.default, help=f.metadata["help"])
    args = ap.parse_args(argv)
    if args.quick:
        ap.set_defaults(**quick)
        args = ap.parse_args(argv)
    return cls(**vars(args))


def parse_config(argv=None) -> Config:
    cfg = parse_dataclass(Config, QUICK, argv)
    if cfg.head not in ("linear", "fourier"):
        raise SystemExit(f"error: --head must be 'linear' or 'fourier', got {cfg.head!r}")
    if cfg.head == "fourier" and cfg.num_frequencies < 1:
        raise SystemExit(f"error: --num-frequencies must be >= 1, got {cfg.num_frequencies}")
    if cfg.split not in ("standard", "odds_evens"):
        raise SystemExit(f"error: --split must be 'standard' or 'odds_evens', got {cfg.split!r}")
    if cfg.bin_size < 1:
        raise SystemExit(f"error: --bin-size must be >= 1, got {cfg.bin_size}")
    return cfg


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------

_FEATURES = {}  # path -> loaded features, so a sweep in one process reads the file once


def load_data(cfg: Config) -> dict:
    """Features (built and cached on first use), labels, split and bucket centres."""
    p = data.DatasetParams(bpm_step=cfg.bpm_step, num_offsets=cfg.num_offsets, clip_seconds=cfg.clip_seconds,
                           seed=cfg.data_seed, renderer=data.resolve_renderer(cfg.renderer))
    f = data.FeatureParams(num_frames=cfg.num_frames)
    path = data.build_features(p, f, Path(cfg.data_dir))
    if str(path) not in _FEATURES:
        _FEATURES[str(path)] = data.load_features(path)
    feats = _FEATURES[str(path)]
    train_idx, test_idx = data.split_indices(feats["bpm"], cfg.split, cfg.split_seed)
    val_idx = np.array([], dtype=int)
    if cfg.val_fraction > 0:
        train_idx, val_idx = data.validation_split(train_idx, cfg.val_fraction, cfg.val_seed)
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise SystemExit(f"error: split {cfg.split!r} leaves {len(train_idx)} train / {len(test_idx)} test clips "
                         f"(bpm_step={cfg.bpm_step})")
    return {"x": feats["logmel"], "y": data.bucket(feats["bpm"], cfg.bin_size, p.bpm_min),
            "bpm": feats["bpm"], "train": train_idx, "val": val_idx, "test": test_idx, "features": path.name,
            "num_classes": data.num_buckets(cfg.bin_size, p.bpm_min, p.bpm_max),
            "centers": data.bucket_centers(cfg.bin_size, p.bpm_min, p.bpm_max)}


# ------------------------------------------------------------------------------------------------
# model
# ------------------------------------------------------------------------------------------------

class SpectrogramTransformer(nn.Module):
    """AST-style encoder: (B, n_mels, T) log-mel -> non-overlapping patches -> linear embedding +
    learned positions -> [CLS] + pre-norm transformer -> LayerNorm'd CLS feature (B, d_model)."""

    def __init__(self, n_mels: int, num_frames: int, cfg: Config):
        super().__init__()
        if n_mels % cfg.patch_mels or num_frames % cfg.patch_frames:
            raise ValueError(f"patches {cfg.patch_mels}x{cfg.patch_frames} must tile the {n_mels}x{num_frames} input")
        num_patches = (n_mels // cfg.patch_mels) * (num_frames // cfg.patch_frames)
        self.patch = nn.Conv2d(1, cfg.d_model, (cfg.patch_mels, cfg.patch_frames),
                               stride=(cfg.patch_mels, cfg.patch_frames))
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        self.pos = nn.Parameter(0.02 * torch.randn(1, num_patches + 1, cfg.d_model))
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, 4 * cfg.d_model, cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x[:, None]).flatten(2).transpose(1, 2)       # (B, patches, d)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.pos
        return self.norm(self.blocks(tokens)[:, 0])


class TempoClassifier(nn.Module):
    def __init__(self, n_mels: int, num_frames: int, num_classes: int, cfg: Config):
        super().__init__()
        self.encoder = SpectrogramTransformer(n_mels, num_frames, cfg)
        if cfg.head == "linear":
            self.head = nn.Linear(cfg.d_model, num_classes)
        else:
            self.head = Fourier_Head(cfg.d_model, num_classes, cfg.num_frequencies,
                                     regularization_gamma=cfg.regularization_gamma)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (logits or log-PMF (B, C), regularisation loss: 0 for the linear head)."""
        out = self.head(self.encoder(x))
        return out, regularization_loss(self)


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def environment(device: torch.device) -> dict:
    commit = os.environ.get("GIT_COMMIT")
    if not commit:
        try:
            commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True,
                                    text=True, check=True).stdout.strip()
        except Exception:
            commit = None
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "cuda": torch.version.cuda if device.type == "cuda" else None,
            "host": platform.node(), "cpu_count": os.cpu_count(), "commit": commit}


@torch.no_grad()
def predict(model: TempoClassifier, x: torch.Tensor, batch_size: int, amp: bool) -> torch.Tensor:
    """Softmax of the model's outputs (for the Fourier head ~ its PMF) as float32 (n, C)."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            logits, _ = model(x[i:i + batch_size].float())
        out.append(logits.float().softmax(-1))
    return torch.cat(out)


def run(cfg: Config) -> dict:
    """Train and evaluate one configuration; returns its metrics (read from disk if already done)."""
    out = cfg.run_dir
    if (out / "metrics.json").exists():
        saved = json.loads((out / "config.json").read_text())
        mine = dataclasses.asdict(cfg)
        defaults = dataclasses.asdict(Config())  # keys added later: a saved run without them used the default
        differ = [k for k in mine
                  if k not in ("device", "out_dir", "data_dir") and saved.get(k, defaults[k]) != mine[k]]
        if differ:
            raise SystemExit(f"error: {out} holds a finished run with different {differ}; use another --out-dir")
        return json.loads((out / "metrics.json").read_text())

    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    amp = device.type == "cuda"  # bf16 autocast on GPU; the Fourier head keeps its math in fp32
    d = load_data(cfg)
    x = torch.tensor(d["x"], device=device)                          # (N, n_mels, T) float16
    y = torch.tensor(d["y"], device=device, dtype=torch.long)
    train_idx = torch.tensor(d["train"], device=device)
    test_idx = torch.tensor(d["test"], device=device)
    eval_idx, eval_name = (d["val"], "val") if len(d["val"]) else (d["test"], "test")
    # Normalise with train-set statistics (AST's extractor is likewise re-fitted on the train clips).
    mean, std = x[train_idx].float().mean(), x[train_idx].float().std()
    x = ((x.float() - mean) / std).half()

    model = TempoClassifier(x.shape[1], x.shape[2], d["num_classes"], cfg).to(device)
    head_wd = cfg.weight_decay if cfg.head_weight_decay < 0 else cfg.head_weight_decay
    is_head = lambda n: n.startswith("head.")  # noqa: E731
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "pos" not in n and not is_head(n)]
    head_decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and is_head(n)]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "pos" not in n)]
    # The Fourier head's PMF does not depend on the scale of its linear layer, so decay on it only
    # shrinks the coefficients (and the reference's regulariser with them): --head-weight-decay 0.
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": head_decay, "weight_decay": head_wd},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    total, warmup = cfg.epochs * steps_per_epoch, max(1, int(cfg.warmup_fraction * cfg.epochs * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup,
                                                                 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0)))))
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    env = environment(device)
    env["features"] = d["features"]
    (out / "env.json").write_text(json.dumps(env, indent=2))

    history, start = [], time.time()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=gen).to(device)]
        sums = torch.zeros(3, device=device)  # ce, reg, correct: summed on device, one sync per epoch
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out_logits, reg = model(x[idx].float())
            # cross_entropy on the Fourier head's log(pmf + eps) re-normalises by a factor 1 + m*eps
            # (as the reference); the regulariser must be added by hand: the head only stores it.
            ce = F.cross_entropy(out_logits.float(), y[idx])
            loss = ce + reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            sums += torch.stack([ce.detach() * len(idx), reg.detach().float() * len(idx),
                                 (out_logits.argmax(-1) == y[idx]).sum().float()])
        ce_sum, reg_sum, correct = (sums / len(order)).tolist()
        row = {"epoch": epoch, "train/loss": ce_sum, "train/reg": reg_sum, "train/accuracy": correct,
               "seconds": round(time.time() - start, 2)}
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            pmfs = predict(model, x[torch.tensor(eval_idx, device=device)], 512, amp).cpu().numpy()
            m = tempo_metrics(pmfs, d["y"][eval_idx], d["centers"])
            row.update({f"{eval_name}/{k}": v for k, v in m.items()})
            print(f"[{cfg.head_tag} seed{cfg.seed}] epoch {epoch:3d}  loss {row['train/loss']:.3f}  "
                  f"train acc {row['train/accuracy']:.3f}  {eval_name} acc {m['accuracy']:.3f}  f1 {m['f1']:.3f}  "
                  f"mse_bpm {m['mse_bpm']:.1f}  smooth {m['smoothness']:.4f}", flush=True)
        history.append(row)

    # The final epoch is reported: the reference picked its best epoch on the test set, we do not.
    pmfs = predict(model, x[test_idx], 512, amp).cpu().numpy()
    final = tempo_metrics(pmfs, d["y"][d["test"]], d["centers"])
    metrics = {"final": final, "train_seconds": round(time.time() - start, 2),
               "num_params": sum(p.numel() for p in model.parameters()),
               "head_params": sum(p.numel() for p in model.head.parameters()),
               "num_classes": d["num_classes"], "n_train": len(d["train"]), "n_val": len(d["val"]),
               "n_test": len(d["test"]), "history": history}
    if len(d["val"]):  # selection (N, schedule) reads these; the test metrics above are read once, here
        metrics["val"] = {k[4:]: v for k, v in history[-1].items() if k.startswith("val/")}
    np.savez_compressed(out / "predictions.npz", pmfs=pmfs.astype(np.float16), labels=d["y"][d["test"]],
                        index=d["test"], bpm=d["bpm"][d["test"]], centers=d["centers"])
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))  # written last: marks the run done
    return metrics


if __name__ == "__main__":
    cfg = parse_config()
    result = run(cfg)
    print(json.dumps({"run_dir": str(cfg.run_dir), **result["final"]}, indent=2))
