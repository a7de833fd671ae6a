"""Load benchmark of `culpa serve` on loopback: 50 concurrent clients.

1. GET a case (analysis ready) as fast as 50 clients can ask: requests per second, latency.
2. POST an attribution: 50 clients, each asking about a different place and day, at a stated
   offered load (open loop: each client waits out its interval), latency p50/p95/p99.

The store is the bundled UCDP Iraq sample; the team store is SQLite beside it. Bounded: each
phase runs a fixed number of seconds. Results go to benchmarks/results/server.json.

    python benchmarks/bench_server.py [--clients 50] [--seconds 15] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from server_support import Server, culpa  # noqa: E402
from test_server import CASE_YAML as CASE  # noqa: E402  (a small real case on the sample)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


async def closed_loop(url: str, headers: dict, path: str, clients: int, seconds: float) -> dict:
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=30) as c:
        async def worker():
            nonlocal errors
            while time.perf_counter() < stop:
                t = time.perf_counter()
                r = await c.get(path)
                lat.append(time.perf_counter() - t)
                errors += r.status_code != 200
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        took = time.perf_counter() - t0
    return summary(lat, errors, took, clients)


async def open_loop(url: str, headers: dict, clients: int, seconds: float, rate: float) -> dict:
    lat: list[float] = []
    errors = 0
    interval = clients / rate  # each client's pause between requests
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=30) as c:
        async def worker(k: int):
            nonlocal errors
            start = time.perf_counter() + k * interval / clients  # spread the clients out
            n = 0
            while True:
                due = start + n * interval
                if due > t0 + seconds:
                    return
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                body = {"lat": 33.0 + (k % 10) * 0.2, "lon": 43.0 + (k // 10) * 0.2,
                        "time": f"2017-{1 + k % 12:02d}-{1 + n % 28:02d}"}
                t = time.perf_counter()
                r = await c.post("/api/attribute", json=body)
                lat.append(time.perf_counter() - t)
                errors += r.status_code != 200
                n += 1
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(clients)))
        took = time.perf_counter() - t0
    return summary(lat, errors, took, clients) | {"offered_rate": rate}


def summary(lat: list[float], errors: int, took: float, clients: int) -> dict:
    return {"clients": clients, "requests": len(lat), "errors": errors,
            "seconds": round(took, 2), "requests_per_s": round(len(lat) / took, 1),
            "p50_ms": round(1000 * pct(lat, 50), 2), "p95_ms": round(1000 * pct(lat, 95), 2),
            "p99_ms": round(1000 * pct(lat, 99), 2),
            "mean_ms": round(1000 * statistics.fmean(lat), 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--rate", type=float, default=100.0, help="attributions per second offered")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "server.json")
    args = ap.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "iraq.duckdb"
        from culpa.data import sample_path

        assert culpa("ingest", sample_path(), "--db", db).returncode == 0
        assert culpa("fit", "--db", db).returncode == 0  # loaded at start-up, as in use
        url = f"sqlite:///{tmp}/team.sqlite"
        from culpa.team.store import TeamStore

        with TeamStore(url) as team:
            team.add_user("bench", "editor", "benchmark password")
            token = team.new_api_token("bench")
        headers = {"Authorization": f"Bearer {token}"}
        with Server(db, url) as srv:
            c = srv.client(token)
            cid = c.post("/api/cases", content=CASE,
                         headers={"Content-Type": "application/yaml"}).json()["id"]
            first = c.get(f"/api/cases/{cid}").json()
            if first["analysis"] is None:
                srv.wait_job(c, first["analysis_job"], timeout=600)
            c.post("/api/attribute", json={"lat": 33.3, "lon": 44.4, "time": "2017-05-01"})
            get_case = asyncio.run(closed_loop(srv.url, headers, f"/api/cases/{cid}",
                                               args.clients, args.seconds))
            attribute = asyncio.run(open_loop(srv.url, headers, args.clients, args.seconds,
                                              args.rate))
    doc = {"what": "culpa serve on loopback, one uvicorn worker; clients in one asyncio "
                   "process on the same machine",
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "store": "bundled UCDP GED Iraq sample (7,473 events), model fitted once and "
                    "loaded at start-up; team store SQLite (WAL)",
           "get_case": get_case | {"mode": "closed loop: each client asks again at once"},
           "post_attribute": attribute | {"mode": "open loop at the offered rate"},
           "load_average": {"before": load_before,
                            "after": [round(x, 2) for x in os.getloadavg()],
                            "note": "1/5/15-minute load averages (uptime) of this machine, "
                                    "which other sessions share"},
           "command": "python benchmarks/bench_server.py " + " ".join(sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
