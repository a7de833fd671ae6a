"""The background part of a forecast: the model's rates ``mu_k(t)`` and grounds ``b_k(x)`` as
forecasts use them (held at the end of the fitted data), integrated over time and over a disc;
and the model's full intensity at exact times and places."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from culpa.model.fitted import check_fitted
from culpa.model.forecast.history import days_since_t0


def intensity(model, time, lat, lon) -> np.ndarray:
    """``lambda_k(t, x)`` (n x K actors, events per day per km^2; an actor's processes summed)
    at exact times and places, the way
    ``predict_proba`` evaluates it (history strictly before each time, no mark term), with the
    background of :class:`BackgroundRates` and :func:`background_density` (the model's own up
    to the end of its data, held from then on).

    ``time``: datetimes, or floats already in days since ``model.t0_``."""
    check_fitted(model)
    t = np.asarray(time, dtype=float) if np.asarray(time).dtype.kind == "f" \
        else days_since_t0(model, time)
    lat, lon = np.atleast_1d(np.asarray(lat, float)), np.atleast_1d(np.asarray(lon, float))
    t = np.broadcast_to(t, lat.shape).astype(float)
    x, y = model.projection_.forward(lat, lon)
    _, trig = model.intensity_parts(t, lat, lon)
    bg = BackgroundRates.of(model).rate(t) * background_density(model, t, x, y)
    return model.by_actor(bg + trig)


@dataclass(frozen=True)
class BackgroundRates:
    """mu_k(t) as forecasts use it: the model's piecewise-constant rates up to the end of the
    observed data, and the last observed rate after it.

    The fitted bins run to the model's ``t_end_``, the latest *end* of an event's date range
    (``t + u``), which lies months past the last event when some events are dated only to a
    year. Bins past the last event then hold only the prior (``mu ~ tau / L``, near zero) and
    the bin holding the last event is diluted by the empty time after it. Here the rate of that
    bin is re-estimated over the time actually observed (its MAP count ``mu_b L_b`` over the
    observed part of ``L_b``, merged with the bin before when that part is under a quarter of a
    bin) and holds from then on; before it the model's rates are used unchanged. When the data
    run to ``t_end_`` this is exactly the model's ``mu_k(t)``."""

    edges: np.ndarray  # bin edges; the last bin is open-ended (+inf)
    mu: np.ndarray  # (K, n_bins)
    observed_end: float  # days since t0_: the day after the last fitted event began

    @classmethod
    def of(cls, model) -> "BackgroundRates":
        tb = model.temporal_background_
        edges, mu = np.asarray(tb.edges, float), np.asarray(tb.mu, float)
        last = np.max(np.asarray(model.fitted_events_.start, dtype="datetime64[s]")).astype(
            "datetime64[D]")
        end = float(((last + np.timedelta64(1, "D")).astype("datetime64[s]") - model.t0_)
                    .astype(np.float64) / 86400.0)
        end = min(max(end, float(edges[0]) + 1e-9), float(edges[-1]))
        b = int(np.clip(np.searchsorted(edges, end, side="left") - 1, 0, len(edges) - 2))
        lengths = np.diff(edges)
        observed = end - edges[b]
        mass = mu[:, b] * lengths[b]
        first = b
        if observed < 0.25 * float(model.background_bin_days) and b > 0:
            mass = mass + mu[:, b - 1] * lengths[b - 1]
            observed += lengths[b - 1]
            first = b - 1
        rate = mass / max(observed, 1e-9)
        new_edges = np.concatenate([edges[:first + 1], [np.inf]])
        new_mu = np.concatenate([mu[:, :first], rate[:, None]], axis=1)
        return cls(new_edges, new_mu, end)

    def rate(self, t) -> np.ndarray:
        """mu_k(t), (n x K)."""
        i = np.clip(np.searchsorted(self.edges, np.asarray(t, float), side="right") - 1, 0,
                    self.mu.shape[1] - 1)
        return self.mu[:, i].T

    def integral(self, a: float, b: float) -> np.ndarray:
        """int_a^b mu_k(t) dt per actor (exact)."""
        inner = self.edges[1:-1]
        cuts = np.concatenate([[a], inner[(inner > a) & (inner < b)], [b]])
        mids = 0.5 * (cuts[1:] + cuts[:-1])
        return self.rate(mids).T @ np.diff(cuts)


def _epochs(sb) -> np.ndarray:
    """Centres (days) of the epochs of the spatial background (one epoch: a static ground)."""
    return np.atleast_1d(np.asarray(getattr(sb, "epochs", [0.0]), float))


def _psi(sb, t) -> np.ndarray:
    """Weights of the epochs at times t, (n x E) (hat functions between epoch centres)."""
    t = np.atleast_1d(np.asarray(t, float))
    if len(_epochs(sb)) == 1:
        return np.ones((len(t), 1))
    return sb.psi(t)


def _kde_epoch(sb, x, y, e: int) -> np.ndarray:
    """KDE part (no floor) of every actor's ground in epoch e at points (x, y), (n x K)."""
    ep = _epochs(sb)
    if len(ep) == 1:
        return sb.kde(x, y)
    return sb.kde(x, y, None, np.full(len(x), ep[e]))


def background_density(model, t, x, y) -> np.ndarray:
    """b_k(x) at time t as forecasts use it, (n x K): the model's ground, held at the end of
    its data after it (like the rate, :class:`BackgroundRates`)."""
    sb = model.spatial_background_
    end = BackgroundRates.of(model).observed_end
    psi = _psi(sb, np.minimum(np.broadcast_to(np.asarray(t, float), np.shape(x)), end))
    kde = np.zeros((len(x), len(model.processes_)))
    for e in range(psi.shape[1]):
        if np.any(psi[:, e] > 0):
            kde += psi[:, e:e + 1] * _kde_epoch(sb, x, y, e)
    return (1.0 - sb.eps) * kde + sb.eps / sb.area


def background_weights(model, a: float, b: float) -> np.ndarray:
    """int_a^b mu_k(t) psi_e(t) dt, (E x K): the background rate over [a, b] shared among the
    epochs of the spatial ground (exact: mu is piecewise constant, psi piecewise linear, and
    both are held at the end of the data). With one epoch: int_a^b mu_k dt."""
    rates = BackgroundRates.of(model)
    sb = model.spatial_background_
    ep = _epochs(sb)
    inner = np.concatenate([rates.edges[1:-1], ep, [rates.observed_end]])
    cuts = np.unique(np.concatenate([[a], inner[(inner > a) & (inner < b)], [b]]))
    mids = 0.5 * (cuts[1:] + cuts[:-1])
    w = rates.rate(mids) * np.diff(cuts)[:, None]  # (pieces x K)
    psi = _psi(sb, np.minimum(mids, rates.observed_end))  # (pieces x E)
    return psi.T @ w


def disc_background(model, x: float, y: float, R: float) -> np.ndarray:
    """int_D b_ke(x) dx per epoch and actor, (E x K), for the disc of radius R about (x, y)
    (model frame): the raster on a lattice of points inside the disc plus the floor."""
    sb = model.spatial_background_
    h = min(sb.cell / 2.0, R / 20.0)
    n = int(math.ceil(R / h))
    g = (np.arange(-n, n) + 0.5) * h
    X, Y = np.meshgrid(g, g)
    keep = X * X + Y * Y <= R * R
    px, py = X[keep] + x, Y[keep] + y
    E = len(_epochs(sb))
    kde = np.zeros((E, len(model.processes_)))
    for e in range(E):
        for s in range(0, len(px), 200_000):
            kde[e] += _kde_epoch(sb, px[s:s + 200_000], py[s:s + 200_000], e).sum(0)
    area = math.pi * R * R
    kde *= area / len(px)  # each lattice point carries area / n_points (exact total area)
    return (1.0 - sb.eps) * kde + sb.eps / sb.area * area
