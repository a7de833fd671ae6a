"""Usage errors on the command line: exit 2, a clear message, and with --json the JSON error
document on stdout (a script reading stdout always gets one JSON document)."""

from __future__ import annotations

import json

import pytest

from helpers import UCDP_IRAQ, culpa, culpa_json

WHERE = ("--lon", "44.39", "--time", "2018-07-01")


@pytest.mark.parametrize("args,says", [
    (("attribute", "--lat", "91", *WHERE), "--lat"),
    (("attribute", "--lat", "nan", *WHERE), "--lat"),
    (("attribute", "--lat", "35", *WHERE, "--top", "-1"), "--top"),
    (("attribute", "--lat", "35", "--lon", "44"), "--time"),
    (("attribute", "--lat", "35", *WHERE, "--bogus"), "--bogus"),
    (("stats", "--no-such-option"), "--no-such-option"),
])
def test_a_usage_error_with_json_prints_the_json_error(tmp_path, args, says):
    proc = culpa(*args, "--db", tmp_path / "none.duckdb", "--json")
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 2 and says in doc["error"]
    assert says in proc.stderr


def test_a_usage_error_without_json_prints_only_to_stderr():
    proc = culpa("attribute", "--lat", "91", *WHERE)
    assert proc.returncode == 2 and proc.stdout == "" and "--lat" in proc.stderr


@pytest.fixture(scope="module")
def iraq_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("errors") / "iraq.duckdb"
    culpa_json("ingest", UCDP_IRAQ, "--db", db)
    return db


@pytest.mark.parametrize("args,flag", [
    (("fit", "--since", "nan"), "--since"),
    (("fit", "--since", ""), "--since"),
    (("fit", "--until", "2018-13-45"), "--until"),
    (("backtest", "--since", "nan"), "--since"),
    (("warn", "examples/sites_syria.yaml", "--at", "nan"), "--at"),
    (("warn", "examples/sites_syria.yaml", "--at", ""), "--at"),
    (("forecast-backtest", "--since", "nan"), "--since"),
])
def test_a_day_that_is_not_a_date_is_a_usage_error(iraq_db, args, flag):
    proc = culpa(*args, "--db", iraq_db, "--json")
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["field"] == flag and "not a date" in doc["error"]


def test_demo_refuses_a_workdir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep me")
    proc = culpa("demo", "--workdir", f, "--json")
    assert proc.returncode == 2 and "not a directory" in json.loads(proc.stdout)["error"]
    assert f.read_text() == "keep me"


def test_a_handled_ctrl_c_inside_an_eval_still_exits_130(tmp_path):
    # A Ctrl-C inside eval() of a string (typer evaluates annotations while it builds the
    # command line) made `python -m culpa` (CPython 3.11) kill itself with SIGINT at exit
    # though culpa had handled it and said so: exit -2, not 130 (2 in 40 early interrupts).
    import os
    import subprocess
    import sys

    (tmp_path / "interrupted_in_eval.py").write_text(
        "from culpa.cli.common import _exit\n"
        "try:\n"
        "    eval('(_ for _ in ()).throw(KeyboardInterrupt)')\n"
        "except KeyboardInterrupt:\n"
        "    _exit(130)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-m", "interrupted_in_eval"], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 130, proc.stderr
