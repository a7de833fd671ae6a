"""Forecasts from the fitted model (culpa.model.forecast): expected events of each actor in a
place over the coming days are the model's own intensity integrated over that place and time,
excitation from the recent past included — checked here against brute force on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from culpa.events.store import Store
from culpa.model import forecast as fc
from culpa.model.hawkes import HawkesAttributor
from helpers import UCDP_SYRIA
from reference_kernels import g_reference

AT = pd.Timestamp("2017-05-01")  # the battle of Tabqa (Ath Thawrah district) is under way


@pytest.fixture(scope="module")
def syria(tmp_path_factory) -> pd.DataFrame:
    """UCDP GED Syria, July 2016 to May 2017."""
    db = tmp_path_factory.mktemp("forecast") / "syria.duckdb"
    with Store(db) as store:
        store.ingest([UCDP_SYRIA])
        return store.events_frame(since="2016-07-01", until="2017-06-01")


@pytest.fixture(scope="module")
def model(syria) -> HawkesAttributor:
    return HawkesAttributor(max_iter=30).fit(syria[syria["time_start"] < AT])


def place_of(events: pd.DataFrame, admin2: str) -> tuple[float, float]:
    sel = events[events["admin2"] == admin2]
    return float(sel["latitude"].median()), float(sel["longitude"].median())


def brute_force(model, lat, lon, inside, start, days, spacing_km, step_days=0.25):
    """Sum the model's intensity over a lattice of points (km, model frame) for which
    ``inside(dx, dy)`` holds, at midpoints of time steps: a plain Riemann sum, per actor."""
    x0, y0 = (v[0] for v in model.projection_.forward([lat], [lon]))
    half = 60.0
    g = np.arange(-half, half, spacing_km) + spacing_km / 2
    dx, dy = np.meshgrid(g, g)
    keep = inside(dx, dy)
    plat, plon = model.projection_.inverse(x0 + dx[keep], y0 + dy[keep])
    T = fc.days_since_t0(model, start)[0]
    total = np.zeros(len(model.actors_))
    for t in T + (np.arange(int(days / step_days)) + 0.5) * step_days:
        lam = fc.intensity(model, np.full(len(plat), t), plat, plon)
        total += lam.sum(0) * spacing_km ** 2 * step_days
    return total


def test_expected_counts_are_the_intensity_integrated_over_the_disc_and_the_week(syria, model):
    lat, lon = place_of(syria[syria["time_start"] < AT], "Ath Thawrah district")
    site = fc.Site("Tabqa", lat, lon, radius_km=12.0)
    f = fc.forecast_site(model, site, AT, horizon_days=7)
    assert f.excitation.sum() > f.background.sum()  # a burst of recent events nearby
    exact = brute_force(model, lat, lon, lambda dx, dy: dx ** 2 + dy ** 2 <= 12.0 ** 2, AT, 7,
                        spacing_km=0.25)
    big = f.first_order > 1e-3
    np.testing.assert_allclose(f.first_order[big], exact[big], rtol=0.02)
    # the in-week cascade only adds; P(at least one) comes from the first-order count
    assert np.all(f.expected >= f.first_order - 1e-12)
    np.testing.assert_allclose(f.p_any, 1 - np.exp(-f.first_order))


def test_imprecise_events_count_only_within_the_models_radius(syria, model):
    """Events known only to a province (50-300 km) excite within radius_km of their reported
    place, as in the model's intensity. 44 km from one, a 20 km disc is cut by that limit (an
    untruncated Gaussian would give about 2.5 times as much here); the forecast follows it."""
    past = syria[syria["time_start"] < AT]
    vague = past[past["location_precision_km"] >= 50].iloc[-1]
    lat, lon = float(vague["latitude"]) + 0.4, float(vague["longitude"])
    f = fc.forecast_site(model, fc.Site("vague", lat, lon, 20.0), AT, 7)
    exact = brute_force(model, lat, lon, lambda dx, dy: dx ** 2 + dy ** 2 <= 20.0 ** 2, AT, 7,
                        spacing_km=0.4)
    big = f.first_order > 1e-3
    assert big.any()
    np.testing.assert_allclose(f.first_order[big], exact[big], rtol=0.03)


def test_square_cells_integrate_the_same_intensity(syria, model):
    grid = fc.CellGrid.covering(syria["latitude"], syria["longitude"], 50.0)
    T = fc.days_since_t0(model, AT)[0]
    lam = fc.forecast_cells(model, grid, T, 7.0, fc.history(model))
    k = model.actors_.index("IS")
    cell = int(np.argmax(lam[:, k]))
    iy, ix = divmod(cell, grid.nx)
    h = 0.5
    gx = grid.x0 + ix * 50 + (np.arange(100) + 0.5) * h
    gy = grid.y0 + iy * 50 + (np.arange(100) + 0.5) * h
    X, Y = np.meshgrid(gx, gy)
    lat, lon = grid.projection.inverse(X.ravel(), Y.ravel())
    exact = 0.0
    for t in T + (np.arange(28) + 0.5) * 0.25:
        exact += fc.intensity(model, np.full(lat.shape, t), lat, lon)[:, k].sum() * h * h * 0.25
    assert lam[cell, k] == pytest.approx(exact, rel=0.03)


def test_kernel_masses_in_time_and_space():
    omega, W = 0.13, 60.0
    for tj, u in [(-0.5, 0.5), (-10.0, 3.0), (-0.2, 0.0), (-58.0, 2.0)]:
        ts = np.linspace(0, 7, 70001)[:-1] + 0.5e-4
        g = g_reference(ts - tj, np.full(len(ts), u), omega, W)
        assert fc.time_mass(0.0, 7.0, [tj], [u], omega, W)[0] == pytest.approx(g.mean() * 7,
                                                                               rel=1e-3)
    rng = np.random.default_rng(0)
    for d, R, v, cutoff in [(5, 10, 1.5, 50), (12, 10, 4, 50), (30, 25, 900, 50), (70, 30, 900, 50)]:
        pts = rng.normal(size=(400_000, 2)) * np.sqrt(v)
        hit = (((pts[:, 0] - d) ** 2 + pts[:, 1] ** 2 <= R * R)
               & (np.hypot(pts[:, 0], pts[:, 1]) <= cutoff))
        assert fc.disc_mass([d], R, [v], cutoff)[0] == pytest.approx(hit.mean(), abs=2e-3)


def test_a_site_with_a_burst_of_recent_events_is_warned_and_a_quiet_one_is_not(syria, model):
    past = syria[syria["time_start"] < AT]
    hist = fc.history(model)
    burst = fc.forecast_site(model, fc.Site("Tabqa", *place_of(past, "Ath Thawrah district"),
                                            radius_km=20.0), AT, 7, hist)
    # al-Bab: fought over all winter, quiet since mid-April
    quiet = fc.forecast_site(model, fc.Site("al-Bab", *place_of(past, "Al Bab district"),
                                            radius_km=20.0), AT, 7, hist)
    assert fc.LEVEL_ORDER[burst.level] > fc.LEVEL_ORDER[quiet.level]
    assert burst.level != "normal" and quiet.level == "normal"
    k = burst.actors.index(burst.level_actor)
    assert burst.ratio[k] >= 1.5 and quiet.ratio[k] < 1
    # the warning names the recent events behind it: nearby, in the days before AT
    assert burst.drivers
    for d in burst.drivers:
        assert d["distance_km"] < 20 + model.radius_km and 0 < d["days_before"] <= 60
        assert d["actor"] == burst.level_actor and 0 < d["share"] <= 1


def test_events_after_the_fit_still_excite(syria, model):
    """A model fitted ten days earlier, brought up to date with the events since (labels as
    recorded, or the model's attribution when an event has none), warns as a fresh one would."""
    cut = AT - pd.Timedelta(days=10)
    old = HawkesAttributor(max_iter=30).fit(syria[syria["time_start"].between("2017-01-01", cut,
                                                                              inclusive="left")])
    since = syria[(syria["time_start"] >= cut) & (syria["time_start"] < AT)]
    site = fc.Site("Tabqa", *place_of(since, "Ath Thawrah district"), radius_km=20.0)
    stale = fc.forecast_site(old, site, AT, 7, fc.history(old))
    fresh = fc.forecast_site(old, site, AT, 7, fc.history(old, since))
    assert fresh.excitation.sum() > 2 * stale.excitation.sum()
    assert {d["id"] for d in fresh.drivers} & set(since["id"])
    unclaimed = since.assign(actor=None, attribution="unattributed")
    guessed = fc.forecast_site(old, site, AT, 7, fc.history(old, unclaimed))
    assert guessed.excitation.sum() == pytest.approx(fresh.excitation.sum(), rel=0.2)


def test_the_background_rate_holds_after_the_last_event(model):
    """Some events are dated only to a year, so the model's bins run months past its last event
    and hold only the prior there; forecasts use the rate of the last bin over the days it
    actually observed."""
    rates = fc.BackgroundRates.of(model)
    T = fc.days_since_t0(model, AT)[0]
    assert rates.observed_end == pytest.approx(T)
    assert model.t_end_ > T + 90  # the fitted bins run on past the data ...
    k = model.processes_.index("IS|state-based|Government of Syria")  # rates are per process
    assert model.temporal_background_.rate([model.t_end_ - 1])[0, k] < 0.05  # ... holding only the prior
    edges = model.temporal_background_.edges
    b = int(np.searchsorted(edges, T)) - 1
    observed = T - edges[b]
    assert observed >= 0.25 * model.background_bin_days  # a quarter of a bin: no merging
    mass = model.temporal_background_.mu[k, b] * (edges[b + 1] - edges[b])  # its events + prior, per bin
    for later in (T + 3, T + 60, model.t_end_ + 100):
        assert rates.rate([later])[0, k] == pytest.approx(mass / observed)
    early = np.array([10.0, 100.0])  # well inside the data: the model's own rates ...
    np.testing.assert_allclose(rates.rate(early), model.temporal_background_.rate(early))
    lat, lon = np.array([35.95, 36.2]), np.array([39.0, 37.1])  # ... and its own intensity
    bg, trig = model.intensity_parts(early, lat, lon)
    np.testing.assert_allclose(fc.intensity(model, early, lat, lon), model.by_actor(bg + trig),
                               rtol=1e-6)


def test_an_unclaimed_event_since_the_fit_is_attributed_with_its_target(syria, model):
    """An unclaimed event since the fit excites the processes the model attributes it to, and
    that attribution reads the event's target (who was attacked) as predict_proba does."""
    since = syria[syria["time_start"] >= AT].head(40).assign(actor=None,
                                                             attribution="unattributed")
    targets = since["other_raw"].dropna().value_counts().index
    assert len(targets) >= 2
    as_recorded = fc.history(model, since)
    swapped = since.assign(other_raw=np.where(since["other_raw"] == targets[0], targets[1],
                                              targets[0]))
    other = fc.history(model, swapped)
    n_fit = len(model.fitted_events_.t)
    for events, hist in ((since, as_recorded), (swapped, other)):
        q = model.predict_process_proba(events.rename(columns={"time_start": "time"}))
        np.testing.assert_allclose(hist.Ex[n_fit:], q @ model.alpha_, rtol=1e-9, atol=1e-12)
    assert not np.allclose(as_recorded.Ex[n_fit:], other.Ex[n_fit:])  # the target matters
