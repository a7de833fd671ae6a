"""Attribution backtest on the shared UCDP Syria extract, over several seeds and splits.

    python benchmarks/bench_backtest.py [--seeds 0 1 2] [--since 2018-01-01] [--params JSON]

Each run is exactly ``culpa backtest --since D --mask-fraction 0.2 --seed N``: the model and the
three baselines scored on the same masked events. ``--params`` sets HawkesAttributor parameters
(to measure a candidate change beside the defaults). Writes benchmarks/results/backtest.json,
keyed by split, seed and parameters, merged with earlier runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from culpa.evaluate.backtest import run_backtest
from culpa.events.store import Store
from culpa.model.hawkes import HawkesAttributor

HERE = Path(__file__).resolve().parent
SYRIA = HERE.parents[1] / "shared" / "data" / "ucdp" / "ged_syria_2016_2018.csv"
RESULTS = HERE / "results" / "backtest.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--since", nargs="+", default=["2018-01-01"])
    ap.add_argument("--mask-fraction", type=float, default=0.2)
    ap.add_argument("--params", default="{}", help="HawkesAttributor parameters as JSON")
    ap.add_argument("--data", type=Path, default=SYRIA)
    args = ap.parse_args()
    params = json.loads(args.params)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    runs = results.setdefault("runs", {})
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        with Store(db) as store:
            store.ingest([args.data])
            events = store.events_frame()
        for since in args.since:
            for seed in args.seeds:
                t0 = time.perf_counter()
                r = run_backtest(events, since, args.mask_fraction, seed,
                                 model=HawkesAttributor(**params))
                key = f"{args.data.name} since={since} seed={seed} params={json.dumps(params)}"
                runs[key] = {**r.to_dict(), "params": params, "seconds": round(
                    time.perf_counter() - t0, 1), "date": time.strftime("%Y-%m-%d %H:%M")}
                m, c, b = r.model, r.combined, r.baselines
                print(f"{key}: model {m['top1']:.3f}/{m['log_loss']:.3f}/{m['ece']:.3f}  "
                      f"combined {c['top1']:.3f}/{c['log_loss']:.3f}/{c['ece']:.3f}  "
                      + "  ".join(f"{n} {s['top1']:.3f}/{s['log_loss']:.3f}/{s['ece']:.3f}"
                                  for n, s in b.items()), flush=True)
                RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
