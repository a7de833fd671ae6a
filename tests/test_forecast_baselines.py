"""The forecasting competitor of `culpa forecast-backtest`: gradient-boosted trees on lagged cell
counts per actor. Its features look only backwards, and its forecasts never use an event on or
after the forecast day (the real UCDP Syria data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from culpa.evaluate.forecast_baselines import (FEATURES, GAP_CAP, LaggedCountsGBM,
                                               lagged_features, lagged_gbm_forecasts,
                                               neighbour_sum)
from culpa.events.store import Store
from culpa.model.forecast import CellGrid
from helpers import UCDP_SYRIA

FIRST_DAY = pd.Timestamp("2017-01-02")


@pytest.fixture(scope="module")
def syria(tmp_path_factory):
    """UCDP GED Syria, 2016 to March 2017, as the forecast backtest sees it: days from the
    first forecast day, 50 km cells, which events count for IS and for anyone."""
    db = tmp_path_factory.mktemp("fbase") / "syria.duckdb"
    with Store(db) as store:
        store.ingest([UCDP_SYRIA])
        ev = store.events_frame(until="2017-03-31")
    ev = ev[ev["latitude"].notna()].reset_index(drop=True)
    t = pd.to_datetime(ev["time_start"])
    day = ((t - FIRST_DAY).dt.total_seconds() / 86400.0).to_numpy()
    grid = CellGrid.covering(ev["latitude"].to_numpy(float), ev["longitude"].to_numpy(float), 50.0)
    cell = grid.index(ev["latitude"].to_numpy(float), ev["longitude"].to_numpy(float))
    masks = {"IS": (ev["actor"] == "IS").to_numpy(), "all": np.ones(len(ev), bool)}
    return day, cell, masks, ev["fatalities"].to_numpy(float), grid


def test_features_of_a_period_use_only_the_periods_before_it():
    # a 3 x 3 grid, 4 periods: two events in the centre cell (4) in period 1
    target = np.zeros((4, 9))
    target[1, 4] = 2
    fat = target * 5
    X = lagged_features(target, target, fat, nx=3, ny=3)  # row j = forecast of period j
    col = {name: i for i, name in enumerate(FEATURES)}
    assert X.shape == (5, 9, len(FEATURES))
    assert X[1, 4, col["count_1"]] == 0  # period 1 is not known when forecasting it
    assert X[2, 4, col["count_1"]] == 2 and X[3, 4, col["count_1"]] == 0
    assert X[3, 4, col["count_4"]] == 2
    assert X[2, 0, col["neighbours_1"]] == 2 and X[2, 4, col["neighbours_1"]] == 0
    assert X[2, 4, col["fatalities_4"]] == 10
    assert X[2, 4, col["since_last"]] == 1 and X[4, 4, col["since_last"]] == 3
    assert X[4, 0, col["since_last"]] == GAP_CAP  # never
    assert neighbour_sum(target, 3, 3)[1].sum() == 2 * 8


def test_a_forecast_is_unchanged_when_every_later_event_is_removed(syria):
    day, cell, masks, fat, grid = syria
    k = 5  # the forecast of week 5 (from day 35)
    small = LaggedCountsGBM(max_iter=30)
    full = lagged_gbm_forecasts(day, cell, masks, fat, 8, 7.0, 14.0, grid.nx, grid.ny, small)
    keep = day < 7.0 * k
    cut = lagged_gbm_forecasts(day[keep], cell[keep], {a: m[keep] for a, m in masks.items()},
                               fat[keep], 8, 7.0, 14.0, grid.nx, grid.ny, small)
    for a in masks:
        assert full[a].shape == (8, grid.n_cells)
        assert np.all((full[a] > 0) & (full[a] < 1))
        np.testing.assert_array_equal(full[a][:k + 1], cut[a][:k + 1])
        # the check can fail: the next week's forecast does see week 5's events
        assert not np.allclose(full[a][k + 1], cut[a][k + 1])


def test_the_trees_rank_busy_cells_above_quiet_ones(syria):
    day, cell, masks, fat, grid = syria
    p = lagged_gbm_forecasts(day, cell, masks, fat, 4, 7.0, 28.0, grid.nx, grid.ny,
                             LaggedCountsGBM(max_iter=30))["IS"]
    week0 = (day >= 0) & (day < 7) & masks["IS"] & (cell >= 0)
    hit = np.zeros(grid.n_cells, bool)
    hit[cell[week0]] = True
    assert hit.any() and p[0, hit].mean() > 3 * p[0, ~hit].mean()


def test_a_target_with_one_class_gets_its_smoothed_share():
    X = np.zeros((9, len(FEATURES)))
    est = clone(LaggedCountsGBM(max_iter=10)).fit(X, np.zeros(9))
    assert est.predict_proba(X[:2])[:, 1] == pytest.approx([0.05, 0.05])
    with pytest.raises(ValueError, match="X must be"):
        LaggedCountsGBM().fit(np.zeros((3, 2)), np.zeros(4))
