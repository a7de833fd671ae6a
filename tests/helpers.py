"""Shared test helpers: where the real data lives and how to run the real command line."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"


def _plain(gz: Path) -> Path:
    """The uncompressed copy of a gzipped test file (made once per machine, atomically)."""
    stat = gz.stat()
    cache = Path(tempfile.gettempdir()) / f"culpa-test-data-{stat.st_size}-{int(stat.st_mtime)}"
    out = cache / gz.name.removesuffix(".gz")
    if not out.exists():
        cache.mkdir(parents=True, exist_ok=True)
        part = out.with_name(f"{out.name}.{os.getpid()}.part")
        part.write_bytes(gzip.decompress(gz.read_bytes()))
        os.replace(part, out)
    return out


# Real UCDP GED extracts (CC BY 4.0, credited in README.md): Iraq as distributed on HDX (with its
# HXL hashtag row) is the package's own sample; the Syria release ships under tests/data.
UCDP_IRAQ = _plain(REPO / "src" / "culpa" / "data" / "ucdp_ged_iraq_1989_2018.csv.gz")
UCDP_SYRIA = _plain(TEST_DATA / "ucdp_ged_syria_2016_2018.csv.gz")


def culpa(*args: str, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the installed `culpa` command as a user would, in a fresh process."""
    proc = subprocess.run([sys.executable, "-m", "culpa", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"culpa {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def culpa_json(*args: str) -> dict:
    proc = culpa(*args, "--json", check=True)
    return json.loads(proc.stdout)


def store_fingerprint(db) -> tuple:
    """(count, hash of ids, hash of records) of a store's events: equal exactly when the events are."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*), sum(hash(id)), sum(hash(record)) FROM events") \
            .fetchone()
    finally:
        con.close()


def without_dac_override() -> None:
    """For ``subprocess``'s ``preexec_fn``: as root, run the child without CAP_DAC_OVERRIDE
    and CAP_DAC_READ_SEARCH, so that file modes bind it as they bind an ordinary user (the
    suite runs as root in CI, where a chmod alone tests nothing). The capabilities leave the
    bounding set; root's permitted set after exec is that set (its inheritable set is empty).
    Does nothing for an ordinary user."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
