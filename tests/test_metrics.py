"""Scoring rules behave as their textbook definitions say."""

import numpy as np
import pytest

from culpa.evaluate import metrics


def test_a_perfect_confident_forecast_scores_perfectly():
    proba = np.eye(3)
    y = np.arange(3)
    s = metrics.score(proba, y)
    assert s["top1"] == 1.0 and s["brier"] == 0.0 and s["ece"] == 0.0
    assert s["log_loss"] == pytest.approx(0.0, abs=1e-9)


def test_a_uniform_forecast_has_log_loss_log_k():
    proba = np.full((4, 4), 0.25)
    assert metrics.log_loss(proba, np.array([0, 1, 2, 3])) == pytest.approx(np.log(4))
    assert metrics.brier(proba, np.array([0, 1, 2, 3])) == pytest.approx(0.75)


def test_overconfidence_shows_as_calibration_error():
    # Says 90% every time but is right half the time: ECE 0.4.
    proba = np.tile([0.9, 0.1], (10, 1))
    y = np.array([0, 1] * 5)
    assert metrics.ece(proba, y) == pytest.approx(0.4)


def test_reliability_bins_count_every_event():
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1, 1, 1], size=200)
    r = metrics.reliability(p, rng.integers(0, 3, 200), n_bins=15)
    assert r["count"].sum() == 200 and len(r["count"]) == 15
