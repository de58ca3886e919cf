"""Tests that guard the science of `fourier_head.py` (CPU, float32 and float64)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fourier_head import Fourier_Head, Fourier_Head_MLE, FourierHead, autocorrelate, smoothness


# ---- an independent float64 implementation, written straight from the paper's equations -------

def math_reference(head: Fourier_Head, x: torch.Tensor):
    """(log-output, pmf, autocorrelation c) in float64 by the defining sums, rows flattened."""
    fc = head.fc_extract_autocorrelation_params
    params = x.reshape(-1, x.shape[-1]).double() @ fc.weight.double().T + fc.bias.double()
    n = head.num_frequencies + 1
    a = torch.complex(params[:, :n], params[:, n:])
    # c_k = sum_j a_{j+k} conj(a_j)
    c = torch.stack([(a[:, k:] * a[:, : n - k].conj()).sum(-1) for k in range(n)], dim=-1)
    m = head.dim_output
    z = torch.tensor([-1 + (2 * i + 1) / m for i in range(m)], dtype=torch.float64)
    k = torch.arange(1, n, dtype=torch.float64)
    basis = torch.exp(1j * math.pi * z[:, None] * k[None, :])  # (m, N)
    pdf = 0.5 + ((c[:, 1:] / c[:, :1].real) @ basis.T).real
    pmf = pdf / pdf.sum(-1, keepdim=True)
    return torch.log(pmf + head.const_inverse_softmax), pmf, c


def rel_err(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    d=st.integers(1, 24),
    m=st.one_of(st.integers(2, 64), st.sampled_from([50, 257, 1024, 4096])),
    n_freq=st.one_of(st.integers(1, 24), st.sampled_from([64, 256, 550])),
    method=st.sampled_from(["auto", "fft", "matmul"]),
    scale=st.sampled_from([1.0, 100.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_matches_float64_math(lead, d, m, n_freq, method, scale, seed):
    torch.manual_seed(seed)
    head = Fourier_Head(d, m, n_freq, pmf_method=method, init_denominator_weight=scale,
                        init_denominator_bias=scale)
    x = torch.randn(*lead, d)
    out = head(x)
    assert out.shape == (*lead, m) and out.dtype == torch.float32
    ref_out, ref_pmf, _ = math_reference(head, x)
    assert rel_err(head.pmf(x).reshape(-1, m), ref_pmf) < 1e-5
    assert torch.allclose(out.reshape(-1, m).double(), ref_out, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("m,n_freq", [(4096, 550), (50, 12), (18, 8)])
def test_chronos_shape_float32_vs_float64(m, n_freq):
    torch.manual_seed(0)
    head = Fourier_Head(384, m, n_freq, init_denominator_weight=1000, init_denominator_bias=10)
    x = torch.randn(8, 384)
    _, ref_pmf, _ = math_reference(head, x)
    assert rel_err(head.pmf(x), ref_pmf) <= 1e-5


@pytest.mark.parametrize("method", ["fft", "matmul"])
def test_pmf_is_a_distribution(method):
    torch.manual_seed(1)
    head = Fourier_Head(16, 100, 30, pmf_method=method, init_denominator_weight=1, init_denominator_bias=1)
    pmf = head.pmf(torch.randn(64, 16))
    assert (pmf >= 0).all()
    torch.testing.assert_close(pmf.sum(-1), torch.ones(64), atol=1e-6, rtol=0)
    # softmax of the output recovers the pmf up to the epsilon floor
    out = head(torch.randn(3, 16))
    torch.testing.assert_close(out.exp().sum(-1), 1 + 100 * head.const_inverse_softmax * torch.ones(3),
                               atol=1e-5, rtol=0)


def test_evaluate_pdf_is_a_density():
    torch.manual_seed(2)
    head = Fourier_Head(8, 50, 10, init_denominator_weight=1, init_denominator_bias=1)
    coeffs = head.fourier_coefficients(torch.randn(5, 8))
    assert coeffs.shape == (5, 11)
    torch.testing.assert_close(coeffs[:, 0], torch.ones(5, dtype=coeffs.dtype))
    z = torch.linspace(-1, 1, 4001)
    pdf = head.evaluate_pdf(coeffs[:, 1:], z)
    assert pdf.shape == (5, 4001)
    assert (pdf > -1e-6).all()
    torch.testing.assert_close(torch.trapezoid(pdf, z, dim=-1), torch.ones(5), atol=1e-4, rtol=0)
    # at the bin centres it is proportional to the pmf
    pdf_bins = head.evaluate_pdf(coeffs[:, 1:])
    x = torch.randn(5, 8)
    pdf_bins = head.evaluate_pdf(head.fourier_coefficients(x)[:, 1:])
    torch.testing.assert_close(pdf_bins / pdf_bins.sum(-1, keepdim=True), head.pmf(x), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("m,n_freq", [(9, 4), (5, 12)])  # (5, 12): more coefficients than bins (aliasing)
def test_gradcheck_float64(m, n_freq):
    torch.manual_seed(3)
    for method in ("fft", "matmul"):
        head = Fourier_Head(5, m, n_freq, regularizion_gamma=0.1, pmf_method=method,
                            init_denominator_weight=1, init_denominator_bias=1).double()
        x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)

        def f(inp):
            out = head(inp)
            return out, head.loss_regularization

        assert torch.autograd.gradcheck(f, (x,))
        assert head(x).dtype == torch.float64


def test_autocorrelation_and_regulariser_formula():
    torch.manual_seed(4)
    gamma = 1e-3
    head = Fourier_Head(6, 20, 7, regularizion_gamma=gamma, init_denominator_weight=1, init_denominator_bias=1)
    x = torch.randn(10, 6)
    head(x)
    _, _, c = math_reference(head, x)
    torch.testing.assert_close(head.fourier_coefficients(x, normalized=False).to(torch.complex128), c,
                               atol=1e-5, rtol=1e-5)
    k = torch.arange(8, dtype=torch.float64)
    expected = gamma * 2 * (2 * math.pi ** 2 * k ** 2 * c.abs() ** 2).sum(-1).mean()
    assert abs(head.loss_regularization.item() - expected.item()) < 1e-5 * expected.item()


def test_regulariser_changes_gradients_only_when_gamma_positive():
    torch.manual_seed(5)
    x, y = torch.randn(32, 6), torch.randint(0, 20, (32,))
    grads = {}
    for gamma in (0.0, 1e-2):
        torch.manual_seed(0)
        head = Fourier_Head(6, 20, 7, regularizion_gamma=gamma, init_denominator_weight=1, init_denominator_bias=1)
        loss = torch.nn.functional.cross_entropy(head(x), y) + head.loss_regularization
        loss.backward()
        grads[gamma] = head.fc_extract_autocorrelation_params.weight.grad.clone()
        if gamma == 0:
            assert head.loss_regularization.item() == 0
        else:
            assert head.loss_regularization.item() > 0 and head.loss_regularization.requires_grad
    assert not torch.allclose(grads[0.0], grads[1e-2])


def test_normalized_regulariser_is_scale_invariant():
    torch.manual_seed(6)
    x = torch.randn(10, 6)
    values = {}
    for kind in ("reference", "normalized"):
        head = Fourier_Head(6, 20, 7, regularization_gamma=1.0, regularization=kind)
        head(x)
        before = head.loss_regularization.item()
        with torch.no_grad():
            head.fc_extract_autocorrelation_params.weight.mul_(3)
            head.fc_extract_autocorrelation_params.bias.mul_(3)
        head(x)
        values[kind] = (before, head.loss_regularization.item())
    assert values["normalized"][0] == pytest.approx(values["normalized"][1], rel=1e-4)
    assert values["reference"][1] == pytest.approx(81 * values["reference"][0], rel=1e-4)


def test_gamma_alias():
    assert Fourier_Head(4, 10, 3, regularization_gamma=1e-6).regularizion_gamma == 1e-6
    assert Fourier_Head(4, 10, 3, 1e-6).regularizion_gamma == 1e-6
    with pytest.raises(ValueError):
        Fourier_Head(4, 10, 3, regularizion_gamma=1.0, regularization_gamma=2.0)
    assert FourierHead is Fourier_Head


def test_state_dict_round_trip_and_reference_names():
    torch.manual_seed(7)
    head = Fourier_Head(12, 30, 5)
    sd = head.state_dict()
    # exactly the reference layer's keys: constants are not saved
    assert set(sd) == {"fc_extract_autocorrelation_params.weight", "fc_extract_autocorrelation_params.bias"}
    # a checkpoint in the reference layout (plain tensors under the reference names) loads
    reference_sd = {k: v.clone() for k, v in sd.items()}
    other = Fourier_Head(12, 30, 5)
    other.load_state_dict(reference_sd)
    x = torch.randn(4, 12)
    torch.testing.assert_close(other(x), head(x))


def test_to_moves_buffers_and_double():
    head = Fourier_Head(4, 10, 3).to(torch.float64)
    assert all(b.dtype == torch.float64 for b in head.buffers())
    assert head(torch.randn(2, 4, dtype=torch.float64)).dtype == torch.float64


def test_leading_dims_and_non_contiguous_input():
    torch.manual_seed(8)
    head = Fourier_Head(6, 11, 4)
    x = torch.randn(2, 3, 4, 6)
    out = head(x)
    assert out.shape == (2, 3, 4, 11)
    torch.testing.assert_close(out.reshape(-1, 11), head(x.reshape(-1, 6)))
    xt = torch.randn(6, 5).T  # non-contiguous
    torch.testing.assert_close(head(xt), head(xt.contiguous()))
    assert head(torch.randn(6)).shape == (11,)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_runs_float32_inside(dtype):
    torch.manual_seed(9)
    backbone = torch.nn.Linear(16, 32)
    head = Fourier_Head(32, 64, 20, regularizion_gamma=1e-6)
    x = torch.randn(8, 16)
    with torch.autocast("cpu", dtype=dtype):
        h = backbone(x)
        out = head(h)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.isfinite(head.loss_regularization)
    torch.testing.assert_close(out, head(h.float()), atol=1e-5, rtol=1e-5)
    out.sum().backward()
    assert torch.isfinite(head.fc_extract_autocorrelation_params.weight.grad).all()


def test_many_frequencies_and_tiny_outputs():
    torch.manual_seed(10)
    for m, n_freq in [(2, 1), (2, 7), (5, 5), (5, 40)]:
        head = Fourier_Head(3, m, n_freq, init_denominator_weight=1, init_denominator_bias=1)
        x = torch.randn(4, 3)
        _, ref_pmf, _ = math_reference(head, x)
        assert rel_err(head.pmf(x), ref_pmf) < 1e-5


@pytest.mark.parametrize("method", ["matmul", "fft"])
def test_torch_compile_traces_forward_backward_and_regulariser(method):
    # a user's torch.compile must trace the head (plain ops), with the eager path's numbers and gradients
    torch._dynamo.reset()
    head = Fourier_Head(8, 40, 6, regularizion_gamma=1e-3, pmf_method=method)
    x = torch.randn(2, 3, 8, requires_grad=True)

    def loss(x):
        return head(x).logsumexp(-1).square().mean() + head.loss_regularization, head.loss_regularization

    (want, want_reg), (got, got_reg) = loss(x), torch.compile(loss, backend="aot_eager", fullgraph=True)(x)
    want_grad, = torch.autograd.grad(want, x)
    got_grad, = torch.autograd.grad(got, x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_reg, want_reg)
    torch.testing.assert_close(got_grad, want_grad)
    assert want_reg > 0


@pytest.mark.parametrize("regularization", ["reference", "normalized"])
@pytest.mark.parametrize("n_freq", [5, 70])  # direct sums (N+1 <= 64) and the FFT
def test_regulariser_equals_the_autocorrelation_formula(regularization, n_freq):
    from fourier_head import _regularizer, fourier_penalty
    params = torch.randn(7, 2 * (n_freq + 1), dtype=torch.float64, requires_grad=True)
    n = n_freq + 1
    want = 1e-3 * 2 * fourier_penalty(autocorrelate(torch.complex(params[:, :n], params[:, n:])),
                                      regularization == "normalized").mean()
    got = _regularizer(params, 1e-3, regularization == "normalized")
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, params)[0], torch.autograd.grad(want, params)[0])


# ---- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(dim_input=4, dim_output=1, num_frequencies=3), "dim_output"),
    (dict(dim_input=4, dim_output=10, num_frequencies=0), "num_frequencies"),
    (dict(dim_input=0, dim_output=10, num_frequencies=3), "dim_input"),
    (dict(dim_input=4, dim_output=10.0, num_frequencies=3), "dim_output"),
    (dict(dim_input=4, dim_output=10, num_frequencies=3, pmf_method="dense"), "pmf_method"),
    (dict(dim_input=4, dim_output=10, num_frequencies=3, regularization="l1"), "regularization"),
])
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Fourier_Head(**kwargs)


def test_bad_forward_input():
    head = Fourier_Head(4, 10, 3)
    with pytest.raises(ValueError, match=r"dim_input=4.*got last dimension 5"):
        head(torch.randn(2, 5))
    with pytest.raises(TypeError, match="floating"):
        head(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="dim_input=4"):
        head(torch.tensor(1.0))
    mle = Fourier_Head_MLE(4, 3)
    with pytest.raises(ValueError, match="dim_input=4"):
        mle(torch.randn(2, 3))


# ---- the continuous (MLE) head ---------------------------------------------------------------------

def test_mle_density_cdf_and_grad():
    torch.manual_seed(11)
    head = Fourier_Head_MLE(4, 6, regularizion_gamma=1e-3, init_denominator_weight=1, init_denominator_bias=1)
    dens = head(torch.randn(3, 4))
    grid = torch.linspace(-1, 1, 20001)
    pdf = dens.pdf(grid.expand(3, -1))
    assert pdf.shape == (3, 20001) and (pdf >= 0).all()
    torch.testing.assert_close(torch.trapezoid(pdf, grid, dim=-1), torch.ones(3), atol=1e-5, rtol=0)
    ends = dens.cdf(torch.tensor([[-1.0, 1.0]] * 3))
    torch.testing.assert_close(ends, torch.tensor([[0.0, 1.0]] * 3), atol=1e-6, rtol=0)
    cdf = dens.cdf(grid[1:].expand(3, -1))
    torch.testing.assert_close(cdf, torch.cumulative_trapezoid(pdf, grid, dim=-1), atol=1e-5, rtol=0)
    assert (cdf.diff(dim=-1) >= -1e-6).all()
    # one point per row, and the NLL trains
    y = torch.rand(3) * 2 - 1
    loss = -dens.log_prob(y).mean() + head.loss_regularization
    loss.backward()
    assert head.fc_extract_autocorrelation_params.weight.grad.abs().sum() > 0
    assert dens.pdf(y).shape == (3,)
    assert dens.pdf(torch.tensor([1.5, -2.0, 0.0]))[:2].eq(0).all()


def test_mle_density_agrees_with_classification_head():
    torch.manual_seed(12)
    cls = Fourier_Head(5, 40, 6)
    mle = Fourier_Head_MLE(5, 6)
    mle.load_state_dict(cls.state_dict())
    x = torch.randn(7, 5)
    z = torch.linspace(-1, 1, 101)
    torch.testing.assert_close(mle(x).pdf(z.expand(7, -1)),
                               cls.evaluate_pdf(cls.fourier_coefficients(x)[:, 1:], z), atol=1e-5, rtol=1e-4)


def test_mle_sampling_goodness_of_fit():
    from scipy import stats

    torch.manual_seed(13)
    head = Fourier_Head_MLE(3, 5, init_denominator_weight=1, init_denominator_bias=1).double()
    dens = head(torch.randn(2, 3, dtype=torch.float64))
    samples = dens.sample(4000, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (2, 4000) and samples.abs().max() <= 1
    for row in range(2):
        def cdf(values, row=row):
            pts = torch.as_tensor(values, dtype=torch.float64).reshape(1, -1).expand(2, -1)
            return dens.cdf(pts)[row].detach().numpy()

        assert stats.kstest(samples[row].numpy(), cdf).pvalue > 1e-3


def test_mle_batch_shapes():
    head = Fourier_Head_MLE(4, 3)
    dens = head(torch.randn(2, 5, 4))
    assert dens.pdf(torch.zeros(2, 5)).shape == (2, 5)
    assert dens.pdf(torch.zeros(2, 5, 7)).shape == (2, 5, 7)
    assert dens.sample(3).shape == (2, 5, 3)
    with pytest.raises(ValueError, match="batch shape"):
        dens.pdf(torch.zeros(3, 3))


# ---- smoothness -------------------------------------------------------------------------------------

def scipy_smoothness(p: np.ndarray) -> float:
    from scipy.ndimage import gaussian_filter1d

    return sum(6 / (math.pi ** 2 * s ** 2) * np.linalg.norm(p - gaussian_filter1d(p, s, mode="wrap", radius=len(p) - 1))
               for s in range(1, 101))


@pytest.mark.parametrize("m", [2, 3, 18, 50, 257, 1000])
def test_smoothness_matches_scipy(m):
    rng = np.random.default_rng(m)
    pmfs = rng.random((4, m)) ** 3
    pmfs /= pmfs.sum(-1, keepdims=True)
    ours = smoothness(torch.tensor(pmfs)).numpy()
    ref = np.array([scipy_smoothness(p) for p in pmfs])
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)


def test_smoothness_properties():
    m = 64
    uniform = torch.full((m,), 1 / m)
    assert smoothness(uniform).item() == pytest.approx(0, abs=1e-12)
    spike = torch.zeros(m)
    spike[10] = 1
    wide = torch.exp(-0.5 * ((torch.arange(m) - 30) / 6.0) ** 2)
    wide /= wide.sum()
    assert smoothness(spike) > smoothness(wide) > 0
    batch = torch.stack([spike, wide, uniform]).reshape(3, 1, m)
    assert smoothness(batch).shape == (3, 1)
    torch.testing.assert_close(smoothness(batch)[:, 0], torch.stack([smoothness(v) for v in (spike, wide, uniform)]))
    with pytest.raises(ValueError):
        smoothness(torch.tensor(1.0))


def test_autocorrelate_matches_definition():
    torch.manual_seed(14)
    a = torch.randn(3, 9, dtype=torch.complex128)
    c = torch.stack([(a[:, k:] * a[:, : 9 - k].conj()).sum(-1) for k in range(9)], dim=-1)
    torch.testing.assert_close(autocorrelate(a), c)


def test_log_pmf_from_params_and_its_gradient():
    torch.manual_seed(16)
    head = Fourier_Head(6, 40, 7)
    x = torch.randn(3, 6)
    params = head.fc_extract_autocorrelation_params(x)
    torch.testing.assert_close(head.log_pmf_from_params(params), head(x))
    p = params.detach().double().requires_grad_()
    ref = torch.log(head.double().pmf_from_params(p) + head.const_inverse_softmax)
    g = torch.randn_like(ref)
    (want,) = torch.autograd.grad(ref, p, g)
    (got,) = torch.autograd.grad(head.log_pmf_from_params(p), p, g)
    torch.testing.assert_close(got, want)


def test_functional_forms_for_stacked_models():
    from fourier_head import FourierDensity, fourier_penalty

    torch.manual_seed(15)
    head = Fourier_Head(6, 30, 5, regularizion_gamma=1e-2)
    x = torch.randn(4, 6)
    params = head.fc_extract_autocorrelation_params(x)
    torch.testing.assert_close(head.pmf_from_params(params), head.pmf(x))
    # zero-padding the coefficients to more frequencies leaves the density unchanged
    big = Fourier_Head(6, 30, 9)
    padded = torch.zeros(4, 20)
    padded[:, :6], padded[:, 10:16] = params[:, :6], params[:, 6:]
    torch.testing.assert_close(big.pmf_from_params(padded), head.pmf(x))
    head(x)
    c = head.fourier_coefficients(x, normalized=False)
    torch.testing.assert_close(1e-2 * 2 * fourier_penalty(c).mean(), head.loss_regularization)
    dens = FourierDensity.from_params(params.reshape(2, 2, -1))
    z = torch.linspace(-1, 1, 7)
    torch.testing.assert_close(dens.pdf_on_grid(z).reshape(4, 7), dens.pdf(z.expand(2, 2, 7)).reshape(4, 7))
    torch.testing.assert_close(dens.pdf_on_grid(z).reshape(4, 7), head.evaluate_pdf(head.fourier_coefficients(x)[:, 1:], z),
                               atol=1e-5, rtol=1e-5)
