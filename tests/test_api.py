"""`culpa.Workspace`, the library API under every face, on the real Iraq extract: the same
question gets the same JSON from the library and from the command line, models are fitted once
and reused, and it can be shared between threads."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from importlib import resources
from pathlib import Path

import pytest

from helpers import REPO, UCDP_IRAQ, culpa, culpa_json

DEMO_CASE = Path(str(resources.files("culpa.data").joinpath("demo_case.yaml")))


def same(doc) -> dict:
    """A library result as the command line prints it (through JSON)."""
    return json.loads(json.dumps(doc, allow_nan=False))


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A store of the Iraq extract with a model of 2017-2018 fitted and saved beside it."""
    from culpa import Workspace

    ws = Workspace(tmp_path_factory.mktemp("api") / "iraq.duckdb")
    ws.ingest([UCDP_IRAQ])
    ws.fit(since="2017-01-01")
    return ws


def test_importing_culpa_loads_nothing_heavy():
    code = ("import sys, culpa; from culpa import Workspace; "
            "print(sorted(m for m in ('numpy', 'pandas', 'duckdb', 'numba', 'sklearn') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "[]"


def test_attribute_gives_the_command_lines_json(ws):
    args = dict(lat=35.47, lon=44.39, time="2018-07-01", event_type="one-sided",
                target="Civilians", top=3)
    cli = culpa_json("attribute", "--db", ws.db, "--lat", "35.47", "--lon", "44.39", "--time",
                     "2018-07-01", "--event-type", "one-sided", "--target", "Civilians",
                     "--top", "3")
    assert same(ws.attribute(**args)) == cli
    assert cli["actors"][0]["actor"] == "IS"


def test_chain_gives_the_command_lines_json(ws):
    cli = culpa_json("chain", "ucdp:267464", "--db", ws.db, "--min-prob", "0.01")
    assert same(ws.chain("ucdp:267464", min_prob=0.01)) == cli
    assert cli["id"] == "ucdp:267464"


def test_case_gives_the_command_lines_json_from_a_path_text_or_mapping(ws):
    import yaml

    cli = culpa_json("case", DEMO_CASE, "--db", ws.db)
    assert same(ws.case(DEMO_CASE)) == cli
    text = DEMO_CASE.read_text(encoding="utf-8")
    assert same(ws.case(text)) == cli
    assert same(ws.case(yaml.safe_load(text))) == cli
    assert cli["leading"] == "IS" and cli["model_prior"] is not None


def test_a_case_model_is_fitted_once_and_saved_beside_the_store(ws):
    from culpa import ModelNotReady

    request = ws.case_request(DEMO_CASE)
    assert request is not None and ws.is_ready(request)  # the test above fitted it
    assert (ws.model_dir / f"{ws.model_key(request)}.npz").exists()
    later = dict(yaml_case(), incident={"time": "2018-03-01", "lat": 35.47, "lon": 44.39})
    fresh = ws.case_request(later)
    assert not ws.is_ready(fresh)
    with pytest.raises(ModelNotReady) as caught:
        ws.case(later, fit=False)
    assert caught.value.request == fresh and caught.value.exit_code == 1


def yaml_case() -> dict:
    import yaml

    return yaml.safe_load(DEMO_CASE.read_text(encoding="utf-8"))


def test_a_bad_case_mapping_names_the_key_path(ws):
    from culpa.errors import InputError

    doc = yaml_case()
    doc["evidence"][0]["reliability"] = "Z"
    with pytest.raises(InputError) as caught:
        ws.case(doc)
    assert caught.value.path == "evidence[0].reliability" and caught.value.line is None


def test_warn_takes_a_list_of_sites_and_fits_only_before_at(ws):
    from culpa import Workspace

    sites = [{"name": "Kirkuk", "lat": 35.47, "lon": 44.39, "radius_km": 25}]
    doc = ws.warn(sites, "2018-03-01", horizon_days=7)
    assert doc["model"]["fitted_until"] <= "2018-03-01"
    assert doc["sites"][0]["name"] == "Kirkuk" and doc["sites"][0]["level"] in {
        "normal", "elevated", "high"}
    assert ws.is_ready(ws.model_request("warn", at="2018-03-01"))
    again = Workspace(ws.db).warn(sites, "2018-03-01", horizon_days=7)  # another process's view
    assert again["sites"] == doc["sites"]  # the same model, loaded, not refitted
    assert again["model"]["source"].startswith("saved model fitted on 7,")


def test_one_model_serves_many_threads(ws):
    want = same(ws.attribute(35.47, 44.39, "2018-07-01"))
    got, errors = [], []

    def ask():
        try:
            got.append(same(ws.attribute(35.47, 44.39, "2018-07-01")))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and got == [want] * 8


def test_a_lent_store_handle_serves_every_read(ws, tmp_path):
    """``Workspace(reader=...)``: a process holding the store open (the server) lends that
    handle, and every read (events, stats, the case context, model keys) goes through it.
    The Workspace's own file here is an empty store, so a read that went around the reader
    would show."""
    from contextlib import contextmanager

    from culpa import Workspace
    from culpa.events.store import Store

    empty = tmp_path / "empty.duckdb"
    Store(empty).close()
    held = Store(ws.db, read_only=True)
    lent = []

    @contextmanager
    def lend():
        lent.append(1)
        yield held

    try:
        other = Workspace(empty, model_dir=ws.model_dir, reader=lend)
        assert other.stats() == ws.stats() and other.count() == ws.count() > 0
        assert other.events(since="2018-01-01", limit=5) == ws.events(since="2018-01-01",
                                                                        limit=5)
        before = len(lent)
        doc = other.case(DEMO_CASE)
        assert len(lent) > before
        want = ws.case(DEMO_CASE)
        assert same(doc) == same(want) and doc["n_window_events"] > 0
    finally:
        held.close()
    with pytest.raises(TypeError, match="reader"):
        Workspace(empty, reader=held)


def test_events_are_paged_with_a_total(ws):
    page = ws.events(since="2018-01-01", actor="IS", limit=5, offset=5)
    assert page["total"] > 100 and len(page["events"]) == 5
    assert all(e["actor"] == "IS" and e["time_start"] >= "2018-01-01" for e in page["events"])
    first = ws.events(since="2018-01-01", actor="IS", limit=10)["events"]
    assert [e["id"] for e in first[5:]] == [e["id"] for e in page["events"]]
    json.dumps(page, allow_nan=False)
    assert {a["actor"] for a in ws.actors()} >= {"IS"}


def test_the_store_pages_a_selection_itself(ws):
    from culpa.errors import InputError
    from culpa.events.store import Store

    with Store(ws.db, read_only=True) as store:
        rows, total = store.events_page(since="2018-01-01", actor="IS", limit=3, offset=2)
        everything, n_all = store.events_page()
        with pytest.raises(InputError) as e:
            store.events_page(limit=-1)
    assert e.value.field == "limit"
    assert total == ws.events(since="2018-01-01", actor="IS")["total"] and len(rows) == 3
    assert [r["id"] for r in rows] == [
        e["id"] for e in ws.events(since="2018-01-01", actor="IS", limit=5)["events"][2:]]
    assert "record" not in rows[0] and n_all == len(everything) >= total


def test_the_library_names_its_arguments_not_flags(ws):
    from culpa.errors import InputError

    for call, field in [(lambda: ws.attribute(91, 44, "2018-01-01"), "lat"),
                        (lambda: ws.attribute(35, 44, "nan"), "time"),
                        (lambda: ws.warn([{"name": "x", "lat": 35, "lon": 44, "radius_km": 9}],
                                         "", 7), "at"),
                        (lambda: ws.backtest(mask_fraction=1.5), "mask_fraction")]:
        with pytest.raises(InputError) as caught:
            call()
        assert "--" not in str(caught.value) and caught.value.field in (field, None)


def test_fit_takes_model_parameters_by_name(ws, tmp_path):
    from culpa.model import HawkesAttributor

    out = tmp_path / "m.npz"
    doc = culpa_json("fit", "--db", ws.db, "--since", "2018-06-01", "--param", "max_iter=3",
                     "--param", "process_by=actor", "--out", out)
    model = HawkesAttributor.load(doc["model"])
    assert model.get_params()["max_iter"] == 3 and model.get_params()["process_by"] == "actor"
    assert doc["n_iter"] <= 3 and doc["processes"] == doc["actors"]


@pytest.mark.parametrize("param,says", [("bogus=1", "unknown model parameter 'bogus'"),
                                        ("max_iter=many", "whole number"),
                                        ("window_days=-5", "positive"),
                                        ("process_by", "NAME=VALUE")])
def test_fit_refuses_a_bad_parameter_before_fitting(ws, param, says):
    proc = culpa("fit", "--db", ws.db, "--param", param, "--json")
    assert proc.returncode == 2 and says in json.loads(proc.stdout)["error"]


def test_fit_checks_its_output_path_before_fitting(ws, tmp_path):
    proc = culpa("fit", "--db", ws.db, "--out", tmp_path / "no" / "dir" / "x", "--json")
    assert proc.returncode == 2
    assert "no such directory" in json.loads(proc.stdout)["error"]
