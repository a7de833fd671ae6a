"""The event side of the server: the DuckDB store, held open read-only while the server runs.

Holding it read-only keeps other readers (``culpa stats``, ``culpa case``) working while it
makes a ``culpa ingest`` from another process fail (DuckDB's file lock: exit 2, nothing
changed); ingests go through the server (``POST /api/ingest``), which lets go of the file for
the ingest's duration.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path


class Engine:
    #: Incident contexts (a fitted model each) kept for quick re-analysis of edited cases.
    KEEP_CONTEXTS = 16

    def __init__(self, db: Path, jobs):
        from culpa.events.store import Store

        self.db, self.jobs = Path(db), jobs
        if not self.db.exists():
            Store(self.db).close()  # an empty store, ready for POST /api/ingest
        self._lock = threading.RLock()
        self._hold = Store(self.db, read_only=True)
        self._contexts: OrderedDict[tuple, object] = OrderedDict()
        self._contexts_lock = threading.Lock()

    def events_count(self) -> int:
        with self._lock:
            return self._hold.count()

    def case_document(self, case) -> dict:
        """``culpa case --json`` for a validated case."""
        from culpa.evidence.context import case_document, context_key, incident_context

        with self._lock:
            ctx = self.cached_context(case)
            if ctx is None:
                ctx = incident_context(case, self.db)
                with self._contexts_lock:
                    self._contexts[context_key(case)] = ctx
                    while len(self._contexts) > self.KEEP_CONTEXTS:
                        self._contexts.popitem(last=False)
            return case_document(case, self.db, ctx)

    def cached_context(self, case):
        """The incident's context if a case with the same incident and window was analysed
        since the store last changed (:meth:`forget_contexts`), else None (never fits)."""
        from culpa.evidence.context import context_key

        key = context_key(case)
        with self._contexts_lock:
            ctx = self._contexts.get(key)
            if ctx is not None:
                self._contexts.move_to_end(key)
            return ctx

    def forget_contexts(self) -> None:
        """Drop the kept contexts: whatever changes the event store must call this."""
        with self._contexts_lock:
            self._contexts.clear()

    def quick_case_document(self, case) -> dict | None:
        """``culpa case --json`` for ``case`` when its incident's context is at hand (an
        edit of a case already analysed: milliseconds), else None."""
        from culpa.evidence.context import case_document

        ctx = self.cached_context(case)
        return None if ctx is None else case_document(case, self.db, ctx)

    def close(self) -> None:
        with self._lock:
            if self._hold is not None:
                self._hold.close()
                self._hold = None
