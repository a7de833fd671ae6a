"""`culpa warn` and `culpa forecast-backtest`: early warning near watched sites, and the proof
that it forecasts better than simple rules — on the real UCDP Syria data."""

from __future__ import annotations

import json
import math

import pytest

from culpa.errors import InputError
from culpa.events.store import Store
from culpa.sites import parse_sites
from culpa.model.hawkes import HawkesAttributor
from helpers import REPO, UCDP_SYRIA, culpa, culpa_json

SITES = REPO / "examples" / "sites_syria.yaml"
LEVELS = {"normal", "elevated", "high"}


@pytest.fixture(scope="module")
def syria_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("warn") / "syria.duckdb"
    culpa_json("ingest", UCDP_SYRIA, "--db", db)
    return db


@pytest.fixture(scope="module")
def model_file(syria_db, tmp_path_factory):
    """A modest model of the winter 2017-18, saved as `culpa fit` would."""
    with Store(syria_db, read_only=True) as store:
        events = store.events_frame(since="2017-11-01", until="2018-02-12")
    path = tmp_path_factory.mktemp("model") / "syria.model.npz"
    HawkesAttributor(max_iter=30).fit(events).save(path)
    return path


def test_warn_json_names_levels_expected_counts_and_drivers(syria_db, model_file):
    doc = culpa_json("warn", SITES, "--at", "2018-02-12", "--db", syria_db,
                     "--model", model_file)
    assert {"at", "horizon_days", "sites"} <= set(doc)
    assert doc["at"] == "2018-02-12" and doc["horizon_days"] == 7
    names = [s["name"] for s in doc["sites"]]
    assert names[:2] == ["Deir ez-Zor city", "Raqqa city"] and len(names) == 6
    for site in doc["sites"]:
        assert {"name", "level", "actors", "drivers"} <= set(site)
        assert site["level"] in LEVELS
        for numbers in site["actors"].values():
            assert {"expected", "baseline", "ratio", "p_any"} <= set(numbers)
            assert numbers["baseline"] > 0 and 0 <= numbers["p_any"] <= 1
            assert numbers["ratio"] == pytest.approx(numbers["expected"] / numbers["baseline"])
    hajin = doc["sites"][names.index("Hajin (Euphrates valley)")]
    assert hajin["horizon_days"] == 14  # the site's own horizon
    ghouta = doc["sites"][names.index("Eastern Ghouta (Douma)")]
    assert ghouta["level"] != "normal"  # the siege escalated in February 2018
    assert ghouta["drivers"] and all(d["date"] < "2018-02-12" for d in ghouta["drivers"])
    assert {"id", "date", "actor", "distance_km", "contribution", "share"} <= set(
        ghouta["drivers"][0])


def test_people_get_a_table_and_the_reasons(syria_db, model_file):
    proc = culpa("warn", SITES, "--at", "2018-02-12", "--db", syria_db, "--model", model_file)
    assert proc.returncode == 0, proc.stderr
    assert "Eastern Ghouta" in proc.stdout and "driven by" in proc.stdout


def test_a_bad_sites_file_names_the_key_and_exits_2(tmp_path, syria_db):
    bad = tmp_path / "sites.yaml"
    bad.write_text("sites:\n"
                   "  - {name: Raqqa, lat: 35.95, lon: 39.01, radius_km: 20}\n"
                   "  - {name: Idlib, lat: 35.93, lon: 36.63, radius_km: 15}\n"
                   "  - {name: Afrin, lat: 36.51, lon: 36.87, radius_km: -5}\n")
    proc = culpa("warn", bad, "--at", "2018-02-12", "--db", syria_db)
    assert proc.returncode == 2
    assert "sites[2].radius_km" in proc.stderr and "Traceback" not in proc.stderr
    proc = culpa("warn", bad, "--at", "2018-02-12", "--db", syria_db, "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["path"] == "sites[2].radius_km"


@pytest.mark.parametrize("text, path", [
    ("sites:\n  - {name: A, lon: 36.6, radius_km: 5}\n", "sites[0].lat"),
    ("sites:\n  - {name: A, lat: 95, lon: 36.6, radius_km: 5}\n", "sites[0].lat"),
    ("sites:\n  - {name: A, lat: 35, lon: 36.6, radius: 5}\n", "sites[0].radius"),
    ("sites:\n  - {name: A, lat: 35, lon: 36, radius_km: 5}\n"
     "  - {name: A, lat: 34, lon: 36, radius_km: 5}\n", "sites[1].name"),
    ("sites:\n  - {name: A, lat: 35, lon: 36, radius_km: 5, horizon_days: 0}\n",
     "sites[0].horizon_days"),
    ("sites:\n  - {name: A, lat: '35', lon: 36, radius_km: 5}\n", "sites[0].lat"),
    ("sites: []\n", "sites"),
    ("places:\n  - {name: A}\n", "places"),
])
def test_sites_file_errors_name_their_key_path(text, path):
    with pytest.raises(InputError) as e:
        parse_sites(text, file="sites.yaml")
    assert e.value.path == path
    assert str(e.value).startswith("sites.yaml:")


def test_the_example_watch_list_is_valid():
    sites = parse_sites(SITES.read_text(), str(SITES))
    assert len(sites) == 6 and all(s.radius_km > 0 for s in sites)


def test_forecast_backtest_end_to_end_on_a_real_month(syria_db, tmp_path):
    """Four weekly forecasts in March 2016, the model fitted on January and February."""
    png = tmp_path / "cell.png"
    doc = culpa_json("forecast-backtest", "--since", "2016-03-01", "--until", "2016-03-29",
                     "--db", syria_db, "--max-iter", "20", "--plot", png)
    assert {"since", "horizon_days", "cell_km", "n_forecasts", "run_seconds", "actors"} <= set(doc)
    assert doc["since"] == "2016-03-01" and doc["horizon_days"] == 7 and doc["cell_km"] == 50
    assert doc["n_forecasts"] == 4 * doc["n_cells"]
    assert list(doc["actors"]) == ["Syrian insurgents", "IS"]  # the two most active before
    for scores in list(doc["actors"].values()) + [doc["all_actors"]]:
        assert scores["n_positive"] > 0
        for method in ("model", "previous_period", "long_run_rate", "lagged_gbm"):
            m = scores[method]
            assert set(m) == {"brier", "log_loss", "auroc", "average_precision"}
            assert all(math.isfinite(v) for v in m.values())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_forecast_backtest_rejects_unknown_actors(syria_db):
    proc = culpa("forecast-backtest", "--since", "2016-03-01", "--until", "2016-03-15",
                 "--db", syria_db, "--actors", "Nobody", "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["field"] == "--actors"
