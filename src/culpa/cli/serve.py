"""culpa serve — the REST API (and the workbench, when installed) on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from culpa.cli.common import DbOption, app, err, handle_errors, resolve_db

CasesOption = Annotated[str | None, typer.Option(
    "--cases", help="Team store URL (default: $CULPA_CASES_URL, else SQLite beside the "
                    "event store, DB.cases.sqlite); e.g. postgresql://user@host/culpa.")]


@app.command()
@handle_errors()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8000,
    cases: CasesOption = None,
    session_hours: Annotated[float, typer.Option(
        "--session-hours", min=0.01, help="How long a login lasts.")] = 8.0,
) -> None:
    """Serve the REST API over the event store and the team's cases."""
    from culpa.server.app import Settings
    from culpa.server.run import serve as run
    from culpa.team import default_cases_url

    path = resolve_db(db)
    url = default_cases_url(path, cases)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]listening on {host}: anyone who can reach it can try to log in; "
                  "put it behind TLS[/yellow]")
    err.print(f"culpa serve: events {path}, cases {_safe(url)}, http://{host}:{port}/api/health")
    run(Settings(db=path, cases_url=url, session_hours=session_hours), host=host, port=port)


def _safe(url: str) -> str:
    """The URL without its password, for the log."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable URL)"
