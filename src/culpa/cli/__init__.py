"""The command line: one verb per job, ``--json`` for machines, friendly text for people.

Each verb lives in its own module and registers itself on ``app``. Exit codes: 0 ok,
1 failure of the analysis, 2 bad input or usage.
"""

from __future__ import annotations

import os
import signal
import sys
import threading


def _before_start(signum, frame):  # Ctrl-C while the command line is still loading
    os.write(2, b"interrupted before the command started: nothing was done\n")
    os._exit(130)


# The ``culpa`` script imports this package first: until main() runs, a Ctrl-C means nothing
# was done (``python -m culpa`` sets the same handler in __main__, before this import). Only
# there: a program importing this package keeps its Ctrl-C.
_LOADING = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
            and os.path.basename(getattr(sys.modules.get("__main__"), "__file__", None) or "")
            in ("culpa", "culpa.exe"))
if _LOADING:
    signal.signal(signal.SIGINT, _before_start)

from culpa.cli.common import app  # noqa: E402

# Importing a verb's module registers it. Keep one line per verb.
from culpa.cli import ingest as _ingest  # noqa: F401,E402
from culpa.cli import stats as _stats  # noqa: F401,E402
from culpa.cli import modelling as _modelling  # noqa: F401,E402
from culpa.cli import case as _case  # noqa: F401,E402
from culpa.cli import demo as _demo  # noqa: F401,E402
from culpa.cli import warn as _warn  # noqa: F401,E402
from culpa.cli import serve as _serve  # noqa: F401,E402
from culpa.cli import user as _user  # noqa: F401,E402
from culpa.cli import audit as _audit  # noqa: F401,E402


def main() -> None:
    from culpa.cli.common import run

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    run()
