"""Readers: one module per source format, each turning a file into normalised event batches.

A reader module has ``FORMAT``, ``detect(columns) -> bool`` and
``read(path, aliases, progress) -> Iterator[pyarrow.Table]`` (tables in EVENT_SCHEMA).
The generic reader (``csv``) also takes ``mapping=`` and never claims a header: it is chosen by
``--format csv`` or a Parquet file.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from culpa.errors import InputError
from culpa.events.readers import acled, generic, gtd, ucdp
from culpa.events.readers.base import read_header

#: In detection order: the most specific header first.
READERS: dict[str, ModuleType] = {"ucdp": ucdp, "acled": acled, "gtd": gtd, "csv": generic}

FORMATS = ("auto", *READERS)


def register(module: ModuleType) -> None:
    READERS[module.FORMAT] = module


def detect_format(path: Path) -> str:
    """Name of the reader whose columns the file's header carries."""
    if Path(path).suffix.lower() == ".parquet":
        return "csv"  # the generic reader takes Parquet with a column mapping
    columns = read_header(Path(path))
    for name, module in READERS.items():
        if module.detect(columns):
            return name
    raise InputError(
        "cannot tell the format from the header; it is none of "
        f"{', '.join(n for n in READERS if n != 'csv')} — for any other layout give a column "
        "mapping (the csv format with FIELD=COLUMN pairs or a mapping file)",
        file=str(path), line=1)
