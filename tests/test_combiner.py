"""The geometric combiner of the Hawkes model's and the trees' probabilities."""

import numpy as np

from culpa.evaluate.metrics import log_loss
from culpa.model.combiner import GeometricCombiner


def _members(seed=0, n=400, k=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    def noisy(scale):
        z = rng.normal(0, 1, (n, k))
        z[np.arange(n), y] += scale
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return noisy(1.5), noisy(1.5), y


def test_equal_weights_is_the_renormalised_geometric_mean():
    a, b, _ = _members()
    g = np.sqrt(a * b)
    expected = g / g.sum(axis=1, keepdims=True)
    got = GeometricCombiner().predict_proba([a, b])
    assert np.allclose(got, expected)
    assert np.allclose(got.sum(axis=1), 1.0)


def test_fit_returns_self_and_learns_a_temperature_that_calibrates():
    a, _, _ = _members(n=2000)
    # Labels drawn from a: a is calibrated. Cubed it is overconfident, and the fitted
    # temperature must undo that (T near 3).
    rng = np.random.default_rng(1)
    y = (rng.random(len(a))[:, None] > np.cumsum(a, axis=1)).sum(axis=1)
    sharp = [a ** 3 / (a ** 3).sum(axis=1, keepdims=True)] * 2
    comb = GeometricCombiner()
    assert comb.fit(sharp, y) is comb
    assert 2.5 < comb.temperature_ < 3.5
    assert log_loss(comb.predict_proba(sharp), y) < log_loss(
        GeometricCombiner().predict_proba(sharp), y)
