"""Newcomers: actors a fitted model never saw, met in the history it is conditioned on.

The live situation: a model was fitted a while ago; since then a new armed group (or a new
coalition, as UCDP codes a joint attack) has been seen, its events labelled. Until the next refit
the model has no process for it, so without this every attack by it would get probability zero.
A conditioned model (:mod:`culpa.model.conditioned`) instead carries each newcomer ``n`` as one
more hypothesis, with the intensity a typical fitted actor would have after those events:

    lambda_n(x, t) = mu_n(x) + sum_j alpha_typ · P_j(n) · g(t - t_j) · f(x - x_j)

- the sum runs over the history's events, ``P_j(n)`` is 1 for an event labelled ``n`` and the
  newcomer's share of an unlabelled event; ``g`` and ``f`` are the model's own time and space
  kernels (:func:`culpa.model.kernels.query_intensity`, the same call the fitted processes use),
  and ``alpha_typ`` is the fitted actors' mean self-excitation (each process's excitation of its
  own actor's processes, weighted by their events);
- ``mu_n`` is the newcomer's own ground: its labelled events spread by Gaussians of
  ``radius_km / 2`` (plus their location precision), at the rate at which it has been seen
  (its events over the days since its first, at least ``window_days``), from its first event
  on (before it, a newcomer has no intensity at all);
- its marks are the fitted population's (the processes' mark likelihoods mixed by their shares):
  nothing is known of a newcomer's habits beyond where and when it acted.

``P(actor)`` then normalises the fitted actors' and the newcomers' ``lambda · f`` together.
Nothing here is fitted; every part is the fitted model's or one of the newcomer's events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from culpa.model import kernels as kr
from culpa.model.pairs import GridIndex

#: Queries evaluated at once by the ground's dense (queries x events) kernel sum.
CHUNK = 2048


@dataclass
class Newcomers:
    names: list[str]
    #: The history's events that may be a newcomer's (time order): times, half-widths, places,
    #: location variances (km^2), and what each excites in each newcomer (n x N).
    t: np.ndarray
    u: np.ndarray
    x: np.ndarray
    y: np.ndarray
    s2: np.ndarray
    excites: np.ndarray
    #: Each newcomer's ground: its labelled events (rows into the arrays above, and whose),
    #: its rate (events per day) and the ground kernel's variance (km^2).
    ground_rows: np.ndarray
    ground_of: np.ndarray
    rate: np.ndarray
    first: np.ndarray
    ground_s2: float
    #: log shares of the fitted processes (the population's marks).
    log_share: np.ndarray
    _grid: GridIndex | None = None

    @classmethod
    def of(cls, model, names: list[str], hist: dict, share: np.ndarray,
           labelled_as: np.ndarray) -> "Newcomers":
        """The newcomers ``names`` of the fitted ``model`` from history arrays ``hist`` (``t``,
        ``u``, ``x``, ``y``, ``s2``, time order): ``share`` (n x N) is each event's probability
        of being each newcomer, ``labelled_as`` the newcomer index of an event labelled as one
        (-1 otherwise)."""
        keep = share.sum(1) > 0
        rows = np.flatnonzero(keep)
        own = labelled_as[rows]
        ground = np.flatnonzero(own >= 0)
        who = own[ground]
        t = hist["t"][rows]
        end = float(hist["t"].max()) if len(hist["t"]) else 0.0
        first = np.array([t[ground][who == n].min() for n in range(len(names))])
        count = np.bincount(who, minlength=len(names)).astype(float)
        rate = count / np.maximum(end - first, float(model.window_days))
        w = model._Q.sum(0) + 1e-12
        return cls(names=list(names), t=np.ascontiguousarray(t),
                   u=np.ascontiguousarray(hist["u"][rows]),
                   x=np.ascontiguousarray(hist["x"][rows]),
                   y=np.ascontiguousarray(hist["y"][rows]),
                   s2=np.ascontiguousarray(hist["s2"][rows]),
                   excites=np.ascontiguousarray(share[rows] * typical_self_excitation(model)),
                   ground_rows=ground, ground_of=who, rate=rate, first=first,
                   ground_s2=(float(model.radius_km) / 2.0) ** 2,
                   log_share=np.log(w / w.sum()))

    def log_intensity(self, model, tq, u, x, y, prec, codes) -> np.ndarray:
        """log(lambda_n · f(marks)) of each newcomer at the queries (n x N)."""
        if self._grid is None:
            self._grid = GridIndex.build(self.t, self.x, self.y, float(model.radius_km))
        trig = kr.query_intensity(self._grid, self.x, self.y, self.s2, self.u, self.excites,
                                  tq, x, y, prec ** 2, u, model.omega_, model.window_days,
                                  model._space, model.radius_km)
        lam = trig + self._ground(x, y, prec) * (tq[:, None] >= self.first[None, :])
        logf = model._marks.loglik(codes) + self.log_share
        top = logf.max(1, keepdims=True)
        mixed = top[:, 0] + np.log(np.exp(logf - top).sum(1))
        with np.errstate(divide="ignore"):
            return np.log(lam) + mixed[:, None]

    def _ground(self, x, y, prec) -> np.ndarray:
        """mu_n at the query places (n x N, events per day per km^2)."""
        gx, gy = self.x[self.ground_rows], self.y[self.ground_rows]
        gs2 = self.s2[self.ground_rows]
        N = len(self.names)
        counts = np.bincount(self.ground_of, minlength=N).astype(float)
        out = np.zeros((len(x), N))
        for lo in range(0, len(x), CHUNK):
            sl = slice(lo, lo + CHUNK)
            var = gs2[None, :] + self.ground_s2 + (prec[sl] ** 2)[:, None]
            d2 = (x[sl, None] - gx[None, :]) ** 2 + (y[sl, None] - gy[None, :]) ** 2
            dens = np.exp(-0.5 * d2 / var) / (2 * np.pi * var)
            for n in range(N):
                out[sl, n] = dens[:, self.ground_of == n].sum(1)
        return out * (self.rate / np.maximum(counts, 1.0))

    def actor_proba(self, model, query, logp: np.ndarray) -> np.ndarray:
        """P(actor) over the fitted actors then the newcomers (n x (A + N)), from the fitted
        processes' ``log(lambda · f)`` ``logp`` (n x K) at the parsed ``query``."""
        t, lat, lon, prec, u, codes = query
        x, y = model.projection_.forward(lat, lon)
        lognew = self.log_intensity(model, t, u, x, y, prec, codes)
        top = np.maximum(logp.max(1), lognew.max(1))[:, None]
        with np.errstate(invalid="ignore"):
            p = np.hstack([model.by_actor(np.exp(logp - top)), np.exp(lognew - top)])
        p = np.nan_to_num(p)
        tot = p.sum(1, keepdims=True)
        return np.where(tot > 0, p / np.where(tot > 0, tot, 1.0), 1.0 / p.shape[1])


def typical_self_excitation(model) -> float:
    """The fitted processes' mean excitation of their own actor's processes (offspring per
    event), weighted by their events: what a newcomer's event is taken to excite in it."""
    pa = np.asarray(model.process_actor_)
    own = (np.asarray(model.alpha_) * (pa[:, None] == pa[None, :])).sum(1)
    w = model._Q.sum(0)
    return float((own * w).sum() / max(w.sum(), 1e-12))
