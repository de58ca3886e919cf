"""Metrics of the audio tempo task, as the reference logs them (reference-repo.md §5.4).

accuracy, macro precision / recall / F1 (over the classes present in labels or predictions, a
class with no prediction scoring 0, as scikit-learn's defaults do), MSE of the argmax class index,
MSE in BPM between the predicted and the true bucket's centre, and the paper's smoothness of the
predicted PMFs (lower = smoother); plus the negative log-likelihood of the true class and the
expected calibration error of the top class. numpy + torch only.
"""

import numpy as np
import torch

from fourier_head import smoothness


def macro_precision_recall_f1(pred: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Macro-averaged precision, recall and F1 over the union of predicted and true classes."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    if pred.shape != labels.shape or pred.ndim != 1:
        raise ValueError(f"pred and labels must be 1-D of equal length, got {pred.shape} and {labels.shape}")
    classes = np.union1d(pred, labels)
    precision, recall, f1 = [], [], []
    for c in classes:
        tp = np.sum((pred == c) & (labels == c))
        n_pred, n_true = np.sum(pred == c), np.sum(labels == c)
        p = tp / n_pred if n_pred else 0.0
        r = tp / n_true if n_true else 0.0
        precision.append(p)
        recall.append(r)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    return float(np.mean(precision)), float(np.mean(recall)), float(np.mean(f1))


def expected_calibration_error(pmfs: np.ndarray, labels: np.ndarray, num_bins: int = 15) -> float:
    """Top-label ECE: sum over equal-width confidence bins (lo, hi] of (share of clips in the bin) x
    |accuracy - mean confidence| in it; the first bin also holds confidence 0. 15 bins (Guo et al. 2017)."""
    pmfs, labels = np.asarray(pmfs, dtype=np.float64), np.asarray(labels)
    conf, pred = pmfs.max(axis=1), pmfs.argmax(axis=1)
    correct = (pred == labels).astype(np.float64)
    which = np.clip(np.ceil(conf * num_bins).astype(int) - 1, 0, num_bins - 1)
    ece = 0.0
    for b in range(num_bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def nll(pmfs: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true class), probabilities floored at 1e-12."""
    pmfs = np.asarray(pmfs, dtype=np.float64)
    return float(-np.mean(np.log(np.clip(pmfs[np.arange(len(labels)), labels], 1e-12, None))))


def tempo_metrics(pmfs: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> dict:
    """All metrics of one evaluation.

    Parameters
    ----------
    pmfs : (n, num_classes) predicted distributions (rows sum to 1).
    labels : (n,) true class indices.
    centers : (num_classes,) BPM represented by each class (bucket centre).
    """
    pmfs, labels = np.asarray(pmfs, dtype=np.float64), np.asarray(labels)
    if pmfs.ndim != 2 or len(pmfs) != len(labels) or pmfs.shape[1] != len(centers):
        raise ValueError(f"shapes do not fit: pmfs {pmfs.shape}, labels {labels.shape}, centers {np.shape(centers)}")
    pred = pmfs.argmax(axis=1)
    precision, recall, f1 = macro_precision_recall_f1(pred, labels)
    smooth = smoothness(torch.from_numpy(pmfs)).numpy()
    return {
        "accuracy": float(np.mean(pred == labels)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mse_class": float(np.mean((pred - labels) ** 2)),
        "mse_bpm": float(np.mean((centers[pred] - centers[labels]) ** 2)),
        "nll": nll(pmfs, labels),
        "ece": expected_calibration_error(pmfs, labels),
        "smoothness": float(smooth.mean()),
        "smoothness_std": float(smooth.std()),
    }
