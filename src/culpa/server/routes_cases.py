"""Team cases: create, list, read (with the analysis), save (optimistic), delete, history,
judgements and exports."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from culpa.server import auth
from culpa.server.app import MAX_PAGE
from culpa.server.documents import export_yaml, read_body, validate
from culpa.team import pooling
from culpa.team.store import Principal

router = APIRouter(prefix="/api/cases", tags=["cases"])

_CASE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "description":
                                            "A case document, as in `culpa case` files."}},
            "application/yaml": {"schema": {"type": "string", "description":
                                            "A case file's YAML text."}},
        },
    },
}
_CASE_ID = {"max_length": 64}


class Save(BaseModel):
    version: int = Field(ge=1, description="The version the edit started from.")
    doc: dict[str, Any] = Field(description="The whole case document.")


class Judgement(BaseModel):
    items: dict[str, dict[str, Any]] = Field(
        description="ITEM_ID -> {likelihood | rating, reliability, credibility}")


def _analyses(request: Request):
    return request.app.state.analyses


@router.post("", status_code=201, openapi_extra=_CASE_BODY)
async def create_case(request: Request, who: Principal = Depends(auth.editor)) -> dict:
    """A new case from a document (JSON, or YAML with Content-Type: application/yaml)."""
    doc, text = read_body(await request.body(), request.headers.get("content-type"))
    validate(doc, text)
    made = request.app.state.team.create_case(doc, text, who.username)
    _analyses(request).base(doc, who.username)  # start the analysis now
    return made


@router.get("")
def list_cases(request: Request, limit: int = Query(100, ge=1, le=MAX_PAGE),
               offset: int = Query(0, ge=0, le=2**31 - 1),
               who: Principal = Depends(auth.viewer)) -> dict:
    """The team's cases, most recently changed first (``leading`` null until analysed)."""
    rows, total = request.app.state.team.list_cases(limit, offset)
    out = []
    for r in rows:
        analysis, _ = _analyses(request).base(r["doc"], who.username)
        out.append({"id": r["id"], "title": r["title"], "version": r["version"],
                    "owner": r["owner"], "updated_at": r["updated_at"],
                    "updated_by": r["updated_by"],
                    "leading": None if analysis is None else analysis["leading"]})
    return {"cases": out, "total": total, "limit": limit, "offset": offset}


@router.get("/{case_id}")
async def get_case(case_id: str, request: Request,
                   who: Principal = Depends(auth.viewer)) -> Response:
    """The case, its version and its analysis (``culpa case --json`` for its doc, plus each
    analyst, the pooled posterior and the disagreement once anyone has recorded a judgement)."""
    from starlette.concurrency import run_in_threadpool

    case_id = _id(case_id)
    responses = _analyses(request).responses
    body = responses.get(case_id)
    if body is None:
        body = await run_in_threadpool(_case_body, request, case_id, who)
    return Response(body, media_type="application/json")


def _case_body(request: Request, case_id: str, who: Principal) -> bytes:
    """GET /api/cases/{id}'s body, serialised (and kept when its analysis is ready)."""
    from culpa.server.analyses import dumps

    team, analyses = request.app.state.team, _analyses(request)
    stamp = analyses.responses.stamp(case_id)
    row = team.get_case(case_id)
    judgements = team.judgements(row["id"])
    analysis, job = analyses.full(row["doc"], judgements, who.username)
    body = dumps({"id": row["id"], "version": row["version"], "title": row["title"],
                  "owner": row["owner"], "doc": row["doc"], "analysis": analysis,
                  "analysis_job": job, "judgements": judgements,
                  "created_at": row["created_at"], "updated_at": row["updated_at"],
                  "updated_by": row["updated_by"]})
    if analysis is not None:
        analyses.responses.put(case_id, stamp, body)
    return body


@router.put("/{case_id}")
def save_case(case_id: str, body: Save, request: Request,
              who: Principal = Depends(auth.editor)) -> dict:
    """Save a new version; 409 with the current ``version`` if someone saved since yours."""
    validate(body.doc, None, where="doc.")
    try:
        saved = request.app.state.team.update_case(_id(case_id), body.version, body.doc, None,
                                                   who.username)
    finally:
        _analyses(request).responses.changed(case_id)
    _analyses(request).base(body.doc, who.username)
    return saved


@router.delete("/{case_id}")
def delete_case(case_id: str, request: Request, who: Principal = Depends(auth.editor)) -> dict:
    """Delete a case (its owner or an admin); its history stays."""
    team = request.app.state.team
    row = team.get_case(_id(case_id))
    if row["owner"] != who.username and not who.can("admin"):
        raise HTTPException(403, f"only {row['owner']} (the owner) or an admin may delete it")
    try:
        team.delete_case(row["id"], who.username)
    finally:
        _analyses(request).responses.changed(row["id"])
    return {"id": row["id"], "deleted": True}


@router.get("/{case_id}/history")
def case_history(case_id: str, request: Request,
                 who: Principal = Depends(auth.viewer)) -> dict:
    """Every change to the case, oldest first, each with its hash in the chain."""
    entries = request.app.state.team.history(_id(case_id))
    if not entries:
        raise HTTPException(404, f"no case {case_id!r}")
    return {"entries": entries}


@router.put("/{case_id}/judgements/me")
def save_judgement(case_id: str, body: Judgement, request: Request,
                   who: Principal = Depends(auth.editor)) -> dict:
    """Record your own likelihoods or ratings and grades for some of the case's items."""
    team = request.app.state.team
    row = team.get_case(_id(case_id))
    pooling.check_judgement(row["doc"], body.items, validate)
    try:
        team.set_judgement(row["id"], who.username, body.items)
    finally:
        _analyses(request).responses.changed(row["id"])
    return {"id": row["id"], "user": who.username, "items": body.items}


@router.get("/{case_id}/judgements")
def list_judgements(case_id: str, request: Request,
                    who: Principal = Depends(auth.viewer)) -> dict:
    """Each analyst's judgement: user -> items."""
    team = request.app.state.team
    row = team.get_case(_id(case_id))
    return {"id": row["id"], "judgements": team.judgements(row["id"])}


@router.get("/{case_id}/export.yaml")
def export_case_yaml(case_id: str, request: Request,
                     who: Principal = Depends(auth.viewer)) -> Response:
    """The case file (the YAML it was posted as, exactly, or its document written as YAML)."""
    row = request.app.state.team.get_case(_id(case_id))
    return Response(export_yaml(row), media_type="application/yaml",
                    headers=_attachment(row, "yaml"))


@router.get("/{case_id}/export.json")
def export_case_json(case_id: str, request: Request,
                     who: Principal = Depends(auth.viewer)) -> Response:
    """The case document and its analysis as one JSON file."""
    team = request.app.state.team
    row = team.get_case(_id(case_id))
    analysis, job = _analyses(request).full(row["doc"], team.judgements(row["id"]),
                                            who.username)
    if analysis is None:
        raise _not_ready(job)
    body = {"id": row["id"], "version": row["version"], "doc": row["doc"], "analysis": analysis}
    return Response(json.dumps(body, indent=2), media_type="application/json",
                    headers=_attachment(row, "json"))


@router.get("/{case_id}/report.html", response_class=HTMLResponse)
def case_report(case_id: str, request: Request,
                who: Principal = Depends(auth.viewer)) -> Response:
    """The self-contained HTML report of the case (as ``culpa case --html``)."""
    import tempfile
    from pathlib import Path

    from culpa.report.html import render_case_report

    row = request.app.state.team.get_case(_id(case_id))
    analysis, job = _analyses(request).base(row["doc"], who.username)
    if analysis is None:
        raise _not_ready(job)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        render_case_report(analysis, out)
        html = out.read_text(encoding="utf-8")
    # The report inlines its scripts and data and fetches nothing: its own scripts run (by the
    # SHA-256 hashes its page lists, as the CLI's report does), no other script, no network.
    csp = ("default-src 'none'; script-src " + _script_sources(html) + "; style-src "
           "'unsafe-inline'; img-src data: blob:; font-src data:; base-uri 'none'; "
           "form-action 'none'; frame-ancestors 'none'")
    return HTMLResponse(html, headers={"Content-Security-Policy": csp,
                                       **_attachment(row, "html", inline=True)})


def _script_sources(page: str) -> str:
    """The script-src of the report's own Content-Security-Policy (the hashes of exactly its
    inline scripts); 'none' when the page names none."""
    import re
    from html import unescape

    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    if meta:
        for part in unescape(meta.group(1)).split(";"):
            name, _, sources = part.strip().partition(" ")
            if name == "script-src" and "'unsafe-inline'" not in sources and sources.strip():
                return sources.strip()
    return "'none'"


def _id(case_id: str) -> str:
    if len(case_id) > 64:
        raise HTTPException(404, "no such case")
    return case_id


def _not_ready(job: str | None) -> HTTPException:
    return HTTPException(503, {"error": "the analysis is still being computed; poll the job "
                                        "and ask again", "analysis_job": job},
                         headers={"Retry-After": "2"})


def _attachment(row: dict, ext: str, inline: bool = False) -> dict:
    kind = "inline" if inline else "attachment"
    return {"Content-Disposition": f'{kind}; filename="case-{row["id"]}.{ext}"'}
