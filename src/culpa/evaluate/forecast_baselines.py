"""A forecaster's competitor for the early-warning backtest: gradient-boosted trees on lagged
cell counts per actor (the approach of the ViEWS and conflictforecast systems).

Time is cut into periods of ``H`` days aligned on the backtest's first forecast day (period
``p`` covers days ``[p H, (p + 1) H)``, so the forecast at the start of period ``p`` uses only
periods ``< p``). For one target (an actor, or every event) and each (period, cell), the
features are, all from earlier periods only:

- the target's events in the cell over the last 1, 4, 12 and 52 periods, and in its eight
  neighbouring cells over the same lags;
- every actor's events in the cell over the last 1, 4 and 52 periods;
- the target's fatalities in the cell over the last 4 and 52 periods;
- periods since the target's last event in the cell and in its neighbours, and since anyone's
  last event in the cell (capped at 104, the cap also meaning "never");
- the cell's mean count per period over all its history, and how many periods of history there
  are (capped at 52).

The outcome is whether the target had at least one event in the cell in the period. The trees
(:class:`LaggedCountsGBM`, scikit-learn's ``HistGradientBoostingClassifier`` with log-loss)
are trained, at each refit time ``R``, on every (period, cell) pair whose period ended by ``R``,
so a forecast never sees an outcome at or after its own day (tested).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from culpa.openmp import one_thread

LAGS = (1, 4, 12, 52)
ALL_LAGS = (1, 4, 52)
FATALITY_LAGS = (4, 52)
GAP_CAP = 104
FEATURES = ([f"count_{k}" for k in LAGS] + [f"neighbours_{k}" for k in LAGS]
            + [f"all_actors_{k}" for k in ALL_LAGS] + [f"fatalities_{k}" for k in FATALITY_LAGS]
            + ["since_last", "since_last_neighbours", "since_last_all_actors", "mean_rate",
               "history"])


class LaggedCountsGBM(ClassifierMixin, BaseEstimator):
    """P(at least one event in a cell and period) from the lagged-count features
    (:func:`lagged_features`). With a single class in the training outcomes it predicts that
    class's smoothed share, ``(positives + 0.5) / (n + 1)``."""

    def __init__(self, max_iter: int = 150, learning_rate: float = 0.05,
                 max_leaf_nodes: int = 15, min_samples_leaf: int = 40,
                 l2_regularization: float = 1.0, random_state: int = 0):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state

    def fit(self, X, y) -> "LaggedCountsGBM":
        from sklearn.ensemble import HistGradientBoostingClassifier

        X = np.asarray(X, float)
        y = np.asarray(y, int).ravel()
        if X.ndim != 2 or len(X) != len(y) or len(y) == 0:
            raise ValueError(f"X must be (n, features) with n = len(y) > 0, got {X.shape}, "
                             f"{len(y)} outcomes")
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        positives = int(y.sum())
        if 0 < positives < len(y):
            trees = HistGradientBoostingClassifier(
                max_iter=self.max_iter, learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization, early_stopping=False,
                random_state=self.random_state)
            with one_thread():
                self.trees_ = trees.fit(X, y)
            self.constant_ = None
        else:
            self.trees_ = None
            self.constant_ = (positives + 0.5) / (len(y) + 1.0)
        return self

    def predict_proba(self, X) -> np.ndarray:
        X = np.asarray(X, float)
        if self.trees_ is None:
            p1 = np.full(len(X), self.constant_)
        else:
            with one_thread():
                p1 = self.trees_.predict_proba(X)[:, 1]
        return np.column_stack([1.0 - p1, p1])


def period_counts(period: np.ndarray, cell: np.ndarray, n_periods: int, n_cells: int,
                  weight: np.ndarray | None = None) -> np.ndarray:
    """(n_periods, n_cells) sums of ``weight`` (default 1) per period index and cell; entries
    with a period outside ``[0, n_periods)`` or a cell < 0 are left out."""
    ok = (period >= 0) & (period < n_periods) & (cell >= 0)
    out = np.zeros((n_periods, n_cells))
    w = 1.0 if weight is None else np.asarray(weight, float)[ok]
    np.add.at(out, (period[ok], cell[ok]), w)
    return out


def neighbour_sum(a: np.ndarray, nx: int, ny: int) -> np.ndarray:
    """Sum over the eight neighbouring cells (row-major grid of ny rows, nx columns) of each
    cell's value; the last axis of ``a`` is the cell."""
    g = a.reshape(a.shape[:-1] + (ny, nx))
    pad = np.pad(g, [(0, 0)] * (g.ndim - 2) + [(1, 1), (1, 1)])
    s = sum(pad[..., 1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx]
            for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    return (s - g).reshape(a.shape)


def _before(counts: np.ndarray) -> np.ndarray:
    """S[j] = sum of counts over periods < j, (P + 1, cells)."""
    return np.vstack([np.zeros((1, counts.shape[1])), np.cumsum(counts, 0)])


def _lag(S: np.ndarray, k: int) -> np.ndarray:
    j = np.arange(S.shape[0])
    return S - S[np.maximum(j - k, 0)]


def _since_last(counts: np.ndarray) -> np.ndarray:
    """(P + 1, cells): periods since the last period < j with a count, capped at GAP_CAP."""
    P, C = counts.shape
    out = np.full((P + 1, C), float(GAP_CAP))
    gap = np.full(C, float(GAP_CAP))
    for j in range(P):
        gap = np.where(counts[j] > 0, 1.0, np.minimum(gap + 1.0, GAP_CAP))
        out[j + 1] = gap
    return out


def lagged_features(target: np.ndarray, everyone: np.ndarray, fatalities: np.ndarray,
                    nx: int, ny: int) -> np.ndarray:
    """(P + 1, cells, len(FEATURES)): the features of the forecast for period j (row j) from
    the (P, cells) count arrays of periods 0..P-1 (the target's counts, every event's counts,
    the target's fatalities). Row j uses periods < j only."""
    S, Sn = _before(target), _before(neighbour_sum(target, nx, ny))
    Sa, Sf = _before(everyone), _before(fatalities)
    P1 = S.shape[0]
    history = np.arange(P1, dtype=float)[:, None] * np.ones((1, S.shape[1]))
    cols = ([_lag(S, k) for k in LAGS] + [_lag(Sn, k) for k in LAGS]
            + [_lag(Sa, k) for k in ALL_LAGS] + [_lag(Sf, k) for k in FATALITY_LAGS]
            + [_since_last(target), _since_last(neighbour_sum(target, nx, ny)),
               _since_last(everyone), S / np.maximum(history, 1.0),
               np.minimum(history, 52.0)])
    return np.stack(cols, axis=-1)


def lagged_gbm_forecasts(day: np.ndarray, cell: np.ndarray, masks: dict[str, np.ndarray],
                         fatalities: np.ndarray, n_periods: int, horizon_days: float,
                         refit_days: float, nx: int, ny: int,
                         estimator: LaggedCountsGBM | None = None) -> dict[str, np.ndarray]:
    """P(at least one event of each target in each cell) for the forecast periods
    ``0..n_periods-1`` (period i starts on day ``i * horizon_days``), ``{target: (n_periods,
    cells)}``. ``day`` is each event's time in days from the first forecast day (< 0 before
    it), ``cell`` its grid cell (-1 outside), ``masks[target]`` which events count for the
    target. The trees are refitted at every ``R = m * refit_days`` (the model's schedule) on
    the periods that ended by R; the features of period i use events before its start."""
    from sklearn.base import clone

    H = float(horizon_days)
    day = np.asarray(day, float)
    cell = np.asarray(cell, np.int64)
    n_cells = nx * ny
    if len(day) == 0:
        return {a: np.zeros((n_periods, n_cells)) for a in masks}
    p_first = min(int(math.floor(day.min() / H)), 0)
    period = np.floor(day / H).astype(np.int64) - p_first  # 0 = the first period with data
    P = n_periods - p_first  # periods p_first .. n_periods-1
    fat = np.nan_to_num(np.asarray(fatalities, float), nan=0.0)
    everyone = period_counts(period, cell, P, n_cells)
    proto = estimator if estimator is not None else LaggedCountsGBM()
    out = {}
    for a, mask in masks.items():
        mask = np.asarray(mask, bool)
        target = period_counts(period[mask], cell[mask], P, n_cells)
        X = lagged_features(target, everyone,
                            period_counts(period[mask], cell[mask], P, n_cells, fat[mask]),
                            nx, ny)  # row j: the forecast for period j + p_first
        y = target > 0
        proba = np.zeros((n_periods, n_cells))
        fitted, fitted_at = None, None
        for i in range(n_periods):
            R = math.floor(i * H / refit_days + 1e-9) * float(refit_days)
            if fitted_at != R:
                # training rows: periods j >= 1 (one period of history) that ended by R
                last = int(math.floor(R / H + 1e-9)) - p_first  # periods j < last ended by R
                rows = np.arange(1, max(last, 1))
                if len(rows) == 0:
                    rows = np.arange(0, 1)  # nothing ended yet: one row, a constant forecast
                Xt = X[rows].reshape(-1, X.shape[-1])
                fitted = clone(proto).fit(Xt, y[rows].ravel())
                fitted_at = R
            proba[i] = fitted.predict_proba(X[i - p_first])[:, 1]
        out[a] = proba
    return out
