"""Any CSV (plain or gzip) or Parquet file of events, read through a column mapping.

The mapping says which column holds which field of the event schema, on the command line::

    culpa ingest events.csv --format csv --map time=date --map latitude=lat \\
        --map longitude=lon --map actor=perpetrator --map source=myproject

or as a YAML file (``--mapping FILE``; ``--map`` pairs override it)::

    id: event_id
    time: date                # or time_start: ... and time_end: ...
    latitude: lat
    longitude: lon
    actor: perpetrator
    source: myproject         # options, not columns: source name (default "csv"),
    date_format: "%d/%m/%Y"   # strptime format of text dates (default ISO 8601),
    id_prefix: myproject      # prefix of event ids (default: the source name),
    actor_separator: ";"      # split coalition actors on this (default: never split)

Mappable fields: id, time (or time_start + time_end), latitude, longitude, actor, attribution,
event_type, fatalities, country, admin1, admin2, location_precision_km, date_precision_days,
other_actor. time (or time_start), latitude and longitude are required.

Defaults and rules:

- id: ``<id_prefix>:<value of the id column>``; with no id column ``<id_prefix>:<file
  stem>:<row>`` (row = 1-based record number), stable as long as the file keeps its name and
  row order: re-ingesting it adds nothing. The stem drops .gz and the format suffix, so
  ``log.csv`` and ``log.csv.gz`` give the same ids.
- time_end defaults to time_start; date_precision_days to 1 day, and never less than the span
  time_start..time_end. location_precision_km defaults to 1 km.
- latitude/longitude: both blank stores the event with null coordinates (as for GTD; the model
  drops them); only one blank is an error.
- actor is resolved through the alias table. attribution, when mapped, must be one of
  claimed / attributed / suspected / disputed / unattributed (any case); blank or unmapped:
  "attributed" when there is an actor, else "unattributed". An event whose actor is blank or
  unidentified is "unattributed" even if its attribution column says claimed/attributed/suspected
  (those describe an actor label it does not have); "disputed" is kept.
- Parquet columns may be typed (numbers, timestamps, dates) or text; CSV columns are text.
  Errors name the file, the line (CSV) or the row (Parquet; given as the line number too) and
  the column.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import re

import numpy as np
import pandas as pd
import pyarrow as pa

from culpa import yamldoc
from culpa.errors import InputError
from culpa.events.readers.base import (
    Batch, CsvSource, Progress, _out_of_years, build_table, cell_value, check_counts, check_regular_file,
    check_unique_columns, parse_times, resolve_actors, show_value, sniff_encoding, text,
    to_float)
from culpa.inputs import read_text
from culpa.events.schema import ATTRIBUTION_STATUSES

FORMAT = "csv"

#: Event fields a column can be mapped to.
FIELDS = ("id", "time", "time_start", "time_end", "latitude", "longitude", "actor", "attribution",
          "event_type", "fatalities", "country", "admin1", "admin2", "location_precision_km",
          "date_precision_days", "other_actor")
#: Settings that are not columns.
OPTIONS = ("source", "date_format", "id_prefix", "actor_separator")

DEFAULT_SOURCE = "csv"
DEFAULT_LOCATION_KM = 1.0
DEFAULT_DATE_DAYS = 1.0
PARQUET_MAGIC = b"PAR1"
PARQUET_BATCH_ROWS = 65536

NO_MAPPING = "needs a column mapping (FIELD=COLUMN pairs or a mapping file)"

#: strptime directives a date_format may use (others make pandas fail or mean nothing here).
_DATE_DIRECTIVES = set("aAbBdHIjmMpSyYfzZ%")


def detect(columns: list[str]) -> bool:
    """Never: a header alone cannot say which column is which; the generic reader is chosen by
    ``--format csv`` (or a .parquet file name) and a mapping."""
    return False


# -- the mapping ---------------------------------------------------------------------------------


def parse_mapping(pairs: list[str], yaml_file: Path | None = None) -> dict:
    """The column mapping from a YAML file and FIELD=COLUMN pairs (pairs win), checked."""
    mapping: dict[str, str] = {}
    origin = str(yaml_file) if yaml_file is not None else None
    if yaml_file is not None:
        doc = yamldoc.load(read_text(yaml_file, "mapping file"), origin)
        data = {} if doc.data is None else doc.data
        if not isinstance(data, dict):
            raise doc.fail("", "must map event fields to column names (field: column)")
        for key, value in data.items():
            if value is None or isinstance(value, (dict, list)):
                raise doc.fail(str(key), "must be a column name")
            mapping[str(key)] = str(value)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"{pair!r} is not FIELD=COLUMN", field="pairs")
        mapping[key.strip()] = value.strip()
    check_mapping(mapping, origin)
    return mapping


def check_mapping(mapping: dict, origin: str | None = None) -> None:
    """Every key is a known field or option, and the required fields are there."""
    for key in mapping:
        if key not in FIELDS and key not in OPTIONS:
            raise InputError(
                f"unknown field {key!r}; mappable fields are {', '.join(FIELDS)} "
                f"(options: {', '.join(OPTIONS)})", file=origin, field=key)
    if "time" in mapping and ("time_start" in mapping or "time_end" in mapping):
        raise InputError("map either time, or time_start (and time_end), not both",
                         file=origin, field="time")
    missing = [f for f in ("latitude", "longitude") if f not in mapping]
    if "time" not in mapping and "time_start" not in mapping:
        missing.insert(0, "time")
    if missing:
        raise InputError(f"the mapping must give a column for {', '.join(missing)}",
                         file=origin, field=missing[0])
    for key, value in mapping.items():
        if not isinstance(value, str):
            raise InputError(f"must be text, not {value!r}", file=origin, field=key)
    for key in ("source", "id_prefix"):
        value = mapping.get(key)
        if value is not None and (not value or ":" in value or value != value.strip()):
            raise InputError(f"{value!r} must be a plain name (no ':' or surrounding spaces)",
                             file=origin, field=key)
    if mapping.get("actor_separator") == "":
        raise InputError("must not be empty (leave it out to never split actors)",
                         file=origin, field="actor_separator")
    if "date_format" in mapping:
        check_date_format(mapping["date_format"], origin)


def check_date_format(fmt: str, origin: str | None = None) -> None:
    """A strptime format made of the directives dates use, with at least one of them."""
    directives = re.findall(r"%(.?)", fmt)
    unknown = [d for d in directives if d not in _DATE_DIRECTIVES]
    if unknown or not [d for d in directives if d != "%"]:
        what = f"'%{unknown[0]}' is not a date directive" if unknown and unknown[0] \
            else "a lone '%' ends it" if unknown else "it holds no date directive (%Y, %m, %d...)"
        raise InputError(f"{fmt!r} is not a usable strptime format: {what} (use e.g. %d/%m/%Y)",
                         file=origin, field="date_format")


# -- Parquet, with the same interface as CsvSource ----------------------------------------------


class ParquetSource:
    """A Parquet file streamed in record batches; errors name the row (1-based) as the line."""

    def __init__(self, path: Path, progress: Progress | None = None):
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.progress = progress
        try:
            self.file = pq.ParquetFile(self.path)
            self.columns = list(self.file.schema_arrow.names)
        except (pa.ArrowException, OSError, ValueError, TypeError, IndexError) as exc:
            raise InputError(f"cannot read Parquet file: {exc}", file=str(self.path)) from None
        check_unique_columns(self.columns, str(self.path))
        for f in self.file.schema_arrow:  # a damaged or unknown time zone name in the schema
            if pa.types.is_timestamp(f.type) and f.type.tz is not None:
                try:
                    pa.array([0], f.type).cast(pa.string())
                except (pa.ArrowException, ValueError) as exc:
                    raise InputError(f"the column's time zone cannot be used: {exc}",
                                     file=str(self.path), field=f.name) from None

    def batches(self) -> Iterator[Batch]:
        total_rows = max(self.file.metadata.num_rows, 1)
        size = self.path.stat().st_size
        row = 0
        try:
            for rb in self.file.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                if rb.num_rows == 0:
                    continue
                table = pa.Table.from_batches([rb])
                self._check_text(table, row)
                for i, field in enumerate(table.schema):  # categorical columns: plain values
                    if pa.types.is_dictionary(field.type):
                        table = table.set_column(i, field.name,
                                                 table.column(i).cast(field.type.value_type))
                yield Batch(table.to_pandas(types_mapper=pd.ArrowDtype), row, table)
                if self.progress is not None:
                    self.progress(size * rb.num_rows // total_rows)
                row += rb.num_rows
        except (pa.ArrowException, OSError, ValueError, TypeError, IndexError) as exc:
            raise InputError(f"cannot read Parquet file ({exc}); nothing was ingested",
                             file=str(self.path), line=row + 1) from None

    def _check_text(self, table: pa.Table, row: int) -> None:
        """Refuse text that is not UTF-8 (a damaged page: Parquet has no checksum by default),
        naming its row and column."""
        for name, col in zip(table.column_names, table.columns):
            t = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
            if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
                continue
            try:
                col.validate(full=True)
            except pa.ArrowInvalid:
                values = col.cast(t).cast(pa.binary() if pa.types.is_string(t)
                                          else pa.large_binary()).to_pylist() \
                    if not pa.types.is_dictionary(col.type) else [None] * len(col)
                bad = 0
                for k, v in enumerate(values):
                    try:
                        if v is not None:
                            v.decode("utf-8")
                    except UnicodeDecodeError:
                        bad = k
                        break
                raise InputError(f"row {row + bad + 1}: not valid UTF-8 text",
                                 file=str(self.path), line=row + bad + 1, field=name) from None

    def fail(self, batch: Batch, mask, field: str, problem: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        i = int(np.argmax(mask))
        row = batch.first_row + i + 1
        value = cell_value(batch, field, i)
        raise InputError(f"row {row}: {problem} (value {show_value(value)})", file=str(self.path),
                         line=row, field=field)


def is_parquet(path: Path) -> bool:
    check_regular_file(path)
    with open(path, "rb") as fh:
        return fh.read(4) == PARQUET_MAGIC


def file_stem(path: Path) -> str:
    """``events`` for events.csv, events.csv.gz, events.parquet."""
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    return Path(name).stem


def open_source(path: Path, progress: Progress | None) -> CsvSource | ParquetSource:
    if is_parquet(path):
        return ParquetSource(path, progress)
    return CsvSource(path, (), progress, encoding=sniff_encoding(path))


# -- typed columns: text in CSV, text or typed in Parquet ----------------------------------------


def _arrow_type(s: pd.Series) -> pa.DataType:
    return s.dtype.pyarrow_dtype if isinstance(s.dtype, pd.ArrowDtype) else pa.string()


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _wrong_type(src, col: str, field: str, t: pa.DataType, expected: str) -> InputError:
    return InputError(f"column {col!r} (mapped to {field}) holds {t}, expected {expected}",
                      file=str(src.path), field=col)


def numbers(src, batch: Batch, col: str, field: str) -> np.ndarray:
    s = batch.frame[col]
    t = _arrow_type(s)
    if _is_text(t):
        val, bad = to_float(s)
        src.fail(batch, bad, col, f"{field}: not a number")
        return val
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return s.to_numpy(dtype=float, na_value=np.nan)
    if pa.types.is_null(t):
        return np.full(len(s), np.nan)
    raise _wrong_type(src, col, field, t, "numbers")


def times(src, batch: Batch, col: str, field: str, fmt: str | None) -> np.ndarray:
    s = batch.frame[col]
    t = _arrow_type(s)
    if _is_text(t):
        val, bad = text_times(s, fmt)
        src.fail(batch, bad, col, f"{field}: not a date ({'ISO 8601' if fmt is None else fmt})")
        return val
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        val = typed_times(s)
        src.fail(batch, _out_of_years(val), col, f"{field}: date outside the years 1000-9999")
        return val
    if pa.types.is_null(t):
        return np.full(len(s), np.datetime64("NaT"), dtype="datetime64[s]")
    raise _wrong_type(src, col, field, t, "dates (text or a date/timestamp column)")


def typed_times(s: pd.Series) -> np.ndarray:
    """A Parquet date or timestamp column as datetime64[s] (instants in UTC), computed in
    int64 seconds so that no extreme value wraps around."""
    arr = pa.chunked_array(s.array._pa_array).combine_chunks() \
        if isinstance(s.dtype, pd.ArrowDtype) else pa.array(s)
    t = arr.type
    if pa.types.is_date32(t):
        secs = arr.cast(pa.int32()).cast(pa.int64()).to_numpy(zero_copy_only=False)
        secs = np.asarray(secs, dtype=float) * 86400
    elif pa.types.is_date64(t):
        secs = np.asarray(arr.cast(pa.int64()).to_numpy(zero_copy_only=False), float) / 1000
    else:
        per = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[t.unit]
        secs = np.asarray(arr.cast(pa.int64()).to_numpy(zero_copy_only=False), float) / per
    secs = np.floor(secs)
    null = np.isnan(secs) | (np.abs(secs) > 2.0**62)  # beyond numpy's datetime64[s] range
    out = np.where(null, 0, secs).astype(np.int64).astype("datetime64[s]")
    out[null & ~np.isnan(secs)] = np.datetime64(f"{10_000 + 1}-01-01")  # refused as out of years
    out[np.isnan(secs)] = np.datetime64("NaT")
    return out


def text_times(s: pd.Series, fmt: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Text dates or times; those with a UTC offset ("...T21:30:00+03:00", "...Z") become UTC,
    those without are taken as written."""
    return parse_times(s, fmt)


def texts(src, batch: Batch, col: str, field: str) -> pd.Series:
    s = batch.frame[col]
    t = _arrow_type(s)
    if _is_text(t):
        return text(s)
    if pa.types.is_integer(t) or pa.types.is_null(t) or pa.types.is_boolean(t) \
            or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_dictionary(t):
        return text(s.astype(pd.ArrowDtype(pa.string())))
    raise _wrong_type(src, col, field, t, "text")


# -- reading -------------------------------------------------------------------------------------


def read(path: Path, aliases, progress: Progress | None = None,
         mapping: dict | None = None) -> Iterator[pa.Table]:
    path = Path(path)
    if not mapping:
        raise InputError(NO_MAPPING, file=str(path))
    check_mapping(mapping)
    src = open_source(path, progress)
    for field in FIELDS:
        col = mapping.get(field)
        if col is not None and col not in src.columns:
            shown = ", ".join(src.columns[:20]) + (", ..." if len(src.columns) > 20 else "")
            raise InputError(f"the mapping says {field}={col}, but the file has no column "
                             f"{col!r} (columns: {shown})", file=str(path),
                             line=1 if isinstance(src, CsvSource) else None, field=field)
    source = mapping.get("source", DEFAULT_SOURCE)
    prefix = mapping.get("id_prefix", source)
    fmt = mapping.get("date_format")
    sep = mapping.get("actor_separator")
    source_file = str(path.resolve())
    for batch in src.batches():
        yield _convert(src, batch, mapping, source, prefix, fmt, sep, aliases, path, source_file)


def _convert(src, batch: Batch, m: dict, source: str, prefix: str, fmt: str | None,
             sep: str | None, aliases, path: Path, source_file: str) -> pa.Table:
    n = len(batch.frame)

    def col(field: str) -> str | None:
        return m.get(field)

    def optional_text(field: str) -> pd.Series | None:
        return texts(src, batch, col(field), field) if col(field) else None

    if col("id"):
        raw_id = texts(src, batch, col("id"), "id")
        src.fail(batch, raw_id.isna().to_numpy(), col("id"), "id: event id is missing")
        ids = prefix + ":" + raw_id
    else:
        stem = file_stem(path)
        ids = np.array([f"{prefix}:{stem}:{r}" for r in batch.rows()], dtype=object)

    start_col = col("time") or col("time_start")
    start_field = "time" if col("time") else "time_start"
    start = times(src, batch, start_col, start_field, fmt)
    src.fail(batch, np.isnat(start), start_col, f"{start_field}: date is missing")
    end = start
    if col("time_end"):
        end = times(src, batch, col("time_end"), "time_end", fmt)
        end = np.where(np.isnat(end), start, end)
        src.fail(batch, end < start, col("time_end"), "time_end: is before time_start")
    span = (end - start).astype("timedelta64[s]").astype(np.int64) / 86400.0

    lat = numbers(src, batch, col("latitude"), "latitude")
    lon = numbers(src, batch, col("longitude"), "longitude")
    with np.errstate(invalid="ignore"):
        src.fail(batch, np.abs(lat) > 90, col("latitude"), "latitude out of range [-90, 90]")
        src.fail(batch, np.abs(lon) > 180, col("longitude"), "longitude out of range [-180, 180]")
    src.fail(batch, np.isnan(lat) & ~np.isnan(lon), col("latitude"),
             "latitude is missing but longitude is given")
    src.fail(batch, np.isnan(lon) & ~np.isnan(lat), col("longitude"),
             "longitude is missing but latitude is given")
    placed = ~np.isnan(lat)

    km = np.full(n, DEFAULT_LOCATION_KM)
    if col("location_precision_km"):
        given = numbers(src, batch, col("location_precision_km"), "location_precision_km")
        with np.errstate(invalid="ignore"):
            src.fail(batch, (given < 0) | np.isinf(given), col("location_precision_km"),
                     "location_precision_km: must be a finite number >= 0")
        km = np.where(np.isnan(given), km, given)
    km = np.where(placed, km, np.nan)

    days = np.full(n, DEFAULT_DATE_DAYS)
    if col("date_precision_days"):
        given = numbers(src, batch, col("date_precision_days"), "date_precision_days")
        with np.errstate(invalid="ignore"):
            src.fail(batch, (given <= 0) | np.isinf(given), col("date_precision_days"),
                     "date_precision_days: must be a finite number > 0")
        days = np.where(np.isnan(given), days, given)
    if col("time_end"):
        days = np.fmax(days, span + 1.0)

    if col("actor"):
        actor_raw = texts(src, batch, col("actor"), "actor")
        actor, members = resolve_actors(actor_raw, aliases, sep=sep)
        has_actor = actor.notna().to_numpy(dtype=bool)
    else:
        actor_raw = actor = members = None
        has_actor = np.zeros(n, dtype=bool)
    attribution = np.where(has_actor, "attributed", "unattributed").astype(object)
    if col("attribution"):
        given = texts(src, batch, col("attribution"), "attribution").str.lower()
        unknown = ~given.isna().to_numpy(dtype=bool) & \
            ~given.isin(ATTRIBUTION_STATUSES).fillna(False).to_numpy(dtype=bool)
        src.fail(batch, unknown, col("attribution"),
                 f"attribution: must be one of {', '.join(ATTRIBUTION_STATUSES)}")
        given = given.to_numpy(dtype=object, na_value=None)
        attribution = np.where(pd.isna(given), attribution, given).astype(object)
        # a status about an actor label needs a label
        labelled = np.isin(attribution, ("claimed", "attributed", "suspected"))
        attribution[labelled & ~has_actor] = "unattributed"

    fatalities = None
    if col("fatalities"):
        fatalities = numbers(src, batch, col("fatalities"), "fatalities")
        check_counts(src, batch, fatalities, col("fatalities"), "fatalities")

    return build_table({
        "id": ids,
        "source": np.full(n, source, dtype=object),
        "time_start": start, "time_end": end, "date_precision_days": days,
        "latitude": lat, "longitude": lon, "location_precision_km": km,
        "country": optional_text("country"), "admin1": optional_text("admin1"),
        "admin2": optional_text("admin2"),
        "actor": actor, "actor_members": members if members is not None
        else [[] for _ in range(n)],
        "attribution": attribution,
        "event_type": optional_text("event_type"),
        "fatalities": fatalities,
        "actor_raw": actor_raw, "other_raw": optional_text("other_actor"),
        "source_file": np.full(n, source_file, dtype=object),
        "source_row": batch.rows(), "record": batch.records_json(),
    }, n)
