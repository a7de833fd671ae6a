"""What every verb shares: the app, the --db/--json options and error-to-exit-code handling."""

from __future__ import annotations

import functools
import json
import os
import sys
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Callable

import typer
from typer._click.exceptions import ClickException  # typer vendors click since 0.2x

from culpa.errors import CulpaError

app = typer.Typer(
    name="culpa",
    help="Evidence-based attribution of disputed and unclaimed attacks in armed conflicts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

class _LazyConsole:
    """A Rich console made on first use, so that ``culpa --help`` does not load Rich."""

    def __init__(self, **options: Any):
        self._options, self._console = options, None

    @property
    def real(self):
        """The Rich ``Console`` itself (for Rich objects that take one)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


#: People read stdout; progress bars and warnings go to stderr so --json stays clean.
out = _LazyConsole()
err = _LazyConsole(stderr=True, soft_wrap=True)


def default_db() -> Path:
    from culpa.api import default_db as _default

    return _default()


DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB store (default: $CULPA_DB, else ./culpa.duckdb)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def resolve_db(db: Path | None) -> Path:
    return db if db is not None else default_db()


def workspace(db: Path | None):
    """The library API over the store a verb was given (``--db``, else the default)."""
    from culpa.api import Workspace

    return Workspace(resolve_db(db))


@contextmanager
def status(enabled: bool) -> Iterator[Callable]:
    """A progress callback for the library (``progress(stage, done, total)``) that shows the
    current stage as a spinner on stderr; silent when not ``enabled`` (``--json``)."""
    current: dict[str, Any] = {}

    def progress(stage: str, done: int = 0, total: int | None = None) -> None:
        if not enabled:
            return
        if "status" not in current:
            current["status"] = err.status(f"{stage} ...", spinner="dots")
            current["status"].__enter__()
        else:
            current["status"].update(f"{stage} ...")

    try:
        yield progress
    finally:
        if "status" in current:
            current["status"].__exit__(None, None, None)


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


#: Whether the verb of this process has finished its work, and whether an interrupt has been
#: reported already (see ``run``).
_VERB = {"started": False, "done": False, "reported": False}


def say_interrupted(text: str) -> None:
    """Report a Ctrl-C on stderr plainly, not through the Rich console: the interrupt may have
    landed while that console was drawing (a progress bar), leaving it holding its output."""
    _VERB["reported"] = True
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def handle_errors(json_flag_name: str = "json", fields: dict[str, str] | None = None
                  ) -> Callable:
    """Turn culpa's errors into a clear message and a meaningful exit code, never a traceback.

    With --json the error is also printed as {"error": ..., "exit_code": ...} on stdout.
    An error naming a library argument is shown with the verb's flag of the same name;
    ``fields`` adds library argument names -> flags for arguments named otherwise.
    """

    def deco(fn: Callable) -> Callable:
        flags = _flags(fn) | dict(fields or {})

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _VERB["started"] = True
            try:
                out = fn(*args, **kwargs)
                _VERB["done"] = True
                return out
            except CulpaError as exc:
                _report(_as_flag(exc, flags), exc.exit_code, kwargs.get(json_flag_name, False))
            except KeyboardInterrupt:
                say_interrupted("interrupted")
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


def _flags(fn: Callable) -> dict[str, str]:
    """A verb's library argument names -> its option flags (``min_prob`` -> ``--min-prob``,
    ``model_path`` -> ``--model``), read from the verb's own typer options."""
    import typing

    flags = {}
    for name, hint in typing.get_type_hints(fn, include_extras=True).items():
        for meta in getattr(hint, "__metadata__", ()):
            # in Annotated form typer takes a leading "--flag" given as ``default`` as a decl
            decls = [d for d in (getattr(meta, "default", None),
                                 *(getattr(meta, "param_decls", None) or ()))
                     if isinstance(d, str) and d.startswith("--")]
            flag = decls[0] if decls else "--" + name.replace("_", "-")
            if isinstance(meta, typer.models.OptionInfo):
                flags[name] = flag
                flags[flag.lstrip("-").replace("-", "_")] = flag
    return flags


def _as_flag(exc: CulpaError, flags: dict[str, str]) -> CulpaError:
    """The library names its arguments; on the command line the field is the verb's flag."""
    from culpa.errors import InputError

    field = getattr(exc, "field", None)
    if isinstance(exc, InputError) and field in flags:
        return InputError(exc.detail, file=exc.file, line=exc.line, field=flags[field],
                          path=exc.path)
    return exc


def run(args: list[str] | None = None) -> None:
    """Run the app. Usage errors (an unknown option, a missing or out-of-range value) exit 2
    as usual; with ``--json`` among the arguments they also print the JSON error document."""
    args = sys.argv[1:] if args is None else list(args)
    _VERB.update(started=False, done=False, reported=False)
    try:
        code = app(args=args, prog_name="culpa", standalone_mode=False)
    except ClickException as exc:
        if "--json" in args:
            emit_json({"error": exc.format_message(), "exit_code": exc.exit_code})
        exc.show()
        _exit(exc.exit_code)
    except typer.Abort:
        err.print("[red]aborted[/red]")
        _exit(1)
    except KeyboardInterrupt:  # outside a verb: the verbs report their own
        code = 130
    # typer also turns a Ctrl-C outside the verb (while it builds the command line, parses the
    # arguments or tidies up after the verb) into exit 130, without a word
    if code == 130 and not _VERB["reported"]:
        if _VERB["done"]:  # it had done its work and said so: that is the outcome
            _exit(0)
        say_interrupted("interrupted" if _VERB["started"] else
                        "interrupted before the command started: nothing was done")
    _exit(code if isinstance(code, int) else 0)


def _exit(code: int) -> None:
    """Exit with the command's outcome: a Ctrl-C after the command has finished (while the
    interpreter shuts down) must not turn a done ingest into a silent death by signal."""
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (the CLI run inside a test's thread)
        pass
    # A Ctrl-C that interrupted an eval() of a string (typer evaluates the verbs' annotations
    # so while it builds the command line) leaves CPython (3.11) marked as ending on an
    # unhandled KeyboardInterrupt, although culpa handled it: the interpreter then kills
    # itself with SIGINT at exit, exit -2 instead of 130. Each eval() of a string clears that
    # mark as it starts.
    eval("None")
    sys.exit(code)


def _report(exc: Exception, code: int, as_json: bool) -> None:
    if as_json:
        doc: dict[str, Any] = {"error": str(exc), "exit_code": code}
        for key in ("file", "line", "field", "path"):
            val = getattr(exc, key, None)
            if val is not None:
                doc[key] = val
        emit_json(doc)
    if code == 130:  # an interrupt (IngestInterrupted): the console may be mid-drawing
        say_interrupted(f"error: {exc}")
        raise typer.Exit(code)
    from rich.markup import escape

    err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
    raise typer.Exit(code)
