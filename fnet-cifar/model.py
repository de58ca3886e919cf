r"""
Models of the fnet-cifar experiment.

**Spectracles** (the seed's classifier, the seed repository's HEAD commit 63794ee). Every block:

    standardize -> FFT2 over (H, W) -> real channels -> [cat PE -> 1x1 conv] -> n_linear x [ReLU ->
    standardize -> cat PE -> 1x1 conv] -> ReLU -> standardize -> cat PE -> 1x1 conv -> out
    block(x) = ReLU(x + out) with a residual, else ReLU(out)

There is no inverse FFT: each block applies a fresh forward FFT to the previous block's output. The
model is a stem block (in -> width, no residual), `depth` blocks (width -> width), a global average
pool and a linear layer. There is no down-sampling, so the map keeps the input's H x W.

How the complex FFT becomes real channels (`mix`):

* ``realify`` (the seed's thesis): [Re c0, Im c0, Re c1, Im c1, ...], 2C channels, pixel positions kept.
  Nothing is lost: the complex tensor is ``torch.complex(y[:, 0::2], y[:, 1::2])``.
* ``real`` (FNet-style): Re only, C channels. For a real image Re FFT(x) = FFT of the even part
  (x(n) + x(-n)) / 2, so the odd part of the signal is gone for good.
* ``legacy``: the seed's code before commit 8712dd3 reshaped the (C, H, W, 2) ``view_as_real`` straight
  to (2C, H, W). New channel 2c+s, row r, column w then holds
  ``z[c, s*H/2 + r//2, ((r % 2)*W + w)//2]``, real part when w is even, imaginary when odd: half the
  rows of one channel, re/im interleaved along the width. Same numbers, scrambled positions, and the
  positional channels no longer line up. Every accuracy in the seed's experiments.md used it.

Positional channels (`pe`) are parameter-free and concatenated before every 1x1 conv. Positions are
index / (N - 1) in [0, 1] on an "ij" grid; since they are added after an FFT they label frequency bins.
``simple``: 2 channels (row, column). ``sinusoidal``: 4F channels, for f = 1..F, sin then cos, row
then column axis, of 2*pi*f*pos.

**PatchClassifier**: a small ViT-style encoder over non-overlapping patches, for context. Its token
mixing is either ``fnet`` (Re of the 2-D DFT over the sequence and hidden dims, no parameters; FNet,
Lee-Thorp et al. 2022) or ``attention`` (multi-head self-attention).

**Anchors**, trained by the same loader and loop so that the FFT model's number can be placed:
``LogisticRegression`` (one linear layer on the pixels), ``MLP`` (one hidden ReLU layer) and ``SmallCNN``
(three 3x3 conv + max-pool stages and a small classifier), the last two at about Spectracles' size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MIXES = ("realify", "real", "legacy")
PE_KINDS = ("none", "simple", "sinusoidal")
NORM_DIMS = {"chw": (1, 2, 3), "c": (1,), "hw": (2, 3), "none": None}
FFT_NORMS = ("backward", "ortho", "forward")


def standardize(x: torch.Tensor, dims: tuple[int, ...] | None) -> torch.Tensor:
    """Per-sample (x - mean) / (std + 1e-6) over `dims`, unbiased std, no affine (the seed's module).
    Computed in fp32 even under autocast: these are statistics over up to 64k values."""
    if dims is None:
        return x
    std, mean = torch.std_mean(x.float(), dims, keepdim=True)  # one pass for both statistics
    return (x.float() - mean) / (std + 1e-6)


def fourier_channels(x: torch.Tensor, mix: str = "realify", norm: str = "backward") -> torch.Tensor:
    """Full complex 2-D FFT over the last two dims of a real (B, C, H, W) tensor, returned as real
    channels: (B, 2C, H, W) for ``realify``/``legacy``, (B, C, H, W) for ``real`` (see module doc)."""
    z = torch.fft.fft2(x.float(), norm=norm)  # cuFFT has no bf16, and half only for powers of two
    if mix == "real":
        return z.real.contiguous()
    b, c, h, w = z.shape
    zr = torch.view_as_real(z)  # (B, C, H, W, 2)
    if mix == "legacy":
        return zr.reshape(b, 2 * c, h, w)  # the bug: re/im axis not moved next to C first
    if mix == "realify":
        return zr.permute(0, 1, 4, 2, 3).reshape(b, 2 * c, h, w)
    raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")


def num_pe_channels(kind: str, num_freqs: int = 8) -> int:
    return {"none": 0, "simple": 2, "sinusoidal": 4 * num_freqs}[kind]


def positional_channels(kind: str, h: int, w: int, num_freqs: int = 8) -> torch.Tensor:
    """(P, H, W) float32 positional channels; P = 0, 2 or 4F for none / simple / sinusoidal."""
    if kind not in PE_KINDS:
        raise ValueError(f"pe must be one of {PE_KINDS}, got {kind!r}")
    rows = torch.arange(h, dtype=torch.float64) / max(h - 1, 1)
    cols = torch.arange(w, dtype=torch.float64) / max(w - 1, 1)
    rr, cc = torch.meshgrid(rows, cols, indexing="ij")
    if kind == "none":
        chans = []
    elif kind == "simple":
        chans = [rr, cc]
    else:
        chans = [fn(2 * math.pi * f * p) for f in range(1, num_freqs + 1)
                 for fn in (torch.sin, torch.cos) for p in (rr, cc)]
    return torch.stack(chans).float() if chans else torch.zeros(0, h, w)


class PositionalChannels(nn.Module):
    """Concatenates the (shared, parameter-free) positional channels to a (B, C, H, W) map."""

    def __init__(self, kind: str, num_freqs: int, image_size: tuple[int, int]):
        super().__init__()
        self.kind, self.num_freqs = kind, num_freqs
        self.num_channels = num_pe_channels(kind, num_freqs)
        # Precomputed for the training resolution; another size is computed on the fly.
        self.register_buffer("pe", positional_channels(kind, *image_size, num_freqs), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_channels == 0:
            return x
        pe = self.pe
        if pe.shape[-2:] != x.shape[-2:]:
            pe = positional_channels(self.kind, x.shape[-2], x.shape[-1], self.num_freqs).to(x.device)
        return torch.cat([x, pe.to(x.dtype).expand(x.shape[0], -1, -1, -1)], dim=1)


class FourierBlock(nn.Module):
    """One Spectracles block (module doc). Hidden width = hidden_mult * c_in (2 * c_in in the seed),
    the same for every `mix`, so real-only differs from realify only in the first conv's inputs."""

    def __init__(self, c_in: int, c_out: int, pe: PositionalChannels, *, residual: bool, n_linear: int,
                 mix: str, norm_dims: str, fft_norm: str, hidden_mult: int = 2, single_conv: bool = False):
        super().__init__()
        if mix not in MIXES or norm_dims not in NORM_DIMS or fft_norm not in FFT_NORMS:
            raise ValueError(f"bad block setting: mix={mix!r} norm_dims={norm_dims!r} fft_norm={fft_norm!r}")
        if residual and c_in != c_out:
            raise ValueError("a residual block needs c_in == c_out")
        self.mix, self.fft_norm, self.dims, self.residual, self.pe = mix, fft_norm, NORM_DIMS[norm_dims], residual, pe
        hidden, p = hidden_mult * c_in, pe.num_channels
        fft_ch = c_in if mix == "real" else 2 * c_in
        widths = [fft_ch] + [hidden] * (n_linear + 1)
        outs = [hidden] * (n_linear + 1) + [c_out]
        if single_conv:  # the seed's first design (its runs 1-4): FFT -> PE -> one 1x1 conv (in -> out)
            widths, outs = [fft_ch], [c_out]
        self.convs = nn.ModuleList(nn.Conv2d(i + p, o, kernel_size=1) for i, o in zip(widths, outs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convs[0](self.pe(fourier_channels(standardize(x, self.dims), self.mix, self.fft_norm)))
        for conv in self.convs[1:]:
            y = conv(self.pe(standardize(F.relu(y), self.dims)))
        return F.relu(x + y) if self.residual else F.relu(y)


class Spectracles(nn.Module):
    """FFT + 1x1-conv classifier. Defaults are the seed's HEAD: 92,162 parameters for 3 input channels
    and 100 classes (63,782 with ``pe="simple"``). ``single_conv=True, pe="simple", norm_dims="none",
    mix="legacy"`` is the seed's first design, in which its best logged run (run 3, width 64: 40,612
    parameters, 31.3% on CIFAR-100) was trained."""

    def __init__(self, in_channels: int = 3, num_classes: int = 100, image_size: tuple[int, int] = (32, 32),
                 width: int = 32, depth: int = 4, n_linear: int = 2, mix: str = "realify",
                 pe: str = "sinusoidal", pe_freqs: int = 8, norm_dims: str = "chw", fft_norm: str = "backward",
                 residual: bool = True, hidden_mult: int = 2, single_conv: bool = False):
        super().__init__()
        self.pe = PositionalChannels(pe, pe_freqs, image_size)
        kw = dict(n_linear=n_linear, mix=mix, norm_dims=norm_dims, fft_norm=fft_norm, hidden_mult=hidden_mult,
                  single_conv=single_conv)
        blocks = [FourierBlock(in_channels, width, self.pe, residual=False, **kw)]
        blocks += [FourierBlock(width, width, self.pe, residual=residual, **kw) for _ in range(depth)]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x).mean(dim=(2, 3)))


def fnet_mixing(x: torch.Tensor) -> torch.Tensor:
    """FNet token mixing on (B, T, D): Re(FFT_seq(FFT_hidden(x))), i.e. the real part of the 2-D DFT."""
    return torch.fft.fft2(x.float(), dim=(-2, -1)).real


class EncoderBlock(nn.Module):
    """Pre-LayerNorm encoder block; `mixing` is "fnet" (no parameters) or "attention"."""

    def __init__(self, dim: int, ffn: int, mixing: str, heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True) if mixing == "attention" else None
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + (fnet_mixing(h) if self.attn is None else self.attn(h, h, h, need_weights=False)[0])
        return x + self.ffn(self.norm2(x))


class PatchClassifier(nn.Module):
    """Patch embedding + learned positions + `layers` encoder blocks + mean pool + linear."""

    def __init__(self, in_channels: int, num_classes: int, image_size: tuple[int, int], mixing: str = "fnet",
                 patch: int = 4, dim: int = 64, ffn: int = 128, layers: int = 4, heads: int = 4):
        super().__init__()
        if mixing not in ("fnet", "attention"):
            raise ValueError(f"mixing must be 'fnet' or 'attention', got {mixing!r}")
        h, w = image_size
        if h % patch or w % patch:
            raise ValueError(f"image size {image_size} is not divisible by patch {patch}")
        self.embed = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self.pos = nn.Parameter(0.02 * torch.randn(1, (h // patch) * (w // patch), dim))
        self.blocks = nn.Sequential(*[EncoderBlock(dim, ffn, mixing, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2) + self.pos  # (B, T, D)
        return self.head(self.norm(self.blocks(t)).mean(dim=1))


class LogisticRegression(nn.Module):
    """Multinomial logistic regression on the raw [0, 1] pixels: one linear layer."""

    def __init__(self, in_channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        self.linear = nn.Linear(in_channels * image_size[0] * image_size[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class MLP(nn.Module):
    """One hidden ReLU layer. hidden=112 gives 89,050 parameters on 28x28 gray, 10 classes (Spectracles: 88,572)."""

    def __init__(self, in_channels: int, num_classes: int, image_size: tuple[int, int], hidden: int = 112):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size[0] * image_size[1], hidden),
                                 nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Three [3x3 conv, ReLU, 2x2 max-pool] stages (c, 2c, 2c channels), pooled to 3x3, then a hidden layer.
    c=32, hidden=48: 83,930 parameters on 28x28 gray, 10 classes."""

    def __init__(self, in_channels: int, num_classes: int, image_size: tuple[int, int], channels: int = 32,
                 hidden: int = 48):
        super().__init__()
        c = channels
        stages = []
        for i, o in [(in_channels, c), (c, 2 * c), (2 * c, 2 * c)]:
            stages += [nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(3))  # 28 -> 14 -> 7 -> 3; 32 -> 16 -> 8 -> 4 -> 3
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(2 * c * 9, hidden), nn.ReLU(),
                                        nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
