"""The team store: users, sessions, cases, judgements and their hash-chained history.

Events stay in DuckDB; what a team writes concurrently lives here, in SQLite (WAL) beside the
event store by default (``<db>.cases.sqlite``) or in PostgreSQL (``--cases postgresql://...`` or
``$CULPA_CASES_URL``). SQLAlchemy Core over one schema (:mod:`culpa.team.schema`), created and
upgraded by Alembic (:mod:`culpa.team.migrations`). :class:`culpa.team.store.TeamStore` is the one
object the server and the ``culpa user`` / ``culpa audit`` verbs use.
"""

from __future__ import annotations

import os
from pathlib import Path

ROLES = ("viewer", "editor", "admin")


def default_cases_url(db: Path, cases: str | None = None) -> str:
    """``cases`` if given, else ``$CULPA_CASES_URL``, else SQLite beside the event store."""
    url = cases or os.environ.get("CULPA_CASES_URL")
    if url:
        return url
    path = Path(db).resolve()
    return f"sqlite:///{path.with_name(path.name + '.cases.sqlite')}"
