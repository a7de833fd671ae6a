"""Fit benchmark: simulate N events over 10 years on a 500 x 500 km region, fit, attribute.

The simulation (culpa.model.simulate): 4 actors with 25 hotspots each (1-4 km wide, 5 of them
shared between actors), 15 % diffuse background, self- and some cross-excitation, 35 % of the
events snapped to one of 300 town centroids (10 km precision), 5 % dated only to the week, 20 % of
the labels masked (latent). Background rates are scaled so the expected total is N.
Event types are drawn independently of place and trigger, so the model is fitted as the
process simulated: one process per actor (``process_by="actor"``; ``--process-by type``
or ``kind`` measures the others on the same data: five processes per actor here).

Each size runs in a fresh subprocess so that peak memory (``ru_maxrss``) is that size's alone;
numba's compiled functions are cached on disk, so compilation is not timed after a first run
(a warm-up fit of a tiny data set runs first anyway).

    python benchmarks/bench_fit.py                 # 10k and 100k
    python benchmarks/bench_fit.py --sizes 10000 100000 1000000

Writes benchmarks/results/fit.json (merged with earlier sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "fit.json"

ALPHA = [[0.45, 0.05, 0.0, 0.0],
         [0.05, 0.35, 0.05, 0.0],
         [0.0, 0.05, 0.50, 0.0],
         [0.0, 0.0, 0.05, 0.30]]
REL_MU = [0.35, 0.3, 0.2, 0.15]
DAYS = 3652.0


def simulate_n(n: int, seed: int = 0):
    import numpy as np

    from culpa.model.simulate import simulate

    alpha = np.array(ALPHA)
    # expected events per background event = sum over generations of alpha^g
    m = np.linalg.inv(np.eye(4) - alpha)  # mean total cluster size by type
    per_bg = m.sum(1)
    mu_rel = np.array(REL_MU)
    scale = n / DAYS / float(mu_rel @ per_bg)
    sim = simulate(n_actors=4, mu=mu_rel * scale, alpha=alpha, omega=0.15, sigma_km=3.0,
                   days=DAYS, region_km=500.0, hotspots_per_actor=25, hotspot_sd_km=(1.0, 4.0),
                   shared_hotspots=5, diffuse_fraction=0.15, snap_fraction=0.35, n_towns=300,
                   town_precision_km=10.0, week_date_fraction=0.05, seed=seed)
    ev = sim.events
    rng = np.random.default_rng(seed + 1)
    ev["latent"] = rng.uniform(size=len(ev)) < 0.2
    return sim, ev


def run_one(n: int, max_iter: int, process_by: str = "actor") -> dict:
    import numpy as np
    import pandas as pd

    from culpa.model import HawkesAttributor

    # warm-up: load numba's cached machine code (or compile it once)
    _, tiny = simulate_n(2000, seed=99)
    HawkesAttributor(max_iter=3).fit(tiny)

    t = time.perf_counter()
    sim, ev = simulate_n(n)
    t_sim = time.perf_counter() - t
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    model = HawkesAttributor(cross_excitation=True, max_iter=max_iter,
                             process_by=process_by).fit(ev)
    t_fit = time.perf_counter() - t
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    lat = ev["latent"].to_numpy()
    idx = {a: i for i, a in enumerate(model.actors_)}
    truth = ev["true_actor"].map(idx).to_numpy()
    P = model.label_proba_[lat]
    tl = truth[lat]
    acc = float((P.argmax(1) == tl).mean())
    logloss = float(-np.mean(np.log(np.clip(P[np.arange(len(tl)), tl], 1e-15, 1))))

    # attribution latency: single queries at random places and times of the fitted period
    rng = np.random.default_rng(5)
    rows = ev.sample(200, random_state=1)
    single = []
    for _, r in rows.iterrows():
        q = pd.DataFrame({"time": [r["time_start"]], "latitude": [r["latitude"]],
                          "longitude": [r["longitude"]], "event_type": [r["event_type"]],
                          "fatalities": [r["fatalities"]]})
        t = time.perf_counter()
        model.predict_proba(q)
        single.append(time.perf_counter() - t)
    t = time.perf_counter()
    for _, r in rows.head(50).iterrows():
        model.explain(r["time_start"], r["latitude"], r["longitude"],
                      event_type=r["event_type"], fatalities=r["fatalities"])
    t_explain = (time.perf_counter() - t) / 50
    qs = ev.sample(min(10000, len(ev)), random_state=2).rename(columns={"time_start": "time"})
    t = time.perf_counter()
    model.predict_proba(qs)
    t_batch = (time.perf_counter() - t) / len(qs)
    del rng
    return {
        "n_events": int(len(ev)), "n_actors": 4, "n_latent": int(lat.sum()),
        "n_pairs": int(model.n_pairs_), "pairs_per_event": model.n_pairs_ / len(ev),
        "simulate_s": round(t_sim, 2), "fit_s": round(t_fit, 2),
        "fit_pairs_s": round(model.fit_seconds_["pairs"], 2),
        "n_iter": int(model.n_iter_), "converged": bool(model.converged_),
        "s_per_iter": round((t_fit - model.fit_seconds_["pairs"]) / max(model.n_iter_, 1), 3),
        "peak_rss_mb_before_fit": round(rss0 / 1024, 1),
        "peak_rss_mb": round(rss1 / 1024, 1),
        "attribute_single_ms_median": round(1e3 * float(np.median(single)), 3),
        "attribute_single_ms_p95": round(1e3 * float(np.percentile(single, 95)), 3),
        "explain_ms_mean": round(1e3 * t_explain, 3),
        "attribute_batch_us_per_query": round(1e6 * t_batch, 2),
        "latent_top1": round(acc, 4), "latent_logloss": round(logloss, 4),
        "process_by": process_by, "n_processes": len(model.processes_),
        "alpha_diag": [round(float(v), 3) for v in model.actor_means(np.diag(model.alpha_))],
        "alpha_diag_true": [ALPHA[k][k] for k in range(4)],
        "omega": round(model.omega_, 4), "omega_true": 0.15,
        "sigma_km": round(model.sigma_km_, 3), "sigma_km_true": 3.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--max-iter", type=int, default=200)
    ap.add_argument("--process-by", default="actor", choices=["actor", "type", "kind"],
                    help="how the model splits actors into processes (HawkesAttributor)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.max_iter, args.process_by)))
        return
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("runs", {})
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()}
    for n in args.sizes:
        print(f"fitting {n:,} events ...", file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--max-iter",
                              str(args.max_iter)]
                             + ["--process-by", args.process_by],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            raise SystemExit(f"size {n} failed")
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["date"] = time.strftime("%Y-%m-%d %H:%M")
        results["runs"][str(n) if args.process_by == "actor" else f"{n} by {args.process_by}"] = res
        print(json.dumps(res, indent=2), flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
