"""Crash consistency: `kill -9` at random moments of a large ingest. The store then opens with
the events it had before or all of them, never a count between, never a duplicate id; and the
ingest can simply be run again."""

from __future__ import annotations

import csv
import random
import subprocess
import sys
import time

import duckdb
import pytest

from culpa.events.store import ingest_files
from helpers import UCDP_SYRIA

COPIES = 8  # about 116,000 new events: an ingest of several seconds here


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """The Syria extract eight times over, each copy with its own ids."""
    out = tmp_path_factory.mktemp("crash") / "syria_x8.csv"
    with open(UCDP_SYRIA, newline="") as fh:
        rows = list(csv.reader(fh))
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(rows[0])
        for k in range(COPIES):
            w.writerows([r[0] + f"{k:02d}"] + r[1:] for r in rows[1:])
    return out, len(rows) - 1


def state(db) -> tuple[int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*), count(DISTINCT id) FROM events").fetchone()
    finally:
        con.close()


def test_kill_9_during_ingest_leaves_the_before_or_the_after_store(tmp_path, big_file):
    path, n = big_file
    db = tmp_path / "s.duckdb"
    ingest_files(db, [UCDP_SYRIA])
    before, after = n, n + COPIES * n
    rng = random.Random(20261202)
    outcomes = []
    for trial in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "culpa", "ingest", str(path), "--db",
                                 str(db), "--json"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, 6.0))
        proc.kill()
        proc.wait()
        count, ids = state(db)
        assert count in (before, after) and ids == count, (trial, count, ids)
        outcomes.append(count)
        if count == after:  # it finished before the kill: take the copies out for the next try
            con = duckdb.connect(str(db))
            con.execute("DELETE FROM events WHERE length(id) > length('ucdp:') + 6 "
                        "AND source_file = ?", [str(path.resolve())])
            con.close()
            assert state(db) == (before, before)
    report, total = ingest_files(db, [path])  # and a rerun completes
    assert total == after and report.added == after - before
    print(f"\nkill -9 outcomes: {outcomes}")
