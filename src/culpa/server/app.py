"""The FastAPI application: ``create_app(Settings(...))``.

The app holds three things for its whole life (``app.state``): the team store (cases, users,
history), the library API's ``Workspace`` over the DuckDB event store (which it keeps open
read-only, so a ``culpa ingest`` from another process is refused while the server runs), and the
background job runner (refits and ingests; requests never fit).

Extension point for the workbench: after the API routes are added, ``create_app`` imports
``culpa.web`` if it exists and calls ``culpa.web.install(app)``. That function may add page
routes (``/``, ``/cases/{id}``), mount static files and use :mod:`culpa.server.auth`'s
dependencies. Every response without its own ``Content-Security-Policy`` gets :data:`CSP`
(everything from this server only; no inline script), so pages must load their scripts and
styles as files served by culpa.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from culpa.errors import AnalysisError, InputError

log = logging.getLogger("culpa.server")

#: Request bodies larger than this get 413 (an ingest upload has its own, larger limit).
MAX_BODY = 1 << 20
MAX_UPLOAD = 512 << 20
#: The most rows one page of a list endpoint returns.
MAX_PAGE = 1000

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")


@dataclass
class Settings:
    db: Path
    cases_url: str
    session_hours: float = 8.0
    max_body: int = MAX_BODY
    max_upload: int = MAX_UPLOAD
    login_failures: int = 5
    login_window: float = 300.0
    extra: dict = field(default_factory=dict)


def create_app(settings: Settings) -> FastAPI:
    """Build the app; the stores open when it starts (its lifespan), and close when it stops."""
    from contextlib import asynccontextmanager

    from culpa.server import auth, routes_cases, routes_events, routes_session, routes_admin
    from culpa.server.limits import BodyLimit, SecurityHeaders

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        open_state(app, settings)
        try:
            yield
        finally:
            close_state(app)

    app = FastAPI(title="culpa", version=_version(), lifespan=lifespan,
                  summary="Evidence-based attribution: events, model, team cases.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.limiter = auth.LoginLimiter(settings.login_failures, settings.login_window)
    app.add_middleware(SecurityHeaders, csp=CSP)
    app.add_middleware(BodyLimit, limit=settings.max_body, upload_limit=settings.max_upload,
                       upload_paths=("/api/ingest",))
    install_errors(app)
    for module in (routes_session, routes_events, routes_cases, routes_admin):
        app.include_router(module.router)
    install_schema(app)
    install_web(app)
    return app


def install_schema(app: FastAPI) -> None:
    """The OpenAPI schema at /api/openapi.json, for accounts only like everything else."""
    from fastapi import Depends

    from culpa.server import auth

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(who=Depends(auth.viewer)) -> JSONResponse:
        return JSONResponse(app.openapi())


def open_state(app: FastAPI, settings: Settings) -> None:
    from culpa.server.analyses import Analyses
    from culpa.server.jobs import Jobs
    from culpa.server.state import Engine
    from culpa.team.store import TeamStore

    app.state.team = TeamStore(settings.cases_url)
    app.state.jobs = Jobs()
    app.state.engine = Engine(settings.db, app.state.jobs)
    app.state.jobs.after = app.state.engine.relock
    app.state.analyses = Analyses(app.state.engine, app.state.jobs)


def close_state(app: FastAPI) -> None:
    for name in ("jobs", "engine", "team"):
        obj = getattr(app.state, name, None)
        if obj is not None:
            obj.close()


def install_web(app: FastAPI) -> None:
    """Let the workbench (``culpa.web``) add its pages, when it is installed."""
    if importlib.util.find_spec("culpa.web") is None:
        return
    import culpa.web

    install = getattr(culpa.web, "install", None)
    if install is not None:
        install(app)


def install_errors(app: FastAPI) -> None:
    """Every error is ``{"error": MESSAGE, ...}`` with the usual status."""
    from culpa.team.store import NotFound, VersionConflict

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        body = exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = [{"path": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"path": None, "message": "invalid request"}
        return JSONResponse({"error": f"{first['path']}: {first['message']}",
                             "path": first["path"], "errors": errors}, status_code=422)

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError):
        body = {"error": str(exc)}
        body.update({k: getattr(exc, k) for k in ("path", "field", "line")
                     if getattr(exc, k, None) is not None})
        return JSONResponse(body, status_code=422)

    @app.exception_handler(AnalysisError)
    async def failed(request: Request, exc: AnalysisError):
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(VersionConflict)
    async def conflict(request: Request, exc: VersionConflict):
        return JSONResponse({"error": f"the case changed since you loaded it: it is now at "
                                      f"version {exc.current}; load it again and merge",
                             "version": exc.current}, status_code=409)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"},
                            status_code=500)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("culpa")
    except PackageNotFoundError:
        return "0"
