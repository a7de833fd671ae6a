"""Health, login, logout and who-am-I."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from culpa.server import auth
from culpa.team.store import Principal

router = APIRouter(prefix="/api", tags=["session"])


class Login(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


@router.get("/health")
def health(request: Request) -> dict:
    """Is the server up, how many events does it hold, is its model ready? (No account.)"""
    engine = request.app.state.engine
    return {"status": "ok", "events": engine.events_count(),
            "model": "ready" if engine.model is not None else
            ("fitting" if engine.fit_job else "none"), "model_job": engine.fit_job}


@router.post("/login")
def login(body: Login, request: Request, response: Response) -> dict:
    """Check the password; start a session (cookies + token)."""
    limiter: auth.LoginLimiter = request.app.state.limiter
    keys = (f"user:{body.username}", f"addr:{request.client.host if request.client else '-'}")
    wait = limiter.retry_after(*keys)
    if wait > 0:
        raise HTTPException(429, f"too many failed logins; try again in {wait:.0f} s",
                            headers={"Retry-After": str(int(wait) + 1)})
    team = request.app.state.team
    user = team.check_login(body.username, body.password)
    if user is None:
        limiter.failed(*keys)
        raise HTTPException(401, "wrong user name or password")
    limiter.succeeded(keys[0])
    seconds = request.app.state.settings.session_hours * 3600
    token, csrf = team.new_session(user["username"], seconds)
    response.set_cookie(auth.SESSION_COOKIE, token, max_age=int(seconds), httponly=True,
                        samesite="strict", path="/")
    response.set_cookie(auth.CSRF_COOKIE, csrf, max_age=int(seconds), httponly=False,
                        samesite="strict", path="/")
    return {"token": token, "username": user["username"], "role": user["role"],
            "csrf_token": csrf, "expires_at": time.time() + seconds}


@router.post("/logout")
def logout(request: Request, response: Response,
           who: Principal = Depends(auth.viewer)) -> dict:
    """End this session (a bearer API token stays valid; remove the user to revoke it)."""
    token = auth.bearer(request) or request.cookies.get(auth.SESSION_COOKIE)
    if token:
        request.app.state.team.end_session(token)
    response.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    response.delete_cookie(auth.CSRF_COOKIE, path="/", samesite="strict")
    return {"status": "logged out", "username": who.username}


@router.get("/me")
def me(who: Principal = Depends(auth.viewer)) -> dict:
    """Who the session or token belongs to (a page's session check: 401 = log in)."""
    return {"username": who.username, "role": who.role, "csrf_token": who.csrf,
            "expires_at": who.expires_at, "kind": who.kind}
