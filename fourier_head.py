r"""
# Fourier head

A drop-in replacement for a linear classification head whose output categorical distribution is the
discretisation of a *smooth* density on $[-1, 1]$ (Gillman et al., "Fourier Head: Helping Large Language
Models Learn Complex Probability Distributions", ICLR 2025, arXiv 2410.22269).

This file needs torch and the standard library only: copy it into your own project and every feature
works at eager speed. On a GPU, `fourier_head_fused.py` (Triton kernels, optional) is used automatically
when it can be imported; it computes the same numbers faster. `FOURIER_HEAD_FUSED=0` switches it off.

## The math

Let $d$ = `dim_input`, $m$ = `dim_output` (number of bins) and $N$ = `num_frequencies`.

1. A linear layer maps $x \in \mathbb{R}^d$ to $2(N+1)$ reals: the first $N+1$ are the real parts, the
   last $N+1$ the imaginary parts of $a = (a_0, \dots, a_N) \in \mathbb{C}^{N+1}$. Its weight and bias are
   divided by `init_denominator_weight` / `init_denominator_bias` at construction, so training starts
   from an almost uniform density.
2. The autocorrelation $c_k = \sum_j a_{j+k}\,\overline{a_j}$ for $k = 0..N$; $c_0 = \|a\|^2 > 0$.
3. The density
   $$p(z) = \tfrac12 + \mathrm{Re} \sum_{k=1}^{N} \frac{c_k}{c_0}\, e^{i\pi k z}
          = \frac{\bigl|\sum_{j=0}^{N} a_j e^{i\pi j z}\bigr|^2}{2\,c_0},$$
   which is non-negative and integrates to one on $[-1, 1]$ (Fejér–Riesz: a trigonometric polynomial that
   is a squared modulus).
4. It is evaluated at the $m$ bin centres $z_i = -1 + (2i+1)/m$ and divided by its sum over bins: a PMF
   $y$. The layer returns $\log(y + \varepsilon)$, $\varepsilon$ = `const_inverse_softmax`, so
   `cross_entropy` / `softmax` downstream work unchanged (softmax of the output is
   $(y + \varepsilon) / (1 + m\varepsilon)$: with $m = 4096$ a ~4% uniform floor; the reference does the
   same and we keep it for comparability).
5. Regulariser (reference definition), stored as `loss_regularization` after each forward; **the caller
   must add it to its loss** (`regularization_loss(model)` sums it over every head of a model):
   $$\mathcal{L}_{reg} = \gamma \cdot 2 \cdot \mathrm{mean}_{batch} \sum_{k=0}^{N} 2\pi^2 k^2 |c_k|^2 .$$
   On the unnormalised $c_k$ it is not scale invariant (shrinking $\|a\|$ leaves the density unchanged and
   the penalty ~0), so `regularization="normalized"` offers the same sum over $\hat c_k = c_k/c_0$.

## How it is computed

Step 3 says the PMF is $|E a|^2$ normalised over bins, with $E_{ij} = e^{i\pi j z_i}$: the autocorrelation
is not needed for the forward pass at all. Two ways to get $E a$, chosen per shape (`pmf_method="auto"`):

* **matmul**: a real product of $[\mathrm{Re}\,a, \mathrm{Im}\,a]$ with a precomputed (2(N+1), 2m) cos/sin
  basis (few frequencies or few bins);
* **fft**: on the uniform grid $e^{i\pi j z_i} = (-1)^j e^{i\pi j/m} \cdot e^{2\pi i\,ij/m}$, so $E a$ is one
  length-$m$ DFT of the twisted vector $b_j = (-1)^j e^{i\pi j/m} a_j$ (folded modulo $m$ when $N+1 > m$).

Neither builds the (batch, bins, frequencies) tensor or the grouped convolution of the reference. The
autocorrelation (regulariser, `fourier_coefficients`) is computed only when asked for.

All of it runs in float32 (float64 if the parameters are float64), also under autocast and for bf16/fp16
parameters: complex half precision does not exist and $1/c_0$ with the tiny initialisation overflows in
fp16. The constants (basis, twiddles, bin centres) are rebuilt from exact float64 values whenever the
module is moved or cast, so they are never rounded to the parameters' dtype.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import os
from typing import Optional

import torch
from torch import nn

__all__ = ["Fourier_Head", "FourierHead", "Fourier_Head_MLE", "FourierDensity", "regularization_loss",
           "smoothness", "autocorrelate", "fourier_penalty", "bin_centers"]


# ------------------------------------------------------------------------------------------------
# small functions of the math
# ------------------------------------------------------------------------------------------------

def bin_centers(num_bins: int, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Centres $z_i = -1 + (2i+1)/m$ of `num_bins` equal bins on [-1, 1]: shape (num_bins,)."""
    i = torch.arange(num_bins, dtype=dtype, device=device)
    return -1.0 + (2.0 * i + 1.0) / num_bins


_FFT_LENGTHS: dict = {}  # a plain dict: torch.compile warns about functools.lru_cache


def _fft_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c 7^d >= n. FFTs of lengths with a large prime factor are several times
    slower (2N + 1 = 1101 = 3 * 367 at N = 550)."""
    if n not in _FFT_LENGTHS:
        best, p2 = 1 << max(0, n - 1).bit_length(), 1
        while p2 < best:
            p3 = p2
            while p3 < best:
                p5 = p3
                while p5 < best:
                    p7 = p5
                    while p7 < n:
                        p7 *= 7
                    best, p5 = min(best, p7), p5 * 5
                p3 *= 3
            p2 *= 2
        _FFT_LENGTHS[n] = best
    return _FFT_LENGTHS[n]


def autocorrelate(a: torch.Tensor) -> torch.Tensor:
    """Autocorrelation $c_k = \\sum_j a_{j+k} \\overline{a_j}$, k = 0..N, by one zero-padded FFT.

    Parameters
    ----------
    a : complex tensor, shape (..., N+1)

    Returns
    -------
    complex tensor, shape (..., N+1); c_0 is real and equals ||a||^2.
    """
    n = a.shape[-1]
    if a.numel() == 0:
        return a.clone()
    spectrum = torch.fft.fft(a, n=_fft_length(2 * n - 1), dim=-1)  # no circular wrap for lags 0..N
    return torch.fft.ifft(spectrum.real.square() + spectrum.imag.square(), dim=-1)[..., :n]


def fourier_penalty(c: torch.Tensor, normalized: bool = False) -> torch.Tensor:
    """Per-row penalty $\\sum_{k=0..N} 2\\pi^2 k^2 |c_k|^2$ (on $c_k / c_0$ if `normalized`).

    Parameters
    ----------
    c : complex tensor, shape (..., N+1): the autocorrelation (see `autocorrelate`).

    Returns
    -------
    real tensor, shape (...). A head's `loss_regularization` is gamma * 2 * mean over rows of this.
    """
    if normalized:
        c = c / c[..., :1].real
    k = torch.arange(c.shape[-1], dtype=c.real.dtype, device=c.device)
    return (2.0 * math.pi ** 2 * k.square() * (c.real.square() + c.imag.square())).sum(dim=-1)


def _autocorrelation_parts(params: torch.Tensor):
    """[Re a, Im a] (B, 2n) -> (Re c, Im c), each (B, n). For n <= 64 by direct sums over shifted copies in
    real arithmetic (what torch.compile fuses best; it generates no code for complex numbers), else by FFT."""
    n = params.shape[-1] // 2
    if n > 64:
        c = autocorrelate(torch.complex(params[:, :n], params[:, n:]))
        return c.real, c.imag
    u, v = params[:, :n], params[:, n:]
    su, sv = (nn.functional.pad(t, (0, n)).unfold(-1, n, 1)[:, :n] for t in (u, v))  # [b, k, j] = t_{j+k}
    return (su * u[:, None] + sv * v[:, None]).sum(-1), (sv * u[:, None] - su * v[:, None]).sum(-1)


def _regularizer(params: torch.Tensor, gamma: float, normalized: bool) -> torch.Tensor:
    """gamma * 2 * mean_rows sum_k 2 pi^2 k^2 |c_k|^2 from params [Re a, Im a] (B, 2n): a scalar."""
    if params.shape[0] == 0:
        return params.sum() * 0.0  # an empty batch: zero, still attached to the graph
    c_re, c_im = _autocorrelation_parts(params)
    if normalized:
        c_re, c_im = c_re / c_re[:, :1], c_im / c_re[:, :1]
    k = torch.arange(c_re.shape[-1], dtype=params.dtype, device=params.device)
    penalty = (c_re.square() + c_im.square()) @ (2.0 * math.pi ** 2 * k.square())
    return gamma * 2.0 * penalty.mean()


def regularization_loss(model: nn.Module) -> torch.Tensor:
    """The sum of `loss_regularization` over every Fourier head inside `model`: add it to the loss.

    Call it after the forward pass. A model with no Fourier head (or gamma = 0) gives a zero tensor.

    Returns
    -------
    scalar tensor.
    """
    total = None
    for module in model.modules():
        if isinstance(module, _FourierBase) and module.regularizion_gamma != 0:
            reg = module.loss_regularization
            total = reg if total is None else total + reg.to(total.device)
    if total is None:
        param = next(model.parameters(), None)
        return torch.zeros((), device=param.device if param is not None else None)
    return total


# ------------------------------------------------------------------------------------------------
# what both heads share: argument checks, the linear layer, the regulariser attribute
# ------------------------------------------------------------------------------------------------

def _integer(name: str, value, low: int, who: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{who}: {name} must be an integer >= {low}, got {value!r}")
    try:
        value = operator.index(value)  # int, numpy integers, 0-d integer tensors
    except TypeError:
        raise ValueError(f"{who}: {name} must be an integer >= {low}, got {value!r}") from None
    if value < low:
        raise ValueError(f"{who}: {name} must be an integer >= {low}, got {value}")
    return value


def _number(name: str, value, who: str, positive: bool) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{who}: {name} must be a finite number {'> 0' if positive else '>= 0'}, got {value}")
    return value


def _check_input(x, dim_input: int, who: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{who} expects a floating-point input, got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != dim_input:
        got = "a scalar" if x.dim() == 0 else f"last dimension {x.shape[-1]} (shape {tuple(x.shape)})"
        raise ValueError(f"{who} expected input with last dimension dim_input={dim_input}, got {got}")


def _float32_region(x: torch.Tensor):
    """Autocast off (the head's math needs float32), entered only where autocast is on (it costs microseconds)."""
    kind = x.device.type
    try:
        on = kind in ("cpu", "cuda") and torch.is_autocast_enabled(kind)
    except TypeError:  # torch < 2.4 has no device argument
        on = torch.is_autocast_cpu_enabled() if kind == "cpu" else torch.is_autocast_enabled()
    return torch.autocast(kind, enabled=False) if on else contextlib.nullcontext()


def _math_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; bf16, fp16 and fp32 compute in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _plain_linear(fc: nn.Module) -> bool:
    """An nn.Linear with no hooks of any kind: the head may compute it itself (in float32, or fused).
    Anything else (hooks, LoRA, a replaced layer) is called as the module it is."""
    m = nn.modules.module
    return (type(fc) is nn.Linear and not (fc._forward_hooks or fc._forward_pre_hooks or fc._backward_hooks
                                           or fc._backward_pre_hooks)
            and not (m._global_forward_hooks or m._global_forward_pre_hooks or m._global_backward_hooks
                     or m._global_backward_pre_hooks))


class _FourierBase(nn.Module):
    """The linear layer x (..., d) -> [Re a, Im a] (B, 2(N+1)) and the `loss_regularization` attribute."""

    def _init_common(self, who, dim_input, num_frequencies, gamma, gamma_alias, init_denominator_weight,
                     init_denominator_bias, dtype, device, regularization):
        self.dim_input = _integer("dim_input", dim_input, 1, who)
        self.num_frequencies = _integer("num_frequencies", num_frequencies, 1, who)
        if gamma_alias is not None:  # `regularization_gamma` is the documented spelling
            if gamma not in (0, 0.0) and float(gamma) != float(gamma_alias):
                raise ValueError(f"{who}: pass only one of regularizion_gamma (reference spelling) and "
                                 "regularization_gamma, or the same value to both")
            gamma = gamma_alias
        self.regularizion_gamma = _number("regularization_gamma", gamma, who, positive=False)
        self.init_denominator_weight = _number("init_denominator_weight", init_denominator_weight, who, True)
        self.init_denominator_bias = _number("init_denominator_bias", init_denominator_bias, who, True)
        if regularization not in ("reference", "normalized"):
            raise ValueError(f"{who}: regularization must be 'reference' or 'normalized', got {regularization!r}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"{who}: dtype must be a real floating dtype, got {dtype}")
        self.regularization = regularization
        # The reference's parameter name, so its state dicts load unchanged.
        self.fc_extract_autocorrelation_params = nn.Linear(self.dim_input, 2 * (self.num_frequencies + 1),
                                                           dtype=dtype, device=device)
        self._scale_init()
        self._loss_regularization = None
        self._replica_forward = {}  # shared with nn.DataParallel replicas (see `loss_regularization`)

    @property
    def regularization_gamma(self) -> float:
        """gamma of the regulariser (the reference spells the attribute `regularizion_gamma`)."""
        return self.regularizion_gamma

    @regularization_gamma.setter
    def regularization_gamma(self, value: float) -> None:
        self.regularizion_gamma = _number("regularization_gamma", value, type(self).__name__, positive=False)

    def _scale_init(self):
        fc = self.fc_extract_autocorrelation_params
        if fc.weight.device.type != "meta":
            with torch.no_grad():
                fc.weight.div_(self.init_denominator_weight)
                fc.bias.div_(self.init_denominator_bias)

    def reset_parameters(self) -> None:
        """Re-initialise the linear layer (nn.Linear's init divided by the init denominators) and rebuild
        the constants: e.g. after `to_empty()` of a head built on the meta device."""
        self.fc_extract_autocorrelation_params.reset_parameters()
        self._scale_init()
        self._build_constants()

    def _build_constants(self) -> None:
        pass

    def _apply(self, fn, recurse=True):
        # .to(), .cuda(), .half(), .to_empty(): rebuild the constants from exact values afterwards, so that
        # they follow the device but keep float32 (float64) precision whatever the parameters' dtype.
        super()._apply(fn, recurse)
        self._build_constants()
        return self

    def _linear(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., d) -> [Re a, Im a] (B, 2(N+1)) in float32 (float64), B = prod(leading dims)."""
        fc = self.fc_extract_autocorrelation_params
        x = x.reshape(-1, x.shape[-1])
        dtype = _math_dtype(fc.weight.dtype)
        if not _plain_linear(fc):
            return fc(x.to(fc.weight.dtype)).to(dtype)
        bias = fc.bias.to(dtype) if fc.bias is not None else None
        return nn.functional.linear(x.to(dtype), fc.weight.to(dtype), bias)

    def compute_fourier_coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """Reference API: the unnormalised autocorrelation c_k, (B, dim_input) -> complex (B, N+1)."""
        _check_input(x, self.dim_input, type(self).__name__)
        with _float32_region(x):
            params = self._linear(x)
            n = params.shape[-1] // 2
            return autocorrelate(torch.complex(params[:, :n], params[:, n:])).reshape(*x.shape[:-1], n)

    # -- the regulariser attribute --------------------------------------------------------------

    @property
    def loss_regularization(self) -> torch.Tensor:
        """gamma * penalty of the last forward (a fresh zero when gamma = 0): add it to your loss."""
        if self._replica_forward.get("yes") and not getattr(self, "_is_replica", False):
            raise RuntimeError(
                f"{type(self).__name__}: the last forward ran on nn.DataParallel replicas, whose "
                "loss_regularization cannot reach the wrapped module. Return fourier_head.regularization_loss(self) "
                "from your model's forward (DataParallel gathers outputs), or use DistributedDataParallel.")
        reg = self.__dict__.get("_loss_regularization")
        if reg is None:
            weight = self.fc_extract_autocorrelation_params.weight
            return torch.zeros((), dtype=_math_dtype(weight.dtype), device=weight.device)
        return reg

    @loss_regularization.setter
    def loss_regularization(self, value) -> None:
        self.__dict__["_loss_regularization"] = value

    def _set_regularization(self, reg: Optional[torch.Tensor]) -> None:
        self.__dict__["_loss_regularization"] = reg
        if self.regularizion_gamma != 0:
            self._replica_forward["yes"] = bool(getattr(self, "_is_replica", False))

    def __getstate__(self):
        # deepcopy / pickle after a forward: keep the regulariser's value, not its autograd graph
        state = dict(self.__dict__)  # what nn.Module.__getstate__ does (older torch lacks it)
        state.pop("_compiled_call_impl", None)
        reg = state.get("_loss_regularization")
        if isinstance(reg, torch.Tensor):
            state["_loss_regularization"] = reg.detach()
        state["_replica_forward"] = dict(state.get("_replica_forward", {}))
        return state


# ------------------------------------------------------------------------------------------------
# the classification head
# ------------------------------------------------------------------------------------------------

_FUSED = {}  # "module": fourier_head_fused, or None when it cannot be imported


def _fused_module():
    """fourier_head_fused if it imports (Triton installed) and FOURIER_HEAD_FUSED is not "0", else None."""
    if "module" not in _FUSED:
        module = None
        if os.environ.get("FOURIER_HEAD_FUSED", "1") != "0":
            try:
                import fourier_head_fused as module
            except ImportError:
                module = None
        _FUSED["module"] = module
    return _FUSED["module"]


class Fourier_Head(_FourierBase):
    r"""Fourier head: input (..., dim_input) -> log-PMF over `dim_output` ordered bins (..., dim_output).

    Parameters
    ----------
    dim_input : int
        d, size of the last input dimension.
    dim_output : int
        m >= 2, number of bins (classes), ordered so that neighbours are similar.
    num_frequencies : int
        N >= 1, number of Fourier frequencies (any value, also N >= m).
    regularizion_gamma : float
        gamma >= 0 of the regulariser, in the reference's spelling; `regularization_gamma` (keyword) is the
        documented name. After every forward `loss_regularization` holds gamma * penalty: add it to your loss.
    const_inverse_softmax : float
        epsilon >= 0 in the returned log(pmf + epsilon).
    init_denominator_weight, init_denominator_bias : float
        > 0; the linear layer's initial weight and bias are divided by these.
    dtype : torch.dtype
        dtype of the parameters (default float32). The math runs in float32 unless this is float64.
    device : torch.device or str, optional
        Where the parameters are created; the module moves with `.to()` like any other.
    regularization : {"reference", "normalized"}
        Penalty on the autocorrelation c_k (reference, default) or on c_k / c_0 (scale invariant).
    pmf_method : {"auto", "fft", "matmul"}
        How E a is evaluated at the bin centres; "auto" picks by shape. Same numbers either way.

    Shapes
    ------
    forward: (..., dim_input) -> (..., dim_output), float32 (float64 for float64 parameters).
    """

    # "auto" uses the cos/sin product while N+1 <= 128 and the basis is small, else the FFT: on an H100 at
    # m = 4096 the product won at N = 64 and the FFT at N = 256 (misc/benchmarks/head_speed.json).
    MATMUL_MAX_COEFFS = 128
    MATMUL_MAX_BASIS = 1 << 22

    def __init__(self, dim_input: int, dim_output: int, num_frequencies: int, regularizion_gamma: float = 0,
                 const_inverse_softmax: float = 1e-5, init_denominator_weight: float = 100,
                 init_denominator_bias: float = 100, dtype: torch.dtype = torch.float32, device=None, *,
                 regularization_gamma: Optional[float] = None, regularization: str = "reference",
                 pmf_method: str = "auto"):
        super().__init__()
        who = "Fourier_Head"
        self.dim_output = _integer("dim_output", dim_output, 2, who)
        self.const_inverse_softmax = _number("const_inverse_softmax", const_inverse_softmax, who, positive=False)
        if pmf_method not in ("auto", "fft", "matmul"):
            raise ValueError(f"{who}: pmf_method must be 'auto', 'fft' or 'matmul', got {pmf_method!r}")
        self._init_common(who, dim_input, num_frequencies, regularizion_gamma, regularization_gamma,
                          init_denominator_weight, init_denominator_bias, dtype, device, regularization)
        n, m = self.num_frequencies + 1, self.dim_output
        if pmf_method == "auto":
            small = n <= self.MATMUL_MAX_COEFFS and 4 * n * m <= self.MATMUL_MAX_BASIS
            pmf_method = "matmul" if small else "fft"
        self.pmf_method = pmf_method
        # Reference hook (its random-number-generator experiment): a dict whose "save_pmfs_function" is
        # called as f(bin_centerpoints, pmf (..., m), the dict) after every forward.
        self.save_learned_pmfs = None
        self._build_constants()

    def _build_constants(self) -> None:
        """Non-persistent buffers (state_dict stays the reference's), computed in float64 and stored in the
        math dtype on the parameters' device."""
        weight = self.fc_extract_autocorrelation_params.weight
        dtype, device = _math_dtype(weight.dtype), weight.device
        m, n = self.dim_output, self.num_frequencies + 1
        j = torch.arange(n, dtype=torch.float64, device="cpu")
        self.register_buffer("bin_centerpoints", bin_centers(m, device="cpu").to(device, dtype), persistent=False)
        if self.pmf_method == "fft":
            # b_j = (-1)^j e^{i pi j / m} a_j turns E a into one length-m DFT; stored as (N+1, 2) [cos, sin]
            angle = math.pi * j * (1.0 + 1.0 / m)
            twiddle = torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)
            self.register_buffer("fft_twiddle", twiddle.to(device, dtype), persistent=False)
        else:
            # [Re a, Im a] @ basis = [Re Ea, Im Ea], since Ea = sum_j (Re a_j + i Im a_j)(cos + i sin)
            theta = math.pi * j[:, None] * bin_centers(m, device="cpu")[None, :]  # (N+1, m)
            cos, sin = torch.cos(theta), torch.sin(theta)
            basis = torch.cat([torch.cat([cos, sin], dim=1), torch.cat([-sin, cos], dim=1)], dim=0)
            self.register_buffer("pmf_basis", basis.to(device, dtype), persistent=False)

    # -- the core: [Re a, Im a] -> |E a|^2 at the bin centres -----------------------------------

    def _power(self, params: torch.Tensor) -> torch.Tensor:
        """[Re a, Im a] (B, 2(N+1)) -> |E a|^2 (B, m) = 2 c_0 p(z_i) at the bin centres."""
        m, n = self.dim_output, params.shape[-1] // 2
        if self.pmf_method == "matmul":
            values = params @ self.pmf_basis.to(params.dtype)  # (B, 2m): [Re Ea | Im Ea]
            return values[:, :m].square() + values[:, m:].square()
        if params.shape[0] == 0:  # an empty batch (the FFT libraries refuse one)
            return params[:, :1].expand(0, m) * 0.0
        twiddle = self.fft_twiddle.to(params.dtype)
        b = torch.complex(params[:, :n], params[:, n:]) * torch.complex(twiddle[:, 0], twiddle[:, 1])
        if n > m:  # frequencies j and j + m land on the same bins: pad to a multiple of m and fold
            b = nn.functional.pad(b, (0, (-n) % m)).reshape(b.shape[0], -1, m).sum(dim=1)
        values = torch.fft.ifft(b, n=m, dim=-1, norm="forward")  # (B, m): sum_j b_j e^{+2 pi i ij/m}
        return torch.view_as_real(values).square().sum(dim=-1)  # differentiable also where Ea = 0

    def _log_pmf(self, params: torch.Tensor) -> torch.Tensor:
        power = self._power(params)
        return torch.log(power / power.sum(dim=-1, keepdim=True) + self.const_inverse_softmax)

    def _check_params(self, params: torch.Tensor, who: str) -> None:
        if params.shape[-1] != 2 * (self.num_frequencies + 1):
            raise ValueError(f"Fourier_Head.{who} expected last dimension {2 * (self.num_frequencies + 1)}, "
                             f"got {params.shape[-1]}")

    # -- forward --------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """log(pmf + epsilon): (..., dim_input) -> (..., dim_output). Sets `loss_regularization`."""
        _check_input(x, self.dim_input, "Fourier_Head")
        fused = _FUSED.get("module") if x.device.type == "cpu" else _fused_module()
        result = fused.forward(self, x) if fused is not None else None  # None where it does not apply
        if result is None:
            with _float32_region(x):
                params = self._linear(x)
                out = self._log_pmf(params)
                reg = (_regularizer(params, self.regularizion_gamma, self.regularization == "normalized")
                       if self.regularizion_gamma != 0 else None)
        else:
            out, reg = result
        self._set_regularization(reg)
        out = out.reshape(*x.shape[:-1], self.dim_output)
        if self.save_learned_pmfs is not None:
            with torch.no_grad():
                self.save_learned_pmfs["save_pmfs_function"](self.bin_centerpoints, self.pmf(x), self.save_learned_pmfs)
        return out

    def log_pmf_from_params(self, params: torch.Tensor) -> torch.Tensor:
        """log(pmf + epsilon) from linear-layer outputs computed elsewhere (stacked models, a fused projection).

        Parameters
        ----------
        params : tensor, shape (..., 2(N+1)): [Re a_0..a_N, Im a_0..a_N].

        Returns
        -------
        tensor, shape (..., dim_output). Sets no regulariser.
        """
        self._check_params(params, "log_pmf_from_params")
        with _float32_region(params):
            flat = params.reshape(-1, params.shape[-1]).to(_math_dtype(params.dtype))
            fused = _FUSED.get("module") if flat.device.type == "cpu" else _fused_module()
            out = fused.log_pmf_from_params(self, flat) if fused is not None else None
            out = self._log_pmf(flat) if out is None else out
        return out.reshape(*params.shape[:-1], self.dim_output)

    def pmf_from_params(self, params: torch.Tensor) -> torch.Tensor:
        """The PMF (rows sum to 1) from linear-layer outputs: (..., 2(N+1)) -> (..., dim_output).
        Zero entries of params act as absent frequencies."""
        self._check_params(params, "pmf_from_params")
        with _float32_region(params):
            power = self._power(params.reshape(-1, params.shape[-1]).to(_math_dtype(params.dtype)))
            pmf = power / power.sum(dim=-1, keepdim=True)
        return pmf.reshape(*params.shape[:-1], self.dim_output)

    # -- access for analysis and figures --------------------------------------------------------

    def pmf(self, x: torch.Tensor) -> torch.Tensor:
        """The PMF itself (no epsilon): (..., dim_input) -> (..., dim_output), rows sum to 1."""
        _check_input(x, self.dim_input, "Fourier_Head")
        with _float32_region(x):
            return self.pmf_from_params(self._linear(x)).reshape(*x.shape[:-1], self.dim_output)

    def fourier_coefficients(self, x: torch.Tensor, normalized: bool = True) -> torch.Tensor:
        """Fourier coefficients of the density: (..., dim_input) -> complex (..., N+1).

        normalized=True returns c_k / c_0 (entry 0 is 1, and p(z) = 1/2 + Re sum_{k>=1} entry_k e^{i pi k z});
        normalized=False the autocorrelation c_k itself (= `compute_fourier_coefficients`).
        """
        c = self.compute_fourier_coefficients(x)
        return c / c[..., :1].real if normalized else c

    def evaluate_pdf(self, fourier_coeffs: torch.Tensor, latent_vals: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Reference API: the density p(z) = 1/2 + Re sum_{k=1..N} coeffs_k e^{i pi k z}.

        Parameters
        ----------
        fourier_coeffs : complex tensor, shape (..., N): c_1/c_0 .. c_N/c_0, e.g. `fourier_coefficients(x)[..., 1:]`.
        latent_vals : tensor, shape (L,), optional: points in [-1, 1]; default the bin centres.

        Returns
        -------
        tensor, shape (..., L): density values (they integrate to 1 over [-1, 1]).
        """
        z = self.bin_centerpoints if latent_vals is None else latent_vals
        return _fourier_series(fourier_coeffs, z)

    def extra_repr(self) -> str:
        return (f"dim_input={self.dim_input}, dim_output={self.dim_output}, num_frequencies={self.num_frequencies}, "
                f"gamma={self.regularizion_gamma}, regularization={self.regularization!r}, "
                f"pmf_method={self.pmf_method!r}")


FourierHead = Fourier_Head


def _fourier_series(coeffs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """1/2 + Re sum_{k=1..N} coeffs_k e^{i pi k z}: coeffs (..., N) complex, z (L,) -> (..., L)."""
    dtype = coeffs.real.dtype
    z = torch.as_tensor(z).to(device=coeffs.device, dtype=dtype)
    k = torch.arange(1, coeffs.shape[-1] + 1, device=coeffs.device, dtype=dtype)
    theta = math.pi * k[:, None] * z[None, :]  # (N, L)
    return 0.5 + coeffs.real @ torch.cos(theta) - coeffs.imag @ torch.sin(theta)


# ------------------------------------------------------------------------------------------------
# the continuous (maximum-likelihood) variant
# ------------------------------------------------------------------------------------------------

class FourierDensity:
    r"""A batch of Fourier densities on [-1, 1], one per row:
    p(x) = |sum_j a_j e^{i pi j x}|^2 / (2 ||a||^2) = 1/2 + Re sum_{k=1..N} c_k/c_0 e^{i pi k x}.

    Parameters
    ----------
    a : complex tensor, shape (B, N+1): the head's linear-layer output as complex numbers.
    batch_shape : tuple, optional: the leading shape the B rows are reshaped to in outputs.
    """

    def __init__(self, a: torch.Tensor, batch_shape=None):
        self.a = a
        self.batch_shape = tuple(batch_shape) if batch_shape is not None else (a.shape[0],)
        self._coeffs = None

    @classmethod
    def from_params(cls, params: torch.Tensor) -> "FourierDensity":
        """Densities from linear-layer outputs [Re a, Im a] (..., 2(N+1)); batch shape (...)."""
        flat = params.reshape(-1, params.shape[-1]).to(_math_dtype(params.dtype))
        n = flat.shape[-1] // 2
        return cls(torch.complex(flat[:, :n], flat[:, n:]), batch_shape=params.shape[:-1])

    @property
    def coefficients(self) -> torch.Tensor:
        """Normalised Fourier coefficients c_k / c_0, complex (B, N+1); entry 0 is 1."""
        if self._coeffs is None:
            c = autocorrelate(self.a)
            self._coeffs = c / c[:, :1].real
        return self._coeffs

    @property
    def fourier_coeffs_normalized(self) -> torch.Tensor:
        """Reference name: c_1/c_0 .. c_N/c_0, complex (B, N)."""
        return self.coefficients[:, 1:]

    def _pdf_at(self, pts: torch.Tensor) -> torch.Tensor:
        """pts (B, K) or (K,) shared by all rows -> density (B, K); zero outside [-1, 1]."""
        j = torch.arange(self.a.shape[-1], device=pts.device, dtype=pts.dtype)
        theta = math.pi * pts[..., None] * j  # (B, K, N+1) or (K, N+1)
        ar, ai = self.a.real, self.a.imag
        if pts.dim() == 1:  # one grid for every row: two real matmuls
            cos, sin = torch.cos(theta).T, torch.sin(theta).T
            re, im = ar @ cos - ai @ sin, ar @ sin + ai @ cos
        else:
            cos, sin = torch.cos(theta), torch.sin(theta)
            re = (ar[:, None] * cos - ai[:, None] * sin).sum(-1)
            im = (ar[:, None] * sin + ai[:, None] * cos).sum(-1)
        values = (re.square() + im.square()) / (2.0 * (ar.square() + ai.square()).sum(-1, keepdim=True))
        return torch.where((pts >= -1) & (pts <= 1), values, torch.zeros_like(values))

    def pdf_on_grid(self, z: torch.Tensor) -> torch.Tensor:
        """Density of every row at the same points z (K,): (*batch_shape, K)."""
        z = torch.as_tensor(z, device=self.a.device).to(self.a.real.dtype).reshape(-1)
        return self._pdf_at(z).reshape(*self.batch_shape, z.shape[0])

    def _points(self, x) -> tuple[torch.Tensor, bool]:
        """Points of shape batch_shape (one per row) or (*batch_shape, K) -> (B, K), and whether K = 1 was added."""
        x = torch.as_tensor(x, device=self.a.device).to(self.a.real.dtype)
        b = self.a.shape[0]
        if tuple(x.shape) in (self.batch_shape, (b,)):
            return x.reshape(b, 1), True
        if x.dim() >= 1 and tuple(x.shape[:-1]) in (self.batch_shape, (b,)):
            return x.reshape(b, x.shape[-1]), False
        raise ValueError(f"FourierDensity: points of shape {tuple(x.shape)} do not match the batch shape "
                         f"{self.batch_shape} (use shape {self.batch_shape} or (*{self.batch_shape}, K))")

    def _shape_out(self, values: torch.Tensor, squeeze: bool) -> torch.Tensor:
        return values.reshape(self.batch_shape) if squeeze else values.reshape(*self.batch_shape, values.shape[-1])

    def pdf(self, x: torch.Tensor) -> torch.Tensor:
        """Density at x: batch_shape -> batch_shape, or (*batch_shape, K) -> (*batch_shape, K)."""
        pts, squeeze = self._points(x)
        return self._shape_out(self._pdf_at(pts), squeeze)

    def log_prob(self, x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
        """log(p(x) + eps), the reference's training objective per point."""
        return torch.log(self.pdf(x) + eps)

    def _cdf_points(self, pts: torch.Tensor) -> torch.Tensor:
        """Closed-form CDF at pts (B, K): (x+1)/2 + Re sum_k c_k (e^{i pi k x} - (-1)^k) / (i pi k)."""
        coeffs = self.coefficients[:, 1:]  # (B, N)
        k = torch.arange(1, coeffs.shape[-1] + 1, device=pts.device, dtype=pts.dtype)
        x = pts.clamp(-1, 1)
        theta = math.pi * x[..., None] * k  # (B, K, N)
        sign = 1.0 - 2.0 * (k % 2)  # (-1)^k
        # Re[(cr + i ci)(cos - sign + i sin) / (i pi k)] = (cr sin + ci (cos - sign)) / (pi k)
        cr, ci = coeffs.real[:, None, :], coeffs.imag[:, None, :]
        return (x + 1.0) / 2.0 + ((cr * torch.sin(theta) + ci * (torch.cos(theta) - sign)) / (math.pi * k)).sum(-1)

    def cdf(self, x: torch.Tensor) -> torch.Tensor:
        """CDF at x, same shapes as `pdf`."""
        pts, squeeze = self._points(x)
        return self._shape_out(self._cdf_points(pts), squeeze)

    @torch.no_grad()
    def sample(self, num_samples: int = 1, generator: Optional[torch.Generator] = None,
               iterations: int = 40) -> torch.Tensor:
        """Inverse-CDF samples by bisection, vectorised over rows and samples: (*batch_shape, num_samples)."""
        dtype = self.a.real.dtype
        device = generator.device if generator is not None else self.a.device
        u = torch.rand(self.a.shape[0], num_samples, generator=generator, dtype=dtype, device=device).to(self.a.device)
        lo, hi = torch.full_like(u, -1.0), torch.full_like(u, 1.0)
        for _ in range(iterations):  # the CDF is monotone: halve the bracket 40 times (< 2e-12)
            mid = (lo + hi) / 2
            below = self._cdf_points(mid) < u
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return ((lo + hi) / 2).reshape(*self.batch_shape, num_samples)

    # the reference's `Fourier_PDF` names
    def evaluate_at(self, x: torch.Tensor) -> torch.Tensor:
        """Reference API: p(x) for one point per row, (B,) -> (B,)."""
        return self.pdf(x)

    def evaluate_cdf(self, x: torch.Tensor) -> torch.Tensor:
        """Reference API: F(x) for one point per row, (B,) -> (B,)."""
        return self.cdf(x)

    def sample_from(self, n_samples: int) -> torch.Tensor:
        """Reference API: n_samples draws per row, (B, n_samples)."""
        return self.sample(n_samples)


class Fourier_Head_MLE(_FourierBase):
    """Continuous Fourier head: input (..., dim_input) -> `FourierDensity` with batch shape (...).

    Train with `loss = -density.log_prob(y).mean() + head.loss_regularization`.

    Parameters
    ----------
    dim_input, num_frequencies, regularizion_gamma (keyword alias regularization_gamma),
    init_denominator_weight, init_denominator_bias, dtype, device, regularization : as in `Fourier_Head`.
    """

    def __init__(self, dim_input: int, num_frequencies: int, regularizion_gamma: float = 0,
                 init_denominator_weight: float = 100, init_denominator_bias: float = 100,
                 dtype: torch.dtype = torch.float32, device=None, *, regularization_gamma: Optional[float] = None,
                 regularization: str = "reference"):
        super().__init__()
        self._init_common("Fourier_Head_MLE", dim_input, num_frequencies, regularizion_gamma, regularization_gamma,
                          init_denominator_weight, init_denominator_bias, dtype, device, regularization)

    def forward(self, x: torch.Tensor) -> FourierDensity:
        """(..., dim_input) -> FourierDensity over (...) rows. Sets `loss_regularization`."""
        _check_input(x, self.dim_input, "Fourier_Head_MLE")
        with _float32_region(x):
            params = self._linear(x)
            gamma = self.regularizion_gamma
            self._set_regularization(_regularizer(params, gamma, self.regularization == "normalized")
                                     if gamma != 0 else None)
            return FourierDensity.from_params(params.reshape(*x.shape[:-1], params.shape[-1]))


# ------------------------------------------------------------------------------------------------
# the smoothness metric
# ------------------------------------------------------------------------------------------------

NUM_SIGMAS = 100


@functools.lru_cache(maxsize=32)
def _smoothing_response(m: int) -> torch.Tensor:
    """(1 - K_hat_sigma)^2 for sigma = 1..100 at the rfft frequencies of length m: (100, m//2+1), float64.

    K_sigma is scipy's gaussian_filter1d kernel (radius m-1, weights exp(-t^2 / 2 sigma^2) normalised over
    t = -(m-1)..(m-1)) folded modulo m, i.e. what mode="wrap" applies as a circular convolution.
    """
    sigmas = torch.arange(1, NUM_SIGMAS + 1, dtype=torch.float64)[:, None]
    t = torch.arange(-(m - 1), m, dtype=torch.float64)[None, :]
    kernel = torch.exp(-0.5 * (t / sigmas).square())
    kernel = kernel / kernel.sum(dim=-1, keepdim=True)  # (100, 2m-1)
    folded = torch.zeros(NUM_SIGMAS, m, dtype=torch.float64)
    folded.index_add_(1, torch.remainder(t[0].long(), m), kernel)
    return (1.0 - torch.fft.rfft(folded, dim=-1).real).square()  # symmetric kernel: real spectrum


def smoothness(pmfs: torch.Tensor) -> torch.Tensor:
    r"""Smoothness s(y) = sum_{sigma=1..100} 6/(pi^2 sigma^2) ||y - G_sigma * y||_2 (lower is smoother).

    Equal to the reference (scipy.ndimage.gaussian_filter1d(y, sigma, mode="wrap", radius=m-1)) to float64
    rounding, for all rows at once in the frequency domain: ||y - G*y||^2 = (1/m) sum_f |Y_f|^2 (1 - K_hat_f)^2
    (Parseval), so the whole metric is one rFFT and one (rows, m/2+1) x (m/2+1, 100) product.

    Parameters
    ----------
    pmfs : tensor, shape (..., m): any real vectors (PMFs in practice), on any device.

    Returns
    -------
    tensor, shape (...), float64.
    """
    if not isinstance(pmfs, torch.Tensor):
        pmfs = torch.as_tensor(pmfs)
    if pmfs.dim() == 0 or pmfs.shape[-1] < 1:
        raise ValueError(f"smoothness expects shape (..., m) with m >= 1, got {tuple(pmfs.shape)}")
    if pmfs.is_complex() or not (pmfs.is_floating_point() or pmfs.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"smoothness expects real values, got dtype {pmfs.dtype}")
    m = pmfs.shape[-1]
    y = pmfs.to(torch.float64)
    spectrum = torch.fft.rfft(y, dim=-1)
    power = spectrum.real.square() + spectrum.imag.square()  # (..., m//2+1)
    multiplicity = torch.full((m // 2 + 1,), 2.0, dtype=torch.float64, device=y.device)
    multiplicity[0] = 1.0
    if m % 2 == 0:
        multiplicity[-1] = 1.0
    sq_norms = (power * multiplicity) @ _smoothing_response(m).to(y.device).T / m  # (..., 100)
    sigmas = torch.arange(1, NUM_SIGMAS + 1, dtype=torch.float64, device=y.device)
    return sq_norms.clamp_min(0).sqrt() @ (6.0 / (math.pi ** 2 * sigmas.square()))
