"""The event side of the server: the DuckDB store and the fitted model, behind one lock.

The store is held open read-only while the server runs: other readers (``culpa stats``,
``culpa case``) keep working, while a ``culpa ingest`` from another process is refused by
DuckDB's file lock (exit 2, nothing changed). Ingests go through the server (``POST
/api/ingest``, a background job), which lets go of the file for the ingest's duration.

The model is the one ``culpa fit`` saved beside the store, loaded at start-up; without one, a
background refit starts at once (and saves it there). Requests never fit: until a model is
ready, the model's endpoints answer 503 naming the job to wait for.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from culpa.errors import AnalysisError


class ModelNotReady(Exception):
    def __init__(self, job_id: str | None):
        super().__init__("the model is being fitted")
        self.job_id = job_id


class FitStarted(ModelNotReady):
    """The answer needs a model fitted on the data before a date: a job is fitting it."""


class Engine:
    #: Incident contexts (a fitted model each) kept for quick re-analysis of edited cases.
    KEEP_CONTEXTS = 16

    def __init__(self, db: Path, jobs, autofit: bool = True):
        from culpa.events.store import Store

        self.db, self.jobs = Path(db), jobs
        if not self.db.exists():
            Store(self.db).close()  # an empty store, ready for POST /api/ingest
        # Readers (queries, fits) share the store; an ingest has it alone. Queries on the held
        # connection also take _con: one DuckDB connection is not for several threads at once.
        self._rw = _ReadWrite()
        self._con = threading.Lock()
        self._before_lock = threading.Lock()
        self._hold = Store(self.db, read_only=True)
        self._contexts: OrderedDict[tuple, object] = OrderedDict()
        self._contexts_lock = threading.Lock()
        from culpa.events.schema import EVENT_COLUMNS

        self._columns = [c for c in EVENT_COLUMNS if c != "record"]  # the record: GET one event
        self.model = None
        self.fit_job: str | None = None
        self._before: dict = {}  # day -> job id, then (model, source): warn's models
        self._load_model(autofit)

    # -- store --------------------------------------------------------------------------

    @contextmanager
    def _query(self):
        with self._rw.read(), self._con:
            yield

    def events_count(self) -> int:
        with self._query():
            return self._hold.count()

    def events(self, since=None, until=None, bbox=None, actor=None, limit=100, offset=0
               ) -> tuple[list[dict], int]:
        where, args = ["TRUE"], []
        if since is not None:
            where.append("time_start >= ?")
            args.append(pd.Timestamp(since).to_pydatetime())
        if until is not None:
            where.append("time_start < ?")
            args.append(pd.Timestamp(until).to_pydatetime())
        if bbox is not None:
            w, s, e, n = bbox
            where.append("longitude BETWEEN ? AND ? AND latitude BETWEEN ? AND ?")
            args += [w, e, s, n]
        if actor is not None:
            where.append("actor = ?")
            args.append(actor)
        cond = " AND ".join(where)
        cols = ", ".join(self._columns)
        with self._query():
            con = self._hold.con
            total = con.execute(f"SELECT count(*) FROM events WHERE {cond}", args).fetchone()[0]
            cur = con.execute(f"SELECT {cols} FROM events WHERE {cond} ORDER BY time_start, id "
                              f"LIMIT ? OFFSET ?", args + [limit, offset])
            rows = cur.fetchall()
        return [_row(self._columns, r) for r in rows], int(total)

    def event(self, event_id: str) -> dict | None:
        with self._query():
            return self._hold.event(event_id)

    def actors(self) -> list[dict]:
        with self._query():
            return self._hold.stats()["actors"]

    def ingest(self, paths: list[Path], fmt: str, job) -> dict:
        """Ingest files into the store (the job's work): the read-only hold is let go of for
        the ingest, and taken again whatever happens."""
        from culpa.events.store import Store

        with self._rw.write():
            self._hold.close()
            try:
                job.report(0.1, "ingesting")
                with Store(self.db) as store:
                    report = store.ingest(paths, fmt)
                    total = store.count()
            finally:
                self._hold = Store(self.db, read_only=True)
                self.forget_contexts()
        return report.to_dict() | {"events_in_store": total}

    # -- model --------------------------------------------------------------------------

    def model_path(self) -> Path:
        from culpa.cli.modelling import default_model_path

        return default_model_path(self.db)

    def _load_model(self, autofit: bool) -> None:
        from culpa.model.hawkes import HawkesAttributor

        path = self.model_path()
        if path.exists():
            self.model = HawkesAttributor.load(path)
        elif autofit and self.events_count() > 0:
            self.fit_job = self.jobs.submit("refit", "server", self.refit).id

    def refit(self, job) -> dict:
        """Fit on every located event and save beside the store, then answer with it."""
        from culpa.model.hawkes import HawkesAttributor

        job.report(0.05, "reading the events")
        with self._query():
            events = self._hold.events_frame()
        if events.empty:
            raise AnalysisError("no located events in the store to fit on")
        job.report(0.1, f"fitting on {len(events):,} events")
        model = HawkesAttributor().fit(events)
        job.report(0.9, "saving the model")
        model.save(self.model_path())
        self.model = model  # one assignment: requests see the old model or the new one
        return {"n_events": len(events), "actors": len(model.actors_),
                "model": str(self.model_path())}

    def _model(self):
        if self.model is None:
            raise ModelNotReady(self.fit_job)
        return self.model

    def attribute(self, time, lat, lon, **marks) -> dict:
        """``culpa attribute --json``."""
        from culpa.cli.modelling import parse_day

        return self._model().explain(parse_day(time, "time"), lat, lon, **marks)

    def chain(self, event_id: str, depth: int = 3, min_prob: float = 0.05) -> dict:
        """``culpa chain ID --json``."""
        return self._model().chain(event_id, depth=depth, min_proba=min_prob)

    def warn(self, sites: list[dict], at: str, horizon_days: float, top: int = 5) -> dict:
        """``culpa warn --json`` for sites given as data, by the verb's rule for the model: the
        saved one if it was fitted only on data before ``at``, else a fit on the events before
        ``at`` -- made in a background job the first time (ModelNotReady until it is done)."""
        from culpa.cli.modelling import parse_day
        from culpa.cli.warn import _fitted_until, _recent_events
        from culpa.model import forecast as fc

        when = parse_day(at, "at")
        model, source = self._model_before(when)
        with self._rw.read():
            extra = _recent_events(self.db, model, when)
        self.relock()
        hist = fc.history(model, extra)
        forecasts = [fc.forecast_site(model, fc.Site(**s), when, horizon_days, hist, top=top)
                     for s in sites]
        return {"at": str(when.date()) if when == when.normalize() else when.isoformat(),
                "horizon_days": horizon_days,
                "sites": [f.to_dict() for f in forecasts],
                "model": {"source": source, "fitted_until": str(_fitted_until(model).date()),
                          "actors": len(model.actors_)},
                "levels": {name: {"min_ratio": r, "min_p_any": p} for name, r, p in fc.LEVELS}}

    #: Models fitted for warn on earlier dates, kept; one such fit runs at a time.
    KEEP_BEFORE = 8

    def _model_before(self, when):
        from culpa.cli.warn import _fitted_until

        model = self._model()
        if _fitted_until(model) <= when:
            return model, str(self.model_path())
        key = str(when)
        with self._before_lock:
            found = self._before.get(key)
            if isinstance(found, tuple):
                return found
            job = self.jobs.get(found) if found else None
            if job is None or job.state == "failed":
                busy = [j for j in map(self.jobs.get, (v for v in self._before.values()
                                                       if isinstance(v, str)))
                        if j is not None and j.state in ("queued", "running")]
                if busy:  # one fit for an earlier date at a time: wait for it, then ask again
                    raise FitStarted(busy[0].id)
                job = self.jobs.submit("fit-before", "server",
                                       lambda j, w=when, k=key: self._fit_before(j, w, k))
                self._before[key] = job.id
        raise FitStarted(job.id)

    def _fit_before(self, job, when, key: str) -> dict:
        from culpa.cli.modelling import load_events
        from culpa.model.hawkes import HawkesAttributor

        job.report(0.05, f"reading the events before {when.date()}")
        with self._rw.read():
            events = load_events(self.db, until=when)
        job.report(0.1, f"fitting on {len(events):,} events before {when.date()}")
        model = HawkesAttributor().fit(events)
        with self._before_lock:
            done = [k for k, v in self._before.items() if isinstance(v, tuple)]
            for k in done[:max(0, len(done) + 1 - self.KEEP_BEFORE)]:
                del self._before[k]
            self._before[key] = (model, f"fitted now on {len(events):,} events before "
                                        f"{when.date()}")
        return {"n_events": len(events)}

    def case_document(self, case) -> dict:
        """``culpa case --json`` for a validated case."""
        from culpa.evidence.context import case_document, context_key, incident_context

        with self._rw.read():
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

    def relock(self) -> None:
        """Open the held handle afresh, so the file lock is surely ours again.

        POSIX record locks belong to the process: when any other handle this process opened on
        the file is closed (a fit's own read-only Store), the kernel can drop the lock DuckDB
        took for the held one. The job runner calls this after every job."""
        from culpa.events.store import Store

        with self._rw.write():
            if self._hold is not None:
                self._hold.close()
                self._hold = Store(self.db, read_only=True)

    def close(self) -> None:
        with self._rw.write():
            if self._hold is not None:
                self._hold.close()
                self._hold = None


class _ReadWrite:
    """Many readers or one writer."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers, self._writer = 0, False

    @contextmanager
    def read(self):
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _row(columns: list[str], values: tuple) -> dict:
    out = {}
    for c, v in zip(columns, values):
        if hasattr(v, "isoformat"):
            v = v.isoformat()
        elif isinstance(v, float) and v != v:
            v = None
        out[c] = v
    return out
