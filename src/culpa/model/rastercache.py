"""Rendered ground rasters kept on disk between processes, as numba keeps compiled code.

A saved model holds what renders its grounds (kernels and weights), not the rasters, so that the
file stays small; rendering the few dozen rasters one attribution reads costs a fresh process
more than the attribution. Each raster, once rendered, is written to
``$CULPA_CACHE_DIR`` (default ``$XDG_CACHE_HOME/culpa``, else ``~/.cache/culpa``) under
``rasters/``, named by a digest of everything that determines it: the grid, the kernels'
places, bandwidths and weights, and the code that renders (culpa's version and the rendering
module's size and modification time, as numba stamps its cache with its source file). The same
kernels give the same file, whichever model or process renders them. A cache that cannot be
read or written is skipped: the raster is rendered, as without a cache.
``CULPA_CACHE_DIR=off`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np


def cache_dir() -> Path | None:
    """Where the rasters are kept (None: off)."""
    env = os.environ.get("CULPA_CACHE_DIR")
    if env == "off":
        return None
    if env:
        return Path(env) / "rasters"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "culpa" / "rasters"


def _code_stamp() -> bytes:
    from culpa import __version__
    from culpa.model import background

    st = os.stat(background.__file__)
    return f"{__version__}|{st.st_size}|{st.st_mtime_ns}".encode()


def key(*parts) -> str:
    """A digest of the code stamp and ``parts`` (numbers, strings, arrays)."""
    h = hashlib.blake2b(_code_stamp(), digest_size=20)
    for p in parts:
        a = np.ascontiguousarray(p)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def read(name: str) -> np.ndarray | None:
    """The cached raster ``name``, or None."""
    root = cache_dir()
    if root is None:
        return None
    try:
        return np.load(root / f"{name}.npy", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None


def write(name: str, R: np.ndarray) -> None:
    """Keep raster ``R`` as ``name`` (atomically; nothing when the cache cannot be written)."""
    root = cache_dir()
    if root is None:
        return
    part = root / f"{name}.{os.getpid()}.{threading.get_ident()}.part.npy"
    try:
        root.mkdir(parents=True, exist_ok=True)
        np.save(part, R, allow_pickle=False)
        os.replace(part, root / f"{name}.npy")
    except OSError:
        part.unlink(missing_ok=True)
