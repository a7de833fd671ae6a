"""The command line: one verb per job, ``--json`` for machines, friendly text for people.

Each verb lives in its own module and registers itself on ``app``. Exit codes: 0 ok,
1 failure of the analysis, 2 bad input or usage.
"""

from __future__ import annotations

from culpa.cli.common import app

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

    run()
