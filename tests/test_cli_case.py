"""`culpa case`: the model's prior from the store, graded evidence on top, a report to read."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from helpers import REPO, UCDP_IRAQ, culpa, culpa_json

DEMO_CASE = Path(str(resources.files("culpa.data").joinpath("demo_case.yaml")))
K1_CASE = REPO / "examples" / "k1_airbase.yaml"
CASE_KEYS = {"title", "leading", "prior", "posterior", "items", "break_even", "ach_inconsistency",
             "nearby_events"}


@pytest.fixture(scope="module")
def iraq_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("case") / "iraq.duckdb"
    culpa_json("ingest", UCDP_IRAQ, "--db", db)
    return db


@pytest.fixture(scope="module")
def demo_doc(iraq_db, tmp_path_factory):
    html = tmp_path_factory.mktemp("report") / "report.html"
    doc = culpa_json("case", DEMO_CASE, "--db", iraq_db, "--html", html)
    return doc, html


def test_the_json_has_every_contract_key(demo_doc):
    doc, _ = demo_doc
    assert CASE_KEYS <= set(doc)
    for item in doc["items"]:
        assert {"id", "weight", "log_lr", "loo_posterior"} <= set(item)
    for hid, be in doc["break_even"].items():
        assert set(be) == {"with_undisclosed", "without_undisclosed"}
    assert sum(doc["posterior"].values()) == pytest.approx(1.0)


def test_the_prior_comes_from_the_model_fitted_on_the_year_before(demo_doc):
    doc, _ = demo_doc
    # IS dominates the Kirkuk record in 2017-18; the hypothetical faction keeps its explicit prior.
    assert doc["model_prior"] is not None and doc["n_window_events"] > 100
    assert doc["prior"]["faction"] == pytest.approx(0.05)
    assert doc["prior"]["IS"] > doc["prior"]["PKK"]
    assert doc["leading"] == "IS"
    # The incident itself (ucdp:267464, 2018-07-01) is not among the events that informed it.
    assert all(e["date"] < "2018-07-01" for e in doc["nearby_events"])
    assert "ucdp:267464" not in {e["id"] for e in doc["nearby_events"]}


def test_nearby_events_are_real_events_of_the_window(demo_doc):
    doc, _ = demo_doc
    near = doc["nearby_events"]
    assert len(near) > 20
    assert all(e["distance_km"] <= 150 and e["date"] >= "2017-07-01" for e in near)


def test_the_report_is_written(demo_doc):
    doc, html = demo_doc
    assert doc["report"] == str(html)
    text = html.read_text(encoding="utf-8")
    assert doc["title"].split(" (")[0] in text and "UCDP" in text


def test_people_get_a_summary(iraq_db):
    proc = culpa("case", DEMO_CASE, "--db", iraq_db)
    assert proc.returncode == 0, proc.stderr
    assert "Leading explanation: IS" in proc.stdout
    assert "undisclosed" in proc.stdout


def test_the_k1_case_runs_with_kh_absent_from_the_data(iraq_db):
    doc = culpa_json("case", K1_CASE, "--db", iraq_db)
    assert doc["prior"]["KH"] == pytest.approx(0.05)
    assert doc["leading"] == "IS"
    kh = doc["break_even"]["KH"]
    assert kh["with_undisclosed"] > 1 and kh["without_undisclosed"] > 1


def test_without_a_store_hypotheses_share_equally(tmp_path):
    doc = culpa_json("case", DEMO_CASE, "--db", tmp_path / "none.duckdb")
    assert doc["model_prior"] is None and "share equally" in doc["model_note"]
    shared = [doc["prior"][h] for h in ("IS", "PKK", "other")]
    assert max(shared) - min(shared) < 1e-9


@pytest.mark.parametrize("edit,path", [
    (("reliability: B\n    credibility: 2\n    likelihood: {IS: 0.6",
      "reliability: Z\n    credibility: 2\n    likelihood: {IS: 0.6"), "evidence[0].reliability"),
    (("{IS: 0.6, PKK: 0.05", "{ISIS: 0.6, PKK: 0.05"), "evidence[0].likelihood"),
])
def test_a_malformed_case_exits_2_naming_the_key_path(tmp_path, edit, path):
    bad = tmp_path / "bad.yaml"
    text = DEMO_CASE.read_text(encoding="utf-8")
    assert edit[0] in text
    bad.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    proc = culpa("case", bad, "--db", tmp_path / "none.duckdb", "--json")
    assert proc.returncode == 2
    assert path in json.loads(proc.stdout)["error"] and path in proc.stderr


def test_a_case_without_hypotheses_is_refused(tmp_path):
    bad = tmp_path / "empty.yaml"
    bad.write_text("title: x\nincident: {time: 2018-01-01, lat: 35, lon: 44}\nhypotheses: []\n")
    proc = culpa("case", bad)
    assert proc.returncode == 2 and "hypotheses" in proc.stderr


def test_the_case_carries_the_warning_view_of_the_day_before(demo_doc):
    doc, html = demo_doc
    warning = doc["warning"]
    assert warning["at"] == "2018-06-30" and warning["horizon_days"] == 7
    assert warning["level"] in {"normal", "elevated", "high"}
    assert "IS" in warning["actors"] and 0 < warning["actors"]["IS"]["p_any"] < 1
    assert all(d["date"] <= "2018-06-30" for d in warning["drivers"])
    assert "Early warning" in html.read_text(encoding="utf-8")


def test_hypotheses_carry_the_canonical_actor_the_events_use(demo_doc):
    doc, _ = demo_doc
    is_hyp = next(h for h in doc["hypotheses"] if h["id"] == "IS")
    assert is_hyp["actor_as_written"] == "Islamic State" and is_hyp["actor"] == "IS"
    assert "IS" in {e["actor"] for e in doc["nearby_events"]}


@pytest.fixture(scope="module")
def kirkuk_db(tmp_path_factory):
    """The Iraq extract plus GTD's 2019-2020 Kirkuk attacks, several coded "Unknown"."""
    db = tmp_path_factory.mktemp("kirkuk") / "kirkuk.duckdb"
    culpa_json("ingest", UCDP_IRAQ, REPO / "tests" / "data" / "gtd_iraq_kirkuk_2019_2020_cp1252.csv",
               "--db", db)
    return db


def test_a_case_with_unattributed_events_nearby_gives_json_and_a_report(kirkuk_db, tmp_path):
    html = tmp_path / "k1.html"
    doc = culpa_json("case", K1_CASE, "--db", kirkuk_db, "--html", html)
    unattributed = [e for e in doc["nearby_events"] if e["actor"] is None]
    assert unattributed and all(e["id"].startswith("gtd:") for e in unattributed)
    assert doc["leading"] in doc["posterior"]
    assert "K-1" in html.read_text(encoding="utf-8")


@pytest.mark.parametrize("target", ["case", "store", "other"])
def test_the_report_never_overwrites_an_input_or_a_file_that_is_not_a_report(iraq_db, tmp_path,
                                                                             target):
    case_file = tmp_path / "case.yaml"
    case_file.write_text(DEMO_CASE.read_text(encoding="utf-8"), encoding="utf-8")
    other = tmp_path / "notes.txt"
    other.write_text("my notes")
    out = {"case": case_file, "store": iraq_db, "other": other}[target]
    before = out.read_bytes()
    proc = culpa("case", case_file, "--db", iraq_db, "--html", out, "--json")
    assert proc.returncode == 2, proc.stderr
    assert json.loads(proc.stdout)["field"] == "--html"
    assert out.read_bytes() == before


def test_an_unwritable_report_path_is_a_usage_error(iraq_db, tmp_path):
    proc = culpa("case", DEMO_CASE, "--db", iraq_db, "--html", tmp_path / "no" / "r.html",
                 "--json")
    assert proc.returncode == 2 and "no such directory" in json.loads(proc.stdout)["error"]
