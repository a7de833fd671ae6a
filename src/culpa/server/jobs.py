"""Background jobs (refits, ingests): one worker thread, progress a caller can poll.

A request starts a job and answers 202 ``{"job": ID}`` at once; ``GET /api/jobs/{id}`` shows
``{"id", "kind", "state", "progress", "message", "result", "error", ...}`` with state one of
queued, running, done, failed. Jobs run one at a time, in order, so two refits never race.
"""

from __future__ import annotations

import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from culpa.errors import CulpaError


@dataclass
class Job:
    id: str
    kind: str
    user: str
    state: str = "queued"
    progress: float = 0.0
    message: str = "waiting to start"
    result: Any = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    def report(self, progress: float, message: str | None = None) -> None:
        """What a job's work calls to say how far it has got (0..1)."""
        self.progress = max(0.0, min(1.0, float(progress)))
        if message:
            self.message = message

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "user": self.user, "state": self.state,
                "progress": round(self.progress, 4), "message": self.message,
                "result": self.result, "error": self.error, "created_at": self.created_at,
                "started_at": self.started_at, "finished_at": self.finished_at}


class Jobs:
    KEEP = 200  # finished jobs remembered

    def __init__(self):
        self.after: Callable[[], None] | None = None  # called after each job (Engine.relock)
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="culpa-jobs", daemon=True)
        self._worker.start()

    def submit(self, kind: str, user: str, work: Callable[[Job], Any]) -> Job:
        job = Job(id=secrets.token_hex(8), kind=kind, user=user)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        self._queue.put((job, work))
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: -j.created_at)

    def busy(self) -> bool:
        return any(j.state in ("queued", "running") for j in self._jobs.values())

    def close(self) -> None:
        self._queue.put(None)

    def _forget_old(self) -> None:
        done = [j for j in self._jobs.values() if j.state in ("done", "failed")]
        for j in sorted(done, key=lambda j: j.created_at)[:max(0, len(done) - self.KEEP)]:
            del self._jobs[j.id]

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            job, work = item
            job.state, job.started_at, job.message = "running", time.time(), "started"
            try:
                job.result = work(job)
                job.state, job.progress, job.message = "done", 1.0, "done"
            except CulpaError as exc:
                job.state, job.error, job.message = "failed", str(exc), "failed"
            except Exception as exc:  # a bug: keep the server up, say what happened
                job.state, job.message = "failed", "failed"
                job.error = f"internal error ({type(exc).__name__}: {exc})"
            job.finished_at = time.time()
            if self.after is not None:
                try:
                    self.after()
                except Exception:  # keep the worker alive whatever happens
                    pass
