"""When an event happened: the midpoint and half-width the model uses for its date range."""

import numpy as np
import pandas as pd

from culpa.model.hawkes import HawkesAttributor, date_intervals


def test_an_exact_day_is_its_middle():
    t, u = date_intervals([10.0], [10.0], [1.0])
    assert (t[0], u[0]) == (10.5, 0.5)


def test_a_range_of_dates_is_centred_on_the_range():
    # UCDP: date_start 21 Sep, date_end 1 Nov (42 days, precision = the span)
    t, u = date_intervals([0.0], [41.0], [42.0])
    assert (t[0], u[0]) == (21.0, 21.0)


def test_a_precision_wider_than_the_dates_widens_them_symmetrically():
    # one stated day, "sometime that week": still centred on the stated day, not 3 days later
    t, u = date_intervals([10.0], [10.0], [7.0])
    assert (t[0], u[0]) == (10.5, 3.5)
    # a range coded "within the year": the event stays inside its stated range on average
    t, u = date_intervals([0.0], [41.0], [365.0])
    assert (t[0], u[0]) == (21.0, 182.5)


def test_exact_times_have_no_width():
    t, u = date_intervals([3.25], [3.25], [0.0])
    assert (t[0], u[0]) == (3.25, 0.0)


def test_a_fitted_event_with_a_date_range_sits_in_the_middle_of_it():
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(40) * 3, "D")
    ev = pd.DataFrame({
        "id": [f"e{i}" for i in range(40)], "time_start": days, "time_end": days,
        "date_precision_days": 1.0,
        "latitude": 33.0 + 0.01 * (np.arange(40) % 5), "longitude": 44.0,
        "actor": ["A", "B"] * 20, "attribution": "attributed"})
    ev.loc[7, "time_end"] = ev.loc[7, "time_start"] + pd.Timedelta(days=41)
    ev.loc[7, "date_precision_days"] = 365.0
    m = HawkesAttributor(max_iter=5).fit(ev)
    row = list(m.fitted_events_.ids).index("e7")
    start = (ev.loc[7, "time_start"] - pd.Timestamp(m.t0_)).days
    assert m.fitted_events_.t[row] == start + 21.0
