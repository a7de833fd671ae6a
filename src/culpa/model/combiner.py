"""Combine the Hawkes model's and the boosted trees' attribution probabilities.

A weighted geometric mean of the members' probabilities, renormalised, then a temperature:
``p ∝ exp((Σ_m w_m log p_m) / T)``. With the defaults (equal weights, T = 1) nothing is fitted:
it is the "geometric-mean floor" of issue 16, which on the held-out splits measured there beat
both members on log-loss. :meth:`GeometricCombiner.fit` fits only the temperature, by
log-likelihood, and must be given probabilities the members produced without seeing those
events' labels (out-of-fold) -- it is the held-out calibration step. Prediction is numpy only
(no scikit-learn on the query path); the fitted state is two arrays.
"""

from __future__ import annotations

import numpy as np

#: Floor applied to member probabilities before taking logs (keeps log-loss finite).
EPS = 1e-9


class GeometricCombiner:
    """Weighted geometric mean of member probabilities with a fitted temperature."""

    def __init__(self, weights: tuple[float, ...] = (0.5, 0.5), temperature: float | None = 1.0):
        self.weights = weights
        self.temperature = temperature

    def _logits(self, probas: list[np.ndarray]) -> np.ndarray:
        if len(probas) != len(self.weights):
            raise ValueError(f"expected {len(self.weights)} members, got {len(probas)}")
        shapes = {p.shape for p in probas}
        if len(shapes) != 1:
            raise ValueError(f"members disagree on shape: {sorted(shapes)}")
        return sum(w * np.log(np.clip(p, EPS, 1.0)) for w, p in zip(self.weights, probas))

    @staticmethod
    def _softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def fit(self, probas: list[np.ndarray], y: np.ndarray) -> "GeometricCombiner":
        """Fit the temperature on out-of-fold member probabilities ``probas`` and labels ``y``
        (golden-section search of the mean log-likelihood over T in [0.2, 5])."""
        z = self._logits(probas)
        y = np.asarray(y, dtype=int)

        def nll(t: float) -> float:
            zt = z / t
            zt = zt - zt.max(axis=1, keepdims=True)
            return float(-(zt[np.arange(len(y)), y] - np.log(np.exp(zt).sum(axis=1))).mean())

        lo, hi = np.log(0.2), np.log(5.0)
        g = (np.sqrt(5) - 1) / 2
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        for _ in range(60):
            if nll(np.exp(a)) < nll(np.exp(b)):
                hi = b
            else:
                lo = a
            a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        self.temperature_ = float(np.exp((lo + hi) / 2))
        return self

    def predict_proba(self, probas: list[np.ndarray]) -> np.ndarray:
        t = getattr(self, "temperature_", None) or self.temperature or 1.0
        return self._softmax(self._logits(probas) / t)
