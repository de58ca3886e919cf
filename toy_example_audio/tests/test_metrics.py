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


# ---- NLL and expected calibration error (hand-computed cases) -----------------------------------

def test_nll_by_hand(audio):
    pmfs = np.array([[0.5, 0.5, 0.0], [0.1, 0.0, 0.9]])
    assert audio.metrics.nll(pmfs, np.array([0, 2])) == pytest.approx(-(np.log(0.5) + np.log(0.9)) / 2)
    assert audio.metrics.nll(pmfs, np.array([2, 1])) == pytest.approx(-np.log(1e-12))  # floored, finite


def test_ece_by_hand(audio):
    ece = audio.metrics.expected_calibration_error
    # confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.3 (right): 15 bins of width 1/15
    pmfs = np.array([[0.9, 0.1, 0.0], [0.9, 0.05, 0.05], [0.6, 0.4, 0.0], [0.3, 0.3, 0.4]])
    labels = np.array([0, 1, 0, 2])
    # bin (0.8667, 0.9333]: 2 clips, acc 0.5, conf 0.9; bin (0.5333, 0.6]: acc 1, conf 0.6; bin (0.3333, 0.4]: top
    # class 2 with conf 0.4, right
    expected = 2 / 4 * abs(0.5 - 0.9) + 1 / 4 * abs(1 - 0.6) + 1 / 4 * abs(1 - 0.4)
    assert ece(pmfs, labels) == pytest.approx(expected)
    assert ece(np.eye(4), np.arange(4)) == pytest.approx(0.0)          # confident and right
    assert ece(np.eye(4), np.array([1, 2, 3, 0])) == pytest.approx(1.0)  # confident and wrong
    uniform = np.full((6, 3), 1 / 3)
    assert ece(uniform, np.array([0, 0, 1, 1, 2, 2])) == pytest.approx(0.0, abs=1e-12)  # argmax 0: acc 1/3


def test_tempo_metrics_has_ece(audio):
    out = audio.metrics.tempo_metrics(np.eye(3), np.arange(3), np.array([52.0, 57.0, 62.0]))
    assert out["ece"] == pytest.approx(0.0) and out["nll"] == pytest.approx(0.0)
