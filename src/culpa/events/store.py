"""The store: one DuckDB file holding events, actor aliases, cases and an audit trail.

Ingest is idempotent (event ids are source-qualified and stable, so a file read twice adds
nothing) and atomic: every file of one ingest is parsed and validated inside one transaction,
and any error rolls it back, leaving the store exactly as it was. ``ingest_files`` extends that
to the file itself: a store it had to create is removed again when the ingest fails.

Only culpa stores are opened: a file is checked by its first bytes before DuckDB reads it (a
SQLite file, say, is refused rather than handed to DuckDB, which would try to load an
extension for it), DuckDB never loads or installs extensions, and a store of a newer schema
version, a DuckDB file of someone else's or an events table of another shape is refused.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from culpa.errors import IngestInterrupted, InputError
from culpa.events.actors import AliasTable
from culpa.events.schema import EVENT_COLUMNS, RECORD_COLUMNS_KEY, duckdb_columns, record_layout

#: 2: records are JSON arrays led by a layout key (column names in record_layouts); stores of
#: version 1 hold JSON objects, which are still read as they are.
SCHEMA_VERSION = 2
INGEST_MEMORY_LIMIT = "256MB"
DUCKDB_MAGIC = b"DUCK"  # at byte offset 8 of every DuckDB database file
_NO_EXTENSIONS = {"autoload_known_extensions": False, "autoinstall_known_extensions": False}
_FOREIGN = ((b"SQLite format 3\x00", "a SQLite database"), (b"PAR1", "a Parquet file"),
            (b"\x1f\x8b", "a gzip file"), (b"PK\x03\x04", "a zip file"))


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
    #: events whose id the store held before with other content (the store keeps its version)
    differing_from_store: int = 0


#: How many events differing from the store's version a report shows in full.
DIFFERING_EXAMPLES = 5


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    #: the first few events that differ from the store's version: id, where each version was
    #: read (file, line) and every field that differs, with the stored and the file's value
    differing_examples: list[dict] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def differing_from_store(self) -> int:
        return sum(f.differing_from_store for f in self.files)

    def to_dict(self) -> dict:
        files = [vars(f) | {"events": f.rows, "already_present": f.rows - f.added}
                 for f in self.files]
        return {"files": files, "events": self.rows, "rows": self.rows, "added": self.added,
                "already_present": self.rows - self.added,
                "differing_from_store": self.differing_from_store,
                "differing_examples": self.differing_examples}


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
    naming both records, rather than dropped without a word, whether or not the store holds
    the id already (a file that contradicts itself is refused whatever the store holds).

    A record whose id the store held before this ingest is not stored again. When its content
    differs from the stored version the store still keeps its own (the first record of an id
    wins), and the ingest says so: ``differing`` counts them per file and ``examples`` shows
    the first few with both places and every field that differs.

    Ids met earlier in this ingest are kept in a set (a batch is checked in time proportional
    to its own size). Ids stored before it began are looked up per batch through a second
    connection, which sees only committed rows, and only when the store held events at all;
    an anti-join against the events table inside the transaction grew slower with every batch.
    The first record of each stored id is kept in a temporary table (it goes with the
    transaction), which the repeat check and the comparison with the store read.
    """

    AGAIN = "_culpa_ingest_again"

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.seen: set[str] = set()
        self.stored: set[str] = set()  # ids held before this ingest began
        has_events = con.execute("SELECT EXISTS (SELECT 1 FROM events)").fetchone()[0]
        self.before = con.cursor() if has_events else None
        self.again = False  # whether the temporary table of stored ids met again exists

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
                else:
                    repeats.append((i, x, here.get(x)))
        if self.before is not None:
            batch_ids = table.select(["id"])  # noqa: F841 - read by the SQL below
            stored = {r[0] for r in self.before.execute(
                "SELECT id FROM batch_ids SEMI JOIN events USING (id)").fetchall()}
            if stored:
                self.stored |= stored
                present = np.fromiter((x in stored for x in ids), dtype=bool, count=len(ids))
                self._remember(table.filter(pa.array(present if keep is None
                                                     else keep & present)))
                keep = ~present if keep is None else keep & ~present
        if repeats:
            self._check_same(table, repeats)
        return table if keep is None else table.filter(pa.array(keep))

    def _remember(self, first: pa.Table) -> None:
        """Keep the first record of this ingest for ids the store already held."""
        if first.num_rows == 0:
            return
        cols = [c for c in EVENT_COLUMNS if c != "record"]
        if not self.again:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {self.AGAIN} AS "
                             f"SELECT {', '.join(cols)} FROM events LIMIT 0")
            self.again = True
        self.con.from_arrow(first.select(cols)).insert_into(self.AGAIN)

    def _check_same(self, table: pa.Table, repeats: list[tuple[int, str, int | None]]) -> None:
        """Refuse a repeated id whose content differs from its first record's."""
        cols = [*_CONTENT, "source_file", "source_row"]
        rows = table.select(cols).to_pylist()
        earlier: dict[str, dict] = {}
        for where, wanted in ((self.AGAIN, [x for _, x, j in repeats
                                            if j is None and x in self.stored]),
                              ("events", [x for _, x, j in repeats
                                          if j is None and x not in self.stored])):
            if not wanted or (where == self.AGAIN and not self.again):
                continue
            earlier_ids = pa.table({"id": wanted})  # noqa: F841 - read by the SQL below
            earlier |= {r["id"]: r for r in self.con.execute(
                f"SELECT {', '.join(cols)} FROM {where} SEMI JOIN earlier_ids USING (id)")
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

    def differing(self) -> tuple[dict[str, int], list[dict]]:
        """The records of this ingest whose id the store held with other content: how many
        per file, and the first few (``DIFFERING_EXAMPLES``) with both places and every field
        that differs (the stored value and the file's)."""
        if not self.again:
            return {}, []
        cols = [*_CONTENT, "source_file", "source_row"]
        differs = " OR ".join(f"a.{c} IS DISTINCT FROM e.{c}" for c in _CONTENT)
        join = f"FROM {self.AGAIN} a JOIN events e USING (id) WHERE {differs}"
        counts = dict(self.con.execute(
            f"SELECT a.source_file, count(*) {join} GROUP BY 1").fetchall())
        if not counts:
            return {}, []
        first = [r[0] for r in self.con.execute(
            f"SELECT id {join} ORDER BY a.rowid LIMIT {DIFFERING_EXAMPLES}").fetchall()]
        ids = pa.table({"id": first})  # noqa: F841 - read by the SQL below
        here, stored = {}, {}
        for where, into in ((self.AGAIN, here), ("events", stored)):
            into |= {r["id"]: r for r in self.con.execute(
                f"SELECT {', '.join(cols)} FROM {where} SEMI JOIN ids USING (id)")
                .to_arrow_table().to_pylist()}
        examples = []
        for x in first:
            new, old = here[x], stored[x]
            examples.append({
                "id": x, "file": new["source_file"], "line": _line(new),
                "stored_file": old["source_file"], "stored_line": _line(old),
                "fields": {c: {"stored": _plain(old[c]), "here": _plain(new[c])}
                           for c in _CONTENT if not _same(old[c], new[c])}})
        return counts, examples

    def close(self) -> None:
        if self.before is not None:
            self.before.close()
        if self.again:
            try:
                self.con.execute(f"DROP TABLE IF EXISTS {self.AGAIN}")
            except duckdb.Error:
                pass  # rolled back with the transaction, or the connection is gone


def _check_store_file(path: Path) -> None:
    """Refuse, by its first bytes, a file that is not a DuckDB database (before DuckDB sees it)."""
    import stat

    try:
        info = path.stat()
    except FileNotFoundError:
        return  # a new store
    except OSError as exc:
        raise InputError(f"cannot open the store: {exc.strerror or exc}", file=str(path)) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError("is a directory, not a culpa store", file=str(path))
    if not stat.S_ISREG(info.st_mode):
        raise InputError("not a regular file, so not a culpa store", file=str(path))
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise InputError(f"cannot read the store: {exc.strerror or exc}", file=str(path)) from None
    if len(head) < 12 or head[8:12] != DUCKDB_MAGIC:
        what = next((name for magic, name in _FOREIGN if head.startswith(magic)),
                    "an empty file" if not head else "not a DuckDB database")
        raise InputError(f"not a culpa store ({what})", file=str(path))


def _check_writable(path: Path) -> None:
    """Refuse, before reading any input, a store that could not be written: a read-only file,
    or a folder where the store or the write-ahead log DuckDB keeps beside it cannot be made
    (checked with the process's effective permissions)."""
    folder = path.parent
    effective = os.access in os.supports_effective_ids
    if not folder.is_dir():
        raise InputError(f"cannot create the store: no such folder {folder}", file=str(path))
    if path.exists() and not os.access(path, os.W_OK, effective_ids=effective):
        raise InputError("cannot write to the store: the file is read-only", file=str(path))
    if not os.access(folder, os.W_OK | os.X_OK, effective_ids=effective):
        raise InputError(f"cannot write to the store: its folder {folder} is not writable (the "
                         f"store and the log DuckDB keeps beside it are written there)",
                         file=str(path))


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C, however it surfaced: Python's KeyboardInterrupt, DuckDB's interrupted query, or
    DuckDB's wrapping of a KeyboardInterrupt raised while it called back into Python (reading
    an arrow batch): ``duckdb.Error('KeyboardInterrupt: <EMPTY MESSAGE>')``."""
    return isinstance(exc, (KeyboardInterrupt, duckdb.InterruptException)) or (
        isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower()) or (
        isinstance(exc, duckdb.Error) and str(exc).startswith("KeyboardInterrupt"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def ingest_files(db: str | Path, paths: Sequence[Path], fmt: str = "auto", *,
                 alias_files: Sequence[Path] = (), mapping: dict | None = None,
                 progress: Callable[[int], None] | None = None) -> tuple[IngestReport, int]:
    """Ingest files into the store at ``db`` (created when absent), all or nothing.

    Returns the report and the number of events now in the store. When anything fails (bad
    input, a full disk, Ctrl-C before the commit) the store is exactly as it was, and a store
    this call created is removed again: no half-made file is left behind.
    """
    db = Path(db)
    existed = db.exists()
    store = None
    try:
        with Store(db) as store:
            report = store.ingest(paths, fmt, alias_files=alias_files, mapping=mapping,
                                  progress=progress)
            return report, store.count()
    except IngestInterrupted as exc:
        if not exc.committed:
            _remove_new(db, existed, store is not None)
        raise
    except BaseException as exc:
        # An interrupt can land after COMMIT returned (while the ingest tidies up or the
        # store closes): then the events are kept, and the message must say so.
        committed = getattr(store, "committed_report", None)
        if committed is None:
            _remove_new(db, existed, store is not None)
        if _interrupted(exc):
            raise IngestInterrupted(committed=committed is not None, report=committed) from None
        raise


def _remove_new(db: Path, existed: bool, opened: bool) -> None:
    """Remove a store this ingest created (it held the store's lock, so no one else did)."""
    if existed or not opened:
        return
    for leftover in (db, db.with_name(db.name + ".wal")):
        try:
            leftover.unlink(missing_ok=True)
        except OSError:
            pass


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def _plain(value):
    """A stored value as JSON can hold it (instants as ISO text, NaN as null)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value


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
            raise InputError("no store here (nothing has been ingested into it yet)",
                             file=str(path))
        _check_store_file(self.path)
        if not read_only:
            _check_writable(self.path)
        try:
            # (settings, not connect(config=...): other connections to the same file in this
            # process, the tests' or a server's, must not need the same configuration)
            self.con = duckdb.connect(str(self.path), read_only=read_only)
            for key, value in _NO_EXTENSIONS.items():
                self.con.execute(f"SET {key} = {str(value).lower()}")
        except duckdb.Error as exc:
            raise InputError(f"cannot open the store: {_first_line(exc)}",
                             file=str(path)) from None
        self._layouts_written: set[bytes] = set()
        try:
            self._check_schema()
            if not read_only:
                self._create()
        except BaseException:
            self.con.close()
            raise

    def _check_schema(self) -> None:
        """Refuse a DuckDB file that is not a culpa store this culpa can read."""
        tables = {r[0] for r in self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")
            .fetchall()}
        where = str(self.path)
        if not tables:
            return  # a new store
        if "meta" not in tables:
            shown = ", ".join(sorted(tables)[:8])
            raise InputError(f"not a culpa store: a DuckDB database of other tables ({shown})",
                             file=where)
        found = self.con.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if found is not None:
            try:
                version = int(found[0])
            except (TypeError, ValueError):
                raise InputError(f"not a culpa store: schema version {found[0]!r}",
                                 file=where) from None
            if version > SCHEMA_VERSION or version < 1:
                raise InputError(f"this store has schema version {version}; this culpa reads "
                                 f"versions 1 to {SCHEMA_VERSION} (a newer culpa made it?)",
                                 file=where)
        if "events" in tables:
            have = [r[0] for r in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "'main' AND table_name = 'events' ORDER BY ordinal_position").fetchall()]
            if have != list(EVENT_COLUMNS):
                missing = [c for c in EVENT_COLUMNS if c not in have]
                extra = [c for c in have if c not in EVENT_COLUMNS]
                what = (f"lacks column(s) {', '.join(missing)}" if missing else
                        f"has unknown column(s) {', '.join(extra)}" if extra else
                        "has its columns in another order")
                raise InputError(f"this store's events table {what}: it was made by another "
                                 f"version of culpa; ingest the files into a new store",
                                 file=where)

    def _create(self) -> None:
        """Create the tables a new store needs (nothing changes in an existing one)."""
        try:
            self.con.execute("BEGIN TRANSACTION")
            self.con.execute(_DDL)
            self.con.execute("INSERT INTO meta SELECT 'schema_version', ? WHERE NOT EXISTS "
                             "(SELECT 1 FROM meta WHERE key = 'schema_version')",
                             [str(SCHEMA_VERSION)])
            self.con.execute("COMMIT")
        except BaseException as exc:
            self._rollback()
            if _interrupted(exc):
                raise IngestInterrupted(committed=False) from None
            if isinstance(exc, duckdb.Error):
                raise InputError(f"cannot write to the store: {_first_line(exc)}",
                                 file=str(self.path)) from None
            raise

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
        from culpa.events.readers.base import check_regular_file

        for p in paths:
            check_regular_file(Path(p))
        report = IngestReport()
        self.committed_report = None  # set once COMMIT returns: the events are kept from then on
        self._commit_stamp = None  # the audit entry's time, once COMMIT has been asked for
        dedupe = None
        try:
            # Uncommitted rows would otherwise sit in DuckDB's buffer pool (up to 80% of RAM):
            # with a cap it writes them out as it goes (300k rows: peak RSS 1.9 -> 1.2 GB).
            self.con.execute(f"SET memory_limit='{INGEST_MEMORY_LIMIT}'")
            self.con.execute("SET threads=1")
            self._layouts_written = set()  # per transaction: a rollback takes them back
            self.con.execute("BEGIN TRANSACTION")
            dedupe = _Dedupe(self.con)
            self.save_aliases(alias_files)
            aliases = self.alias_table()
            for p in paths:
                p = Path(p)
                name = fmt if fmt != "auto" else ("csv" if mapping else readers.detect_format(p))
                if name not in readers.READERS:
                    raise InputError(f"unknown format {name!r}; choose one of "
                                     f"{', '.join(readers.FORMATS)}", field="format")
                module = readers.READERS[name]
                fr = FileReport(str(p), name, _sha256(p))
                kwargs = {"mapping": mapping} if name == "csv" else {}
                for table in _prefetch(module.read(p, aliases, progress, **kwargs)):
                    fr.rows += table.num_rows
                    fr.added += self._insert_new(dedupe.new_rows(table))
                if fr.rows == 0:
                    raise InputError("file holds a header but no events", file=str(p), line=2)
                report.files.append(fr)
            counts, report.differing_examples = dedupe.differing()
            for fr in report.files:  # (a file given twice: its first reading holds them)
                fr.differing_from_store = counts.pop(str(Path(fr.path).resolve()), 0)
            stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            self.con.execute("INSERT INTO audit VALUES (?, 'ingest', ?, ?)",
                             [stamp, getpass.getuser(), json.dumps(report.to_dict())])
            self._commit_stamp = stamp
            self.con.execute("COMMIT")
            self.committed_report = report
        except (duckdb.IOException, duckdb.OutOfMemoryException,
                duckdb.PermissionException) as exc:  # the disk, not the data: keep nothing
            self._rollback()
            raise InputError(f"cannot write to the store: {_first_line(exc)}",
                             file=str(self.path)) from None
        except BaseException as exc:
            if self.committed_report is None and self._commit_went_through():
                self.committed_report = report  # Ctrl-C as COMMIT returned: the events are in
            self._rollback()
            if _interrupted(exc):
                raise IngestInterrupted(committed=self.committed_report is not None,
                                        report=self.committed_report) from None
            raise
        finally:
            if dedupe is not None:
                dedupe.close()
            self._reset()
        try:
            self.con.execute("CHECKPOINT")
        except BaseException as exc:
            if _interrupted(exc):
                raise IngestInterrupted(committed=True, report=report) from None
            if not isinstance(exc, duckdb.Error):
                raise
            # else: committed, and in the write-ahead log that the next open replays
        return report

    def _commit_went_through(self) -> bool:
        """Whether this ingest's COMMIT took effect although the call did not return (a Ctrl-C
        that Python raises as the call returns): its audit entry is then visible to another
        connection, which sees committed rows only."""
        if self._commit_stamp is None:
            return False
        try:
            check = self.con.cursor()
            try:
                return bool(check.execute(
                    "SELECT EXISTS (SELECT 1 FROM audit WHERE action = 'ingest' AND "
                    "recorded_at = ?)", [self._commit_stamp]).fetchone()[0])
            finally:
                check.close()
        except (duckdb.Error, KeyboardInterrupt):
            return False

    def _rollback(self) -> None:
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # no transaction open (it failed before BEGIN, or DuckDB ended it)

    def _reset(self) -> None:
        for setting in ("memory_limit", "threads"):
            try:
                self.con.execute(f"RESET {setting}")
            except duckdb.Error:
                pass

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
        where, args = _where(since, until, bbox, located)
        sql = f"SELECT {cols} FROM events WHERE {where} ORDER BY time_start, id"
        return self.con.execute(sql, args).df()

    def events_page(self, since: str | dt.date | None = None, until: str | dt.date | None = None,
                    bbox: tuple[float, float, float, float] | None = None,
                    actor: str | None = None, located: bool = False, limit: int | None = None,
                    offset: int = 0) -> tuple[list[dict], int]:
        """A page of a selection, ordered by time then id: at most ``limit`` events (all when
        None) from ``offset``, each a dict of the store's columns but the source record, and
        the number of events in the whole selection. The selection is ``events_frame``'s, plus
        ``actor`` (a canonical name); ``located`` is off by default here (a listing shows the
        events the model cannot place too)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise InputError(f"must be a whole number >= 0, got {limit!r}", field="limit")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InputError(f"must be a whole number >= 0, got {offset!r}", field="offset")
        where, args = _where(since, until, bbox, located)
        if actor is not None:
            where += " AND actor = ?"
            args.append(str(actor))
        cols = [c for c in EVENT_COLUMNS if c != "record"]
        total = int(self.con.execute(f"SELECT count(*) FROM events WHERE {where}",
                                     args).fetchone()[0])
        page = " LIMIT ? OFFSET ?" if limit is not None else " OFFSET ?"
        rows = self.con.execute(
            f"SELECT {', '.join(cols)} FROM events WHERE {where} ORDER BY time_start, id" + page,
            args + ([limit, offset] if limit is not None else [offset])).fetchall()
        return [dict(zip(cols, row)) for row in rows], total

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


def _where(since, until, bbox, located: bool) -> tuple[str, list]:
    """SQL ``WHERE`` text and its arguments for a selection of events (``until`` exclusive)."""
    where, args = ["TRUE"], []
    if located:
        where.append("latitude IS NOT NULL AND longitude IS NOT NULL")
    if since is not None:
        where.append("time_start >= ?")
        args.append(_day(since, "since"))
    if until is not None:
        where.append("time_start < ?")
        args.append(_day(until, "until"))
    if bbox is not None:
        w, s, e, n = bbox
        where.append("longitude BETWEEN ? AND ? AND latitude BETWEEN ? AND ?")
        args += [w, e, s, n]
    return " AND ".join(where), args


def _day(value, name: str) -> dt.datetime:
    """A date bound for a query; anything that is not a date is an InputError naming ``name``."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise InputError(f"{value!r} is not a date (YYYY-MM-DD)", field=name)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()
