"""An actor split into processes (``process_by``): by default one per event type and target
("IS|state-based|Government of Syria"), each with its own ground, rate and triggering, and
attributions sum an actor's processes back into the actor. Real UCDP Syria data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from culpa.events.store import Store
from culpa.model.frames import days_since as _days
from culpa.model.hawkes import HawkesAttributor
from helpers import UCDP_SYRIA


@pytest.fixture(scope="module")
def syria(tmp_path_factory) -> pd.DataFrame:
    db = tmp_path_factory.mktemp("processes") / "syria.duckdb"
    with Store(db) as store:
        store.ingest([UCDP_SYRIA])
        ev = store.events_frame(since="2017-01-01", until="2017-07-01")
    rng = np.random.default_rng(0)
    return ev.assign(latent=rng.uniform(size=len(ev)) < 0.2)


@pytest.fixture(scope="module")
def model(syria) -> HawkesAttributor:
    return HawkesAttributor(max_iter=20).fit(syria)


def test_each_actor_is_one_process_per_event_type_and_target(syria, model):
    labelled = syria[~syria["latent"] & syria["actor"].notna()]
    counts = syria["other_raw"].value_counts()
    common = set(counts.index[counts >= HawkesAttributor.PROCESS_MIN_TARGET])
    assert "Government of Syria" in common and "Civilians" not in common  # rarer: pooled
    expected = {f"{a}|{t}|{g if g in common else '*'}" for a, t, g in
                zip(labelled["actor"], labelled["event_type"], labelled["other_raw"])}
    assert set(model.processes_) == expected
    assert {"IS|state-based|Government of Syria", "IS|one-sided|*"} <= set(model.processes_)
    assert set(model.actors_) == set(labelled["actor"])
    for name, k in zip(model.processes_, model.process_actor_):
        assert name.split("|")[0] == model.actors_[k]
    # per process: the triggering; per actor: the answer
    assert model.alpha_.shape == (len(model.processes_),) * 2
    assert model.label_proba_.shape == (len(syria), len(model.actors_))
    np.testing.assert_allclose(model.label_proba_.sum(1), 1.0)
    # the shrinkage towards the actors (in space and in time) keeps EM monotone
    J = np.asarray(model.log_likelihood_)
    assert np.all(np.diff(J) >= -1e-9 * np.abs(J[1:]))


def test_an_attribution_sums_the_actors_processes(syria, model):
    q = syria[syria["latent"]].head(50)
    per_process = model.predict_process_proba(q)
    by_actor = model.predict_proba(q)
    for k in range(len(model.actors_)):
        np.testing.assert_allclose(by_actor[:, k],
                                   per_process[:, model.process_actor_ == k].sum(1))
    # and the explanation says the same, its terms adding up to each actor's score
    r = q.iloc[0]
    doc = model.explain(r["time_start"], r["latitude"], r["longitude"],
                        precision_km=r["location_precision_km"], event_type=r["event_type"],
                        target=r["other_raw"], fatalities=r["fatalities"], top=10_000)
    q1 = pd.DataFrame({"time": [r["time_start"]], "latitude": [r["latitude"]],
                       "longitude": [r["longitude"]],
                       "location_precision_km": [r["location_precision_km"]],
                       "event_type": [r["event_type"]], "target": [r["other_raw"]],
                       "fatalities": [r["fatalities"]]})
    P = dict(zip(model.actors_, model.predict_proba(q1)[0]))
    for a in doc["actors"]:
        assert a["probability"] == pytest.approx(P[a["actor"]], rel=1e-9, abs=1e-15)
        assert a["background_share"] + sum(e["share"] for e in a["top_events"]) == \
            pytest.approx(1.0, rel=1e-6)


def test_processes_survive_save_and_load(syria, model, tmp_path):
    back = HawkesAttributor.load(model.save(tmp_path / "m.npz"))
    assert back.processes_ == model.processes_ and back.actors_ == model.actors_
    q = syria[syria["latent"]].head(20)
    np.testing.assert_allclose(back.predict_proba(q), model.predict_proba(q))


def test_coarser_processes_on_request(syria):
    labelled = syria[~syria["latent"] & syria["actor"].notna()]
    by_type = HawkesAttributor(max_iter=5, process_by="type").fit(syria)
    assert set(by_type.processes_) == {f"{a}|{t}" for a, t in zip(labelled["actor"],
                                                                  labelled["event_type"])}
    by_actor = HawkesAttributor(max_iter=5, process_by="actor").fit(syria)
    assert by_actor.processes_ == by_actor.actors_


def test_a_process_with_few_events_keeps_the_shape_of_its_actors_ground(syria, model):
    # The insurgents killed civilians 10 times in these six months (in the labels), and fought
    # the army 1,076 times. Without shrinkage, the one-sided ground is a wide blur around
    # the 10; shrunk towards the actor's ground, it follows where the insurgents are.
    flat = HawkesAttributor(max_iter=20, ground_shrink=0.0).fit(syria)
    labelled = syria[~syria["latent"] & syria["actor"].notna()]
    fights = labelled[(labelled["actor"] == "Syrian insurgents")
                      & (labelled["event_type"] != "one-sided")]
    name = "Syrian insurgents|one-sided|*"

    def mean_log_ground(m):
        x, y = m.projection_.forward(fights["latitude"].to_numpy(),
                                     fights["longitude"].to_numpy())
        t = _days(fights["time_start"], m.t0_)
        density = m.spatial_background_.density(x, y, None, t)
        return np.log(density[:, m.processes_.index(name)]).mean()

    assert mean_log_ground(model) > mean_log_ground(flat) + 1.0


def test_an_actor_is_present_where_others_fought_it(syria):
    # The government is the actor of a handful of events here (it killed civilians 5 times)
    # but the target of 1,876: where it was fought, it was. With ground_presence its one-sided
    # ground follows its front lines, not just its five killings.
    fronts = syria[syria["other_raw"] == "Government of Syria"]
    name = "Government of Syria|one-sided|*"

    def mean_log_ground(presence):
        m = HawkesAttributor(max_iter=20, ground_presence=presence).fit(syria)
        x, y = m.projection_.forward(fronts["latitude"].to_numpy(),
                                     fronts["longitude"].to_numpy())
        density = m.spatial_background_.density(x, y, None, _days(fronts["time_start"], m.t0_))
        return np.log(density[:, m.processes_.index(name)]).mean()

    assert mean_log_ground(True) > mean_log_ground(False) + 1.0
