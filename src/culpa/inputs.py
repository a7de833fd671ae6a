"""Reading the small text files people hand to culpa (case files, watch-lists, alias tables)."""

from __future__ import annotations

from pathlib import Path

from culpa.errors import InputError


def read_text(path: str | Path, what: str) -> str:
    """The file's text as UTF-8, or an InputError that names the file and says what it is."""
    path = Path(path)
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what}: {exc}", file=str(path)) from None
