"""Shared fixtures: small hand-made source files (tests/data) and the real command line, run
in-process."""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

READERS_DATA = Path(__file__).resolve().parent / "data"


def pytest_configure(config):
    """Rendered rasters go to a cache of the test run (every process it starts inherits it),
    never to the user's (culpa.model.rastercache)."""
    import os
    import tempfile

    config._culpa_cache = os.environ["CULPA_CACHE_DIR"] = tempfile.mkdtemp(
        prefix="culpa-test-cache-")


def pytest_unconfigure(config):
    cache = getattr(config, "_culpa_cache", None)
    if cache:
        shutil.rmtree(cache, ignore_errors=True)


@dataclass
class CliRun:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)


@pytest.fixture
def readers_data() -> Path:
    """Folder of the small source files in real ACLED / GTD / generic layouts."""
    return READERS_DATA


@pytest.fixture
def culpa_cli():
    """``culpa_cli("ingest", FILE, "--db", DB, "--json")``: the real Typer app, in-process."""
    from typer.testing import CliRunner

    from culpa.cli import app

    runner = CliRunner()

    def run(*args: object) -> CliRun:
        result = runner.invoke(app, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliRun(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def events_db(tmp_path) -> Path:
    """Path of a fresh (not yet created) store."""
    return tmp_path / "culpa.duckdb"


@pytest.fixture
def sql():
    """``sql(db, "SELECT ...", *params)`` -> rows, read-only."""

    def query(db: Path, statement: str, *params: object) -> list[tuple]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            return con.execute(statement, list(params)).fetchall()
        finally:
            con.close()

    return query


@pytest.fixture
def edit_csv(tmp_path):
    """``edit_csv(src, name, row=2, column="x", value="y")``: a copy of a CSV with one cell
    changed (row counts data rows from 1), or ``drop="column"`` removed; returns its path.
    Keeps the source's encoding (cp1252 bytes survive as latin-1)."""

    def edit(src: Path, name: str, *, row: int | None = None, column: str | None = None,
             value: str | None = None, drop: str | None = None, gzip_it: bool = False) -> Path:
        text = Path(src).read_bytes().decode("latin-1")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        header = rows[0]
        if row is not None:
            rows[row][header.index(column)] = value
        if drop is not None:
            k = header.index(drop)
            rows = [r[:k] + r[k + 1:] for r in rows]
        buf = io.StringIO(newline="")
        csv.writer(buf, lineterminator="\n").writerows(rows)
        data = buf.getvalue().encode("latin-1")
        out = tmp_path / name
        out.write_bytes(gzip.compress(data) if gzip_it else data)
        return out

    return edit


@pytest.fixture
def gzipped(tmp_path):
    """``gzipped(src)``: a gzip copy of a file, named ``<name>.gz``."""

    def make(src: Path) -> Path:
        out = tmp_path / (Path(src).name + ".gz")
        with open(src, "rb") as fin, gzip.open(out, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        return out

    return make


def pytest_addoption(parser):
    parser.addoption("--fuzz-count", type=int, default=None,
                     help="inputs per reader (and case/sites files) for the fuzz tests; "
                          "default: a small run that is part of the normal suite")
    parser.addoption("--fuzz-seed", type=int, default=13, help="seed of the fuzz tests")


@pytest.fixture
def fuzz_count(request) -> int | None:
    return request.config.getoption("--fuzz-count")


@pytest.fixture
def fuzz_seed(request) -> int:
    return request.config.getoption("--fuzz-seed")
