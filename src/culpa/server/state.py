"""The event side of the server: the DuckDB store and the fitted model, behind one lock.

The store is held open read-only while the server runs: other readers (``culpa stats``,
``culpa case``) keep working, while a ``culpa ingest`` from another process is refused by
DuckDB's file lock (exit 2, nothing changed). Ingests go through the server (``POST
/api/ingest``, a background job), which lets go of the file for the ingest's duration.

The model is the one ``culpa fit`` saved beside the store, loaded at start-up; without one, a
background refit starts at once (and saves it there). Requests never fit: until a model is
ready, the model's endpoints answer 503 naming the job to wait for. Once it is at hand, a
background job warms it up (``Workspace.warm``: its grounds rendered, its kernels loaded), so
that the first requests after start-up or a refit cost what later ones do.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path



log = logging.getLogger("culpa.server")


class ModelNotReady(Exception):
    def __init__(self, job_id: str | None):
        super().__init__("the model is being fitted")
        self.job_id = job_id


class FitStarted(ModelNotReady):
    """The answer needs a model fitted on the data before a date: a job is fitting it."""


class Engine:
    """The server's side of the library API: one :class:`culpa.api.Workspace` over the store.

    Every question is asked with ``fit=False``; when its model is not at hand, a background job
    prepares it (``Workspace.prepare``) and the request answers with that job."""

    def __init__(self, db: Path, jobs, autofit: bool = True):
        from culpa.api import Workspace
        from culpa.events.store import Store

        self.db, self.jobs = Path(db), jobs
        if not self.db.exists():
            Store(self.db).close()  # an empty store, ready for POST /api/ingest
        # Readers share the store; an ingest has it alone.
        self._rw = _ReadWrite()
        self._hold = Store(self.db, read_only=True)
        # The Workspace's reads borrow the held handle (one thread at a time) instead of opening
        # and closing their own: closing another handle on the file can drop the process's lock.
        self._con = threading.Lock()
        self.ws = Workspace(self.db, reader=self._borrow)
        from culpa.events.schema import EVENT_COLUMNS

        self._columns = [c for c in EVENT_COLUMNS if c != "record"]  # the record: GET one event
        self._preparing: dict[str, str] = {}  # model key -> job id
        self._prep_lock = threading.Lock()
        self.fit_job: str | None = None
        self.warm_job: str | None = None
        if autofit and self.events_count() > 0:
            request = self.ws.model_request("attribute")
            try:
                self._ready_or_job(request)
            except ModelNotReady as exc:
                self.fit_job = exc.job_id
            else:
                self.warm_job = self.jobs.submit(
                    "warm", "server", lambda j, r=request: self._warm_up(j, r)).id

    @contextmanager
    def _borrow(self):
        """The Workspace's reader: the held read-only handle, one thread at a time."""
        with self._con:
            yield self._hold

    # -- models -------------------------------------------------------------------------

    def _ready_or_job(self, request, started=ModelNotReady) -> None:
        """Return when ``request``'s model is at hand, else raise ``started`` naming the job
        preparing it (one job per model)."""
        if request is None or self.ws.is_ready(request):
            return
        key = self.ws.model_key(request)
        with self._prep_lock:
            job = self.jobs.get(self._preparing.get(key, ""))
            if job is None or job.state == "failed":
                def work(j, r=request):
                    j.report(0.05, f"preparing the model ({r.describe()})")
                    self.ws.prepare(r, progress=lambda stage, done, total: j.report(
                        0.1 if not total else 0.1 + 0.85 * done / total, stage))
                    out = {"model": r.describe()}
                    if r == self.ws.model_request("attribute"):  # the one most requests ask
                        out["warm"] = self._warm_up(j, r)
                    return out
                job = self.jobs.submit("fit", "server", work)
                self._preparing[key] = job.id
        raise started(job.id)

    def _warm_up(self, job, request) -> dict:
        """Warm the model up (``Workspace.warm``: its grounds rendered, its kernels loaded),
        so that the first requests after start-up cost what later ones do."""
        job.report(0.96, "warming the model up (rendering its grounds)")
        try:
            with self._rw.read():
                return self.ws.warm(request)
        except Exception as exc:  # a cold model still answers: never fail the job for this
            log.exception("warming the model up failed")
            return {"rasters": 0, "error": f"{type(exc).__name__}: {exc}"}

    def _ask(self, question: str, call, started=ModelNotReady, **where):
        from culpa.api import ModelNotReady as NotFitted

        try:
            return call()
        except NotFitted as exc:
            self._ready_or_job(exc.request, started)
            return call()

    @property
    def model(self):
        """Truthy when the model of attribute/chain is at hand."""
        with self._rw.read():
            return self.ws.is_ready(self.ws.model_request("attribute")) or None

    # -- store --------------------------------------------------------------------------

    def events_count(self) -> int:
        with self._rw.read():
            return self.ws.count()

    def events(self, since=None, until=None, bbox=None, actor=None, limit=100, offset=0
               ) -> tuple[list[dict], int]:
        with self._rw.read():
            page = self.ws.events(since, until, bbox, actor, limit, offset)
        return page["events"], page["total"]

    def event(self, event_id: str) -> dict | None:
        from culpa.errors import InputError

        with self._rw.read():
            try:
                return self.ws.event(event_id)
            except InputError:
                return None

    def actors(self) -> list[dict]:
        with self._rw.read():
            return self.ws.actors()

    def ingest(self, paths: list[Path], fmt: str, job) -> dict:
        """Ingest files (the job's work): the read-only hold is let go of for the ingest, and
        taken again whatever happens."""
        from culpa.events.store import Store

        with self._rw.write():
            self._hold.close()
            try:
                job.report(0.1, "ingesting")
                return self.ws.ingest(paths, fmt)
            finally:
                self._hold = Store(self.db, read_only=True)

    def refit(self, job) -> dict:
        """``culpa fit``: fit on every located event and save beside the store."""
        job.report(0.05, "fitting")
        with self._rw.read():
            out = self.ws.fit(progress=lambda stage, done, total: job.report(
                0.1 if not total else 0.1 + 0.85 * done / total, stage))
        self._warm_up(job, self.ws.model_request("attribute"))  # the model just saved
        return out

    def model_path(self) -> Path:
        from culpa.api import default_model_path

        return default_model_path(self.db)

    # -- questions ----------------------------------------------------------------------

    def attribute(self, time, lat, lon, **marks) -> dict:
        """``culpa attribute --json``."""
        with self._rw.read():
            return self._ask("attribute", lambda: self.ws.attribute(lat, lon, time, fit=False,
                                                                    **marks))

    def chain(self, event_id: str, depth: int = 3, min_prob: float = 0.05) -> dict:
        """``culpa chain ID --json``."""
        with self._rw.read():
            return self._ask("chain", lambda: self.ws.chain(event_id, depth, min_prob,
                                                            fit=False))

    def warn(self, sites: list[dict], at: str, horizon_days: float, top: int = 5) -> dict:
        """``culpa warn --json``; its model (the events before ``at``) is prepared in a job."""
        with self._rw.read():
            return self._ask("warn", lambda: self.ws.warn(sites, at, horizon_days, top=top,
                                                          fit=False), started=FitStarted)

    def case_document(self, case) -> dict:
        """``culpa case --json`` for a validated case (called in a job: it may fit)."""
        with self._rw.read():
            return self.ws.case(case, fit=True)

    def quick_case_document(self, case) -> dict | None:
        """``culpa case --json`` when the case's model is at hand (milliseconds), else None."""
        from culpa.api import ModelNotReady as NotFitted

        with self._rw.read():
            try:
                return self.ws.case(case, fit=False)
            except NotFitted:
                return None

    def forget_contexts(self) -> None:
        """Models are keyed by the events' content: a changed store needs nothing forgotten."""

    def relock(self) -> None:
        """Open the held handle afresh, so the file lock is surely ours again.

        POSIX record locks belong to the process: when another handle this process opened on
        the file is closed, the kernel can drop the lock DuckDB took for the held one. The job
        runner calls this after every job."""
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
