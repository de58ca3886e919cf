"""`fourier_head_fused.py` (Triton) against the plain path of `fourier_head.py`: same numbers, fallbacks.

On a CPU the kernels run under Triton's interpreter (TRITON_INTERPRET=1) in a subprocess, when Triton is
installed; on a CUDA machine they are compiled and compared directly (and across two GPUs, if present).
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fourier_head as fh
from fourier_head import Fourier_Head

HAS_TRITON = importlib.util.find_spec("triton") is not None
fused = pytest.importorskip("fourier_head_fused") if HAS_TRITON else None
ROOT = Path(__file__).resolve().parents[1]

# (m, N, rows, d, pmf_method, gamma): the benchmark's kinds of shape, small enough for the interpreter
CASES = [
    (50, 12, 70, 32, "matmul", 0.0),     # toy
    (18, 8, 40, 70, "matmul", 1e-6),     # decision transformer, fused regulariser; d in two chunks
    (18, 14, 40, 150, "matmul", 1e-2),
    (512, 64, 16, 32, "matmul", 0.0),    # chronos-64-like
    (512, 64, 16, 32, "fft", 1e-6),
    (1024, 550, 6, 32, "fft", 1e-6),     # chronos-550-like (spectral regulariser: N+1 > 64)
    (300, 700, 5, 32, "fft", 0.0),       # N + 1 > m: aliased frequencies
]
# every kernel, and one case that runs it (forward-only, backward-only or both)
KERNELS = {"small_fwd": 1, "small_bwd": 1, "penalty": 1, "log_pmf_fwd": 4, "log_pmf_bwd": 4, "twist": 4,
           "untwist": 4}


def run_case(case, device, use_fused: bool, chunked: bool = False):
    """Output, regulariser and gradients (x, weight, bias) of one case, fused or plain."""
    m, n, rows, d, method, gamma = case
    saved = fused.KEEP_VALUES, fused.CHUNK_VALUES, fh._FUSED.get("module")
    if chunked:  # recompute E a in the backward, in chunks of 3 rows
        fused.KEEP_VALUES, fused.CHUNK_VALUES = 0, 6 * m
    fh._FUSED["module"] = fused if use_fused else None
    try:
        torch.manual_seed(m + n)
        head = Fourier_Head(d, m, n, regularizion_gamma=gamma, pmf_method=method, init_denominator_weight=1).to(device)
        # a transposed (non-contiguous) input for odd d; for one case a broadcast output gradient
        x = torch.randn(d, rows, device=device).t() if d % 2 else torch.randn(rows, d, device=device)
        grad_out = torch.randn(rows, m, device=device) if n != 14 else torch.randn(m, device=device).expand(rows, m)
        x.requires_grad_(True)
        out = head(x)
        reg = head.loss_regularization
        ((out * grad_out).sum() + reg).backward()
        fc = head.fc_extract_autocorrelation_params
        return [out.detach(), reg.detach(), x.grad, fc.weight.grad, fc.bias.grad]
    finally:
        fused.KEEP_VALUES, fused.CHUNK_VALUES, fh._FUSED["module"] = saved


def mismatches(case, device, chunked=False, tol=1e-5) -> list[str]:
    got, want = run_case(case, device, True, chunked), run_case(case, device, False, chunked)
    bad = []
    for name, a, b in zip(("output", "regulariser", "grad x", "grad weight", "grad bias"), got, want):
        err = ((a - b).norm() / b.norm().clamp_min(1e-30)).item()
        if not err <= tol:
            bad.append(f"{case} chunked={chunked}: {name} rel err {err:.2e}")
    return bad


def compare(device: str, chunked: bool) -> list[str]:
    return [line for case in CASES for line in mismatches(case, device, chunked)]


def break_kernel(name: str, error=RuntimeError("injected failure")):
    """Make kernel `name` raise when launched (its Triton function is replaced by a stub)."""
    class Broken:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                raise error
            return launch

    setattr(fused, f"_{name}_kernel", Broken())


def run_in_interpreter(script: str) -> None:
    if torch.cuda.is_available():  # the compiled kernels are tested directly there (and Triton 3.6's interpreter
        pytest.skip("on a GPU the compiled kernels are tested instead")  # fails on the small kernels)
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


# ---- the kernels' numbers -------------------------------------------------------------------------

@pytest.mark.skipif(not torch.cuda.is_available() or not HAS_TRITON, reason="needs CUDA and Triton")
@pytest.mark.parametrize("chunked", [False, True])
def test_fused_equals_plain_on_gpu(chunked):
    assert compare("cuda", chunked) == []


@pytest.mark.skipif(not HAS_TRITON, reason="needs Triton (its interpreter runs the kernels on a CPU)")
def test_fused_equals_plain_in_triton_interpreter():
    run_in_interpreter("import sys; sys.path.insert(0, 'tests'); import test_fused as t; "
                       "bad = t.compare('cpu', False) + t.compare('cpu', True); print(*bad, sep='\\n'); "
                       "assert not t.fused._FAILED, t.fused._FAILED; sys.exit(len(bad) > 0)")


def compiled_mismatches(device: str) -> list[str]:
    """torch.compile (aot_eager) of head + loss on the fused path (custom operators) against the plain path,
    for the one-node, matmul, FFT and spectral-regulariser shapes; also that the operators ran."""
    calls, originals, saved = [], {n: getattr(fused, n) for n in ("_small_forward", "_log_pmf_forward")}, fh._FUSED.get("module")
    for name, original in originals.items():
        setattr(fused, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    try:
        bad = [line for case in (CASES[1], CASES[3], CASES[4], CASES[5]) for line in compiled_case(case, device)]
    finally:
        for name, original in originals.items():
            setattr(fused, name, original)
        fh._FUSED["module"] = saved
    if set(calls) != {"_small_forward", "_log_pmf_forward"}:
        bad.append(f"the custom operators did not run: {set(calls)}")
    return bad


def compiled_case(case, device: str) -> list[str]:
    """One case compiled (aot_eager) on the fused path against the plain path: loss and gradient."""
    bad = []
    m, n, rows, d, method, gamma = case
    torch.manual_seed(m + n)
    head = Fourier_Head(d, m, n, regularization_gamma=gamma, pmf_method=method, init_denominator_weight=1).to(device)
    x = torch.randn(rows, d, device=device, requires_grad=True)

    def loss(x):
        out = head(x)
        return (out * torch.linspace(0, 1, m, device=device)).sum() + head.loss_regularization

    fh._FUSED["module"] = None
    want = loss(x)
    want_grad, = torch.autograd.grad(want, x)
    fh._FUSED["module"] = fused
    torch._dynamo.reset()
    got = torch.compile(loss, backend="aot_eager")(x)
    got_grad, = torch.autograd.grad(got, x)
    for name, a, b in (("loss", got, want), ("grad x", got_grad, want_grad)):
        err = ((a - b).norm() / b.norm()).item()
        if not err <= 1e-5:
            bad.append(f"compiled {case}: {name} rel err {err:.2e}")
    return bad


@pytest.mark.skipif(not HAS_TRITON or not hasattr(torch.library, "custom_op"), reason="needs Triton, torch >= 2.4")
def test_compiled_head_uses_the_fused_operators():
    run_in_interpreter("import sys; sys.path.insert(0, 'tests'); import test_fused as t; "
                       "bad = t.compiled_mismatches('cpu'); print(*bad, sep='\\n'); "
                       "assert not t.fused._FAILED, t.fused._FAILED; sys.exit(len(bad) > 0)")


@pytest.mark.skipif(not torch.cuda.is_available() or not HAS_TRITON, reason="needs CUDA and Triton")
def test_compiled_head_uses_the_fused_operators_on_gpu():
    assert compiled_mismatches("cuda") == []


# ---- fallbacks: a kernel that fails, in the forward or the backward ---------------------------------

@pytest.mark.skipif(not HAS_TRITON, reason="needs Triton (its interpreter runs the other kernels)")
def test_each_failing_kernel_falls_back_to_its_eager_twin():
    """One kernel broken at a time, the others running: one warning, that kernel alone disabled, and the
    plain path's numbers in the output, the regulariser and every gradient."""
    run_in_interpreter(
        "import sys, warnings; sys.path.insert(0, 'tests'); import test_fused as t\n"
        "kernels = {k: getattr(t.fused, f'_{k}_kernel') for k in t.KERNELS}\n"
        "for name, case in t.KERNELS.items():\n"
        "    t.break_kernel(name)\n"
        "    with warnings.catch_warnings(record=True) as caught:\n"
        "        warnings.simplefilter('always')\n"
        "        bad = t.mismatches(t.CASES[case], 'cpu') + t.mismatches(t.CASES[case], 'cpu')\n"
        "    assert bad == [], bad\n"
        "    assert set(t.fused._FAILED) == {name}, (name, t.fused._FAILED)\n"
        "    assert sum('fourier_head_fused' in str(w.message) for w in caught) == 1, name\n"
        "    setattr(t.fused, f'_{name}_kernel', kernels[name]); t.fused._FAILED.clear()\n")


@pytest.mark.skipif(not HAS_TRITON, reason="needs Triton")
def test_all_eager_twins_equal_the_plain_path(monkeypatch):
    """Every kernel failing (as on a machine where Triton cannot compile): the twins alone, on a CPU."""
    monkeypatch.setattr(fused, "applies", lambda t, m: True)
    monkeypatch.setattr(fused, "_FAILED", {})
    for name in KERNELS:
        monkeypatch.setattr(fused, f"_{name}_kernel", None)
        break_kernel(name)
    with pytest.warns(RuntimeWarning, match="fourier_head_fused"):
        for chunked in (False, True):
            assert compare("cpu", chunked) == []
    assert set(fused._FAILED) == set(KERNELS)


@pytest.mark.skipif(not HAS_TRITON, reason="needs Triton")
def test_out_of_memory_propagates_and_disables_nothing(monkeypatch):
    monkeypatch.setattr(fused, "applies", lambda t, m: True)
    monkeypatch.setattr(fused, "_FAILED", {})
    monkeypatch.setattr(fused, "_small_fwd_kernel", None)
    break_kernel("small_fwd", torch.cuda.OutOfMemoryError("CUDA out of memory (injected)"))
    monkeypatch.setitem(fh._FUSED, "module", fused)
    head = Fourier_Head(8, 20, 5)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        head(torch.randn(4, 8))
    assert fused._FAILED == {}


def test_fused_off_by_environment_variable():
    script = ("import fourier_head as fh, torch; h = fh.Fourier_Head(4, 10, 3); h(torch.randn(2, 4)); "
              "assert fh._fused_module() is None")
    env = dict(os.environ, FOURIER_HEAD_FUSED="0", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not HAS_TRITON, reason="needs Triton")
def test_plain_cpu_tensors_use_the_plain_path():
    if fused.INTERPRET:
        pytest.skip("the interpreter runs the kernels on CPU tensors on purpose")
    assert not fused.applies(torch.zeros(1), 16)
    assert not fused.applies(torch.zeros(1, dtype=torch.float64), 16)
    assert fused.forward(Fourier_Head(4, 10, 3), torch.randn(2, 4)) is None


@pytest.mark.skipif(not HAS_TRITON, reason="needs Triton")
def test_hooked_linear_layer_takes_the_general_path(monkeypatch):
    """A forward or backward hook on the head's linear layer (or a replaced layer, as LoRA does) must run."""
    def must_not_run(*args, **kwargs):
        raise AssertionError("the one-node fused path bypassed the linear layer's hooks")

    monkeypatch.setattr(fused, "applies", lambda t, m: True)
    monkeypatch.setattr(fused._SmallHead, "apply", must_not_run)
    monkeypatch.setattr(fused, "_FAILED", {k: "" for k in KERNELS})  # the eager twins, on a CPU
    monkeypatch.setitem(fh._FUSED, "module", fused)
    head = Fourier_Head(8, 20, 5, regularization_gamma=1e-3)
    calls = []
    fc = head.fc_extract_autocorrelation_params
    fc.register_forward_hook(lambda *args: calls.append("forward"))
    fc.register_full_backward_hook(lambda *args: calls.append("backward"))
    (head(torch.randn(4, 8, requires_grad=True)).sum() + head.loss_regularization).backward()
    assert calls == ["forward", "backward"]


# ---- several GPUs in one process ------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.device_count() < 2 or not HAS_TRITON, reason="needs two GPUs and Triton")
def test_two_gpus_without_set_device():
    """Heads on cuda:0 and cuda:1, used alternately in both orders with cuda:0 current: the plain path's
    numbers on each (the kernels were once launched on the current device, not the tensors')."""
    assert torch.cuda.current_device() == 0
    bad = []
    for order in ((0, 1, 0, 1), (1, 0, 1, 0)):
        for case in (CASES[1], CASES[3], CASES[5]):
            for index in order:
                bad += mismatches(case, f"cuda:{index}", chunked=index == 1)
    assert torch.cuda.current_device() == 0
    assert bad == []
