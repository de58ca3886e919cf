"""Chronos-style tokenizers: mean scaling, then binning of the scaled value into one of 4096 tokens.

Token ids 0 and 1 are PAD and EOS; ids 2..4095 are the 4094 value tokens, ordered by value, so that
neighbouring tokens are neighbouring values (what the Fourier head's continuity prior needs).

Two binnings of the scaled value x = y / mean|context|:
* "uniform": exactly chronos-forecasting's `MeanScaleUniformBins(-15, 15)`: 4093 centres
  linspace(-15, 15, 4093) (float32), bin edges at the midpoints between centres and +-inf (Chronos:
  +-1e20) at the ends, so the first and last bins are unbounded. Chronos' token id 2 is the bin below
  -1e20 (never hit by finite data; it decodes to -15 as in Chronos), ids 3..4095 are the 4093 centres.
  Values are scaled and compared in float32, as Chronos does (tests/test_tsf.py checks ids and decoded
  values against the `chronos-forecasting` package).
* "equal_width": 4094 equal-width bins on [-15, 15] (our earlier "uniform", used by the committed
  900-step uniform-binning ablation; kept so that run's configuration stays reproducible).
* "mixed": the paper's mixed-precision binning (v1 §2.4, reference `MeanScaleMixedUniformBins`): a
  fraction d = 0.2 of the 4096 tokens is spent on the sparse ranges [-15, -1] and [10, 15] in
  proportion to their lengths, the rest on the dense range [-1, 10]. Counting the two special tokens
  in the first segment, as the reference does, the segments hold 603 / 3278 / 215 token ids
  (601 / 3278 / 215 value bins).
Values outside [-15, 15] go to the end bins; decoding returns the bin centre times the scale.

PAD and EOS are not on the heads' grid: both heads predict a distribution over the 4094 value tokens
only (`N_SPECIAL` is subtracted from the label), PAD labels are ignored in the loss, and no EOS is used
because the decoder always emits exactly H tokens. So the Fourier head's m = 4094 bins are exactly the
value bins, in value order (the reference put PAD/EOS at the left edge of the Fourier grid and made
the head predict EOS at the end of every label).
"""

from dataclasses import dataclass

import torch

PAD, EOS, N_SPECIAL = 0, 1, 2


def mixed_segments(n_tokens=4096, low=-15.0, mid1=-1.0, mid2=10.0, high=15.0, sparse_density=0.2):
    """Token ids per segment [low, mid1], [mid1, mid2], [mid2, high]; the first includes PAD and EOS."""
    sparse_range = (mid1 - low) + (high - mid2)
    n_low = int(sparse_density * n_tokens * (mid1 - low) / sparse_range)
    n_high = int(sparse_density * n_tokens * (high - mid2) / sparse_range)
    return n_low, n_tokens - n_low - n_high, n_high


@dataclass
class Tokenizer:
    binning: str = "mixed"  # "mixed" | "uniform" (Chronos' MeanScaleUniformBins) | "equal_width"
    n_tokens: int = 4096
    low: float = -15.0
    high: float = 15.0
    mid1: float = -1.0
    mid2: float = 10.0
    sparse_density: float = 0.2

    def __post_init__(self):
        if self.binning == "mixed":
            n_low, n_dense, n_high = mixed_segments(self.n_tokens, self.low, self.mid1, self.mid2, self.high,
                                                    self.sparse_density)
            edges = torch.cat([torch.linspace(self.low, self.mid1, n_low - N_SPECIAL + 1, dtype=torch.float64)[:-1],
                               torch.linspace(self.mid1, self.mid2, n_dense + 1, dtype=torch.float64)[:-1],
                               torch.linspace(self.mid2, self.high, n_high + 1, dtype=torch.float64)])
        elif self.binning == "uniform":
            # Chronos builds these in float32; float64 copies of the float32 numbers keep comparisons exact
            c = torch.linspace(self.low, self.high, self.n_tokens - N_SPECIAL - 1)
            inf = torch.tensor([float("inf")])
            edges = torch.cat([-inf, torch.tensor([-1e20]), (c[1:] + c[:-1]) / 2, inf]).double()
            centers = torch.cat([c[:1], c]).double()  # id 2 (below -1e20) decodes to centre 0, as in Chronos
        elif self.binning == "equal_width":
            edges = torch.linspace(self.low, self.high, self.n_tokens - N_SPECIAL + 1, dtype=torch.float64)
        else:
            raise ValueError(f"unknown binning {self.binning!r}; choose 'mixed', 'uniform' or 'equal_width'")
        self.edges = edges                                   # (n_values + 1,)
        if self.binning != "uniform":
            centers = (edges[1:] + edges[:-1]) / 2
        self.centers = centers                               # (n_values,)
        self.n_values = len(self.centers)
        assert self.n_values == self.n_tokens - N_SPECIAL

    @staticmethod
    def mean_scale(context: torch.Tensor) -> torch.Tensor:
        """mean |y| over the observed (non-NaN) context values, 1 where that is 0 or undefined: (B, T) -> (B,)."""
        observed = ~torch.isnan(context)
        total = torch.where(observed, context.abs(), torch.zeros_like(context)).sum(-1)
        scale = total / observed.sum(-1).clamp_min(1)
        return torch.where(scale > 0, scale, torch.ones_like(scale))

    def value_bins(self, y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Bin index 0..n_values-1 of y / scale (NaN -> 0; mask it separately)."""
        x = y / scale[..., None]
        if self.binning == "uniform":  # Chronos scales and bucketizes in float32
            x = y.float() / scale[..., None].float()
        x = x.to(torch.float64)
        x = torch.nan_to_num(x, nan=0.0)
        inner = self.edges[1:-1].to(x.device)
        return torch.bucketize(x, inner, right=True)

    def encode(self, y: torch.Tensor, scale: torch.Tensor):
        """Values (B, T) with NaN for missing -> token ids (B, T) (PAD where NaN) and mask (B, T)."""
        mask = ~torch.isnan(y)
        ids = self.value_bins(y, scale) + N_SPECIAL
        return torch.where(mask, ids, torch.full_like(ids, PAD)), mask

    def encode_context(self, context: torch.Tensor):
        scale = self.mean_scale(context)
        ids, mask = self.encode(context, scale)
        return ids, mask, scale

    def decode(self, ids: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Token ids (B, ...) -> values (B, ...): bin centre times scale (special ids map to bin 0)."""
        idx = (ids - N_SPECIAL).clamp(0, self.n_values - 1)
        centers = self.centers.to(ids.device)
        return centers[idx].to(scale.dtype) * scale.reshape(-1, *([1] * (ids.dim() - 1)))
