"""What every verb shares: the app, the --db/--json options and error-to-exit-code handling."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Callable

import typer
from rich.console import Console
from rich.markup import escape

from culpa.errors import CulpaError

app = typer.Typer(
    name="culpa",
    help="Evidence-based attribution of disputed and unclaimed attacks in armed conflicts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: People read stdout; progress bars and warnings go to stderr so --json stays clean.
out = Console()
err = Console(stderr=True, soft_wrap=True)


def default_db() -> Path:
    return Path(os.environ.get("CULPA_DB", "culpa.duckdb"))


DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB store (default: $CULPA_DB, else ./culpa.duckdb)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def resolve_db(db: Path | None) -> Path:
    return db if db is not None else default_db()


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=_json_default, allow_nan=False) + "\n")


def _json_default(o: Any) -> Any:
    import datetime as _dt

    import numpy as np

    if isinstance(o, (_dt.date, _dt.datetime)):
        return o.isoformat()
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def handle_errors(json_flag_name: str = "json") -> Callable:
    """Turn culpa's errors into a clear message and a meaningful exit code, never a traceback.

    With --json the error is also printed as {"error": ..., "exit_code": ...} on stdout.
    """

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except CulpaError as exc:
                _report(exc, exc.exit_code, kwargs.get(json_flag_name, False))
            except KeyboardInterrupt:
                err.print("[red]interrupted[/red]")
                raise typer.Exit(130) from None
            except (typer.Exit, typer.Abort, SystemExit):
                raise
            except Exception as exc:  # a bug of ours: say so plainly; CULPA_DEBUG=1 shows where
                if os.environ.get("CULPA_DEBUG"):
                    raise
                _report(RuntimeError(f"internal error ({type(exc).__name__}: {exc}); "
                                     "rerun with CULPA_DEBUG=1 for details"), 1,
                        kwargs.get(json_flag_name, False))

        return wrapper

    return deco


def _report(exc: Exception, code: int, as_json: bool) -> None:
    if as_json:
        doc: dict[str, Any] = {"error": str(exc), "exit_code": code}
        for key in ("file", "line", "field", "path"):
            val = getattr(exc, key, None)
            if val is not None:
                doc[key] = val
        emit_json(doc)
    err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
    raise typer.Exit(code)
