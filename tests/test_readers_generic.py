"""Ingesting any CSV or Parquet file through a column mapping (`--map FIELD=COLUMN`,
`--mapping FILE`), and what happens to a file whose header no reader knows."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from culpa.errors import InputError
from culpa.events.readers.generic import parse_mapping

LOG = "fieldlog_kirkuk_2020.csv"
MAPPING = "fieldlog_mapping.yaml"
PARQUET_MAP = ["--map", "time=when", "--map", "latitude=lat", "--map", "longitude=lon",
               "--map", "actor=group", "--map", "fatalities=killed", "--map", "source=ngo"]


# -- CSV with a mapping file ---------------------------------------------------------------------


def test_a_csv_is_read_through_a_yaml_mapping(culpa_cli, readers_data, events_db, sql):
    run = culpa_cli("ingest", readers_data / LOG, "--format", "csv",
                    "--mapping", readers_data / MAPPING, "--db", events_db, "--json")
    assert run.exit_code == 0, run.stderr
    assert run.json["files"][0]["format"] == "csv" and run.json["added"] == 5
    rows = {r[0]: r[1:] for r in sql(events_db, """
        SELECT id, source, time_start::DATE::VARCHAR, actor, attribution, event_type, fatalities,
               admin1, admin2, other_raw, location_precision_km, date_precision_days
        FROM events""")}
    assert rows["fieldlog:KRK-2020-001"] == (
        "fieldlog", "2020-01-05", "IS", "claimed", "IED", 1, "Kirkuk", "Kirkuk", "Police patrol",
        1.0, 1.0)  # "Daesh", 05/01/2020 day-first; precision defaults 1 km, 1 day
    assert rows["fieldlog:KRK-2020-002"][2:4] == (None, "unattributed")  # no perpetrator
    assert rows["fieldlog:KRK-2020-003"][2:4] == ("Kata'ib Hezbollah", "suspected")
    # "Unidentified gunmen" is no actor: a status about an actor label cannot stand without one
    assert rows["fieldlog:KRK-2020-004"][2:4] == (None, "unattributed")
    assert rows["fieldlog:KRK-2020-005"][2:4] == ("IS", "attributed")  # blank status, known actor


def test_map_pairs_override_the_mapping_file_and_reingest_adds_nothing(
        culpa_cli, readers_data, events_db, sql):
    args = ("ingest", readers_data / LOG, "--format", "csv", "--mapping", readers_data / MAPPING,
            "--map", "id_prefix=krk-log", "--db", events_db, "--json")
    assert culpa_cli(*args).json["added"] == 5
    assert culpa_cli(*args).json["added"] == 0
    ids = [r[0] for r in sql(events_db, "SELECT id FROM events ORDER BY id")]
    assert ids[0] == "krk-log:KRK-2020-001"


def test_map_pairs_alone_and_a_gzip_csv(culpa_cli, readers_data, events_db, sql, gzipped):
    run = culpa_cli("ingest", gzipped(readers_data / LOG), "--format", "csv",
                    "--map", "time=date_reported", "--map", "latitude=lat",
                    "--map", "longitude=lon", "--map", "date_format=%d/%m/%Y",
                    "--db", events_db, "--json")
    assert run.exit_code == 0, run.stderr
    # no id column mapped: "<source>:<file stem>:<row>", stable across re-ingests
    rows = sql(events_db, "SELECT id, source, actor, attribution FROM events ORDER BY source_row")
    assert rows[0] == ("csv:fieldlog_kirkuk_2020:1", "csv", None, "unattributed")


def test_without_a_mapping_the_generic_reader_says_what_it_needs(culpa_cli, readers_data,
                                                                   events_db):
    run = culpa_cli("ingest", readers_data / LOG, "--format", "csv", "--db", events_db)
    assert run.exit_code == 2
    assert "needs a column mapping (FIELD=COLUMN pairs or a mapping file)" in run.stderr


def test_a_file_no_reader_recognises_is_refused_clearly(culpa_cli, readers_data, events_db):
    run = culpa_cli("ingest", readers_data / LOG, "--db", events_db, "--json")
    assert run.exit_code == 2
    assert run.json["line"] == 1
    assert "cannot tell the format from the header" in run.json["error"]
    assert "FIELD=COLUMN pairs or a mapping file" in run.json["error"]


@pytest.mark.parametrize("args, field, message", [
    (["--map", "latitude=latitude"], "latitude",
     "the mapping says latitude=latitude, but the file has no column 'latitude'"),
    (["--map", "perpetrator=perpetrator"], "perpetrator", "unknown field 'perpetrator'"),
    (["--map", "actor"], "--map", "'actor' is not FIELD=COLUMN"),
])
def test_a_bad_mapping_is_named(culpa_cli, readers_data, events_db, args, field, message):
    run = culpa_cli("ingest", readers_data / LOG, "--format", "csv",
                    "--mapping", readers_data / MAPPING, *args, "--db", events_db, "--json")
    assert run.exit_code == 2
    assert run.json["field"] == field and message in run.json["error"]


@pytest.mark.parametrize("row, column, value, line, problem", [
    (2, "date_reported", "2020-01-12", 3, "not a date (%d/%m/%Y)"),
    (3, "lat", "95.5", 4, "latitude out of range"),
    (4, "killed", "one", 5, "fatalities: not a number"),
    (5, "claim_status", "probably", 6, "attribution: must be one of"),
])
def test_a_bad_cell_names_file_line_and_column(culpa_cli, readers_data, events_db, sql,
                                               edit_csv, row, column, value, line, problem):
    bad = edit_csv(readers_data / LOG, "log_bad.csv", row=row, column=column, value=value)
    run = culpa_cli("ingest", bad, "--format", "csv", "--mapping", readers_data / MAPPING,
                    "--db", events_db, "--json")
    assert run.exit_code == 2
    assert (run.json["file"], run.json["line"], run.json["field"]) == (str(bad), line, column)
    assert problem in run.json["error"]
    assert not events_db.exists()


def test_parse_mapping_merges_file_and_pairs(readers_data):
    mapping = parse_mapping(["source=other", "country=nation"], readers_data / MAPPING)
    assert mapping["time"] == "date_reported" and mapping["date_format"] == "%d/%m/%Y"
    assert mapping["source"] == "other" and mapping["country"] == "nation"
    with pytest.raises(InputError, match="must give a column for time, latitude"):
        parse_mapping(["longitude=lon"], None)
    with pytest.raises(InputError, match="'actor' is not FIELD=COLUMN") as e:
        parse_mapping(["actor"], None)
    assert e.value.field == "pairs"  # the library names its argument; the CLI says --map


# -- Parquet ---------------------------------------------------------------------------------


@pytest.fixture
def incidents_parquet(tmp_path):
    """Typed columns, as a Parquet export from pandas or a database would have them."""

    def write(lat=(35.4681, 35.3275, 35.1396), when_type=pa.timestamp("us"), name="incidents"):
        table = pa.table({
            "when": pa.array([dt.datetime(2020, 3, 1, 21, 30), dt.datetime(2020, 3, 2),
                              dt.datetime(2020, 3, 4, 6)], type=when_type),
            "lat": pa.array(lat), "lon": pa.array([44.3922, 43.7803, 44.4498]),
            "group": pa.array(["ISIS", None, "Asa'ib Ahl al-Haq"]).dictionary_encode(),
            "killed": pa.array([2, None, 0], type=pa.int32()),
        })
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path, row_group_size=2)
        return path

    return write


def test_a_parquet_file_with_typed_columns(culpa_cli, events_db, sql, incidents_parquet):
    path = incidents_parquet()
    run = culpa_cli("ingest", path, *PARQUET_MAP, "--db", events_db, "--json")  # auto: .parquet
    assert run.exit_code == 0, run.stderr
    assert run.json["files"][0]["format"] == "csv" and run.json["added"] == 3
    rows = sql(events_db, """
        SELECT id, source, time_start::VARCHAR, latitude, actor, attribution, fatalities, r.record
        FROM events JOIN event_records r USING (id) ORDER BY source_row""")
    assert rows[0][:7] == ("ngo:incidents:1", "ngo", "2020-03-01 21:30:00", 35.4681, "IS",
                           "attributed", 2)
    assert rows[1][4:7] == (None, "unattributed", None)
    assert json.loads(rows[2][7])["group"] == "Asa'ib Ahl al-Haq"
    # The record keeps Parquet's types: numbers as numbers, missing values as null.
    assert json.loads(rows[1][7]) == {"when": "2020-03-02 00:00:00.000000", "lat": 35.3275,
                                      "lon": 43.7803, "group": None, "killed": None}
    assert culpa_cli("ingest", path, *PARQUET_MAP, "--db", events_db, "--json").json["added"] == 0


def test_a_bad_parquet_row_is_named_by_row_number(culpa_cli, events_db, incidents_parquet):
    path = incidents_parquet(lat=(35.4681, 35.3275, 135.1396))  # row 3, in the second row group
    run = culpa_cli("ingest", path, *PARQUET_MAP, "--db", events_db, "--json")
    assert run.exit_code == 2
    assert (run.json["line"], run.json["field"]) == (3, "lat")
    assert "row 3: latitude out of range" in run.json["error"]


def test_a_parquet_column_of_the_wrong_type(culpa_cli, events_db, incidents_parquet):
    path = incidents_parquet(when_type=pa.timestamp("us"))
    run = culpa_cli("ingest", path, *PARQUET_MAP, "--map", "latitude=when",
                    "--db", events_db, "--json")
    assert run.exit_code == 2
    assert run.json["field"] == "when"
    assert "holds timestamp[us], expected numbers" in run.json["error"]


def test_times_with_a_utc_offset_are_stored_in_utc(culpa_cli, events_db, sql, tmp_path):
    log = tmp_path / "timed.csv"
    log.write_text("ref,at,y,x\n"
                   "a,2020-03-01T21:30:00+03:00,35.4681,44.3922\n"
                   "b,2020-03-01 21:30,35.4681,44.3922\n", "utf-8")
    run = culpa_cli("ingest", log, "--format", "csv", "--map", "id=ref", "--map", "time=at",
                    "--map", "latitude=y", "--map", "longitude=x", "--db", events_db, "--json")
    assert run.exit_code == 0, run.stderr
    assert sql(events_db, "SELECT id, time_start::VARCHAR FROM events ORDER BY id") == [
        ("csv:a", "2020-03-01 18:30:00"), ("csv:b", "2020-03-01 21:30:00")]
