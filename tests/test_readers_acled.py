"""Ingesting ACLED exports: the current layout (ISO dates) and the older one ("27 December 2019",
data_id/event_id_no_cnty/iso3 columns), plain and gzip, through the real `culpa ingest`."""

from __future__ import annotations

import json

import pytest

NEW = "acled_iraq_kirkuk_2019_2020.csv"  # 5 events, current export layout
OLD = "acled_iraq_kirkuk_2019_oldstyle.csv"  # 3 events, older layout; IRQ26412 is in both


def test_an_acled_export_is_recognised_and_every_event_stored(culpa_cli, readers_data, events_db):
    run = culpa_cli("ingest", readers_data / NEW, "--db", events_db, "--json")
    assert run.exit_code == 0, run.stderr
    report = run.json
    assert [f["format"] for f in report["files"]] == ["acled"]
    assert report["added"] == 5 and report["events_in_store"] == 5


def test_an_unidentified_group_leaves_the_event_unattributed(culpa_cli, readers_data, events_db,
                                                              sql):
    culpa_cli("ingest", readers_data / NEW, "--db", events_db)
    [row] = sql(events_db, """
        SELECT actor, actor_members, attribution, actor_raw, other_raw, event_type, fatalities,
               time_start::DATE::VARCHAR, time_end::DATE::VARCHAR, date_precision_days,
               latitude, longitude, location_precision_km, country, admin1, admin2, source
        FROM events WHERE id = 'acled:IRQ26587'""")
    # The K1 base rocket attack of 27 December 2019: nobody claimed it.
    assert row[:5] == (None, [], "unattributed", "Unidentified Armed Group (Iraq)",
                       "Military Forces of the United States (2017-2021)")
    assert row[5] == "Shelling/artillery/missile attack"  # the specific sub_event_type
    assert row[6] == 1
    assert row[7:10] == ("2019-12-27", "2019-12-27", 1.0)
    assert row[10:13] == (35.5097, 44.2812, 2.0)  # geo_precision 1: the town itself
    assert row[13:] == ("Iraq", "Kirkuk", "Kirkuk", "acled")


def test_actor1_is_the_attributed_party_resolved_through_aliases(culpa_cli, readers_data,
                                                                  events_db, sql):
    culpa_cli("ingest", readers_data / NEW, "--db", events_db)
    rows = dict(((r[0], r[1:]) for r in sql(events_db, """
        SELECT id, actor, actor_members, attribution, location_precision_km, date_precision_days,
               event_type FROM events""")))
    assert rows["acled:IRQ26412"][:3] == ("IS", ["IS"], "attributed")  # "Islamic State (Iraq)"
    # The army fought alongside the PMF (assoc_actor_1): the PMF is not made a co-perpetrator.
    assert rows["acled:IRQ27300"][:2] == ("Military Forces of Iraq (2018-)",
                                          ["Military Forces of Iraq (2018-)"])
    assert rows["acled:IRQ27300"][3] == 50.0  # geo_precision 3: only the wider region
    assert rows["acled:IRQ27105"][3:5] == (20.0, 7.0)  # geo 2: near a town; time 2: the week
    assert rows["acled:IRQ27450"][5] == "Peaceful protest"  # protests are kept, typed as such


def test_the_source_record_is_kept_for_provenance(culpa_cli, readers_data, events_db, sql):
    culpa_cli("ingest", readers_data / NEW, "--db", events_db)
    [(record, source_file, source_row)] = sql(
        events_db, "SELECT r.record, source_file, source_row "
        "FROM events JOIN event_records r USING (id) WHERE id = ?",
        "acled:IRQ27300")
    record = json.loads(record)
    assert record["assoc_actor_1"] == "Popular Mobilization Forces"
    assert record["notes"].startswith("On 14 February 2020, Iraqi army and PMF fought")
    assert source_file.endswith(NEW) and source_row == 4


def test_ingesting_the_same_export_again_adds_nothing(culpa_cli, readers_data, events_db):
    culpa_cli("ingest", readers_data / NEW, "--db", events_db)
    again = culpa_cli("ingest", readers_data / NEW, "--db", events_db, "--json").json
    assert again["added"] == 0 and again["already_present"] == 5 and again["events_in_store"] == 5


def test_an_old_style_gzip_export_with_spelled_out_dates(culpa_cli, readers_data, events_db, sql,
                                                          gzipped):
    old_gz = gzipped(readers_data / OLD)
    run = culpa_cli("ingest", old_gz, "--db", events_db, "--json")
    assert run.exit_code == 0, run.stderr
    assert run.json["files"][0]["format"] == "acled" and run.json["added"] == 3
    rows = dict((r[0], r[1:]) for r in sql(events_db, """
        SELECT id, time_start::DATE::VARCHAR, date_precision_days, actor, attribution
        FROM events"""))
    assert rows["acled:IRQ25998"] == ("2019-11-05", 1.0, None, "unattributed")  # "5 November 2019"
    assert rows["acled:IRQ26130"] == ("2019-11-16", 30.0, "IS", "attributed")  # time_precision 3


def test_an_event_in_both_layouts_is_stored_once(culpa_cli, readers_data, events_db):
    report = culpa_cli("ingest", readers_data / OLD, readers_data / NEW, "--db", events_db,
                       "--json").json
    assert report["rows"] == 8 and report["added"] == 7  # IRQ26412 appears in both files
    assert [f["added"] for f in report["files"]] == [3, 4]


def test_an_hdx_copy_with_an_hxl_hashtag_row(culpa_cli, readers_data, events_db, tmp_path):
    lines = (readers_data / NEW).read_text("utf-8").splitlines(keepends=True)
    tags = ",".join(f"#{c.replace('_', '+')}" for c in lines[0].strip().split(",")) + "\n"
    hdx = tmp_path / "acled_hdx.csv"
    hdx.write_text(lines[0] + tags + "".join(lines[1:]), "utf-8")
    report = culpa_cli("ingest", hdx, "--db", events_db, "--json").json
    assert report["added"] == 5


@pytest.mark.parametrize("row, column, value, line, problem", [
    (3, "event_date", "2020-01-32", 4, "not a date"),
    (3, "event_date", "20 Janvier 2020", 4, "not a date"),
    (2, "latitude", "135.5097", 3, "latitude out of range"),
    (5, "longitude", "44,3922", 6, "longitude is not a number"),
    (5, "fatalities", "two", 6, "fatalities is not a number"),
    (1, "fatalities", "1.5", 2, "whole number"),
    (4, "geo_precision", "4", 5, "not a known code"),
    (1, "event_id_cnty", "", 2, "event id is missing"),
])
def test_a_bad_cell_fails_the_ingest_naming_file_line_and_field(
        culpa_cli, readers_data, events_db, sql, edit_csv, row, column, value, line, problem):
    culpa_cli("ingest", readers_data / OLD, "--db", events_db)  # the store already holds 3 events
    bad = edit_csv(readers_data / NEW, "acled_bad.csv", row=row, column=column, value=value)
    run = culpa_cli("ingest", bad, "--db", events_db, "--json")
    assert run.exit_code == 2
    error = run.json
    assert (error["file"], error["line"], error["field"]) == (str(bad), line, column)
    assert problem in error["error"]
    assert f"{bad}:{line}: field '{column}'" in run.stderr
    assert sql(events_db, "SELECT count(*) FROM events") == [(3,)]  # nothing half-ingested


def test_a_missing_required_column_is_named(culpa_cli, readers_data, events_db, edit_csv):
    bad = edit_csv(readers_data / NEW, "acled_no_date.csv", drop="event_date")
    run = culpa_cli("ingest", bad, "--db", events_db)
    assert run.exit_code == 2
    assert f"{bad}:1: field 'event_date': missing required column(s): event_date" in run.stderr
    assert not events_db.exists()  # a store that did not exist is not left behind


def test_a_bad_row_in_a_gzip_file_is_found_by_line(culpa_cli, readers_data, events_db, edit_csv):
    bad = edit_csv(readers_data / OLD, "old.csv.gz", row=2, column="event_date",
                   value="31 Novembre 2019", gzip_it=True)
    run = culpa_cli("ingest", bad, "--format", "acled", "--db", events_db, "--json")
    assert run.exit_code == 2
    assert (run.json["line"], run.json["field"]) == (3, "event_date")
