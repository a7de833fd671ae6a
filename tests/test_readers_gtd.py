"""Ingesting a Global Terrorism Database export (real GTD column names and order, a subset of
its 135 columns, Windows-1252 encoded like the real file) through the real `culpa ingest`."""

from __future__ import annotations

import json

import pytest

GTD = "gtd_iraq_kirkuk_2019_2020_cp1252.csv"  # 7 events around Kirkuk, 2019-2020
ALIASES = "gtd_aliases.yaml"  # GTD's "Islamic State of Iraq and the Levant (ISIL)" -> IS

COLUMNS = """id, actor, actor_members, attribution, actor_raw, other_raw, event_type, fatalities,
    time_start::DATE::VARCHAR, time_end::DATE::VARCHAR, date_precision_days,
    latitude, longitude, location_precision_km, country, admin1, admin2, record"""


@pytest.fixture
def gtd_store(culpa_cli, readers_data, events_db, sql):
    run = culpa_cli("ingest", readers_data / GTD, "--aliases", readers_data / ALIASES,
                    "--db", events_db, "--json")
    assert run.exit_code == 0, run.stderr
    rows = sql(events_db, f"SELECT {COLUMNS} FROM (SELECT * EXCLUDE (record) FROM events) "
                          "JOIN event_records USING (id)")
    names = [c.strip().split("::")[0] for c in COLUMNS.split(",")]
    return run.json, {r[0]: dict(zip(names, r)) for r in rows}


def test_a_gtd_export_is_recognised_and_every_event_stored(gtd_store):
    report, events = gtd_store
    assert report["files"][0]["format"] == "gtd"
    assert report["added"] == 7 and len(events) == 7


def test_windows_1252_text_is_decoded(gtd_store):
    _, events = gtd_store
    daquq = json.loads(events["gtd:201911080003"]["record"])
    assert daquq["target1"] == "Customers at a café"
    k1 = json.loads(events["gtd:201912270012"]["record"])
    assert "blamed Kata’ib Hizballah" in k1["summary"]


def test_claimed_suspected_attributed_and_unknown(gtd_store):
    _, ev = gtd_store
    # claimed == 1
    assert (ev["gtd:201911080003"]["actor"], ev["gtd:201911080003"]["attribution"]) == \
        ("IS", "claimed")
    # guncertain1 == 1: the K1 rocket attack, blamed on Kata'ib Hizballah, never claimed
    k1 = ev["gtd:201912270012"]
    assert (k1["actor"], k1["attribution"], k1["actor_raw"]) == \
        ("Kata'ib Hezbollah", "suspected", "Kata'ib Hizballah")
    # neither: attributed
    assert ev["gtd:202001150007"]["attribution"] == "attributed"
    # gname "Unknown": no actor
    unknown = ev["gtd:201911000001"]
    assert (unknown["actor"], unknown["actor_members"], unknown["attribution"],
            unknown["actor_raw"]) == (None, [], "unattributed", "Unknown")


def test_an_unknown_day_spans_the_month_and_an_unknown_month_the_year(gtd_store):
    _, ev = gtd_store
    day_known = ev["gtd:201912270012"]
    assert (day_known["time_start"], day_known["time_end"], day_known["date_precision_days"]) == \
        ("2019-12-27", "2019-12-27", 1.0)
    november = ev["gtd:201911000001"]  # iday 0
    assert (november["time_start"], november["time_end"], november["date_precision_days"]) == \
        ("2019-11-01", "2019-11-30", 30.0)
    leap_february = ev["gtd:202002000002"]
    assert (leap_february["time_end"], leap_february["date_precision_days"]) == \
        ("2020-02-29", 29.0)
    year = ev["gtd:201900000003"]  # imonth 0
    assert (year["time_start"], year["time_end"], year["date_precision_days"]) == \
        ("2019-01-01", "2019-12-31", 365.0)


def test_specificity_becomes_a_precision_in_km(gtd_store):
    _, ev = gtd_store
    assert ev["gtd:201911080003"]["location_precision_km"] == 1.0  # 1: the town itself
    assert ev["gtd:201911000001"]["location_precision_km"] == 25.0  # 2: region around the town


def test_an_event_without_coordinates_is_stored_with_null_place(gtd_store):
    _, ev = gtd_store
    nowhere = ev["gtd:202001030004"]  # specificity 5, latitude and longitude blank
    assert (nowhere["latitude"], nowhere["longitude"], nowhere["location_precision_km"]) == \
        (None, None, None)
    assert (nowhere["country"], nowhere["admin1"]) == ("Iraq", "Kirkuk")


def test_type_target_fatalities_and_place_names(gtd_store):
    _, ev = gtd_store
    k1 = ev["gtd:201912270012"]
    assert (k1["event_type"], k1["other_raw"], k1["fatalities"]) == \
        ("Bombing/Explosion", "Military", 1)
    assert (k1["country"], k1["admin1"], k1["admin2"]) == ("Iraq", "Kirkuk", None)
    assert ev["gtd:201911000001"]["fatalities"] is None  # nkill blank: unknown, not zero


def test_ingesting_again_adds_nothing(gtd_store, culpa_cli, readers_data, events_db):
    again = culpa_cli("ingest", readers_data / GTD, "--db", events_db, "--json").json
    assert again["added"] == 0 and again["events_in_store"] == 7


def test_a_utf8_gzip_copy_gives_the_same_events(gtd_store, culpa_cli, readers_data, tmp_path,
                                                sql):
    import gzip

    _, events = gtd_store
    utf8_gz = tmp_path / "gtd_utf8.csv.gz"
    utf8_gz.write_bytes(gzip.compress(
        (readers_data / GTD).read_bytes().decode("cp1252").encode("utf-8")))
    other = tmp_path / "other.duckdb"
    run = culpa_cli("ingest", utf8_gz, "--aliases", readers_data / ALIASES, "--db", other,
                    "--json")
    assert run.exit_code == 0 and run.json["files"][0]["format"] == "gtd"
    rows = sql(other, f"SELECT {COLUMNS} FROM events")
    assert {r[0]: r[1:-1] for r in rows} == \
        {k: tuple(v.values())[1:-1] for k, v in events.items()}
    assert "café" in dict((r[0], r[-1]) for r in rows)["gtd:201911080003"]


@pytest.mark.parametrize("row, column, value, line, problem", [
    (1, "iday", "31", 2, "not a day of that month"),  # 31 November
    (1, "imonth", "13", 2, "must be <= 12"),
    (2, "iyear", "20l9", 3, "not a number"),
    (3, "latitude", "-95.5", 4, "latitude out of range"),
    (5, "longitude", "east", 6, "longitude is not a number"),
    (5, "longitude", "", 6, "longitude is missing but latitude is given"),
    (6, "claimed", "yes", 7, "not a number"),
    (7, "guncertain1", "2", 8, "must be one of 0, 1"),
    (2, "nkill", "-1", 3, "must be >= 0"),
])
def test_a_bad_cell_fails_the_ingest_naming_file_line_and_field(
        culpa_cli, readers_data, sql, edit_csv, tmp_path, row, column, value, line, problem):
    db = tmp_path / "store.duckdb"
    culpa_cli("ingest", readers_data / "acled_iraq_kirkuk_2019_oldstyle.csv", "--db", db)
    bad = edit_csv(readers_data / GTD, "gtd_bad.csv", row=row, column=column, value=value)
    run = culpa_cli("ingest", bad, "--db", db, "--json")
    assert run.exit_code == 2
    error = run.json
    assert (error["file"], error["line"], error["field"]) == (str(bad), line, column)
    assert problem in error["error"]
    assert sql(db, "SELECT count(*) FROM events") == [(3,)]


def test_a_missing_required_column(culpa_cli, readers_data, events_db, edit_csv):
    bad = edit_csv(readers_data / GTD, "gtd_no_gname.csv", drop="gname")
    run = culpa_cli("ingest", bad, "--format", "gtd", "--db", events_db)
    assert run.exit_code == 2
    assert f"{bad}:1: field 'gname': missing required column(s): gname" in run.stderr
    # Without --format the header is no longer recognisable as anything: said so, plainly.
    run = culpa_cli("ingest", bad, "--db", events_db)
    assert run.exit_code == 2 and "cannot tell the format from the header" in run.stderr


def test_events_without_coordinates_stay_in_the_store_but_not_in_the_model_input(
        culpa_cli, readers_data, events_db):
    from culpa.events.store import Store

    culpa_cli("ingest", readers_data / GTD, "--db", events_db)
    with Store(events_db, read_only=True) as store:
        everything = store.events_frame(located=False)
        located = store.events_frame()
    assert everything["latitude"].isna().sum() >= 1
    assert located["latitude"].notna().all()
    assert len(located) == len(everything) - everything["latitude"].isna().sum()
