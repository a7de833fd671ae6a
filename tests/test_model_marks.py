"""Marks in the estimator: type and target as one kind, and kinds that persist down a chain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from culpa.model import HawkesAttributor
from culpa.model.simulate import simulate

TARGETS = ["Civilians", "Government", "Rivals", "Police"]


def _with_targets(copy: float, seed: int) -> pd.DataFrame:
    """Simulated events whose target is drawn per actor, except that a triggered event repeats
    its trigger's kind (type and target) with probability ``copy``."""
    s = simulate(n_actors=2, mu=[1.5, 1.0], alpha=0.5 * np.eye(2), omega=0.25, sigma_km=2.0,
                 days=600, region_km=120, hotspots_per_actor=4, shared_hotspots=2, seed=seed)
    ev = s.events.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    pref = rng.dirichlet(np.full(len(TARGETS), 0.8), 2)
    actor = ev["true_actor"].map({a: i for i, a in enumerate(s.actors)}).to_numpy()
    target = np.array([TARGETS[rng.choice(len(TARGETS), p=pref[a])] for a in actor], object)
    etype = ev["event_type"].to_numpy(object).copy()
    for i in np.argsort(ev["t_days"].to_numpy(), kind="stable"):  # parents before children
        p = int(ev["parent"].iloc[i])
        if p >= 0 and rng.uniform() < copy:
            target[i], etype[i] = target[p], etype[p]
    return ev.assign(target=target, event_type=etype)


@pytest.mark.parametrize("copy", [0.0, 0.7])
def test_persistence_of_kinds_is_recovered(copy):
    ev = _with_targets(copy, seed=21)
    m = HawkesAttributor(max_iter=60, process_by="actor").fit(ev)
    assert m.mark_persistence_ == pytest.approx(np.full(2, copy), abs=0.15)


def test_persistence_helps_attribute_a_kind_that_runs_in_a_chain():
    ev = _with_targets(0.8, seed=5)
    rng = np.random.default_rng(0)
    latent = rng.uniform(size=len(ev)) < 0.3
    truth = ev["true_actor"].to_numpy()[latent]
    acc = {}
    for persist in (False, True):
        m = HawkesAttributor(max_iter=60, mark_persistence=persist,
                             process_by="actor").fit(ev.assign(latent=latent))
        pred = np.asarray(m.actors_)[m.label_proba_[latent].argmax(1)]
        acc[persist] = float(np.mean(pred == truth))
    assert acc[True] >= acc[False]


def test_a_target_alone_moves_the_attribution():
    ev = _with_targets(0.0, seed=8)
    m = HawkesAttributor(max_iter=40, process_by="actor").fit(ev)
    q = ev[["time_start", "latitude", "longitude", "event_type"]].iloc[::5]
    p_a = np.stack([m.predict_proba(q.assign(target=tgt))[:, 0] for tgt in TARGETS])
    # who was attacked is evidence of who attacked: the answer moves with the target alone
    assert np.mean(p_a.max(0) - p_a.min(0)) > 0.05
    # the actor that attacks a target more often gains from it
    share_a = [np.mean(ev.loc[ev["target"] == tgt, "true_actor"] == "actor_A") for tgt in TARGETS]
    assert np.argmax(p_a.mean(1)) == np.argmax(share_a)
    # without a target the type alone is scored: between the extremes
    p_none = m.predict_proba(q)[:, 0]
    assert np.all((p_none >= p_a.min(0) - 1e-9) & (p_none <= p_a.max(0) + 1e-9))


def test_explain_and_predict_agree_when_kinds_persist():
    ev = _with_targets(0.7, seed=13)
    m = HawkesAttributor(max_iter=40).fit(ev)
    r = ev.iloc[int(len(ev) * 0.7)]
    q = pd.DataFrame({"time": [r["time_start"]], "latitude": [r["latitude"]],
                      "longitude": [r["longitude"]], "event_type": [r["event_type"]],
                      "target": [r["target"]]})
    P = m.predict_proba(q)[0]
    doc = m.explain(r["time_start"], r["latitude"], r["longitude"],
                    event_type=r["event_type"], target=r["target"], top=10_000)
    probs = {a["actor"]: a["probability"] for a in doc["actors"]}
    np.testing.assert_allclose([probs[a] for a in m.actors_], P, rtol=1e-9)
    for a in doc["actors"]:  # the terms, persistence included, add up to the intensity
        assert a["background_share"] + sum(e["share"] for e in a["top_events"]) == \
            pytest.approx(1.0, rel=1e-6)


def test_nobody_attacks_itself():
    ev = _with_targets(0.5, seed=8)
    # the two actors fight each other some of the time (as in the UCDP non-state dyads)
    rng = np.random.default_rng(3)
    other = {"actor_A": "actor_B", "actor_B": "actor_A"}
    duel = rng.uniform(size=len(ev)) < 0.2
    ev.loc[duel, "target"] = ev.loc[duel, "true_actor"].map(other)
    ev.loc[duel, "event_type"] = "non-state"
    for process_by in ("actor", "kind"):
        m = HawkesAttributor(max_iter=30, process_by=process_by).fit(ev)
        q = ev[["time_start", "latitude", "longitude"]].iloc[::7]
        P = m.predict_proba(q.assign(event_type="non-state", target="actor_A"))
        assert np.all(P[:, m.actors_.index("actor_A")] < 1e-200)
        assert np.allclose(P.sum(1), 1.0)
        J = np.asarray(m.log_likelihood_)
        assert np.all(np.isfinite(J)) and np.all(np.diff(J) >= -1e-6 * abs(J[-1]))  # monotone
        # a latent event against actor_A is never actor_A's
        lat = ev.assign(latent=duel & (ev["target"] == "actor_A").to_numpy()
                        & (np.arange(len(ev)) % 2 == 0))
        m2 = HawkesAttributor(max_iter=30, process_by=process_by).fit(lat)
        rows = np.flatnonzero(lat["latent"].to_numpy())
        pos = {e: i for i, e in enumerate(m2.event_ids_)}
        Q = m2.label_proba_[[pos[e] for e in lat["id"].iloc[rows]]]
        assert np.all(Q[:, m2.actors_.index("actor_A")] < 1e-200)
