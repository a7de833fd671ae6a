"""``culpa serve``: the REST API over the library API and the team store.

:mod:`culpa.server.app` builds the FastAPI app (``create_app``), :mod:`culpa.server.auth`
documents and enforces the auth scheme (cookies, CSRF, bearer tokens, roles), the ``routes_*``
modules hold the endpoints, and :func:`culpa.server.run.serve` runs it on uvicorn.
"""
