"""What every CSV reader shares: opening plain or gzip files, streaming string batches with
pyarrow, and turning a bad value into an error that names the file, line and field.

Readers parse every column as a string and convert in vectorised steps, so a bad value is
found by its row number; only then is the file rescanned with the csv module to name the
physical line (quoted fields may span lines, so row + 2 is not always the line).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import stat
import sys
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
UTF8_BOM = codecs.BOM_UTF8
BLOCK_SIZE = 1 << 23  # 8 MiB of text per batch: memory stays flat whatever the file size
MAX_BLOCK_SIZE = 1 << 30  # a record longer than this (1 GiB) is refused
#: A count (fatalities) above this is no real event: refused rather than stored.
MAX_COUNT = 10_000_000
#: Dates outside these years are refused (a typo such as 20188-01-01 or year -1).
MIN_YEAR, MAX_YEAR = 1000, 9999

# The csv module (used to name lines) must take any field pyarrow takes.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

#: Progress callback: called with the number of bytes read from disk since the last call.
Progress = Callable[[int], None]


def check_regular_file(path: Path) -> None:
    """An InputError unless ``path`` is a regular file that can be opened for reading."""
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        raise InputError("no such file", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", file=str(path)) from None
    if stat.S_ISDIR(mode):
        raise InputError("is a directory, not a file", file=str(path))
    if not stat.S_ISREG(mode):
        raise InputError("not a regular file (a device, pipe or socket)", file=str(path))
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", file=str(path)) from None


def unreadable(path: Path, exc: BaseException) -> InputError:
    """The refusal for a file that stops being readable part way: a damaged or cut-off gzip
    stream is the file's problem as a whole (it has no line), anything else an OS error."""
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
        return InputError(f"file is truncated or corrupt ({exc}); nothing was ingested",
                          file=str(path))
    return InputError(f"cannot read file: {exc}", file=str(path))


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


def read_header(path: Path, encoding: str | None = None) -> list[str]:
    """The column names of the first record (quoted names may hold commas or line breaks).

    The first bytes are checked first, so that a file that is not CSV text in ``encoding``
    (gzip inside gzip, UTF-16, binary) is refused with what it is rather than misread.
    ``encoding`` None (format detection) reads UTF-8 and replaces what does not decode.
    """
    check_regular_file(path)
    _check_prefix(path)
    try:
        with open_binary(path) as fh:
            _skip_bom(fh)
            # (the decoder reads ahead of the header: only the header's own bytes must decode)
            text = io.TextIOWrapper(fh, encoding=python_encoding(encoding or "utf8"),
                                    errors="surrogateescape" if encoding else "replace",
                                    newline="")
            first = next(csv.reader(text), None)
    except csv.Error as exc:
        raise InputError(f"cannot parse the header: {exc}", file=str(path), line=1) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise unreadable(path, exc) from None
    if not first or not any(c.strip() for c in first):
        raise InputError("file is empty (no header line)", file=str(path), line=1)
    for name in first:
        bad = next((c for c in name if "\udc80" <= c <= "\udcff"), None)
        if bad is not None:
            raise InputError(f"the header is not valid {python_encoding(encoding).upper()} text "
                             f"(byte 0x{ord(bad) - 0xDC00:02x} in column name "
                             f"{name.encode('utf-8', 'replace')!r})", file=str(path), line=1)
    return first


def python_encoding(encoding: str) -> str:
    """The codec name Python knows for a reader's encoding name."""
    return {"utf8": "utf-8"}.get(encoding, encoding)


def _skip_bom(fh) -> None:
    """Move past a UTF-8 byte order mark at the start of a binary stream (peek, don't eat)."""
    if fh.peek(3)[:3] == UTF8_BOM:
        fh.read(3)


def _check_prefix(path: Path) -> None:
    """Refuse what is plainly not CSV text, from its first bytes."""
    try:
        with open_binary(path) as fh:
            head = fh.read(4096)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"file is truncated or corrupt ({exc}); nothing was ingested",
                         file=str(path), line=1) from None
    if head.startswith(GZIP_MAGIC):
        raise InputError("gzip inside gzip: decompress it once and ingest the result",
                         file=str(path))
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if head.startswith(bom):
            raise InputError(f"the file is {name} text; save it as UTF-8", file=str(path))
    first_line = head.split(b"\n", 1)[0]
    if b"\x00" in first_line:
        raise InputError("the header line holds NUL bytes: not a CSV text file (UTF-16?)",
                         file=str(path), line=1)
    if head.startswith((b"PAR1", b"SQLite format 3", b"PK\x03\x04")):
        raise InputError("not a CSV text file (binary data)", file=str(path))


def has_hxl_row(path: Path) -> bool:
    """True when the second record is an HXL hashtag row (#date+start, ...), as in HDX exports."""
    try:
        with open_binary(path) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")
            reader = csv.reader(text)
            next(reader, None)
            second = next(reader, None)
    except (OSError, EOFError, zlib.error, csv.Error):
        return False  # the batches will say what is wrong, and where
    tagged = [c.strip() for c in second or [] if c.strip()]
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
        raise unreadable(path, exc) from None
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


class _BlockTooSmall(Exception):
    """pyarrow met a record longer than its block: read again with larger blocks."""


def check_unique_columns(columns: list[str], file: str) -> None:
    """Refuse a header that names one column twice (which of the two would be read?)."""
    first: dict[str, int] = {}
    for i, name in enumerate(columns, start=1):
        if name in first:
            raise InputError(f"column {name!r} appears twice (columns {first[name]} and {i})",
                             file=file, line=1, field=name)
        first[name] = i


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
        self.columns = read_header(self.path, encoding)
        check_unique_columns(self.columns, str(self.path))
        missing = [c for c in required if c not in self.columns]
        if missing:
            raise InputError(
                f"missing required column(s): {', '.join(missing)}", file=str(self.path), line=1,
                field=missing[0])
        self.skip_hxl = has_hxl_row(self.path)

    def batches(self) -> Iterator[Batch]:
        """The file's records in string batches. A record longer than a block (one huge field)
        makes pyarrow stop; the file is then read again with larger blocks, past the rows
        already given."""
        block, done = BLOCK_SIZE, 0
        while True:
            try:
                for batch in self._batches(block, done):
                    done = batch.first_row + len(batch.frame)
                    yield batch
                return
            except _BlockTooSmall:
                if not is_gzip(self.path) and block > self.path.stat().st_size:
                    # the whole file fits in a block and a record still does not end
                    raise InputError("a record does not end: a quoted field is opened and "
                                     "never closed (it runs to the end of the file)",
                                     file=str(self.path), line=self._last_record_line()) \
                        from None
                if block >= MAX_BLOCK_SIZE:
                    raise InputError(f"a record is longer than {MAX_BLOCK_SIZE >> 20} MiB",
                                     file=str(self.path), line=self.line_of_row(done)) from None
                block = min(block * 8, MAX_BLOCK_SIZE)  # (pyarrow takes at most 2^31 - 1)

    def _batches(self, block: int, skip: int) -> Iterator[Batch]:
        read_opts = pacsv.ReadOptions(
            block_size=block, skip_rows_after_names=1 if self.skip_hxl else 0,
            encoding=self.encoding, column_names=[f"c{i}" for i in range(len(self.columns))],
            skip_rows=1)
        names = [f"c{i}" for i in range(len(self.columns))]
        convert = pacsv.ConvertOptions(
            column_types={c: pa.string() for c in names}, strings_can_be_null=False,
            quoted_strings_can_be_null=False)
        row = 0
        stream = open_binary(self.path, self.progress)
        try:
            _skip_bom(stream)
            reader = pacsv.open_csv(stream, read_options=read_opts, convert_options=convert,
                                    parse_options=pacsv.ParseOptions(newlines_in_values=True))
            for record_batch in reader:
                if record_batch.num_rows == 0:
                    continue
                start = row
                row += record_batch.num_rows
                if row <= skip:
                    continue
                if start < skip:
                    record_batch = record_batch.slice(skip - start)
                    start = skip
                record_batch = record_batch.rename_columns(self.columns)
                frame = record_batch.to_pandas(types_mapper=pd.ArrowDtype)
                yield Batch(frame, start, record_batch)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise self._truncated(exc) from None
        except pa.ArrowInvalid as exc:
            if "straddling" in str(exc):
                raise _BlockTooSmall from None
            if "Could not skip initial" in str(exc):
                # pyarrow found no line end after the header (or the HXL row): either the
                # file holds nothing more -- no events, as with a header-only file -- or
                # the header is longer than a block
                if self._records_after_header() == 0:
                    return
                raise _BlockTooSmall from None
            raise self._parse_error(exc, row) from None
        except OSError as exc:
            raise InputError(f"cannot read file: {exc}", file=str(self.path)) from None
        finally:
            stream.close()

    def _parse_error(self, exc: Exception, row: int) -> InputError:
        """pyarrow says what went wrong but not where: find the line with the csv module."""
        msg = str(exc)
        if "truncated" in msg.lower() or "compressed" in msg.lower() or "gzip" in msg.lower():
            return self._truncated(exc)
        if "invalid utf8" in msg.lower() or "utf-8" in msg.lower():
            return self._bad_text(msg)
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

    def _bad_text(self, msg: str) -> InputError:
        """Name the line (and, when pyarrow says it, the column) of the first invalid byte."""
        import re

        m = re.search(r"CSV column #(\d+)", msg)
        col = self.columns[int(m.group(1))] if m and int(m.group(1)) < len(self.columns) else None
        decoder = codecs.getincrementaldecoder(python_encoding(self.encoding))()
        line, offset = 1, 0
        try:
            with open_binary(self.path) as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as e:
                        line += chunk.count(b"\n", 0, max(e.start, 0))
                        bad = chunk[max(e.start, 0):max(e.start, 0) + 1]
                        return InputError(f"not valid UTF-8 text (byte {bad!r} at offset "
                                          f"{offset + max(e.start, 0)})", file=str(self.path),
                                          line=line, field=col)
                    line += chunk.count(b"\n")
                    offset += len(chunk)
        except (OSError, EOFError, zlib.error):
            pass
        return InputError("not valid UTF-8 text", file=str(self.path), field=col)

    def _rows_with_lines(self) -> Iterator[tuple[int, list[str]]]:
        with open_binary(self.path) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")
            reader = csv.reader(text)
            start = 1
            for rec in reader:
                yield start, rec
                start = reader.line_num + 1

    def _last_record_line(self) -> int | None:
        """The line where the file's last record begins, by the csv module (which reads an
        unclosed quoted field to the end of the file as one record)."""
        line = None
        try:
            for line, _rec in self._rows_with_lines():
                pass
        except (EOFError, zlib.error, gzip.BadGzipFile, csv.Error):
            pass
        return line

    def _records_after_header(self) -> int | None:
        """How many non-empty records follow the header (and the HXL row), by the csv module."""
        try:
            return sum(1 for i, (_, rec) in enumerate(self._rows_with_lines())
                       if rec and i >= (2 if self.skip_hxl else 1))
        except (EOFError, zlib.error, gzip.BadGzipFile, csv.Error):
            return None

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
        """Physical 1-based line where data row ``row`` (0-based) begins (empty lines, which
        pyarrow skips, are not rows)."""
        skip = 2 if self.skip_hxl else 1
        last = None
        try:
            k = -1
            for i, (line, rec) in enumerate(self._rows_with_lines()):
                if i >= skip and not rec:
                    continue
                k += 1
                if k == row + skip:
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
        value = cell_value(batch, field, i)
        raise InputError(f"{problem} (value {show_value(value)})", file=str(self.path),
                         line=self.line_of_row(batch.first_row + i), field=field)


def cell_value(batch: Batch, field: str, i: int):
    """The value of one cell, for a message; the raw stored number where Python has no value
    for it (a date 2^31 days after 1970)."""
    if field not in batch.frame.columns:
        return None
    try:
        return batch.frame[field].iloc[i]
    except (OverflowError, ValueError, OSError):
        try:
            return f"raw value {batch.raw.column(field)[i].value}"
        except Exception:  # noqa: BLE001 - only a message is at stake
            return "(not representable)"


def show_value(value, limit: int = 80) -> str:
    """A cell's value for a message: its repr, shortened when long."""
    if value is pd.NA:
        value = None
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value)):,} characters)"


def locate_record(path: Path, record: int) -> int | None:
    """The line where record ``record`` (1-based) of a source file begins; for a Parquet file
    (no lines) the record number itself."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) == b"PAR1":
                return record
        src = CsvSource.__new__(CsvSource)
        src.path, src.columns = Path(path), []
        src.skip_hxl = has_hxl_row(src.path)
        return src.line_of_row(record - 1)
    except (OSError, InputError):
        return None


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
    """Numbers as floats (NaN where blank); bad = present but not a number ("nan" included)."""
    arr = _arrow(s)
    if arr is not None:  # fast path: arrow's cast, exact when every cell is a number or blank
        trimmed = pc.utf8_trim_whitespace(arr)
        try:
            vals = pc.cast(pc.if_else(pc.equal(trimmed, ""), None, trimmed), pa.float64())
            out = np.asarray(vals.to_numpy(zero_copy_only=False), dtype=float)
            present = np.asarray(pc.fill_null(pc.not_equal(trimmed, ""), False)
                                 .to_numpy(zero_copy_only=False), dtype=bool)
            return out, np.isnan(out) & present
        except pa.ArrowInvalid:
            pass  # some cell is not a number: the slow path below finds which
    values = pd.to_numeric(s.astype("string").str.strip().replace("", None), errors="coerce")
    out = np.asarray(values.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    bad = np.isnan(out) & ~blank(s)
    return out, bad


def check_counts(src, batch: Batch, values: np.ndarray, col: str, what: str,
                 whole: bool = True) -> None:
    """Counts (fatalities) must be finite, >= 0, at most MAX_COUNT and (by default) whole."""
    with np.errstate(invalid="ignore"):
        src.fail(batch, np.isinf(values), col, f"{what} is not a finite number")
        src.fail(batch, values < 0, col, f"{what} must be >= 0")
        src.fail(batch, values > MAX_COUNT, col,
                 f"{what} over {MAX_COUNT:,} is not a believable count")
        if whole:
            src.fail(batch, (values != np.floor(values)) & ~np.isnan(values), col,
                     f"{what} must be a whole number")


def to_date(s: pd.Series, fmt: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse dates (ISO by default) to datetime64[s]; bad = present but unparsable, impossible
    (2018-02-30) or outside the years MIN_YEAR..MAX_YEAR."""
    arr = _arrow(s)
    if arr is not None and fmt is None:  # fast path for plain ISO dates (YYYY-MM-DD)
        trimmed = pc.utf8_trim_whitespace(arr)
        present = pc.fill_null(pc.not_equal(trimmed, ""), False)
        parsed_a = pc.strptime(trimmed, format="%Y-%m-%d", unit="s", error_is_null=True)
        # arrow rolls impossible days over (2018-02-30 -> 2018-03-02): keep exact round trips
        same = pc.fill_null(pc.equal(pc.strftime(parsed_a, format="%Y-%m-%d"), trimmed), False)
        ok = pc.or_(pc.invert(present), same)
        if pc.all(ok).as_py() is not False:
            out = parsed_a.to_numpy(zero_copy_only=False).astype("datetime64[s]")
            bad = _out_of_years(out)
            return out, bad
    return parse_times(s, fmt)


def parse_times(s: pd.Series, fmt: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Text dates or times to naive UTC datetime64[s]: those with a UTC offset
    ("...T21:30:00+03:00", "...Z") are converted, those without are taken as written.
    bad = present but not a date in ``fmt`` (ISO 8601 by default), or outside the years."""
    txt = s.astype("string").str.strip()
    try:
        out = _to_utc(txt, fmt)
    except (ValueError, OverflowError, TypeError):  # one odd cell spoils the vector: go cell by cell
        cells = []
        for v in txt.to_numpy(dtype=object, na_value=None):
            try:
                cells.append(_to_utc(pd.Series([v], dtype="string"), fmt)[0])
            except (ValueError, OverflowError, TypeError):
                cells.append(np.datetime64("NaT", "s"))
        out = np.array(cells, dtype="datetime64[s]")
    bad = (np.isnat(out) & ~blank(s)) | _out_of_years(out)
    return out, bad


def _to_utc(txt: pd.Series, fmt: str | None) -> np.ndarray:
    parsed = pd.to_datetime(txt, format=fmt or "ISO8601", errors="coerce", utc=True)
    return np.asarray(parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[s]"),
                      dtype="datetime64[s]")


def _out_of_years(out: np.ndarray) -> np.ndarray:
    years = out.astype("datetime64[Y]").astype(np.int64) + 1970
    return ~np.isnat(out) & ((years < MIN_YEAR) | (years > MAX_YEAR))


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
            if (np.abs(val[~mask]) >= 2.0**63).any() or not np.isfinite(val[~mask]).all():
                # readers check their counts; a value that slips through must not wrap around
                raise ValueError(f"{field.name}: a value outside the int64 range reached the store")
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
