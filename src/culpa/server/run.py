"""Run the app on uvicorn (what ``culpa serve`` calls)."""

from __future__ import annotations

from culpa.server.app import Settings, create_app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "info") -> None:
    import uvicorn

    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False,
                server_header=False, timeout_graceful_shutdown=5)
