r"""
# Fourier head

A drop-in replacement for a linear classification head whose output categorical distribution
is the discretisation of a *smooth* density on $[-1, 1]$ (Gillman et al., "Fourier Head: Helping
Large Language Models Learn Complex Probability Distributions", ICLR 2025, arXiv 2410.22269).

This file depends on torch and the standard library only: copy it into your own project.

## The math

Let $d$ = `dim_input`, $m$ = `dim_output` (number of bins) and $N$ = `num_frequencies`.

1. A linear layer maps $x \in \mathbb{R}^d$ to $2(N+1)$ reals: the first $N+1$ are the real parts,
   the last $N+1$ the imaginary parts of $a = (a_0, \dots, a_N) \in \mathbb{C}^{N+1}$.
   Its weight and bias are divided by `init_denominator_weight` / `init_denominator_bias` at
   construction, so training starts from an almost uniform density.
2. The autocorrelation $c_k = \sum_j a_{j+k}\,\overline{a_j}$ for $k = 0..N$; $c_0 = \|a\|^2 > 0$.
3. The density
   $$p(z) = \tfrac12 + \mathrm{Re} \sum_{k=1}^{N} \frac{c_k}{c_0}\, e^{i\pi k z}
          = \frac{\bigl|\sum_{j=0}^{N} a_j e^{i\pi j z}\bigr|^2}{2\,c_0},$$
   which is non-negative and integrates to one on $[-1, 1]$ (Fejér–Riesz: a trigonometric polynomial
   that is a squared modulus).
4. It is evaluated at the $m$ bin centres $z_i = -1 + (2i+1)/m$ and divided by its sum over bins:
   a PMF $y$. The layer returns $\log(y + \varepsilon)$, $\varepsilon$ = `const_inverse_softmax`, so
   `cross_entropy` / `softmax` downstream work unchanged (softmax of the output is
   $(y + \varepsilon) / (1 + m\varepsilon)$: with $m = 4096$ that is a ~4% uniform floor; the reference
   does the same and we keep it for comparability).
5. Regulariser (reference definition), stored as `loss_regularization` after each forward; **the
   caller must add it to its loss**:
   $$\mathcal{L}_{reg} = \gamma \cdot 2 \cdot \mathrm{mean}_{batch} \sum_{k=0}^{N} 2\pi^2 k^2 |c_k|^2 .$$
   On the unnormalised $c_k$ it is not scale invariant (shrinking $\|a\|$ leaves the density unchanged
   and the penalty ~0), so `regularization="normalized"` offers the same sum over $\hat c_k = c_k/c_0$.

## Why this implementation is fast

Step 3 says the PMF is $|E a|^2$ normalised over bins, with $E_{ij} = e^{i\pi j z_i}$: the
autocorrelation is not needed for the forward pass at all. On the uniform bin grid
$e^{i\pi j z_i} = (-1)^j e^{i\pi j/m} \cdot e^{2\pi i\,ij/m}$, so $Ea$ is a single length-$m$ DFT of the
twisted vector $b_j = (-1)^j e^{i\pi j/m} a_j$ (aliased modulo $m$ when $N+1 > m$). For few
frequencies or few bins a real matrix product with the precomputed cos/sin basis is cheaper; the
choice is made per shape (`pmf_method="auto"`). Neither path builds the (batch, bins, frequencies)
tensor nor the grouped convolution of the reference. The autocorrelation (for the regulariser and
`fourier_coefficients`) is one zero-padded FFT, computed only when asked for.

The backward pass is written by hand (`_LogPMF`): for large shapes it recomputes E a rather than
storing it, so the head keeps little more memory alive than a linear head of the same output size; for
small shapes, where kernel launches cost more than memory, it keeps E a. With TF32 matmuls
enabled (`torch.backends.cuda.matmul.allow_tf32`), the matrix-product path computes in TF32 like the
rest of the model; the FFT path does not use TF32.

On a GPU with Triton installed (float32 parameters), the work is fused, with the same numbers as the
eager path to about 1e-6 relative: for small shapes (few bins and frequencies, the
toy and Decision-Transformer heads) the whole head, linear layer and regulariser included, is one
autograd node whose forward is one kernel and whose backward is one kernel (which also writes the
input's gradient) plus the weight's matrix product and the bias's row sum, as many launches as a linear
head, because there the time goes to launching kernels (the kernels are launched through their compiled
launchers, skipping Triton's per-call argument binding); for large shapes E a comes from one cuFFT call
between a "twist" and an "untwist" kernel, and |Ea|^2, the row sums and the log (forward) or the
gradient (backward) are one pass each. Without Triton, on a CPU, if a kernel fails to compile, or with the environment
variable `FOURIER_HEAD_FUSED=0`, the eager path runs. Inside `torch.compile` the head is written in
plain differentiable ops instead, which the compiler traces, differentiates and fuses itself.

All of this runs in float32 (or float64 if the parameters are float64), also under autocast:
complex half precision does not exist and $1/c_0$ with the tiny initialisation overflows in fp16.

## Contents

- `Fourier_Head`: the classification head (alias `FourierHead`).
- `Fourier_Head_MLE` and `FourierDensity`: the continuous variant (pdf, closed-form CDF, sampling).
- `smoothness`: the paper's smoothness metric, batched, on any device.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import warnings
from typing import Optional

import torch
from torch import nn

__all__ = [
    "Fourier_Head",
    "FourierHead",
    "Fourier_Head_MLE",
    "FourierDensity",
    "smoothness",
    "autocorrelate",
    "fourier_penalty",
    "bin_centers",
]


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

def bin_centers(num_bins: int, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Centres of `num_bins` equal-width bins on [-1, 1], shape (num_bins,)."""
    i = torch.arange(num_bins, dtype=dtype, device=device)
    return -1.0 + (2.0 * i + 1.0) / num_bins


_FFT_LENGTHS: dict = {}  # a plain dict rather than functools.lru_cache, which torch.compile warns about


def _fft_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c 7^d >= n: FFT libraries are several times slower on lengths with large
    prime factors (2N + 1 = 1101 = 3 * 367 at N = 550)."""
    if n not in _FFT_LENGTHS:
        _FFT_LENGTHS[n] = _smooth_length(n)
    return _FFT_LENGTHS[n]


def _smooth_length(n: int) -> int:
    best, p2 = 1 << max(0, n - 1).bit_length(), 1
    while p2 < best:
        p3 = p2
        while p3 < best:
            p5 = p3
            while p5 < best:
                p7 = p5
                while p7 < n:
                    p7 *= 7
                best = min(best, p7)
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return best


def autocorrelate(a: torch.Tensor) -> torch.Tensor:
    """Autocorrelation c_k = sum_j a_{j+k} conj(a_j), k = 0..N, by one zero-padded FFT.

    Parameters
    ----------
    a : complex tensor, shape (..., N+1)

    Returns
    -------
    complex tensor, shape (..., N+1); c_0 is real and equals ||a||^2.
    """
    n = a.shape[-1]
    length = _fft_length(2 * n - 1)  # no circular wrap-around for lags 0..N
    spectrum = torch.fft.fft(a, n=length, dim=-1)
    return torch.fft.ifft(spectrum.real.square() + spectrum.imag.square(), dim=-1)[..., :n]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else (bf16, fp16, fp32) computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def _float32_region(x: torch.Tensor):
    """Autocast off (the head's math needs float32), entered only when autocast is on."""
    if _autocast_on(x.device.type):
        return torch.autocast(device_type=x.device.type, enabled=False)
    return contextlib.nullcontext()


def _check_input(x: torch.Tensor, dim_input: int, who: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{who} expects a floating-point input, got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != dim_input:
        got = "a scalar" if x.dim() == 0 else f"last dimension {x.shape[-1]} (shape {tuple(x.shape)})"
        raise ValueError(f"{who} expected input with last dimension dim_input={dim_input}, got {got}")


def _resolve_gamma(regularizion_gamma: float, regularization_gamma: Optional[float]) -> float:
    if regularization_gamma is not None:
        if regularizion_gamma not in (0, 0.0) and regularizion_gamma != regularization_gamma:
            raise ValueError("pass only one of regularizion_gamma (reference spelling) and "
                             "regularization_gamma, or the same value to both")
        return float(regularization_gamma)
    return float(regularizion_gamma)


def fourier_penalty(c: torch.Tensor, normalized: bool = False) -> torch.Tensor:
    """Per-row smoothness penalty sum_{k=0..N} 2 pi^2 k^2 |c_k|^2 (on c_k / c_0 if `normalized`).

    Parameters
    ----------
    c : complex tensor, shape (..., N+1), the autocorrelation (see `autocorrelate`).

    Returns
    -------
    tensor, shape (...). The head's `loss_regularization` is gamma * 2 * mean over rows of this.
    """
    if normalized:
        c = c / c[..., :1].real
    k = torch.arange(c.shape[-1], dtype=c.real.dtype, device=c.device)
    weights = 2.0 * math.pi ** 2 * k.square()
    return (weights * (c.real.square() + c.imag.square())).sum(dim=-1)


def _regularization_loss(c: torch.Tensor, gamma: float, normalized: bool) -> torch.Tensor:
    """gamma * 2 * mean_batch( sum_k 2 pi^2 k^2 |c_k|^2 ), the reference definition.  c: (B, N+1)."""
    return gamma * 2.0 * fourier_penalty(c, normalized).mean()


def _compiling() -> bool:
    """Inside `torch.compile`: the compiler gets plain ops, which it fuses itself (it cannot trace the
    Triton launches, and the hand-written backward would hide the work from it)."""
    is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(is_compiling and is_compiling())


def _plain_linear(fc: nn.Module) -> bool:
    """An nn.Linear with no hooks: the head may then compute it itself (in float32, or fused)."""
    return (type(fc) is nn.Linear and not (fc._forward_hooks or fc._forward_pre_hooks)
            and not (nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks))


class _AutocorrelationParams(nn.Module):
    """The shared first step of both heads: x (..., d) -> complex a (B, N+1) in float32/float64."""

    def _init_linear(self, dim_input, num_frequencies, init_denominator_weight,
                     init_denominator_bias, dtype, device):
        # The reference's parameter names, so its state dicts load unchanged.
        self.fc_extract_autocorrelation_params = nn.Linear(
            dim_input, 2 * (num_frequencies + 1), dtype=dtype, device=device)
        with torch.no_grad():
            self.fc_extract_autocorrelation_params.weight.div_(init_denominator_weight)
            self.fc_extract_autocorrelation_params.bias.div_(init_denominator_bias)

    def _linear_params(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., d) -> [Re a, Im a] (B, 2(N+1)) real, B = prod(leading dims); autocast must be off."""
        fc = self._modules["fc_extract_autocorrelation_params"]
        x = x if x.dim() == 2 else x.reshape(-1, x.shape[-1])
        if not _plain_linear(fc):  # hooks or a replaced layer (e.g. LoRA): call it as it is
            dtype = _compute_dtype(next(fc.parameters()).dtype)
            return fc(x.to(dtype)).to(dtype)
        weight, bias = fc._parameters["weight"], fc._parameters["bias"]
        dtype = _compute_dtype(weight.dtype)
        return nn.functional.linear(_as_dtype(x, dtype), _as_dtype(weight, dtype), _as_dtype(bias, dtype))

    def _autocorrelation_params(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., d) -> a (B, N+1) complex."""
        return _as_complex(self._linear_params(x))


def _as_dtype(t: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[torch.Tensor]:
    """t.to(dtype), without the call (microseconds on the small heads' launch path) when it is a no-op."""
    return t if t is None or t.dtype == dtype else t.to(dtype)


def _as_complex(params: torch.Tensor) -> torch.Tensor:
    """[Re a, Im a] (B, 2n) -> a (B, n) complex (the reference's non-interleaved layout)."""
    n = params.shape[-1] // 2
    return torch.complex(params[:, :n], params[:, n:])


# ------------------------------------------------------------------------------------------------
# the core: [Re a, Im a] -> log pmf, with a hand-written backward
# ------------------------------------------------------------------------------------------------

def _bin_values(params: torch.Tensor, const: torch.Tensor, m: int, method: str) -> torch.Tensor:
    """E a at the m bin centres. matmul: real (B, 2m) = [Re, Im]; fft: complex (B, m)."""
    if method == "matmul":
        return params @ const  # const = the (2n, 2m) cos/sin basis
    n = params.shape[-1] // 2
    # b_j = (-1)^j e^{i pi j/m} a_j turns E a into one length-m DFT; const = (n, 2) twiddles
    b = torch.complex(params[:, :n], params[:, n:]) * torch.view_as_complex(const)
    if n > m:  # alias frequencies j and j + m: pad to a multiple of m and fold
        b = nn.functional.pad(b, (0, (-n) % m)).reshape(b.shape[0], -1, m).sum(dim=1)
    return torch.fft.ifft(b, n=m, dim=-1, norm="forward")  # sum_j b_j e^{+2 pi i ij/m}


def _squared_modulus(values: torch.Tensor, m: int) -> torch.Tensor:
    """|E a|^2 (B, m) from `_bin_values`."""
    if values.requires_grad:  # autograd path: differentiable everywhere (|z| is not at z = 0)
        parts = torch.view_as_real(values) if values.is_complex() else values.view(-1, 2, m).transpose(1, 2)
        return parts.square().sum(dim=-1)
    if values.is_complex():
        return values.abs().square_()
    return values.view(-1, 2, m).square_().sum(dim=1)


def _bin_values_adjoint(grad_values: torch.Tensor, const: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """The adjoint of `_bin_values`: gradient w.r.t. values -> gradient w.r.t. params (B, 2n)."""
    if not grad_values.is_complex():
        return grad_values @ const.T
    g = torch.fft.fft(grad_values, dim=-1)  # adjoint of the unnormalised inverse DFT
    if n > m:  # the folded entry's gradient goes to every frequency folded into it
        g = g.repeat(1, -(-n // m))
    g = g[:, :n] * torch.view_as_complex(const).conj()
    return torch.cat([g.real, g.imag], dim=-1)


# -- optional fused kernels (Triton) --------------------------------------------------------------
# Everything between E a and the output (|Ea|^2, the row sum, log(pmf + eps)) and, in the backward,
# between the output gradient and d loss / d(E a), is elementwise work plus one row reduction. Eager
# PyTorch spends one kernel launch and one pass over a (B, m) tensor on each of some ten steps; on a
# GPU with Triton each direction is one kernel that reads E a once and writes its result once.

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the eager path is used, with the same numbers
    triton = None
try:
    from triton import knobs as _triton_knobs  # Triton >= 3.4
except ImportError:
    _triton_knobs = None

FUSED_MAX_BINS = 1 << 14  # one row is reduced inside one program; larger m uses the eager path
_fused_state = {"enabled": os.environ.get("FOURIER_HEAD_FUSED", "1") != "0"}  # FOURIER_HEAD_FUSED=0: eager only


def _values_strides(values: torch.Tensor, m: int):
    """(row stride, column stride, offset of the imaginary part) of E a's storage, counted in floats."""
    if values.is_complex():  # (B, m) complex: interleaved re, im (`_launch` passes it as float32)
        return 2 * m, 2, 1
    return 2 * m, 1, m  # (B, 2m) real: [Re | Im]


def _use_fused(params: torch.Tensor, m: int) -> bool:
    if triton is None or not _fused_state["enabled"] or params.dtype != torch.float32 or m > FUSED_MAX_BINS:
        return False
    # TRITON_INTERPRET=1 runs the kernels on CPU tensors (slowly): that is how the tests check them.
    return params.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"


def _disable_fused(error: Exception) -> None:
    """Graceful fallback: a kernel that fails to compile or launch switches to the eager path for good."""
    _fused_state["enabled"] = False
    warnings.warn(f"fourier_head: fused Triton kernels disabled, using the eager path ({error!r})")


# Plain-Python versions of triton.next_power_of_2 / triton.cdiv: Triton's own are jit-wrapped and cost
# microseconds a call, which adds up on the launch path of small heads.
def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def _cdiv(a: int, b: int) -> int:
    return -(-int(a) // int(b))


# Launching through `kernel[grid](...)` binds and specialises every argument in Python, and Triton's
# launcher asks the CUDA driver about every tensor's pointer (cuPointerGetAttribute): on the small heads,
# where the GPU waits for the CPU, that is a good part of the step. `_launch` keeps the compiled kernels
# itself, keyed by everything Triton specialises on (argument dtypes, 16-byte alignment of pointers,
# integers equal to 1 or divisible by 16, 64-bit integers) and the constexprs, and calls the compiled
# launcher with raw pointers (live tensors on the current device, so nothing needs checking). Triton < 3.4
# (other launcher arguments) and CPU tensors (the interpreter) take the ordinary path, and so does every
# launch if a launch hook (a Triton profiler) was installed before the kernel's first launch.
_compiled_kernels = {}
_DIRECT_LAUNCH = _triton_knobs is not None and os.environ.get("TRITON_INTERPRET") != "1"


def _launch_hooked() -> bool:
    """Whether a launch hook is installed (Triton >= 3.5 keeps an empty HookChain there by default)."""
    hooks = (_triton_knobs.runtime.launch_enter_hook, _triton_knobs.runtime.launch_exit_hook)
    return any(hook is not None and getattr(hook, "calls", True) for hook in hooks)


def _real_views(args):
    """Complex tensors as their float view (interleaved re, im): Triton has no complex dtype."""
    return [torch.view_as_real(a) if isinstance(a, torch.Tensor) and a.is_complex() else a for a in args]


def _launch(kernel, grid, args, constexprs, num_warps: int) -> None:
    """kernel[grid](*args, **constexprs, num_warps=num_warps); constexprs in the kernel's parameter order.
    A complex tensor is passed as a pointer to its floats."""
    if not (_DIRECT_LAUNCH and args[0].is_cuda):
        kernel[grid](*_real_views(args), **constexprs, num_warps=num_warps)
        return
    raw = [a.data_ptr() if isinstance(a, torch.Tensor) else a for a in args]
    # Finer than Triton's own specialisation (exact integers, pointers mod 16), so never a wrong kernel;
    # a new batch size is one miss.
    key = (kernel, num_warps, torch.cuda.current_device(), *constexprs.values(),
           *[(a.dtype, r & 15) if isinstance(a, torch.Tensor) else r for a, r in zip(args, raw)])
    compiled = _compiled_kernels.get(key)
    if compiled is None:  # compile (and launch) through the JIT once; keep what it returns
        compiled = kernel[grid](*_real_views(args), **constexprs, num_warps=num_warps)
        if hasattr(compiled, "packed_metadata") and not _launch_hooked():
            if len(_compiled_kernels) >= 4096:  # e.g. a batch size that changes every step
                _compiled_kernels.clear()
            _compiled_kernels[key] = compiled
        return
    compiled.run(grid[0], grid[1] if len(grid) > 1 else 1, 1, torch._C._cuda_getCurrentRawStream(key[2]),
                 compiled.function, compiled.packed_metadata, None, None, None, *raw, *constexprs.values())


def _launch_shape(rows: int, m: int):
    block = _pow2(m)
    per_program = max(1, min(64, 4096 // block))  # several short rows per program
    return (_cdiv(rows, per_program),), per_program, block, (4 if block <= 2048 else 8 if block <= 8192 else 16)


if triton is not None:
    @triton.jit
    def _load_complex(ptr, offset, v_im, mask):
        # (re, im) at `offset` and `offset + v_im`. For interleaved storage (v_im = 1) these are two
        # stride-2 loads of the same cache lines: measured on an H100 at (2048, 4096) complex, 8x faster
        # than one contiguous load of the pairs followed by a reshape and split (a register shuffle).
        return tl.load(ptr + offset, mask=mask, other=0.0), tl.load(ptr + offset + v_im, mask=mask, other=0.0)

    @triton.jit
    def _store_complex(ptr, offset, v_im, mask, re, im):
        tl.store(ptr + offset, re, mask=mask)
        tl.store(ptr + offset + v_im, im, mask=mask)

    @triton.jit
    def _log_pmf_fwd_kernel(values, out, total, rows, m, v_row, v_col, v_im, eps,
                            ROWS: tl.constexpr, BLOCK: tl.constexpr):
        r = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
        i = tl.arange(0, BLOCK)
        row_ok = r < rows
        mask = row_ok[:, None] & (i < m)[None, :]
        r64 = r.to(tl.int64)[:, None]
        re, im = _load_complex(values, r64 * v_row + i[None, :] * v_col, v_im, mask)
        power = re * re + im * im
        tot = tl.sum(power, axis=1)
        tot_safe = tl.where(row_ok, tot, 1.0)
        y = tl.log(power / tot_safe[:, None] + eps)
        tl.store(out + r64 * m + i[None, :], y, mask=mask)
        tl.store(total + r, tot, mask=row_ok)

    @triton.jit
    def _log_pmf_bwd_kernel(grad_out, values, grad_values, total, rows, m, v_row, v_col, v_im, eps,
                            ROWS: tl.constexpr, BLOCK: tl.constexpr):
        r = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
        i = tl.arange(0, BLOCK)
        row_ok = r < rows
        mask = row_ok[:, None] & (i < m)[None, :]
        r64 = r.to(tl.int64)[:, None]
        offset = r64 * v_row + i[None, :] * v_col
        re, im = _load_complex(values, offset, v_im, mask)
        g = tl.load(grad_out + r64 * m + i[None, :], mask=mask, other=0.0)
        tot = tl.load(total + r, mask=row_ok, other=1.0)
        pmf = (re * re + im * im) / tot[:, None]
        grad_pmf = g / (pmf + eps)
        dot = tl.sum(pmf * grad_pmf, axis=1)
        scale = 2.0 * (grad_pmf - dot[:, None]) / tot[:, None]  # d loss / d |Ea|^2, times 2
        _store_complex(grad_values, offset, v_im, mask, re * scale, im * scale)


    @triton.jit
    def _penalty_kernel(coeffs, grad, penalty, n, scale, NP: tl.constexpr):
        # One row: c_k = sum_j a_{j+k} conj(a_j), penalty = sum_k w_k |c_k|^2 with w_k = 2 pi^2 k^2, and
        # its gradient, d/d conj(a_p) = sum_k w_k (conj(c_k) a_{p+k} + c_k a_{p-k}), as (NP, NP) tiles.
        row = tl.program_id(0).to(tl.int64)
        base = coeffs + row * 2 * n
        k = tl.arange(0, NP)
        j = tl.arange(0, NP)
        ok = j < n
        re = tl.load(base + j, mask=ok, other=0.0)
        im = tl.load(base + n + j, mask=ok, other=0.0)
        shift = k[:, None] + j[None, :]                      # a_{j+k} at [k, j]
        s_ok = shift < n
        s_re = tl.load(base + shift, mask=s_ok, other=0.0)
        s_im = tl.load(base + n + shift, mask=s_ok, other=0.0)
        c_re = tl.sum(s_re * re[None, :] + s_im * im[None, :], axis=1)
        c_im = tl.sum(s_im * re[None, :] - s_re * im[None, :], axis=1)
        w = 2.0 * 3.141592653589793 * 3.141592653589793 * (k * k).to(tl.float32)
        tl.store(penalty + row, scale * tl.sum(w * (c_re * c_re + c_im * c_im), axis=0))
        u_re = w * c_re
        u_im = w * c_im
        p = tl.arange(0, NP)
        up = p[:, None] + k[None, :]                         # a_{p+k} at [p, k]
        up_ok = up < n
        dn = p[:, None] - k[None, :]                         # a_{p-k} at [p, k]
        dn_ok = (dn >= 0) & (p[:, None] < n)
        a1_re = tl.load(base + up, mask=up_ok, other=0.0)
        a1_im = tl.load(base + n + up, mask=up_ok, other=0.0)
        a2_re = tl.load(base + dn, mask=dn_ok, other=0.0)
        a2_im = tl.load(base + n + dn, mask=dn_ok, other=0.0)
        ur = u_re[None, :]
        ui = u_im[None, :]
        # conj(u) a1 + u a2
        g_re = tl.sum(ur * a1_re + ui * a1_im + ur * a2_re - ui * a2_im, axis=1)
        g_im = tl.sum(ur * a1_im - ui * a1_re + ur * a2_im + ui * a2_re, axis=1)
        out = grad + row * 2 * n
        tl.store(out + p, 2.0 * scale * g_re, mask=p < n)
        tl.store(out + n + p, 2.0 * scale * g_im, mask=p < n)

    @triton.jit
    def _small_coeffs(x, x_row, x_col, weight, w_row, w_col, bias, r, row_ok, d, n2,
                      R: tl.constexpr, BK: tl.constexpr, BD: tl.constexpr):
        # the linear layer for R rows, x (R, d) @ W^T (d, 2n) + b, in fp32, over d in chunks of BD
        k = tl.arange(0, BK)
        k_ok = k < n2
        x_rows = x + r.to(tl.int64)[:, None] * x_row
        acc = tl.zeros((R, BK), dtype=tl.float32)
        for d0 in range(0, d, BD):
            c = d0 + tl.arange(0, BD)
            c_ok = c < d
            x_tile = tl.load(x_rows + c[None, :] * x_col, mask=row_ok[:, None] & c_ok[None, :], other=0.0)
            w_tile = tl.load(weight + k[None, :] * w_row + c[:, None] * w_col, mask=c_ok[:, None] & k_ok[None, :],
                             other=0.0)
            acc += tl.dot(x_tile, w_tile, input_precision="ieee")
        return acc + tl.load(bias + k, mask=k_ok, other=0.0)[None, :]

    @triton.jit
    def _small_values(a, basis, n2, m, BK: tl.constexpr, BM: tl.constexpr):
        # E a for a tile of coefficients a (R, 2n) by two products with the (2n, 2m) cos/sin basis
        k = tl.arange(0, BK)
        i = tl.arange(0, BM)
        b_mask = (k < n2)[:, None] & (i < m)[None, :]
        b_re = tl.load(basis + k[:, None] * 2 * m + i[None, :], mask=b_mask, other=0.0)
        b_im = tl.load(basis + k[:, None] * 2 * m + m + i[None, :], mask=b_mask, other=0.0)
        re = tl.dot(a, b_re, input_precision="ieee")
        im = tl.dot(a, b_im, input_precision="ieee")
        return re, im, b_re, b_im

    @triton.jit
    def _small_fwd_kernel(x, x_row, x_col, weight, w_row, w_col, bias, basis, out, coeffs, rows, d, n2, m, eps,
                          R: tl.constexpr, BK: tl.constexpr, BM: tl.constexpr, BD: tl.constexpr,
                          STORE_COEFFS: tl.constexpr):
        r = tl.program_id(0) * R + tl.arange(0, R)
        row_ok = r < rows
        a = _small_coeffs(x, x_row, x_col, weight, w_row, w_col, bias, r, row_ok, d, n2, R, BK, BD)
        if STORE_COEFFS:  # for the regulariser's kernel
            k = tl.arange(0, BK)
            tl.store(coeffs + r.to(tl.int64)[:, None] * n2 + k[None, :], a, mask=row_ok[:, None] & (k < n2)[None, :])
        re, im, b_re, b_im = _small_values(a, basis, n2, m, BK, BM)
        i = tl.arange(0, BM)
        power = re * re + im * im
        tot = tl.where(row_ok, tl.sum(power, axis=1), 1.0)
        y = tl.log(power / tot[:, None] + eps)
        tl.store(out + r.to(tl.int64)[:, None] * m + i[None, :], y, mask=row_ok[:, None] & (i < m)[None, :])

    @triton.jit
    def _small_bwd_kernel(x, x_row, x_col, weight, w_row, w_col, bias, basis, grad_out, g_row, g_col,
                          grad_coeffs_t, grad_x, reg_grad, reg_weight, rows, d, n2, m, eps,
                          R: tl.constexpr, BK: tl.constexpr, BM: tl.constexpr, BD: tl.constexpr,
                          HAS_REG: tl.constexpr, GRAD_X: tl.constexpr):
        # recomputes the coefficients and E a (cheaper than a launch to keep them), writes d loss / d coeffs
        # transposed, (2n, B), ready for the weight's gradient, and, if asked, d loss / d x = (d loss / d coeffs) W
        r = tl.program_id(0) * R + tl.arange(0, R)
        row_ok = r < rows
        r64 = r.to(tl.int64)[:, None]
        i = tl.arange(0, BM)
        k = tl.arange(0, BK)
        k_ok = k < n2
        a = _small_coeffs(x, x_row, x_col, weight, w_row, w_col, bias, r, row_ok, d, n2, R, BK, BD)
        re, im, b_re, b_im = _small_values(a, basis, n2, m, BK, BM)
        power = re * re + im * im
        tot = tl.where(row_ok, tl.sum(power, axis=1), 1.0)
        pmf = power / tot[:, None]
        g = tl.load(grad_out + r64 * g_row + i[None, :] * g_col, mask=row_ok[:, None] & (i < m)[None, :], other=0.0)
        grad_pmf = g / (pmf + eps)
        scale = 2.0 * (grad_pmf - tl.sum(pmf * grad_pmf, axis=1)[:, None]) / tot[:, None]
        grad = (tl.dot(re * scale, tl.trans(b_re), input_precision="ieee")
                + tl.dot(im * scale, tl.trans(b_im), input_precision="ieee"))
        offset = r64 * n2 + k[None, :]
        mask = row_ok[:, None] & k_ok[None, :]
        if HAS_REG:  # the regulariser's gradient, computed in the forward, times d loss / d regulariser
            grad += tl.load(reg_grad + offset, mask=mask, other=0.0) * tl.load(reg_weight)
        tl.store(grad_coeffs_t + k[None, :].to(tl.int64) * rows + r[:, None], grad, mask=mask)
        if GRAD_X:
            grad = tl.where(mask, grad, 0.0)
            for d0 in range(0, d, BD):
                c = d0 + tl.arange(0, BD)
                c_ok = c < d
                w_tile = tl.load(weight + k[:, None] * w_row + c[None, :] * w_col, mask=k_ok[:, None] & c_ok[None, :],
                                 other=0.0)
                tl.store(grad_x + r64 * d + c[None, :], tl.dot(grad, w_tile, input_precision="ieee"),
                         mask=row_ok[:, None] & c_ok[None, :])

    @triton.jit
    def _twist_kernel(coeffs, twiddle, b, rows, n, m, R: tl.constexpr, BM: tl.constexpr):
        # b_i = sum over j = i (mod m) of (-1)^j e^{i pi j/m} a_j: E a is then one inverse DFT of b
        r = tl.program_id(0) * R + tl.arange(0, R)
        i = tl.program_id(1) * BM + tl.arange(0, BM)
        row_ok = (r < rows)[:, None]
        r64 = r.to(tl.int64)[:, None]
        acc_re = tl.zeros((R, BM), dtype=tl.float32)
        acc_im = tl.zeros((R, BM), dtype=tl.float32)
        for fold in range(0, tl.cdiv(n, m)):
            j = i + fold * m
            ok = (i < m) & (j < n)
            t_re = tl.load(twiddle + 2 * j, mask=ok, other=0.0)[None, :]
            t_im = tl.load(twiddle + 2 * j + 1, mask=ok, other=0.0)[None, :]
            a_re = tl.load(coeffs + r64 * 2 * n + j[None, :], mask=row_ok & ok[None, :], other=0.0)
            a_im = tl.load(coeffs + r64 * 2 * n + n + j[None, :], mask=row_ok & ok[None, :], other=0.0)
            acc_re += a_re * t_re - a_im * t_im
            acc_im += a_re * t_im + a_im * t_re
        _store_complex(b, r64 * 2 * m + 2 * i[None, :], 1, row_ok & (i < m)[None, :], acc_re, acc_im)

    @triton.jit
    def _untwist_kernel(spectrum, twiddle, grad_coeffs, rows, n, m, R: tl.constexpr, BN: tl.constexpr):
        # the adjoint of the twist: d/d a_j = conj(twiddle_j) * spectrum_(j mod m), split into [Re | Im]
        r = tl.program_id(0) * R + tl.arange(0, R)
        j = tl.program_id(1) * BN + tl.arange(0, BN)
        ok = j < n
        mask = (r < rows)[:, None] & ok[None, :]
        r64 = r.to(tl.int64)[:, None]
        g_re, g_im = _load_complex(spectrum, r64 * 2 * m + 2 * (j % m)[None, :], 1, mask)
        t_re = tl.load(twiddle + 2 * j, mask=ok, other=0.0)[None, :]
        t_im = tl.load(twiddle + 2 * j + 1, mask=ok, other=0.0)[None, :]
        dst = grad_coeffs + r64 * 2 * n + j[None, :]
        tl.store(dst, g_re * t_re + g_im * t_im, mask=mask)
        tl.store(dst + n, g_im * t_re - g_re * t_im, mask=mask)


def _fused_log_pmf(values: torch.Tensor, out: torch.Tensor, total: torch.Tensor, m: int, eps: float) -> None:
    """out (B, m) = log(|Ea|^2 / total + eps), total (B,) = row sums of |Ea|^2, from E a (`_bin_values`)."""
    v_row, v_col, v_im = _values_strides(values, m)
    grid, per_program, block, warps = _launch_shape(out.shape[0], m)
    _launch(_log_pmf_fwd_kernel, grid, (values, out, total, out.shape[0], m, v_row, v_col, v_im, eps),
            dict(ROWS=per_program, BLOCK=block), warps)


FUSED_MAX_PENALTY_COEFFS = 64  # the fused regulariser builds (N+1)^2 tiles per row


class _FusedPenalty(torch.autograd.Function):
    """The reference regulariser gamma * 2 * mean_rows sum_k 2 pi^2 k^2 |c_k|^2 from params [Re a, Im a]
    (B, 2n), as one kernel for small n that also writes the gradient, so the backward is one multiply."""

    @staticmethod
    def forward(ctx, params, gamma: float):
        rows, n = params.shape[0], params.shape[1] // 2
        grad = torch.empty_like(params)
        penalty = params.new_empty(rows)
        _launch(_penalty_kernel, (rows,), (params, grad, penalty, n, 2.0 * gamma / rows),
                dict(NP=max(16, _pow2(n))), 4)
        ctx.save_for_backward(grad)
        return penalty.sum()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        (grad,) = ctx.saved_tensors
        return grad * grad_loss, None


class _SpectralPenalty(torch.autograd.Function):
    """The same regulariser for any n, by FFTs of length L >= 2n - 1 with a hand-written backward: about
    half the kernel launches of autograd through `autocorrelate` + `fourier_penalty`.

    A = FFT_L(a), S = |A|^2, R = FFT_L(S)[:n] = L conj(c) (S is real), penalty = scale sum_k w_k |R_k|^2.
    Backward (gradients of a real loss w.r.t. complex z written dRe + i dIm): dR = 2 scale w R,
    dS = Re(L IFFT_L(dR)), dA = 2 dS A, da = L IFFT_L(dA)[:n]."""

    @staticmethod
    def forward(ctx, params, gamma: float):
        rows, n = params.shape[0], params.shape[1] // 2
        length = _fft_length(2 * n - 1)
        spectrum = torch.fft.fft(torch.complex(params[:, :n], params[:, n:]), n=length, dim=-1)
        r = torch.fft.rfft(torch.view_as_real(spectrum).square().sum(dim=-1), dim=-1)[:, :n]
        k = torch.arange(n, dtype=params.dtype, device=params.device)
        weights = k.square_().mul_(2.0 * math.pi ** 2 * 2.0 * gamma / (rows * length ** 2))
        ctx.save_for_backward(spectrum, r, weights)
        return (torch.view_as_real(r).square().sum(dim=-1) @ weights).sum()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        spectrum, r, weights = ctx.saved_tensors
        n, length = r.shape[-1], spectrum.shape[-1]
        grad_r = r * (weights * (2.0 * length * grad_loss))            # L * dR, folded into one multiply
        grad_s = torch.fft.ifft(grad_r, n=length, dim=-1).real         # dS
        grad_a = torch.fft.ifft(spectrum * (2.0 * length) * grad_s, dim=-1)[:, :n]   # da
        return torch.cat([grad_a.real, grad_a.imag], dim=-1), None


def _regularizer(params: torch.Tensor, gamma: float, normalized: bool) -> torch.Tensor:
    """The head's `loss_regularization` from params [Re a, Im a] (B, 2n)."""
    n = params.shape[-1] // 2
    if normalized or params.shape[0] == 0:
        return _regularization_loss(autocorrelate(_as_complex(params)), gamma, normalized)
    if n <= FUSED_MAX_PENALTY_COEFFS and _use_fused(params, 0):
        try:
            return _FusedPenalty.apply(params, gamma)
        except Exception as error:  # noqa: BLE001
            _disable_fused(error)
    return _SpectralPenalty.apply(params, gamma)


def _traceable_regularizer(params: torch.Tensor, gamma: float, normalized: bool) -> torch.Tensor:
    """`_regularizer` for torch.compile: for few frequencies c_k in real arithmetic from (B, n, n)
    shifted copies, which the compiler fuses (it generates no code for complex ops); else the FFT."""
    n = params.shape[-1] // 2
    if n > FUSED_MAX_PENALTY_COEFFS:
        return _regularization_loss(autocorrelate(_as_complex(params)), gamma, normalized)
    u, v = params[:, :n], params[:, n:]
    su, sv = (nn.functional.pad(t, (0, n)).unfold(-1, n, 1)[:, :n] for t in (u, v))  # [b, k, j] = t_{j+k}
    c_re = (su * u[:, None] + sv * v[:, None]).sum(dim=-1)
    c_im = (sv * u[:, None] - su * v[:, None]).sum(dim=-1)
    if normalized:
        c_re, c_im = c_re / c_re[:, :1], c_im / c_re[:, :1]
    k = torch.arange(n, dtype=params.dtype, device=params.device)
    penalty = (2.0 * math.pi ** 2 * k.square() * (c_re.square() + c_im.square())).sum(dim=-1)
    return gamma * 2.0 * penalty.mean()


# The whole head (linear layer, E a, log pmf and the regulariser) as one autograd node, for the small
# shapes where the time goes to launching kernels (few bins and few frequencies): the forward is one kernel
# (two with the regulariser), the backward one kernel that also writes d loss / d x, plus cuBLAS for the
# weight's gradient and a row sum for the bias's. A linear head launches as many.
SMALL_ROWS = 32


def _small_tiles(n2: int, m: int):
    """(BK, BM) tile sizes of the small fused path, or None when the shape does not fit it."""
    bk, bm = max(16, _pow2(n2)), max(16, _pow2(m))
    return (bk, bm) if bk * bm <= 8192 else None


class _SmallHead(torch.autograd.Function):
    """x (B, d), weight (2n, d), bias (2n,) -> log pmf (B, m) [and the regulariser, if gamma > 0]."""

    @staticmethod
    def forward(ctx, x, weight, bias, basis, m: int, eps: float, gamma: float):
        (rows, d), n2 = x.shape, weight.shape[0]
        bk, bm = _small_tiles(n2, m)
        bd = min(64, max(16, _pow2(d)))
        out = x.new_empty(rows, m)
        coeffs = x.new_empty(rows, n2) if gamma != 0 else out
        _launch(_small_fwd_kernel, (_cdiv(rows, SMALL_ROWS),),
                (x, *x.stride(), weight, *weight.stride(), bias, basis, out, coeffs, rows, d, n2, m, eps),
                dict(R=SMALL_ROWS, BK=bk, BM=bm, BD=bd, STORE_COEFFS=gamma != 0), 4)
        reg_grad = reg = None
        if gamma != 0:
            reg_grad = torch.empty_like(coeffs)
            penalty = coeffs.new_empty(rows)
            _launch(_penalty_kernel, (rows,), (coeffs, reg_grad, penalty, n2 // 2, 2.0 * gamma / rows),
                    dict(NP=max(16, _pow2(n2 // 2))), 4)
            reg = penalty.sum()
        ctx.save_for_backward(x, weight, bias, basis, reg_grad)
        ctx.m, ctx.eps, ctx.tiles = m, eps, (bk, bm, bd)
        return out if reg is None else (out, reg)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, grad_reg=None):
        x, weight, bias, basis, reg_grad = ctx.saved_tensors
        (rows, d), n2 = x.shape, weight.shape[0]
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        grad_coeffs_t = x.new_empty(n2, rows)
        grad_x = x.new_empty(rows, d) if need_x else grad_coeffs_t
        has_reg = reg_grad is not None and grad_reg is not None
        bk, bm, bd = ctx.tiles
        _launch(_small_bwd_kernel, (_cdiv(rows, SMALL_ROWS),),
                (x, *x.stride(), weight, *weight.stride(), bias, basis, grad_out, *grad_out.stride(), grad_coeffs_t,
                 grad_x, reg_grad if has_reg else grad_x, grad_reg if has_reg else grad_x,
                 rows, d, n2, ctx.m, ctx.eps),
                dict(R=SMALL_ROWS, BK=bk, BM=bm, BD=bd, HAS_REG=has_reg, GRAD_X=need_x), 4)
        grad_weight = grad_coeffs_t @ x if need_weight else None
        grad_bias = grad_coeffs_t.sum(dim=1) if need_bias else None
        return grad_x if need_x else None, grad_weight, grad_bias, None, None, None, None


def _fused_bin_values(params: torch.Tensor, const: torch.Tensor, m: int, method: str) -> torch.Tensor:
    """`_bin_values` with the FFT path's twist (complex, twiddle, pad and fold) as one kernel."""
    if method == "matmul":
        return params @ const
    rows, n = params.shape[0], params.shape[1] // 2
    b = torch.empty(rows, m, dtype=torch.complex64, device=params.device)
    block = min(1024, _pow2(m))
    _launch(_twist_kernel, (_cdiv(rows, 4), _cdiv(m, block)), (params, const, b, rows, n, m),
            dict(R=4, BM=block), 4)
    return torch.fft.ifft(b, dim=-1, norm="forward")


def _fused_adjoint(grad_values: torch.Tensor, const: torch.Tensor, n: int, m: int,
                   out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """`_bin_values_adjoint` with the FFT path's untwist as one kernel; written into `out` if given."""
    if not grad_values.is_complex():
        return torch.mm(grad_values, const.T, out=out)
    spectrum = torch.fft.fft(grad_values, dim=-1)
    rows = spectrum.shape[0]
    grad = torch.empty(rows, 2 * n, dtype=torch.float32, device=spectrum.device) if out is None else out
    block = min(1024, _pow2(n))
    _launch(_untwist_kernel, (_cdiv(rows, 4), _cdiv(n, block)),
            (spectrum, const, grad, rows, n, m), dict(R=4, BN=block), 4)
    return grad


def _grad_values_eager(grad_out, values, total, m, eps):
    """What `_log_pmf_bwd_kernel` computes, in eager PyTorch (its fallback)."""
    parts = torch.view_as_real(values) if values.is_complex() else values.view(-1, 2, m).transpose(1, 2)
    pmf = parts.square().sum(dim=-1) / total[:, None]
    grad_pmf = grad_out / (pmf + eps)
    scale = (grad_pmf - (pmf * grad_pmf).sum(dim=-1, keepdim=True)) * (2 / total[:, None])
    if values.is_complex():
        return values * scale
    return (values.view(-1, 2, m) * scale[:, None, :]).view(-1, 2 * m)


def _fused_grad_values(grad_out: torch.Tensor, values: torch.Tensor, total: torch.Tensor, m: int,
                       eps: float, into: torch.Tensor) -> torch.Tensor:
    """d loss / d(E a) in the layout of `values`, written into `into` (may be `values` itself)."""
    v_row, v_col, v_im = _values_strides(values, m)
    grid, per_program, block, warps = _launch_shape(grad_out.shape[0], m)
    try:
        _launch(_log_pmf_bwd_kernel, grid, (grad_out, values, into, total, grad_out.shape[0], m, v_row, v_col,
                                            v_im, eps),
                dict(ROWS=per_program, BLOCK=block), warps)
    except Exception as error:  # noqa: BLE001
        _disable_fused(error)
        into.copy_(_grad_values_eager(grad_out, values, total, m, eps))
    return into


def _row_chunks(rows: int, m: int, limit: int):
    """Row ranges whose E a holds at most `limit` real numbers (at least one row each)."""
    step = max(1, limit // (2 * m))
    return [(start, min(rows, start + step)) for start in range(0, rows, step)]


class _LogPMF(torch.autograd.Function):
    """params [Re a, Im a] (B, 2n) -> log(|Ea|^2 / sum_bins |Ea|^2 + eps) (B, m).

    For large shapes the backward recomputes E a (one matmul or FFT) instead of keeping it, so besides
    the small params the only saved tensors are the output, which a cross-entropy keeps alive anyway,
    and the row sums: peak memory stays close to a linear head's. Small shapes keep E a (fewer
    launches). Not twice differentiable, and not usable under `torch.func` transforms (vmap, jacrev):
    for those, compute `torch.log(head.pmf_from_params(params) + eps)`, which is plain autograd.

    With Triton on a GPU (float32, m <= FUSED_MAX_BINS) the elementwise work runs as one fused kernel
    per direction, and large batches are processed in row chunks of at most CHUNK_VALUES numbers of
    E a, so that the only (B, m) tensors alive are the output and its gradient.
    """

    # below this many elements E a is kept for the backward (launches cost more than memory there)
    KEEP_VALUES = 1 << 20
    CHUNK_VALUES = 1 << 24  # the backward uses chunks half this size (see `_backward_fused`)

    @staticmethod
    def forward(ctx, params, const, m: int, eps: float):
        method = "fft" if const.shape[-1] == 2 else "matmul"
        ctx.m, ctx.eps, ctx.method = m, eps, method
        ctx.fused = _use_fused(params, m)
        if ctx.fused:
            try:
                return _LogPMF._forward_fused(ctx, params, const, m, eps, method)
            except Exception as error:  # noqa: BLE001 - any compile/launch failure falls back
                _disable_fused(error)
                ctx.fused = False
        values = _bin_values(params, const, m, method)
        keep = values.numel() <= _LogPMF.KEEP_VALUES
        power = _squared_modulus(values.clone() if keep and not values.is_complex() else values, m)
        total = power.sum(dim=-1, keepdim=True)
        out = power.div_(total).add_(eps).log_()
        ctx.save_for_backward(params, const, out, total, values if keep else None)
        return out

    @staticmethod
    def _forward_fused(ctx, params, const, m, eps, method):
        rows = params.shape[0]
        total = params.new_empty(rows)
        keep = rows * 2 * m <= _LogPMF.KEEP_VALUES
        chunks = _row_chunks(rows, m, _LogPMF.CHUNK_VALUES)
        if len(chunks) == 1:  # no slicing; the output allocated once the FFT's input is freed (lower peak)
            values = _fused_bin_values(params, const, m, method)
            out = params.new_empty(rows, m)
            _fused_log_pmf(values, out, total, m, eps)
        else:
            out = params.new_empty(rows, m)
            for start, stop in chunks:
                values = _fused_bin_values(params[start:stop], const, m, method)
                _fused_log_pmf(values, out[start:stop], total[start:stop], m, eps)
        # The fused backward recomputes the pmf from E a, so the output itself is not saved.
        ctx.save_for_backward(params, const, total, values if keep else None)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        if ctx.fused:
            return _LogPMF._backward_fused(ctx, grad_out)
        params, const, out, total, values = ctx.saved_tensors
        m, eps = ctx.m, ctx.eps
        # In place where possible: at Chronos shapes every (B, m) temporary is tens of MB.
        shifted = out.exp()                                    # pmf + eps
        grad_power = grad_out / shifted                        # d loss / d pmf
        dot = shifted.sub_(eps).mul_(grad_power).sum(dim=-1, keepdim=True)
        del shifted
        grad_power.sub_(dot).div_(total).mul_(2)               # 2 d loss / d |Ea|^2
        kept = values is not None
        if not kept:  # recompute E a rather than having kept it
            values = _bin_values(params, const, m, ctx.method)
        if values.is_complex():
            grad_values = values * grad_power if kept else values.mul_(grad_power)
        else:
            grad_values = (values.view(-1, 2, m) * grad_power[:, None, :]).view(-1, 2 * m)
        del grad_power
        return _bin_values_adjoint(grad_values, const, params.shape[-1] // 2, m), None, None, None

    @staticmethod
    def _backward_fused(ctx, grad_out):
        params, const, total, kept = ctx.saved_tensors
        m, eps, n = ctx.m, ctx.eps, params.shape[-1] // 2
        grad_out = grad_out if grad_out.is_contiguous() else grad_out.contiguous()
        if kept is not None:  # one chunk, E a kept from the forward
            grad_values = _fused_grad_values(grad_out, kept, total, m, eps, torch.empty_like(kept))
            return _fused_adjoint(grad_values, const, n, m), None, None, None
        # E a and its spectrum are alive at once here (twice a chunk), next to the output and its gradient:
        # half-size chunks keep the peak near a linear head's (a whole chunk measured 1.53x at chronos-550)
        chunks = _row_chunks(params.shape[0], m, max(2 * m, _LogPMF.CHUNK_VALUES // 2))
        grad_params = torch.empty_like(params) if len(chunks) > 1 else None
        for start, stop in chunks:
            values = _fused_bin_values(params[start:stop], const, m, ctx.method)
            grad_values = _fused_grad_values(grad_out[start:stop], values, total[start:stop], m, eps, values)
            if grad_params is None:  # one chunk: its gradient is the whole gradient
                return _fused_adjoint(grad_values, const, n, m), None, None, None
            _fused_adjoint(grad_values, const, n, m, out=grad_params[start:stop])
        return grad_params, None, None, None


# ------------------------------------------------------------------------------------------------
# the classification head
# ------------------------------------------------------------------------------------------------

class Fourier_Head(_AutocorrelationParams):
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
        gamma of the Fourier regulariser (reference spelling; `regularization_gamma` is an alias).
        After every forward, `loss_regularization` holds gamma * penalty: add it to your loss.
    const_inverse_softmax : float
        epsilon in the returned log(pmf + epsilon).
    init_denominator_weight, init_denominator_bias : float
        The linear layer's initial weight and bias are divided by these.
    dtype : torch.dtype
        dtype of the parameters (default float32). The head's math runs in float32 unless this is
        float64.
    device : torch.device or str, optional
        Accepted for compatibility with the reference; the module moves with `.to()` like any other.
    regularization : {"reference", "normalized"}
        Penalty on the unnormalised autocorrelation c_k (reference, default) or on c_k / c_0
        (scale invariant).
    pmf_method : {"auto", "fft", "matmul"}
        How |E a|^2 is evaluated at the bin centres; "auto" picks by shape. Same numbers either way.

    Shapes
    ------
    forward: (..., dim_input) -> (..., dim_output), float32 (float64 for float64 parameters).
    """

    # "auto" evaluates E a by a cos/sin matrix product while N+1 <= 128 (and the matrix stays small),
    # else by an FFT: on an H100 at m = 4096 the product won at N = 64 and the FFT at N = 256
    # (misc/benchmarks/head_speed.json keeps both timings for every shape).
    MATMUL_MAX_COEFFS = 128
    MATMUL_MAX_BASIS = 1 << 22

    def __init__(
        self,
        dim_input: int,
        dim_output: int,
        num_frequencies: int,
        regularizion_gamma: float = 0,
        const_inverse_softmax: float = 1e-5,
        init_denominator_weight: float = 100,
        init_denominator_bias: float = 100,
        dtype: torch.dtype = torch.float32,
        device=None,
        *,
        regularization_gamma: Optional[float] = None,
        regularization: str = "reference",
        pmf_method: str = "auto",
    ):
        super().__init__()
        for name, value, low in (("dim_input", dim_input, 1), ("dim_output", dim_output, 2),
                                 ("num_frequencies", num_frequencies, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"Fourier_Head: {name} must be an integer >= {low}, got {value!r}")
        if regularization not in ("reference", "normalized"):
            raise ValueError(f"Fourier_Head: regularization must be 'reference' or 'normalized', "
                             f"got {regularization!r}")
        if pmf_method not in ("auto", "fft", "matmul"):
            raise ValueError(f"Fourier_Head: pmf_method must be 'auto', 'fft' or 'matmul', got {pmf_method!r}")
        if not dtype.is_floating_point or dtype.is_complex:
            raise ValueError(f"Fourier_Head: dtype must be a real floating dtype, got {dtype}")

        self.dim_input = dim_input
        self.dim_output = dim_output
        self.num_frequencies = num_frequencies
        self.regularizion_gamma = _resolve_gamma(regularizion_gamma, regularization_gamma)
        self.const_inverse_softmax = const_inverse_softmax
        self.init_denominator_weight = init_denominator_weight
        self.init_denominator_bias = init_denominator_bias
        self.regularization = regularization
        if pmf_method == "auto":
            small = num_frequencies + 1 <= self.MATMUL_MAX_COEFFS
            pmf_method = "matmul" if small and 4 * (num_frequencies + 1) * dim_output <= self.MATMUL_MAX_BASIS else "fft"
        self.pmf_method = pmf_method

        self._init_linear(dim_input, num_frequencies, init_denominator_weight,
                          init_denominator_bias, dtype, device)

        # Constants are non-persistent buffers: they follow .to()/.cuda()/.double(), are rebuilt
        # from the constructor arguments, and keep state_dict() identical to the reference's.
        m, n = dim_output, num_frequencies + 1
        self.register_buffer("bin_centerpoints", bin_centers(m).to(torch.float32).to(device),
                             persistent=False)
        j = torch.arange(n, dtype=torch.float64)
        if self.pmf_method == "fft":
            # b_j = (-1)^j e^{i pi j / m} a_j turns E a into one length-m DFT (see module docstring).
            angle = math.pi * j * (1.0 + 1.0 / m)
            twiddle = torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)  # (N+1, 2)
            self.register_buffer("fft_twiddle", twiddle.float().to(device), persistent=False)
        else:
            # [Re a, Im a] @ basis = [Re Ea, Im Ea]:  Ea = sum_j (Re a_j + i Im a_j)(cos + i sin).
            theta = math.pi * j[:, None] * bin_centers(m)[None, :]  # (N+1, m)
            cos, sin = torch.cos(theta), torch.sin(theta)
            basis = torch.cat([torch.cat([cos, sin], dim=1), torch.cat([-sin, cos], dim=1)], dim=0)
            self.register_buffer("pmf_basis", basis.float().to(device), persistent=False)

        self.register_buffer("_zero", torch.zeros((), device=device), persistent=False)
        self.loss_regularization = self._zero
        # Whether the shape fits the one-node fused path (`_forward_small` checks the rest per call).
        self._small_shape = (triton is not None and self.pmf_method == "matmul"
                             and _small_tiles(2 * n, m) is not None)

    # -- the core: x -> a -> |E a|^2 ------------------------------------------------------------

    def _constant(self, dtype: torch.dtype) -> torch.Tensor:
        return _as_dtype(self._buffers["pmf_basis" if self.pmf_method == "matmul" else "fft_twiddle"], dtype)

    def _squared_modulus_at_bins(self, params: torch.Tensor) -> torch.Tensor:
        """[Re a, Im a] (B, 2(N+1)) -> |E a|^2 (B, m), i.e. 2 c_0 p(z_i) at the bin centres."""
        values = _bin_values(params, self._constant(params.dtype), self.dim_output, self.pmf_method)
        return _squared_modulus(values, self.dim_output)

    def _pmf_and_params(self, x: torch.Tensor):
        _check_input(x, self.dim_input, "Fourier_Head")
        with _float32_region(x):
            params = self._linear_params(x)
            power = self._squared_modulus_at_bins(params)
            pmf = power / power.sum(dim=-1, keepdim=True)
        return pmf, params

    def log_pmf_from_params(self, params: torch.Tensor) -> torch.Tensor:
        """log(pmf + epsilon) from linear-layer outputs [Re a, Im a] (..., 2(N+1)) -> (..., dim_output).

        What `forward` computes after its linear layer; usable on outputs computed elsewhere (stacked
        models, a fused projection). Sets no regulariser.
        """
        if params.shape[-1] != 2 * (self.num_frequencies + 1):
            raise ValueError(f"Fourier_Head.log_pmf_from_params expected last dimension "
                             f"{2 * (self.num_frequencies + 1)}, got {params.shape[-1]}")
        with _float32_region(params):
            if _compiling():
                return torch.log(self.pmf_from_params(params) + self.const_inverse_softmax)
            flat = params.reshape(-1, params.shape[-1]).to(_compute_dtype(params.dtype))
            out = _LogPMF.apply(flat, self._constant(flat.dtype), self.dim_output, self.const_inverse_softmax)
        return out.reshape(*params.shape[:-1], self.dim_output)

    def _forward_small(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        """The one-node fused path, or None where it does not apply. It applies on a GPU with Triton, in
        float32, at a small matmul shape, with a plain linear layer (hooks or a replaced layer, e.g. LoRA,
        take the general path). For small heads this Python is a good part of the step: it reads the
        module's dicts directly rather than through nn.Module's attribute lookup."""
        fc = self._modules["fc_extract_autocorrelation_params"]
        if not (_plain_linear(fc) and x.numel() > 0):  # the caller checked `_small_shape`
            return None
        weight, bias = fc._parameters["weight"], fc._parameters["bias"]
        gamma = self.regularizion_gamma
        if (bias is None or weight.dtype != torch.float32 or not _use_fused(weight, self.dim_output)
                or (gamma != 0 and (self.regularization != "reference"
                                    or self.num_frequencies + 1 > FUSED_MAX_PENALTY_COEFFS))):
            return None
        flat = x if x.dim() == 2 else x.reshape(-1, x.shape[-1])
        if flat.dtype != torch.float32:
            flat = flat.to(torch.float32)
        result = _SmallHead.apply(flat, weight, bias, self._buffers["pmf_basis"], self.dim_output,
                                  self.const_inverse_softmax, gamma)
        out, reg = result if gamma != 0 else (result, self._buffers["_zero"])
        object.__setattr__(self, "loss_regularization", reg)  # a plain attribute: skip Module.__setattr__
        return out if x.dim() == 2 else out.reshape(*x.shape[:-1], self.dim_output)

    def _forward_traceable(self, x: torch.Tensor) -> torch.Tensor:
        """The head in plain differentiable ops: what `torch.compile` traces (and fuses) instead of the
        hand-written autograd nodes and Triton launches of the eager path. Same numbers."""
        params = self._linear_params(x)
        power = self._squared_modulus_at_bins(params)
        out = torch.log(power / power.sum(dim=-1, keepdim=True) + self.const_inverse_softmax)
        if self.regularizion_gamma != 0:
            self.loss_regularization = _traceable_regularizer(
                params, self.regularizion_gamma, self.regularization == "normalized")
        else:
            self.loss_regularization = self._zero
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """log(pmf + epsilon): (..., dim_input) -> (..., dim_output). Sets `loss_regularization`."""
        _check_input(x, self.dim_input, "Fourier_Head")
        if self._small_shape and not _compiling():  # outside autocast's region: it computes in float32 itself
            try:
                out = self._forward_small(x)
                if out is not None:
                    return out
            except Exception as error:  # noqa: BLE001 - any compile/launch failure falls back
                _disable_fused(error)
        with _float32_region(x):
            if _compiling():
                return self._forward_traceable(x).reshape(*x.shape[:-1], self.dim_output)
            params = self._linear_params(x)
            out = _LogPMF.apply(params, self._constant(params.dtype), self.dim_output, self.const_inverse_softmax)
            gamma = self.regularizion_gamma
            reg = (_regularizer(params, gamma, self.regularization == "normalized") if gamma != 0
                   else self._buffers["_zero"])
        object.__setattr__(self, "loss_regularization", reg)  # a plain attribute: skip Module.__setattr__
        return out if x.dim() == 2 else out.reshape(*x.shape[:-1], self.dim_output)

    def pmf_from_params(self, params: torch.Tensor) -> torch.Tensor:
        """The head's math on linear-layer outputs computed elsewhere (e.g. for stacked models).

        Parameters
        ----------
        params : tensor, shape (..., 2(N+1)): [Re a_0..a_N, Im a_0..a_N], the layout of the head's
            linear layer. Zero entries act as absent frequencies.

        Returns
        -------
        tensor, shape (..., dim_output): the PMF (rows sum to 1).
        """
        if params.shape[-1] != 2 * (self.num_frequencies + 1):
            raise ValueError(f"Fourier_Head.pmf_from_params expected last dimension "
                             f"{2 * (self.num_frequencies + 1)}, got {params.shape[-1]}")
        flat = params.reshape(-1, params.shape[-1]).to(_compute_dtype(params.dtype))
        power = self._squared_modulus_at_bins(flat)
        pmf = power / power.sum(dim=-1, keepdim=True)
        return pmf.reshape(*params.shape[:-1], self.dim_output)

    # -- access for analysis and figures ---------------------------------------------------------

    def pmf(self, x: torch.Tensor) -> torch.Tensor:
        """The PMF itself (no epsilon): (..., dim_input) -> (..., dim_output), rows sum to 1."""
        pmf, _ = self._pmf_and_params(x)
        return pmf.reshape(*x.shape[:-1], self.dim_output)

    def fourier_coefficients(self, x: torch.Tensor, normalized: bool = True) -> torch.Tensor:
        """Fourier coefficients of the density: (..., dim_input) -> complex (..., N+1).

        normalized=True returns c_k / c_0 (so entry 0 is 1 and p(z) = 1/2 + Re sum_{k>=1} entry_k
        e^{i pi k z}); normalized=False returns the autocorrelation c_k itself.
        """
        _check_input(x, self.dim_input, "Fourier_Head")
        with _float32_region(x):
            c = autocorrelate(self._autocorrelation_params(x))
            if normalized:
                c = c / c[:, :1].real
        return c.reshape(*x.shape[:-1], self.num_frequencies + 1)

    def evaluate_pdf(self, fourier_coeffs: torch.Tensor,
                     latent_vals: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The continuous density p(z) = 1/2 + Re sum_{k=1..N} coeffs_k e^{i pi k z} (reference API).

        Parameters
        ----------
        fourier_coeffs : complex tensor, shape (..., N)
            Normalised coefficients c_1/c_0 .. c_N/c_0, e.g. `fourier_coefficients(x)[..., 1:]`.
        latent_vals : tensor, shape (L,), optional
            Points in [-1, 1]; default: the bin centres.

        Returns
        -------
        tensor, shape (..., L): density values (integrate to 1 over [-1, 1]).
        """
        if latent_vals is None:
            latent_vals = self.bin_centerpoints
        return _fourier_series(fourier_coeffs, latent_vals)

    def extra_repr(self) -> str:
        return (f"dim_input={self.dim_input}, dim_output={self.dim_output}, "
                f"num_frequencies={self.num_frequencies}, gamma={self.regularizion_gamma}, "
                f"regularization={self.regularization!r}, pmf_method={self.pmf_method!r}")


FourierHead = Fourier_Head


def _fourier_series(coeffs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """1/2 + Re sum_{k=1..N} coeffs_k e^{i pi k z}: coeffs (..., N) complex, z (L,) -> (..., L)."""
    real_dtype = coeffs.real.dtype
    z = z.to(device=coeffs.device, dtype=real_dtype)
    k = torch.arange(1, coeffs.shape[-1] + 1, device=coeffs.device, dtype=real_dtype)
    theta = math.pi * k[:, None] * z[None, :]  # (N, L)
    return 0.5 + coeffs.real @ torch.cos(theta) - coeffs.imag @ torch.sin(theta)


# ------------------------------------------------------------------------------------------------
# the continuous (maximum-likelihood) variant
# ------------------------------------------------------------------------------------------------

class FourierDensity:
    r"""A batch of Fourier densities on [-1, 1], one per row.

    p(x) = |sum_j a_j e^{i pi j x}|^2 / (2 ||a||^2) = 1/2 + Re sum_{k=1..N} c_k/c_0 e^{i pi k x}.

    Parameters
    ----------
    a : complex tensor, shape (B, N+1)
        Autocorrelation parameters (the head's linear layer output).
    batch_shape : tuple
        The leading shape the B rows are reshaped to in outputs.
    """

    def __init__(self, a: torch.Tensor, batch_shape=None):
        self.a = a
        self.batch_shape = tuple(batch_shape) if batch_shape is not None else (a.shape[0],)
        self._coeffs = None

    @classmethod
    def from_params(cls, params: torch.Tensor) -> "FourierDensity":
        """Densities from linear-layer outputs [Re a, Im a] of shape (..., 2(N+1)); batch shape (...)."""
        flat = params.reshape(-1, params.shape[-1])
        return cls(_as_complex(flat.to(_compute_dtype(params.dtype))), batch_shape=params.shape[:-1])

    def pdf_on_grid(self, z: torch.Tensor) -> torch.Tensor:
        """Density of every row at the same points z (K,): (*batch_shape, K), by one real matmul."""
        z = torch.as_tensor(z, device=self.a.device).to(self.a.real.dtype).reshape(-1)
        j = torch.arange(self.a.shape[-1], device=z.device, dtype=z.dtype)
        theta = math.pi * j[:, None] * z[None, :]  # (N+1, K)
        cos, sin = torch.cos(theta), torch.sin(theta)
        ar, ai = self.a.real, self.a.imag
        re = ar @ cos - ai @ sin
        im = ar @ sin + ai @ cos
        c0 = (ar.square() + ai.square()).sum(-1, keepdim=True)
        values = (re.square() + im.square()) / (2.0 * c0)
        values = torch.where((z >= -1) & (z <= 1), values, torch.zeros_like(values))
        return values.reshape(*self.batch_shape, z.shape[0])

    @property
    def coefficients(self) -> torch.Tensor:
        """Normalised Fourier coefficients c_k / c_0, complex (B, N+1); entry 0 is 1."""
        if self._coeffs is None:
            c = autocorrelate(self.a)
            self._coeffs = c / c[:, :1].real
        return self._coeffs

    def _points(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Points of shape batch_shape (one per row) or (*batch_shape, K) -> (B, K), and whether K=1 was added."""
        x = torch.as_tensor(x, device=self.a.device).to(self.a.real.dtype)
        b = self.a.shape[0]
        if tuple(x.shape) in (self.batch_shape, (b,)):
            return x.reshape(b, 1), True
        if x.dim() >= 1 and tuple(x.shape[:-1]) in (self.batch_shape, (b,)):
            return x.reshape(b, x.shape[-1]), False
        raise ValueError(f"FourierDensity: points of shape {tuple(x.shape)} do not match the batch "
                         f"shape {self.batch_shape} (use shape {self.batch_shape} or (*{self.batch_shape}, K))")

    def _shape_out(self, values: torch.Tensor, squeeze: bool) -> torch.Tensor:
        if squeeze:
            return values.reshape(self.batch_shape)
        return values.reshape(*self.batch_shape, values.shape[-1])

    def pdf(self, x: torch.Tensor) -> torch.Tensor:
        """Density at x: (B,) -> (B,) or (B, K) -> (B, K). Zero outside [-1, 1]."""
        pts, squeeze = self._points(x)
        j = torch.arange(self.a.shape[-1], device=pts.device, dtype=pts.dtype)
        theta = math.pi * pts[..., None] * j  # (B, K, N+1)
        re = (self.a.real[:, None, :] * torch.cos(theta) - self.a.imag[:, None, :] * torch.sin(theta)).sum(-1)
        im = (self.a.real[:, None, :] * torch.sin(theta) + self.a.imag[:, None, :] * torch.cos(theta)).sum(-1)
        c0 = (self.a.real.square() + self.a.imag.square()).sum(-1, keepdim=True)
        values = (re.square() + im.square()) / (2.0 * c0)
        values = torch.where((pts >= -1) & (pts <= 1), values, torch.zeros_like(values))
        return self._shape_out(values, squeeze)

    def log_prob(self, x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
        """log(p(x) + eps), the reference's training objective per point."""
        return torch.log(self.pdf(x) + eps)

    def _cdf_points(self, pts: torch.Tensor) -> torch.Tensor:
        """Closed-form CDF at pts (B, K): (x+1)/2 + Re sum_k c_k (e^{i pi k x} - (-1)^k) / (i pi k)."""
        coeffs = self.coefficients[:, 1:]  # (B, N)
        k = torch.arange(1, coeffs.shape[-1] + 1, device=pts.device, dtype=pts.dtype)
        theta = math.pi * pts.clamp(-1, 1)[..., None] * k  # (B, K, N)
        sign = 1.0 - 2.0 * (k % 2)  # (-1)^k
        # Re[(cr + i ci)(cos - sign + i sin) / (i pi k)] = (cr sin + ci (cos - sign)) / (pi k)
        cr, ci = coeffs.real[:, None, :], coeffs.imag[:, None, :]
        terms = (cr * torch.sin(theta) + ci * (torch.cos(theta) - sign)) / (math.pi * k)
        return (pts.clamp(-1, 1) + 1.0) / 2.0 + terms.sum(-1)

    def cdf(self, x: torch.Tensor) -> torch.Tensor:
        """CDF at x, same shapes as `pdf`."""
        pts, squeeze = self._points(x)
        return self._shape_out(self._cdf_points(pts), squeeze)

    @torch.no_grad()
    def sample(self, num_samples: int = 1, generator: Optional[torch.Generator] = None,
               iterations: int = 40) -> torch.Tensor:
        """Inverse-CDF samples by bisection, vectorised over rows and samples: (*batch_shape, num_samples)."""
        b = self.a.shape[0]
        dtype = self.a.real.dtype
        device = generator.device if generator is not None else self.a.device
        u = torch.rand(b, num_samples, generator=generator, dtype=dtype, device=device).to(self.a.device)
        lo = torch.full_like(u, -1.0)
        hi = torch.full_like(u, 1.0)
        for _ in range(iterations):  # the CDF is monotone: halve the bracket 40 times (< 2e-12)
            mid = (lo + hi) / 2
            below = self._cdf_points(mid) < u
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        return ((lo + hi) / 2).reshape(*self.batch_shape, num_samples)


class Fourier_Head_MLE(_AutocorrelationParams):
    """Continuous Fourier head: input (..., dim_input) -> `FourierDensity` with batch shape (...).

    Train with `loss = -density.log_prob(y).mean() + head.loss_regularization`.

    Parameters
    ----------
    dim_input, num_frequencies, regularizion_gamma (alias regularization_gamma),
    init_denominator_weight, init_denominator_bias, dtype, device, regularization :
        as in `Fourier_Head`.
    """

    def __init__(self, dim_input: int, num_frequencies: int, regularizion_gamma: float = 0,
                 init_denominator_weight: float = 100, init_denominator_bias: float = 100,
                 dtype: torch.dtype = torch.float32, device=None, *,
                 regularization_gamma: Optional[float] = None, regularization: str = "reference"):
        super().__init__()
        for name, value in (("dim_input", dim_input), ("num_frequencies", num_frequencies)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Fourier_Head_MLE: {name} must be an integer >= 1, got {value!r}")
        if regularization not in ("reference", "normalized"):
            raise ValueError(f"Fourier_Head_MLE: regularization must be 'reference' or 'normalized', "
                             f"got {regularization!r}")
        self.dim_input = dim_input
        self.num_frequencies = num_frequencies
        self.regularizion_gamma = _resolve_gamma(regularizion_gamma, regularization_gamma)
        self.regularization = regularization
        self._init_linear(dim_input, num_frequencies, init_denominator_weight,
                          init_denominator_bias, dtype, device)
        self.loss_regularization = torch.zeros((), device=device)

    def forward(self, x: torch.Tensor) -> FourierDensity:
        """(..., dim_input) -> FourierDensity over (...) rows. Sets `loss_regularization`."""
        _check_input(x, self.dim_input, "Fourier_Head_MLE")
        with _float32_region(x):
            a = self._autocorrelation_params(x)
            density = FourierDensity(a, batch_shape=x.shape[:-1])
            if self.regularizion_gamma != 0:
                c = autocorrelate(a)
                self.loss_regularization = _regularization_loss(
                    c, self.regularizion_gamma, self.regularization == "normalized")
            else:
                self.loss_regularization = torch.zeros((), dtype=a.real.dtype, device=a.device)
        return density


# ------------------------------------------------------------------------------------------------
# the smoothness metric
# ------------------------------------------------------------------------------------------------

NUM_SIGMAS = 100


@functools.lru_cache(maxsize=32)
def _smoothing_response(m: int) -> torch.Tensor:
    """(1 - K_hat_sigma)^2 for sigma = 1..100 at the rfft frequencies of length m: (100, m//2+1), float64.

    K_sigma is scipy's gaussian_filter1d kernel (radius m-1, weights exp(-t^2 / 2 sigma^2) normalised
    over t = -(m-1)..(m-1)) folded modulo m, i.e. what mode="wrap" applies as a circular convolution.
    """
    sigmas = torch.arange(1, NUM_SIGMAS + 1, dtype=torch.float64)[:, None]
    t = torch.arange(-(m - 1), m, dtype=torch.float64)[None, :]
    kernel = torch.exp(-0.5 * (t / sigmas).square())
    kernel = kernel / kernel.sum(dim=-1, keepdim=True)  # (100, 2m-1)
    folded = torch.zeros(NUM_SIGMAS, m, dtype=torch.float64)
    folded.index_add_(1, torch.remainder(t[0].long(), m), kernel)
    response = torch.fft.rfft(folded, dim=-1).real  # symmetric kernel: real spectrum
    return (1.0 - response).square()


def smoothness(pmfs: torch.Tensor) -> torch.Tensor:
    r"""Smoothness s(y) = sum_{sigma=1..100} 6/(pi^2 sigma^2) ||y - G_sigma * y||_2 (lower is smoother).

    Equal to the reference (scipy.ndimage.gaussian_filter1d(y, sigma, mode="wrap", radius=m-1)) to
    float64 rounding, computed for all rows at once in the frequency domain:
    ||y - G*y||^2 = (1/m) sum_f |Y_f|^2 (1 - K_hat_f)^2 (Parseval), so the whole metric is one rFFT
    and one (rows, m/2+1) x (m/2+1, 100) product.

    Parameters
    ----------
    pmfs : tensor, shape (..., m)
        Any real vectors (PMFs in practice), on any device.

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
    response = _smoothing_response(m).to(y.device)  # (100, m//2+1)
    sq_norms = (power * multiplicity) @ response.T / m  # (..., 100)
    sigmas = torch.arange(1, NUM_SIGMAS + 1, dtype=torch.float64, device=y.device)
    alphas = 6.0 / (math.pi ** 2 * sigmas.square())
    return sq_norms.clamp_min(0).sqrt() @ alphas
