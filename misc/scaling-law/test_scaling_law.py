"""Smoke test of scaling_law.py --quick, plus checks of its building blocks."""

import json
from pathlib import Path

import numpy as np
import torch

from fourier_head import smoothness

SCRIPT = Path(__file__).resolve().parent / "scaling_law.py"  # for the `script`, `run_quick` fixtures (conftest)


def test_sigma_terms_sum_to_the_metric(script):
    y = np.random.default_rng(0).random((3, 64))
    total = script.sigma_terms(y, range(1, 101)).sum(axis=0)
    np.testing.assert_allclose(total, smoothness(torch.from_numpy(y)).numpy(), rtol=1e-10)


def test_truncations_are_pmfs_with_the_lemma_a6_normaliser(script):
    grid = script.frequency_grid(128)
    assert grid[0] == 1 and grid[-1] == 63  # N < m/2
    pmfs = script.truncated_pmfs(128, 2.0, grid, 0.9, np.random.default_rng(0))
    assert np.all(pmfs > 0) and np.allclose(pmfs.sum(axis=1), 1)
    # Lemma A.6: sum_j p_N(b_j) = m/2 for N < m, because every cosine k = 1..m-1 sums to 0 over the centres
    z = -1 + (2 * np.arange(128) + 1) / 128
    k = np.arange(1, 128)[:, None]
    assert np.allclose(np.cos(np.pi * k * z + 0.3).sum(axis=1), 0, atol=1e-9)


def test_fit_recovers_a_synthetic_exponent(script):
    n = np.arange(1, 200)
    fit = script.fit_curves(n, 2.0 - 0.5 * n ** -3.0, t=2.0, fit_from=4)
    assert abs(fit["free"]["exponent"] - 3.0) < 1e-3 and fit["theorem"]["relative_rms"] < 1e-9


def test_quick_cli(run_quick):
    tmp_path = run_quick()
    results = json.loads((tmp_path / "results" / "scaling_law.json").read_text())
    assert all(c["monotone"] for c in results["curves"])
    assert json.loads((tmp_path / "results" / "config.json").read_text())["quick"]
    for name in ("smoothness_vs_n.png", "deficit_loglog.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 10_000
