"""Who may call what: accounts, sessions, CSRF and roles. The scheme is a contract for pages.

How a client authenticates
--------------------------
* ``POST /api/login`` with JSON ``{"username", "password"}`` answers
  ``{"token", "username", "role", "csrf_token", "expires_at"}`` and sets two cookies:

  - ``culpa_session``: the session token; ``HttpOnly; SameSite=Strict; Path=/``. Browsers send it
    with every request to the server; scripts cannot read it.
  - ``culpa_csrf``: the session's CSRF token; ``SameSite=Strict; Path=/``, *readable* by the
    page's script (not HttpOnly).

* A request authenticated by the cookie that changes anything (POST, PUT, PATCH, DELETE) must
  carry the CSRF token in the header ``X-CSRF-Token`` (the value of the ``culpa_csrf`` cookie, or
  ``csrf_token`` from the login answer or from ``GET /api/me``); without it: 403.
* Scripts send ``Authorization: Bearer TOKEN`` instead: the ``token`` from the login answer, or a
  long-lived token from ``culpa user token NAME``. Bearer requests need no CSRF token (a browser
  never adds that header by itself). When both are present, the bearer token decides.
* ``GET /api/me`` -> ``{"username", "role", "csrf_token", "expires_at"}`` is how a page checks
  its session: 401 means "show the login form".
* ``POST /api/logout`` ends the session and clears both cookies.
* Sessions expire (``expires_at``, unix seconds; 8 hours by default, ``culpa serve
  --session-hours``); an expired or unknown token gets 401. Failed logins are rate-limited per
  user name (``LOGIN_FAILURES``) and per client address (``ADDRESS_FAILURES``, over all names)
  within ``LOGIN_WINDOW`` seconds; past that, attempts get 429 with ``Retry-After`` until the
  window has passed.

Roles
-----
``viewer`` reads everything; ``editor`` also creates and edits cases and records judgements;
``admin`` also manages users, ingests events and starts refits. Deleting a case takes its owner
or an admin. Every endpoint except ``GET /api/health`` needs an account: 401 without one, 403
with one whose role is too low.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from collections.abc import Callable

from fastapi import Depends, HTTPException, Request

from culpa.team.store import Principal

SESSION_COOKIE = "culpa_session"
CSRF_COOKIE = "culpa_csrf"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_FAILURES = 5
ADDRESS_FAILURES = 20
LOGIN_WINDOW = 300.0
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class LoginLimiter:
    """Counts failed logins per key (user name, client address) in a sliding window."""

    def __init__(self, failures: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW,
                 address_failures: int = ADDRESS_FAILURES):
        self.failures, self.window, self.address_failures = failures, window, address_failures
        self._seen: dict[str, deque] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> float:
        """Seconds until a login may be tried again; 0 when it may now."""
        now = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                q = self._seen.get(key)
                while q and q[0] <= now - self.window:
                    q.popleft()
                most = self.address_failures if key.startswith("addr:") else self.failures
                if q is not None and len(q) >= most:
                    wait = max(wait, q[0] + self.window - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._seen.setdefault(key, deque()).append(now)

    def succeeded(self, username_key: str) -> None:
        with self._lock:
            self._seen.pop(username_key, None)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def _lookup(team, token: str) -> Principal | None:
    """The token's owner: from the in-process cache on the event loop, else from the database
    in a worker thread."""
    from starlette.concurrency import run_in_threadpool

    who = team.remembered_principal(token)
    if who is None:
        who = await run_in_threadpool(team.principal, token)
    return who


async def principal(request: Request) -> Principal:
    """The caller, from the bearer token or the session cookie (with CSRF for writes)."""
    team = request.app.state.team
    token = bearer(request)
    if token is not None:
        who = await _lookup(team, token)
        if who is None:
            raise HTTPException(401, "the token is unknown or has expired; log in again")
        return who
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise HTTPException(401, "log in first (POST /api/login), or send "
                                 "'Authorization: Bearer TOKEN'")
    who = await _lookup(team, token)
    if who is None:
        raise HTTPException(401, "the session is unknown or has expired; log in again")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if not sent or not hmac.compare_digest(sent.encode(), (who.csrf or "").encode()):
            raise HTTPException(403, f"a change made with the session cookie needs the "
                                     f"{CSRF_HEADER} header (the {CSRF_COOKIE} cookie's value)")
    return who


def require(role: str) -> Callable[..., Principal]:
    """A dependency: the caller, who must hold at least ``role``."""

    async def check(who: Principal = Depends(principal)) -> Principal:
        if not who.can(role):
            raise HTTPException(403, f"this needs the {role} role; {who.username} is a "
                                     f"{who.role}")
        return who

    return check


viewer = require("viewer")
editor = require("editor")
admin = require("admin")
