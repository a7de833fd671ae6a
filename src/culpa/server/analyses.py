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
        self._done: OrderedDict[str, dict] = OrderedDict()
        self._team: OrderedDict[tuple, dict] = OrderedDict()
        self._pending: dict[str, str] = {}  # doc key -> job id
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop every kept analysis (the event store changed)."""
        with self._lock:
            self._done.clear()
            self._team.clear()

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
