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

from typing import Callable, Sequence

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


# Learned log-linear pool: p ∝ p_1^w_1 · p_2^w_2 · ... with free weights w >= 0 (fitted by
# log-loss on out-of-fold probabilities, so the common scale of the weights is the temperature).


FLOOR = EPS


def _log_stack(probas: Sequence[np.ndarray]) -> np.ndarray:
    probas = [np.asarray(p, dtype=float) for p in probas]
    if not probas:
        raise ValueError("need at least one model's probabilities")
    shape = probas[0].shape
    for i, p in enumerate(probas):
        if p.ndim != 2 or p.shape != shape:
            raise ValueError(f"model {i}: probabilities of shape {p.shape}, expected {shape}")
    return np.log(np.clip(np.stack(probas), FLOOR, 1.0))  # (M, n, K)


def pool(probas: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Normalised p ∝ prod_m p_m^w_m, row by row."""
    logs = _log_stack(probas)
    w = np.asarray(weights, dtype=float)
    if w.shape != (logs.shape[0],):
        raise ValueError(f"{len(w)} weights for {logs.shape[0]} models")
    z = np.tensordot(w, logs, axes=1)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


class LogLinearPool:
    """Scikit-learn style: ``fit(probas, y)`` learns ``weights_`` (one per model, >= 0) by
    maximum likelihood; ``predict_proba(probas)`` pools new probabilities with them.

    ``probas`` is a list of (n, K) arrays over the same K classes, one per model, in a fixed
    order (e.g. [hawkes, gbm]); ``y`` holds class indices in 0..K-1.
    """

    def __init__(self, max_weight: float = 5.0):
        self.max_weight = max_weight

    def fit(self, probas: Sequence[np.ndarray], y: np.ndarray,
            start: Sequence[float] | None = None,
            sample_weight: np.ndarray | None = None) -> "LogLinearPool":
        """``start``: the weights the search starts from (default 1/M each);
        ``sample_weight``: each row's weight in the mean log-loss (default 1 each)."""
        from scipy.optimize import minimize

        logs = _log_stack(probas)
        y = np.asarray(y, dtype=int)
        n_models, n, k = logs.shape
        if len(y) != n:
            raise ValueError(f"{len(y)} labels for {n} rows of probabilities")
        if n == 0 or y.min() < 0 or y.max() >= k:
            raise ValueError(f"labels must be class indices in 0..{k - 1}")
        rows = np.arange(n)
        own = logs[:, rows, y]  # (M, n): each model's log-probability of the true class
        sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        if sw.shape != (n,) or not np.all(np.isfinite(sw)) or sw.min() < 0 or sw.sum() <= 0:
            raise ValueError(f"sample_weight must be {n} non-negative numbers, not all zero")
        sw = sw / sw.sum()

        def loss_grad(w):
            z = np.tensordot(w, logs, axes=1)
            zmax = z.max(axis=1, keepdims=True)
            e = np.exp(z - zmax)
            s = e.sum(axis=1, keepdims=True)
            q = e / s
            lse = (np.log(s) + zmax)[:, 0]
            loss = float(sw @ (lse - z[rows, y]))
            grad = np.einsum("mnk,nk->m", logs, q * sw[:, None]) - own @ sw
            return loss, grad

        start = (np.full(n_models, 1.0 / n_models) if start is None
                 else np.asarray(start, dtype=float))
        res = minimize(loss_grad, start, jac=True, method="L-BFGS-B",
                       bounds=[(0.0, self.max_weight)] * n_models)
        self.weights_ = np.clip(res.x, 0.0, self.max_weight)
        self.log_loss_ = float(res.fun)
        self.n_models_ = n_models
        self.n_classes_ = k
        return self

    def predict_proba(self, probas: Sequence[np.ndarray]) -> np.ndarray:
        if not hasattr(self, "weights_"):
            raise RuntimeError("LogLinearPool is not fitted: call fit first")
        return pool(probas, self.weights_)


#: The members' agreement, the index of a row's weights in :class:`AgreementPool`.
AGREEMENT = ("agree", "disagree")
#: :class:`AgreementPool` fits two sets of weights only with at least this many rows on each
#: side; else one set serves both. Fixed a priori, not tuned.
MIN_SPLIT_ROWS = 100


def disagree(probas: Sequence[np.ndarray]) -> np.ndarray:
    """Per row: do the members' most probable classes differ (not all the same)?"""
    tops = np.stack([np.asarray(p).argmax(axis=1) for p in probas])
    return (tops != tops[0]).any(axis=0)


def pool_by_agreement(probas: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """:func:`pool` with ``weights[0]`` on the rows where the members agree on the most
    probable class and ``weights[1]`` where they disagree (``weights``: 2 x models)."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2 or w.shape[0] != 2:
        raise ValueError(f"weights of shape {w.shape}, expected (2, models)")
    out = pool(probas, w[0])
    dis = disagree(probas)
    if dis.any():
        out[dis] = pool([np.asarray(p)[dis] for p in probas], w[1])
    return out


class AgreementPool:
    """Two log-linear pools: one for the rows where the members agree on the most probable
    class, one for the rows where they disagree (``weights_``: 2 x models, in the order of
    :data:`AGREEMENT`).

    Where the members disagree, each is less often right, and one set of weights fitted on
    every row (nearly all of which agree) is overconfident there: the rows where they disagree
    get weights of their own, fitted by log-loss on those rows only (a gate on one feature, as
    in feature-weighted stacking). With fewer than ``min_rows`` rows on either side, one
    :class:`LogLinearPool` fitted on all rows gives both (``split_`` False); ``min_rows=None``
    never splits.
    """

    def __init__(self, max_weight: float = 5.0, min_rows: int | None = MIN_SPLIT_ROWS):
        self.max_weight = max_weight
        self.min_rows = min_rows

    def fit(self, probas: Sequence[np.ndarray], y: np.ndarray,
            start: Sequence[float] | None = None,
            sample_weight: np.ndarray | None = None) -> "AgreementPool":
        """As :meth:`LogLinearPool.fit`, on each side of the split."""
        probas = [np.asarray(p, dtype=float) for p in probas]
        y = np.asarray(y, dtype=int)
        sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        dis = disagree(probas)
        self.rows_ = (int((~dis).sum()), int(dis.sum()))
        # rows' worth: a row of weight w counts as w rows (all count 1 without weights)
        worth = (float(sw[~dis].sum()), float(sw[dis].sum()))
        self.split_ = self.min_rows is not None and min(worth) >= self.min_rows
        sides = (~dis, dis) if self.split_ else (np.ones(len(y), bool),)
        fits = [LogLinearPool(self.max_weight).fit([p[side] for p in probas], y[side], start,
                                                   sw[side])
                for side in sides]
        self.weights_ = np.vstack([f.weights_ for f in fits] * (2 // len(fits)))
        self.log_loss_ = float(sum(f.log_loss_ * sw[side].sum() for f, side in zip(fits, sides))
                               / max(sw.sum(), 1e-300))
        return self

    def predict_proba(self, probas: Sequence[np.ndarray]) -> np.ndarray:
        if not hasattr(self, "weights_"):
            raise RuntimeError("AgreementPool is not fitted: call fit first")
        return pool_by_agreement(probas, self.weights_)


def out_of_fold(fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray], n: int,
                n_folds: int = 2, seed: int = 0) -> np.ndarray:
    """Out-of-fold probabilities for ``n`` labelled rows.

    The rows are split (seeded) into ``n_folds`` folds; for each fold,
    ``fit_predict(train_rows, held_rows)`` must fit on the labels of ``train_rows`` only (the
    held rows' labels hidden, e.g. latent for the Hawkes model) and return (len(held_rows), K)
    probabilities for ``held_rows``. No row's own label ever feeds its own prediction.
    """
    if n_folds < 2 or n < n_folds:
        raise ValueError(f"need at least 2 folds and as many rows, got {n_folds} folds, {n} rows")
    fold = np.random.default_rng(seed).permutation(n) % n_folds
    out = None
    for f in range(n_folds):
        held, train = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        p = np.asarray(fit_predict(train, held), dtype=float)
        if p.ndim != 2 or p.shape[0] != len(held):
            raise ValueError(f"fold {f}: fit_predict returned shape {p.shape} for {len(held)} rows")
        if out is None:
            out = np.full((n, p.shape[1]), np.nan)
        out[held] = p
    return out
