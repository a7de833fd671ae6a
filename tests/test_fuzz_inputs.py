"""Fuzz: mutations of the real UCDP, ACLED, GTD, mapped-CSV and Parquet inputs and of case and
sites files. For every input: either it is read whole (exactly the records an independent parse
with the csv module finds, every stored value plausible) or it is refused with an InputError
that names the file and a line, field or key path, and the store is left as it was. Never
another exception. Small and seeded in the normal run; large on demand::

    pytest -m fuzz --fuzz-count 5000 -p no:randomly tests/test_fuzz_inputs.py
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import random
import time
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from culpa.errors import InputError
from culpa.events.readers.base import MAX_COUNT
from culpa.events.store import ingest_files
from helpers import REPO, TEST_DATA, UCDP_IRAQ, UCDP_SYRIA, culpa
from helpers import store_fingerprint as fingerprint

pytestmark = pytest.mark.fuzz

FIELDLOG_MAP = {"id": "incident_no", "time": "date_reported", "latitude": "lat",
                "longitude": "lon", "actor": "perpetrator", "attribution": "claim_status",
                "event_type": "incident_type", "fatalities": "killed", "admin1": "governorate",
                "admin2": "district", "other_actor": "target", "source": "fieldlog",
                "date_format": "%d/%m/%Y"}
PARQUET_MAP = {"id": "incident_no", "time": "when", "latitude": "lat", "longitude": "lon",
               "actor": "perpetrator", "fatalities": "killed", "source": "fieldlog"}


def _records(data: bytes, n: int) -> bytes:
    """The header and the first n records of a CSV file, whole (quoted newlines kept)."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))[: n + 1]
    return _write(rows)


def _write(rows: list[list[str]], enc: str = "utf-8") -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    # (a cp1252 file cannot hold every character a mutation writes, e.g. U+202E: it is
    # written as "?", as any cp1252 writer would)
    return buf.getvalue().encode(enc, errors="surrogateescape" if enc == "utf-8" else "replace")


@dataclass
class Source:
    name: str
    data: bytes
    encoding: str
    fmt: str = "auto"
    mapping: dict | None = None
    hxl: bool = False
    counts: list = field(default_factory=list)  # count columns, for extreme values


SOURCES = [
    Source("ucdp_syria", _records(UCDP_SYRIA.read_bytes(), 40), "utf-8", counts=["best"]),
    Source("ucdp_iraq_hdx", _records(UCDP_IRAQ.read_bytes(), 30), "utf-8", hxl=True,
           counts=["best"]),
    Source("acled", (TEST_DATA / "acled_iraq_kirkuk_2019_2020.csv").read_bytes(), "utf-8",
           counts=["fatalities"]),
    Source("gtd", (TEST_DATA / "gtd_iraq_kirkuk_2019_2020_cp1252.csv").read_bytes(), "cp1252",
           counts=["nkill"]),
    Source("fieldlog", (TEST_DATA / "fieldlog_kirkuk_2020.csv").read_bytes(), "utf-8", "csv",
           FIELDLOG_MAP, counts=["killed"]),
]

EXTREMES = ["1e19", "-1e19", "inf", "-inf", "nan", "1e300", "-0", "9" * 40, "0x10", "1_000",
            "2018-02-30", "0000-01-01", "-1-01-01", "99999-01-01", "2018-01-01T10:00:00+03:00",
            "", " ", "NULL", "\x00", "é", "\u202e", '"', "\r", "\n", "x" * 200_000, "1.5", "-7"]


# -- mutations of a CSV file -------------------------------------------------------------------


def mutate_csv(src: Source, rng: random.Random) -> bytes:
    text = src.data.decode(src.encoding)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    k = rng.randrange(len(header))
    r = rng.randrange(len(body)) if body else 0
    start = 1 if src.hxl else 0
    kind = rng.choice(["flip", "truncate", "delete_column", "duplicate_column", "reorder",
                       "cell", "cell", "cell", "count", "nul", "bad_utf8", "bom", "cr", "crlf",
                       "quoted_newline", "gzip", "gzip_truncated", "drop_rows", "blank_lines",
                       "ragged", "header_only", "dup_row", "dup_id"])
    data = None
    if kind == "flip":
        b = bytearray(src.data)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        data = bytes(b)
    elif kind == "truncate":
        data = src.data[: rng.randrange(len(src.data))]
    elif kind == "delete_column":
        rows = [x[:k] + x[k + 1:] for x in rows]
    elif kind == "duplicate_column":
        rows = [x + [x[k]] if len(x) > k else x for x in rows]
    elif kind == "reorder":
        order = list(range(len(header)))
        rng.shuffle(order)
        rows = [[x[i] for i in order] if len(x) == len(header) else x for x in rows]
    elif kind in ("cell", "count") and body and r >= start:
        col = rng.choice(src.counts) if kind == "count" else header[k]
        if col in header and len(body[r]) == len(header):
            body[r][header.index(col)] = rng.choice(EXTREMES)
    elif kind == "nul":
        pos = rng.randrange(len(src.data))
        data = src.data[:pos] + b"\x00" + src.data[pos:]
    elif kind == "bad_utf8":
        pos = rng.randrange(len(src.data))
        data = src.data[:pos] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe9"]) + \
            src.data[pos:]
    elif kind == "bom":
        data = rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]) + src.data
    elif kind == "cr":
        data = src.data.replace(b"\n", b"\r")
    elif kind == "crlf":
        data = src.data.replace(b"\n", b"\r\n")
    elif kind == "quoted_newline" and body and len(body[r]) > k:
        body[r][k] = body[r][k] + "\nsecond line,\r\nthird"
    elif kind == "gzip":
        data = gzip.compress(src.data)
        if rng.random() < 0.3:
            data = gzip.compress(data)
    elif kind == "gzip_truncated":
        z = gzip.compress(src.data)
        data = z[: rng.randrange(2, len(z))]
    elif kind == "drop_rows":
        rows = [header] + [x for x in body if rng.random() < 0.5]
    elif kind == "blank_lines":
        data = src.data.replace(b"\n", b"\n\n", rng.randint(1, 5))
    elif kind == "ragged" and body:
        body[r] = body[r][: rng.randrange(len(body[r]) + 1)] + ([] if rng.random() < .5 else ["x"])
    elif kind == "header_only":
        rows = [header]
    elif kind == "dup_row" and body:
        rows.append(list(body[r]))
    elif kind == "dup_id" and len(body) > 1 and r >= start:
        other = list(body[rng.randrange(start, len(body))])
        other[0] = body[r][0]
        rows.append(other)
    if data is None:
        data = _write(rows, src.encoding)
    return data


# -- the oracle ----------------------------------------------------------------------------------


def independent_count(data: bytes, src: Source) -> int | None:
    """How many records the csv module finds (None when it cannot read the text at all)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except Exception:  # noqa: BLE001 - then culpa must refuse it
            return None
    enc = src.encoding
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if enc == "utf-8":
            return None
        text = data.decode("cp1252", errors="replace").lstrip("\ufeff").replace("ï»¿", "", 1)
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error:
        return None
    # An HDX copy's second record is the HXL hashtag row, which is no event -- but only when it
    # is there: a mutation may have dropped or damaged it (then it is a record like any other).
    tagged = [c.strip() for c in rows[1] if c.strip()] if len(rows) > 1 else []
    hxl = bool(tagged) and all(c.startswith("#") for c in tagged)
    return max(len(rows) - 1 - (1 if hxl else 0), 0)


@dataclass
class Tally:
    inputs: int = 0
    read: int = 0
    refused: int = 0
    stored: int = 0  # of the inputs, how many went through the store (the rest: the reader alone)
    seconds: float = 0.0
    problems: list = field(default_factory=list)

    def add(self, other: Tally) -> Tally:
        return Tally(self.inputs + other.inputs, self.read + other.read,
                     self.refused + other.refused, self.stored + other.stored,
                     self.seconds + other.seconds, self.problems + other.problems)


#: One input in this many goes through the store too (the rest through the reader alone).
STORE_EVERY = 4

#: Stored values no real event has (the same limits the readers enforce).
IMPLAUSIBLE = (f"fatalities < 0 OR fatalities > {MAX_COUNT} OR abs(latitude) > 90 OR "
               f"abs(longitude) > 180 OR year(time_start) < 1000 OR year(time_start) > 9999 OR "
               f"time_end < time_start OR NOT isfinite(coalesce(location_precision_km, 0)) OR "
               f"NOT isfinite(date_precision_days) OR NOT isfinite(latitude) OR "
               f"NOT isfinite(longitude)")


def stored_problem(db, expected_total: int) -> str | None:
    """What is wrong with a store just written (None: every row unique and plausible)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        n, ids, bad = con.execute(f"SELECT count(*), count(DISTINCT id), "
                                  f"count(*) FILTER (WHERE {IMPLAUSIBLE}) FROM events").fetchone()
    finally:
        con.close()
    if n != ids or n != expected_total or bad:
        return f"{n} rows, {ids} ids, {bad} implausible, {expected_total} expected"
    return None


def _refusal_problem(exc: InputError) -> str | None:
    if exc.file is None:
        return "refusal names no file"
    if exc.line is None and exc.field is None and exc.path is None and \
            not _whole_file_problem(str(exc)):
        return "refusal names no line, field or key path"
    return None


def check_read(data: bytes, src: Source, tmp, tally: Tally, i: int) -> None:
    """One input through the reader alone (what the store calls), with the same oracle."""
    from culpa.events import readers
    from culpa.events.readers.base import check_regular_file

    path = tmp / f"{src.name}_{i}.csv"
    path.write_bytes(data)
    tally.inputs += 1
    try:
        name = src.fmt if src.fmt != "auto" else readers.detect_format(path)
        kwargs = {"mapping": src.mapping} if name == "csv" else {}
        check_regular_file(path)
        tables = list(readers.READERS[name].read(path, ALIASES, None, **kwargs))
    except InputError as exc:
        tally.refused += 1
        if (why := _refusal_problem(exc)) is not None:
            tally.problems.append((why, src.name, i, str(exc)[:200]))
        path.unlink()
        return
    except BaseException as exc:  # noqa: BLE001 - that is the finding
        tally.problems.append(("internal error", src.name, i, f"{type(exc).__name__}: {exc}"[:300]))
        path.unlink()
        return
    tally.read += 1
    rows = sum(t.num_rows for t in tables)
    expected = independent_count(data, src)
    if expected is not None and rows != expected:
        tally.problems.append(("rows read differ from the csv module's", src.name, i,
                               f"{rows} vs {expected}"))
    for t in tables:
        d = t.select(["fatalities", "latitude", "longitude"]).to_pydict()
        if any(f is not None and not 0 <= f <= MAX_COUNT for f in d["fatalities"]) or any(
                v is not None and not abs(v) <= 90 for v in d["latitude"]) or any(
                v is not None and not abs(v) <= 180 for v in d["longitude"]):
            tally.problems.append(("stored wrong", src.name, i, "value out of range"))
    path.unlink()


ALIASES = __import__("culpa.events.actors", fromlist=["AliasTable"]).AliasTable.builtin()


def check_one(data: bytes, src: Source, tmp, tally: Tally, base_db, i: int) -> None:
    """One input through the library call the CLI makes (one in STORE_EVERY), or through the
    reader alone: read whole with the csv module's count, or refused naming its place, and a
    store that holds events unchanged by a refused input."""
    if i % STORE_EVERY:
        check_read(data, src, tmp, tally, i)
        return
    tally.stored += 1
    path = tmp / f"{src.name}_{i}.csv"
    path.write_bytes(data)
    fresh = tmp / f"fresh_{i}.duckdb"
    tally.inputs += 1
    try:
        report, total = ingest_files(fresh, [path], src.fmt, mapping=src.mapping)
    except InputError as exc:
        tally.refused += 1
        if (why := _refusal_problem(exc)) is not None:
            tally.problems.append((why, src.name, i, str(exc)[:200]))
        if fresh.exists():
            tally.problems.append(("store left behind", src.name, i, str(exc)[:200]))
        # the same input into a store that holds events: refused too, and nothing changes
        # (a repeated id is only refused among new events: stored ones are kept as they are)
        before = fingerprint(base_db)
        try:
            ingest_files(base_db, [path], src.fmt, mapping=src.mapping)
        except InputError:
            if fingerprint(base_db) != before:
                tally.problems.append(("changed store", src.name, i, str(exc)[:200]))
        except BaseException as exc2:  # noqa: BLE001 - that is the finding
            tally.problems.append(("internal error", src.name, i,
                                   f"{type(exc2).__name__}: {exc2}"[:300]))
        path.unlink()
        return
    except BaseException as exc:  # noqa: BLE001 - that is the finding
        tally.problems.append(("internal error", src.name, i, f"{type(exc).__name__}: {exc}"[:300]))
        path.unlink()
        return
    tally.read += 1
    expected = independent_count(data, src)
    if expected is not None and report.rows != expected:
        tally.problems.append(("rows read differ from the csv module's", src.name, i,
                               f"{report.rows} vs {expected}"))
    if (why := stored_problem(fresh, total)) is not None:
        tally.problems.append(("stored wrong", src.name, i, why))
    fresh.unlink()
    path.unlink()


def _whole_file_problem(message: str) -> bool:
    """Problems of the file as a whole, which have no line (its encoding, its compression)."""
    return any(w in message for w in ("gzip", "UTF-16", "UTF-32", "truncated", "corrupt",
                                      "binary", "empty", "mapping", "Parquet"))


def base_store(tmp, src: Source):
    db = tmp / f"base_{src.name}.duckdb"
    path = tmp / f"base_{src.name}.csv"
    path.write_bytes(src.data)
    ingest_files(db, [path], src.fmt, mapping=src.mapping)
    return db


def fuzz_csv(src: Source, indices, seed: int, tmp) -> Tally:
    """Inputs ``indices`` of the seeded run for ``src``; each input has its own generator, so any
    one of them can be made again alone (``mutate_csv(src, input_rng(seed, src.name, i))``) and
    a large run can be split between processes."""
    tally = Tally()
    base = base_store(tmp, src)
    start = time.perf_counter()
    for i in indices:
        check_one(mutate_csv(src, input_rng(seed, src.name, i)), src, tmp, tally, base, i)
    tally.seconds = time.perf_counter() - start
    return tally


def input_rng(seed: int, name: str, i: int) -> random.Random:
    return random.Random(f"{seed}-{name}-{i}")


def report(name: str, tally: Tally) -> None:
    print(f"\nfuzz {name}: {tally.inputs} inputs ({tally.stored} through the store), "
          f"{tally.read} read, {tally.refused} refused, {len(tally.problems)} problems: "
          f"{tally.problems[:5]}, {tally.seconds:.1f} s")


@pytest.mark.parametrize("src", SOURCES, ids=[s.name for s in SOURCES])
def test_mutated_real_files_are_read_whole_or_refused_with_their_place(src, tmp_path,
                                                                      fuzz_count, fuzz_seed):
    tally = fuzz_csv(src, range(fuzz_count or 12), fuzz_seed, tmp_path)
    report(src.name, tally)
    assert tally.problems == []
    assert tally.read and tally.refused or not fuzz_count or fuzz_count < 50


# -- Parquet -------------------------------------------------------------------------------------


def parquet_table(rng: random.Random, kind: str | None = None) -> pa.Table:
    rows = list(csv.reader(io.StringIO(SOURCES[4].data.decode(), newline="")))
    h, body = rows[0], rows[1:]
    col = {name: [r[i] for r in body] for i, name in enumerate(h)}
    day = [f"{d[6:10]}-{d[3:5]}-{d[0:2]}" for d in col["date_reported"]]
    t = {"incident_no": pa.array(col["incident_no"]),
         "when": pa.array([__import__("datetime").date.fromisoformat(d) for d in day], pa.date32()),
         "lat": pa.array([float(x) for x in col["lat"]]),
         "lon": pa.array([float(x) for x in col["lon"]]),
         "perpetrator": pa.array([x or None for x in col["perpetrator"]]),
         "killed": pa.array([int(x) for x in col["killed"]], pa.int64())}
    kind = kind or rng.choice(["date32_max", "ts_min", "ts_tz", "huge_int", "float_nan", "float_inf",
                       "string_dates", "bad_string_dates", "dict", "nulls", "drop", "dup_ids",
                       "wrong_type", "lat_out", "ok"])
    n = len(body)
    j = rng.randrange(n)
    if kind == "date32_max":
        t["when"] = pa.array([2**31 - 1 if k == j else 0 for k in range(n)], pa.int32()) \
            .cast(pa.date32())
    elif kind == "ts_min":
        t["when"] = pa.array([-(2**62) if k == j else 0 for k in range(n)], pa.timestamp("us"))
    elif kind == "ts_tz":
        t["when"] = pa.array([k * 86400 for k in range(n)], pa.timestamp("s", tz="Asia/Baghdad"))
    elif kind == "huge_int":
        t["killed"] = pa.array([2**62 if k == j else 1 for k in range(n)], pa.int64())
    elif kind == "float_nan":
        t["lat"] = pa.array([math.nan if k == j else 35.0 for k in range(n)])
    elif kind == "float_inf":
        t["killed"] = pa.array([math.inf if k == j else 1.0 for k in range(n)])
    elif kind == "string_dates":
        t["when"] = pa.array(day)
    elif kind == "bad_string_dates":
        t["when"] = pa.array([rng.choice(EXTREMES[10:16]) if k == j else d
                              for k, d in enumerate(day)])
    elif kind == "dict":
        t["perpetrator"] = t["perpetrator"].dictionary_encode()
    elif kind == "nulls":
        t["when"] = pa.array([None] * n, pa.date32())
    elif kind == "drop":
        del t[rng.choice(list(t))]
    elif kind == "dup_ids":
        t["incident_no"] = pa.array(["same"] * n)
    elif kind == "wrong_type":
        t["lat"] = pa.array([[1.0]] * n)
    elif kind == "lat_out":
        t["lat"] = pa.array([95.0 if k == j else 35.0 for k in range(n)])
    return pa.table(t)


def parquet_input(rng: random.Random) -> bytes:
    buf = io.BytesIO()
    pq.write_table(parquet_table(rng), buf)
    data = buf.getvalue()
    if rng.random() < 0.25:  # damaged bytes too
        b = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        data = bytes(b)
    return data


def _parquet_rows(path) -> int | None:
    """How many rows pyarrow itself reads from the file (None when it cannot read it)."""
    try:
        return pq.read_table(path).num_rows
    except Exception:  # noqa: BLE001 - then culpa must refuse it (or read what pyarrow reads)
        return None


def fuzz_parquet(indices, seed: int, tmp) -> Tally:
    """Mutated Parquet files: every one through the store, into a new store (read whole: as many
    rows as pyarrow reads, every value plausible) and, when refused, into one holding events."""
    tally = Tally()
    base = tmp / "base.duckdb"
    first = tmp / "first.parquet"
    pq.write_table(parquet_table(random.Random(0), "ok").select(
        ["incident_no", "when", "lat", "lon", "perpetrator", "killed"]), first)
    ingest_files(base, [first], "csv", mapping=PARQUET_MAP)
    start = time.perf_counter()
    for i in indices:
        data = parquet_input(input_rng(seed, "parquet", i))
        path = tmp / f"p{i}.parquet"
        path.write_bytes(data)
        fresh = tmp / f"f{i}.duckdb"
        tally.inputs += 1
        tally.stored += 1
        try:
            rep, total = ingest_files(fresh, [path], "csv", mapping=PARQUET_MAP)
        except InputError as exc:
            tally.refused += 1
            if (why := _refusal_problem(exc)) is not None:
                tally.problems.append((why, "parquet", i, str(exc)[:200]))
            if fresh.exists():
                tally.problems.append(("store left behind", "parquet", i, str(exc)[:200]))
            before = fingerprint(base)
            try:
                ingest_files(base, [path], "csv", mapping=PARQUET_MAP)
            except InputError:
                pass
            except BaseException as exc2:  # noqa: BLE001
                tally.problems.append(("internal error", "parquet", i,
                                       f"{type(exc2).__name__}: {exc2}"[:300]))
            if fingerprint(base) != before:
                tally.problems.append(("changed store", "parquet", i, str(exc)[:200]))
        except BaseException as exc:  # noqa: BLE001 - that is the finding
            tally.problems.append(("internal error", "parquet", i,
                                   f"{type(exc).__name__}: {exc}"[:300]))
        else:
            tally.read += 1
            expected = _parquet_rows(path)
            if expected is not None and rep.rows != expected:
                tally.problems.append(("rows read differ from pyarrow's", "parquet", i,
                                       f"{rep.rows} vs {expected}"))
            if (why := stored_problem(fresh, total)) is not None:
                tally.problems.append(("stored wrong", "parquet", i, why))
            fresh.unlink()
        path.unlink()
    tally.seconds = time.perf_counter() - start
    return tally


def test_mutated_parquet_files_are_read_whole_or_refused(tmp_path, fuzz_count, fuzz_seed):
    tally = fuzz_parquet(range(fuzz_count or 12), fuzz_seed, tmp_path)
    report("parquet", tally)
    assert tally.problems == []


# -- case and sites files ------------------------------------------------------------------------

K1 = (REPO / "examples" / "k1_airbase.yaml").read_text()
SITES = (REPO / "examples" / "sites_syria.yaml").read_text()
YAML_BITS = ["&a x", "*a", "[", "{", "- ", ": ", "!!python/object:os.system", "9" * 400,
             "1.0e+300", ".nan", "-.inf", "2018-02-30", "2018-13-01", "25:00:00", "[A]", "{x: 1}",
             "\t", "\x00", "\ufeff", "'", '"', "---", "...", "%YAML 1.1", "<<: {a: 1}", "? x",
             "|", ">", "~", "yes", "0o17", "0x1F", "é", "\u202e"]


def mutate_yaml(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    kind = rng.choice(["insert", "insert", "replace_value", "delete_line", "duplicate_line",
                       "flip", "truncate", "bomb", "nest", "crlf", "indent"])
    k = rng.randrange(len(lines))
    if kind == "insert":
        pos = rng.randrange(len(lines[k]) + 1)
        lines[k] = lines[k][:pos] + rng.choice(YAML_BITS) + lines[k][pos:]
    elif kind == "replace_value" and ":" in lines[k]:
        key = lines[k].split(":", 1)[0]
        lines[k] = f"{key}: {rng.choice(YAML_BITS)}"
    elif kind == "delete_line":
        del lines[k]
    elif kind == "duplicate_line":
        lines.insert(k, lines[k])
    elif kind == "flip":
        chars = list(text)
        for _ in range(rng.randint(1, 5)):
            chars[rng.randrange(len(chars))] = chr(rng.randrange(1, 0x3000))
        return "".join(chars)
    elif kind == "truncate":
        return text[: rng.randrange(len(text))]
    elif kind == "bomb":
        return "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    elif kind == "nest":
        d = rng.choice([10, 100, 1000, 10000])
        return rng.choice(["[" * d, "{a: " * d, "".join(" " * i + "a:\n" for i in range(d))])
    elif kind == "crlf":
        return text.replace("\n", "\r\n")
    elif kind == "indent":
        lines[k] = " " * rng.randint(1, 7) + lines[k]
    return "\n".join(lines)


#: A case or sites file is parsed or refused within this many seconds, whatever it holds.
YAML_SECONDS = 2.0


def fuzz_yaml(indices, seed: int) -> Tally:
    """Mutated case files (even inputs) and sites files (odd ones): parsed, or refused naming
    the file and a line or key path, each within YAML_SECONDS."""
    from culpa.evidence.case import parse_case
    from culpa.sites import parse_sites

    tally, slowest = Tally(), 0.0
    start = time.perf_counter()
    for i in indices:
        is_case = i % 2 == 0
        text = mutate_yaml(K1 if is_case else SITES, input_rng(seed, "yaml", i))
        name = "case.yaml" if is_case else "sites.yaml"
        tally.inputs += 1
        t0 = time.perf_counter()
        try:
            (parse_case if is_case else parse_sites)(text, name)
            tally.read += 1
        except InputError as exc:
            tally.refused += 1
            if exc.file != name:
                tally.problems.append(("unnamed file", "yaml", i, str(exc)))
            elif exc.line is None and exc.path is None and "characters long" not in str(exc):
                tally.problems.append(("unplaced refusal", "yaml", i, str(exc)))
        except BaseException as exc:  # noqa: BLE001 - that is the finding
            tally.problems.append(("internal error", "yaml", i,
                                   f"{type(exc).__name__}: {exc}"[:300], text[:300]))
        took = time.perf_counter() - t0
        slowest = max(slowest, took)
        if took > YAML_SECONDS:
            tally.problems.append(("slow", "yaml", i, f"{took:.2f} s"))
    tally.seconds = time.perf_counter() - start
    tally.slowest = slowest  # type: ignore[attr-defined]
    return tally


def test_mutated_case_and_sites_files_are_parsed_or_refused_fast(fuzz_count, fuzz_seed):
    tally = fuzz_yaml(range(fuzz_count or 120), fuzz_seed)
    report("case/sites yaml", tally)
    print(f"slowest {tally.slowest:.3f} s")
    assert tally.problems == [] and tally.read and tally.refused


# -- a sample through the real command line ----------------------------------------------------


def cli_sample(indices, seed: int, tmp) -> Tally:
    """Mutated files of the self-describing formats through the real ``culpa ingest --json``:
    exit 0 with the csv module's count, or exit 2 with one JSON error naming the file; never
    another exit code, never a traceback."""
    auto = [s for s in SOURCES if s.fmt == "auto"]
    tally = Tally()
    start = time.perf_counter()
    for i in indices:
        src = auto[i % len(auto)]
        data = mutate_csv(src, input_rng(seed, "cli-" + src.name, i))
        path = tmp / f"in{i}.csv"
        path.write_bytes(data)
        db = tmp / f"s{i}.duckdb"
        proc = culpa("ingest", path, "--db", db, "--json")
        tally.inputs += 1
        tally.stored += 1
        try:
            doc = __import__("json").loads(proc.stdout)
        except ValueError:
            doc = None
        if proc.returncode not in (0, 2) or "Traceback" in proc.stderr or doc is None:
            tally.problems.append(("CLI exit", src.name, i,
                                   f"exit {proc.returncode}: {proc.stderr[-300:]}"))
        elif proc.returncode == 2:
            tally.refused += 1
            if doc.get("exit_code") != 2 or doc.get("file") != str(path):
                tally.problems.append(("CLI refusal names no file", src.name, i, str(doc)[:300]))
            if db.exists():
                tally.problems.append(("store left behind", src.name, i, str(doc)[:300]))
        else:
            tally.read += 1
            expected = independent_count(data, src)
            if expected is not None and doc["rows"] != expected:
                tally.problems.append(("rows read differ from the csv module's", src.name, i,
                                       f"{doc['rows']} vs {expected}"))
            if (why := stored_problem(db, doc["events_in_store"])) is not None:
                tally.problems.append(("stored wrong", src.name, i, why))
            db.unlink()
        path.unlink()
    tally.seconds = time.perf_counter() - start
    return tally


def test_a_sample_through_the_command_line_exits_0_or_2_without_a_traceback(tmp_path,
                                                                            fuzz_count,
                                                                            fuzz_seed):
    tally = cli_sample(range(max(2, (fuzz_count or 0) // 250)), fuzz_seed, tmp_path)
    report("command line", tally)
    assert tally.problems == []
