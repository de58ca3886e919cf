"""The fused (Triton) path of `fourier_head.py` against its eager path: same numbers, graceful fallback.

On a CPU the kernels run under Triton's interpreter (TRITON_INTERPRET=1) in a subprocess, when Triton
is installed; on a CUDA machine they are compiled and compared directly. Without Triton only the
fallback is tested (the eager path is what runs there).
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fourier_head
from fourier_head import Fourier_Head

ROOT = Path(__file__).resolve().parents[1]
HAS_TRITON = importlib.util.find_spec("triton") is not None

# (m, N, rows, d, pmf_method, gamma): the benchmark's kinds of shape, small enough for the interpreter
CASES = [
    (50, 12, 70, 32, "matmul", 0.0),     # toy
    (18, 8, 40, 70, "matmul", 1e-6),     # decision transformer, with the fused regulariser; d in two chunks
    (18, 14, 40, 150, "matmul", 1e-2),
    (512, 64, 16, 32, "matmul", 0.0),    # chronos-64-like
    (512, 64, 16, 32, "fft", 1e-6),
    (1024, 550, 6, 32, "fft", 1e-6),     # chronos-550-like (eager regulariser: N+1 > 64)
    (300, 700, 5, 32, "fft", 0.0),       # N + 1 > m: aliased frequencies
]


def compare(device: str, chunked: bool) -> list[str]:
    """Run every case fused and eager on `device`; return a description of each mismatch."""
    failures = []
    saved = fourier_head._LogPMF.KEEP_VALUES, fourier_head._LogPMF.CHUNK_VALUES
    for m, n, rows, d, method, gamma in CASES:
        if chunked:  # recompute E a in the backward, in chunks of 3 rows
            fourier_head._LogPMF.KEEP_VALUES, fourier_head._LogPMF.CHUNK_VALUES = 0, 6 * m
        torch.manual_seed(m + n)
        head = Fourier_Head(d, m, n, regularizion_gamma=gamma, pmf_method=method,
                            init_denominator_weight=1).to(device)
        # a transposed (non-contiguous) input for odd d; for one case a broadcast output gradient
        x = torch.randn(d, rows, device=device).t() if d % 2 else torch.randn(rows, d, device=device)
        grad_out = torch.randn(rows, m, device=device) if n != 14 else torch.randn(m, device=device).expand(rows, m)
        results = []
        for fused in (True, False):
            fourier_head._fused_state["enabled"] = fused
            xg = x.clone().requires_grad_(True)
            head.zero_grad()
            out = head(xg)
            loss = (out * grad_out).sum() + head.loss_regularization
            loss.backward()
            fc = head.fc_extract_autocorrelation_params
            results.append((out.detach(), head.loss_regularization.detach(), xg.grad,
                            fc.weight.grad.clone(), fc.bias.grad.clone()))
        fourier_head._fused_state["enabled"] = True
        for name, a, b in zip(("output", "regulariser", "grad x", "grad weight", "grad bias"), *results):
            err = ((a - b).norm() / b.norm().clamp_min(1e-30)).item()
            if err > 1e-5:
                failures.append(f"m={m} N={n} {method} gamma={gamma} chunked={chunked}: {name} rel err {err:.2e}")
    fourier_head._LogPMF.KEEP_VALUES, fourier_head._LogPMF.CHUNK_VALUES = saved
    return failures


@pytest.mark.skipif(not torch.cuda.is_available() or not HAS_TRITON, reason="needs CUDA and Triton")
@pytest.mark.parametrize("chunked", [False, True])
def test_fused_equals_eager_on_gpu(chunked):
    assert fourier_head._use_fused(torch.zeros(1, device="cuda"), 16)
    assert compare("cuda", chunked) == []


@pytest.mark.skipif(not HAS_TRITON, reason="needs Triton (its interpreter runs the kernels on a CPU)")
def test_fused_equals_eager_in_triton_interpreter():
    script = ("import sys, fourier_head, torch; sys.path.insert(0, 'tests'); import test_fused as t; "
              "assert fourier_head._use_fused(torch.zeros(1), 16); "
              "bad = t.compare('cpu', False) + t.compare('cpu', True); print(*bad, sep='\\n'); sys.exit(len(bad) > 0)")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_failing_kernel_falls_back_to_eager(monkeypatch):
    """A kernel that cannot compile or launch gives a warning and the eager numbers, not an error."""
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(fourier_head, "_use_fused", lambda params, m: True)  # as on a GPU with Triton
    monkeypatch.setattr(fourier_head, "_small_tiles", lambda n2, m: (16, 32))
    monkeypatch.setattr(fourier_head._SmallHead, "apply", broken)
    monkeypatch.setattr(fourier_head, "_fused_log_pmf", broken)
    monkeypatch.setitem(fourier_head._fused_state, "enabled", True)
    head = Fourier_Head(8, 20, 5)
    x = torch.randn(4, 8)
    with pytest.warns(UserWarning, match="fused Triton kernels disabled"):
        out = head(x)
    assert fourier_head._fused_state["enabled"] is False
    monkeypatch.setattr(fourier_head, "_use_fused", lambda params, m: False)
    torch.testing.assert_close(out, head(x))


def test_plain_cpu_tensors_use_the_eager_path():
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("the interpreter runs the kernels on CPU tensors on purpose")
    assert not fourier_head._use_fused(torch.zeros(1), 16)
    assert not fourier_head._use_fused(torch.zeros(1, dtype=torch.float64), 16)


def test_hooked_linear_layer_takes_the_general_path(monkeypatch):
    """A forward hook on the head's linear layer (or a replaced layer, as LoRA does) must still run."""
    def must_not_run(*args, **kwargs):
        raise AssertionError("the one-node fused path bypassed the linear layer's hooks")

    monkeypatch.setattr(fourier_head, "_use_fused", lambda params, m: True)
    monkeypatch.setattr(fourier_head._SmallHead, "apply", must_not_run)
    monkeypatch.setattr(fourier_head, "_fused_log_pmf", lambda *a: (_ for _ in ()).throw(RuntimeError("no gpu")))
    head = Fourier_Head(8, 20, 5)
    calls = []
    head.fc_extract_autocorrelation_params.register_forward_hook(lambda *args: calls.append(1))
    with pytest.warns(UserWarning):  # the params-level kernel is stubbed to fail: eager fallback
        head(torch.randn(4, 8))
    assert calls == [1]
