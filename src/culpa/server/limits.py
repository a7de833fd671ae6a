"""ASGI middleware: request size limits (413) and the security headers every response gets."""

from __future__ import annotations

import json

from fastapi import HTTPException


class TooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on as it is (a 413)."""

    def __init__(self, limit: int):
        super().__init__(413, {"error": f"the request body is larger than {limit:,} bytes",
                               "limit": limit})


class BodyLimit:
    """Refuse bodies over ``limit`` bytes (``upload_limit`` on ``upload_paths``) with 413,
    whether the client declares the length or streams the body."""

    def __init__(self, app, limit: int, upload_limit: int, upload_paths: tuple[str, ...] = ()):
        self.app, self.limit, self.upload_limit = app, limit, upload_limit
        self.upload_paths = upload_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.upload_limit if scope["path"] in self.upload_paths else self.limit
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _send_json(send, 400, {"error": "bad Content-Length"})
                if declared > limit:
                    return await _send_json(send, 413, TooLarge(limit).detail)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TooLarge(limit)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except TooLarge as exc:
            if not started:
                await _send_json(send, 413, exc.detail)


class SecurityHeaders:
    """A strict CSP (unless the response sets its own) and the usual hardening headers."""

    def __init__(self, app, csp: str):
        self.app = app
        self.headers = [(b"content-security-policy", csp.encode()),
                        (b"x-content-type-options", b"nosniff"),
                        (b"referrer-policy", b"no-referrer"),
                        (b"x-frame-options", b"DENY"),
                        (b"cross-origin-opener-policy", b"same-origin")]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in self.headers if k not in have]
            await send(message)

        await self.app(scope, receive, with_headers)


async def _send_json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})
