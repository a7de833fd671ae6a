"""Forecast backtest: is the model's early warning better than simple rules, week by week?

The period from ``since`` on is cut into consecutive horizons of ``H`` days (a week by default).
At the start ``T`` of each, every method gives, for each scored actor and each square cell of
``cell_km`` (a fixed grid over the events before ``since``), the probability of at least one
event of that actor in the cell during ``[T, T + H)``; the outcome is whether one happened.

Only data before ``T`` is used for a forecast at ``T``:

- **model**: the :class:`~culpa.model.hawkes.HawkesAttributor` fitted on every event before the
  last refit time ``R <= T`` (refits every ``refit_days`` from ``since``), with the excitation
  brought up to ``T``: events between ``R`` and ``T`` excite as the fitted ones do (``Q``
  one-hot for labelled events, ``predict_proba`` for the others).
  ``P = 1 - exp(-Lambda0)`` (:mod:`culpa.model.forecast`).
- **previous_period**: the cell's count of the actor's events in ``[T - H, T)``, turned into a
  probability by an *empirical calibration* on the training data (refitted with the model):
  over all cells and all consecutive pairs of ``H``-day periods before ``R``, the share of cells
  with at least one event in a period, given the count in the period before, per count class
  0, 1, 2, 3-4, 5-9, 10+, with half a pseudo-event (``(positives + 0.5) / (n + 1)``). This is
  the best any function of that count can do on the training data, so it is a fair rival.
- **long_run_rate**: the cell's rate over all training data, ``rate = (n_cell + 0.1) / days``
  (0.1: so that a cell without events is unlikely, not impossible), ``P = 1 - exp(-rate H)``.
- **lagged_gbm**: gradient-boosted trees on lagged counts per cell and actor (the cell's and
  its neighbours' counts over the last 1/4/12/52 periods, time since the last event,
  fatalities), refitted on the same schedule on the periods that ended by ``R``
  (:mod:`culpa.evaluate.forecast_baselines`): the competitor a forecaster would use.

Scores per actor, over all (cell, period) pairs: Brier score, log-loss (probabilities clipped
to [1e-15, 1 - 1e-15]), AUROC and average precision (scikit-learn). ``all_actors`` scores the
same for "an event by anyone" (the model's ``sum_k Lambda0_k``; outcomes count every event).
Events outside the grid are counted in ``n_outside`` and not scored.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from culpa.errors import AnalysisError, InputError
from culpa.events.schema import is_labelled
from culpa.evaluate import forecast_refits as fr
from culpa.model import forecast as fc

ALL = "all actors"
COUNT_CLASSES = np.array([0, 1, 2, 3, 5, 10])  # lower edges of the previous-count classes
LONG_RUN_PSEUDO = 0.1
METHODS = ("model", "previous_period", "long_run_rate", "lagged_gbm")


@dataclass
class ForecastBacktestResult:
    since: str
    until: str
    horizon_days: float
    cell_km: float
    refit_days: float
    grid: fc.CellGrid
    times: list[pd.Timestamp]
    actors: list[str]
    scores: dict[str, dict]  # actor (or ALL) -> {"model": {...}, ..., "n_positive"}
    run_seconds: float
    fit_seconds: float
    n_refits: int
    n_outside: int
    y: dict[str, np.ndarray] = field(repr=False, default_factory=dict)  # (weeks, cells)
    proba: dict[str, dict[str, np.ndarray]] = field(repr=False, default_factory=dict)
    counts: dict[str, np.ndarray] = field(repr=False, default_factory=dict)  # (weeks, cells)

    @property
    def n_forecasts(self) -> int:
        return len(self.times) * self.grid.n_cells

    def to_dict(self) -> dict:
        return {"since": self.since, "until": self.until, "horizon_days": self.horizon_days,
                "cell_km": self.cell_km, "n_forecasts": self.n_forecasts,
                "run_seconds": round(self.run_seconds, 3),
                "actors": {a: self.scores[a] for a in self.actors},
                "all_actors": self.scores.get(ALL),
                "refit_days": self.refit_days, "n_refits": self.n_refits,
                "fit_seconds": round(self.fit_seconds, 3), "n_periods": len(self.times),
                "n_cells": self.grid.n_cells, "n_outside_grid": self.n_outside}


def score(y: np.ndarray, p: np.ndarray) -> dict:
    """Brier, log-loss, AUROC and average precision of probabilities p for outcomes y (0/1).
    AUROC and average precision are None when y has a single class."""
    from sklearn.metrics import (average_precision_score, brier_score_loss, log_loss,
                                 roc_auc_score)

    y = np.asarray(y, int).ravel()
    p = np.clip(np.asarray(p, float).ravel(), 1e-15, 1 - 1e-15)
    both = 0 < y.sum() < len(y)
    return {"brier": float(brier_score_loss(y, p)),
            "log_loss": float(log_loss(y, p, labels=[0, 1])),
            "auroc": float(roc_auc_score(y, p)) if both else None,
            "average_precision": float(average_precision_score(y, p)) if both else None}


def _labelled(events: pd.DataFrame) -> np.ndarray:
    return is_labelled(events)


def most_active(events: pd.DataFrame, n: int = 2) -> list[str]:
    """The ``n`` actors with the most labelled events."""
    counts = events.loc[_labelled(events), "actor"].value_counts()
    return list(counts.index[:n])


def _calibrate_previous(day: np.ndarray, cell: np.ndarray, n_cells: int, end: float,
                        H: float) -> np.ndarray:
    """P(any event in a period | count class in the period before), from periods before end."""
    n_per = int(math.floor((end - day.min()) / H)) if len(day) else 0
    p = np.full(len(COUNT_CLASSES), np.nan)
    if n_per < 2:
        return np.where(COUNT_CLASSES == 0, 0.05, 0.5)
    back = np.floor((end - day) / H).astype(int)  # 0 = the last period before end
    ok = (back < n_per) & (cell >= 0)
    counts = np.zeros((n_per, n_cells))
    np.add.at(counts, (back[ok], cell[ok]), 1.0)
    prev, now = counts[1:], counts[:-1] > 0  # period i+1 precedes period i
    cls = np.searchsorted(COUNT_CLASSES, prev, side="right") - 1
    for c in range(len(COUNT_CLASSES)):
        sel = cls == c
        p[c] = (now[sel].sum() + 0.5) / (sel.sum() + 1.0)
    return p


def run_forecast_backtest(events: pd.DataFrame, since, horizon_days: float = 7.0,
                          cell_km: float = 50.0, refit_days: float = 28.0,
                          actors: list[str] | None = None, until=None,
                          model_params: dict | None = None,
                          progress: Callable[[int, int, str], None] | None = None,
                          n_jobs: int | None = None) -> ForecastBacktestResult:
    """Roll forecasts every ``horizon_days`` from ``since`` to ``until`` (default: the day after
    the last event) and score them. ``model_params`` go to ``HawkesAttributor``; ``progress``
    is called as ``progress(n_done, n_total, description)`` after each period; ``n_jobs``:
    worker processes for the model's refits (default: one per core, at most
    :data:`~culpa.evaluate.forecast_refits.CHAINS`; 1: in this process; the forecasts are the
    same either way, see :mod:`culpa.evaluate.forecast_refits`)."""
    tick = time.perf_counter()
    for name, v in (("horizon_days", horizon_days), ("cell_km", cell_km),
                    ("refit_days", refit_days)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise InputError(f"must be a positive number, got {v!r}", field=name)
    ev = events[events["latitude"].notna() & events["longitude"].notna()].copy()
    ev["time_start"] = pd.to_datetime(ev["time_start"])
    ev = ev.sort_values(["time_start", "id"], kind="stable").reset_index(drop=True)
    since = pd.Timestamp(since)
    until = (pd.Timestamp(until) if until is not None
             else ev["time_start"].max().floor("D") + pd.Timedelta(days=1))
    H = float(horizon_days)
    train0 = ev[ev["time_start"] < since]
    if len(train0) == 0 or not _labelled(train0).any():
        raise AnalysisError(f"no labelled events before {since.date()} to fit on")
    if actors is None:
        actors = most_active(train0, 2)
    else:
        known = set(ev.loc[_labelled(ev), "actor"])
        for a in actors:
            if a not in known:
                raise InputError(f"no labelled events by {a!r} in the store", field="actors")
    times = []
    T = since
    while T + pd.Timedelta(days=H) <= until:
        times.append(T)
        T = T + pd.Timedelta(days=H)
    if not times:
        raise InputError(f"no full {H:g}-day period between {since.date()} and {until.date()}",
                         field="since")

    grid = fc.CellGrid.covering(train0["latitude"].to_numpy(float),
                                train0["longitude"].to_numpy(float), cell_km)
    cell = grid.index(ev["latitude"].to_numpy(float), ev["longitude"].to_numpy(float))
    origin = since.floor("D")
    day = (ev["time_start"] - origin).dt.total_seconds().to_numpy() / 86400.0  # < 0 in training
    lab = _labelled(ev)
    actor_col = ev["actor"].astype(object).to_numpy()
    masks = {a: lab & (actor_col == a) for a in actors}
    masks[ALL] = np.ones(len(ev), bool)
    names = list(actors) + [ALL]

    nW, nC = len(times), grid.n_cells
    Tdays = np.array([(t - origin).total_seconds() / 86400.0 for t in times])
    y = {a: np.zeros((nW, nC), bool) for a in names}
    prev_count = {a: np.zeros((nW, nC)) for a in names}
    in_test = (day >= Tdays[0]) & (day < Tdays[-1] + H)
    n_outside = int((in_test & (cell < 0)).sum())
    for a in names:
        for i, Ti in enumerate(Tdays):
            sel = masks[a] & (cell >= 0)
            now = sel & (day >= Ti) & (day < Ti + H)
            y[a][i, np.unique(cell[now])] = True
            before = sel & (day >= Ti - H) & (day < Ti)
            prev_count[a][i] = np.bincount(cell[before], minlength=nC)
    proba = {a: {m: np.zeros((nW, nC)) for m in METHODS} for a in names}

    refits = fr.plan(Tdays, float(refit_days))
    job = fr.RefitJob(ev, day, grid, times, Tdays, H, refits, list(actors),
                      dict(model_params or {}))
    n_done = 0

    def report(b: int, i: int) -> None:
        nonlocal n_done
        n_done += 1
        if progress is not None:
            progress(n_done, nW, f"{times[i].date()} (fit {b + 1} of {len(refits)})")

    model_proba, fit_seconds = fr.run_refits(job, _n_jobs(n_jobs, len(refits)), report)
    for b, (R, periods) in enumerate(refits):
        train = day < R
        span = R - float(day[train].min())
        for a in names:
            s = masks[a] & train
            calib = _calibrate_previous(day[s], cell[s], nC, R, H)
            n_cell = np.bincount(cell[s & (cell >= 0)], minlength=nC)
            long_rate = (n_cell + LONG_RUN_PSEUDO) / span
            rows = np.asarray(periods)
            proba[a]["model"][rows] = model_proba[b][None if a == ALL else a]
            cls = np.searchsorted(COUNT_CLASSES, prev_count[a][rows], side="right") - 1
            proba[a]["previous_period"][rows] = calib[cls]
            proba[a]["long_run_rate"][rows] = -np.expm1(-long_rate * H)[None, :]
    n_refits = len(refits)

    from culpa.evaluate.forecast_baselines import lagged_gbm_forecasts

    fatalities = pd.to_numeric(ev["fatalities"], errors="coerce").to_numpy(float)
    gbm = lagged_gbm_forecasts(day, cell, masks, fatalities, nW, H, refit_days, grid.nx, grid.ny)
    for a in names:
        proba[a]["lagged_gbm"] = gbm[a]
    scores = {}
    for a in names:
        scores[a] = {m: score(y[a], proba[a][m]) for m in METHODS}
        scores[a]["n_positive"] = int(y[a].sum())
    return ForecastBacktestResult(
        since=str(since.date()), until=str(until.date()), horizon_days=H, cell_km=float(cell_km),
        refit_days=float(refit_days), grid=grid, times=times, actors=list(actors), scores=scores,
        run_seconds=time.perf_counter() - tick, fit_seconds=fit_seconds, n_refits=n_refits,
        n_outside=n_outside, y=y, proba=proba, counts=prev_count)


def _n_jobs(n_jobs: int | None, n_refits: int) -> int:
    if n_jobs is None:
        n_jobs = min(os.cpu_count() or 1, fr.CHAINS)
    if not (isinstance(n_jobs, int) and n_jobs >= 1):
        raise InputError(f"must be a positive integer, got {n_jobs!r}", field="n_jobs")
    return n_jobs if n_refits > 2 else 1


def pick_cell(result: ForecastBacktestResult, lat_lon: tuple[float, float] | None = None) -> int:
    """The cell of a point, else the cell with the most periods with events of the scored
    actors."""
    if lat_lon is not None:
        c = int(result.grid.index([lat_lon[0]], [lat_lon[1]])[0])
        if c < 0:
            raise InputError(f"{lat_lon[0]:g},{lat_lon[1]:g} is outside the forecast grid",
                             field="plot_cell")
        return c
    tot = sum(result.y[a].sum(0) for a in result.actors)
    return int(np.argmax(tot))


def plot_forecast(result: ForecastBacktestResult, path, cell: int | None = None) -> int:
    """PNG: each method's probability against the outcome over time in one cell, one panel per
    scored actor. Returns the cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if cell is None:
        cell = pick_cell(result)
    lat, lon = result.grid.centre(cell)
    t = pd.to_datetime(result.times)
    fig, axes = plt.subplots(len(result.actors), 1, figsize=(10, 2.6 * len(result.actors) + 0.6),
                             sharex=True, squeeze=False)
    styles = {"model": ("C0", "-"), "previous_period": ("C1", "--"),
              "long_run_rate": ("C2", ":"), "lagged_gbm": ("C3", "-.")}
    for ax, a in zip(axes[:, 0], result.actors):
        hit = result.y[a][:, cell]
        ax.bar(t[hit], np.ones(hit.sum()), width=result.horizon_days, align="edge",
               color="0.85", label="event(s) happened")
        for m, (c, ls) in styles.items():
            ax.step(t, result.proba[a][m][:, cell], where="post", color=c, ls=ls, label=m)
        s = result.scores[a]
        ax.set_title(f"{a}: Brier model {s['model']['brier']:.3f}, previous period "
                     f"{s['previous_period']['brier']:.3f}, long-run {s['long_run_rate']['brier']:.3f}"
                     f", lagged GBM {s['lagged_gbm']['brier']:.3f} (all cells)", fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("P(at least one)")
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=4)
    fig.suptitle(f"{result.horizon_days:g}-day forecasts, {result.cell_km:g} km cell at "
                 f"{lat:.2f}, {lon:.2f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return cell
