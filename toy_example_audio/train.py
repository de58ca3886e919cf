"""Tempo classification with a linear vs a Fourier head (paper v1 §2.3, Figure 2), one run.

The reference fine-tunes a pretrained Audio Spectrogram Transformer on SynTheory "tempos" and swaps
its classifier for a Fourier head. Neither the checkpoint nor the data can be fetched offline, so
this trains a small AST-style encoder (log-mel patches -> transformer -> CLS) from scratch on the
locally rendered dataset of data.py. Head: linear, or Fourier_Head with N frequencies and gamma=1e-6,
whose regulariser IS added to the loss (the reference's Trainer dropped it).

    python train.py --head fourier --num-frequencies 2 --seed 0        # one run (GPU: under a minute)
    python train.py --quick                                          # tiny CPU run under runs/quick/

Writes runs/<split>-bin<k>/<head>[-f<N>-g<gamma>]/seed<k>/{config,env,metrics}.json and
predictions.npz (test PMFs). A finished run with the same settings is skipped; one with other settings
stops with the differing fields named (--force overwrites it). Every bad flag stops with one line before
any work. The run config, the training loop, prediction and the finished-run files are shared with
pretrained.py (TempoConfig, parse, train_epoch, predict, finish).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import data
from fourier_head import Fourier_Head, regularization_loss
from metrics import tempo_metrics
from scaffold import (Field, Tracker, config_dict, parse_config as parse_flags, pick_device, prepare_run, provenance,
                      run_state, seed_everything, write_json)

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"
WANDB_PROJECT = "fourier-head-toy-audio"


# ------------------------------------------------------------------------------------------------
# config (TempoConfig, parse and the run-folder helpers are shared with pretrained.py)
# ------------------------------------------------------------------------------------------------

@dataclass
class TempoConfig:
    """What both trainers share: data, labels, head, optimisation, system (defaults: the committed runs)."""
    # data (defaults: the paper's labelling and split)
    data_dir: str = Field(str(data.DEFAULT_DATA_DIR), "dataset/feature cache (--quick: runs/quick/data)")
    renderer: str = Field("sf2", "sf2 (GM soundfont) | numpy | auto (sf2 if installed)",
                          choices=("sf2", "numpy", "auto"))
    bin_size: int = Field(5, "BPMs per class: 5 -> 33 classes (paper), 7, 15", low=1)
    split: str = Field("standard", "standard (70/30, seed 42) | odds_evens", choices=("standard", "odds_evens"))
    split_seed: int = Field(42, "shuffle seed of the standard split", low=0)
    val_fraction: float = Field(0.0, "share of train held out for model selection (0: none, the committed "
                                "60/15-epoch and odd/even runs)", low=0.0, high=0.9)
    val_seed: int = Field(0, "seed of the validation split (fixed across runs)", low=0)
    data_seed: int = Field(0, "seed of the clips' random start offsets", low=0)
    bpm_step: int = Field(1, "use every k-th tempo (1 = all 161)", low=1)
    num_offsets: int = Field(5, "random start offsets per (tempo, timbre)", low=1)
    clip_seconds: float = Field(4.0, "clip length in s, cut from a 20 s track (SynTheory: 4 s)", low=0.0,
                                low_open=True, high=16.0)
    # head
    head: str = Field("fourier", "output head", choices=("linear", "fourier"))
    num_frequencies: int = Field(2, "Fourier frequencies N (ignored for linear)", low=1)
    regularization_gamma: float = Field(1e-6, "Fourier regulariser weight (paper: 1e-6)", low=0.0)
    # optimisation (the reference fine-tuned 2 epochs at 5e-5; from scratch needs more)
    epochs: int = Field(60, "training epochs", low=1)
    batch_size: int = Field(64, "batch size", low=1)
    lr: float = Field(5e-4, "peak AdamW learning rate (linear warmup, cosine decay)", low=0.0, low_open=True)
    warmup_fraction: float = Field(0.05, "share of steps spent warming up", low=0.0, high=1.0)
    weight_decay: float = Field(0.05, "AdamW weight decay", low=0.0)
    head_weight_decay: float = Field(-1.0, "weight decay on the head's weights (-1: same as --weight-decay, as the "
                                     "committed runs; 0: none)", low=-1.0)
    grad_clip: float = Field(1.0, "gradient norm clip", low=0.0, low_open=True)
    seed: int = Field(0, "seeds init, dropout and batch order", low=0)
    # system
    device: str = Field("auto", "auto | cpu | cuda | cuda:N")
    out_dir: str = Field(str(RUNS), "root of the run folders (--quick: runs/quick)")

    @property
    def head_tag(self) -> str:
        return "linear" if self.head == "linear" else f"fourier-f{self.num_frequencies}-g{self.regularization_gamma:g}"


@dataclass
class Config(TempoConfig):
    """The from-scratch AST-style encoder."""
    num_frames: int = Field(256, "log-mel frames kept (hop 15.6 ms)", low=1)
    patch_mels: int = Field(16, "patch height in mel bins (must divide 32)", low=1)
    patch_frames: int = Field(4, "patch width in frames (must divide --num-frames)", low=1)
    d_model: int = Field(128, "transformer width", low=1)
    n_layers: int = Field(4, "transformer layers", low=1)
    n_heads: int = Field(4, "attention heads (must divide --d-model)", low=1)
    dropout: float = Field(0.1, "dropout in the transformer", low=0.0, high=1.0)
    eval_every: int = Field(10, "log eval metrics every k epochs (validation if --val-fraction > 0, else test: "
                            "curves only, no selection)", low=1)

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / f"{self.split}-bin{self.bin_size}" / self.head_tag / f"seed{self.seed}"


# The --quick preset: 23 tempos (odd and even) x 5 timbres x 2 offsets of 2 s, a 1-layer encoder, 3 epochs,
# everything (the tiny dataset included) under runs/quick/.
QUICK = dict(renderer="auto", bpm_step=7, num_offsets=2, clip_seconds=2.0, num_frames=128, d_model=32, n_layers=1,
             n_heads=2, epochs=3, batch_size=32, eval_every=1, out_dir=str(RUNS / "quick"),
             data_dir=str(RUNS / "quick" / "data"))
# Settings that may differ when a run folder is found again (they do not change the result).
SYSTEM_FIELDS = ("device", "out_dir", "data_dir",
                 "conv1_impl", "cudnn_benchmark")  # pretrained.py: how CREPE runs, the same numbers


def _run_flags(parser) -> None:
    parser.add_argument("--force", action="store_true", help="overwrite a run folder that holds other settings")
    parser.add_argument("--wandb", action="store_true",
                        help="also log to wandb (offline unless WANDB_MODE says otherwise)")


def parse(cls, quick: dict, argv=None, doc: str | None = None, check=None):
    """Flags -> a validated `cls` (scaffold.parse_config, plus --force and --wandb); `check(cfg)` returns
    the problem of a combination of fields, or None. Every refusal is one line, before any work."""
    cfg = parse_flags(cls, argv, description=doc, quick=quick, extra=_run_flags)
    runs, out = RUNS.resolve(), Path(cfg.out_dir).resolve()
    problem = check(cfg) if check else None
    if cfg.head_weight_decay < 0 and cfg.head_weight_decay != -1:
        problem = f"--head-weight-decay must be -1 (same as --weight-decay) or >= 0 (got {cfg.head_weight_decay})"
    if cfg._args.quick and out.is_relative_to(runs) and not out.is_relative_to(runs / "quick"):
        problem = f"--quick runs write only under runs/quick/, not {cfg.out_dir} (real runs are aggregated from runs/)"
    if problem:
        raise SystemExit(f"error: {problem}")
    pick_device(cfg.device)  # --device cuda without a GPU stops here, with one line
    return cfg


def parse_config(argv=None) -> Config:
    return parse(Config, QUICK, argv, __doc__, check=_model_problem)


def _model_problem(cfg: Config) -> str | None:
    n_mels, frames = data.FeatureParams.n_mels, int(cfg.clip_seconds * 16000 / data.FeatureParams.hop_length) + 1
    if n_mels % cfg.patch_mels:
        return f"--patch-mels {cfg.patch_mels} must divide the {n_mels} mel bins"
    if cfg.num_frames > frames:
        return f"--num-frames {cfg.num_frames} exceeds the {frames} frames of a {cfg.clip_seconds:g} s clip"
    if cfg.num_frames % cfg.patch_frames:
        return f"--patch-frames {cfg.patch_frames} must divide --num-frames {cfg.num_frames}"
    if cfg.d_model % cfg.n_heads:
        return f"--n-heads {cfg.n_heads} must divide --d-model {cfg.d_model}"
    return None


def run_config(cfg) -> dict:
    """The settings a run folder stores in config.json (its identity)."""
    return {**config_dict(cfg), "quick": bool(cfg._args.quick)}


def is_finished(cfg) -> bool:
    """Whether cfg.run_dir holds a finished run with these settings, writing nothing (sweep.py's plan).
    A folder holding other settings stops the program with the fields named, unless --force."""
    return run_state(cfg.run_dir, run_config(cfg), force=cfg._args.force, ignore=SYSTEM_FIELDS) == "done"


def begin(cfg) -> Tracker | None:
    """Claim cfg.run_dir (scaffold.prepare_run): None when it holds this finished run (skip it), else the
    run's tracker (a no-op without --wandb). Other settings there stop the program (--force overwrites)."""
    out = cfg.run_dir
    if prepare_run(out, run_config(cfg), force=cfg._args.force, ignore=SYSTEM_FIELDS) == "done":
        print(f"skip {out}: finished with the same settings", flush=True)
        return None
    return Tracker(cfg._args.wandb, WANDB_PROJECT, run_config(cfg), name=str(out.relative_to(cfg.out_dir)),
                   directory=out)


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
    return {"x": feats["logmel"], "features": path.name, **labels_and_splits(cfg, feats["bpm"], p)}


def labels_and_splits(cfg: TempoConfig, bpm: np.ndarray, p: data.DatasetParams) -> dict:
    """Bucket labels, the train / val / test indices and the bucket centres (shared with pretrained.py)."""
    train_idx, test_idx = data.split_indices(bpm, cfg.split, cfg.split_seed)
    val_idx = np.array([], dtype=int)
    if cfg.val_fraction > 0:
        train_idx, val_idx = data.validation_split(train_idx, cfg.val_fraction, cfg.val_seed)
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise SystemExit(f"error: split {cfg.split!r} leaves {len(train_idx)} train / {len(test_idx)} test clips "
                         f"(bpm_step={cfg.bpm_step})")
    return {"y": data.bucket(bpm, cfg.bin_size, p.bpm_min), "bpm": bpm, "train": train_idx, "val": val_idx,
            "test": test_idx, "num_classes": data.num_buckets(cfg.bin_size, p.bpm_min, p.bpm_max),
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
# training and evaluation (train_epoch, predict and finish are shared with pretrained.py)
# ------------------------------------------------------------------------------------------------

def train_epoch(model: nn.Module, opt, sched, inputs, y: torch.Tensor, idx: np.ndarray, cfg: TempoConfig,
                gen: torch.Generator, amp: bool) -> dict:
    """One pass over the clips `idx` in a seeded random order; `inputs(batch indices)` -> model input.
    The loss is cross-entropy plus the head's regulariser, which must be added by hand (the head only
    stores it); cross_entropy on the Fourier head's log(pmf + eps) re-normalises by 1 + m*eps, as the
    reference. Returns the epoch's mean train/loss (cross-entropy), train/reg and train/accuracy."""
    model.train()
    device = y.device
    order = torch.as_tensor(idx)[torch.randperm(len(idx), generator=gen)].to(device)
    sums = torch.zeros(3, device=device)  # ce, reg, correct: summed on device, one sync per epoch
    for i in range(0, len(order), cfg.batch_size):
        batch = order[i:i + cfg.batch_size]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out, reg = model(inputs(batch))
        ce = F.cross_entropy(out.float(), y[batch])
        loss = ce + reg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        sums += torch.stack([ce.detach() * len(batch), reg.detach().float() * len(batch),
                             (out.argmax(-1) == y[batch]).sum().float()])
    ce_mean, reg_mean, accuracy = (sums / len(order)).tolist()
    return {"train/loss": ce_mean, "train/reg": reg_mean, "train/accuracy": accuracy}


@torch.no_grad()
def predict(model: nn.Module, inputs, idx: np.ndarray, batch_size: int, amp: bool) -> np.ndarray:
    """Softmax of the model's outputs (for the Fourier head ~ its PMF) for the clips `idx`: float32 (n, C)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(idx), batch_size):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits, _ = model(inputs(torch.as_tensor(idx[i:i + batch_size], device=device)))
        out.append(logits.float().softmax(-1).cpu())
    return torch.cat(out).numpy()


def finish(cfg, model: nn.Module, head: nn.Module, pmfs: np.ndarray, d: dict, history: list, start: float,
           tracker: Tracker) -> dict:
    """The test metrics of the final epoch (the reference picked its best epoch on the test set, we do not),
    predictions.npz, then metrics.json, written atomically and last: it marks the run finished."""
    out = cfg.run_dir
    final = tempo_metrics(pmfs, d["y"][d["test"]], d["centers"])
    metrics = {"final": final, "train_seconds": round(time.time() - start, 2),
               "num_params": sum(p.numel() for p in model.parameters()),
               "head_params": sum(p.numel() for p in head.parameters()),
               "num_classes": d["num_classes"], "n_train": len(d["train"]), "n_val": len(d["val"]),
               "n_test": len(d["test"]), "history": history}
    if len(d["val"]):  # selection (N, schedule) reads these; the test metrics above are read once, here
        metrics["val"] = {k[4:]: v for k, v in history[-1].items() if k.startswith("val/")}
    np.savez_compressed(out / "predictions.npz", pmfs=pmfs.astype(np.float16), labels=d["y"][d["test"]],
                        index=d["test"], bpm=d["bpm"][d["test"]], centers=d["centers"])
    write_json(out / "metrics.json", metrics)
    tracker.log({f"test/{k}": v for k, v in final.items()}, step=len(history))
    tracker.finish()
    return metrics


def run(cfg: Config) -> dict:
    """Train and evaluate one configuration; returns its metrics (read from disk if already finished)."""
    tracker = begin(cfg)
    if tracker is None:
        return json.loads((cfg.run_dir / "metrics.json").read_text())
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    amp = device.type == "cuda"  # bf16 autocast on GPU; the Fourier head keeps its math in fp32
    d = load_data(cfg)
    x = torch.tensor(d["x"], device=device)                          # (N, n_mels, T) float16
    y = torch.tensor(d["y"], device=device, dtype=torch.long)
    eval_idx, eval_name = (d["val"], "val") if len(d["val"]) else (d["test"], "test")
    # Normalise with train-set statistics (AST's extractor is likewise re-fitted on the train clips).
    train_x = x[torch.as_tensor(d["train"], device=device)].float()
    x = ((x.float() - train_x.mean()) / train_x.std()).half()
    del train_x
    inputs = lambda batch: x[batch].float()  # noqa: E731

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
    steps_per_epoch = math.ceil(len(d["train"]) / cfg.batch_size)
    total, warmup = cfg.epochs * steps_per_epoch, max(1, int(cfg.warmup_fraction * cfg.epochs * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup,
                                                                 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0)))))
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    write_json(cfg.run_dir / "env.json", provenance(device, features=d["features"],
                                                     cuda=torch.version.cuda if device.type == "cuda" else None))

    history, start = [], time.time()
    for epoch in range(1, cfg.epochs + 1):
        row = {"epoch": epoch, **train_epoch(model, opt, sched, inputs, y, d["train"], cfg, gen, amp),
               "seconds": round(time.time() - start, 2)}
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            m = tempo_metrics(predict(model, inputs, eval_idx, 512, amp), d["y"][eval_idx], d["centers"])
            row.update({f"{eval_name}/{k}": v for k, v in m.items()})
            print(f"[{cfg.head_tag} seed{cfg.seed}] epoch {epoch:3d}  loss {row['train/loss']:.3f}  "
                  f"train acc {row['train/accuracy']:.3f}  {eval_name} acc {m['accuracy']:.3f}  f1 {m['f1']:.3f}  "
                  f"mse_bpm {m['mse_bpm']:.1f}  smooth {m['smoothness']:.4f}", flush=True)
        history.append(row)
        tracker.log({k: v for k, v in row.items() if "/" in k}, step=epoch)

    return finish(cfg, model, model.head, predict(model, inputs, d["test"], 512, amp), d, history, start, tracker)


if __name__ == "__main__":
    cfg = parse_config()
    result = run(cfg)
    print(json.dumps({"run_dir": str(cfg.run_dir), **result["final"]}, indent=2))
