"""Attribution backtests on the shared UCDP extracts: masked (several seeds) and forward.

    python benchmarks/bench_backtest.py [--only syria iraq forward] [--seeds 0 1 2 3 4]
        [--params JSON] [--since D] [--forward-splits syria iraq] [--refit-every 13] [--until D]
        [--summary-only]

- ``syria``: ``culpa backtest --since 2018-01-01 --mask-fraction 0.2 --seed N`` on the Syria
  extract (``../shared/data/ucdp/ged_syria_2016_2018.csv``), one run per seed;
- ``iraq``: the same with ``--since 2016-01-01`` on the Iraq extract
  (``ged_iraq_1989_2018_hdx.csv``), one run per seed;
- ``forward``: ``culpa backtest --mode forward --since D --step-days 7`` on Syria (since
  2018-01-01) and Iraq (since 2016-01-01), to the end of each extract; the spread reported for
  a forward run is over its quarters (13 steps each): it has no seed to vary.

The model is culpa's default attributor (``Workspace.attributor``) with ``--params``. Every run
is stored in benchmarks/results/backtest.json under ``runs`` (keyed by file, split, seed and
parameters, merged with earlier runs; each with the command, the load average before and after
and its wall and CPU seconds), and ``summary`` is rebuilt from all stored runs of each split and
parameter set: mean and spread (sample standard deviation, min, max) over seeds of top-1,
log-loss, Brier and ECE for the model, the geometric mean of model and trees (``combined``) and
every baseline; and, for the masked runs, ``all_seeds``: top-1 and ECE of all the seeds'
scored events taken together (each run keeps its reliability table's sums for it). The full
run takes long (a Syria fit is ~30-90 s, a forward year ~13 refits):
run it in parts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from culpa.evaluate import metrics
from culpa.evaluate.backtest import run_backtest
from culpa.evaluate.forward_backtest import (REFIT_EVERY, default_model_factory,
                                             run_forward_backtest)
from culpa.events.store import Store
from culpa.model.combiner import GeometricCombiner

HERE = Path(__file__).resolve().parent
#: ``../shared/data/ucdp`` of the checkout (a worktree may sit one level deeper).
DATA = next((p / "shared" / "data" / "ucdp" for p in HERE.parents
             if (p / "shared" / "data" / "ucdp").is_dir()), HERE.parents[1] / "shared" / "data" / "ucdp")
RESULTS = HERE / "results" / "backtest.json"
SPLITS = {"syria": (DATA / "ged_syria_2016_2018.csv", "2018-01-01"),
          "iraq": (DATA / "ged_iraq_1989_2018_hdx.csv", "2016-01-01")}
METRICS = ("top1", "log_loss", "brier", "ece")
QUARTER_STEPS = 13


def load_events(path: Path, tmp: str):
    db = Path(tmp) / f"{path.stem}.duckdb"
    with Store(db) as store:
        store.ingest([path])
        return store.events_frame()


def stamp(t0: float, c0: float, load0) -> dict:
    return {"seconds": round(time.perf_counter() - t0, 1),
            "cpu_seconds": round(time.process_time() - c0, 1),
            "load_average_before": [round(v, 2) for v in load0],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "date": time.strftime("%Y-%m-%d %H:%M")}


def line(key: str, doc: dict) -> str:
    def f(s):
        return f"{s['top1']:.3f}/{s['log_loss']:.3f}/{s['ece']:.3f}"

    parts = [f"model {f(doc['model'])}"]
    if doc.get("combined"):
        parts.append(f"combined {f(doc['combined'])}")
    parts += [f"{n} {f(s)}" for n, s in doc["baselines"].items()]
    return f"{key}: " + "  ".join(parts)


def masked(name: str, events, seeds, params: dict, runs: dict, save,
           since: str | None = None) -> None:
    path, day = SPLITS[name]
    since = since or day
    for seed in seeds:
        t0, c0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()
        r = run_backtest(events, since, 0.2, seed, model=default_model_factory(**params))
        key = f"{path.name} since={since} seed={seed} params={json.dumps(params)}"
        runs[key] = {**r.to_dict(), "params": params, "split": name,
                     "reliability_sums": reliability_sums(r), **stamp(t0, c0, load0)}
        print(line(key, runs[key]), flush=True)
        save()


def reliability_sums(r) -> dict:
    """Per model and baseline, the 15 confidence bins' event counts, correct top-1 answers
    and summed top-1 confidence: what the ECE of several runs' events taken together needs
    (``summary`` gives it as ``all_seeds``)."""
    out = {}
    for name, p in r.proba.items():
        rel = metrics.reliability(p, r.y, metrics.ECE_BINS)
        count = np.asarray(rel["count"], float)
        out[name] = {"count": count.astype(int).tolist(),
                     "correct": np.round(count * np.nan_to_num(rel["accuracy"]), 6).tolist(),
                     "confidence": np.round(count * np.nan_to_num(rel["confidence"]),
                                            6).tolist()}
    return out


def all_seeds(rs: list[dict]) -> dict | None:
    """ECE and top-1 of every seed's scored events taken together (one reliability table
    of 5 x 553 events: the per-seed ECE of a few hundred events is mostly the noise of its
    sparse bins), per model and baseline; None unless every run kept its sums."""
    sums = [r.get("reliability_sums") for r in rs]
    if not all(sums):
        return None
    out = {}
    for name in sums[0]:
        c = np.sum([s[name]["count"] for s in sums], 0)
        ok = np.sum([s[name]["correct"] for s in sums], 0)
        conf = np.sum([s[name]["confidence"] for s in sums], 0)
        n = float(c.sum())
        out[name] = {"n": int(n), "top1": float(ok.sum() / n),
                     "ece": float(np.abs(ok - conf).sum() / n)}
    return out


def quarters(r) -> list[dict]:
    """Scores of each block of 13 steps (a quarter with weekly steps), for the spread."""
    out = []
    for q in range(0, r.n_steps, QUARTER_STEPS):
        sel = (r.step_of >= q) & (r.step_of < q + QUARTER_STEPS)
        if sel.sum() < 10:
            continue
        comb = GeometricCombiner().predict_proba([r.proba["hawkes"][sel], r.proba["gbm"][sel]])
        out.append({"first_step": r.steps[q]["start"], "n_scored": int(sel.sum()),
                    **{n: metrics.score(p[sel], r.y[sel]) for n, p in r.proba.items()},
                    "combined": metrics.score(comb, r.y[sel])})
    return out


def forward(name: str, events, params: dict, refit_every: int, runs: dict, save,
            until: str | None = None) -> None:
    path, since = SPLITS[name]
    t0, c0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()

    def tick(done, total, description):
        print(f"  {name} forward step {done}/{total} {description} "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    r = run_forward_backtest(events, since, until, 7.0, refit_every, 0,
                             model_factory=lambda: default_model_factory(**params),
                             progress=tick)
    key = (f"{path.name} forward since={since}" + (f" until={until}" if until else "")
           + f" step_days=7 refit_every={refit_every} params={json.dumps(params)}")
    doc = r.to_dict()
    doc["quarters"] = quarters(r)
    runs[key] = {**doc, "params": params, "split": f"{name} forward", **stamp(t0, c0, load0)}
    print(line(key, runs[key]), flush=True)
    save()


def spread(values: list[float]) -> dict:
    v = np.asarray(values, float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max())}


def summarise(runs: dict) -> dict:
    """Per split and parameter set: mean and spread over seeds (masked) or quarters (forward)."""
    groups: dict[str, list[dict]] = {}
    for key, run in runs.items():
        if "seed=" in key and " forward " not in key:
            split = key.split(" seed=")[0]
        elif " forward " in key:
            split = key.split(" params=")[0]
        else:
            continue
        groups.setdefault(f"{split} params={json.dumps(run.get('params', {}))}", []).append(run)
    out = {}
    for g, rs in sorted(groups.items()):
        if " forward " in g:
            r = rs[-1]
            samples = r.get("quarters") or []
            names = (["model"] + (["hawkes"] if r.get("hawkes") else []) + [*r["baselines"]]
                     + (["combined"] if r.get("combined") else []))
            entry = {"over": "quarters of the forward run", "n": len(samples),
                     "n_scored": r["n_scored"], "date": r.get("date"),
                     "all_steps": {n: (r[n] if n in ("model", "hawkes", "combined") else
                                       r["baselines"][n]) for n in names}}
            for n in names:
                entry[n] = ({m: spread([q[n][m] for q in samples]) for m in METRICS}
                            if samples else None)
            out[g] = entry
            continue
        names = (["model"] + (["hawkes"] if rs[0].get("hawkes") else []) + ["combined"]
                 + [*rs[0]["baselines"]])
        entry = {"over": "seeds", "n": len(rs), "seeds": sorted(r["seed"] for r in rs),
                 "n_scored": rs[0]["n_scored"],
                 "dates": sorted({r.get("date", "?") for r in rs})}
        for n in names:
            vals = [(r.get(n) if n in ("model", "hawkes", "combined") else r["baselines"].get(n))
                    for r in rs]
            vals = [v for v in vals if v]
            entry[n] = {m: spread([v[m] for v in vals]) for m in METRICS} if vals else None
        entry["all_seeds"] = all_seeds(rs)
        out[g] = entry
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=("syria", "iraq", "forward"),
                    default=["syria", "iraq", "forward"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--forward-splits", nargs="+", choices=tuple(SPLITS),
                    default=list(SPLITS))
    ap.add_argument("--refit-every", type=int, default=REFIT_EVERY)
    ap.add_argument("--until", default=None,
                    help="forward: day after the last step (default: the end of each extract)")
    ap.add_argument("--params", default="{}", help="model parameters as JSON")
    ap.add_argument("--since", default=None,
                    help="masked: the split day (default: each split's own, above); a "
                         "further split to check that a change generalises")
    ap.add_argument("--summary-only", action="store_true",
                    help="rebuild the summary from the stored runs; run nothing")
    args = ap.parse_args()
    params = json.loads(args.params)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    runs = results.setdefault("runs", {})
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": os.cpu_count()}

    def save() -> None:
        results["summary"] = summarise(runs)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")

    if args.summary_only:
        save()
        return
    with tempfile.TemporaryDirectory() as tmp:
        cache: dict[str, object] = {}

        def events(name):
            if name not in cache:
                cache[name] = load_events(SPLITS[name][0], tmp)
            return cache[name]

        for name in ("syria", "iraq"):
            if name in args.only:
                masked(name, events(name), args.seeds, params, runs, save, args.since)
        if "forward" in args.only:
            for name in args.forward_splits:
                forward(name, events(name), params, args.refit_every, runs, save, args.until)
    save()


if __name__ == "__main__":
    main()
