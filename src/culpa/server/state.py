"""The event side of the server: the DuckDB store, held open read-only while the server runs.

Holding it read-only keeps other readers (``culpa stats``, ``culpa case``) working while it
makes a ``culpa ingest`` from another process fail (DuckDB's file lock: exit 2, nothing
changed); ingests go through the server (``POST /api/ingest``), which lets go of the file for
the ingest's duration.
"""

from __future__ import annotations

import threading
from pathlib import Path


class Engine:
    def __init__(self, db: Path, jobs):
        from culpa.events.store import Store

        self.db, self.jobs = Path(db), jobs
        if not self.db.exists():
            Store(self.db).close()  # an empty store, ready for POST /api/ingest
        self._lock = threading.RLock()
        self._hold = Store(self.db, read_only=True)

    def events_count(self) -> int:
        with self._lock:
            return self._hold.count()

    def case_document(self, case) -> dict:
        """``culpa case --json`` for a validated case."""
        from culpa.evidence.context import case_document

        with self._lock:
            return case_document(case, self.db)

    def close(self) -> None:
        with self._lock:
            if self._hold is not None:
                self._hold.close()
                self._hold = None
