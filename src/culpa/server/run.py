"""Run the app on uvicorn (what ``culpa serve`` calls).

uvicorn gets its fast parts when they are installed (they are culpa dependencies): the
httptools HTTP parser and the uvloop event loop.
"""

from __future__ import annotations

import importlib.util

from culpa.server.app import Settings, create_app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "info") -> None:
    import uvicorn

    app = create_app(settings)
    fast = {}
    if importlib.util.find_spec("httptools") is not None:
        fast["http"] = "httptools"
    if importlib.util.find_spec("uvloop") is not None:
        fast["loop"] = "uvloop"
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False,
                server_header=False, timeout_graceful_shutdown=5, **fast)
