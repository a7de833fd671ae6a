"""Bad input is refused with its place, never crashes, never stores a wrong value, and never
changes the store (issue 13). Every input is a mutated copy of a real file."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sqlite3

import duckdb
import pytest

from culpa.errors import InputError
from culpa.events.store import SCHEMA_VERSION, Store, ingest_files
from helpers import TEST_DATA, UCDP_SYRIA, culpa

SYRIA_HEAD = b"".join(UCDP_SYRIA.read_bytes().splitlines(keepends=True)[:20])
_SYRIA_LINES = UCDP_SYRIA.read_bytes().splitlines(keepends=True)
SYRIA_NEXT = _SYRIA_LINES[0] + b"".join(_SYRIA_LINES[100:119])
ACLED = (TEST_DATA / "acled_iraq_kirkuk_2019_2020.csv").read_bytes()
GTD = (TEST_DATA / "gtd_iraq_kirkuk_2019_2020_cp1252.csv").read_bytes()
FIELDLOG = (TEST_DATA / "fieldlog_kirkuk_2020.csv").read_bytes()
MAP = {"id": "incident_no", "time": "date_reported", "latitude": "lat", "longitude": "lon",
       "actor": "perpetrator", "fatalities": "killed", "date_format": "%d/%m/%Y",
       "source": "fieldlog"}


def with_cell(data: bytes, row: int, column: str, value: str, enc: str = "utf-8") -> bytes:
    rows = list(csv.reader(io.StringIO(data.decode(enc), newline="")))
    rows[row][rows[0].index(column)] = value
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode(enc)


def with_column_twice(data: bytes, column: str) -> bytes:
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    k = rows[0].index(column)
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows([r + [r[k]] for r in rows])
    return buf.getvalue().encode()


def line_changed(data: bytes, k: int, old: bytes, new: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[k] = lines[k].replace(old, new)
    return b"\n".join(lines)


@pytest.fixture
def store_with_syria(tmp_path):
    db = tmp_path / "s.duckdb"
    src = tmp_path / "syria_head.csv"
    src.write_bytes(SYRIA_HEAD)
    ingest_files(db, [src])
    return db


def snapshot(db) -> list:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT * EXCLUDE (record) FROM events ORDER BY id").fetchall()
    finally:
        con.close()


REFUSED = {  # name: (bytes, format, mapping, line, field, words in the message)
    "gzip inside gzip": (gzip.compress(gzip.compress(SYRIA_HEAD)), "ucdp", None, None, None,
                         "gzip inside gzip"),
    "UTF-16": (SYRIA_HEAD.decode().encode("utf-16"), "auto", None, None, None, "UTF-16"),
    "a second latitude": (with_column_twice(SYRIA_HEAD, "latitude"), "auto", None, 1,
                          "latitude", "appears twice"),
    "invalid UTF-8 in the header": (SYRIA_HEAD.replace(b"latitude", b"lat\xffitude", 1), "ucdp",
                                    None, 1, None, "not valid UTF-8"),
    "invalid UTF-8 in a row": (line_changed(SYRIA_HEAD, 5, b"Syria", b"Syr\xffia"), "auto",
                               None, 6, None, "not valid UTF-8"),
    "truncated gzip": (gzip.compress(SYRIA_HEAD)[:-12], "ucdp", None, None, None, "truncated"),
    "bad gzip CRC": (gzip.compress(SYRIA_HEAD)[:-8] + b"\0\0\0\0" + gzip.compress(SYRIA_HEAD)
                     [-4:], "ucdp", None, None, None, "corrupt"),
    "date_format %Q": (FIELDLOG, "csv", dict(MAP, date_format="%Q"), None, "date_format", "%Q"),
    "date_format %": (FIELDLOG, "csv", dict(MAP, date_format="%"), None, "date_format", "'%'"),
    "date_format %s": (FIELDLOG, "csv", dict(MAP, date_format="%s"), None, "date_format", "%s"),
    "empty actor_separator": (FIELDLOG, "csv", dict(MAP, actor_separator=""), None,
                              "actor_separator", "empty"),
    "UCDP fatalities 1e19": (with_cell(SYRIA_HEAD, 2, "best", "1e19"), "auto", None, 3, "best",
                             "believable"),
    "UCDP fatalities inf": (with_cell(SYRIA_HEAD, 2, "best", "inf"), "auto", None, 3, "best",
                            "finite"),
    "UCDP fatalities -7": (with_cell(SYRIA_HEAD, 2, "best", "-7"), "auto", None, 3, "best",
                           ">= 0"),
    "UCDP fatalities 1.5": (with_cell(SYRIA_HEAD, 2, "best", "1.5"), "auto", None, 3, "best",
                            "whole"),
    "UCDP fatalities nan": (with_cell(SYRIA_HEAD, 2, "best", "nan"), "auto", None, 3, "best",
                            "not a number"),
    "ACLED fatalities 1e300": (with_cell(ACLED, 2, "fatalities", "1e300"), "auto", None, 3,
                               "fatalities", "believable"),
    "GTD nkill 1e19": (with_cell(GTD, 2, "nkill", "1e19", "cp1252"), "auto", None, 3, "nkill",
                       "believable"),
    "mapped fatalities inf": (with_cell(FIELDLOG, 2, "killed", "inf"), "csv", MAP, 3, "killed",
                              "finite"),
    "UCDP 2018-02-30": (with_cell(SYRIA_HEAD, 2, "date_start", "2018-02-30"), "auto", None, 3,
                        "date_start", "not a date"),
    "UCDP year -1": (with_cell(SYRIA_HEAD, 2, "date_start", "-1-01-01"), "auto", None, 3,
                     "date_start", "not a date"),
    "a header without a line end (no events)": (SYRIA_HEAD.split(b"\n")[0], "auto", None, 2,
                                                None, "no events"),
    "a quoted field never closed": (SYRIA_HEAD + b'"' + SYRIA_HEAD.split(b"\n")[19].replace(
        b'"', b""), "auto", None, 21, None, "columns"),
    "an id again with other content": (  # rows the store does not hold yet, then one again
        SYRIA_NEXT + SYRIA_NEXT.split(b"\n")[2].replace(b"Syria", b"Syrie") + b"\n", "auto",
        None, 21, "country", "appears twice with different content"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_bad_input_is_refused_with_its_place_and_the_store_unchanged(name, tmp_path,
                                                                    store_with_syria):
    data, fmt, mapping, line, field, words = REFUSED[name]
    before = snapshot(store_with_syria)
    src = tmp_path / "input.csv"
    src.write_bytes(data)
    with pytest.raises(InputError) as info:
        ingest_files(store_with_syria, [src], fmt, mapping=mapping)
    exc = info.value
    assert words in str(exc), str(exc)
    assert line is None or exc.line == line, str(exc)
    assert field is None or exc.field == field, str(exc)
    assert snapshot(store_with_syria) == before


ACCEPTED = {  # name: (bytes, format, mapping, rows)
    "CR-only line endings": (SYRIA_HEAD.replace(b"\n", b"\r"), "auto", None, 19),
    "CRLF line endings": (SYRIA_HEAD.replace(b"\n", b"\r\n"), "auto", None, 19),
    "a first-row field of 140,000 characters": (with_cell(SYRIA_HEAD, 1, "adm_1", "x" * 140_000),
                                                "auto", None, 19),
    "a 9 MB field": (with_cell(SYRIA_HEAD, 5, "adm_1", "y" * 9_000_000), "auto", None, 19),
    "a GTD cp1252 file with a UTF-8 BOM": (b"\xef\xbb\xbf" + GTD, "auto", None, None),
    "an instant with a time zone": (with_cell(with_cell(SYRIA_HEAD, 3, "date_start",
                                                        "2016-01-01T10:00:00+03:00"),
                                              3, "date_end", "2016-01-02"), "auto", None, 19),
    "the same file twice": (SYRIA_HEAD + b"".join(SYRIA_HEAD.splitlines(keepends=True)[1:]),
                            "auto", None, 19),
}


@pytest.mark.parametrize("name", ACCEPTED)
def test_odd_but_valid_input_is_read_whole(name, tmp_path):
    data, fmt, mapping, rows = ACCEPTED[name]
    src = tmp_path / "input.csv"
    src.write_bytes(data)
    report, total = ingest_files(tmp_path / "s.duckdb", [src], fmt, mapping=mapping)
    expected = rows if rows is not None else len(list(csv.reader(io.StringIO(
        GTD.decode("cp1252"), newline="")))) - 1
    assert total == expected and report.added == expected


def test_a_cp1252_column_with_a_non_ascii_name_keeps_its_text(tmp_path):
    """Once type-inferred ("007" kept as 7, "" as null in the provenance record)."""
    rows = list(csv.reader(io.StringIO(GTD.decode("cp1252"), newline="")))
    rows[0].append("numéro")
    for i, r in enumerate(rows[1:]):
        r.append("007" if i == 0 else "")
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    src = tmp_path / "gtd.csv"
    src.write_bytes(buf.getvalue().encode("cp1252"))
    ingest_files(tmp_path / "s.duckdb", [src])
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        first = store.event(f"gtd:{rows[1][0]}")["record"]
        second = store.event(f"gtd:{rows[2][0]}")["record"]
    assert first["numéro"] == "007" and second["numéro"] == ""


def test_extreme_parquet_dates_are_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for column in (pa.array([2**31 - 1], pa.date32()),
                   pa.array([-(2**62)], pa.timestamp("us"))):
        p = tmp_path / "e.parquet"
        pq.write_table(pa.table({"t": column, "y": [35.0], "x": [44.0]}), p)
        with pytest.raises(InputError, match="outside the years") as info:
            ingest_files(tmp_path / "s.duckdb", [p], "csv",
                         mapping={"time": "t", "latitude": "y", "longitude": "x"})
        assert info.value.field == "t" and info.value.line == 1
        assert not (tmp_path / "s.duckdb").exists()  # the store it would have made is gone


def test_impossible_parquet_fatalities_are_refused_not_wrapped(tmp_path):
    # 1e19, inf and 1e300 were stored as -9223372036854775808 by every reader; Parquet too
    import pyarrow as pa
    import pyarrow.parquet as pq

    for column, words in [(pa.array([2.0, 1e19]), "believable"), (pa.array([2.0, 1e300]),
                                                                   "believable"),
                          (pa.array([2.0, float("inf")]), "finite"),
                          (pa.array([2, 2**64 - 1], pa.uint64()), "believable"),
                          (pa.array([2.0, 1.5]), "whole"), (pa.array([2, -7]), ">= 0")]:
        p = tmp_path / "k.parquet"
        pq.write_table(pa.table({"t": ["2020-01-01", "2020-01-02"], "y": [35.0, 35.1],
                                 "x": [44.0, 44.1], "k": column}), p)
        with pytest.raises(InputError, match=words) as info:
            ingest_files(tmp_path / "s.duckdb", [p], "csv", mapping={
                "time": "t", "latitude": "y", "longitude": "x", "fatalities": "k"})
        assert (info.value.line, info.value.field) == (2, "k"), str(info.value)
        assert not (tmp_path / "s.duckdb").exists()


def test_inputs_that_are_not_files_are_named(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    for path, words in [(tmp_path, "is a directory"), (tmp_path / "fifo", "not a regular file"),
                        ("/dev/null", "not a regular file"), (tmp_path / "none", "no such file")]:
        with pytest.raises(InputError, match=words):
            ingest_files(tmp_path / "s.duckdb", [path])
    assert not (tmp_path / "s.duckdb").exists()


def test_only_culpa_stores_are_opened(tmp_path, store_with_syria):
    lite = tmp_path / "team.sqlite"
    sqlite3.connect(lite).execute("CREATE TABLE x (a)").connection.commit()
    foreign = tmp_path / "other.duckdb"
    duckdb.connect(str(foreign)).execute("CREATE TABLE x (a INT)").close()
    empty = tmp_path / "empty.duckdb"
    empty.write_bytes(b"")
    for path, words in [(lite, "SQLite"), (foreign, r"other tables \(x\)"), (empty, "empty"),
                        (tmp_path, "directory")]:
        for read_only in (True, False):
            with pytest.raises(InputError, match=words):
                Store(path, read_only=read_only)
    assert lite.read_bytes().startswith(b"SQLite format 3")  # untouched, no extension tried


def test_a_store_of_a_newer_schema_or_another_shape_is_refused_not_remarked(store_with_syria):
    con = duckdb.connect(str(store_with_syria))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    for read_only in (True, False):
        with pytest.raises(InputError, match="schema version 99"):
            Store(store_with_syria, read_only=read_only)
    con = duckdb.connect(str(store_with_syria))
    assert con.execute("SELECT value FROM meta").fetchall() == [("99",)]
    con.execute(f"UPDATE meta SET value = '{SCHEMA_VERSION}'")
    con.execute("DROP VIEW actors")
    con.execute("ALTER TABLE events DROP COLUMN admin2")
    con.close()
    with pytest.raises(InputError, match="lacks column"):
        Store(store_with_syria)


def test_extensions_are_never_loaded(store_with_syria):
    with Store(store_with_syria, read_only=True) as store:
        settings = dict(store.con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name LIKE 'auto%_known_extensions'")
            .fetchall())
    assert settings == {"autoload_known_extensions": "false",
                        "autoinstall_known_extensions": "false"}


def test_a_bad_alias_or_mapping_file_is_refused_by_name(tmp_path, store_with_syria):
    from culpa.events.readers.generic import parse_mapping

    aliases = tmp_path / "aliases.yaml"
    aliases.write_bytes(b"Foo:\n  - \xff\n")
    src = tmp_path / "s.csv"
    src.write_bytes(SYRIA_HEAD)
    with pytest.raises(InputError, match="not UTF-8") as info:
        ingest_files(store_with_syria, [src], alias_files=[aliases])
    assert info.value.line == 2
    (tmp_path / "mapdir").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        parse_mapping([], tmp_path / "mapdir")


def test_a_bad_date_bound_is_an_input_error(store_with_syria):
    with Store(store_with_syria, read_only=True) as store:
        for bad in ("nan", "", "2018-13-45"):
            with pytest.raises(InputError, match="not a date"):
                store.events_frame(since=bad)


def test_ctrl_c_after_the_commit_says_the_events_were_kept(tmp_path, monkeypatch):
    # Ctrl-C that lands while the ingest tidies up after COMMIT (here: in the reset that follows
    # it) must not report "nothing was ingested": the events are in the store.
    from culpa.events.store import IngestInterrupted

    db = tmp_path / "s.duckdb"
    ingest_files(db, [UCDP_SYRIA])
    fresh = tmp_path / "more.csv"
    with open(UCDP_SYRIA, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    id_col = header.index("id")
    for row in body[:50]:
        row[id_col] = "9" + row[id_col]
    with open(fresh, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *body[:50]])
    before = Store(db, read_only=True)
    n_before = before.count()
    before.close()

    real_reset = Store._reset

    def interrupted_reset(self):
        real_reset(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "_reset", interrupted_reset)
    with pytest.raises(IngestInterrupted) as caught:
        ingest_files(db, [fresh])
    monkeypatch.undo()

    assert caught.value.committed
    assert "committed" in str(caught.value) and "50 new events" in str(caught.value)
    after = Store(db, read_only=True)
    assert after.count() == n_before + 50
    after.close()


def test_an_id_repeated_with_other_content_in_one_ingest_names_both_lines(tmp_path,
                                                                         store_with_syria):
    # Whether or not the store holds the id already: a file that contradicts itself is refused
    # whatever the store holds, naming the first line and the later one.
    src = tmp_path / "again.csv"
    for body, first in ((SYRIA_NEXT, 3), (SYRIA_HEAD, 3)):  # new to the store, then stored
        src.write_bytes(body + body.split(b"\n")[2].replace(b"Syria", b"Syrie") + b"\n")
        before = snapshot(store_with_syria)
        with pytest.raises(InputError, match="appears twice with different content") as info:
            ingest_files(store_with_syria, [src])
        assert info.value.line == 21 and info.value.field == "country"
        assert f"{src} line {first}," in str(info.value) and "'Syrie' here" in str(info.value)
        assert snapshot(store_with_syria) == before


def test_an_id_the_store_holds_with_other_content_is_kept_as_stored_and_reported(
        tmp_path, store_with_syria):
    """Across ingests the store keeps its version of an event (re-reading never duplicates),
    and the ingest says which events of the file differ from it, with both places."""
    revised = with_cell(with_cell(SYRIA_HEAD, 2, "best", "999"), 5, "country", "Syrie")
    src = tmp_path / "revised.csv"
    src.write_bytes(revised + b"".join(SYRIA_NEXT.splitlines(keepends=True)[1:]))
    stored_before = snapshot(store_with_syria)
    stored = tmp_path / "syria_head.csv"  # what store_with_syria was made from

    proc = culpa("ingest", src, "--db", store_with_syria, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["added"] == 19 and doc["already_present"] == 19
    assert doc["differing_from_store"] == 2 and doc["files"][0]["differing_from_store"] == 2
    ids = [r[0] for r in csv.reader(io.StringIO(revised.decode()))]
    first, second = doc["differing_examples"]
    assert first == {"id": f"ucdp:{ids[2]}", "file": str(src), "line": 3,
                     "stored_file": str(stored), "stored_line": 3,
                     "fields": {"fatalities": {"stored": first["fields"]["fatalities"]["stored"],
                                               "here": 999}}}
    assert first["fields"]["fatalities"]["stored"] != 999
    assert second["id"] == f"ucdp:{ids[5]}" and second["line"] == 6
    assert second["fields"] == {"country": {"stored": "Syria", "here": "Syrie"}}
    # nothing stored wrong: the 19 events held before are exactly as they were
    after = snapshot(store_with_syria)
    assert [r for r in after if r[0] in {s[0] for s in stored_before}] == stored_before
    assert len(after) == 38

    # the friendly output says so too (on stderr, beside the counts on stdout)
    src.write_bytes(revised)
    proc = culpa("ingest", src, "--db", store_with_syria)
    assert proc.returncode == 0, proc.stderr
    assert "2 differ from the store" in proc.stdout
    said = " ".join(proc.stderr.split())
    assert "2 events of these files are already in the store with other content" in said
    assert (f"ucdp:{ids[5]} at {src} line 6 (stored from {stored} line 6): country 'Syrie' "
            f"here, 'Syria' in the store") in said
    assert snapshot(store_with_syria) == after

    # the same file again: nothing differs, nothing is said
    proc = culpa("ingest", stored, "--db", store_with_syria, "--json")
    assert json.loads(proc.stdout)["differing_from_store"] == 0
    assert json.loads(proc.stdout)["differing_examples"] == []


class _InterruptedInCommit:
    """A DuckDB connection whose COMMIT goes through and then raises ``error``, as a Ctrl-C
    that lands during a large COMMIT does: DuckDB says "Query interrupted" although the commit
    took effect (seen in 7 of 10 interrupts near the end of an 87k-event ingest), or Python
    raises KeyboardInterrupt as the call returns."""

    def __init__(self, con, error):
        self._con, self._error = con, error

    def execute(self, sql, *args):
        result = self._con.execute(sql, *args)
        if sql == "COMMIT":
            raise self._error
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.mark.parametrize("error", [RuntimeError("Query interrupted"), KeyboardInterrupt()],
                         ids=["duckdb", "python"])
def test_ctrl_c_during_the_commit_says_the_events_were_kept(tmp_path, store_with_syria, error):
    from culpa.events.store import IngestInterrupted

    src = tmp_path / "next.csv"
    src.write_bytes(SYRIA_NEXT)
    store = Store(store_with_syria)
    store.con = _InterruptedInCommit(store.con, error)
    with pytest.raises(IngestInterrupted) as caught:
        store.ingest([src])
    store.close()
    assert caught.value.committed and "its 19 new events are in the store" in str(caught.value)
    assert len(snapshot(store_with_syria)) == 38


def test_ctrl_c_at_any_moment_of_an_ingest_is_reported_truthfully(tmp_path, store_with_syria):
    # Wherever the Ctrl-C lands (loading, reading, committing, after), what culpa says must
    # match the store: exit 0 with the events, or exit 130 saying whether they were kept.
    import shutil
    import signal
    import subprocess
    import sys
    import time

    before = len(snapshot(store_with_syria))
    for delay in (0.3, 1.2, 2.5):
        db = tmp_path / f"s{delay}.duckdb"
        shutil.copy(store_with_syria, db)
        proc = subprocess.Popen([sys.executable, "-m", "culpa", "ingest", UCDP_SYRIA, "--db", db],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, said = proc.communicate(timeout=300)
        after = len(snapshot(db))
        assert "Traceback" not in said and "internal error" not in said, said
        if proc.returncode == 0:
            assert after > before
        else:
            assert proc.returncode == 130, said
            kept = "committed" in said and "are in the store" in said
            assert kept or "nothing" in said, f"exit 130 saying {said!r}"
            assert (after > before) == kept, f"{before} -> {after} events; it said {said!r}"


def test_a_store_in_a_read_only_folder_is_refused_with_a_clear_message(tmp_path,
                                                                      store_with_syria):
    # Run as an ordinary user would be: as root (CI) without the capability to ignore modes.
    import shutil
    import subprocess
    import sys

    from helpers import without_dac_override

    def run(*args):
        return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                              timeout=300, preexec_fn=without_dac_override)

    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.copy(store_with_syria, ro / "s.duckdb")
    src = tmp_path / "next.csv"
    src.write_bytes(SYRIA_NEXT)
    before = snapshot(ro / "s.duckdb")
    ro.chmod(0o555)
    try:
        probe = run("-c", f"open({str(ro / 'probe')!r}, 'w')")
        if probe.returncode == 0:
            pytest.skip("this process cannot give up its permission to write anywhere")
        for db in (ro / "s.duckdb", ro / "new.duckdb"):  # an existing store, a new one
            proc = run("-m", "culpa", "ingest", src, "--db", db, "--json")
            assert proc.returncode == 2, proc.stderr
            doc = json.loads(proc.stdout)
            assert doc["file"] == str(db) and f"its folder {ro} is not writable" in doc["error"]
            assert "internal error" not in proc.stderr
        reading = run("-m", "culpa", "stats", "--db", ro / "s.duckdb", "--json")
        assert reading.returncode == 0 and json.loads(reading.stdout)["events"] == 19
    finally:
        ro.chmod(0o755)
    assert sorted(p.name for p in ro.iterdir()) == ["s.duckdb"]
    assert snapshot(ro / "s.duckdb") == before



class _InterruptedInInsert:
    """A DuckDB connection whose first insert of events is interrupted the way ``error`` says."""

    def __init__(self, con, error):
        self._con, self._error = con, error

    def from_arrow(self, table):
        raise self._error

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.mark.parametrize("error", [
    RuntimeError("Query interrupted"),
    # a Ctrl-C while DuckDB read the arrow batch through Python (seen once in 80 interrupts;
    # it was an "internal error")
    duckdb.Error("KeyboardInterrupt: <EMPTY MESSAGE>"),
], ids=["query", "in-python-callback"])
def test_ctrl_c_during_an_insert_says_nothing_was_ingested(tmp_path, store_with_syria, error):
    from culpa.events.store import IngestInterrupted

    before = snapshot(store_with_syria)
    src = tmp_path / "next.csv"
    src.write_bytes(SYRIA_NEXT)
    store = Store(store_with_syria)
    store.con = _InterruptedInInsert(store.con, error)
    with pytest.raises(IngestInterrupted) as caught:
        store.ingest([src])
    store.close()
    assert not caught.value.committed and "nothing was ingested" in str(caught.value)
    assert snapshot(store_with_syria) == before
