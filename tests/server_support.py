"""What the server and team-store tests share: a real PostgreSQL, a real `culpa serve`.

``postgres_base_url()`` is ``$CULPA_TEST_POSTGRES_URL`` when set (``.ci/run`` sets it), else a
private PostgreSQL this module starts once per test session from Debian's
``/usr/lib/postgresql/*/bin`` (as the ``postgres`` user when run as root: PostgreSQL refuses
root) on a free loopback port, its data and socket in a temporary folder, stopped at exit.
With neither, it raises, so the PostgreSQL half of the suite fails loudly instead of skipping.

``Server`` runs ``python -m culpa serve`` in a subprocess on a free loopback port.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

_PG: dict = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path:
        return path
    raise RuntimeError(f"PostgreSQL's {name} is not installed: run `make postgres` (apt-get "
                       "install postgresql) or set CULPA_TEST_POSTGRES_URL")


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def postgres_base_url() -> str:
    """A URL of a PostgreSQL server whose user may create databases."""
    env = os.environ.get("CULPA_TEST_POSTGRES_URL")
    if env:
        return env
    if "url" not in _PG:
        _PG["url"] = _start_private()
    return _PG["url"]


def _start_private() -> str:
    base = Path(tempfile.mkdtemp(prefix="culpa-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = free_port()
    subprocess.run(_as_postgres([_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U",
                                 "postgres", "-E", "UTF8", "--no-sync"]),
                   check=True, capture_output=True)
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-l", str(base / "log"),
                                 "-w", "-t", "60", "-o", opts, "start"]),
                   check=True, capture_output=True)

    def stop() -> None:
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                                     "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def new_postgres_database() -> str:
    """A fresh, empty database on the test PostgreSQL; its URL."""
    import psycopg

    base = postgres_base_url()
    name = "culpa_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}"


def culpa_env() -> dict:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("CULPA_CASES_URL", None)
    return env


def culpa(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "culpa", *map(str, args)], input=stdin,
                          capture_output=True, text=True, env=culpa_env(), timeout=300)


class Server:
    """``culpa serve`` on a free loopback port, for as long as the ``with`` lasts."""

    def __init__(self, db: Path, cases_url: str, *extra: str):
        self.db, self.cases_url, self.extra = db, cases_url, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "culpa", "serve", "--db", str(self.db), "--cases",
             self.cases_url, "--port", str(self.port), *self.extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=culpa_env())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"culpa serve exited {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"culpa serve did not come up:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def login(self, username: str, password: str) -> httpx.Client:
        """A client holding a session cookie, sending the CSRF header like a page does."""
        c = httpx.Client(base_url=self.url, timeout=60)
        r = c.post("/api/login", json={"username": username, "password": password})
        r.raise_for_status()
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c

    def wait_job(self, client: httpx.Client, job_id: str, timeout: float = 900) -> dict:
        """The job once finished; the generous default holds on a loaded machine."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = client.get(f"/api/jobs/{job_id}").json()
            if job["state"] in ("done", "failed"):
                return job
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} still running after {timeout} s")
