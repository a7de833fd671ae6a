"""Scores for probabilistic attribution: top-1 accuracy, log-loss, Brier, ECE, reliability.

All take ``proba`` (n, K) rows summing to one and ``y`` (n,) integer class indices.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12  # a probability of exactly 0 for the truth would make log-loss infinite


def top1(proba: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(proba, axis=1) == y))


def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y)), y], EPS, 1.0)
    return float(-np.mean(np.log(p)))


def brier(proba: np.ndarray, y: np.ndarray) -> float:
    """Multi-class Brier score: mean over events of the squared error summed over classes."""
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


#: Equal-width confidence bins of the reliability table and the ECE.
ECE_BINS = 15


def reliability(proba: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> dict:
    """Top-1 confidence binned into equal-width bins: count, mean confidence, accuracy per bin."""
    conf = proba.max(axis=1)
    correct = (np.argmax(proba, axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, conf, minlength=n_bins) / count
        accuracy = np.bincount(idx, correct, minlength=n_bins) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": accuracy}


def ece(proba: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error: |accuracy − confidence| per bin, weighted by the bin's share."""
    r = reliability(proba, y, n_bins)
    used = r["count"] > 0
    gaps = np.abs(r["accuracy"][used] - r["confidence"][used])
    return float(np.sum(gaps * r["count"][used]) / max(len(y), 1))


def score(proba: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {"top1": top1(proba, y), "log_loss": log_loss(proba, y), "brier": brier(proba, y),
            "ece": ece(proba, y)}
