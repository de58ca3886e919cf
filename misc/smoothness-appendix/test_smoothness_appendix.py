"""Smoke test of square_waves.py --quick, plus the numeric checks behind Fig. 6 and Fig. 7."""

import json
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from fourier_head import smoothness

SCRIPT = Path(__file__).resolve().parent / "square_waves.py"  # for the `script`, `run_quick` fixtures (conftest)


def test_fft_residuals_equal_scipy_wrap_filter(script):
    y = np.random.default_rng(0).random((2, 300))
    sigmas = np.array([1.0, 7.0, 100.0])
    kernels = np.fft.rfft(script.folded_gaussian_kernels(300, sigmas), axis=-1)
    for sigma, kernel in zip(sigmas, kernels):
        ours = np.fft.irfft(np.fft.rfft(y, axis=-1) * kernel, n=300, axis=-1)
        ref = gaussian_filter1d(y, sigma, mode="wrap", radius=299, axis=-1)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-13)
    l2 = script.smoothness_by_discrepancy(y)["L2"]
    np.testing.assert_allclose(l2, smoothness(torch.from_numpy(y)).numpy(), rtol=1e-10)


def test_six_square_wave_values_match_paper(script):
    config = script.Config()
    values = smoothness(torch.from_numpy(script.square_wave_pmfs(list(script.PAPER_FIG6), config))).tolist()
    assert [round(v, 5) for v in values] == list(script.PAPER_FIG6.values())


def test_quick_cli(run_quick):
    tmp_path = run_quick()
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["all_match_paper_5dp"] and summary["l2_monotone"]
    assert summary["provenance"]["wall_seconds"] > 0
    for name in ("square_waves_fig6.png", "smoothness_l2_vs_l1_fig7.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 10_000
