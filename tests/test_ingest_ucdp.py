"""Ingesting the real UCDP GED files: counts, idempotency, normalised fields, bad input."""

from __future__ import annotations

import csv
import gzip
import json
import shutil

import duckdb
import pytest

from culpa.events.schema import EVENT_COLUMNS
from culpa.events.store import Store
from helpers import UCDP_IRAQ, UCDP_SYRIA, culpa, culpa_json


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store holding both shared UCDP files, ingested once for the module."""
    db = tmp_path_factory.mktemp("store") / "ucdp.duckdb"
    first = culpa_json("ingest", UCDP_IRAQ, UCDP_SYRIA, "--db", db)
    return db, first


def counts(db) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        con.close()


def test_both_files_are_ingested_with_every_event(store):
    _db, report = store
    per_file = {f["path"].split("/")[-1]: f["events"] for f in report["files"]}
    assert per_file == {"ucdp_ged_iraq_1989_2018.csv": 7473, "ucdp_ged_syria_2016_2018.csv": 14522}
    assert report["added"] == 7473 + 14522
    assert all(f["format"] == "ucdp" for f in report["files"])


def test_ingesting_the_same_files_again_adds_nothing(store):
    db, _ = store
    again = culpa_json("ingest", UCDP_IRAQ, UCDP_SYRIA, "--db", db)
    assert again["added"] == 0 and again["already_present"] == 21995
    assert counts(db) == 21995


def test_stats_gives_events_per_actor_and_dates(store):
    db, _ = store
    stats = culpa_json("stats", "--db", db)
    by_actor = {a["actor"]: a["events"] for a in stats["actors"]}
    assert by_actor["IS"] > 10_000
    assert stats["first_date"] == "1989-01-01" and stats["last_date"] == "2018-12-31"
    assert stats["events"] == 21995


def test_stats_prints_a_table_for_people(store):
    db, _ = store
    proc = culpa("stats", "--db", db)
    assert proc.returncode == 0
    assert "IS" in proc.stdout and "21,995 events" in proc.stdout


def test_the_hxl_hashtag_row_is_not_an_event(store):
    db, _ = store
    con = duckdb.connect(str(db), read_only=True)
    n_hxl = con.execute("SELECT count(*) FROM events WHERE id LIKE '%#%' OR id = 'ucdp:'").fetchone()
    assert n_hxl[0] == 0


def test_a_real_row_is_normalised_as_the_design_says(store):
    db, _ = store
    con = duckdb.connect(str(db), read_only=True)
    row = con.execute(
        "SELECT actor, attribution, location_precision_km, date_precision_days, event_type, "
        "fatalities, actor_raw, other_raw, admin1, time_start::DATE::VARCHAR "
        "FROM events WHERE id = 'ucdp:114064'").fetchone()
    # Government of Iraq - IS, state-based: the attributed party is the non-state side_b.
    assert row[0] == "IS" and row[1] == "attributed"
    assert row[2] == 1.0  # where_prec 1: the exact place
    assert row[3] == 2.0  # date_prec 2 ("2-6 days"), and the dates say 24-25 January
    assert row[4] == "state-based" and row[5] == 8
    assert (row[6], row[7]) == ("IS", "Government of Iraq")
    assert row[8] == "Al Anbār province" and row[9] == "2014-01-24"
    with Store(db, read_only=True) as st:
        assert st.event("ucdp:114064")["record"]["dyad_name"] == "Government of Iraq - IS"


def test_the_source_record_is_every_column_exactly_as_in_the_file(store):
    db, _ = store
    with open(UCDP_SYRIA, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # Quotes, commas and line breaks inside cells must come back unchanged.
    tricky = [r for r in rows if '"' in r["source_article"] or "\n" in r["source_article"]]
    assert tricky
    with Store(db, read_only=True) as st:
        for row in [rows[0], rows[-1], *tricky[:20]]:
            assert st.event(f"ucdp:{row['id']}")["record"] == row
        # The same mapping, in SQL, through the event_records view.
        [(text,)] = st.con.execute("SELECT record FROM event_records WHERE id = ?",
                                   [f"ucdp:{tricky[0]['id']}"]).fetchall()
        assert json.loads(text) == tricky[0]


def test_a_record_stored_as_a_json_object_is_read_as_it_is(tmp_path):
    # Stores written before records became arrays hold JSON objects: still read.
    db = tmp_path / "old.duckdb"
    with Store(db) as st:
        cols = ", ".join(EVENT_COLUMNS)
        values = ", ".join("?" if c in ("id", "record") else "NULL" for c in EVENT_COLUMNS)
        st.con.execute(f"INSERT INTO events ({cols}) VALUES ({values})",
                       ["ucdp:1", json.dumps({"id": "1", "side_a": "IS"})])
        assert st.event("ucdp:1")["record"] == {"id": "1", "side_a": "IS"}
        assert st.event("ucdp:2") is None


def test_a_file_given_twice_in_one_ingest_adds_its_events_once(tmp_path):
    db = tmp_path / "twice.duckdb"
    report = culpa_json("ingest", UCDP_IRAQ, UCDP_IRAQ, "--db", db)
    assert report["added"] == report["files"][0]["rows"] == counts(db)
    assert report["files"][1]["added"] == 0
    again = culpa_json("ingest", UCDP_SYRIA, UCDP_IRAQ, "--db", db)  # store not empty now
    assert again["files"][1]["added"] == 0
    assert again["added"] == again["files"][0]["rows"] == counts(db) - report["added"]


def test_coalitions_become_one_actor_with_canonical_members(store):
    db, _ = store
    con = duckdb.connect(str(db), read_only=True)
    actor, members = con.execute(
        "SELECT actor, actor_members FROM events WHERE actor_raw = 'Ahrar al-Sham, HTS, Southern Front' "
        "LIMIT 1").fetchone()
    assert members == ["Ahrar al-Sham", "HTS", "Southern Front"]
    assert actor == "Ahrar al-Sham, HTS, Southern Front"


def test_province_centroid_events_are_not_treated_as_exact(store):
    db, _ = store
    con = duckdb.connect(str(db), read_only=True)
    km = con.execute("SELECT DISTINCT location_precision_km FROM events ORDER BY 1").fetchall()
    assert [k[0] for k in km] == [1.0, 25.0, 50.0, 100.0, 300.0]


# -- bad input: exit 2, a message naming file, line and field, and an unchanged store -----------


def _copy_with(tmp_path, name, row_index, field, value):
    rows = list(csv.reader(open(UCDP_SYRIA, encoding="utf-8", newline="")))
    rows[row_index][rows[0].index(field)] = value
    path = tmp_path / name
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


@pytest.fixture
def small_store(tmp_path):
    db = tmp_path / "small.duckdb"
    culpa_json("ingest", UCDP_IRAQ, "--db", db)
    return db


@pytest.mark.parametrize("field,value,problem", [
    ("date_start", "2018-13-45", "not a date"),
    ("latitude", "95.3", "latitude out of range"),
    ("type_of_violence", "x", "must be 1, 2 or 3"),
    ("where_prec", "9", "not a known code"),
])
def test_a_broken_row_names_line_and_field_and_changes_nothing(tmp_path, small_store, field, value,
                                                                problem):
    bad = _copy_with(tmp_path, "broken.csv", 500, field, value)
    proc = culpa("ingest", bad, "--db", small_store)
    assert proc.returncode == 2
    message = " ".join(proc.stderr.split())
    assert "broken.csv:501" in message and f"field '{field}'" in message and problem in message
    assert "Traceback" not in proc.stderr
    assert counts(small_store) == 7473


def test_a_bad_file_among_good_ones_leaves_the_store_as_it_was(tmp_path, small_store):
    bad = _copy_with(tmp_path, "broken.csv", 14000, "longitude", "east")
    proc = culpa("ingest", UCDP_SYRIA, bad, "--db", small_store, "--json")
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    # Some source_article cells span two lines, so the record's line is found by reading as csv.
    reader = csv.reader(open(bad, encoding="utf-8", newline=""))
    starts = [1]
    for _ in reader:
        starts.append(reader.line_num + 1)
    assert doc["line"] == starts[14000] and doc["line"] > 14001
    assert doc["field"] == "longitude" and doc["file"].endswith("broken.csv")
    assert counts(small_store) == 7473


def test_a_truncated_gzip_is_refused(tmp_path, small_store):
    whole = gzip.compress(UCDP_SYRIA.read_bytes())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    proc = culpa("ingest", cut, "--db", small_store)
    assert proc.returncode == 2 and "truncated" in proc.stderr
    assert counts(small_store) == 7473


def test_a_complete_gzip_file_is_read(tmp_path, small_store):
    gz = tmp_path / "syria.csv.gz"
    gz.write_bytes(gzip.compress(UCDP_SYRIA.read_bytes()))
    assert culpa_json("ingest", gz, "--db", small_store)["added"] == 14522


def test_an_empty_file_is_refused(tmp_path, small_store):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    proc = culpa("ingest", empty, "--db", small_store)
    assert proc.returncode == 2 and "empty" in proc.stderr
    assert counts(small_store) == 7473


def test_a_missing_required_column_is_named(tmp_path, small_store):
    rows = list(csv.reader(open(UCDP_SYRIA, encoding="utf-8", newline="")))
    drop = rows[0].index("date_start")
    path = tmp_path / "nodate.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([r[:drop] + r[drop + 1:] for r in rows[:50]])
    proc = culpa("ingest", path, "--db", small_store, "--format", "ucdp")
    assert proc.returncode == 2 and "date_start" in proc.stderr
    assert counts(small_store) == 7473


def test_a_failed_first_ingest_leaves_no_store_behind(tmp_path):
    bad = _copy_with(tmp_path, "broken.csv", 10, "date_start", "yesterday")
    db = tmp_path / "never.duckdb"
    assert culpa("ingest", bad, "--db", db).returncode == 2
    assert not db.exists()


def test_user_aliases_extend_the_built_in_table(tmp_path):
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("Syrian opposition:\n  - Syrian insurgents\n")
    db = tmp_path / "a.duckdb"
    culpa_json("ingest", UCDP_SYRIA, "--db", db, "--aliases", aliases)
    by_actor = {a["actor"]: a["events"] for a in culpa_json("stats", "--db", db)["actors"]}
    assert "Syrian opposition" in by_actor and "Syrian insurgents" not in by_actor


def test_a_path_that_is_not_a_file_is_a_usage_error(tmp_path):
    proc = culpa("ingest", tmp_path / "nope.csv", "--db", tmp_path / "x.duckdb")
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_the_bundled_sample_is_the_real_iraq_extract(tmp_path):
    from culpa.data import sample_path

    copy = tmp_path / "sample.csv.gz"
    shutil.copy(sample_path(), copy)
    report = culpa_json("ingest", copy, "--db", tmp_path / "s.duckdb")
    assert report["events"] == 7473
