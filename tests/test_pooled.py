"""The default attribution model: the Hawkes core pooled with cross-fitted boosted trees
(culpa.model.pooled), on the real Iraq extract."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from culpa.api import Workspace
from culpa.evaluate.metrics import log_loss
from culpa.model import DefaultAttributor, HawkesAttributor, NotFittedError, PooledAttributor
from culpa.model.combiner import LogLinearPool
from culpa.model.pooled import cross_fit
from helpers import UCDP_IRAQ

SINCE = "2016-01-01"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = tmp_path_factory.mktemp("pooled") / "iraq.duckdb"
    ws = Workspace(db)
    ws.ingest([UCDP_IRAQ])
    return ws


@pytest.fixture(scope="module")
def events(store):
    ev = store.events_frame(since=SINCE)
    # hide a fifth of the 2018 labels: those events are latent, scored against the truth
    rng = np.random.default_rng(0)
    late = np.flatnonzero((ev["time_start"] >= "2018-01-01").to_numpy() & ev["actor"].notna())
    hidden = rng.choice(late, size=len(late) // 5, replace=False)
    latent = np.zeros(len(ev), bool)
    latent[hidden] = True
    return ev.assign(latent=latent)


@pytest.fixture(scope="module")
def fitted(events):
    return PooledAttributor(max_iter=10).fit(events)


class Memoriser:
    """A member that remembers every training row's label and knows nothing else."""

    def fit(self, X, y, n_classes):
        self.n_classes_ = n_classes
        self.seen_ = {tuple(r): int(c) for r, c in zip(np.round(X, 9), y)}
        return self

    def predict_proba(self, X):
        out = np.full((len(X), self.n_classes_), 1.0 / self.n_classes_)
        for i, r in enumerate(np.round(X, 9)):
            c = self.seen_.get(tuple(r))
            if c is not None:
                out[i] = 1e-6
                out[i, c] = 1.0
        return out / out.sum(1, keepdims=True)


def test_the_default_is_the_pooled_model():
    assert DefaultAttributor is PooledAttributor
    assert issubclass(PooledAttributor, HawkesAttributor)


def test_estimator_contract(events, fitted):
    from sklearn.base import clone

    m = PooledAttributor(max_iter=7, tree_folds=2)
    assert set(vars(m)) == set(m.get_params())  # no work in __init__, only parameters
    assert {"window_days", "max_iter", "pool", "tree_folds", "member"} <= set(m.get_params())
    c = clone(m)
    assert c.get_params() == m.get_params() and c is not m
    assert "max_iter=7" in repr(m)
    with pytest.raises(NotFittedError):
        m.predict_proba(events.head(3).rename(columns={"time_start": "time"}))
    assert fitted.pool_weights_.shape == (2,) and (fitted.pool_weights_ >= 0).all()
    new = set(vars(fitted)) - set(m.get_params())
    assert all(k.endswith("_") or k.startswith("_") for k in new), sorted(new)
    with pytest.raises(ValueError):
        PooledAttributor(tree_folds=1).fit(events)


def test_masked_events_score_better_pooled_than_by_the_hawkes_core(events, fitted):
    latent = events["latent"].to_numpy()
    actors = list(fitted.actors_)
    known = np.flatnonzero(latent & events["actor"].isin(actors).to_numpy())
    y = np.array([actors.index(a) for a in events["actor"].iloc[known]])
    pooled = log_loss(fitted.label_proba_[known], y)
    hawkes = log_loss(fitted.hawkes_label_proba_[known], y)
    assert pooled < hawkes
    labelled = ~latent & events["actor"].notna().to_numpy()
    assert np.allclose(fitted.label_proba_[labelled], fitted.hawkes_label_proba_[labelled])


def test_cross_fitting_lets_no_label_feed_its_own_prediction(events):
    X = np.random.default_rng(1).normal(size=(300, 4))
    y = np.arange(300) % 3
    _, oof = cross_fit(Memoriser(), X, y, 3, n_folds=3)
    assert np.allclose(oof, 1 / 3)  # every row was predicted by a copy that never saw it
    # fitted in-sample instead, the memoriser would look perfect and take the largest weight
    inside = Memoriser().fit(X, y, 3).predict_proba(X)
    flat = np.full((300, 3), 1 / 3)
    assert LogLinearPool().fit([flat, inside], y, start=[1.0, 0.0]).weights_[1] > 1.0


def test_a_memoriser_member_gains_nothing(events):
    m = PooledAttributor(max_iter=10, member=Memoriser()).fit(events)
    assert m.pool_weights_[1] == pytest.approx(0.0, abs=1e-9)
    latent = events["latent"].to_numpy()
    core = m.hawkes_label_proba_[latent] ** m.pool_weights_[0]
    assert np.allclose(m.label_proba_[latent], core / core.sum(1, keepdims=True))


def test_save_and_load_give_identical_probabilities(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.npz")
    back = HawkesAttributor.load(path)  # the file names its class
    assert type(back) is PooledAttributor
    q = pd.DataFrame({"time": pd.to_datetime(["2018-03-01", "2018-06-15", "2017-02-01"]),
                      "latitude": [36.34, 33.31, 35.47], "longitude": [43.13, 44.36, 44.39],
                      "event_type": ["one-sided", "state-based", None],
                      "fatalities": [3, np.nan, 1]})
    assert np.array_equal(back.predict_proba(q), fitted.predict_proba(q))
    assert np.array_equal(back.label_proba_, fitted.label_proba_)
    assert back.explain("2018-03-01", 36.34, 43.13) == fitted.explain("2018-03-01", 36.34, 43.13)
    assert np.array_equal(back.pool_weights_, fitted.pool_weights_)


def test_a_hawkes_only_file_still_loads_as_the_hawkes_model(events, tmp_path):
    path = HawkesAttributor(max_iter=3).fit(events).save(tmp_path / "h.npz")
    back = PooledAttributor.load(path)
    assert type(back) is HawkesAttributor
    assert "combiner" not in back.explain("2018-03-01", 36.34, 43.13)


def test_the_explanation_traces_the_combiner(fitted):
    doc = fitted.explain("2018-03-01", 36.34, 43.13, event_type="one-sided", top=3)
    comb = doc["combiner"]
    w = comb["weights"]
    assert set(w) == {"hawkes", "trees"}
    z = {a["actor"]: w["hawkes"] * np.log(max(a["hawkes_probability"], 1e-9))
         + w["trees"] * np.log(max(a["trees_probability"], 1e-9)) for a in doc["actors"]}
    zmax = max(z.values())
    norm = sum(np.exp(v - zmax) for v in z.values())
    for a in doc["actors"]:
        assert a["probability"] == pytest.approx(np.exp(z[a["actor"]] - zmax) / norm, rel=1e-6)
        assert a["hawkes_probability"] == pytest.approx(comb["members"]["hawkes"][a["actor"]])
    probs = [a["probability"] for a in doc["actors"]]
    assert probs == sorted(probs, reverse=True)
    assert "background_share" in doc and doc["actors"][0]["top_events"] is not None
    assert set(comb["out_of_fold_log_loss"]) == {"hawkes", "trees", "pooled"}


def test_attribute_json_includes_the_combiner_and_imports_no_sklearn(store, tmp_path):
    out = tmp_path / "model.npz"
    store.fit(since=SINCE, out=out, max_iter=5)
    doc = store.attribute(36.34, 43.13, "2018-03-01", model_path=out)
    assert "combiner" in doc and doc["actors"][0]["trees_probability"] >= 0
    code = ("import sys, json; from culpa.api import Workspace; "
            f"d = Workspace({str(store.db)!r}).attribute(36.34, 43.13, '2018-03-01', "
            f"model_path={str(out)!r}); "
            "print(json.dumps({'sk': [m for m in sys.modules if m.startswith('sklearn')], "
            "'p': d['actors'][0]['probability']}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["sk"] == []
    assert res["p"] == pytest.approx(doc["actors"][0]["probability"])


def test_trees_fit_when_a_class_has_a_single_event():
    """A small fold of a small store may hold one event of an actor: early stopping cannot
    stratify it, so the trees fit a fixed budget instead of failing."""
    from culpa.model.trees import TreeMember

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    y[0] = 2  # one event of a third class
    member = TreeMember().fit(X, y, n_classes=3)
    proba = member.predict_proba(X[:5])
    assert proba.shape == (5, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert list(member.classes_) == [0, 1, 2]


def test_the_compiled_tree_walk_and_the_one_query_path_agree_with_the_reference(fitted, events):
    """Forest.raw (compiled) equals the NumPy walk; the calendar features equal pandas'; an
    explanation's one query (no frame) gets predict_proba's probabilities, tz-aware too."""
    from culpa.model.trees import calendar

    rows = events.sample(40, random_state=3)
    q = pd.DataFrame({"time": rows["time_start"], "latitude": rows["latitude"],
                      "longitude": rows["longitude"],
                      "location_precision_km": rows["location_precision_km"],
                      "event_type": rows["event_type"], "target": rows["other_raw"],
                      "fatalities": rows["fatalities"]})
    X = fitted._query_tree_matrix(q)
    walked = [m for m in fitted.members_ if m.forest_ is not None]
    assert walked
    for m in walked:
        np.testing.assert_allclose(m.forest_.raw(X), m.forest_.raw_reference(X), rtol=1e-12,
                                   atol=1e-12)
    days = np.concatenate([rows["time_start"].to_numpy("datetime64[s]"), np.array(
        ["1969-12-31T23:00:00", "1900-03-01", "2000-02-29", "2016-12-31", "NaT"],
        "datetime64[s]")])
    doy, dow = calendar(days)
    ts = pd.DatetimeIndex(days)
    np.testing.assert_array_equal(doy, ts.day_of_year.to_numpy(float))
    np.testing.assert_array_equal(dow, ts.day_of_week.to_numpy(float))
    asked = [(r["time_start"], r["latitude"], r["longitude"], r["location_precision_km"],
              r["event_type"], r["other_raw"], r["fatalities"]) for _, r in rows.head(6).iterrows()]
    asked.append((pd.Timestamp("2018-03-01T02:00:00+05:00"), 36.34, 43.13, None, "one-sided",
                  None, None))
    for when, lat, lon, prec, etype, target, fat in asked:
        doc = fitted.explain(when, lat, lon, precision_km=prec, event_type=etype,
                             target=target, fatalities=fat, top=2)
        frame = pd.DataFrame({"time": [when], "latitude": [lat], "longitude": [lon],
                              "location_precision_km": [np.nan if prec is None else prec],
                              "event_type": [etype], "target": [target],
                              "fatalities": [np.nan if fat is None else fat]})
        want = fitted.predict_proba(frame)[0]
        got = {a["actor"]: a["probability"] for a in doc["actors"]}
        np.testing.assert_allclose([got[a] for a in fitted.actors_], want, rtol=1e-9,
                                   atol=1e-15)


def test_trees_fit_a_window_where_an_actor_has_a_single_event():
    """A short case window (culpa serve's team cases) can hold an actor with one labelled
    event: the tree member fits without its stratified early-stopping split."""
    from culpa.model.trees import TreeMember

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = np.r_[np.zeros(40, int), np.ones(19, int), [2]]
    m = TreeMember().fit(X, y, 3)
    p = m.predict_proba(X)
    assert p.shape == (60, 3) and np.allclose(p.sum(1), 1.0)



def test_small_tree_fits_run_on_one_openmp_thread_and_restore_the_rest():
    """The trees fit on one OpenMP thread (a second does not pay on a conflict's few thousand
    events, see culpa/openmp.py); every runtime has its threads back afterwards."""
    from threadpoolctl import threadpool_info

    from culpa.model.trees import TreeMember
    from culpa.openmp import one_thread

    def openmp_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]

    X = np.random.default_rng(0).normal(size=(200, 3))
    TreeMember().fit(X, (X[:, 0] > 0).astype(int), 2)  # loads scikit-learn's runtime
    before = openmp_threads()
    with one_thread():
        assert openmp_threads() and set(openmp_threads()) == {1}
    assert openmp_threads() == before
