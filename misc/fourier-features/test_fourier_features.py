"""Smoke test of ntk.py --quick, plus checks of the encoding and the kernel estimate."""

import json
import math
from pathlib import Path

import numpy as np
import torch

SCRIPT = Path(__file__).resolve().parent / "ntk.py"  # for the `script`, `run_quick` fixtures (conftest)


def test_fourier_features_are_unit_norm_and_p_inf_keeps_one_harmonic(script):
    x = torch.rand(7, 1)
    for p in (0.0, 1.0, math.inf):
        features = script.FourierFeatures(8, p)(x)
        assert features.shape == (7, 16)
        torch.testing.assert_close(features.norm(dim=-1), torch.ones(7))
    only_first = script.FourierFeatures(8, math.inf)(x)
    assert torch.all(only_first[:, 1:8] == 0) and torch.all(only_first[:, 9:] == 0)


def test_normalized_ntk_is_a_correlation_matrix(script):
    torch.manual_seed(0)
    config = script.Config(width=16, num_networks=1)
    net = script.ff_network(config, 1.0)
    xs = torch.linspace(-0.5, 0.5, 9)[:, None]
    jacobian = {}  # per-input gradients by a plain loop, independent of the torch.func path
    for x in xs:
        net.zero_grad()
        net(x[None])[0, 0].backward()
        for name, param in net.named_parameters():
            jacobian.setdefault(name, []).append(param.grad.clone())
    kernel = script.normalized_ntk({k: torch.stack(v) for k, v in jacobian.items()})
    torch.manual_seed(0)  # ff_kernel builds the same network from the same seed, then uses torch.func
    np.testing.assert_allclose(script.ff_kernel(config, 1.0, 9), kernel, atol=1e-5)
    np.testing.assert_allclose(np.diag(kernel), 1, atol=1e-6)
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-6)
    assert np.linalg.eigvalsh(kernel).min() > -1e-6
    # x = -0.5 and x = 0.5 are the same point for the encoding: the kernel wraps around
    assert kernel[0, -1] > 1 - 1e-5


def test_linear_head_kernel_is_local_fourier_head_kernel_is_broad(script):
    torch.manual_seed(0)
    config = script.Config(num_networks=3, head_bins=16, head_dim_input=8)
    linear = script.head_kernel(config, "linear")
    fourier = script.head_kernel(config, "fourier", 2)
    assert abs(linear[8, 9]) < 0.3 and fourier[8, 9] > 0.8


def test_quick_cli(run_quick):
    tmp_path = run_quick()
    results = json.loads((tmp_path / "results" / "ntk.json").read_text())
    assert len(results["ff"]) == 6 and "linear" in results["heads"]
    for name in ("spectral_weights", "kernels", "cross_section", "spectrum", "full_a", "full_spectrum",
                 "head_kernels", "head_ntk"):
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 10_000
