"""Load benchmark of `culpa serve` on loopback: 50 concurrent clients.

1. GET a case (analysis ready) as fast as 50 clients can ask: requests per second, latency.
2. POST an attribution: 50 clients, each asking about a different place and day every time, at
   a stated offered load (open loop: each client's requests are due at fixed times; latency is
   measured from when a request was *due*, so a slow answer that delays the next request counts
   against the server too), latency p50/p95/p99.

The server is the real ``culpa serve`` (a subprocess: one uvicorn worker, httptools, uvloop)
over the bundled UCDP Iraq sample, with its model fitted once and loaded at start-up; the team
store is SQLite beside it. Every request carries a real bearer token of an editor account.

The client: 50 keep-alive HTTP/1.1 connections, one per simulated client, driven by one asyncio
event loop (uvloop when installed) in this process, writing each request's bytes and reading
the status line, headers and ``Content-Length`` body off the socket (asyncio streams). It is
small on purpose: the machine has two cores, and an HTTP client library such as httpx spends
more CPU per request than the server does, so the figures would measure the client. Every
response's status is checked (anything but 200 counts as an error); one response in
``--check-every`` (and always the first of each connection) is parsed as JSON and validated
(a GET answers the case asked for, with its analysis; an attribution answers the place asked
about, with actors whose probabilities sum to one). Connection failures count as errors too.
Bounded: each phase runs a fixed number of seconds. Results go to
benchmarks/results/server.json.

    python benchmarks/bench_server.py [--clients 50] [--seconds 15] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from server_support import Server, culpa  # noqa: E402
from test_server import CASE_YAML as CASE  # noqa: E402  (a small real case on the sample)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


class BadResponse(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection: send a request's bytes, read one response."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise BadResponse(f"not an HTTP response: {lines[0][:80]!r}")
        status = int(parts[1])
        length, chunked, close = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if chunked:
            body = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                body += await self.reader.readexactly(size + 2)
                del body[-2:]
                if size == 0:  # (no trailers: the last chunk's CRLF ends the body)
                    break
            body = bytes(body)
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            raise BadResponse("a response with neither Content-Length nor chunked encoding")
        if close:
            await self.close()
        return status, body


def http_request(method: str, path: str, host: str, token: str, body: bytes | None = None
                 ) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Authorization: Bearer {token}",
             "Accept: application/json", "User-Agent: culpa-bench"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Tally:
    def __init__(self):
        self.lat: list[float] = []
        self.errors = 0
        self.checked = 0
        self.first_error: str | None = None

    def error(self, what: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what


def check_case(body: bytes, case_id: str) -> None:
    doc = json.loads(body)
    if doc.get("id") != case_id or not isinstance(doc.get("analysis"), dict) \
            or "leading" not in doc["analysis"] or not isinstance(doc.get("doc"), dict):
        raise BadResponse("GET a case: not the case asked for, or no analysis")


def check_attribution(body: bytes, lat: float, lon: float) -> None:
    doc = json.loads(body)
    actors = doc.get("actors")
    if (not isinstance(actors, list) or not actors
            or abs(doc.get("latitude", math.nan) - lat) > 1e-9
            or abs(doc.get("longitude", math.nan) - lon) > 1e-9
            or abs(sum(a["probability"] for a in actors) - 1.0) > 1e-6):
        raise BadResponse("an attribution not of the place asked about, or not a distribution")


async def closed_loop(host: str, port: int, token: str, case_id: str, clients: int,
                      seconds: float, check_every: int) -> dict:
    tally = Tally()
    raw = http_request("GET", f"/api/cases/{case_id}", f"{host}:{port}", token)
    stop = time.perf_counter() + seconds

    async def worker():
        conn = Connection(host, port)
        n = 0
        try:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                try:
                    status, body = await conn.request(raw)
                except (OSError, asyncio.IncompleteReadError, BadResponse, ValueError) as exc:
                    tally.error(repr(exc))
                    await conn.close()
                    continue
                tally.lat.append(time.perf_counter() - t)
                if status != 200:
                    tally.error(f"HTTP {status}: {body[:200]!r}")
                elif n % check_every == 0:
                    try:
                        check_case(body, case_id)
                        tally.checked += 1
                    except (ValueError, BadResponse) as exc:
                        tally.error(repr(exc))
                n += 1
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return summary(tally, time.perf_counter() - t0, clients)


def attribution_query(k: int, n: int) -> dict:
    """Client k's n-th question: its own place (a 10 x 5 grid over central Iraq, moving a
    little with n) and a different day each time."""
    day = 1 + n % 28
    month = 1 + (k + n // 28) % 12
    year = 2017 - (n // (28 * 12)) % 3
    return {"lat": round(33.0 + (k % 10) * 0.2 + 0.01 * (n % 5), 4),
            "lon": round(43.0 + (k // 10) * 0.2 + 0.01 * (n % 3), 4),
            "time": f"{year}-{month:02d}-{day:02d}"}


async def open_loop(host: str, port: int, token: str, clients: int, seconds: float,
                    rate: float, check_every: int) -> dict:
    tally = Tally()
    interval = clients / rate  # each client's time between requests
    hostport = f"{host}:{port}"
    late = [0.0]

    async def worker(k: int):
        conn = Connection(host, port)
        await conn.open()
        start = t0 + k * interval / clients  # spread the clients out
        n = 0
        try:
            while True:
                due = start + n * interval
                if due > t0 + seconds:
                    return
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                else:
                    late[0] = max(late[0], -wait)
                q = attribution_query(k, n)
                raw = http_request("POST", "/api/attribute", hostport, token,
                                   json.dumps(q).encode())
                try:
                    status, body = await conn.request(raw)
                except (OSError, asyncio.IncompleteReadError, BadResponse, ValueError) as exc:
                    tally.error(repr(exc))
                    await conn.close()
                    n += 1
                    continue
                tally.lat.append(time.perf_counter() - due)
                if status != 200:
                    tally.error(f"HTTP {status}: {body[:200]!r}")
                elif n % check_every == 0:
                    try:
                        check_attribution(body, q["lat"], q["lon"])
                        tally.checked += 1
                    except (ValueError, KeyError, TypeError, BadResponse) as exc:
                        tally.error(repr(exc))
                n += 1
        finally:
            await conn.close()

    t0 = time.perf_counter() + 0.05
    await asyncio.gather(*(worker(k) for k in range(clients)))
    return summary(tally, time.perf_counter() - t0, clients) | {
        "offered_rate": rate, "most_behind_schedule_ms": round(1000 * late[0], 2)}


def summary(tally: Tally, took: float, clients: int) -> dict:
    lat = tally.lat or [math.nan]
    return {"clients": clients, "requests": len(tally.lat), "errors": tally.errors,
            "first_error": tally.first_error, "responses_validated": tally.checked,
            "seconds": round(took, 2), "requests_per_s": round(len(tally.lat) / took, 1),
            "p50_ms": round(1000 * pct(lat, 50), 2), "p95_ms": round(1000 * pct(lat, 95), 2),
            "p99_ms": round(1000 * pct(lat, 99), 2),
            "mean_ms": round(1000 * statistics.fmean(lat), 2)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def phase(srv, coro_fn, *args) -> dict:
    """Run one phase; add the server's and the client's CPU time per request."""
    s0, c0 = cpu_seconds(srv.proc.pid), self_cpu()
    out = run_async(coro_fn(*args))
    s1, c1 = cpu_seconds(srv.proc.pid), self_cpu()
    n = max(out["requests"], 1)
    return out | {"server_cpu_ms_per_request": round(1000 * (s1 - s0) / n, 2),
                  "client_cpu_ms_per_request": round(1000 * (c1 - c0) / n, 2)}


def run_async(coro):
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--rate", type=float, default=100.0, help="attributions per second offered")
    ap.add_argument("--check-every", type=int, default=10,
                    help="parse and validate one response in this many (and each first)")
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
        with Server(db, url) as srv:
            c = srv.client(token)
            cid = c.post("/api/cases", content=CASE,
                         headers={"Content-Type": "application/yaml"}).json()["id"]
            first = c.get(f"/api/cases/{cid}").json()
            if first["analysis"] is None:
                srv.wait_job(c, first["analysis_job"], timeout=600)
            size = len(c.get(f"/api/cases/{cid}").content)
            c.post("/api/attribute", json={"lat": 33.3, "lon": 44.4, "time": "2017-05-01"})
            host, port = "127.0.0.1", srv.port
            load_start = [round(x, 2) for x in os.getloadavg()]
            get_case = phase(srv, closed_loop, host, port, token, cid, args.clients,
                             args.seconds, args.check_every)
            attribute = phase(srv, open_loop, host, port, token, args.clients, args.seconds,
                              args.rate, args.check_every)
    doc = {"what": "culpa serve on loopback, one uvicorn worker (httptools, uvloop); the "
                   "client: one asyncio process on the same machine, 50 keep-alive HTTP/1.1 "
                   "connections over raw asyncio streams, bearer token on every request, "
                   "every status checked, one response in check_every parsed and validated "
                   "(see the module docstring)",
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "store": "bundled UCDP GED Iraq sample (7,473 events), model fitted once and "
                    "loaded at start-up; team store SQLite (WAL)",
           "get_case": get_case | {"mode": "closed loop: each client asks again at once",
                                   "body_bytes": size},
           "post_attribute": attribute | {"mode": "open loop at the offered rate; latency "
                                                  "from each request's due time; each "
                                                  "request a different place and day"},
           "check_every": args.check_every,
           "load_average": {"before": load_before, "at_start": load_start,
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
