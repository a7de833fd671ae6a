"""Shared test helpers: where the real data lives and how to run the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
UCDP_IRAQ = SHARED_DATA / "ucdp" / "ged_iraq_1989_2018_hdx.csv"
UCDP_SYRIA = SHARED_DATA / "ucdp" / "ged_syria_2016_2018.csv"


def culpa(*args: str, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the installed `culpa` command as a user would, in a fresh process."""
    proc = subprocess.run([sys.executable, "-m", "culpa", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"culpa {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def culpa_json(*args: str) -> dict:
    proc = culpa(*args, "--json", check=True)
    return json.loads(proc.stdout)
