"""What every CSV reader shares: opening plain or gzip files, streaming string batches with
pyarrow, and turning a bad value into an error that names the file, line and field.

Readers parse every column as a string and convert in vectorised steps, so a bad value is
found by its row number; only then is the file rescanned with the csv module to name the
physical line (quoted fields may span lines, so row + 2 is not always the line).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from culpa.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
BLOCK_SIZE = 1 << 23  # 8 MiB of text per batch: memory stays flat whatever the file size

#: Progress callback: called with the number of bytes read from disk since the last call.
Progress = Callable[[int], None]


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


class _CountingReader(io.RawIOBase):
    """A binary stream that reports how many bytes it has read from the underlying file."""

    def __init__(self, raw: io.BufferedReader, progress: Progress | None):
        self._raw, self._progress, self._last = raw, progress, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        n = self._raw.readinto(b)
        if self._progress is not None:
            pos = self._raw.tell()
            self._progress(pos - self._last)
            self._last = pos
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_binary(path: Path, progress: Progress | None = None) -> io.BufferedIOBase:
    """Open a plain or gzip file as decompressed bytes; progress counts compressed bytes."""
    raw = _CountingReader(open(path, "rb"), progress)  # noqa: SIM115 - closed by caller
    buffered = io.BufferedReader(raw, buffer_size=1 << 20)
    if is_gzip(path):
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered


def read_header(path: Path) -> list[str]:
    """The column names on the first line, for format detection."""
    try:
        with open_binary(path) as fh:
            first = fh.readline()
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot read file: {exc}", file=str(path)) from None
    if not first.strip():
        raise InputError("file is empty (no header line)", file=str(path), line=1)
    text = first.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    return next(csv.reader([text]))


def has_hxl_row(path: Path) -> bool:
    """True when the second line is an HXL hashtag row (#date+start, ...), as in HDX exports."""
    with open_binary(path) as fh:
        fh.readline()
        second = fh.readline().decode("utf-8", errors="replace")
    cells = [c.strip() for c in next(csv.reader([second]), [])] if second else []
    tagged = [c for c in cells if c]
    return bool(tagged) and all(c.startswith("#") for c in tagged)


def sniff_encoding(path: Path) -> str:
    """"utf8" when the whole (decompressed) file is valid UTF-8, else "cp1252" (Windows Western,
    the encoding of e.g. the GTD export), else "latin-1", which decodes any byte.

    Streaming passes with incremental decoders, so memory stays flat; a UTF-8 file is read once.
    Only the five bytes cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) make it fall back
    to latin-1.
    """
    for encoding in ("utf-8", "cp1252"):
        if _decodes(path, encoding):
            return "utf8" if encoding == "utf-8" else encoding
    return "latin-1"


def _decodes(path: Path, encoding: str) -> bool:
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open_binary(path) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot read file: {exc}", file=str(path)) from None
    return True


@dataclass
class Batch:
    """A slice of a source file: every column as strings, and the index of its first data row."""

    frame: pd.DataFrame
    first_row: int  # 0-based index of the batch's first data row in the file
    raw: pa.RecordBatch | pa.Table | None = None  # the same rows as parsed, for provenance

    def rows(self) -> np.ndarray:
        """1-based record numbers of the batch's rows."""
        return np.arange(self.first_row + 1, self.first_row + 1 + len(self.frame), dtype=np.int64)

    def records_json(self) -> Records:
        """Each source record with its original columns, for provenance (see ``records_json``)."""
        raw = self.raw if self.raw is not None else pa.RecordBatch.from_pandas(
            self.frame, preserve_index=False)
        return records_json(raw)


class Records(NamedTuple):
    """Source records as JSON arrays ``["<layout>", value, ...]``, and the layout's columns."""

    json: pa.Array
    columns: tuple[str, ...]


def records_json(raw: pa.RecordBatch | pa.Table) -> Records:
    """Every row of ``raw`` as a JSON array of its values, led by the key of its column layout.

    Built with vectorised arrow string kernels (escape the few columns that need it, then one
    join), which runs in the reader's thread, beside the store's inserts.
    """
    from culpa.events.schema import record_layout

    columns = tuple(raw.schema.names)
    head = "[" + json.dumps(record_layout(columns))
    tokens = [_json_token(c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c)
              for c in raw.columns]
    if not tokens:
        return Records(pa.array([head + "]"] * raw.num_rows, pa.string()), columns)
    if all(quoted for _, quoted in tokens):
        # Strings without nulls (any CSV): one join puts the quotes with the separators.
        joined = pc.binary_join_element_wise(*[t for t, _ in tokens], '","')
        return Records(pc.binary_join_element_wise(head + ',"', joined, '"]', ""), columns)
    pieces: list = []
    pending = head
    for token, quoted in tokens:
        pieces += [pending + (',"' if quoted else ","), token]
        pending = '"' if quoted else ""
    out = pc.binary_join_element_wise(*pieces, pending + "]", "")
    return Records(out, columns)


_JSON_ESCAPES = {0x5C: "\\\\", 0x22: '\\"', 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f",
                 0x0D: "\\r"}
_PLAIN_BYTES = bytes(b for b in range(256) if b >= 0x20 and b not in (0x22, 0x5C))


def _escape_json(arr: pa.Array) -> pa.Array:
    """String values escaped for the inside of a JSON string: backslash, quote, control chars.

    Most columns hold none of these: a byte scan of the column finds out, and only the
    characters actually present are replaced. (UTF-8 continuation bytes are >= 0x80, so a
    byte scan cannot mistake part of a character for one of them.)
    """
    data = arr.buffers()[2]
    if data is None or data.size == 0:
        return arr
    b = np.frombuffer(data, np.uint8)
    if not ((b < 0x20).any() or (b == 0x22).any() or (b == 0x5C).any()):
        return arr
    present = set(data.to_pybytes().translate(None, _PLAIN_BYTES))
    for byte in sorted(present, key=lambda c: c != 0x5C):  # backslashes first
        arr = pc.replace_substring(arr, chr(byte), _JSON_ESCAPES.get(byte, f"\\u{byte:04x}"))
    return arr


def _json_token(col: pa.Array) -> tuple[pa.Array, bool]:
    """The column's values as JSON text, and whether that text still needs quotes around it
    (a string column without nulls: the quotes come with the separators, saving a pass)."""
    t = col.type
    if pa.types.is_dictionary(t):
        col, t = col.cast(t.value_type), t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = _escape_json(col.cast(pa.string()))
        if col.null_count == 0:
            return text, True
        return pc.fill_null(pc.binary_join_element_wise('"', text, '"', ""), "null"), False
    if pa.types.is_null(t):
        return pa.array(["null"] * len(col), pa.string()), False
    if pa.types.is_integer(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t):
        return pc.fill_null(col.cast(pa.string()), "null"), False
    if pa.types.is_floating(t):
        text = col.cast(pa.float64()).cast(pa.string())  # shortest repr that reads back the same
        text = pc.if_else(pc.match_substring_regex(text, r"^-?[0-9]+$"),
                          pc.binary_join_element_wise(text, ".0", ""), text)  # 2 -> 2.0
        for bad, name in (("nan", "NaN"), ("inf", "Infinity"), ("-inf", "-Infinity")):
            text = pc.if_else(pc.equal(text, bad), name, text)  # as Python's json writes them
        return pc.fill_null(text, "null"), False
    if pa.types.is_temporal(t):
        text = _escape_json(col.cast(pa.string()))
        return pc.fill_null(pc.binary_join_element_wise('"', text, '"', ""), "null"), False
    # Nested or binary values (rare, and only from Parquet): Python writes them.
    return pa.array([json.dumps(v, default=str, ensure_ascii=False) for v in col.to_pylist()],
                    pa.string()), False


class CsvSource:
    """A CSV file streamed as string batches, able to name the line of any data row."""

    def __init__(self, path: Path, required: tuple[str, ...] = (), progress: Progress | None = None,
                 encoding: str = "utf8"):
        self.path = Path(path)
        self.progress = progress
        self.encoding = encoding  # of the file's text; see sniff_encoding for files of unknown one
        self.columns = read_header(self.path)
        missing = [c for c in required if c not in self.columns]
        if missing:
            raise InputError(
                f"missing required column(s): {', '.join(missing)}", file=str(self.path), line=1,
                field=missing[0])
        self.skip_hxl = has_hxl_row(self.path)

    def batches(self) -> Iterator[Batch]:
        read_opts = pacsv.ReadOptions(
            block_size=BLOCK_SIZE, skip_rows_after_names=1 if self.skip_hxl else 0,
            encoding=self.encoding)
        convert = pacsv.ConvertOptions(
            column_types={c: pa.string() for c in self.columns}, strings_can_be_null=False,
            quoted_strings_can_be_null=False)
        row = 0
        stream = open_binary(self.path, self.progress)
        try:
            reader = pacsv.open_csv(stream, read_options=read_opts, convert_options=convert,
                                    parse_options=pacsv.ParseOptions(newlines_in_values=True))
            for record_batch in reader:
                if record_batch.num_rows == 0:
                    continue
                frame = record_batch.to_pandas(types_mapper=pd.ArrowDtype)
                yield Batch(frame, row, record_batch)
                row += record_batch.num_rows
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise self._truncated(exc) from None
        except pa.ArrowInvalid as exc:
            raise self._parse_error(exc, row) from None
        finally:
            stream.close()

    def _parse_error(self, exc: Exception, row: int) -> InputError:
        """pyarrow says what went wrong but not where: find the line with the csv module."""
        msg = str(exc)
        if "truncated" in msg.lower() or "compressed" in msg.lower() or "gzip" in msg.lower():
            return self._truncated(exc)
        line, width = self._first_ragged_line()
        if line is not None:
            return InputError(f"expected {len(self.columns)} columns, found {width}",
                              file=str(self.path), line=line)
        return InputError(f"cannot parse CSV: {msg}", file=str(self.path))

    def _truncated(self, exc: Exception) -> InputError:
        """Name the line where readable data stops."""
        line = 1
        try:
            for line, _rec in self._rows_with_lines():
                pass
        except (EOFError, zlib.error, gzip.BadGzipFile, csv.Error):
            pass
        return InputError(f"file is truncated or corrupt after this line ({exc}); "
                          "nothing was ingested", file=str(self.path), line=line)

    def _rows_with_lines(self) -> Iterator[tuple[int, list[str]]]:
        with open_binary(self.path) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")
            reader = csv.reader(text)
            start = 1
            for rec in reader:
                yield start, rec
                start = reader.line_num + 1

    def _first_ragged_line(self) -> tuple[int | None, int]:
        try:
            for i, (line, rec) in enumerate(self._rows_with_lines()):
                if i == 0 or (self.skip_hxl and i == 1) or not rec:
                    continue
                if len(rec) != len(self.columns):
                    return line, len(rec)
        except (EOFError, zlib.error, gzip.BadGzipFile, csv.Error):
            pass
        return None, 0

    def line_of_row(self, row: int) -> int | None:
        """Physical 1-based line where data row ``row`` (0-based) begins."""
        skip = 2 if self.skip_hxl else 1
        try:
            for i, (line, _rec) in enumerate(self._rows_with_lines()):
                if i == row + skip:
                    return line
                last = line
        except (EOFError, zlib.error, gzip.BadGzipFile, csv.Error):
            return None
        return last if row >= 0 else None

    def fail(self, batch: Batch, mask: np.ndarray | pd.Series, field: str, problem: str) -> None:
        """Raise for the first row where ``mask`` is true, naming its line, field and value."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        i = int(np.argmax(mask))
        value = batch.frame[field].iloc[i] if field in batch.frame.columns else None
        raise InputError(f"{problem} (value {value!r})", file=str(self.path),
                         line=self.line_of_row(batch.first_row + i), field=field)


# ---------------------------------------------------------------------------------------------
# Vectorised conversions shared by readers. Each returns the parsed values and a mask of cells
# that were present but could not be parsed, so the caller can name the field.


def blank(s: pd.Series) -> np.ndarray:
    return (s.isna() | (s.str.strip() == "")).to_numpy(dtype=bool)


def _arrow(s: pd.Series) -> pa.Array | None:
    """The pyarrow array behind an ArrowDtype string Series, if there is one."""
    arr = getattr(s.array, "_pa_array", None)
    if arr is None or not pa.types.is_string(arr.type):
        return None
    return arr


def to_float(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    arr = _arrow(s)
    if arr is not None:  # fast path: arrow's cast, exact when every cell is a number or blank
        trimmed = pc.utf8_trim_whitespace(arr)
        try:
            vals = pc.cast(pc.if_else(pc.equal(trimmed, ""), None, trimmed), pa.float64())
            out = vals.to_numpy(zero_copy_only=False)
            return np.asarray(out, dtype=float), np.zeros(len(out), dtype=bool)
        except pa.ArrowInvalid:
            pass  # some cell is not a number: the slow path below finds which
    values = pd.to_numeric(s.str.strip().replace("", None), errors="coerce")
    out = values.to_numpy(dtype=float, na_value=np.nan)
    bad = np.isnan(out) & ~blank(s)
    return out, bad


def to_date(s: pd.Series, fmt: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse dates (ISO by default) to datetime64[s]; bad = present but unparsable."""
    arr = _arrow(s)
    if arr is not None and fmt is None:  # fast path for plain ISO dates (YYYY-MM-DD)
        trimmed = pc.utf8_trim_whitespace(arr)
        present = pc.fill_null(pc.not_equal(trimmed, ""), False)
        parsed_a = pc.strptime(trimmed, format="%Y-%m-%d", unit="s", error_is_null=True)
        ok = pc.or_(pc.invert(present), pc.is_valid(parsed_a))
        if pc.all(ok).as_py() is not False:
            out = parsed_a.to_numpy(zero_copy_only=False).astype("datetime64[s]")
            return out, np.zeros(len(out), dtype=bool)
    txt = s.astype("string").str.strip()
    parsed = pd.to_datetime(txt, format=fmt or "ISO8601", errors="coerce")
    out = parsed.to_numpy(dtype="datetime64[s]")
    bad = np.isnat(out) & ~blank(s)
    return out, bad


def text(s: pd.Series) -> pd.Series:
    """Trimmed text, empty as null."""
    t = s.astype("string").str.strip()
    return t.where(t != "", None)


def resolve_actors(raw: pd.Series, aliases, sep: str | None) -> tuple[pd.Series, pd.Series]:
    """Canonical actor and member list for each raw string; work is done once per distinct name."""
    codes, uniques = pd.factorize(raw)  # missing values get code -1
    members = [aliases.resolve_members(u, sep=sep) for u in uniques]
    names = pa.array([aliases.coalition_name(m) for m in members] + [None], pa.string())
    lists = pa.array(members + [[]], pa.list_(pa.string()))
    take = pa.array(np.where(codes < 0, len(uniques), codes))
    actor = pd.Series(pd.arrays.ArrowExtensionArray(names.take(take)), index=raw.index)
    member_lists = pd.Series(pd.arrays.ArrowExtensionArray(lists.take(take)), index=raw.index)
    return actor, member_lists


def build_table(columns: dict[str, object], n: int) -> pa.Table:
    """Assemble one normalised batch; columns a reader does not give are null."""
    from culpa.events.schema import EVENT_SCHEMA, RECORD_COLUMNS_KEY

    arrays, metadata = [], {}
    for field in EVENT_SCHEMA:
        val = columns.get(field.name)
        if val is None:
            arrays.append(pa.nulls(n, type=field.type))
            continue
        if isinstance(val, Records):
            arrays.append(val.json)
            metadata[RECORD_COLUMNS_KEY] = json.dumps(list(val.columns)).encode()
            continue
        if isinstance(val, (pa.Array, pa.ChunkedArray)):
            arrays.append(val.cast(field.type))
            continue
        if isinstance(val, pd.Series) and isinstance(val.dtype, pd.ArrowDtype):
            arrays.append(pa.chunked_array(val.array._pa_array).cast(field.type)
                          .combine_chunks())
            continue
        if isinstance(val, pd.Series):
            val = pa.array(val, from_pandas=True, type=field.type) \
                if field.type == pa.string() or pa.types.is_list(field.type) else val.to_numpy()
        if isinstance(val, np.ndarray) and val.dtype.kind == "f" and field.type == pa.int64():
            mask = np.isnan(val)
            arrays.append(pa.array(np.where(mask, 0, val).astype(np.int64), mask=mask,
                                   type=field.type))
            continue
        if isinstance(val, np.ndarray) and val.dtype.kind == "M":
            arrays.append(pa.array(val.astype("datetime64[s]"), type=field.type))
            continue
        if isinstance(val, np.ndarray) and val.dtype.kind == "f":
            arrays.append(pa.array(val, mask=np.isnan(val), type=field.type))
            continue
        arrays.append(pa.array(val, type=field.type))
    return pa.Table.from_arrays(
        arrays, schema=EVENT_SCHEMA.with_metadata(metadata) if metadata else EVENT_SCHEMA)


def check_coordinates(src: CsvSource, batch: Batch, lat_col: str, lon_col: str,
                      required: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude as floats, every one present and in range."""
    lat, bad_lat = to_float(batch.frame[lat_col])
    lon, bad_lon = to_float(batch.frame[lon_col])
    src.fail(batch, bad_lat, lat_col, "latitude is not a number")
    src.fail(batch, bad_lon, lon_col, "longitude is not a number")
    if required:
        src.fail(batch, np.isnan(lat), lat_col, "latitude is missing")
        src.fail(batch, np.isnan(lon), lon_col, "longitude is missing")
    with np.errstate(invalid="ignore"):
        src.fail(batch, np.abs(lat) > 90, lat_col, "latitude out of range [-90, 90]")
        src.fail(batch, np.abs(lon) > 180, lon_col, "longitude out of range [-180, 180]")
    return lat, lon
