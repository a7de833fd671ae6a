"""Schemathesis against the server's own OpenAPI schema: generated requests (bounded) to every
operation, as an admin, and not one answer may be a 500."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import httpx

from server_support import Server, culpa, culpa_env
from test_server import CASE_YAML, PASSWORD, recent_iraq


def test_schemathesis_finds_no_server_error(tmp_path):
    db = tmp_path / "iraq.duckdb"
    assert culpa("ingest", recent_iraq(tmp_path), "--db", db).returncode == 0
    url = f"sqlite:///{tmp_path / 'team.sqlite'}"
    from culpa.team.store import TeamStore

    with TeamStore(url) as team:
        team.add_user("admin", "admin", PASSWORD)
        token = team.new_api_token("admin")
    with Server(db, url) as srv:
        client = srv.client(token)
        client.post("/api/cases", content=CASE_YAML,
                    headers={"Content-Type": "application/yaml"}).raise_for_status()
        deadline = time.monotonic() + 300
        while client.get("/api/health").json()["model"] != "ready":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        schema = tmp_path / "openapi.json"
        schema.write_text(json.dumps(client.get("/api/openapi.json").json()))
        st = shutil.which("st", path=os.path.dirname(sys.executable)) or "st"
        done = subprocess.run(
            [st, "run", str(schema), "--url", srv.url, "-H", f"Authorization: Bearer {token}",
             "--checks", "not_a_server_error", "--max-examples", "8", "--seed", "1",
             "--phases", "examples,coverage,fuzzing", "--request-timeout", "30",
             "--exclude-path", "/api/refit", "--exclude-path", "/api/ingest",
             "--exclude-path", "/api/users/{username}", "--exclude-path", "/api/logout",
             "--no-color"],
            capture_output=True, text=True, timeout=240, env=culpa_env(), cwd=tmp_path)
        report = done.stdout + done.stderr
        assert done.returncode == 0, report[-6000:] + "\n--- server log ---\n" + \
            srv.output()[-3000:]
        server_errors = [ln for ln in srv.output().splitlines() if '" 500' in ln]
        assert not server_errors, server_errors[:5]
        assert httpx.get(srv.url + "/api/health").status_code == 200
