"""HawkesAttributor: monotone EM, latent labels, predictions, persistence, validation."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from culpa.errors import AnalysisError, InputError
from culpa.model import HawkesAttributor, NotFittedError
from culpa.model.simulate import simulate

ALPHA = np.array([[0.45, 0.05, 0.0], [0.05, 0.35, 0.05], [0.0, 0.05, 0.5]])


@pytest.fixture(scope="module")
def sim():
    s = simulate(n_actors=3, mu=[1.2, 1.0, 0.8], alpha=ALPHA, omega=0.2, sigma_km=3.0,
                 days=500, region_km=150, hotspots_per_actor=5, shared_hotspots=2,
                 snap_fraction=0.2, week_date_fraction=0.05, seed=11)
    ev = s.events
    rng = np.random.default_rng(3)
    ev["latent"] = rng.uniform(size=len(ev)) < 0.25
    # some genuinely unattributed events too (no actor at all)
    unatt = rng.uniform(size=len(ev)) < 0.05
    ev.loc[unatt, "attribution"] = "unattributed"
    ev.loc[unatt, "actor"] = None
    return ev


@pytest.fixture(scope="module")
def model(sim):
    return HawkesAttributor(cross_excitation=True, max_iter=80, tol=0.0,
                            process_by="actor").fit(sim)


def test_fit_sets_state(model, sim):
    n = len(sim)
    assert model.actors_ == ["actor_A", "actor_B", "actor_C"]
    assert model.label_proba_.shape == (n, 3)
    np.testing.assert_allclose(model.label_proba_.sum(1), 1.0)
    assert model.alpha_.shape == (3, 3)
    assert 10 < model.n_iter_ <= 80 and len(model.log_likelihood_) == model.n_iter_ + 1
    lab = ~sim["latent"].to_numpy() & sim["actor"].notna().to_numpy()
    onehot = model.label_proba_[lab]
    assert ((onehot == 0) | (onehot == 1)).all()
    truth = sim["actor"][lab].map({a: i for i, a in enumerate(model.actors_)}).to_numpy()
    assert (onehot.argmax(1) == truth).all()
    assert list(model.event_ids_) == list(sim["id"])


def test_em_is_monotone(model):
    ll = np.asarray(model.log_likelihood_)
    drops = np.diff(ll)
    assert (drops >= -1e-8 * np.abs(ll[:-1])).all(), drops.min()
    assert ll[-1] > ll[0]


def test_latent_labels_recovered(model, sim):
    hidden = (sim["latent"] | sim["actor"].isna()).to_numpy()
    truth = sim["true_actor"][hidden].map({a: i for i, a in enumerate(model.actors_)})
    p = model.label_proba_[hidden]
    acc = float((p.argmax(1) == truth.to_numpy()).mean())
    chance = float(sim["true_actor"].value_counts(normalize=True).max())
    assert acc > max(0.7, chance + 0.25), (acc, chance)
    logloss = -np.mean(np.log(p[np.arange(len(p)), truth.to_numpy()]))
    assert logloss < 0.7


def test_branching_rows_sum_to_one_and_find_true_parents(model, sim):
    P = model.parent_proba_
    assert P.shape == (len(sim), len(sim))
    np.testing.assert_allclose(np.asarray(P.sum(1)).ravel() + model.background_proba_, 1.0,
                               rtol=1e-5)
    # against the simulated truth: background probability separates background from triggered
    # events (AUC), and confident parents are mostly the true ones
    bg = model.background_proba_
    true_parent = sim["parent"].to_numpy()
    is_bg = true_parent < 0
    ranks = np.argsort(np.argsort(bg)) + 1
    auc = (ranks[is_bg].sum() - is_bg.sum() * (is_bg.sum() + 1) / 2) / (is_bg.sum()
                                                                      * (~is_bg).sum())
    assert auc > 0.75
    best = np.asarray(P.argmax(1)).ravel()
    best_p = np.asarray(P.max(1).todense()).ravel()
    confident = best_p > 0.5
    assert confident.sum() > 0.05 * len(sim)
    assert (best[confident] == true_parent[confident]).mean() > 0.6


def test_predict_proba_matches_explain_and_its_terms_add_up(model, sim):
    rows = sim.sample(20, random_state=0)
    q = pd.DataFrame({"time": rows["time_start"], "latitude": rows["latitude"],
                      "longitude": rows["longitude"],
                      "location_precision_km": rows["location_precision_km"],
                      "event_type": rows["event_type"], "fatalities": rows["fatalities"]})
    P = model.predict_proba(q)
    assert P.shape == (20, 3)
    np.testing.assert_allclose(P.sum(1), 1.0)
    assert list(model.predict(q)) == [model.actors_[i] for i in P.argmax(1)]
    r = rows.iloc[0]
    ex = model.explain(r["time_start"], r["latitude"], r["longitude"],
                       precision_km=r["location_precision_km"], event_type=r["event_type"],
                       fatalities=r["fatalities"], top=1000)
    probs = {a["actor"]: a["probability"] for a in ex["actors"]}
    np.testing.assert_allclose([probs[a] for a in model.actors_], P[0], rtol=1e-9)
    for a in ex["actors"]:  # the terms add up to the intensity
        assert a["background_share"] + sum(e["share"] for e in a["top_events"]) == \
            pytest.approx(1.0, rel=1e-6)
        assert all(e["days_before"] > 0 and e["distance_km"] <= model.radius_km
                   for e in a["top_events"])
    # one attribution alone, as in a batch (its latency is measured in
    # benchmarks/bench_fit.py, not here: a timed assertion fails on a busy machine)
    np.testing.assert_allclose(model.predict_proba(q.iloc[:1]), P[:1], rtol=1e-12)


def test_chain_follows_branching(model, sim):
    P = model.parent_proba_.tocsr()
    child = int(np.argmax(np.asarray(P.max(1).todense()).ravel()))
    eid = sim["id"].iloc[child]
    doc = model.chain(eid, depth=2)
    assert doc["id"] == eid and doc["parents"]
    top = doc["parents"][0]
    assert top["id"] == sim["id"].iloc[int(P[child].argmax())]
    assert top["probability"] == pytest.approx(P[child].max(), rel=1e-6)
    # and the parent lists this event among what it triggered
    back = model.chain(top["id"], depth=1, min_proba=0.0, max_branch=10_000)
    assert eid in {c["id"] for c in back["children"]}
    with pytest.raises(InputError):
        model.chain("nope")


def test_save_load_round_trip(model, sim, tmp_path):
    path = model.save(tmp_path / "model.npz")
    with np.load(path, allow_pickle=False) as z:  # plain arrays only
        assert all(z[k].dtype != object for k in z.files)
    m2 = HawkesAttributor.load(path)
    q = pd.DataFrame({"time": sim["time_start"].iloc[::7], "latitude": sim["latitude"].iloc[::7],
                      "longitude": sim["longitude"].iloc[::7],
                      "event_type": sim["event_type"].iloc[::7],
                      "fatalities": sim["fatalities"].iloc[::7]})
    np.testing.assert_array_equal(model.predict_proba(q), m2.predict_proba(q))
    np.testing.assert_array_equal(model.label_proba_, m2.label_proba_)
    np.testing.assert_array_equal(model.alpha_, m2.alpha_)
    assert m2.get_params() == model.get_params()
    r = sim.iloc[len(sim) // 2]
    assert model.explain(r["time_start"], r["latitude"], r["longitude"]) == \
        m2.explain(r["time_start"], r["latitude"], r["longitude"])
    eid = sim["id"].iloc[len(sim) // 2]
    assert model.chain(eid) == m2.chain(eid)
    (tmp_path / "bad.npz").write_bytes(b"not a model")
    with pytest.raises(InputError):
        HawkesAttributor.load(tmp_path / "bad.npz")


def test_a_loaded_model_renders_only_the_grounds_a_query_needs(model, sim, tmp_path):
    """Format 5 stores the kernels and weights that render the grounds, not the rasters; a
    loaded model renders a raster when a query first reads it, the same as the fitted one."""
    import copy
    import pickle
    import zipfile

    from culpa.model.background import RenderedRasters

    path = model.save(tmp_path / "model.npz")
    assert not [n for n in zipfile.ZipFile(path).namelist() if n.startswith("raster_")]
    m2 = HawkesAttributor.load(path)
    lazy = m2._spatial.rasters
    assert isinstance(lazy, RenderedRasters) and lazy._cache == {}  # nothing rendered yet
    q = pd.DataFrame({"time": [sim["time_start"].iloc[0]], "latitude": [sim["latitude"].iloc[0]],
                      "longitude": [sim["longitude"].iloc[0]]})
    np.testing.assert_array_equal(model.predict_proba(q), m2.predict_proba(q))
    assert 0 < len(lazy._cache) <= lazy.shape[0] * min(lazy.shape[1], 2)
    np.testing.assert_array_equal(np.asarray(lazy), np.asarray(model._spatial.rasters))
    for other in (copy.deepcopy(m2), pickle.loads(pickle.dumps(m2))):
        np.testing.assert_array_equal(other.predict_proba(q), model.predict_proba(q))


def _raster_layout(model, path, version: int, stacked: bool):
    """A copy of the saved model in an older layout: the rendered rasters stored as arrays."""
    import json

    with np.load(path, allow_pickle=False) as z:
        arr = {k: z[k] for k in z.files if not k.startswith("ground_")}
    R = np.asarray(model._spatial.rasters)
    K, E = R.shape[:2]
    arr["raster_index"] = np.arange(K * E, dtype=np.int32).reshape(K, E)
    if stacked:
        arr["rasters"] = R.reshape(K * E, *R.shape[2:])
    else:
        arr.update({f"raster_{i}": R[i // E, i % E] for i in range(K * E)})
    meta = json.loads(bytes(arr["meta_json"]).decode("utf-8"))
    meta["version"] = version
    arr["meta_json"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    old = path.with_name(f"v{version}.npz")
    np.savez_compressed(old, **arr)
    return old


def test_format_3_and_4_model_files_still_load(model, sim, tmp_path):
    """Format 4 held one array per distinct raster (read lazily), format 3 the rasters stacked
    (read at once); both load and answer as the fitted model. Older ones are refused."""
    from culpa.model.background import LazyRasters

    path = model.save(tmp_path / "model.npz")
    q = pd.DataFrame({"time": sim["time_start"].iloc[::50], "latitude": sim["latitude"].iloc[::50],
                      "longitude": sim["longitude"].iloc[::50]})
    v4 = HawkesAttributor.load(_raster_layout(model, path, 4, stacked=False))
    assert isinstance(v4._spatial.rasters, LazyRasters)
    np.testing.assert_array_equal(v4.predict_proba(q), model.predict_proba(q))
    v3 = _raster_layout(model, path, 3, stacked=True)
    np.testing.assert_array_equal(HawkesAttributor.load(v3).predict_proba(q),
                                  model.predict_proba(q))
    with pytest.raises(InputError, match="older culpa"):
        HawkesAttributor.load(_raster_layout(model, path, 2, stacked=True))


def _tiny():
    return pd.DataFrame({
        "id": ["a", "b", "c"],
        "time_start": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-05"]),
        "latitude": [35.0, 35.01, 35.1], "longitude": [38.0, 38.02, 38.1],
        "actor": ["X", "Y", None], "attribution": ["claimed", "attributed", "unattributed"],
    })


@pytest.mark.parametrize("col", ["id", "time_start", "latitude", "longitude", "actor",
                                 "attribution"])
def test_missing_column_names_it(col):
    with pytest.raises(InputError) as e:
        HawkesAttributor().fit(_tiny().drop(columns=[col]))
    assert e.value.field == col and col in str(e.value)


def test_bad_values_and_states():
    bad = _tiny()
    bad.loc[1, "latitude"] = 95.0
    with pytest.raises(InputError) as e:
        HawkesAttributor().fit(bad)
    assert e.value.field == "latitude"
    dup = _tiny()
    dup.loc[2, "id"] = "a"
    with pytest.raises(InputError, match="more than once"):
        HawkesAttributor().fit(dup)
    with pytest.raises(InputError):
        HawkesAttributor().fit(_tiny().iloc[:0])
    with pytest.raises(InputError) as e:
        HawkesAttributor(window_days=-1).fit(_tiny())
    assert e.value.field == "window_days"
    for bad in (dict(ground_shrink=-1.0), dict(crossfit_block_days=0)):
        with pytest.raises(InputError) as e:
            HawkesAttributor(**bad).fit(_tiny())
        assert e.value.field == next(iter(bad))
    nolab = _tiny().assign(attribution="suspected")
    with pytest.raises(AnalysisError):
        HawkesAttributor().fit(nolab)
    with pytest.raises(NotFittedError):
        HawkesAttributor().predict_proba(pd.DataFrame({"time": [], "latitude": [],
                                                        "longitude": []}))
    m = HawkesAttributor(max_iter=5).fit(_tiny())  # tiny data still fits
    assert m.actors_ == ["X", "Y"]
    with pytest.raises(InputError) as e:
        m.predict_proba(pd.DataFrame({"time": ["2020-02-01"], "latitude": [35.0]}))
    assert e.value.field == "longitude"


def test_the_estimator_follows_scikit_learns_contract():
    from sklearn.base import clone

    m = HawkesAttributor(max_iter=3, process_by="actor")
    assert clone(m).get_params() == m.get_params()
    assert "random_state" not in m.get_params()
    with pytest.raises(ValueError):
        m.set_params(no_such_parameter=1)
    for bad in (dict(window_days=-1), dict(mark_pseudo_count=0), dict(max_pair_memory_mb=-5)):
        with pytest.raises(ValueError) as e:  # a ParameterError: an InputError and a ValueError
            HawkesAttributor(**bad).fit(_tiny())
        assert isinstance(e.value, InputError) and e.value.field == next(iter(bad))
        with pytest.raises(ValueError) as before:  # the same check, public, without any data
            HawkesAttributor(**bad).check_params()
        assert before.value.field == e.value.field
    HawkesAttributor().check_params()  # the defaults are valid
    assert not hasattr(m, "actors_")  # nothing learned before fit


def test_a_refit_forgets_what_the_last_fit_cached():
    m = HawkesAttributor(max_iter=3, process_by="actor").fit(_tiny())
    m.chain("a")  # caches the id lookup and the children index
    other = _tiny().assign(id=["d", "e", "f"])
    m.fit(other)
    assert list(m.event_ids_) == ["d", "e", "f"]
    assert m.chain("d")["id"] == "d"
    with pytest.raises(InputError):
        m.chain("a")


def test_events_since_the_fit_are_read_as_strictly_as_the_fit_reads_them():
    from culpa.model import forecast as fc

    m = HawkesAttributor(max_iter=3, process_by="actor").fit(_tiny())
    later = _tiny().assign(id=["d", "e", "f"],
                           time_start=pd.to_datetime(["2020-01-06", "2020-01-07", "2020-01-08"]))
    assert len(fc.history(m, later)) == 6
    bad = later.assign(date_precision_days=[1.0, -3.0, 1.0])
    with pytest.raises(InputError) as e:  # as fit would
        fc.history(m, bad)
    assert e.value.field == "date_precision_days"
    with pytest.raises(InputError) as e:
        fc.history(m, later.assign(latitude=[35.0, 95.0, 35.0]))
    assert e.value.field == "latitude"


def test_one_query_reads_as_its_one_row_frame(model, sim):
    """explain's query (QueryArrays.one) is exactly predict's parse of the one-row frame."""
    from culpa.model.frames import QueryArrays

    rows = sim.sample(12, random_state=1)
    cases = [dict(time=r["time_start"], lat=r["latitude"], lon=r["longitude"],
                  precision_km=r["location_precision_km"], event_type=r["event_type"],
                  fatalities=r["fatalities"], target=None) for _, r in rows.iterrows()]
    cases += [dict(time="2016-03-04T05:06:07+02:00", lat=1.0, lon=2.0, precision_km=None,
                   event_type=None, fatalities=None, target="Civilians"),
              dict(time=pd.Timestamp("2015-01-01"), lat=-90, lon=180, precision_km=0.0,
                   event_type="one-sided", fatalities=3, target=None, date_precision_days=7)]
    for c in cases:
        one = QueryArrays.one(model.t0_, c["time"], c["lat"], c["lon"],
                              precision_km=c["precision_km"],
                              date_precision_days=c.get("date_precision_days", 1.0),
                              event_type=c["event_type"], target=c["target"],
                              fatalities=c["fatalities"])
        frame = QueryArrays.parse(pd.DataFrame({
            "time": [pd.Timestamp(c["time"])], "latitude": [c["lat"]], "longitude": [c["lon"]],
            "location_precision_km": [np.nan if c["precision_km"] is None
                                      else c["precision_km"]],
            "date_precision_days": [c.get("date_precision_days", 1.0)],
            "event_type": [c["event_type"]], "target": [c["target"]],
            "fatalities": [np.nan if c["fatalities"] is None else c["fatalities"]]}), model.t0_)
        for name in ("t", "u", "lat", "lon", "location_precision", "fatalities"):
            np.testing.assert_array_equal(getattr(one, name), getattr(frame, name), name)
        assert list(one.event_type) == list(frame.event_type)
        assert list(one.target) == list(frame.target)
    for bad, field in ((dict(lat=91.0), "latitude"), (dict(lon=float("nan")), "longitude"),
                       (dict(precision_km=-1.0), "location_precision_km"),
                       (dict(precision_km=float("inf")), "location_precision_km"),
                       (dict(time="not a day"), "time"), (dict(time=None), "time")):
        args = dict(time="2016-01-01", lat=1.0, lon=2.0) | bad
        with pytest.raises(InputError) as e:
            QueryArrays.one(model.t0_, args.pop("time"), args.pop("lat"), args.pop("lon"),
                            **args)
        assert e.value.field == field


def test_warm_up_renders_what_first_queries_would_and_changes_no_answer(model, sim, tmp_path):
    """A server warms a loaded model up once (every ground rendered, kernels loaded), so that
    its first requests cost what later ones do; the answers are those of a cold model."""
    path = model.save(tmp_path / "model.npz")
    cold, warm = HawkesAttributor.load(path), HawkesAttributor.load(path)
    done = warm.warm_up()
    distinct = len({int(u) for u in np.ravel(warm._spatial.rasters._index)})
    assert done == {"rasters": distinct} and distinct > 0
    assert warm.warm_up() == {"rasters": 0}  # nothing left to render
    rows = sim.sample(5, random_state=2)
    for _, r in rows.iterrows():
        assert warm.explain(r["time_start"], r["latitude"], r["longitude"], top=3) == \
            cold.explain(r["time_start"], r["latitude"], r["longitude"], top=3)
