"""Checks behind Table 4 (noise_table.py): spectral entropy on known spectra, the noise colours' slopes, the
noise -> PMF step, and the schema of results/noise_table.json (committed and from a --quick run)."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import entropy

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "noise_table.py"  # for the `script`, `run_quick` fixtures (conftest)
COLOURS = ["brown", "pink", "white", "blue"]
ROW_KEYS = {"noise", "psd_exponent", "spectral_slope", "num_trials"} | {
    f"{prefix}{metric}{suffix}" for metric in ("l2", "spectral_entropy")
    for prefix, suffix in (("", "_mean"), ("", "_std"), ("", "_mean_se"), ("", "_mean_ci95"), ("paper_", ""),
                           ("", "_consistent_with_paper"))}


@pytest.mark.parametrize("m", [16, 255, 4096])
def test_spectral_entropy_of_a_delta_spectrum_is_zero(script, m):
    uniform_pmf = np.full(m, 1 / m)  # all power at f = 0
    cosine = np.cos(2 * np.pi * 3 * np.arange(m) / m)  # all power at f = 3
    assert script.spectral_entropy(uniform_pmf) == pytest.approx(0, abs=1e-12)
    assert script.spectral_entropy(cosine) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("m", [16, 255, 4096])
def test_spectral_entropy_of_a_flat_spectrum_is_its_maximum(script, m):
    impulse = np.zeros(m)
    impulse[0] = 1.0  # |rfft|^2 = 1 in every one of the m // 2 + 1 bins
    maximum = np.log(m // 2 + 1)
    assert script.spectral_entropy(impulse) == pytest.approx(maximum, rel=1e-12)
    assert script.spectral_entropy(impulse, log_base=2) == pytest.approx(np.log2(m // 2 + 1), rel=1e-12)
    others = np.random.default_rng(0).random((50, m))
    assert np.all(script.spectral_entropy(others) < maximum)


def test_spectral_entropy_equals_scipy_entropy_of_the_periodogram(script):
    y = np.random.default_rng(1).random((3, 300))
    reference = [entropy(np.abs(np.fft.rfft(row)) ** 2) for row in y]  # scipy normalises, natural log
    np.testing.assert_allclose(script.spectral_entropy(y), reference, rtol=1e-12)


@pytest.mark.parametrize("colour", COLOURS)
def test_noise_colours_have_the_expected_spectral_slope(script, colour):
    beta = script.COLOURS[colour]
    x = script.colored_noise(beta, 200, 1024, np.random.default_rng(2))
    assert script.spectral_slope(x) == pytest.approx(-beta, abs=0.05)
    np.testing.assert_allclose(x.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(x.std(axis=1), 1, rtol=1e-12)


def test_noise_to_pmf_is_a_pmf_and_ignores_offset_and_scale(script):
    x = script.colored_noise(1.0, 5, 256, np.random.default_rng(3))
    pmf = script.noise_to_pmf(x)
    assert np.all(pmf >= 0) and np.allclose(pmf.sum(axis=1), 1) and np.all(pmf.min(axis=1) == 0)
    np.testing.assert_allclose(script.noise_to_pmf(3.7 * x - 11.0), pmf, rtol=1e-10, atol=1e-15)


def check_schema(results, num_trials):
    assert [r["noise"] for r in results["rows"]] == COLOURS
    for row in results["rows"]:
        assert set(row) == ROW_KEYS
        assert row["num_trials"] == num_trials
        for metric in ("l2", "spectral_entropy"):
            lo, hi = row[f"{metric}_mean_ci95"]
            assert lo <= row[f"{metric}_mean"] <= hi
            assert row[f"{metric}_std"] > row[f"{metric}_mean_se"] > 0
            assert isinstance(row[f"{metric}_consistent_with_paper"], bool)
    assert {"command", "config", "provenance", "sensitivity"} <= set(results)
    assert results["config"]["seed"] == 0 and "noise_table.py" in results["command"]
    assert {"commit", "torch", "wall_seconds", "cpu_seconds"} <= set(results["provenance"])


def test_quick_cli(run_quick):
    tmp_path = run_quick()
    results = json.loads((tmp_path / "results" / "noise_table.json").read_text())
    check_schema(results, num_trials=64)
    assert results["l2_increases_brown_to_blue"] and results["config"]["quick"]
    assert (tmp_path / "figures" / "noise_table4.png").stat().st_size > 10_000


def test_committed_table():  # its README block: misc/test_misc.py::test_readme_blocks_match_committed_results
    results = json.loads((HERE / "results" / "noise_table.json").read_text())
    check_schema(results, num_trials=1000)
    config = results["config"]
    assert (config["num_points"], config["num_trials"], config["num_bootstrap"]) == (4096, 1000, 1000)
    assert results["l2_increases_brown_to_blue"]
    assert all(r["l2_consistent_with_paper"] for r in results["rows"])
