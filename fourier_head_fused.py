"""Fused Triton kernels for `fourier_head.Fourier_Head` (optional; the head works without this file).

`fourier_head.py` imports this module on the first forward with CUDA tensors and uses it wherever it
applies (float32 parameters, m <= 16384); `FOURIER_HEAD_FUSED=0` switches it off. In eager mode the kernels
run inside `torch.autograd.Function` nodes; under `torch.compile` the same code runs as custom operators
(`torch.ops.fourier_head.small_head`, `log_pmf`, `penalty`, with registered backward and fake
implementations), which the compiler traces as opaque calls.
It computes the same numbers as the plain path (tested to 1e-5 relative, tests/test_fused.py) with fewer
kernel launches and less memory:

* **small shapes** (few bins and frequencies: the toy and Decision-Transformer heads), where the time goes
  to launching kernels: the whole head, linear layer and regulariser included, is one autograd node whose
  forward is one kernel and whose backward is one kernel (which also writes the input's gradient) plus the
  weight's matrix product and the bias's row sum: as many launches as a linear head;
* **large shapes** (Chronos): E a comes from one cuFFT call between a "twist" and an "untwist" kernel, and
  |Ea|^2, the row sums and the log (forward) or the gradient (backward) are one pass each. The backward
  recomputes E a in row chunks instead of keeping it, so peak memory stays near a linear head's.

Every kernel has an eager twin. A kernel that fails to compile or launch warns once and its twin is used
from then on, in the forward and in the backward; an out-of-memory error propagates as itself. Kernels
are compiled and launched on the device and stream of their input tensors (heads on several GPUs in one
process work without `torch.cuda.set_device`).

Private internals, each with a fallback and a test: `_launch` calls Triton's compiled launcher directly
(`compiled.run` with raw pointers and the raw stream), which skips Triton's per-call argument binding
(measured on an H100: 8 us against 32 us a launch). It is used only with Triton >= 3.4, no launch hook
installed, and not under the interpreter; everywhere else kernels launch through `kernel[grid](...)`.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings

import torch
import triton
import triton.language as tl
from torch import nn

import fourier_head as fh

try:
    from triton import knobs as _triton_knobs  # Triton >= 3.4
except ImportError:
    _triton_knobs = None

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"  # Triton's interpreter runs the kernels on CPU tensors
MAX_BINS = 1 << 14            # one row is reduced inside one program
MAX_PENALTY_COEFFS = 64       # the regulariser's kernel builds (N+1)^2 tiles per row
SMALL_ROWS = 32               # rows per program of the small path


# ------------------------------------------------------------------------------------------------
# launching: per device and stream, with a fallback per kernel
# ------------------------------------------------------------------------------------------------

_FAILED: dict = {}            # kernel name -> the error that disabled it
_COMPILED: dict = {}          # launch key -> Triton's compiled kernel
_DIRECT = _triton_knobs is not None and not INTERPRET


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def _cdiv(a: int, b: int) -> int:
    return -(-int(a) // int(b))


def _launch_hooked() -> bool:
    """Whether a launch hook is installed (Triton >= 3.5 keeps an empty HookChain there by default)."""
    hooks = (_triton_knobs.runtime.launch_enter_hook, _triton_knobs.runtime.launch_exit_hook)
    return any(hook is not None and getattr(hook, "calls", True) for hook in hooks)


def _real_views(args):
    """Complex tensors as their float view (interleaved re, im): Triton has no complex dtype."""
    return [torch.view_as_real(a) if isinstance(a, torch.Tensor) and a.is_complex() else a for a in args]


def _launch(kernel, grid, args, constexprs, num_warps: int) -> None:
    """kernel[grid](*args, **constexprs, num_warps=num_warps), on args[0]'s device and its current stream.

    The first launch of a specialisation goes through Triton's JIT (which compiles it for the current
    device: the caller has made args[0]'s device current); later ones call the compiled launcher with raw
    pointers, keyed finer than Triton's own specialisation (exact integers, pointer alignment mod 16, the
    device), so never a wrong kernel."""
    if not (_DIRECT and args[0].is_cuda):
        kernel[grid](*_real_views(args), **constexprs, num_warps=num_warps)
        return
    raw = [a.data_ptr() if isinstance(a, torch.Tensor) else a for a in args]
    device = args[0].device.index
    key = (kernel, num_warps, device, *constexprs.values(),
           *[(a.dtype, r & 15) if isinstance(a, torch.Tensor) else r for a, r in zip(args, raw)])
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = kernel[grid](*_real_views(args), **constexprs, num_warps=num_warps)
        if hasattr(compiled, "packed_metadata") and not _launch_hooked():
            if len(_COMPILED) >= 4096:  # e.g. a batch size that changes every step
                _COMPILED.clear()
            _COMPILED[key] = compiled
        return
    compiled.run(grid[0], grid[1] if len(grid) > 1 else 1, 1, torch._C._cuda_getCurrentRawStream(device),
                 compiled.function, compiled.packed_metadata, None, None, None, *raw, *constexprs.values())


def _run(name: str, fused, eager):
    """fused() unless kernel `name` has failed before; on a failure (other than running out of memory) warn
    once, remember it, and from then on return eager() instead."""
    if name not in _FAILED:
        try:
            return fused()
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - a compile or launch failure: use the eager twin
            _FAILED[name] = repr(error)
            warnings.warn(f"fourier_head_fused: the {name} kernel failed ({error!r}); its eager version is used "
                          "from now on", RuntimeWarning, stacklevel=3)
    return eager()


def _on_device(t: torch.Tensor):
    """Make t's GPU the current one (Triton compiles and launches for the current device)."""
    if t.is_cuda and t.device.index != torch.cuda.current_device():
        return torch.cuda.device(t.device)
    return contextlib.nullcontext()


def applies(t: torch.Tensor, m: int) -> bool:
    """Whether the kernels can run on t (float32, on a GPU or under the interpreter) for m bins."""
    return t.dtype == torch.float32 and m <= MAX_BINS and (t.is_cuda or (INTERPRET and t.device.type == "cpu"))


# ------------------------------------------------------------------------------------------------
# the kernels
# ------------------------------------------------------------------------------------------------

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




# ------------------------------------------------------------------------------------------------
# each kernel with its eager twin
# ------------------------------------------------------------------------------------------------

def _values_strides(values: torch.Tensor, m: int):
    """(row stride, column stride, offset of the imaginary part) of E a's storage, counted in floats."""
    if values.is_complex():  # (B, m) complex: interleaved re, im
        return 2 * m, 2, 1
    return 2 * m, 1, m  # (B, 2m) real: [Re | Im]


def _power(values: torch.Tensor, m: int) -> torch.Tensor:
    parts = torch.view_as_real(values) if values.is_complex() else values.view(-1, 2, m).transpose(1, 2)
    return parts.square().sum(dim=-1)


def _launch_shape(rows: int, m: int):
    block = _pow2(m)
    per_program = max(1, min(64, 4096 // block))  # several short rows per program
    return (_cdiv(rows, per_program),), per_program, block, (4 if block <= 2048 else 8 if block <= 8192 else 16)


def _log_pmf_fwd(values: torch.Tensor, out: torch.Tensor, total: torch.Tensor, m: int, eps: float) -> None:
    """out (B, m) = log(|Ea|^2 / total + eps) and total (B,) = row sums of |Ea|^2, from E a (`_bin_values`)."""
    def fused():
        v_row, v_col, v_im = _values_strides(values, m)
        grid, per_program, block, warps = _launch_shape(out.shape[0], m)
        _launch(_log_pmf_fwd_kernel, grid, (values, out, total, out.shape[0], m, v_row, v_col, v_im, eps),
                dict(ROWS=per_program, BLOCK=block), warps)

    def eager():
        power = _power(values, m)
        total.copy_(power.sum(dim=-1))
        torch.log(power / total[:, None] + eps, out=out)

    _run("log_pmf_fwd", fused, eager)


def _grad_values(grad_out, values, total, m: int, eps: float, into: torch.Tensor) -> torch.Tensor:
    """d loss / d(E a) in the layout of `values`, written into `into` (which may be `values` itself)."""
    def fused():
        v_row, v_col, v_im = _values_strides(values, m)
        grid, per_program, block, warps = _launch_shape(grad_out.shape[0], m)
        _launch(_log_pmf_bwd_kernel, grid,
                (grad_out, values, into, total, grad_out.shape[0], m, v_row, v_col, v_im, eps),
                dict(ROWS=per_program, BLOCK=block), warps)

    def eager():
        pmf = _power(values, m) / total[:, None]
        grad_pmf = grad_out / (pmf + eps)
        scale = (grad_pmf - (pmf * grad_pmf).sum(dim=-1, keepdim=True)) * (2 / total[:, None])
        grad = values * scale if values.is_complex() else (values.view(-1, 2, m) * scale[:, None]).view(-1, 2 * m)
        into.copy_(grad)

    _run("log_pmf_bwd", fused, eager)
    return into


def _twist(params: torch.Tensor, twiddle: torch.Tensor, m: int) -> torch.Tensor:
    """b (B, m) complex: b_i = sum over j = i (mod m) of (-1)^j e^{i pi j/m} a_j; E a = IDFT(b)."""
    rows, n = params.shape[0], params.shape[1] // 2

    def fused():
        b = torch.empty(rows, m, dtype=torch.complex64, device=params.device)
        block = min(1024, _pow2(m))
        _launch(_twist_kernel, (_cdiv(rows, 4), _cdiv(m, block)), (params, twiddle, b, rows, n, m),
                dict(R=4, BM=block), 4)
        return b

    def eager():
        b = torch.complex(params[:, :n], params[:, n:]) * torch.view_as_complex(twiddle)
        if n > m:
            b = nn.functional.pad(b, (0, (-n) % m)).reshape(rows, -1, m).sum(dim=1)
        return nn.functional.pad(b, (0, m - b.shape[1])) if b.shape[1] < m else b

    return _run("twist", fused, eager)


def _untwist(spectrum: torch.Tensor, twiddle: torch.Tensor, n: int, m: int, out: torch.Tensor) -> torch.Tensor:
    """The twist's adjoint: d/d a_j = conj(twiddle_j) * spectrum_(j mod m), written into out as [Re | Im]."""
    rows = spectrum.shape[0]

    def fused():
        block = min(1024, _pow2(n))
        _launch(_untwist_kernel, (_cdiv(rows, 4), _cdiv(n, block)), (spectrum, twiddle, out, rows, n, m),
                dict(R=4, BN=block), 4)

    def eager():
        g = spectrum[:, torch.arange(n, device=spectrum.device) % m] * torch.view_as_complex(twiddle).conj()
        out.copy_(torch.cat([g.real, g.imag], dim=-1))

    _run("untwist", fused, eager)
    return out


def _bin_values(params: torch.Tensor, const: torch.Tensor, m: int) -> torch.Tensor:
    """E a: real (B, 2m) [Re | Im] by the cos/sin basis, or complex (B, m) by one FFT."""
    if const.shape[-1] != 2:  # the (2n, 2m) basis
        return params @ const
    return torch.fft.ifft(_twist(params, const, m), dim=-1, norm="forward")


def _adjoint(grad_values: torch.Tensor, const: torch.Tensor, n: int, m: int, out=None) -> torch.Tensor:
    """The adjoint of `_bin_values`: d loss / d(E a) -> d loss / d params (B, 2n), into `out` if given."""
    if not grad_values.is_complex():
        return torch.mm(grad_values, const.T, out=out)
    spectrum = torch.fft.fft(grad_values, dim=-1)  # adjoint of the unnormalised inverse DFT
    out = torch.empty(spectrum.shape[0], 2 * n, dtype=torch.float32, device=spectrum.device) if out is None else out
    return _untwist(spectrum, const, n, m, out)


def _penalty(params: torch.Tensor, gamma: float):
    """(the reference regulariser, its gradient w.r.t. params) for n <= MAX_PENALTY_COEFFS, in one kernel."""
    rows, n = params.shape[0], params.shape[1] // 2

    def fused():
        grad, penalty = torch.empty_like(params), params.new_empty(rows)
        _launch(_penalty_kernel, (rows,), (params, grad, penalty, n, 2.0 * gamma / rows),
                dict(NP=max(16, _pow2(n))), 4)
        return penalty.sum(), grad

    def eager():
        with torch.enable_grad():
            p = params.detach().requires_grad_(True)
            reg = fh._regularizer(p, gamma, False)
            return reg.detach(), torch.autograd.grad(reg, p)[0]

    return _run("penalty", fused, eager)


# ------------------------------------------------------------------------------------------------
# autograd nodes
# ------------------------------------------------------------------------------------------------

class _Penalty(torch.autograd.Function):
    """The reference regulariser from params [Re a, Im a] (B, 2n), n <= 64: one kernel that also writes the
    gradient, so the backward is one multiply."""

    @staticmethod
    def forward(ctx, params, gamma: float):
        reg, grad = _penalty(params, gamma)
        ctx.save_for_backward(grad)
        return reg

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        (grad,) = ctx.saved_tensors
        return grad * grad_loss, None


class _SpectralPenalty(torch.autograd.Function):
    """The same regulariser for any n by FFTs of length L >= 2n - 1 with a hand-written backward: about half
    the launches of autograd through the autocorrelation.

    A = FFT_L(a), S = |A|^2, R = FFT_L(S)[:n] = L conj(c) (S is real), penalty = scale sum_k w_k |R_k|^2.
    Backward (gradients of a real loss w.r.t. complex z written dRe + i dIm): dR = 2 scale w R,
    dS = Re(L IFFT_L(dR)), dA = 2 dS A, da = L IFFT_L(dA)[:n]."""

    @staticmethod
    def forward(ctx, params, gamma: float):
        rows, n = params.shape[0], params.shape[1] // 2
        length = fh._fft_length(2 * n - 1)
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
    if normalized:
        return fh._regularizer(params, gamma, True)
    if params.shape[-1] // 2 <= MAX_PENALTY_COEFFS:
        return _Penalty.apply(params, gamma)
    return _SpectralPenalty.apply(params, gamma)


def _row_chunks(rows: int, m: int, limit: int):
    """Row ranges whose E a holds at most `limit` real numbers (at least one row each)."""
    step = max(1, limit // (2 * m))
    return [(start, min(rows, start + step)) for start in range(0, rows, step)]


KEEP_VALUES = 1 << 20     # below this many numbers E a is kept for the backward (launches cost more than memory)
CHUNK_VALUES = 1 << 24    # rows are processed in chunks of E a of at most this many numbers (the backward: half)


def _log_pmf_forward(params, const, m: int, eps: float, keep: bool):
    """params [Re a, Im a] (B, 2n) -> (log(|Ea|^2 / sum_bins |Ea|^2 + eps) (B, m), row sums (B,), E a or None).
    Large batches run in row chunks, so that the only (B, m) tensor alive is the output."""
    with _on_device(params):
        rows = params.shape[0]
        total = params.new_empty(rows)
        chunks = _row_chunks(rows, m, CHUNK_VALUES)
        if len(chunks) == 1:  # no slicing; the output allocated once the FFT's input is freed (lower peak)
            values = _bin_values(params, const, m)
            out = params.new_empty(rows, m)
            _log_pmf_fwd(values, out, total, m, eps)
        else:
            out = params.new_empty(rows, m)
            for start, stop in chunks:
                values = _bin_values(params[start:stop], const, m)
                _log_pmf_fwd(values, out[start:stop], total[start:stop], m, eps)
        return out, total, (values if keep and len(chunks) == 1 else None)


def _log_pmf_backward(params, const, total, kept, grad_out, m: int, eps: float):
    """d loss / d params (B, 2n) from d loss / d log pmf (B, m); recomputes E a in row chunks unless kept."""
    n = params.shape[-1] // 2
    grad_out = grad_out if grad_out.is_contiguous() else grad_out.contiguous()
    with _on_device(params):
        if kept is not None:
            return _adjoint(_grad_values(grad_out, kept, total, m, eps, torch.empty_like(kept)), const, n, m)
        # E a and its spectrum are alive at once here (twice a chunk), next to the output and its gradient:
        # half-size chunks keep the peak near a linear head's (a whole chunk measured 1.53x at chronos-550)
        chunks = _row_chunks(params.shape[0], m, max(2 * m, CHUNK_VALUES // 2))
        grad_params = torch.empty_like(params) if len(chunks) > 1 else None
        for start, stop in chunks:
            values = _bin_values(params[start:stop], const, m)
            grad_values = _grad_values(grad_out[start:stop], values, total[start:stop], m, eps, values)
            if grad_params is None:  # one chunk: its gradient is the whole gradient
                return _adjoint(grad_values, const, n, m)
            _adjoint(grad_values, const, n, m, out=grad_params[start:stop])
        return grad_params


class _LogPMF(torch.autograd.Function):
    """params [Re a, Im a] (B, 2n) -> log(|Ea|^2 / sum_bins |Ea|^2 + eps) (B, m). Small shapes keep E a for
    the backward; large ones recompute it, so besides the output only the row sums are saved."""

    @staticmethod
    def forward(ctx, params, const, m: int, eps: float):
        out, total, kept = _log_pmf_forward(params, const, m, eps, params.shape[0] * 2 * m <= KEEP_VALUES)
        ctx.m, ctx.eps = m, eps
        ctx.save_for_backward(params, const, total, kept)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        params, const, total, kept = ctx.saved_tensors
        return _log_pmf_backward(params, const, total, kept, grad_out, ctx.m, ctx.eps), None, None, None


def _small_tiles(n2: int, m: int):
    """(BK, BM) tile sizes of the small path, or None when the shape does not fit it."""
    bk, bm = max(16, _pow2(n2)), max(16, _pow2(m))
    return (bk, bm) if bk * bm <= 8192 else None


def _eager_small(x, weight, bias, basis, m: int, eps: float):
    """The small path's math in plain ops: (log pmf (B, m), params (B, 2n))."""
    params = nn.functional.linear(x, weight, bias)
    power = _power(params @ basis, m)
    return torch.log(power / power.sum(dim=-1, keepdim=True) + eps), params


def _small_meta(x, weight, m: int):
    (rows, d), n2 = x.shape, weight.shape[0]
    bk, bm = _small_tiles(n2, m)
    return rows, d, n2, dict(R=SMALL_ROWS, BK=bk, BM=bm, BD=min(64, max(16, _pow2(d))))


def _small_forward(x, weight, bias, basis, m: int, eps: float, gamma: float):
    """x (B, d), weight (2n, d), bias (2n,) -> (log pmf (B, m), regulariser or None, its gradient w.r.t. the
    linear layer's outputs (B, 2n) or None): the linear layer and the head in one kernel."""
    rows, d, n2, tiles = _small_meta(x, weight, m)
    out = x.new_empty(rows, m)
    coeffs = x.new_empty(rows, n2) if gamma != 0 else out

    def fused():
        _launch(_small_fwd_kernel, (_cdiv(rows, SMALL_ROWS),),
                (x, *x.stride(), weight, *weight.stride(), bias, basis, out, coeffs, rows, d, n2, m, eps),
                dict(tiles, STORE_COEFFS=gamma != 0), 4)
        return out, coeffs

    with _on_device(x):
        out, coeffs = _run("small_fwd", fused, lambda: _eager_small(x, weight, bias, basis, m, eps))
        reg, reg_grad = _penalty(coeffs, gamma) if gamma != 0 else (None, None)
    return out, reg, reg_grad


def _small_backward(x, weight, bias, basis, reg_grad, grad_out, grad_reg, m: int, eps: float, need=(True,) * 3):
    """(d loss / d x, d weight, d bias) (None where not needed) of `_small_forward`: one kernel that also
    writes d loss / d x, then the weight's matrix product and the bias's row sum."""
    rows, d, n2, tiles = _small_meta(x, weight, m)
    need_x, need_weight, need_bias = need
    has_reg = reg_grad is not None and grad_reg is not None

    def fused():
        grad_coeffs_t = x.new_empty(n2, rows)
        grad_x = x.new_empty(rows, d) if need_x else grad_coeffs_t
        _launch(_small_bwd_kernel, (_cdiv(rows, SMALL_ROWS),),
                (x, *x.stride(), weight, *weight.stride(), bias, basis, grad_out, *grad_out.stride(),
                 grad_coeffs_t, grad_x, reg_grad if has_reg else grad_x, grad_reg if has_reg else grad_x,
                 rows, d, n2, m, eps),
                dict(tiles, HAS_REG=has_reg, GRAD_X=need_x), 4)
        return (grad_x if need_x else None, grad_coeffs_t @ x if need_weight else None,
                grad_coeffs_t.sum(dim=1) if need_bias else None)

    def eager():  # recompute the forward in plain ops and let autograd differentiate it
        with torch.enable_grad():
            inputs = [t.detach().requires_grad_(True) for t in (x, weight, bias)]
            out, params = _eager_small(*inputs, basis, m, eps)
            loss = (out * grad_out).sum()
            if has_reg:
                loss = loss + (params * reg_grad.detach()).sum() * grad_reg
            grads = torch.autograd.grad(loss, inputs)
        return tuple(g if wanted else None for g, wanted in zip(grads, need))

    with _on_device(x):
        return _run("small_bwd", fused, eager)


class _SmallHead(torch.autograd.Function):
    """x (B, d), weight (2n, d), bias (2n,) -> log pmf (B, m) [and the regulariser, if gamma > 0]."""

    @staticmethod
    def forward(ctx, x, weight, bias, basis, m: int, eps: float, gamma: float):
        out, reg, reg_grad = _small_forward(x, weight, bias, basis, m, eps, gamma)
        ctx.save_for_backward(x, weight, bias, basis, reg_grad)
        ctx.m, ctx.eps = m, eps
        return out if reg is None else (out, reg)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, grad_reg=None):
        x, weight, bias, basis, reg_grad = ctx.saved_tensors
        grads = _small_backward(x, weight, bias, basis, reg_grad, grad_out, grad_reg, ctx.m, ctx.eps,
                                ctx.needs_input_grad[:3])
        return (*grads, None, None, None, None)


# ------------------------------------------------------------------------------------------------
# the same as custom operators, for torch.compile (which cannot trace Triton launches or autograd.Function
# nodes with side effects). Eager mode keeps the autograd.Function nodes above: a custom operator's
# dispatch costs ~50 us more per forward+backward, which the small heads would feel.
# ------------------------------------------------------------------------------------------------

OPS = hasattr(torch.library, "custom_op")
if OPS:
    Tensor = torch.Tensor

    @torch.library.custom_op("fourier_head::small_head", mutates_args=())
    def _small_head_op(x: Tensor, weight: Tensor, bias: Tensor, basis: Tensor, m: int, eps: float,
                       gamma: float) -> tuple[Tensor, Tensor, Tensor]:
        out, reg, reg_grad = _small_forward(x, weight, bias, basis, m, eps, gamma)
        return out, (x.new_zeros(()) if reg is None else reg), (x.new_empty(0) if reg_grad is None else reg_grad)

    @_small_head_op.register_fake
    def _(x, weight, bias, basis, m, eps, gamma):
        return x.new_empty(x.shape[0], m), x.new_empty(()), x.new_empty((x.shape[0], weight.shape[0]) if gamma else 0)

    @torch.library.custom_op("fourier_head::small_head_backward", mutates_args=())
    def _small_head_backward_op(x: Tensor, weight: Tensor, bias: Tensor, basis: Tensor, reg_grad: Tensor,
                                grad_out: Tensor, grad_reg: Tensor, m: int, eps: float) -> tuple[Tensor, Tensor, Tensor]:
        has_reg = reg_grad.numel() > 0
        return _small_backward(x, weight, bias, basis, reg_grad if has_reg else None, grad_out,
                               grad_reg if has_reg else None, m, eps)

    @_small_head_backward_op.register_fake
    def _(x, weight, bias, basis, reg_grad, grad_out, grad_reg, m, eps):
        return torch.empty_like(x), torch.empty_like(weight), torch.empty_like(bias)

    def _small_head_setup(ctx, inputs, output):
        x, weight, bias, basis, m, eps, gamma = inputs
        ctx.save_for_backward(x, weight, bias, basis, output[2])
        ctx.m, ctx.eps = m, eps

    def _small_head_grad(ctx, grad_out, grad_reg, _):
        x, weight, bias, basis, reg_grad = ctx.saved_tensors
        grad_reg = x.new_zeros(()) if grad_reg is None else grad_reg
        grads = _small_head_backward_op(x, weight, bias, basis, reg_grad, grad_out.contiguous(), grad_reg,
                                        ctx.m, ctx.eps)
        return (*grads, None, None, None, None)

    _small_head_op.register_autograd(_small_head_grad, setup_context=_small_head_setup)

    @torch.library.custom_op("fourier_head::log_pmf", mutates_args=())
    def _log_pmf_op(params: Tensor, const: Tensor, m: int, eps: float) -> tuple[Tensor, Tensor]:
        out, total, _ = _log_pmf_forward(params, const, m, eps, keep=False)
        return out, total

    @_log_pmf_op.register_fake
    def _(params, const, m, eps):
        return params.new_empty(params.shape[0], m), params.new_empty(params.shape[0])

    @torch.library.custom_op("fourier_head::log_pmf_backward", mutates_args=())
    def _log_pmf_backward_op(params: Tensor, const: Tensor, total: Tensor, grad_out: Tensor, m: int,
                             eps: float) -> Tensor:
        return _log_pmf_backward(params, const, total, None, grad_out, m, eps)

    @_log_pmf_backward_op.register_fake
    def _(params, const, total, grad_out, m, eps):
        return torch.empty_like(params)

    def _log_pmf_setup(ctx, inputs, output):
        params, const, m, eps = inputs
        ctx.save_for_backward(params, const, output[1])
        ctx.m, ctx.eps = m, eps

    def _log_pmf_grad(ctx, grad_out, _):
        params, const, total = ctx.saved_tensors
        return _log_pmf_backward_op(params, const, total, grad_out, ctx.m, ctx.eps), None, None, None

    _log_pmf_op.register_autograd(_log_pmf_grad, setup_context=_log_pmf_setup)

    @torch.library.custom_op("fourier_head::penalty", mutates_args=())
    def _penalty_op(params: Tensor, gamma: float) -> tuple[Tensor, Tensor]:
        with _on_device(params):
            return _penalty(params.contiguous(), gamma)

    @_penalty_op.register_fake
    def _(params, gamma):
        return params.new_empty(()), torch.empty_like(params)

    def _penalty_setup(ctx, inputs, output):
        ctx.save_for_backward(output[1])

    def _penalty_grad(ctx, grad_reg, _):
        return ctx.saved_tensors[0] * grad_reg, None

    _penalty_op.register_autograd(_penalty_grad, setup_context=_penalty_setup)


def _compiled_forward(head, x, small: bool):
    """`forward` under torch.compile: the custom operators (same kernels, traceable by the compiler)."""
    fc = head.fc_extract_autocorrelation_params
    m, gamma, eps = head.dim_output, head.regularizion_gamma, head.const_inverse_softmax
    if small:
        flat = x.reshape(-1, x.shape[-1]).to(torch.float32)
        out, reg, _ = torch.ops.fourier_head.small_head(flat, fc.weight, fc.bias, head.pmf_basis, m, eps, gamma)
        return out, (reg if gamma != 0 else None)
    with fh._float32_region(x):
        params = head._linear(x)
        const = head.pmf_basis if head.pmf_method == "matmul" else head.fft_twiddle
        out, _ = torch.ops.fourier_head.log_pmf(params, const, m, eps)
        if gamma == 0:
            return out, None
        if head.regularization == "reference" and params.shape[-1] // 2 <= MAX_PENALTY_COEFFS:
            return out, torch.ops.fourier_head.penalty(params, gamma)[0]
        return out, fh._regularizer(params, gamma, head.regularization == "normalized")


# ------------------------------------------------------------------------------------------------
# what fourier_head.Fourier_Head calls
# ------------------------------------------------------------------------------------------------

def forward(head: "fh.Fourier_Head", x: torch.Tensor):
    """(log pmf (B, m), regulariser or None) for head(x), or None where the fused path does not apply
    (then the plain path runs)."""
    fc = head.fc_extract_autocorrelation_params
    weight, m, gamma = fc.weight, head.dim_output, head.regularizion_gamma
    if not applies(weight, m) or x.device != weight.device or x.numel() == 0:
        return None
    n2 = weight.shape[0]
    small = (head.pmf_method == "matmul" and fc.bias is not None and fh._plain_linear(fc)
             and _small_tiles(n2, m) is not None
             and (gamma == 0 or (head.regularization == "reference" and n2 // 2 <= MAX_PENALTY_COEFFS)))
    if torch.compiler.is_compiling():
        return _compiled_forward(head, x, small) if OPS else None
    if small:
        flat = x.reshape(-1, x.shape[-1]).to(torch.float32)
        result = _SmallHead.apply(flat, weight, fc.bias, head.pmf_basis, m, head.const_inverse_softmax, gamma)
        return (result, None) if gamma == 0 else result
    with fh._float32_region(x):
        params = head._linear(x)
        const = head.pmf_basis if head.pmf_method == "matmul" else head.fft_twiddle
        out = _LogPMF.apply(params, const, m, head.const_inverse_softmax)
        reg = _regularizer(params, gamma, head.regularization == "normalized") if gamma != 0 else None
    return out, reg


def log_pmf_from_params(head: "fh.Fourier_Head", params: torch.Tensor):
    """`Fourier_Head.log_pmf_from_params` on params (B, 2n), or None where the fused path does not apply."""
    const = head.pmf_basis if head.pmf_method == "matmul" else head.fft_twiddle
    if (not applies(params, head.dim_output) or params.shape[0] == 0 or const.device != params.device
            or torch.compiler.is_compiling()):
        return None
    return _LogPMF.apply(params, const.to(torch.float32), head.dim_output, head.const_inverse_softmax)


@contextlib.contextmanager
def disabled():
    """Inside this block `Fourier_Head` runs its plain path (benchmarks and tests compare the two)."""
    saved = fh._FUSED.get("module")
    fh._FUSED["module"] = None
    try:
        yield
    finally:
        if saved is None:
            fh._FUSED.pop("module", None)
        else:
            fh._FUSED["module"] = saved
