"""The live analysis behind the case editor: ``POST /api/cases/analyse``.

The editor sends the whole unsaved document on every change and shows what comes back, so the
posterior, the step chart, the break-even sentences and the ACH matrix are always exactly what
``culpa case --json`` (and ``GET /api/cases/{id}`` once saved) gives for that document: one
arithmetic, in Python, never a second copy of it in the browser.

An edit of the hypotheses or the items keeps the incident, whose context (the model fitted on
the window before it) the server keeps from the case's first analysis, so the answer takes
milliseconds. A document whose incident has not been analysed yet starts that analysis as a
background job and answers ``{"analysis": null, "analysis_job": ID}``; the page polls the job
and asks again.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from culpa.server import auth
from culpa.server.analyses import json_ready
from culpa.server.documents import validate
from culpa.team.store import Principal

router = APIRouter(prefix="/api/cases", tags=["cases"])


class Draft(BaseModel):
    doc: dict[str, Any] = Field(description="A whole case document, saved or not.")


@router.post("/analyse")
def analyse_draft(body: Draft, request: Request,
                  who: Principal = Depends(auth.viewer)) -> dict:
    """``culpa case --json`` for an unsaved document (422 with the key path when it is bad)."""
    case = validate(body.doc, None, where="doc.")
    quick = request.app.state.engine.quick_case_document(case)
    if quick is not None:
        return {"analysis": json_ready(quick), "analysis_job": None}
    analysis, job = request.app.state.analyses.base(body.doc, who.username)
    return {"analysis": analysis, "analysis_job": job}
