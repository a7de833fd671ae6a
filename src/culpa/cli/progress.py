"""A Rich byte progress bar on stderr, silent when stderr is not a terminal or --json is asked for."""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator

from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                           TimeRemainingColumn, TransferSpeedColumn)

from culpa.cli.common import err


@contextmanager
def byte_progress(description: str, total: int, enabled: bool = True) -> Iterator:
    """Yields ``advance(n_bytes)``."""
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), TimeRemainingColumn(), console=err.real,
                        transient=True, disable=not enabled or not err.is_terminal)
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
