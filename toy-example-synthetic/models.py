"""Models of the toy example: an MLP 2 -> 64 -> 32 with one of six heads, and a stacked ensemble.

`build_single(spec)` is the plain model one would train alone (it also fixes the initialisation:
`torch.manual_seed(spec.seed)` then construction). `Ensemble` copies the weights of many such models
into tensors with a leading model axis and runs them all with batched matmuls, so one training loop
on one device trains hundreds of models with exactly the per-model semantics of training them one at
a time (tests/test_toy.py checks this against `build_single` + torch.optim.Adam).

Heads (`spec.head`):
  linear      Linear(32, 50), cross-entropy
  gmm         K Gaussians at tanh(Linear(32, K)) with learnable std (init 2/m), equal weights,
              log(density at bin centres + 1e-5), cross-entropy (the authors' GMM head)
  fourier     Fourier_Head(32, 50, N, gamma), cross-entropy + regulariser
  regression  Linear(32, 1), squared error to the label's bin centre (pointwise baseline)
  fourier-mle Fourier_Head_MLE(32, N, gamma), NLL of the continuous z + regulariser
  gmm-mle     K Gaussians at tanh(Linear(32, K)), learnable std (init softplus(log 2)), equal weights, NLL
"""

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from fourier_head import (Fourier_Head, Fourier_Head_MLE, FourierDensity, autocorrelate, fourier_penalty,
                          regularization_loss)

CLASSIFICATION_HEADS = ("linear", "gmm", "fourier", "regression")
MLE_HEADS = ("fourier-mle", "gmm-mle")
HEADS = CLASSIFICATION_HEADS + MLE_HEADS
EPS_LOG = 1e-5      # the reference's log(p + 1e-5) for the GMM head (the Fourier head has its own)
EPS_NLL = 1e-10     # the reference's -log(p(z) + 1e-10)


@dataclass(frozen=True)
class ModelSpec:
    """One model of the sweep: which data it sees, which head, and its seed."""
    dataset: str
    seed: int
    head: str
    num_frequencies: int = 0
    gamma: float = 0.0
    num_gaussians: int = 0

    @property
    def config_name(self) -> str:
        """Name of the configuration (all seeds): e.g. 'fourier-f12-g1e-06', 'gmm-k2', 'linear'."""
        if self.head in ("fourier", "fourier-mle"):
            return f"{self.head}-f{self.num_frequencies}-g{self.gamma:g}"
        if self.head in ("gmm", "gmm-mle"):
            return f"{self.head}-k{self.num_gaussians}"
        return self.head

    @property
    def run_name(self) -> str:
        return f"{self.dataset}/{self.config_name}/seed{self.seed}"


# ---- single models ----------------------------------------------------------------------------------

class GMMHead(nn.Module):
    """(..., d) -> log(mixture density at the m bin centres + 1e-5): (..., m)."""

    def __init__(self, dim_input: int, num_bins: int, num_gaussians: int):
        super().__init__()
        self.mean_layer = nn.Linear(dim_input, num_gaussians)
        # softplus(param) = 2 / m: the std starts at one bin width
        self.log_stds = nn.Parameter(torch.full((num_gaussians,), math.log(math.expm1(2.0 / num_bins))))
        # float64, cast at use: float32 models see the same rounded centres as the stacked ensemble
        self.register_buffer("centers", -1 + (2 * torch.arange(num_bins, dtype=torch.float64) + 1) / num_bins,
                             persistent=False)

    def forward(self, x):
        means = torch.tanh(self.mean_layer(x))[..., None]  # (..., K, 1)
        stds = F.softplus(self.log_stds)[:, None]          # (K, 1)
        centers = self.centers.to(means.dtype)
        dens = torch.exp(-0.5 * ((centers - means) / stds) ** 2) / (stds * math.sqrt(2 * math.pi))
        return torch.log(dens.mean(dim=-2) + EPS_LOG)


class GMMHeadMLE(nn.Module):
    """(..., d) -> (means, stds) of an equal-weight Gaussian mixture; density via `gmm_pdf`."""

    def __init__(self, dim_input: int, num_gaussians: int):
        super().__init__()
        self.mean_layer = nn.Linear(dim_input, num_gaussians)
        self.log_stds = nn.Parameter(torch.full((num_gaussians,), math.log(2.0)))

    def forward(self, x):
        return torch.tanh(self.mean_layer(x)), F.softplus(self.log_stds)


def gmm_pdf(means, stds, points, k_mask=None):
    """Equal-weight mixture density. means, stds (..., K); points (..., P) -> (..., P)."""
    dens = torch.exp(-0.5 * ((points[..., None, :] - means[..., None]) / stds[..., None]) ** 2) \
        / (stds[..., None] * math.sqrt(2 * math.pi))  # (..., K, P)
    if k_mask is None:
        return dens.mean(dim=-2)
    weights = k_mask / k_mask.sum(-1, keepdim=True)
    return (dens * weights[..., None]).sum(dim=-2)


def build_single(spec: ModelSpec, num_bins: int = 50) -> nn.Sequential:
    """The model one would train alone for `spec`: seeds torch with spec.seed, then builds."""
    torch.manual_seed(spec.seed)
    backbone = [nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU()]
    head = {
        "linear": lambda: nn.Linear(32, num_bins),
        "gmm": lambda: GMMHead(32, num_bins, spec.num_gaussians),
        "fourier": lambda: Fourier_Head(32, num_bins, spec.num_frequencies, regularizion_gamma=spec.gamma),
        "regression": lambda: nn.Linear(32, 1),
        "fourier-mle": lambda: Fourier_Head_MLE(32, spec.num_frequencies, regularizion_gamma=spec.gamma),
        "gmm-mle": lambda: GMMHeadMLE(32, spec.num_gaussians),
    }
    if spec.head not in head:
        raise ValueError(f"unknown head {spec.head!r}; choose from {', '.join(HEADS)}")
    return nn.Sequential(*backbone, head[spec.head]())


def single_loss(spec: ModelSpec, model: nn.Sequential, x, label, z, centers):
    """The per-model training loss (what `Ensemble.losses` computes for each model)."""
    out = model(x)
    if spec.head in ("linear", "gmm"):
        return F.cross_entropy(out, label)
    if spec.head == "fourier":
        return F.cross_entropy(out, label) + regularization_loss(model)
    if spec.head == "regression":
        return F.mse_loss(out[:, 0], centers[label])
    if spec.head == "fourier-mle":
        return -torch.log(out.pdf(z) + EPS_NLL).mean() + regularization_loss(model)
    means, stds = out
    return -torch.log(gmm_pdf(means, stds.expand_as(means), z[:, None])[:, 0] + EPS_NLL).mean()


# ---- the stacked ensemble --------------------------------------------------------------------------

class StackedLinear(nn.Module):
    """M independent linear layers: x (M, B, in) -> (M, B, out)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)  # (M, out, in)
        self.bias = nn.Parameter(bias)      # (M, out)

    def forward(self, x):
        return torch.baddbmm(self.bias[:, None, :], x, self.weight.transpose(1, 2))


def _stack_linear(layers, rows=None, out_dim=None):
    """Stack nn.Linear layers; `rows[i]` places layer i's output rows into a zero (out_dim) layout."""
    if rows is None:
        return StackedLinear(torch.stack([l.weight.detach() for l in layers]),
                             torch.stack([l.bias.detach() for l in layers]))
    weight = torch.zeros(len(layers), out_dim, layers[0].in_features)
    bias = torch.zeros(len(layers), out_dim)
    for i, (layer, idx) in enumerate(zip(layers, rows)):
        weight[i, idx] = layer.weight.detach()
        bias[i, idx] = layer.bias.detach()
    return StackedLinear(weight, bias)


def _fourier_rows(n_freq: int, n_max: int) -> torch.Tensor:
    """Where [Re a_0..a_N, Im a_0..a_N] go in the padded layout [Re a_0..a_Nmax, Im a_0..a_Nmax]."""
    return torch.cat([torch.arange(n_freq + 1), n_max + 1 + torch.arange(n_freq + 1)])


class Ensemble(nn.Module):
    """Many toy models with one head family each, stacked. Models are grouped by head kind.

    Fourier heads with different N share one padded layout (N_max): the unused coefficient rows are
    multiplied by a 0/1 mask, so they stay exactly zero and the density is that of N frequencies.
    GMM heads with different K are padded the same way.
    """

    def __init__(self, specs, num_bins: int = 50):
        super().__init__()
        self.num_bins = num_bins
        self.kinds = sorted({s.head for s in specs}, key=HEADS.index)
        self.specs = [s for kind in self.kinds for s in specs if s.head == kind]
        singles = [build_single(s, num_bins) for s in self.specs]
        self.slices = {}
        for kind in self.kinds:
            idx = [i for i, s in enumerate(self.specs) if s.head == kind]
            self.slices[kind] = slice(idx[0], idx[-1] + 1)
        self.layer1 = _stack_linear([m[0] for m in singles])
        self.layer2 = _stack_linear([m[2] for m in singles])
        self.heads = nn.ModuleDict()
        for kind in self.kinds:
            sub_specs, heads = self.specs[self.slices[kind]], [m[-1] for m in singles[self.slices[kind]]]
            if kind in ("linear", "regression"):
                self.heads[kind] = _stack_linear(heads)
            elif kind in ("fourier", "fourier-mle"):
                n_max = max(s.num_frequencies for s in sub_specs)
                rows = [_fourier_rows(s.num_frequencies, n_max) for s in sub_specs]
                self.heads[kind] = _stack_linear([h.fc_extract_autocorrelation_params for h in heads], rows,
                                                 2 * (n_max + 1))
                mask = torch.zeros(len(sub_specs), 2 * (n_max + 1))
                for i, r in enumerate(rows):
                    mask[i, r] = 1
                self.register_buffer(f"{kind}_mask", mask)
                self.register_buffer(f"{kind}_gamma", torch.tensor([s.gamma for s in sub_specs]))
                if kind == "fourier":  # the head's own math (one copy) applied to the stacked outputs
                    self.fourier_template = Fourier_Head(32, num_bins, n_max)
            else:  # gmm, gmm-mle
                k_max = max(s.num_gaussians for s in sub_specs)
                rows = [torch.arange(s.num_gaussians) for s in sub_specs]
                self.heads[kind] = _stack_linear([h.mean_layer for h in heads], rows, k_max)
                log_stds = torch.ones(len(sub_specs), k_max)
                k_mask = torch.zeros(len(sub_specs), k_max)
                for i, (h, r) in enumerate(zip(heads, rows)):
                    log_stds[i, r] = h.log_stds.detach()
                    k_mask[i, r] = 1
                self.register_parameter(f"{kind.replace('-', '_')}_log_stds", nn.Parameter(log_stds))
                self.register_buffer(f"{kind.replace('-', '_')}_k_mask", k_mask)
        # float64 here; .to(dtype) rounds it once for float32 runs
        self.register_buffer("centers", -1 + (2 * torch.arange(num_bins, dtype=torch.float64) + 1) / num_bins,
                             persistent=False)

    def features(self, x):
        """x (M, B, 2) -> (M, B, 32)."""
        return F.relu(self.layer2(F.relu(self.layer1(x))))

    def head_outputs(self, kind: str, feats, local: slice = slice(None)):
        """Raw head outputs for models `local` (a slice within `kind`); feats (M_local, B, 32)."""
        layer = self.heads[kind]
        out = torch.baddbmm(layer.bias[local, None, :], feats, layer.weight[local].transpose(1, 2))
        if kind in ("fourier", "fourier-mle"):
            return out * getattr(self, f"{kind}_mask")[local, None, :]
        return out

    def log_probs(self, kind: str, feats):
        """Classification heads: (M_kind, B, m) log-probabilities (unnormalised for gmm, as the reference)."""
        out = self.head_outputs(kind, feats)
        if kind == "linear":
            return out
        if kind == "fourier":
            return self.fourier_template.log_pmf_from_params(out)
        if kind == "gmm":
            stds = F.softplus(self.gmm_log_stds)[:, None, :].expand_as(torch.tanh(out))
            dens = gmm_pdf(torch.tanh(out), stds, self.centers.expand(out.shape[0], out.shape[1], -1),
                           self.gmm_k_mask[:, None, :])
            return torch.log(dens + EPS_LOG)
        raise ValueError(kind)

    def regularizer(self, kind: str, params):
        """gamma_i * 2 * mean_b sum_k 2 pi^2 k^2 |c_k|^2 per Fourier model: (M_kind,)."""
        n = params.shape[-1] // 2
        c = autocorrelate(torch.complex(params[..., :n], params[..., n:]))
        return getattr(self, f"{kind}_gamma") * 2 * fourier_penalty(c).mean(dim=-1)

    def densities(self, kind: str, feats, local: slice = slice(None)):
        """MLE heads: a callable points (M_local, B, P) -> density (M_local, B, P)."""
        out = self.head_outputs(kind, feats, local)
        if kind == "fourier-mle":
            dens = FourierDensity.from_params(out)
            return lambda pts: dens.pdf(pts)
        stds = F.softplus(self.gmm_mle_log_stds[local])[:, None, :].expand_as(out)
        means, k_mask = torch.tanh(out), self.gmm_mle_k_mask[local, None, :]
        return lambda pts: gmm_pdf(means, stds, pts, k_mask)

    def densities_on_grid(self, kind: str, feats, local: slice, grid):
        """MLE heads: density of every row at the shared points grid (P,): (M_local, B, P)."""
        if kind == "fourier-mle":
            return FourierDensity.from_params(self.head_outputs(kind, feats, local)).pdf_on_grid(grid)
        return self.densities(kind, feats, local)(grid.expand(feats.shape[0], feats.shape[1], -1))

    def losses(self, x, label, z):
        """Per-model training losses (M,). x (M, B, 2); label (M, B) int; z (M, B) float."""
        feats = self.features(x)
        losses = []
        for kind in self.kinds:
            sl = self.slices[kind]
            f = feats[sl]
            if kind in ("linear", "gmm", "fourier"):
                logp = self.log_probs(kind, f)
                ce = F.cross_entropy(logp.flatten(0, 1), label[sl].flatten(), reduction="none")
                loss = ce.view(label[sl].shape).mean(dim=1)
                if kind == "fourier":
                    loss = loss + self.regularizer(kind, self.head_outputs(kind, f))
            elif kind == "regression":
                pred = self.head_outputs(kind, f)[..., 0]
                loss = (pred - self.centers[label[sl]]).square().mean(dim=1)
            else:
                pdf = self.densities(kind, f)(z[sl][..., None])[..., 0]
                loss = -torch.log(pdf + EPS_NLL).mean(dim=1)
                if kind == "fourier-mle":
                    loss = loss + self.regularizer(kind, self.head_outputs(kind, f))
            losses.append(loss)
        return torch.cat(losses)

    def _param_slices(self):
        """(parameter, the models its leading axis covers) pairs."""
        for p in (*self.layer1.parameters(), *self.layer2.parameters()):
            yield p, slice(None)
        for kind in self.kinds:
            for p in self.heads[kind].parameters():
                yield p, self.slices[kind]
            if kind in ("gmm", "gmm-mle"):
                yield getattr(self, f"{kind.replace('-', '_')}_log_stds"), self.slices[kind]

    @torch.no_grad()
    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """torch.nn.utils.clip_grad_norm_ applied to each model separately; returns the norms (M,)."""
        total = torch.zeros(len(self.specs), device=self.layer1.weight.device, dtype=self.layer1.weight.dtype)
        pairs = [(p, sl) for p, sl in self._param_slices() if p.grad is not None]
        for p, sl in pairs:
            total[sl] += p.grad.square().flatten(1).sum(1)
        norms = total.sqrt()
        coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for p, sl in pairs:
            p.grad.mul_(coef[sl].view(-1, *[1] * (p.dim() - 1)))
        return norms
