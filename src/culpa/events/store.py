"""The store: one DuckDB file holding events, actor aliases, cases and an audit trail.

Ingest is idempotent (event ids are source-qualified and stable, so a file read twice adds
nothing) and atomic: every file of one ingest is parsed and validated inside one transaction,
and any error rolls it back, leaving the store exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from culpa.errors import InputError
from culpa.events.actors import AliasTable
from culpa.events.schema import EVENT_COLUMNS, RECORD_COLUMNS_KEY, duckdb_columns, record_layout

#: 2: records are JSON arrays led by a layout key (column names in record_layouts); stores of
#: version 1 hold JSON objects, which are still read as they are.
SCHEMA_VERSION = 2
INGEST_MEMORY_LIMIT = "256MB"

_DDL = f"""
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS events ({duckdb_columns()});
CREATE TABLE IF NOT EXISTS aliases (alias_key VARCHAR PRIMARY KEY, actor VARCHAR NOT NULL,
                                    origin VARCHAR);
CREATE TABLE IF NOT EXISTS cases (id VARCHAR, title VARCHAR, file VARCHAR, run_at TIMESTAMP,
                                  result JSON);
CREATE TABLE IF NOT EXISTS audit (recorded_at TIMESTAMP, action VARCHAR, who VARCHAR, detail JSON);
CREATE TABLE IF NOT EXISTS record_layouts (layout VARCHAR PRIMARY KEY, names VARCHAR[] NOT NULL);
CREATE OR REPLACE VIEW event_records AS
    SELECT e.id, CASE WHEN starts_with(e.record, '[')
                      THEN to_json(map(l.names, (json_extract(e.record, '$[*]'))[2:]))::VARCHAR
                      ELSE e.record END AS record
    FROM events e LEFT JOIN record_layouts l ON l.layout = json_extract_string(e.record, '$[0]');
CREATE OR REPLACE VIEW actors AS
    SELECT actor AS name, count(*) AS events, min(time_start) AS first_seen,
           max(time_start) AS last_seen, sum(fatalities) AS fatalities
    FROM events WHERE actor IS NOT NULL GROUP BY actor;
"""


@dataclass
class FileReport:
    path: str
    format: str
    sha256: str
    rows: int = 0
    added: int = 0


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    def to_dict(self) -> dict:
        files = [vars(f) | {"events": f.rows, "already_present": f.rows - f.added}
                 for f in self.files]
        return {"files": files, "events": self.rows, "rows": self.rows, "added": self.added,
                "already_present": self.rows - self.added}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _prefetch(batches: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """Parse the next batches in a thread while the caller inserts this one.

    Parsing is mostly Python and arrow, inserting is DuckDB; both release the GIL for their heavy
    parts, so overlapping them uses the second core. Errors are re-raised in the caller.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed over to the consuming thread
            q.put(exc)

    worker = threading.Thread(target=produce, name="culpa-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


#: The columns that say what an event is (not where in which file it was read).
_CONTENT = [c for c in EVENT_COLUMNS if c not in ("source_file", "source_row", "record")]


class _Dedupe:
    """Keeps the ids of one ingest unique and new: the first record of an id wins, as a
    re-ingest would keep the stored one. Within one ingest a later record may repeat an id
    only with the same content (the same file given twice); different content is refused,
    naming both records, rather than dropped without a word.

    Ids met earlier in this ingest are kept in a set (a batch is checked in time proportional
    to its own size). Ids stored before it began are looked up per batch through a second
    connection, which sees only committed rows, and only when the store held events at all;
    an anti-join against the events table inside the transaction grew slower with every batch.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.seen: set[str] = set()
        self.stored: set[str] = set()  # ids held before this ingest began
        has_events = con.execute("SELECT EXISTS (SELECT 1 FROM events)").fetchone()[0]
        self.before = con.cursor() if has_events else None

    def new_rows(self, table: pa.Table) -> pa.Table:
        ids = table["id"].to_pylist()
        seen = self.seen
        repeats: list[tuple[int, str, int | None]] = []  # (row, id, earlier row in this batch)
        if seen.isdisjoint(ids) and len(set(ids)) == len(ids):
            keep = None
            seen.update(ids)
        else:
            keep = np.zeros(len(ids), dtype=bool)
            here: dict[str, int] = {}
            for i, x in enumerate(ids):
                if x not in seen:
                    seen.add(x)
                    keep[i] = True
                    here[x] = i
                elif x not in self.stored:
                    repeats.append((i, x, here.get(x)))
        if self.before is not None:
            batch_ids = table.select(["id"])  # noqa: F841 - read by the SQL below
            stored = {r[0] for r in self.before.execute(
                "SELECT id FROM batch_ids SEMI JOIN events USING (id)").fetchall()}
            if stored:
                self.stored |= stored
                repeats = [r for r in repeats if r[1] not in stored]
                present = np.fromiter((x in stored for x in ids), dtype=bool, count=len(ids))
                keep = ~present if keep is None else keep & ~present
        if repeats:
            self._check_same(table, repeats)
        return table if keep is None else table.filter(pa.array(keep))

    def _check_same(self, table: pa.Table, repeats: list[tuple[int, str, int | None]]) -> None:
        """Refuse a repeated id whose content differs from its first record's."""
        cols = [*_CONTENT, "source_file", "source_row"]
        rows = table.select(cols).to_pylist()
        earlier_ids = pa.table({"id": [x for _, x, j in repeats if j is None]})  # noqa: F841
        earlier = {r["id"]: r for r in self.con.execute(
            f"SELECT {', '.join(cols)} FROM events SEMI JOIN earlier_ids USING (id)")
            .to_arrow_table().to_pylist()}
        for i, x, j in repeats:
            first = rows[j] if j is not None else earlier.get(x)
            if first is None:
                continue
            again = rows[i]
            diff = next((c for c in _CONTENT if not _same(first[c], again[c])), None)
            if diff is not None:
                raise InputError(
                    f"event id {x!r} appears twice with different content ({diff}: "
                    f"{_short(first[diff])} at {first['source_file']} line "
                    f"{_line(first)}, {_short(again[diff])} here); fix one of them",
                    file=again["source_file"], line=_line(again), field=diff)

    def close(self) -> None:
        if self.before is not None:
            self.before.close()


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def _line(row: dict) -> int | None:
    """The physical line of a stored record (its record number, for a Parquet file)."""
    from culpa.events.readers.base import locate_record

    return locate_record(Path(row["source_file"]), int(row["source_row"]))


class Store:
    """A culpa store on disk. Open it, use it, close it (or use ``with``)."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise InputError("no store here; run `culpa ingest FILE...` first", file=str(path))
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise InputError(f"cannot open the store: {exc}", file=str(path)) from None
        self._layouts_written: set[bytes] = set()
        if not read_only:
            self.con.execute(_DDL)
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                             [str(SCHEMA_VERSION)])

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    # -- aliases ----------------------------------------------------------------------------

    def alias_table(self, user_files: Iterable[Path] = ()) -> AliasTable:
        """Built-in aliases, then those saved in the store, then the given user files."""
        table = AliasTable.builtin()
        saved: dict[str, list[str]] = {}
        for key, actor in self.con.execute("SELECT alias_key, actor FROM aliases").fetchall():
            saved.setdefault(actor, []).append(key)
        table.update(saved, origin="store")
        for path in user_files:
            table.update_from_file(Path(path))
        return table

    def save_aliases(self, user_files: Iterable[Path]) -> None:
        from culpa.events.actors import alias_key

        for path in user_files:
            extra = AliasTable()
            extra.update_from_file(Path(path))
            for key, actor in extra.items():
                self.con.execute("INSERT OR REPLACE INTO aliases VALUES (?, ?, ?)",
                                 [alias_key(key), actor, str(path)])

    # -- ingest -----------------------------------------------------------------------------

    def ingest(self, paths: Sequence[Path], fmt: str = "auto", *,
               alias_files: Sequence[Path] = (), mapping: dict | None = None,
               progress: Callable[[int], None] | None = None) -> IngestReport:
        """Read every file and add its new events, all or nothing."""
        from culpa.events import readers

        for p in paths:
            if not Path(p).is_file():
                raise InputError("no such file", file=str(p))
        report = IngestReport()
        # Uncommitted rows would otherwise sit in DuckDB's buffer pool (up to 80% of RAM): with a
        # cap it writes them out as it goes (measured: 300k rows peak RSS 1.9 -> 1.2 GB, faster).
        self.con.execute(f"SET memory_limit='{INGEST_MEMORY_LIMIT}'")
        self.con.execute("SET threads=1")
        dedupe = _Dedupe(self.con)
        self._layouts_written = set()  # per transaction: a rollback takes them back
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.save_aliases(alias_files)
            aliases = self.alias_table()
            for p in paths:
                p = Path(p)
                name = fmt if fmt != "auto" else ("csv" if mapping else readers.detect_format(p))
                if name not in readers.READERS:
                    raise InputError(f"unknown format {name!r}; choose one of "
                                     f"{', '.join(readers.FORMATS)}", field="--format")
                module = readers.READERS[name]
                fr = FileReport(str(p), name, _sha256(p))
                kwargs = {"mapping": mapping} if name == "csv" else {}
                for table in _prefetch(module.read(p, aliases, progress, **kwargs)):
                    fr.rows += table.num_rows
                    fr.added += self._insert_new(dedupe.new_rows(table))
                if fr.rows == 0:
                    raise InputError("file holds a header but no events", file=str(p), line=2)
                report.files.append(fr)
            self.con.execute("INSERT INTO audit VALUES (?, 'ingest', ?, ?)",
                             [dt.datetime.now(dt.UTC).replace(tzinfo=None), getpass.getuser(),
                              json.dumps(report.to_dict())])
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            dedupe.close()
            self.con.execute("RESET memory_limit")
            self.con.execute("RESET threads")
        self.con.execute("CHECKPOINT")
        return report

    def _insert_new(self, table: pa.Table) -> int:
        """Insert a batch of new events (and its record layout, once); returns how many."""
        if table.num_rows == 0:
            return 0
        names = (table.schema.metadata or {}).get(RECORD_COLUMNS_KEY)
        if names is not None and names not in self._layouts_written:
            names_list = json.loads(names)
            self.con.execute("INSERT OR IGNORE INTO record_layouts VALUES (?, ?)",
                             [record_layout(names_list), names_list])
            self._layouts_written.add(names)
        # Not `register`: a view dropped inside a transaction lives on until it commits, and
        # with it every batch's arrow memory (peak RSS grew with the file).
        self.con.from_arrow(table.select(list(EVENT_COLUMNS))).insert_into("events")
        return table.num_rows

    def _count(self, table: str) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    # -- reading ----------------------------------------------------------------------------

    def count(self) -> int:
        return self._count("events")

    def stats(self) -> dict:
        n, first, last, unattributed = self.con.execute(
            "SELECT count(*), min(time_start), max(time_start), "
            "count(*) FILTER (WHERE actor IS NULL) FROM events").fetchone()
        by_source = dict(self.con.execute(
            "SELECT source, count(*) FROM events GROUP BY source ORDER BY source").fetchall())
        by_status = dict(self.con.execute(
            "SELECT attribution, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC").fetchall())
        actors = [
            {"actor": a, "events": int(c), "first": f.date().isoformat(),
             "last": l.date().isoformat(), "fatalities": int(d or 0)}
            for a, c, f, l, d in self.con.execute(
                "SELECT name, events, first_seen, last_seen, fatalities FROM actors "
                "ORDER BY events DESC, name").fetchall()]
        countries = dict(self.con.execute(
            "SELECT coalesce(country, '?'), count(*) FROM events GROUP BY 1 ORDER BY 2 DESC")
            .fetchall())
        return {
            "db": str(self.path), "events": int(n),
            "first_date": first.date().isoformat() if first else None,
            "last_date": last.date().isoformat() if last else None,
            "unattributed": int(unattributed), "by_source": by_source,
            "by_attribution": by_status, "by_country": countries,
            "actors": actors, "n_actors": len(actors),
        }

    def events_frame(self, since: str | dt.date | None = None, until: str | dt.date | None = None,
                     bbox: tuple[float, float, float, float] | None = None,
                     columns: Sequence[str] | None = None, located: bool = True) -> pd.DataFrame:
        """Events as a DataFrame ordered by time (``until`` is exclusive).

        ``located`` (default) keeps only events with coordinates: the model cannot place the
        others (GTD has some), though the store keeps them.
        """
        cols = ", ".join(columns or [c for c in EVENT_COLUMNS if c != "record"])
        where, args = ["TRUE"], []
        if located:
            where.append("latitude IS NOT NULL AND longitude IS NOT NULL")
        if since is not None:
            where.append("time_start >= ?")
            args.append(pd.Timestamp(since).to_pydatetime())
        if until is not None:
            where.append("time_start < ?")
            args.append(pd.Timestamp(until).to_pydatetime())
        if bbox is not None:
            w, s, e, n = bbox
            where.append("longitude BETWEEN ? AND ? AND latitude BETWEEN ? AND ?")
            args += [w, e, s, n]
        sql = f"SELECT {cols} FROM events WHERE {' AND '.join(where)} ORDER BY time_start, id"
        return self.con.execute(sql, args).df()

    def event(self, event_id: str) -> dict | None:
        """One event, its ``record`` the full source record as a mapping of column -> value."""
        row = self.con.execute("SELECT * FROM events WHERE id = ?", [event_id]).fetchone()
        if row is None:
            return None
        names = [d[0] for d in self.con.description]
        out = dict(zip(names, row))
        out["record"] = self.source_record(out["record"])
        return out

    def source_record(self, text: str | None) -> dict | None:
        """A stored record as a mapping of source column -> value, whichever layout holds it."""
        if text is None:
            return None
        value = json.loads(text)
        if isinstance(value, list) and value and isinstance(value[0], str):
            found = self.con.execute("SELECT names FROM record_layouts WHERE layout = ?",
                                     [value[0]]).fetchone()
            if found is not None and len(found[0]) == len(value) - 1:
                return dict(zip(found[0], value[1:]))
        return value  # a store of schema version 1 keeps JSON objects
