"""Users (admin), background jobs, ingest and refit (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from culpa.server import auth
from culpa.team.store import Principal

router = APIRouter(prefix="/api", tags=["admin"])


class NewUser(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=1024)
    role: str = Field(pattern="^(viewer|editor|admin)$")


@router.get("/users")
def list_users(request: Request, who: Principal = Depends(auth.admin)) -> dict:
    """Every account and its role."""
    return {"users": request.app.state.team.list_users()}


@router.post("/users", status_code=201)
def add_user(body: NewUser, request: Request, who: Principal = Depends(auth.admin)) -> dict:
    """Add an account (as ``culpa user add``)."""
    return request.app.state.team.add_user(body.username, body.role, body.password)


@router.delete("/users/{username}")
def remove_user(username: str, request: Request, who: Principal = Depends(auth.admin)) -> dict:
    """Remove an account; its sessions and tokens stop working at once."""
    team = request.app.state.team
    if team.user(username) is None:
        raise HTTPException(404, f"no user {username!r}")
    team.remove_user(username)
    return {"username": username, "removed": True}


@router.get("/jobs/{job_id}")
def job(job_id: str, request: Request, who: Principal = Depends(auth.viewer)) -> dict:
    """A background job: state (queued, running, done, failed), progress 0..1, result."""
    found = request.app.state.jobs.get(job_id)
    if found is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return found.to_dict()


@router.get("/jobs")
def jobs(request: Request, who: Principal = Depends(auth.viewer)) -> dict:
    """The recent background jobs, newest first."""
    return {"jobs": [j.to_dict() for j in request.app.state.jobs.list()[:100]]}


@router.post("/ingest", status_code=202, openapi_extra={"requestBody": {
    "required": True, "content": {"application/octet-stream": {"schema": {
        "type": "string", "format": "binary",
        "description": "An event file: CSV (plain or .gz) or Parquet."}}}}})
async def ingest(request: Request, name: str = Query("upload.csv", max_length=200,
                                                     pattern=r"^[\w.\-]+$"),
                 format: str = Query("auto", max_length=16),
                 who: Principal = Depends(auth.admin)) -> dict:
    """Ingest an uploaded event file in a background job (``culpa ingest`` through the server:
    all or nothing, re-ingesting adds nothing). Poll ``GET /api/jobs/{job}``."""
    import tempfile
    from pathlib import Path

    from culpa.events import readers

    if format not in readers.FORMATS:
        raise HTTPException(422, {"error": f"unknown format {format!r}; choose one of "
                                           f"{', '.join(readers.FORMATS)}", "path": "query.format"})
    data = await request.body()
    if not data:
        raise HTTPException(422, {"error": "the body is empty: send the file's bytes",
                                  "path": "body"})
    folder = Path(tempfile.mkdtemp(prefix="culpa-ingest-"))
    path = folder / name
    path.write_bytes(data)
    engine, analyses = request.app.state.engine, request.app.state.analyses

    def work(job):
        try:
            done = engine.ingest([path], format, job)
            analyses.forget()  # the events changed: analyses are computed afresh
            return done
        finally:
            path.unlink(missing_ok=True)
            folder.rmdir()

    job = request.app.state.jobs.submit("ingest", who.username, work)
    return {"job": job.id}


@router.post("/refit", status_code=202)
def refit(request: Request, who: Principal = Depends(auth.admin)) -> dict:
    """Refit the model on the store's events in a background job (saved beside the store);
    requests keep using the current model until the new one is ready."""
    engine = request.app.state.engine
    job = request.app.state.jobs.submit("refit", who.username, engine.refit)
    return {"job": job.id}
