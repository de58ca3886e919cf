"""Metric functions: macro precision/recall/F1 (checked against scikit-learn when installed), MSEs,
smoothness."""

import importlib.util

import numpy as np
import pytest


def test_perfect_and_known_values(audio):
    m = audio.metrics
    assert m.macro_precision_recall_f1(np.array([0, 1, 2]), np.array([0, 1, 2])) == (1.0, 1.0, 1.0)
    # class 0: P=1/3 R=1 F1=1/2; class 1: P=0 (never predicted) R=0 F1=0; class 2: P=1 R=1/2 F1=2/3
    p, r, f1 = m.macro_precision_recall_f1(np.array([0, 0, 2, 0]), np.array([0, 1, 2, 2]))
    assert p == pytest.approx((1 / 3 + 0 + 1) / 3)
    assert r == pytest.approx((1 + 0 + 0.5) / 3)
    assert f1 == pytest.approx((0.5 + 0 + 2 / 3) / 3)


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")
@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn(audio, seed):
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 12, size=200)
    pred = np.where(rng.random(200) < 0.5, labels, rng.integers(0, 15, size=200))  # some classes never true
    expected = precision_recall_fscore_support(labels, pred, average="macro", zero_division=0)[:3]
    assert audio.metrics.macro_precision_recall_f1(pred, labels) == pytest.approx(expected)


def test_tempo_metrics(audio):
    centers = np.array([52.0, 57.0, 62.0, 67.0])
    pmfs = np.array([[0.7, 0.1, 0.1, 0.1],      # predicts 0, true 0
                     [0.1, 0.2, 0.6, 0.1],      # predicts 2, true 1
                     [0.25, 0.25, 0.0, 0.5]])   # predicts 3, true 0
    labels = np.array([0, 1, 0])
    out = audio.metrics.tempo_metrics(pmfs, labels, centers)
    assert out["accuracy"] == pytest.approx(1 / 3)
    assert out["mse_class"] == pytest.approx((0 + 1 + 9) / 3)
    assert out["mse_bpm"] == pytest.approx((0 + 25 + 225) / 3)
    assert out["nll"] == pytest.approx(-np.mean(np.log([0.7, 0.2, 0.25])))
    with pytest.raises(ValueError, match="shapes"):
        audio.metrics.tempo_metrics(pmfs, labels[:2], centers)


def test_smoothness_orders_jagged_above_smooth(audio):
    centers = np.arange(33.0)
    labels = np.array([10])
    spike = np.eye(33)[[10]]
    x = np.arange(33)
    bump = np.exp(-0.5 * ((x - 10) / 4.0) ** 2)[None]
    bump /= bump.sum()
    s_spike = audio.metrics.tempo_metrics(spike, labels, centers)["smoothness"]
    s_bump = audio.metrics.tempo_metrics(bump, labels, centers)["smoothness"]
    assert s_bump < s_spike
