"""The saturation cap of an N-frequency Fourier head on m bins: exact value vs brute force and vs the head."""

import numpy as np
import pytest
import torch


@pytest.mark.parametrize("n,m", [(1, 33), (2, 33), (4, 33), (1, 5), (2, 7), (3, 4), (5, 4)])
def test_cap_matches_brute_force(audio, n, m):
    """Maximise bin k's mass over a in C^(N+1) by random search + local refinement; never above the exact
    cap, and the search gets within 1e-3 of it. For N < m the cap is (N+1)/m."""
    sat = audio.saturation
    cap = sat.max_bin_mass(n, m, k=0)
    if n < m:
        assert cap == pytest.approx((n + 1) / m, abs=1e-12)
    e = sat.basis(n, m)
    rng = np.random.default_rng(n * 100 + m)
    a = rng.standard_normal((20000, n + 1)) + 1j * rng.standard_normal((20000, n + 1))
    power = np.abs(a @ e.T) ** 2
    mass = power[:, 0] / power.sum(1)
    assert mass.max() <= cap + 1e-12
    best = a[mass.argmax()]
    step = 0.1
    for _ in range(3000):  # greedy hill climb from the best random draw
        trial = best + step * (rng.standard_normal(n + 1) + 1j * rng.standard_normal(n + 1))
        p_best, p_trial = (np.abs(e @ v) ** 2 for v in (best, trial))
        if p_trial[0] / p_trial.sum() > p_best[0] / p_best.sum():
            best = trial
        else:
            step *= 0.999
    p = np.abs(e @ best) ** 2
    assert cap - 1e-3 <= p[0] / p.sum() <= cap + 1e-12


def test_most_concentrated_pmf_is_reached_by_the_head(audio):
    """The Fejér PMF of saturation.py is what Fourier_Head outputs for a_j = exp(-i pi j z_k)."""
    from fourier_head import Fourier_Head

    sat = audio.saturation
    n, m, k = 2, 33, 10
    head = Fourier_Head(4, m, n).double()
    a = np.exp(-1j * np.pi * np.arange(n + 1) * sat.bin_centers(m)[k])
    with torch.no_grad():
        head.fc_extract_autocorrelation_params.weight.zero_()
        head.fc_extract_autocorrelation_params.bias.copy_(torch.tensor(np.concatenate([a.real, a.imag])))
    with torch.no_grad():
        pmf = head(torch.zeros(1, 4, dtype=torch.float64)).softmax(-1)[0].numpy()
    expected = sat.most_concentrated_pmf(n, m, k)
    eps = sat.EPS
    assert np.allclose(pmf, (expected + eps) / (1 + m * eps), atol=1e-12)
    assert pmf.max() == pytest.approx(((n + 1) / m + eps) / (1 + m * eps))


def test_table_reproduces_the_saturated_smoothness(audio):
    """The committed Fourier heads' smoothness for N <= 4 (issue 17) equals the most concentrated PMF's."""
    rows = {r["num_frequencies"]: r for r in audio.saturation.table(33, grid=(1, 2, 4))}
    assert rows[1]["smoothness_of_most_concentrated"] == pytest.approx(0.01656, abs=5e-6)
    assert rows[2]["smoothness_of_most_concentrated"] == pytest.approx(0.03184, abs=5e-6)
    assert rows[4]["smoothness_of_most_concentrated"] == pytest.approx(0.06776, abs=5e-6)
    assert rows[1]["nll_floor"] == pytest.approx(-np.log((2 / 33 + 1e-5) / (1 + 33e-5)))
