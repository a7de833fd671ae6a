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
    assert fitted.pool_weights_.shape == (2, 2) and (fitted.pool_weights_ >= 0).all()
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


def test_pool_by_agreement_false_fits_one_pair_of_weights_for_every_row(events):
    """The memoriser's flat out-of-fold rows disagree with the Hawkes model's on hundreds of
    rows: enough for two pairs of weights, unless the split is switched off."""
    from culpa.errors import ParameterError

    with pytest.raises(ParameterError):
        PooledAttributor(pool_by_agreement="yes").check_params()
    split = PooledAttributor(max_iter=10, member=Memoriser()).fit(events)
    one = PooledAttributor(max_iter=10, member=Memoriser(), pool_by_agreement=False).fit(events)
    assert split.pool_calibration_["in_record"]["split_by_agreement"]
    assert not one.pool_calibration_["in_record"]["split_by_agreement"]
    assert one.pool_calibration_["in_record"]["rows_disagree"] == \
        split.pool_calibration_["in_record"]["rows_disagree"] > 0
    np.testing.assert_array_equal(one.pool_weights_[0], one.pool_weights_[1])
    assert not np.allclose(split.pool_weights_[0], split.pool_weights_[1])


def test_a_memoriser_member_gains_nothing(events):
    m = PooledAttributor(max_iter=10, member=Memoriser()).fit(events)
    assert m.pool_weights_[:, 1] == pytest.approx(0.0, abs=1e-9)
    latent = events["latent"].to_numpy()
    # each latent row is the Hawkes core alone, at the weight of its side (agree, disagree)
    sides = [m.hawkes_label_proba_[latent] ** w for w in m.pool_weights_[:, 0]]
    close = [np.isclose(m.label_proba_[latent], c / c.sum(1, keepdims=True)).all(1)
             for c in sides]
    assert (close[0] | close[1]).all()


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
    # the weights applied are those of the members' agreement on the top actor
    tops = {m: max(comb["members"][m], key=comb["members"][m].get) for m in ("hawkes", "trees")}
    assert comb["members_agree"] == (tops["hawkes"] == tops["trees"])
    side = "agree" if comb["members_agree"] else "disagree"
    assert w == comb["calibrations"]["in-record"]["weights"][side]


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


# ---------------------------------------------------------------------------------------------
# the two calibrations: in the record (recency-weighted out-of-fold rows) and after the fit
# (forward-chained rows)


@pytest.fixture(scope="module")
def fitted_year(events):
    """A horizon of a year: the bundled extract's last 91 days hold too few labelled events
    for a forward calibration of their own, its last year enough."""
    return PooledAttributor(max_iter=10, calibration_days=365).fit(events)


def after_fit(model, days=30):
    """A query ``days`` after the model's last fitted event."""
    last = pd.Timestamp(model.pool_calibration_["last_event"])
    return last + pd.Timedelta(days=days)


def test_calibration_days_is_validated_and_none_keeps_one_calibration(events, fitted):
    from culpa.errors import ParameterError

    for bad in (0, -3, "91", True, float("inf")):
        with pytest.raises(ParameterError):
            PooledAttributor(calibration_days=bad).check_params()
    PooledAttributor(calibration_days=None).check_params()
    one = PooledAttributor(max_iter=10, calibration_days=None).fit(events)
    assert np.array_equal(one.pool_forward_weights_, one.pool_weights_)
    assert one.pool_calibration_["forward"] is None
    # the in-record weights (the masked footing) do not depend on the forward horizon
    np.testing.assert_allclose(one.pool_weights_, fitted.pool_weights_, rtol=1e-12)
    doc = one.explain(after_fit(one), 36.34, 43.13)
    assert doc["combiner"]["calibration"] == "forward"
    assert doc["combiner"]["weights"]["hawkes"] == pytest.approx(one.pool_weights_[0, 0])


def test_in_record_questions_keep_the_single_calibration(fitted):
    """With too few labelled events in the bundled extract's last 91 days for a forward
    calibration, forward queries get the in-record weights."""
    cal = fitted.pool_calibration_
    assert cal["days"] == 91.0 and cal["in_record"]["rows"] == fitted.pool_oof_["n"]
    assert "fallback" in cal["forward"] and cal["forward"]["rows"] < 100
    assert np.array_equal(fitted.pool_forward_weights_, fitted.pool_weights_)


def test_queries_after_the_fit_get_the_forward_weights(fitted_year):
    from culpa.model.pooled import DAYS

    m = fitted_year
    assert m.tree_features_.names[DAYS] == "days"
    fw = m.pool_calibration_["forward"]
    assert "weights" in fw and fw["rows"] >= 100 and fw["trees_fitted_on"] >= 100
    assert fw["prior_rows"] == 100  # the in-record rows, worth 100 forward rows in all
    assert fw["rows_agree"] + fw["rows_disagree"] == fw["rows"]
    assert not np.allclose(m.pool_forward_weights_, m.pool_weights_)
    inside = pd.Timestamp("2017-06-01")
    q = pd.DataFrame({"time": [inside, after_fit(m), after_fit(m, 80)],
                      "latitude": [36.34] * 3, "longitude": [43.13] * 3,
                      "event_type": ["one-sided"] * 3})
    members = m.member_proba(q)
    assert list(members["forward"]) == [False, True, True]
    p = m.predict_proba(q)
    np.testing.assert_allclose(p.sum(1), 1.0)
    agree = m.explain(inside, 36.34, 43.13, event_type="one-sided")["combiner"]["members_agree"]
    side = 0 if agree else 1
    for row, w in ((0, m.pool_weights_[side]), (1, m.pool_forward_weights_[side])):
        z = w[0] * np.log(np.clip(members["hawkes"][row], 1e-9, 1)) \
            + w[1] * np.log(np.clip(members["trees"][row], 1e-9, 1))
        want = np.exp(z - z.max())
        np.testing.assert_allclose(p[row], want / want.sum(), rtol=1e-9)
    for when, which, w in ((inside, "in-record", m.pool_weights_),
                           (after_fit(m), "forward", m.pool_forward_weights_)):
        comb = m.explain(when, 36.34, 43.13, event_type="one-sided")["combiner"]
        assert comb["calibration"] == which
        side = 0 if comb["members_agree"] else 1
        assert [comb["weights"]["hawkes"], comb["weights"]["trees"]] == pytest.approx(
            list(w[side]))
        fw = comb["calibrations"]["forward"]["weights"]
        np.testing.assert_allclose([list(fw[s].values()) for s in ("agree", "disagree")],
                                   m.pool_forward_weights_)
    assert "forward_chained_log_loss" in m.explain(after_fit(m), 36.34, 43.13)["combiner"]


class Recorder:
    """A member that predicts uniformly and records the days (column ``DAYS``) of the rows it
    was fitted on and asked about."""

    calls: list = []

    def fit(self, X, y, n_classes):
        from culpa.model.pooled import DAYS

        self.n_classes_ = n_classes
        self.trained_ = X[:, DAYS].copy()
        return self

    def predict_proba(self, X):
        from culpa.model.pooled import DAYS

        Recorder.calls.append((self.trained_, X[:, DAYS].copy()))
        return np.full((len(X), self.n_classes_), 1.0 / self.n_classes_)


def test_the_forward_rows_are_scored_by_a_member_fitted_before_them(events):
    """The forward calibration's rows are the labelled events of the last H days, and the
    member that scores them was fitted only on the labelled events before those days."""
    Recorder.calls = []
    m = PooledAttributor(max_iter=10, member=Recorder(), calibration_days=365).fit(events)
    fw = m.pool_calibration_["forward"]
    cut = m.pool_last_day_ - 365
    forward = [(tr, asked) for tr, asked in Recorder.calls if asked.min() > cut]
    assert forward, "no call scored the forward rows alone"
    trained, asked = forward[0]
    assert trained.max() <= cut < asked.min() and asked.max() <= m.pool_last_day_
    assert len(asked) == fw["rows"] and len(trained) == fw["trees_fitted_on"]
    labelled = events["actor"].notna().to_numpy() & ~events["latent"].to_numpy()
    assert fw["rows"] + fw["trees_fitted_on"] == labelled.sum()


def test_past_only_hawkes_probabilities_ignore_later_labels(fitted_year):
    """A forward-chained row's Hawkes probabilities come from its past: changing the labels of
    the events after it changes nothing."""
    import copy

    from culpa.model.loo import past_process_proba

    m = copy.copy(fitted_year)
    n = len(m._lab)
    rows = np.array([n // 2, n // 2 + 1])
    K = m._Q.shape[1]
    for attr in ("_pairs",):  # the fit dropped its pairs: rebuild them for this check
        if getattr(m, attr, None) is None:
            pytest.skip("the fitted model keeps no candidate pairs")
    before = past_process_proba(m, rows)
    lab = m._lab.copy()
    later = np.flatnonzero((np.arange(n) > rows.max()) & (lab >= 0))
    lab[later] = (lab[later] + 1) % K
    m._lab = lab
    m._Q = np.eye(K)[np.maximum(lab, 0)] * (lab >= 0)[:, None] + m._Q * (lab < 0)[:, None]
    m._Ex = m._Q @ m.alpha_
    np.testing.assert_allclose(past_process_proba(m, rows), before, rtol=1e-12)
    np.testing.assert_allclose(before.sum(1), 1.0)


def test_save_and_load_keep_both_calibrations(fitted_year, tmp_path):
    back = HawkesAttributor.load(fitted_year.save(tmp_path / "y.npz"))
    assert np.array_equal(back.pool_forward_weights_, fitted_year.pool_forward_weights_)
    assert back.pool_last_day_ == fitted_year.pool_last_day_
    assert back.pool_calibration_ == fitted_year.pool_calibration_
    q = pd.DataFrame({"time": [pd.Timestamp("2017-06-01"), after_fit(fitted_year)],
                      "latitude": [36.34, 36.34], "longitude": [43.13, 43.13]})
    assert np.array_equal(back.predict_proba(q), fitted_year.predict_proba(q))
    when = after_fit(fitted_year)
    assert back.explain(when, 36.34, 43.13) == fitted_year.explain(when, 36.34, 43.13)


def test_a_file_from_before_the_two_calibrations_uses_one_for_every_query(fitted):
    old = {"weights": [1.5, 0.5], "oof": fitted.pool_oof_,
           "features": fitted.tree_features_.meta(), "n_members": len(fitted.members_)}
    m = PooledAttributor()
    m._load_extra({"pool": old}, {**fitted._extra_arrays()})
    assert np.array_equal(m.pool_forward_weights_, [[1.5, 0.5], [1.5, 0.5]])
    assert not m._is_forward(np.full((2, len(m.tree_features_.names)), 1e9)).any()


class KeepsItsLastEPass(HawkesAttributor):
    """A Hawkes fit that keeps its last E pass, as the pooled fit does for its out-of-fold step."""

    _keeps_final_pass = True


def test_the_out_of_fold_step_takes_each_label_out_of_its_rate_and_marks(events):
    """A labelled event's leave-one-out row must not have counted its own label: its own
    process's rate in its bin and its mark tables are re-estimated without it, and nothing
    else changes."""
    import copy

    from culpa.model.loo import _past_intensity, own_label_out

    m = KeepsItsLastEPass(max_iter=5).fit(events)
    final = m._final_pass
    B = m._temporal.rate(m._t) * m._spatial.with_floor(m._kde_loo)
    logf = m._marks.loglik(m._mcode)
    B_out, logf_out, own_alpha = own_label_out(m, B, logf, final)
    lab = m._lab
    counts = np.bincount(np.maximum(lab, 0), weights=lab >= 0, minlength=m._Q.shape[1])
    j = int(np.flatnonzero((lab >= 0) & (counts[np.maximum(lab, 0)] < 50))[0])  # a small process
    k = int(lab[j])
    others = np.arange(m._Q.shape[1]) != k
    assert np.array_equal(B_out[j, others], B[j, others])
    assert np.array_equal(logf_out[j, others], logf[j, others])
    # the rate: the temporal update from the responsibilities without event j's
    with_j, without_j = copy.deepcopy(m._temporal), copy.deepcopy(m._temporal)
    bins = m._temporal.bin_of(m._t)
    with_j.update(final.Phi, bins)
    phi = final.Phi.copy()
    phi[j] = 0.0
    without_j.update(phi, bins)
    b = bins[j]
    assert B_out[j, k] / B[j, k] == pytest.approx(without_j.mu[k, b] / with_j.mu[k, b], rel=1e-9)
    assert B_out[j, k] < B[j, k]
    # the marks: the tables refitted from the label weights without event j's
    W_kind = np.maximum(m._Q - final.Cp, 0.0) if m._pers is not None else None
    full, out = copy.deepcopy(m._marks), copy.deepcopy(m._marks)
    full.update(m._Q, m._mcode, kind_weights=W_kind)
    Q = m._Q.copy()
    Q[j] = 0.0
    out.update(Q, m._mcode, kind_weights=None if W_kind is None else W_kind * (Q > 0))
    gain = out.loglik(m._mcode[j:j + 1])[0, k] - full.loglik(m._mcode[j:j + 1])[0, k]
    assert logf_out[j, k] - logf[j, k] == pytest.approx(gain, rel=1e-9, abs=1e-12)
    assert gain < 0  # its own marks are less likely once it no longer counts
    # its process's self-excitation alpha_kk = N_kk / D_k without it: less the branching mass
    # it carried (as a child, 1 - phi; as a parent, its children's weights), less its exposure
    from culpa.model.em import compensator_weights

    alpha = np.diag(m.alpha_)[np.maximum(lab, 0)]
    G = compensator_weights(m._t, m.t_end_, m.omega_, float(m.window_days))
    D, N = m._Q.T @ G, np.diag(final.N)
    mass = 1.0 - final.Phi[j, k] + final.w[m._pairs.parent == j].sum()
    expected = alpha[j] * ((N[k] - mass) / (D[k] - G[j])) / (N[k] / D[k])
    assert own_alpha[j] == pytest.approx(expected, rel=1e-6)
    busy = (lab >= 0) & (own_alpha < alpha)  # events that carried more than their share
    assert busy.any() and np.array_equal(own_alpha[lab < 0], alpha[lab < 0])
    # and the parts of the leave-one-out pass carry all three
    parts = _past_intensity(m)
    assert np.array_equal(parts[1], logf_out)
    assert np.array_equal(parts[5], own_alpha)


def test_the_out_of_fold_step_counts_each_event_back_at_its_own_label_probabilities(events):
    """A masked event counts in the fit's rates and mark tables with its label probabilities
    q; the left-out event is scored the same way: its intensity and mark likelihoods with it
    counted in process l's rate (background responsibility q_l phi_l) and mark tables (weight
    q_l) are those of the tables refitted so."""
    import copy

    from culpa.model.loo import _counted_with, _own_weight_terms, _past_intensity

    m = KeepsItsLastEPass(max_iter=5).fit(events)
    final, lab = m._final_pass, m._lab
    bins = m._temporal.bin_of(m._t)
    # the rates and mark tables of the last E pass (the fit stopped before they settled)
    W_kind = np.maximum(m._Q - final.Cp, 0.0) if m._pers is not None else None
    m._temporal.update(final.Phi, bins)
    m._marks.update(m._Q, m._mcode, kind_weights=W_kind)
    K = m._Q.shape[1]
    counts = np.bincount(np.maximum(lab, 0), weights=lab >= 0, minlength=K)
    small = (lab >= 0) & (counts[np.maximum(lab, 0)] < 50) & (m._mcode > -2).all(1)
    j = int(np.flatnonzero(small)[0])
    k = int(lab[j])
    _, logf, _, LamJ, B_own, _ = _past_intensity(m)
    q = np.full(K, 0.4 / (K - 1))
    q[k] = 0.6
    terms = _own_weight_terms(m, np.array([j]), B_own, LamJ, final)
    logf_q, lam_q = _counted_with(q[None, :], logf[j:j + 1], LamJ[j:j + 1], terms)
    # the rate: every process's mu in j's bin refitted with j's responsibility q_l phi_l
    phi = final.Phi.copy()
    phi[j] = q * B_own[j] / LamJ[j]
    refit = copy.deepcopy(m._temporal)
    refit.update(phi, bins)
    B = m._temporal.rate(m._t) * m._spatial.with_floor(m._kde_loo)
    B_q = B[j] * refit.mu[:, bins[j]] / m._temporal.mu[:, bins[j]]
    np.testing.assert_allclose(lam_q[0], LamJ[j] - B_own[j] + B_q, rtol=1e-9)
    assert lam_q[0, k] > LamJ[j, k]
    # the marks: the tables refitted with j's label weights q
    Q = m._Q.copy()
    Q[j] = q
    if W_kind is not None:
        W_kind = W_kind.copy()
        W_kind[j] = q * W_kind[j, k]
    marks = copy.deepcopy(m._marks)
    marks.update(Q, m._mcode, kind_weights=W_kind)
    np.testing.assert_allclose(logf_q[0], marks.loglik(m._mcode[j:j + 1])[0], rtol=1e-9,
                               atol=1e-12)
    # and nothing moves at q = 0 (the event left out of every table)
    zero = _counted_with(np.zeros((1, K)), logf[j:j + 1], LamJ[j:j + 1], terms)
    assert np.array_equal(zero[0], logf[j:j + 1]) and np.array_equal(zero[1], LamJ[j:j + 1])
