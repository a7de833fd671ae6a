"""Forecasts for watched sites: expected events of each actor within a site's radius over its
horizon, against the site's long-run rate, with a level and the events that drive it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from culpa.model import timekernel
from culpa.model.fitted import check_fitted
from culpa.model.forecast.background import (BackgroundRates, background_weights,
                                             disc_background)
from culpa.model.forecast.history import History, _excitation_window, days_since_t0, history
from culpa.model.forecast.masses import cascade_factor, kernel_disc_mass, time_mass
from culpa.model.geo import haversine_km


#: Level thresholds, most severe first: (level, minimum ratio, minimum P(at least one event)).
LEVELS = (("high", 3.0, 0.20), ("elevated", 1.5, 0.05))


NORMAL = "normal"


LEVEL_ORDER = {NORMAL: 0, "elevated": 1, "high": 2}


@dataclass(frozen=True)
class Site:
    name: str
    lat: float
    lon: float
    radius_km: float
    horizon_days: float | None = None


@dataclass
class SiteForecast:
    """The forecast for one site: per actor (arrays in ``actors`` order) and its drivers."""

    site: Site
    start: pd.Timestamp
    horizon_days: float
    actors: list[str]
    background: np.ndarray  # first-order background part
    excitation: np.ndarray  # first-order excitation by the history
    expected: np.ndarray  # with the in-horizon cascade
    baseline: np.ndarray  # long-run expected count for a window of the same length
    p_any: np.ndarray
    level: str
    level_actor: str | None
    drivers: list[dict] = field(default_factory=list)

    @property
    def first_order(self) -> np.ndarray:
        return self.background + self.excitation

    @property
    def ratio(self) -> np.ndarray:
        return self.expected / self.baseline

    def to_dict(self, min_expected: float = 0.0) -> dict:
        actors = {}
        for i in np.argsort(-self.expected, kind="stable"):
            if self.expected[i] < min_expected:
                continue
            actors[self.actors[i]] = {
                "expected": float(self.expected[i]), "baseline": float(self.baseline[i]),
                "ratio": float(self.ratio[i]), "p_any": float(self.p_any[i]),
                "background": float(self.background[i]),
                "excitation": float(self.excitation[i])}
        return {"name": self.site.name, "latitude": self.site.lat, "longitude": self.site.lon,
                "radius_km": self.site.radius_km, "horizon_days": self.horizon_days,
                "level": self.level, "level_actor": self.level_actor, "actors": actors,
                "drivers": self.drivers}


def level_of(ratio, p_any) -> str:
    """The level of one actor's forecast (see ``LEVELS``)."""
    for name, rmin, pmin in LEVELS:
        if ratio >= rmin and p_any >= pmin:
            return name
    return NORMAL


def long_run(model, x: float, y: float, R: float, H: float, bg_space=None) -> np.ndarray:
    """The model's expected count in the disc over its whole fitted period, scaled to H days."""
    rates = BackgroundRates.of(model)
    begin = float(model.temporal_background_.edges[0])
    span = rates.observed_end - begin
    if bg_space is None:
        bg_space = disc_background(model, x, y, R)
    bg = (background_weights(model, begin, rates.observed_end) * bg_space).sum(0)
    cutoff = float(model.radius_km)
    fe = model.fitted_events_
    d = np.hypot(fe.x - x, fe.y - y)
    near = np.flatnonzero(d < R + cutoff)
    ghat = timekernel.cdf(model.t_end_ - fe.t[near], model.omega_, float(model.window_days))
    P = kernel_disc_mass(model, d[near], R, fe.s2[near])
    exc = (fe.excitation[near] * (ghat * P)[:, None]).sum(0)
    return (bg + exc) * H / span


def forecast_site(model, site: Site, start, horizon_days: float = 7.0,
                  hist: History | None = None, top: int = 5) -> SiteForecast:
    """Expected events of every actor within ``site.radius_km`` of the site over
    ``[start, start + H days)`` (``H`` = the site's own horizon, else ``horizon_days``)."""
    check_fitted(model)
    H = float(site.horizon_days or horizon_days)
    start = pd.Timestamp(start)
    T = float(days_since_t0(model, start)[0])
    if hist is None:
        hist = history(model)
    x, y = (float(v[0]) for v in model.projection_.forward([site.lat], [site.lon]))
    R, W, cutoff = float(site.radius_km), float(model.window_days), float(model.radius_km)
    space_bg = disc_background(model, x, y, R)
    background = (background_weights(model, T, T + H) * space_bg).sum(0)
    # excitation by the history
    d = np.hypot(hist.x - x, hist.y - y)
    cand, lo = _excitation_window(hist, T, H, W)
    near = d[cand] < R + cutoff
    cand, lo = cand[near], lo[near]
    tm = time_mass(lo, T + H, hist.t[cand], hist.u[cand], model.omega_, W)
    P = kernel_disc_mass(model, d[cand], R, hist.s2[cand])
    contrib = hist.Ex[cand] * (tm * P)[:, None]  # (m, processes) expected events each adds
    expected = model.by_actor(cascade_factor(model, H) @ (background + contrib.sum(0)))
    baseline = model.by_actor(long_run(model, x, y, R, H, space_bg))
    background, contrib = model.by_actor(background), model.by_actor(contrib)
    excitation = contrib.sum(0)
    first = background + excitation
    p_any = -np.expm1(-first)
    ratio = expected / baseline
    level, level_actor = NORMAL, None
    for k in np.argsort(-ratio):
        lv = level_of(ratio[k], p_any[k])
        if LEVEL_ORDER[lv] > LEVEL_ORDER[level]:
            level, level_actor = lv, model.actors_[k]
    # drivers: the history events adding most to the expected count of the actor that sets
    # the level (of all actors together when the level is normal)
    if level_actor is not None:
        k_lv = model.actors_.index(level_actor)
        weight, total = contrib[:, k_lv], float(first[k_lv])
    else:
        weight, total = contrib.sum(1), float(first.sum())
    drivers = []
    for i in np.argsort(-weight, kind="stable")[:top]:
        if weight[i] <= 0 or weight[i] < 0.01 * weight.sum():
            break
        j = int(cand[i])
        k = int(hist.actor[j])
        drivers.append({
            "id": str(hist.ids[j]), "date": str(pd.Timestamp(hist.date[j]).date()),
            "actor": model.actors_[k], "actor_probability": float(hist.actor_probability[j]),
            "labelled": bool(hist.labelled[j]),
            "distance_km": float(haversine_km(site.lat, site.lon, hist.lat[j], hist.lon[j])),
            "days_before": float(T - hist.t_start[j]),
            "contribution": float(weight[i]),
            "share": float(weight[i] / total) if total > 0 else 0.0})
    return SiteForecast(site, start, H, list(model.actors_), background, excitation, expected,
                        baseline, p_any, level, level_actor, drivers)
