"""Case analyses, computed in background jobs and kept by document.

``analysis`` of a case is exactly the ``culpa case --json`` document for its doc (the library
API's case call, which fits the model on the window before the incident the first time it is
asked about that window, so it never runs inside a request). Until it is ready, a case's
``analysis`` is null and ``analysis_job`` names the job to poll at ``GET /api/jobs/{id}``. The
team part (each analyst, pooled, disagreement) is added on top from the judgements; it needs
no model and is computed when asked for.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict

from culpa.server.documents import validate
from culpa.team import pooling


def doc_key(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def json_ready(doc):
    """The document as ``culpa case --json`` prints it (NumPy scalars, dates -> JSON)."""
    from culpa.cli.common import _json_default

    return json.loads(json.dumps(doc, default=_json_default, allow_nan=False))


class Analyses:
    KEEP = 256

    def __init__(self, engine, jobs):
        self.engine, self.jobs = engine, jobs
        self.responses = CaseResponses()
        self._done: OrderedDict[str, dict] = OrderedDict()
        self._team: OrderedDict[tuple, dict] = OrderedDict()
        self._pending: dict[str, str] = {}  # doc key -> job id
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop every kept analysis (the event store changed)."""
        with self._lock:
            self._done.clear()
            self._team.clear()
        self.responses.forget()

    def base(self, doc: dict, user: str = "server") -> tuple[dict | None, str | None]:
        """(the culpa case document, None) when ready, else (None, the job computing it)."""
        key = doc_key(doc)
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key], None
            job_id = self._pending.get(key)
            if job_id is not None:
                job = self.jobs.get(job_id)
                if job is not None and job.state in ("queued", "running"):
                    return None, job_id
            job = self.jobs.submit("analyse", user, lambda j, d=doc, k=key: self._run(j, d, k))
            self._pending[key] = job.id
            return None, job.id

    def _run(self, job, doc: dict, key: str) -> dict:
        job.report(0.05, "analysing the case (the model is fitted on its window if needed)")
        result = json_ready(self.engine.case_document(validate(doc)))
        with self._lock:
            self._done[key] = result
            self._pending.pop(key, None)
            while len(self._done) > self.KEEP:
                self._done.popitem(last=False)
        return {"leading": result.get("leading")}

    def full(self, doc: dict, judgements: dict, user: str = "server"
             ) -> tuple[dict | None, str | None]:
        """The analysis, with the team part (analysts, pooled, pooling, disagreement,
        leading_pair) when anyone has recorded a judgement."""
        base, job = self.base(doc, user)
        if base is None or not judgements:
            return base, job
        tkey = (doc_key(doc), doc_key(judgements))
        with self._lock:
            if tkey in self._team:
                return self._team[tkey], None
        case = validate(doc)
        items, ignored = pooling.analysts_items(doc, judgements, case, validate)
        team = pooling.team_analysis(case, base["prior"], items, ignored)
        result = {**base, **json_ready(team)}
        with self._lock:
            self._team[tkey] = result
            while len(self._team) > self.KEEP:
                self._team.popitem(last=False)
        return result, None


def dumps(body) -> bytes:
    """JSON bytes of a document as ``culpa VERB --json`` writes it (NumPy scalars and arrays,
    dates and paths as there), in one pass: orjson when it is installed, else the standard
    library."""
    from culpa.cli.common import _json_default

    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency
        orjson = None
    if orjson is not None:
        try:
            return orjson.dumps(body, default=_json_default,
                                option=orjson.OPT_SERIALIZE_NUMPY
                                | orjson.OPT_PASSTHROUGH_DATETIME)
        except TypeError:  # e.g. an integer wider than 64 bits: the standard library copes
            pass
    return json.dumps(body, default=_json_default, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


class CaseResponses:
    """The serialised ``GET /api/cases/{id}`` bodies, so a case read by many is built once.

    An entry is good for (case id, the case's write stamp, the analyses' generation): every
    write to a case through this server (save, judgement, delete) bumps its stamp *after* it
    has committed, and every change of the event store bumps the generation (the analyses'
    models are keyed by the events), so a stale body is never served. The stamp is read before
    the case is, so a body built while a write lands is stored under the old stamp and simply
    missed. A body with its analysis still pending is not kept. Entries also expire after
    ``TTL`` seconds, which bounds what a second server writing to the same store could make
    stale."""

    KEEP = 512
    TTL = 5.0

    def __init__(self):
        self._lock = threading.Lock()
        self._stamps: dict[str, int] = {}
        self._bodies: OrderedDict[str, tuple[int, int, float, bytes]] = OrderedDict()
        self.generation = 0

    def stamp(self, case_id: str) -> tuple[int, int]:
        with self._lock:
            return self._stamps.get(case_id, 0), self.generation

    def get(self, case_id: str) -> bytes | None:
        import time

        with self._lock:
            hit = self._bodies.get(case_id)
            if hit is None:
                return None
            stamp, generation, at, body = hit
            if (stamp != self._stamps.get(case_id, 0) or generation != self.generation
                    or time.monotonic() - at > self.TTL):
                del self._bodies[case_id]
                return None
            self._bodies.move_to_end(case_id)
            return body

    def put(self, case_id: str, stamp: tuple[int, int], body: bytes) -> None:
        import time

        with self._lock:
            if stamp != (self._stamps.get(case_id, 0), self.generation):
                return  # written meanwhile: this body may be stale
            self._bodies[case_id] = (stamp[0], stamp[1], time.monotonic(), body)
            self._bodies.move_to_end(case_id)
            while len(self._bodies) > self.KEEP:
                self._bodies.popitem(last=False)

    def changed(self, case_id: str) -> None:
        """A write to the case has committed."""
        with self._lock:
            self._stamps[case_id] = self._stamps.get(case_id, 0) + 1
            self._bodies.pop(case_id, None)

    def forget(self) -> None:
        """The event store changed: every analysis is computed afresh."""
        with self._lock:
            self.generation += 1
            self._bodies.clear()
