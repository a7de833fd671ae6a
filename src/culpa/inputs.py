"""Reading the small text files people hand to culpa (case files, watch-lists, alias tables)."""

from __future__ import annotations

import stat
from pathlib import Path

from culpa.errors import InputError

#: Such files are small: one larger than this is refused before it is read.
MAX_BYTES = 8 << 20


def read_text(path: str | Path, what: str, max_bytes: int = MAX_BYTES) -> str:
    """The file's text as UTF-8, or an InputError that names the file and says what it is.

    Only a regular file is read (a FIFO would block, /dev/zero never end), and only up to
    ``max_bytes``; invalid UTF-8 is named by its line.
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{what} not found", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", file=str(path)) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"is a directory, not a {what}", file=str(path))
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"not a regular file (a device, pipe or socket), so not a {what}",
                         file=str(path))
    if info.st_size > max_bytes:
        raise InputError(f"{what} is {info.st_size:,} bytes; at most {max_bytes:,} are read",
                         file=str(path))
    try:
        data = path.read_bytes()[: max_bytes + 1]
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", file=str(path)) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{what} is not UTF-8 text (byte {data[exc.start:exc.start + 1]!r}); "
                         f"save it as UTF-8", file=str(path), line=line) from None
