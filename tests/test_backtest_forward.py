"""`culpa backtest --mode forward`: each step's events attributed from the past only, on the real
Iraq extract (2016 on, where IS and the PKK act)."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from culpa.api import Workspace
from culpa.errors import InputError
from culpa.evaluate.forward_backtest import run_forward_backtest
from culpa.events.schema import is_labelled
from culpa.events.store import Store
from culpa.model.hawkes import HawkesAttributor
from helpers import UCDP_IRAQ, culpa, culpa_json

SINCE, UNTIL = "2017-03-01", "2017-03-22"  # three weekly steps


@pytest.fixture(scope="module")
def iraq_db(tmp_path_factory):
    """A store of the Iraq extract from 2016 on (rows of the bundled file, as UCDP gives them)."""
    tmp = tmp_path_factory.mktemp("forward")
    src = tmp / "ged_iraq_2016_2018.csv"
    with open(UCDP_IRAQ, newline="", encoding="utf-8") as f, open(src, "w", newline="",
                                                                 encoding="utf-8") as g:
        rows = csv.DictReader(f)
        w = csv.DictWriter(g, fieldnames=rows.fieldnames)
        w.writeheader()
        for r in rows:
            if not r["id"].startswith("#") and r["date_start"] >= "2016-01-01":
                w.writerow(r)
    db = tmp / "iraq.duckdb"
    culpa_json("ingest", src, "--db", db)
    return db


@pytest.fixture(scope="module")
def events(iraq_db):
    with Store(iraq_db, read_only=True) as store:
        return store.events_frame()


def small_model():
    return HawkesAttributor(max_iter=10)


def forward(events, **kw):
    fitted = []

    def factory():
        fitted.append(small_model())
        return fitted[-1]

    r = run_forward_backtest(events, SINCE, UNTIL, step_days=7, refit_every=2,
                             model_factory=factory, **kw)
    return r, fitted


@pytest.fixture(scope="module")
def result(events):
    return forward(events)


def test_with_history_counts_added_events_as_fitted_ones_excite(events):
    """Adding a copy of every fitted event (new ids) doubles the triggered intensity exactly and
    leaves the background alone: the added history excites as the fitted one does."""
    train = events[events["time_start"] < pd.Timestamp(SINCE)]
    model = small_model().fit(train)
    twice = model.with_history(train.assign(id=train["id"] + ":copy"))
    t = np.array([300.0, 320.0, 341.5])  # before the last rate bin (re-estimated, held)
    lat, lon = np.array([36.34, 36.2, 35.5]), np.array([43.13, 43.3, 44.0])
    b1, g1 = model.intensity_parts(t, lat, lon)
    b2, g2 = twice.intensity_parts(t, lat, lon)
    assert g1.max() > 0
    np.testing.assert_allclose(b2, b1)
    np.testing.assert_allclose(g2, 2 * g1, rtol=1e-9, atol=1e-30)
    assert len(model.fitted_events_.ids) == len(train)  # the model itself is unchanged


def newcomer_history(train, actor="Newcomer Brigade", lat=36.9, lon=42.6, n=6):
    """``n`` labelled events of an actor the fit never saw, one a day after the fit's last
    event, at one place (Sinjar's hills)."""
    last = train["time_start"].max()
    rows = train.iloc[:n].copy()
    rows["id"] = [f"new:{i}" for i in range(n)]
    rows["time_start"] = [last + pd.Timedelta(days=i + 1) for i in range(n)]
    rows["time_end"] = rows["time_start"]
    rows["latitude"], rows["longitude"], rows["actor"] = lat, lon, actor
    return rows


def queries_at(when, places):
    return pd.DataFrame({"time": [when] * len(places), "latitude": [p[0] for p in places],
                         "longitude": [p[1] for p in places]})


@pytest.fixture(scope="module")
def fitted_before(events):
    train = events[events["time_start"] < pd.Timestamp(SINCE)]
    return train, small_model().fit(train)


def test_an_actor_seen_only_since_the_fit_is_a_further_hypothesis_where_it_acted(fitted_before):
    """A group first seen after the fit gets its own column: most of the probability right where
    it has just struck, next to nothing 300 km away; the fitted model is untouched."""
    train, model = fitted_before
    new = newcomer_history(train)
    cond = model.with_history(new)
    assert list(cond.actors_) == list(model.actors_) + ["Newcomer Brigade"]
    assert cond.newcomers_ == ["Newcomer Brigade"]
    when = new["time_start"].max() + pd.Timedelta(days=1)
    p = cond.predict_proba(queries_at(when, [(36.9, 42.6), (33.3, 44.4)]))
    assert p.shape == (2, len(model.actors_) + 1)
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert p[0, -1] > 0.5 and p[1, -1] < 0.01
    assert "Newcomer Brigade" not in model.actors_  # the fitted model is unchanged
    # before its first event a newcomer is nothing, and the answer is the fitted model's
    q = queries_at(train["time_start"].max() - pd.Timedelta(days=120), [(36.9, 42.6)])
    before = cond.predict_proba(q)
    assert before[0, -1] == 0.0
    np.testing.assert_allclose(before[0, :-1], model.predict_proba(q)[0], rtol=1e-9)


def test_an_unlabelled_event_by_a_newcomer_excites_it_by_its_share(fitted_before):
    """An unlabelled event where the newcomer acts counts for it by its probability: a second
    query after it gives the newcomer more than without it."""
    train, model = fitted_before
    new = newcomer_history(train, n=3)
    later = new.iloc[[-1]].assign(id="new:latent", latent=True,
                                  time_start=new["time_start"].max() + pd.Timedelta(days=1))
    later["time_end"] = later["time_start"]
    with_latent = model.with_history(pd.concat([new, later]))
    without = model.with_history(new)
    when = later["time_start"].iloc[0] + pd.Timedelta(hours=12)
    q = queries_at(when, [(36.9, 42.6)])
    assert with_latent.predict_proba(q)[0, -1] > without.predict_proba(q)[0, -1]


def test_the_pooled_default_gives_a_newcomer_the_hawkes_share(fitted_before):
    """The trees cannot know a newcomer: it keeps the Hawkes core's probability, and the pool
    shares the rest among the fitted actors."""
    from culpa.model import PooledAttributor

    train, _ = fitted_before
    model = PooledAttributor(max_iter=10, tree_folds=2).fit(train)
    new = newcomer_history(train)
    cond = model.with_history(new)
    when = new["time_start"].max() + pd.Timedelta(days=1)
    q = queries_at(when, [(36.9, 42.6), (36.34, 43.13)])
    members = cond.member_proba(q)
    p = cond.predict_proba(q)
    assert p.shape == members["hawkes"].shape == members["trees"].shape
    np.testing.assert_allclose(p[:, -1], members["hawkes"][:, -1])
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert p[0, -1] > 0.5
    q = queries_at(train["time_start"].max() - pd.Timedelta(days=120), [(36.9, 42.6)])
    np.testing.assert_allclose(cond.predict_proba(q)[0], [*model.predict_proba(q)[0], 0.0],
                               rtol=1e-9, atol=1e-15)


def test_a_class_no_actor_of_the_model_covers_gets_its_unseen_actor_share():
    """Scoring classes A, B, other; the model knows A and a small actor (scored as other): B,
    which none of its actors is, shares the model's unseen-actor probability, the rest is
    scaled down; with every class covered, nothing changes."""
    from culpa.evaluate.backtest import collapse

    p = np.array([[0.75, 0.25]])
    out = collapse(p, ["A", "small"], ["A", "B", "other"], unseen=0.01)
    np.testing.assert_allclose(out, [[0.75 * 0.99, 0.01, 0.25 * 0.99]])
    covered = collapse(np.array([[0.5, 0.3, 0.2]]), ["A", "B", "small"], ["A", "B", "other"],
                       unseen=0.01)
    np.testing.assert_allclose(covered, [[0.5, 0.3, 0.2]])


def test_the_unseen_actor_probability_is_good_turings(fitted_before):
    """(actors with exactly one labelled event + 1) / (labelled events + 1), newcomers counted."""
    train, model = fitted_before
    counts = train.loc[is_labelled(train), "actor"].value_counts()
    expected = ((counts == 1).sum() + 1) / (counts.sum() + 1)
    assert model.unseen_actor_proba_ == pytest.approx(expected)
    cond = model.with_history(newcomer_history(train, n=1))  # one newcomer, seen once
    assert cond.unseen_actor_proba_ == pytest.approx((expected * (counts.sum() + 1) + 1)
                                                     / (counts.sum() + 2))


def test_every_fit_and_every_history_precede_its_step(events, result):
    r, fitted = result
    starts = [pd.Timestamp(s["start"]) for s in r.steps]
    refits = [S for S, s in zip(starts, r.steps) if s["refit"]]
    assert len(fitted) == len(refits) == r.n_refits == 2
    for model, S in zip(fitted, refits):
        assert pd.Timestamp(model.fitted_events_.start.max()) < S
    # every scored event is of its own step, and none was in a fit
    ev = events.set_index("id")
    when = pd.to_datetime(ev.loc[list(r.ids), "time_start"]).to_numpy()
    for i, S in enumerate(starts):
        mine = when[r.step_of == i]
        assert len(mine) and (mine >= S).all() and (mine < S + pd.Timedelta(days=7)).all()
        used = fitted[sum(s["refit"] for s in r.steps[:i + 1]) - 1]  # the last refit
        assert not set(map(str, used.fitted_events_.ids)) & set(r.ids[r.step_of == i])


def test_no_label_of_a_step_or_after_it_changes_its_probabilities(events, result):
    """Shuffle the labels of every event from the second step on: the probabilities of the first
    two steps (model and baselines) do not move; the first step's labels do reach the later."""
    r, _ = result
    cut = pd.Timestamp(r.steps[1]["start"])
    rng = np.random.default_rng(7)
    later = np.flatnonzero(is_labelled(events) & (events["time_start"] >= cut).to_numpy())
    shuffled = events.copy()
    actors = shuffled["actor"].to_numpy(dtype=object).copy()
    actors[later] = rng.permutation(actors[later])
    assert (actors[later] != events["actor"].to_numpy(dtype=object)[later]).any()
    shuffled["actor"] = actors
    r2, _ = forward(shuffled)
    assert list(r2.ids) == list(r.ids)
    early = r.step_of <= 1
    for name in r.proba:
        np.testing.assert_allclose(r2.proba[name][early], r.proba[name][early], rtol=1e-9,
                                   err_msg=name)
    # and the shuffle does reach the third step's history (so the check above could fail)
    third = r.step_of == 2
    assert any(not np.allclose(r2.proba[n][third], r.proba[n][third]) for n in r.proba)


def test_the_json_has_the_masked_layout_and_the_forward_keys(result):
    r, _ = result
    doc = r.to_dict()
    masked_keys = {"n_scored", "model", "baselines", "combined", "fit_seconds", "classes",
                   "since", "mask_fraction", "seed", "mode"}
    assert masked_keys <= set(doc)
    assert doc["mode"] == "forward" and doc["mask_fraction"] is None
    assert doc["since"] == SINCE and doc["until"] == UNTIL
    assert doc["step_days"] == 7 and doc["n_steps"] == 3 and doc["refit_every"] == 2
    assert doc["n_scored"] == sum(s["n_scored"] for s in doc["steps"]) > 10
    assert set(doc["baselines"]) == {"admin1_majority", "knn", "gbm"}
    for scores in [doc["model"], doc["hawkes"], doc["combined"], *doc["baselines"].values()]:
        assert set(scores) == {"top1", "log_loss", "brier", "ece"}
    assert "refit every 2 steps" in doc["scheme"]
    assert doc["model"]["top1"] > 0.8  # IS and the PKK hold apart ground


@pytest.mark.parametrize("kwargs, field", [
    ({"until": "2017-02-01"}, "until"),
    ({"until": SINCE}, "until"),
    ({"step_days": 0}, "step_days"),
    ({"step_days": -7}, "step_days"),
    ({"refit_every": 0}, "refit_every"),
    ({"since": "2030-01-01", "until": "2030-02-01"}, "since"),
    ({"mode": "sideways"}, "mode"),
])
def test_bad_arguments_name_themselves(iraq_db, kwargs, field):
    args = {"since": SINCE, "mode": "forward"} | kwargs
    with pytest.raises(InputError) as e:
        Workspace(iraq_db).backtest(**args)
    assert e.value.field == field


def test_cli_forward_json(iraq_db):
    doc = culpa_json("backtest", "--db", iraq_db, "--mode", "forward", "--since", SINCE,
                     "--until", "2017-03-15", "--refit-every", "1", "--param", "max_iter=5")
    assert doc["mode"] == "forward" and doc["n_steps"] == 2 and doc["n_refits"] == 2
    assert doc["n_scored"] > 5 and 0 <= doc["model"]["ece"] <= 1


@pytest.mark.parametrize("args, flag", [
    (("--step-days", "0"), "--step-days"),
    (("--until", "2017-01-01"), "--until"),
    (("--since", "2031-01-01", "--until", "2031-02-01"), "--since"),
])
def test_cli_forward_bad_arguments_exit_2_naming_the_flag(iraq_db, args, flag):
    proc = culpa("backtest", "--db", iraq_db, "--mode", "forward", "--since", SINCE, *args,
                 "--json")
    assert proc.returncode == 2, proc.stderr
    import json

    err = json.loads(proc.stdout)
    assert flag in json.dumps(err)
