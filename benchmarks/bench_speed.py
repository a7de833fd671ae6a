"""Speed and size targets of issue 16 (item 4), as a new user meets them.

    python benchmarks/bench_speed.py                       # fits, model size, cold attribute
    python benchmarks/bench_speed.py --demo --forecast     # also culpa demo, forecast-backtest

Every step runs in a fresh subprocess (``python -m culpa ...`` or a small fit script), so a
timing includes what a user waits for: imports, loading numba's cached machine code, reading
the store. The load average (1 min) is recorded beside each timing: on a machine shared with
other work a timing is inflated. Steps:

- ``fit_iraq``: the default attributor's fit of the bundled 7,473 UCDP events (what ``culpa demo``
  fits), target 10 s (``parts``: its ``fit_seconds_``);
- ``fit_syria``: the shared Syria extract (14,522 events; ``--syria PATH``), target 20 s;
- ``model_size_mb``: the saved model of the Iraq fit, target 5 MB;
- ``attribute_cold``: ``culpa attribute --model M --json`` in a new process, wall, target 1 s
  (run twice: the first may compile numba's functions into its cache; the second is reported);
- ``demo`` (``--demo``): ``culpa demo --json`` in an empty directory, target 25 s;
- ``forecast_backtest`` (``--forecast``): ``culpa forecast-backtest --since 2018-01-01`` on the
  Syria extract, target 180 s.

Writes benchmarks/results/speed.json (one entry per step: seconds or MB, target, met, load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "speed.json"
# the shared data beside the repository (main checkout) or beside the worktrees' folder
SYRIA = next((p for p in (HERE.parents[i] / "shared" / "data" / "ucdp" /
                          "ged_syria_2016_2018.csv" for i in (1, 2)) if p.exists()),
             HERE.parents[1] / "shared" / "data" / "ucdp" / "ged_syria_2016_2018.csv")
TARGETS = {"fit_iraq": 10.0, "fit_syria": 20.0, "model_size_mb": 5.0, "attribute_cold": 1.0,
           "demo": 25.0, "forecast_backtest": 180.0}

FIT_SCRIPT = r"""
import json, sys, time
from culpa.api import Workspace
from culpa.model import HawkesAttributor, default_attributor
ws = Workspace(sys.argv[1])
events = ws.events_frame(None, None, None)
HawkesAttributor(max_iter=2).fit(events.iloc[:300])   # load numba's cached code first
t = time.perf_counter()
m = default_attributor().fit(events)   # what culpa fit and culpa demo fit
sec = time.perf_counter() - t
path = m.save(sys.argv[2])
print(json.dumps({"seconds": sec, "n_events": len(events), "n_iter": int(m.n_iter_),
                  "estimator": type(m).__name__,
                  "parts": {k: round(float(v), 2) for k, v in m.fit_seconds_.items()},
                  "log_likelihood": float(m.log_likelihood_[-1]), "model": str(path)}))
"""


def load() -> float:
    return round(os.getloadavg()[0], 2)


def culpa(*args, cwd=None) -> tuple[float, str]:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "culpa", *map(str, args)], capture_output=True,
                       text=True, cwd=cwd)
    sec = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"culpa {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr}")
    return sec, r.stdout


def ingest(db: Path, source) -> None:
    culpa("ingest", source, "--db", db, "--json")


def fit(db: Path, model: Path) -> dict:
    before = load()
    r = subprocess.run([sys.executable, "-c", FIT_SCRIPT, str(db), str(model)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"fit failed:\n{r.stderr}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["load_before"], out["load_after"] = before, load()
    return out


def entry(name: str, value: float, **extra) -> dict:
    e = {"value": round(value, 3), "target": TARGETS[name], "met": value < TARGETS[name], **extra}
    flag = "ok  " if e["met"] else "MISS"
    print(f"{flag} {name:18s} {value:9.2f}  (target < {TARGETS[name]:g})  load {extra.get('load')}",
          flush=True)
    return e


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--syria", type=Path, default=SYRIA)
    ap.add_argument("--demo", action="store_true", help="also time culpa demo")
    ap.add_argument("--forecast", action="store_true", help="also time forecast-backtest")
    args = ap.parse_args()
    from culpa.data import sample_path

    res: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        iraq = tmp / "iraq.duckdb"
        ingest(iraq, sample_path())
        f = fit(iraq, tmp / "iraq_model.npz")
        res["fit_iraq"] = entry("fit_iraq", f["seconds"], n_events=f["n_events"],
                                n_iter=f["n_iter"], log_likelihood=f["log_likelihood"],
                                load=f["load_before"], load_after=f["load_after"])
        size = Path(f["model"]).stat().st_size / 2**20
        res["model_size_mb"] = entry("model_size_mb", size, load=None)
        q = ["attribute", "--db", iraq, "--model", f["model"], "--lat", 33.3, "--lon", 44.4,
             "--time", "2017-06-01", "--json"]
        first, _ = culpa(*q)
        lo = load()
        sec, _ = culpa(*q)
        res["attribute_cold"] = entry("attribute_cold", sec, first_run=round(first, 3), load=lo)
        syria = None
        if args.syria.exists():
            syria = tmp / "syria.duckdb"
            ingest(syria, args.syria)
            f = fit(syria, tmp / "syria_model.npz")
            res["fit_syria"] = entry("fit_syria", f["seconds"], n_events=f["n_events"],
                                     n_iter=f["n_iter"], log_likelihood=f["log_likelihood"],
                                     load=f["load_before"], load_after=f["load_after"])
        else:
            print(f"skip fit_syria: {args.syria} not found")
        if args.demo:
            lo = load()
            sec, _ = culpa("demo", "--workdir", tmp / "demo", "--json")
            res["demo"] = entry("demo", sec, load=lo, load_after=load())
        if args.forecast and syria is not None:
            lo = load()
            sec, _ = culpa("forecast-backtest", "--db", syria, "--since", "2018-01-01", "--json")
            res["forecast_backtest"] = entry("forecast_backtest", sec, load=lo,
                                             load_after=load())
    doc = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "platform": platform.platform()},
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": res}
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    merged = {**old, **doc, "results": {**old.get("results", {}), **res}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
