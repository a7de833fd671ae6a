"""Simulate events from the multi-actor Hawkes model (branching construction).

Used by the recovery tests and the fit benchmark. Background events of each actor fall in its
hotspots (Gaussian blobs a few km wide) or, for a fraction, anywhere in the region, at a constant
rate. Each event of actor ``l`` triggers ``Poisson(alpha[l, k])`` events of actor ``k``, lagged by
an exponential of rate ``omega`` truncated to ``window_days`` and displaced by ``N(0, sigma^2)``;
children trigger in turn (the spectral radius of ``alpha`` must be below one).

What is *observed* is then degraded the way real records are: dates are whole days (or, for a
fraction, a whole week), locations are either precise (reported with ``N(0, s^2)`` noise,
``s = exact_precision_km``) or snapped to the nearest town centroid with a coarse precision.
Marks (event type, fatalities) are drawn from per-actor distributions.

The result is a DataFrame in the normalised schema (``id``, ``time_start``, ``time_end``,
``date_precision_days``, ``latitude``, ``longitude``, ``location_precision_km``, ``actor``,
``attribution``, ``event_type``, ``fatalities``) plus the truth: ``true_actor``, ``parent`` (row
of the triggering event, -1 for background), ``x_km``/``y_km`` (true position).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from culpa.model import timekernel
from culpa.model.geo import LocalProjection

EVENT_TYPES = ("armed clash", "shelling", "airstrike", "IED", "raid")


@dataclass
class Simulation:
    events: pd.DataFrame
    alpha: np.ndarray
    omega: float
    sigma_km: float
    mu: np.ndarray  # background events per day, per actor
    actors: list[str]
    hotspots: list[np.ndarray] = field(default_factory=list)  # per actor: (n, 3) x, y, sd


def simulate(*, n_actors: int = 3, mu=None, alpha=None, omega: float = 0.2,
             sigma_km: float = 3.0, days: float = 730.0, region_km: float = 200.0,
             hotspots_per_actor: int = 6, hotspot_sd_km=(1.0, 5.0), shared_hotspots: int = 0,
             diffuse_fraction: float = 0.1, window_days: float = 60.0,
             snap_fraction: float = 0.0, n_towns: int = 100, town_precision_km: float = 10.0,
             exact_precision_km: float = 1.0, week_date_fraction: float = 0.0,
             day_resolution: bool = True, marks: bool = True, center=(35.0, 38.0),
             start: str = "2010-01-01", seed=None) -> Simulation:
    """Simulate one realisation; see the module doc. ``mu`` is background events/day per actor."""
    rng = np.random.default_rng(seed)
    K = n_actors
    mu = np.full(K, 2.0) if mu is None else np.asarray(mu, float)
    alpha = 0.4 * np.eye(K) if alpha is None else np.asarray(alpha, float)
    if np.max(np.abs(np.linalg.eigvals(alpha))) >= 1:
        raise ValueError("alpha must have spectral radius < 1 (subcritical)")
    actors = [f"actor_{chr(65 + k)}" if K <= 26 else f"actor_{k:03d}" for k in range(K)]
    L = float(region_km)
    # hotspots: (x, y, sd); the first `shared_hotspots` of every actor sit at common places
    shared_hotspots = min(shared_hotspots, hotspots_per_actor)
    common = rng.uniform(0.1 * L, 0.9 * L, size=(shared_hotspots, 2))
    hot = []
    for k in range(K):
        c = rng.uniform(0.05 * L, 0.95 * L, size=(hotspots_per_actor, 2))
        c[:shared_hotspots] = common + rng.normal(0, 2.0, (shared_hotspots, 2))
        sd = rng.uniform(*hotspot_sd_km, size=hotspots_per_actor)
        hot.append(np.column_stack([c, sd]))
    # background
    T, X, Y, A, P, G = [], [], [], [], [], []
    for k in range(K):
        n = rng.poisson(mu[k] * days)
        t = rng.uniform(0, days, n)
        which = rng.integers(0, hotspots_per_actor, n)
        diffuse = rng.uniform(size=n) < diffuse_fraction
        h = hot[k][which]
        x = np.where(diffuse, rng.uniform(0, L, n), h[:, 0] + rng.normal(0, 1, n) * h[:, 2])
        y = np.where(diffuse, rng.uniform(0, L, n), h[:, 1] + rng.normal(0, 1, n) * h[:, 2])
        T.append(t), X.append(x), Y.append(y), A.append(np.full(n, k)), P.append(np.full(n, -1))
        G.append(np.zeros(n, int))
    t, x, y = np.concatenate(T), np.concatenate(X), np.concatenate(Y)
    a, par, gen = np.concatenate(A), np.concatenate(P), np.concatenate(G)
    # offspring, generation by generation
    lo, g = 0, 0
    while lo < len(t):
        hi = len(t)
        pt, px, py, pa = t[lo:hi], x[lo:hi], y[lo:hi], a[lo:hi]
        pidx = np.arange(lo, hi)
        new = []
        for k in range(K):
            cnt = rng.poisson(alpha[pa, k])
            if not cnt.sum():
                continue
            rep = np.repeat(np.arange(len(pt)), cnt)
            m = len(rep)
            ct = pt[rep] + timekernel.sample(rng, omega, window_days, m)
            cx = px[rep] + rng.normal(0, sigma_km, m)
            cy = py[rep] + rng.normal(0, sigma_km, m)
            keep = ct < days
            new.append((ct[keep], cx[keep], cy[keep], np.full(keep.sum(), k), pidx[rep][keep]))
        if not new:
            break
        g += 1
        t = np.concatenate([t] + [n_[0] for n_ in new])
        x = np.concatenate([x] + [n_[1] for n_ in new])
        y = np.concatenate([y] + [n_[2] for n_ in new])
        a = np.concatenate([a] + [n_[3] for n_ in new])
        par = np.concatenate([par] + [n_[4] for n_ in new])
        gen = np.concatenate([gen, np.full(len(t) - len(gen), g)])
        lo = hi
    # sort by time; remap parents
    order = np.argsort(t, kind="stable")
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    t, x, y, a, gen = t[order], x[order], y[order], a[order], gen[order]
    par = par[order]
    par = np.where(par >= 0, inv[np.maximum(par, 0)], -1)
    n = len(t)
    # observation: locations
    ox = x + rng.normal(0, exact_precision_km, n)
    oy = y + rng.normal(0, exact_precision_km, n)
    prec = np.full(n, float(exact_precision_km))
    if snap_fraction > 0 and n_towns > 0:
        # towns: near hotspots (most) and anywhere
        allhot = np.concatenate(hot)
        nh = int(0.7 * n_towns)
        ti_ = rng.integers(0, len(allhot), nh)
        towns = np.concatenate([allhot[ti_, :2] + rng.normal(0, 3.0, (nh, 2)),
                                rng.uniform(0, L, (n_towns - nh, 2))])
        d, nearest = cKDTree(towns).query(np.column_stack([x, y]))
        snap = (rng.uniform(size=n) < snap_fraction) & (d < 3 * town_precision_km)
        ox[snap], oy[snap] = towns[nearest[snap], 0], towns[nearest[snap], 1]
        prec[snap] = town_precision_km
    # observation: dates
    t0 = np.datetime64(start, "s")
    if day_resolution:
        day = np.floor(t)
        week = rng.uniform(size=n) < week_date_fraction
        s_day = np.where(week, np.floor(day / 7) * 7, day)
        e_day = np.where(week, s_day + 6, day)
        ts = t0 + (s_day * 86400).astype("timedelta64[s]")
        te = t0 + (e_day * 86400).astype("timedelta64[s]")
        dprec = e_day - s_day + 1.0
    else:
        ts = te = t0 + np.round(t * 86400).astype("timedelta64[s]")
        dprec = np.zeros(n)
    proj = LocalProjection(*center)
    lat, lon = proj.inverse(ox - L / 2, oy - L / 2)
    # marks
    if marks:
        tp = rng.dirichlet(np.full(len(EVENT_TYPES), 0.7), K)
        etype = np.array(EVENT_TYPES, dtype=object)[
            np.array([rng.choice(len(EVENT_TYPES), p=tp[k]) for k in a]) if n else []]
        mean_f = rng.uniform(0.5, 12.0, K)
        fat = rng.poisson(mean_f[a] * rng.gamma(1.0, 1.0, n))
    else:
        etype = np.full(n, None, dtype=object)
        fat = np.full(n, np.nan)
    names = np.array(actors, dtype=object)
    ev = pd.DataFrame({
        "id": [f"sim:{i}" for i in range(n)],
        "time_start": pd.to_datetime(ts), "time_end": pd.to_datetime(te),
        "date_precision_days": dprec,
        "latitude": lat, "longitude": lon, "location_precision_km": prec,
        "actor": names[a], "attribution": np.full(n, "attributed", dtype=object),
        "event_type": etype, "fatalities": fat,
        "true_actor": names[a], "parent": par, "generation": gen,
        "x_km": x - L / 2, "y_km": y - L / 2, "t_days": t,
    })
    return Simulation(ev, alpha, omega, sigma_km, mu, actors, hot)
