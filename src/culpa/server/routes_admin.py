"""Users (admin), background jobs, ingest and refit (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
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
