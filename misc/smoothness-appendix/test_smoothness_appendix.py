"""Smoke test of square_waves.py --quick, plus the numeric checks behind Fig. 6 and Fig. 7."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from fourier_head import smoothness

SCRIPT = Path(__file__).resolve().parent / "square_waves.py"


def load_script():
    spec = importlib.util.spec_from_file_location("square_waves", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_fft_residuals_equal_scipy_wrap_filter():
    sw = load_script()
    y = np.random.default_rng(0).random((2, 300))
    sigmas = np.array([1.0, 7.0, 100.0])
    kernels = np.fft.rfft(sw.folded_gaussian_kernels(300, sigmas), axis=-1)
    for sigma, kernel in zip(sigmas, kernels):
        ours = np.fft.irfft(np.fft.rfft(y, axis=-1) * kernel, n=300, axis=-1)
        ref = gaussian_filter1d(y, sigma, mode="wrap", radius=299, axis=-1)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-13)
    l2 = sw.smoothness_by_discrepancy(y)["L2"]
    np.testing.assert_allclose(l2, smoothness(torch.from_numpy(y)).numpy(), rtol=1e-10)


def test_six_square_wave_values_match_paper():
    sw = load_script()
    config = sw.Config()
    values = smoothness(torch.from_numpy(sw.square_wave_pmfs(list(sw.PAPER_FIG6), config))).tolist()
    assert [round(v, 5) for v in values] == list(sw.PAPER_FIG6.values())


def test_quick_cli(tmp_path):
    subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out-dir", str(tmp_path / "results"),
                    "--fig-dir", str(tmp_path / "figures")], check=True, capture_output=True)
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["all_match_paper_5dp"] and summary["l2_monotone"]
    assert summary["provenance"]["wall_seconds"] > 0
    for name in ("square_waves_fig6.png", "smoothness_l2_vs_l1_fig7.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 10_000
