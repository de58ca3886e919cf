"""The head behaves like `torch.nn.Linear` wherever a user puts it (CPU): meta init, empty batches, dtypes,
copies, hooks, DataParallel replicas, argument checks, the reference's API, and the file copied alone."""

import ast
import copy
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import fourier_head as fh
from fourier_head import Fourier_Head, Fourier_Head_MLE, regularization_loss

ROOT = Path(__file__).resolve().parents[1]


def reference_pmf(head: Fourier_Head, x: torch.Tensor) -> torch.Tensor:
    """The PMF from the paper's sums, in float64 (independent of the head's code paths)."""
    fc = head.fc_extract_autocorrelation_params
    params = x.double() @ fc.weight.double().T + fc.bias.double()
    n, m = head.num_frequencies + 1, head.dim_output
    a = torch.complex(params[:, :n], params[:, n:])
    c = torch.stack([(a[:, k:] * a[:, : n - k].conj()).sum(-1) for k in range(n)], dim=-1)
    z = torch.tensor([-1 + (2 * i + 1) / m for i in range(m)], dtype=torch.float64)
    basis = torch.exp(1j * np.pi * z[:, None] * torch.arange(1, n, dtype=torch.float64)[None, :])
    pdf = 0.5 + ((c[:, 1:] / c[:, :1].real) @ basis.T).real
    return pdf / pdf.sum(-1, keepdim=True)


@pytest.mark.parametrize("method", ["matmul", "fft"])
def test_meta_init_then_to_empty_and_load_state_dict(method):
    torch.manual_seed(0)
    ref = Fourier_Head(6, 30, 5, regularization_gamma=1e-3, pmf_method=method)
    with torch.device("meta"):
        head = Fourier_Head(6, 30, 5, regularization_gamma=1e-3, pmf_method=method)
    assert head.fc_extract_autocorrelation_params.weight.is_meta
    head.to_empty(device="cpu")
    head.load_state_dict(ref.state_dict())
    x = torch.randn(4, 6)
    torch.testing.assert_close(head(x), ref(x))
    torch.testing.assert_close(head.loss_regularization, ref.loss_regularization)
    # reset_parameters gives a fresh, finite, near-uniform head
    head.reset_parameters()
    assert torch.isfinite(head(x)).all()
    assert head.fc_extract_autocorrelation_params.weight.abs().max() < 1e-2


@pytest.mark.parametrize("method", ["matmul", "fft"])
def test_empty_batch(method):
    head = Fourier_Head(6, 30, 5, regularization_gamma=1e-3, pmf_method=method)
    x = torch.randn(0, 6, requires_grad=True)
    out = head(x)
    assert out.shape == (0, 30)
    assert head.loss_regularization.item() == 0
    (out.sum() + head.loss_regularization).backward()
    assert head(torch.randn(2, 0, 6)).shape == (2, 0, 30)
    assert head.pmf(torch.randn(0, 6)).shape == (0, 30)
    mle = Fourier_Head_MLE(6, 5, regularization_gamma=1e-3)
    density = mle(torch.randn(0, 6))
    assert density.pdf(torch.zeros(0)).shape == (0,) and mle.loss_regularization.item() == 0


@pytest.mark.parametrize("m,n_freq,method", [(50, 12, "matmul"), (300, 40, "fft"), (4096, 550, "fft"),
                                             (20, 30, "fft")])
def test_float64_head_is_float64_accurate(m, n_freq, method):
    torch.manual_seed(1)
    head = Fourier_Head(8, m, n_freq, pmf_method=method, init_denominator_weight=1, init_denominator_bias=1).double()
    x = torch.randn(5, 8, dtype=torch.float64)
    pmf = head.pmf(x)
    want = reference_pmf(head, x)
    assert ((pmf - want).norm() / want.norm()).item() <= 1e-12
    assert head(x).dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("method", ["matmul", "fft"])
def test_half_precision_parameters_keep_float32_constants(dtype, method):
    torch.manual_seed(2)
    head = Fourier_Head(8, 64, 20, pmf_method=method, init_denominator_weight=1, init_denominator_bias=1)
    half = copy.deepcopy(head).to(dtype)
    assert all(b.dtype == torch.float32 for b in half.buffers())
    # the same math on the rounded weights: only the weights are rounded, not the basis or twiddles
    with torch.no_grad():
        for p_half, p in zip(half.parameters(), head.parameters()):
            p.copy_(p_half.float())
    x = torch.randn(6, 8)
    out = half(x.to(dtype))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, head(x.to(dtype).float()), atol=1e-5, rtol=1e-5)
    # and back to float64: float64 constants again
    assert all(b.dtype == torch.float64 for b in half.double().buffers())


def test_deepcopy_and_pickle_after_a_forward_with_gamma():
    head = Fourier_Head(6, 30, 5, regularization_gamma=1e-3)
    head(torch.randn(4, 6))
    assert head.loss_regularization.grad_fn is not None
    for clone in (copy.deepcopy(head), pickle.loads(pickle.dumps(head))):
        torch.testing.assert_close(clone.loss_regularization, head.loss_regularization.detach())
        assert clone.loss_regularization.grad_fn is None
        x = torch.randn(3, 6)
        torch.testing.assert_close(clone(x), head(x))
    mle = Fourier_Head_MLE(6, 5, regularization_gamma=1e-3)
    mle(torch.randn(4, 6))
    copy.deepcopy(mle)


def test_zero_regulariser_is_not_shared_state():
    head = Fourier_Head(6, 30, 5)
    head(torch.randn(4, 6))
    reg = head.loss_regularization
    reg.add_(1.0)  # an in-place edit by a training loop
    head(torch.randn(4, 6))
    assert head.loss_regularization.item() == 0


def test_hooks_on_the_linear_layer_fire():
    head = Fourier_Head(6, 30, 5, regularization_gamma=1e-3)
    calls = []
    fc = head.fc_extract_autocorrelation_params
    fc.register_forward_pre_hook(lambda *args: calls.append("pre"))
    fc.register_forward_hook(lambda *args: calls.append("forward"))
    fc.register_full_backward_hook(lambda *args: calls.append("backward"))
    x = torch.randn(4, 6, requires_grad=True)
    (head(x).sum() + head.loss_regularization).backward()
    assert calls == ["pre", "forward", "backward"]


def test_data_parallel_replicas_say_how_to_get_the_regulariser():
    head = Fourier_Head(6, 30, 5, regularization_gamma=1e-3)
    x = torch.randn(4, 6)
    replica = head._replicate_for_data_parallel()  # what nn.DataParallel runs on each GPU
    replica(x)
    assert replica.loss_regularization.item() > 0
    assert regularization_loss(replica).item() > 0  # returned from the model's forward, DataParallel gathers it
    with pytest.raises(RuntimeError, match="DataParallel.*regularization_loss"):
        head.loss_regularization
    head(x)  # a forward of the module itself: readable again
    assert head.loss_regularization.item() > 0
    # with gamma = 0 there is nothing to lose
    plain = Fourier_Head(6, 30, 5)
    plain._replicate_for_data_parallel()(x)
    assert plain.loss_regularization.item() == 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(regularization_gamma=-1e-6), "regularization_gamma"),
    (dict(regularizion_gamma=-1.0), "regularization_gamma"),
    (dict(const_inverse_softmax=-1e-5), "const_inverse_softmax"),
    (dict(init_denominator_weight=0), "init_denominator_weight"),
    (dict(init_denominator_bias=-100), "init_denominator_bias"),
    (dict(init_denominator_weight=float("nan")), "init_denominator_weight"),
    (dict(dim_input=0), "dim_input"),
    (dict(num_frequencies=0), "num_frequencies"),
    (dict(dim_output=1), "dim_output"),
    (dict(dim_output=True), "dim_output"),
    (dict(dim_output=2.5), "dim_output"),
])
def test_invalid_arguments_name_themselves(kwargs, match):
    args = dict(dim_input=6, dim_output=30, num_frequencies=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Fourier_Head(**args)


def test_numpy_integers_and_both_gamma_spellings():
    head = Fourier_Head(np.int64(6), np.int32(30), np.int64(5), regularization_gamma=np.float32(1e-3))
    assert (head.dim_input, head.dim_output, head.num_frequencies) == (6, 30, 5)
    assert head.regularization_gamma == head.regularizion_gamma == pytest.approx(1e-3)
    head.regularization_gamma = 0.5
    assert head.regularizion_gamma == 0.5
    with pytest.raises(ValueError, match="regularization_gamma"):
        head.regularization_gamma = -1
    with pytest.raises(ValueError, match="num_frequencies"):
        Fourier_Head_MLE(6, 0)


def test_regularization_loss_collects_every_head():
    torch.manual_seed(3)
    model = nn.ModuleDict({"a": Fourier_Head(6, 30, 5, regularization_gamma=1e-3),
                           "b": Fourier_Head(6, 10, 3, regularization_gamma=1e-2),
                           "c": Fourier_Head(6, 10, 3), "d": Fourier_Head_MLE(6, 4, regularization_gamma=1e-3)})
    x = torch.randn(4, 6)
    for module in model.values():
        module(x)
    want = sum(model[k].loss_regularization for k in "abd")
    torch.testing.assert_close(regularization_loss(model), want)
    assert regularization_loss(nn.Linear(3, 4)).item() == 0


# ---- the reference's API ----------------------------------------------------------------------------

def test_reference_api_names():
    torch.manual_seed(4)
    head = Fourier_Head(6, 30, 5, init_denominator_weight=1, init_denominator_bias=1)
    x = torch.randn(4, 6)
    torch.testing.assert_close(head.compute_fourier_coefficients(x), head.fourier_coefficients(x, normalized=False))
    seen = []
    head.save_learned_pmfs = {"save_pmfs_function": lambda centres, pmfs, info: seen.append((centres, pmfs, info))}
    head(x.reshape(2, 2, 6))
    centres, pmfs, info = seen[0]
    torch.testing.assert_close(centres, fh.bin_centers(30).float())
    torch.testing.assert_close(pmfs, head.pmf(x).reshape(2, 2, 30))
    assert info is head.save_learned_pmfs
    mle = Fourier_Head_MLE(6, 5, init_denominator_weight=1, init_denominator_bias=1)
    density = mle(x)
    y = torch.rand(4) * 2 - 1
    torch.testing.assert_close(density.evaluate_at(y), density.pdf(y))
    torch.testing.assert_close(density.evaluate_cdf(y), density.cdf(y))
    assert density.sample_from(7).shape == (4, 7)
    assert density.fourier_coeffs_normalized.shape == (4, 5)
    mle.load_state_dict(head.state_dict())
    torch.testing.assert_close(mle.compute_fourier_coefficients(x), head.compute_fourier_coefficients(x))


# ---- one copyable, torch-only file ----------------------------------------------------------------

def test_head_file_imports_only_torch_and_the_standard_library():
    tree = ast.parse((ROOT / "fourier_head.py").read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    third_party = modules - set(sys.stdlib_module_names) - {"torch", "fourier_head_fused"}
    assert third_party == set()


def test_head_file_copied_alone_trains(tmp_path):
    """fourier_head.py alone in another project (no fused module, no Triton): every feature works."""
    (tmp_path / "fourier_head.py").write_text((ROOT / "fourier_head.py").read_text())
    script = f"""
import sys
sys.modules["fourier_head_fused"] = None  # as in a project that has only this file
import torch, fourier_head
assert fourier_head.__file__.startswith({str(tmp_path)!r}), fourier_head.__file__
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(),
                            fourier_head.Fourier_Head(16, 40, 8, regularization_gamma=1e-3))
opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
x, y = torch.randn(64, 4), torch.randint(0, 40, (64,))
losses = []
for _ in range(20):
    loss = torch.nn.functional.cross_entropy(model(x), y) + fourier_head.regularization_loss(model)
    opt.zero_grad(); loss.backward(); opt.step(); losses.append(loss.item())
assert losses[-1] < losses[0], losses
assert fourier_head._fused_module() is None
mle = fourier_head.Fourier_Head_MLE(4, 6)
assert mle(x).sample(3).shape == (64, 3)
assert fourier_head.smoothness(torch.softmax(model(x), -1)).shape == (64,)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and "ok" in done.stdout, done.stdout + done.stderr
