"""`culpa fit`, `attribute`, `chain` and `backtest` on the real Iraq extract."""

from __future__ import annotations

import pytest

from helpers import UCDP_IRAQ, culpa, culpa_json


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A store of Iraq 2013-2018 with a model fitted and saved beside it."""
    db = tmp_path_factory.mktemp("model") / "iraq.duckdb"
    culpa_json("ingest", UCDP_IRAQ, "--db", db)
    fit = culpa_json("fit", "--db", db, "--since", "2013-01-01")
    return db, fit


def test_fit_saves_a_model_and_reports_what_it_learned(fitted):
    db, fit = fitted
    assert fit["n_events"] > 3000 and "IS" in fit["actors"]
    assert fit["decay_days"] > 0 and fit["sigma_km"] > 0
    assert set(fit["mark_persistence"]) == set(fit["actors"])
    assert all(0 < r < 1 for r in fit["mark_persistence"].values())
    assert fit["model"] == str(db.parent / "iraq.duckdb.model.npz")
    assert (db.parent / "iraq.duckdb.model.npz").exists()


def test_attribute_ranks_actors_and_names_its_reasons(fitted):
    db, _ = fitted
    doc = culpa_json("attribute", "--db", db, "--lat", "35.47", "--lon", "44.39",
                     "--time", "2018-07-01")
    actors = doc["actors"]
    assert actors[0]["actor"] == "IS"
    assert sum(a["probability"] for a in actors) == pytest.approx(1.0)
    reasons = actors[0]["top_events"]
    assert reasons and all(r["date"] < "2018-07-01" for r in reasons)
    assert 0 <= actors[0]["background_share"] <= 1


def test_attribute_takes_the_event_type_and_target_as_evidence(fitted):
    db, _ = fitted
    where = ("--db", db, "--lat", "36.35", "--lon", "43.15", "--time", "2016-11-15")  # Mosul
    plain = culpa_json("attribute", *where)
    assert plain["marks"] == {"event_type": None, "target": None, "fatalities": None,
                              "precision_km": None}
    marked = culpa_json("attribute", *where, "--event-type", "one-sided", "--target",
                        "Civilians")
    assert marked["marks"]["target"] == "Civilians"
    p = {a["actor"]: a["probability"] for a in plain["actors"]}
    q = {a["actor"]: a["probability"] for a in marked["actors"]}
    assert q != p and q["IS"] > 0.5  # IS killed civilians in Mosul; the mark says so too


def test_attribute_prints_a_ranked_table_for_people(fitted):
    db, _ = fitted
    proc = culpa("attribute", "--db", db, "--lat", "35.47", "--lon", "44.39", "--time",
                 "2018-07-01")
    assert proc.returncode == 0, proc.stderr
    assert "IS" in proc.stdout and "%" in proc.stdout
    # the pooled probability is traced to its two members and the weights that pooled them
    doc = culpa_json("attribute", "--db", db, "--lat", "35.47", "--lon", "44.39", "--time",
                     "2018-07-01")
    w = doc["combiner"]["weights"]
    top = doc["actors"][0]
    for text in ("Hawkes", "trees", f"Hawkes^{w['hawkes']:.2f}", f"trees^{w['trees']:.2f}",
                 f"{top['hawkes_probability']:.1%}", f"{top['trees_probability']:.1%}",
                 f"{doc['combiner']['calibration']} calibration"):
        assert text in proc.stdout, text


def test_chain_shows_triggers_and_what_followed(fitted):
    db, _ = fitted
    doc = culpa_json("chain", "ucdp:267464", "--db", db, "--min-prob", "0.01")
    assert doc["id"] == "ucdp:267464"
    assert {"parents", "children", "background_proba"} <= set(doc)
    tree = culpa("chain", "ucdp:267464", "--db", db)
    assert tree.returncode == 0 and "likely triggered by" in tree.stdout


def test_an_unknown_event_is_a_usage_error(fitted):
    db, _ = fitted
    proc = culpa("chain", "ucdp:nope", "--db", db)
    assert proc.returncode == 2 and "ucdp:nope" in proc.stderr


def test_bad_coordinates_are_refused():
    proc = culpa("attribute", "--lat", "95", "--lon", "44", "--time", "2018-01-01")
    assert proc.returncode == 2


def test_backtest_scores_model_and_baselines_on_masked_events(fitted, tmp_path):
    db, _ = fitted
    png = tmp_path / "reliability.png"
    doc = culpa_json("backtest", "--db", db, "--since", "2017-01-01", "--mask-fraction", "0.2",
                     "--seed", "1", "--plot", png)
    assert doc["n_scored"] > 100
    for scores in [doc["model"], doc["combined"], *doc["baselines"].values()]:
        assert set(scores) == {"top1", "log_loss", "brier", "ece"}
    assert set(doc["baselines"]) == {"admin1_majority", "knn", "gbm"}
    assert doc["fit_seconds"] > 0
    assert png.stat().st_size > 10_000
