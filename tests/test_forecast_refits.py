"""The forecast backtest's refits: warm-started chains fanned out over worker processes give
the same forecasts as one process running them in order, on the real UCDP Syria data."""

from __future__ import annotations

import numpy as np
import pytest

from culpa.evaluate import forecast_refits as fr
from culpa.evaluate.forecast_backtest import run_forecast_backtest
from culpa.events.store import Store
from helpers import UCDP_SYRIA


@pytest.fixture(scope="module")
def syria(tmp_path_factory):
    with Store(tmp_path_factory.mktemp("refits") / "syria.duckdb") as store:
        store.ingest([UCDP_SYRIA])
        return store.events_frame(since="2016-01-01", until="2016-04-01")


def test_refit_zero_is_cold_and_the_others_start_two_back():
    assert [fr.start_of(b) for b in range(6)] == [None, 0, 0, 1, 2, 3]
    assert fr.chains(6) == [[0], [1, 3, 5], [2, 4]]
    assert fr.chains(1) == [[0]]
    assert [R for R, _ in fr.plan(np.array([0.0, 7, 14, 21, 28, 35]), 14.0)] == [0, 14, 28]


def test_worker_processes_give_the_forecasts_of_one_process(syria):
    kw = dict(since="2016-03-01", until="2016-03-29", refit_days=7, model_params={"max_iter": 15})
    seen = []
    serial = run_forecast_backtest(syria, n_jobs=1, **kw)
    fanned = run_forecast_backtest(syria, n_jobs=2, progress=lambda d, n, s: seen.append(d), **kw)
    assert serial.n_refits == fanned.n_refits == 4
    assert sorted(seen) == [1, 2, 3, 4]  # every period reported once
    for a in serial.proba:
        for m, p in serial.proba[a].items():
            np.testing.assert_array_equal(p, fanned.proba[a][m], err_msg=f"{a} {m}")
    assert serial.scores == fanned.scores
    assert (serial.proba["IS"]["model"] > 0).all()
