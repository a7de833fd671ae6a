"""The model's side of the forecast backtest: its refits and the forecasts each one makes,
warm-started in two chains that run side by side in worker processes.

Refit ``b`` (``b = 0, 1, ...``, one every ``refit_days``) fits the model on every event before
its time and forecasts the periods until the next refit. Refit 0 is fitted cold; refit 1 and
refit 2 start from it (``HawkesAttributor.fit(..., warm_start=...)``), and from then on each
refit starts from the one two before it: the odd and the even refits are two chains that run at
the same time, one per core, once refit 0 is done. A refit warm-started a month or two after
its start point needs a fraction of a cold fit's EM iterations and ends at the same optimum
within EM's tolerance (tests/test_warm_start.py).

Which fit starts from which is fixed (:func:`start_of`), whatever the number of worker
processes, and each fit is deterministic given its data and start, so the forecasts are the
same with one process or two (tested). Workers are spawned (a clean interpreter: numba loads
its cached machine code from the package's cache there) and send progress through a queue.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import queue as _queue
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Warm-start chains that run side by side (fixed, so the result does not depend on the cores).
CHAINS = 2


def start_of(b: int) -> int | None:
    """The refit refit ``b`` starts from (None: a cold fit)."""
    if b == 0:
        return None
    return max(b - CHAINS, 0)


@dataclass
class RefitJob:
    """What every refit reads: the events (time order), their day (since the first forecast
    day) and cell, the refit times ``R`` and the periods each forecasts, the actors scored."""

    events: pd.DataFrame
    day: np.ndarray
    grid: object
    times: list
    Tdays: np.ndarray
    H: float
    refits: list[tuple[float, list[int]]]  # (R, periods)
    actors: list[str]
    params: dict

    def run_refit(self, b: int, start, report: Callable[[int, int], None] | None = None):
        """Fit refit ``b`` (from ``start``) and forecast its periods: ``(model, {actor:
        (periods x cells)}, fit seconds)``; ``report(b, period)`` after each period."""
        import time

        from culpa.model import forecast as fc
        from culpa.model.hawkes import HawkesAttributor

        R, periods = self.refits[b]
        ev, day = self.events, self.day
        tick = time.perf_counter()
        model = HawkesAttributor(**self.params).fit(ev[day < R], warm_start=start)
        fit_seconds = time.perf_counter() - tick
        cell_bg = fc.cell_background(model, self.grid)
        kidx = {a: model.actors_.index(a) if a in model.actors_ else None for a in self.actors}
        out = {a: np.zeros((len(periods), self.grid.n_cells)) for a in self.actors}
        total = np.zeros((len(periods), self.grid.n_cells))
        for j, i in enumerate(periods):
            extra = ev[(day >= R) & (day < self.Tdays[i])]
            hist = fc.history(model, extra if len(extra) else None)
            T_model = float(fc.days_since_t0(model, self.times[i])[0])
            lam = fc.forecast_cells(model, self.grid, T_model, self.H, hist, cell_bg)
            total[j] = -np.expm1(-lam.sum(1))
            for a in self.actors:
                if kidx[a] is not None:
                    out[a][j] = -np.expm1(-lam[:, kidx[a]])
            if report is not None:
                report(b, i)
        out[None] = total
        return model, out, fit_seconds


def plan(Tdays: np.ndarray, refit_days: float) -> list[tuple[float, list[int]]]:
    """The refits: ``(R, periods it forecasts)``, R the last refit time at or before each
    period's start (every ``refit_days`` from day 0)."""
    blocks: dict[float, list[int]] = {}
    for i, Ti in enumerate(Tdays):
        R = math.floor(Ti / refit_days + 1e-9) * float(refit_days)
        blocks.setdefault(R, []).append(i)
    return list(blocks.items())


def chains(n_refits: int) -> list[list[int]]:
    """Refit 0, then the chains that start from it (each refit follows its start)."""
    rest = [[b for b in range(1, n_refits) if (b - 1) % CHAINS == c] for c in range(CHAINS)]
    return [[0]] + [c for c in rest if c]


# ---------------------------------------------------------------------------------------------
# running the chains: in this process, or in worker processes

_JOB: RefitJob | None = None
_QUEUE = None


def _init_worker(job: RefitJob, q) -> None:
    global _JOB, _QUEUE
    _JOB, _QUEUE = job, q


def _run_chain(refits: list[int], start, keep_last: bool, job: RefitJob | None = None,
               report=None):
    """Run refits in order, each from the one before (the first from ``start``):
    ``([(b, forecasts, fit seconds)], last model if keep_last)``."""
    job = job if job is not None else _JOB
    if report is None and _QUEUE is not None:
        report = lambda b, i: _QUEUE.put((b, i))  # noqa: E731
    done, model = [], start
    for b in refits:
        model, out, sec = job.run_refit(b, model, report)
        done.append((b, out, sec))
    return done, (model if keep_last else None)


def run_refits(job: RefitJob, n_jobs: int = 1,
               report: Callable[[int, int], None] | None = None) -> tuple[dict, float]:
    """Every refit's forecasts, ``({b: {actor (None: all): (periods x cells)}}, fit seconds
    summed)``, with ``n_jobs`` worker processes (1: here, in order)."""
    plan_ = chains(len(job.refits))
    if n_jobs <= 1 or len(plan_) <= 2:
        return _serial(job, plan_, report)
    return _parallel(job, plan_, min(n_jobs, len(plan_) - 1), report)


def _serial(job, plan_, report):
    results, fit_seconds = {}, 0.0
    first, model0 = _run_chain(plan_[0], None, True, job, report)
    for chain in [None] + plan_[1:]:
        done = first if chain is None else _run_chain(chain, model0, False, job, report)[0]
        for b, out, sec in done:
            results[b] = out
            fit_seconds += sec
    return results, fit_seconds


def _parallel(job, plan_, n_workers, report):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()  # handed to each worker as it starts
    results, fit_seconds = {}, 0.0
    expected = sum(len(periods) for _, periods in job.refits)  # one report per period
    seen = 0
    with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(job, q)) as pool:
        futures: set[Future] = {pool.submit(_run_chain, plan_[0], None, True)}
        started = False
        while futures:
            finished, futures = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
            seen += _drain(q, report)
            for f in finished:
                done, model0 = f.result()
                for b, out, sec in done:
                    results[b] = out
                    fit_seconds += sec
                if not started:
                    started = True
                    futures |= {pool.submit(_run_chain, c, model0, False) for c in plan_[1:]}
    # a worker's reports travel on the queue's own pipe and can arrive after its result
    seen += _drain(q, report, wait_for=expected - seen)
    q.close()
    return results, fit_seconds


def _drain(q, report, wait_for: int = 0) -> int:
    """Pass the queued reports on (waiting up to a few seconds for the next one while fewer
    than ``wait_for`` have come); returns how many there were."""
    n = 0
    while True:
        try:
            b, i = q.get(timeout=5.0) if n < wait_for else q.get_nowait()
        except (_queue.Empty, EOFError, OSError):
            return n
        n += 1
        if report is not None:
            report(b, i)
