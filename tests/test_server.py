"""`culpa serve` end to end: a real uvicorn on a loopback port, driven over HTTP, with its team
store in SQLite and in a real PostgreSQL (the same tests for both)."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest
import yaml

from helpers import UCDP_IRAQ
from server_support import Server, culpa, new_postgres_database

PASSWORD = "correct horse battery"
USERS = {"admin": "admin", "ed1": "editor", "ed2": "editor", "vic": "viewer"}

CASE_YAML = """\
# A small team case on the bundled Iraq sample (a short window, so its model fits quickly).
title: Bombing in Mosul (June 2017)
incident:
  time: 2017-06-01
  lat: 36.34
  lon: 43.13
  event_type: one-sided
window_days: 60
hypotheses:
  - id: IS
  - id: gov
    actor: Government of Iraq
  - id: other
    catch_all: true
evidence:
  - id: claim
    text: A claim appeared on a channel IS uses.
    reliability: C
    credibility: 3
    likelihood: {IS: 0.5, gov: 0.2, other: 0.3}
  - id: device
    text: The device matched earlier devices.
    reliability: D
    credibility: 3
    rating: {IS: C, gov: I, other: N}
  - id: witness
    text: A witness saw uniforms.
    reliability: E
    credibility: 4
    likelihood: {IS: 0.2, gov: 0.5, other: 0.3}
"""


def recent_iraq(folder: Path, since: str = "2017-01-01") -> Path:
    """The bundled UCDP Iraq sample cut to the events since ``since``: the same real rows,
    few enough that the server's start-up fit takes seconds."""
    import csv

    out = folder / "ucdp_iraq_recent.csv"
    with open(UCDP_IRAQ, newline="", encoding="utf-8") as src, \
            open(out, "w", newline="", encoding="utf-8") as dst:
        rows = csv.reader(src)
        writer = csv.writer(dst)
        header = next(rows)
        writer.writerow(header)
        at = header.index("date_start")
        for row in rows:
            if row[at].startswith("#") or row[at] >= since:
                writer.writerow(row)
    return out


@pytest.fixture(scope="module")
def event_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("events")
    db = folder / "iraq.duckdb"
    done = culpa("ingest", recent_iraq(folder), "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    return db


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, event_db, tmp_path_factory):
    """One server per team-store backend, with an admin, two editors and a viewer."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('cases') / 'team.sqlite'}"
    else:
        url = new_postgres_database()
    from culpa.team.store import TeamStore

    with TeamStore(url) as team:
        for name, role in USERS.items():
            team.add_user(name, role, PASSWORD)
    with Server(event_db, url) as srv:
        srv.backend = request.param
        yield srv


@pytest.fixture(scope="module")
def tokens(server) -> dict[str, str]:
    out = {}
    for name in USERS:
        r = httpx.post(server.url + "/api/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        out[name] = r.json()["token"]
    return out


@pytest.fixture(scope="module")
def as_(server, tokens):
    clients = {name: server.client(tok) for name, tok in tokens.items()}
    yield clients
    for c in clients.values():
        c.close()


@pytest.fixture(scope="module")
def case_id(server, as_) -> str:
    r = as_["ed1"].post("/api/cases", content=CASE_YAML,
                        headers={"Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1
    return r.json()["id"]


def analysed(server, client, case_id) -> dict:
    """The case once its background analysis has finished."""
    body = client.get(f"/api/cases/{case_id}").json()
    if body["analysis"] is None:
        job = server.wait_job(client, body["analysis_job"])
        assert job["state"] == "done", job
        body = client.get(f"/api/cases/{case_id}").json()
    assert body["analysis"] is not None
    return body


# -- accounts -------------------------------------------------------------------------------


def test_health_needs_no_account_and_counts_the_events(server, event_db):
    r = httpx.get(server.url + "/api/health")
    assert r.status_code == 200
    stats = json.loads(culpa("stats", "--db", event_db, "--json").stdout)
    assert r.json()["status"] == "ok" and r.json()["events"] == stats["events"]


def test_every_other_endpoint_answers_401_without_an_account(server, as_):
    schema = as_["vic"].get("/api/openapi.json").json()
    assert httpx.get(server.url + "/api/openapi.json").status_code == 401
    checked = 0
    for path, methods in schema["paths"].items():
        if path in ("/api/health", "/api/login"):
            continue
        concrete = path.replace("{case_id}", "x").replace("{job_id}", "x") \
            .replace("{username}", "x").replace("{event_id}", "x")
        for method in methods:
            r = httpx.request(method.upper(), server.url + concrete, json={})
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert "error" in r.json()
            checked += 1
    assert checked >= 15


def test_a_wrong_password_is_refused_and_repeated_failures_are_rate_limited(server, as_):
    as_["admin"].post("/api/users", json={"username": "target", "password": PASSWORD,
                                          "role": "viewer"}).raise_for_status()
    bad = {"username": "target", "password": "guess"}
    codes = [httpx.post(server.url + "/api/login", json=bad).status_code for _ in range(6)]
    assert codes[:5] == [401] * 5
    assert codes[5] == 429
    r = httpx.post(server.url + "/api/login", json={"username": "target", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0  # even the right one, now


def test_login_sets_a_strict_httponly_cookie_and_writes_need_the_csrf_header(server, as_):
    case_id = as_["ed1"].post("/api/cases", content=CASE_YAML,
                              headers={"Content-Type": "application/yaml"}).json()["id"]
    c = httpx.Client(base_url=server.url)
    r = c.post("/api/login", json={"username": "ed2", "password": PASSWORD})
    cookies = r.headers.get_list("set-cookie")
    session = next(h for h in cookies if h.startswith("culpa_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session
    assert {"token", "username", "role", "csrf_token"} <= set(r.json())
    assert r.json()["role"] == "editor"
    assert c.get("/api/me").json()["username"] == "ed2"
    assert c.get(f"/api/cases/{case_id}").status_code == 200  # reads need no CSRF token
    judged = {"items": {"claim": {"reliability": "B"}}}
    no_csrf = c.put(f"/api/cases/{case_id}/judgements/me", json=judged)
    assert no_csrf.status_code == 403 and "X-CSRF-Token" in no_csrf.json()["error"]
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    assert c.put(f"/api/cases/{case_id}/judgements/me", json={"items": {}}).status_code == 200
    assert c.post("/api/logout").status_code == 200
    assert c.get("/api/me").status_code == 401  # the session is over


def test_a_script_token_from_culpa_user_token_is_a_bearer_token(server):
    made = culpa("user", "token", "vic", "--cases", server.cases_url, "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    r = httpx.get(server.url + "/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.json()["username"] == "vic" and r.json()["kind"] == "api"
    assert httpx.get(server.url + "/api/me",
                     headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_a_viewer_reads_but_cannot_write(as_, case_id):
    vic = as_["vic"]
    assert vic.get(f"/api/cases/{case_id}").status_code == 200
    assert vic.get("/api/cases").status_code == 200
    writes = [vic.post("/api/cases", content=CASE_YAML,
                       headers={"Content-Type": "application/yaml"}),
              vic.put(f"/api/cases/{case_id}", json={"version": 1, "doc": {}}),
              vic.put(f"/api/cases/{case_id}/judgements/me", json={"items": {}}),
              vic.delete(f"/api/cases/{case_id}"),
              vic.post("/api/users", json={"username": "x", "password": PASSWORD,
                                           "role": "admin"})]
    assert [r.status_code for r in writes] == [403] * len(writes)
    assert all("role" in r.json()["error"] for r in writes)


def test_only_admins_manage_users(as_):
    assert as_["ed1"].get("/api/users").status_code == 403
    users = as_["admin"].get("/api/users").json()["users"]
    assert {u["username"]: u["role"] for u in users}.items() >= USERS.items()
    assert as_["admin"].post("/api/users", json={"username": "tmp", "password": PASSWORD,
                                                 "role": "editor"}).status_code == 201
    assert as_["admin"].delete("/api/users/tmp").status_code == 200
    assert as_["admin"].delete("/api/users/tmp").status_code == 404


# -- events and the model --------------------------------------------------------------------


def model_ready(server) -> None:
    """Wait for the refit the server starts when no model is saved beside the store."""
    import time

    deadline = time.monotonic() + 900  # generous: the machine may be loaded
    while httpx.get(server.url + "/api/health", timeout=60).json()["model"] != "ready":
        assert time.monotonic() < deadline, "the model was not fitted in 15 minutes"
        time.sleep(0.5)


def store_ids(db, where: str, *args) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)  # beside the server's own read-only hold
    try:
        return [r[0] for r in con.execute(f"SELECT id FROM events WHERE {where} "
                                          "ORDER BY time_start, id", list(args)).fetchall()]
    finally:
        con.close()


def test_events_are_filtered_and_paginated_as_the_store_holds_them(as_, event_db):
    q = {"since": "2017-01-01", "until": "2017-03-01", "bbox": "42.5,35.5,44.5,37"}
    expected = store_ids(event_db, "time_start >= '2017-01-01' AND time_start < '2017-03-01' "
                                   "AND longitude BETWEEN 42.5 AND 44.5 AND latitude BETWEEN "
                                   "35.5 AND 37")
    assert len(expected) > 20
    first = as_["vic"].get("/api/events", params={**q, "limit": 20}).json()
    rest = as_["vic"].get("/api/events", params={**q, "limit": 1000, "offset": 20}).json()
    assert first["total"] == rest["total"] == len(expected)
    assert [e["id"] for e in first["events"] + rest["events"]] == expected
    by_actor = as_["vic"].get("/api/events", params={**q, "actor": "IS", "limit": 1000}).json()
    assert by_actor["events"] and {e["actor"] for e in by_actor["events"]} == {"IS"}
    assert as_["vic"].get("/api/events", params={"limit": 1001}).status_code == 422
    bad = as_["vic"].get("/api/events", params={"bbox": "44,37,42,35"})
    assert bad.status_code == 422 and "bbox" in bad.json()["error"]


def test_events_export_as_geojson_and_csv(as_):
    q = {"since": "2017-01-01", "until": "2017-01-15", "limit": 50}
    page = as_["vic"].get("/api/events", params=q).json()
    geo = as_["vic"].get("/api/events.geojson", params=q)
    assert geo.headers["content-type"].startswith("application/geo+json")
    fc = geo.json()
    assert fc["type"] == "FeatureCollection"
    assert [f["id"] for f in fc["features"]] == [e["id"] for e in page["events"]]
    f0, e0 = fc["features"][0], page["events"][0]
    assert f0["geometry"] == {"type": "Point", "coordinates": [e0["longitude"], e0["latitude"]]}
    import csv
    import io

    table = list(csv.DictReader(io.StringIO(as_["vic"].get("/api/events.csv", params=q).text)))
    assert [r["id"] for r in table] == [e["id"] for e in page["events"]]
    assert float(table[0]["latitude"]) == e0["latitude"]


def test_one_event_carries_its_source_record(as_):
    e = as_["vic"].get("/api/events", params={"limit": 1, "since": "2017-01-01"}).json()
    one = as_["vic"].get(f"/api/events/{e['events'][0]['id']}").json()
    assert one["record"]["id"] == e["events"][0]["id"].split(":")[1]
    assert as_["vic"].get("/api/events/ucdp:0").status_code == 404


def test_actors_are_the_stores(as_, event_db):
    stats = json.loads(culpa("stats", "--db", event_db, "--json").stdout)
    assert as_["vic"].get("/api/actors").json()["actors"] == stats["actors"]


def test_attribute_and_chain_answer_as_the_command_line(server, as_, event_db):
    model_ready(server)
    # the model was warmed up in the background once at hand (its grounds rendered), by the
    # start-up fit or, when a model was saved already, by a job of its own
    deadline = time.monotonic() + 300
    while True:
        jobs = as_["vic"].get("/api/jobs").json()["jobs"]
        warmed = [j["result"]["warm"] if j["kind"] == "fit" else j["result"] for j in jobs
                  if j["user"] == "server" and j["kind"] in ("fit", "warm")
                  and j["state"] == "done"]
        if warmed or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert warmed and warmed[-1]["rasters"] > 0 and "error" not in warmed[-1], jobs
    r = as_["vic"].post("/api/attribute", json={"lat": 36.34, "lon": 43.13, "time": "2017-06-01",
                                                "event_type": "one-sided"})
    assert r.status_code == 200, r.text
    cli = culpa("attribute", "--lat", "36.34", "--lon", "43.13", "--time", "2017-06-01",
                "--event-type", "one-sided", "--db", event_db, "--json")
    assert r.json() == json.loads(cli.stdout)
    event_id = store_ids(event_db, "time_start >= '2017-06-01' AND actor = 'IS'")[0]
    chain = as_["vic"].get(f"/api/events/{event_id}/chain")
    assert chain.json() == json.loads(culpa("chain", event_id, "--db", event_db,
                                            "--json").stdout)
    assert as_["vic"].get("/api/events/ucdp:0/chain").status_code == 404
    bad = as_["vic"].post("/api/attribute", json={"lat": 91, "lon": 43, "time": "2017-06-01"})
    assert bad.status_code == 422 and bad.json()["path"] == "body.lat"


def test_warn_answers_as_the_command_line(server, as_, event_db, tmp_path):
    model_ready(server)
    sites = [{"name": "Mosul", "lat": 36.34, "lon": 43.13, "radius_km": 25},
             {"name": "Kirkuk", "lat": 35.47, "lon": 44.39, "radius_km": 30, "horizon_days": 14}]
    r = as_["vic"].post("/api/warn", json={"sites": sites, "at": "2019-01-01",
                                           "horizon_days": 7})
    assert r.status_code == 200, r.text
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump({"sites": sites}))
    cli = culpa("warn", path, "--at", "2019-01-01", "--db", event_db, "--json")
    assert cli.returncode == 0, cli.stderr
    served, printed = r.json(), json.loads(cli.stdout)
    # the same model: one says it fitted it, the other that it loaded it from where it was saved
    sources = served["model"].pop("source"), printed["model"].pop("source")
    assert all(f"{s.split(' events')[0].split()[-1]} events" in sources[1] for s in sources)
    assert served == printed


def test_only_an_admin_ingests_and_culpa_ingest_through_the_server_changes_the_store(
        as_, tmp_path, readers_data):
    from server_support import Server

    db = tmp_path / "small.duckdb"
    assert culpa("ingest", readers_data / "acled_iraq_kirkuk_2019_oldstyle.csv", "--db",
                 db).returncode == 0
    with TeamStoreUsers(f"sqlite:///{tmp_path / 'small.sqlite'}") as url, Server(db, url) as srv:
        admin, editor = srv.login("admin", PASSWORD), srv.login("ed1", PASSWORD)
        body = (readers_data / "acled_iraq_kirkuk_2019_2020.csv").read_bytes()
        assert editor.post("/api/ingest", content=body).status_code == 403
        before = admin.get("/api/health").json()["events"]
        r = admin.post("/api/ingest", params={"name": "acled.csv"}, content=body)
        assert r.status_code == 202
        job = srv.wait_job(admin, r.json()["job"])
        assert job["state"] == "done", job
        assert job["result"]["events_in_store"] == before + 4  # IRQ26412 was there already
        assert admin.get("/api/health").json()["events"] == before + 4
        broken = admin.post("/api/ingest", params={"name": "x.csv"}, content=b"a,b\n1,2\n")
        job = srv.wait_job(admin, broken.json()["job"])
        assert job["state"] == "failed" and job["error"]
        assert admin.get("/api/health").json()["events"] == before + 4


class TeamStoreUsers:
    """A fresh team store with the test users; its URL."""

    def __init__(self, url: str):
        self.url = url

    def __enter__(self) -> str:
        from culpa.team.store import TeamStore

        with TeamStore(self.url) as team:
            for name, role in USERS.items():
                team.add_user(name, role, PASSWORD)
        return self.url

    def __exit__(self, *exc) -> None:
        pass


# -- cases ----------------------------------------------------------------------------------


def test_a_case_posted_as_yaml_exports_as_the_same_document(as_, case_id):
    r = as_["vic"].get(f"/api/cases/{case_id}/export.yaml")
    assert r.status_code == 200
    assert r.text == CASE_YAML
    doc = as_["vic"].get(f"/api/cases/{case_id}").json()["doc"]
    assert doc["title"] == "Bombing in Mosul (June 2017)"
    assert doc["incident"]["time"] == "2017-06-01"


def test_analysis_equals_culpa_case_json_for_the_same_document(server, as_, case_id, event_db,
                                                              tmp_path):
    body = analysed(server, as_["vic"], case_id)
    path = tmp_path / "case.yaml"
    path.write_text(as_["vic"].get(f"/api/cases/{case_id}/export.yaml").text)
    done = culpa("case", path, "--db", event_db, "--json")
    assert done.returncode == 0, done.stderr
    assert body["analysis"] == json.loads(done.stdout)
    listed = as_["vic"].get("/api/cases").json()
    assert {c["id"]: c["leading"] for c in listed["cases"]}[case_id] == body["analysis"]["leading"]


def test_a_json_case_round_trips_and_a_bad_document_names_its_key_path(as_):
    doc = yaml.safe_load(CASE_YAML)
    doc["incident"]["time"] = "2017-06-01"
    made = as_["ed2"].post("/api/cases", json=doc)
    assert made.status_code == 201
    got = as_["ed2"].get(f"/api/cases/{made.json()['id']}/export.yaml")
    assert yaml.safe_load(got.text) == doc
    doc["evidence"][1]["reliability"] = "Z"
    bad = as_["ed2"].post("/api/cases", json=doc)
    assert bad.status_code == 422
    assert bad.json()["path"] == "evidence[1].reliability"
    assert "A-F" in bad.json()["error"]
    yaml_bad = as_["ed2"].post("/api/cases", content=CASE_YAML.replace("credibility: 4",
                                                                         "credibility: 9"),
                               headers={"Content-Type": "application/yaml"})
    assert yaml_bad.status_code == 422
    assert yaml_bad.json()["path"] == "evidence[2].credibility"
    assert yaml_bad.json()["line"] == CASE_YAML.splitlines().index("    credibility: 4") + 1


LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("body, kind, says, path", [
    (LAUGHS, "yaml", "anchors", "a"),  # once a hang: every alias walked on the event loop
    ("[" * 5000, "yaml", "nesting", None),  # once a RecursionError (500)
    ("notes: &a [*a]\n", "yaml", "anchors", "notes"),
    ("title: a\ntitle: b\n", "yaml", "duplicate key 'title' (first on line 1, again on line 2)",
     "title"),
    ("lat: " + "9" * 400 + "\n", "yaml", "too large", "lat"),
    ("[" * 5000, "json", "nested deeper than 64", None),
    ('{"title": ' * 70 + '"x"' + "}" * 70, "json", "nested deeper than 64", None),
], ids=["billion-laughs", "5000-brackets", "self-alias", "duplicate-key", "400-digits",
        "json-5000-brackets", "json-70-deep"])
def test_hostile_documents_from_the_network_are_refused_fast(as_, body, kind, says, path):
    import time

    start = time.perf_counter()
    r = as_["ed1"].post("/api/cases", content=body,
                        headers={"Content-Type": f"application/{kind}"})
    assert time.perf_counter() - start < 5
    assert r.status_code == 422 and says in r.json()["error"], r.text
    assert r.json().get("path") == path


def test_two_editors_saving_from_the_same_version_one_gets_409_and_nothing_is_lost(as_):
    made = as_["ed1"].post("/api/cases", content=CASE_YAML,
                           headers={"Content-Type": "application/yaml"}).json()
    cid = made["id"]
    doc = as_["ed1"].get(f"/api/cases/{cid}").json()["doc"]
    mine = json.loads(json.dumps(doc))
    mine["evidence"][0]["reliability"] = "A"
    theirs = json.loads(json.dumps(doc))
    theirs["evidence"][2]["credibility"] = 2
    barrier = threading.Barrier(2)
    answers = {}

    def save(who, new):
        barrier.wait()
        answers[who] = as_[who].put(f"/api/cases/{cid}", json={"version": 1, "doc": new})

    threads = [threading.Thread(target=save, args=a) for a in (("ed1", mine), ("ed2", theirs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in answers.values())
    assert codes == [200, 409]
    loser = next(w for w, r in answers.items() if r.status_code == 409)
    assert answers[loser].json()["version"] == 2
    # the loser reloads, merges its edit into the saved version, and saves from version 2
    current = as_[loser].get(f"/api/cases/{cid}").json()
    merged = current["doc"]
    if loser == "ed1":
        merged["evidence"][0]["reliability"] = "A"
    else:
        merged["evidence"][2]["credibility"] = 2
    assert as_[loser].put(f"/api/cases/{cid}", json={"version": 2, "doc": merged}).json() == \
        {"id": cid, "version": 3}
    final = as_["vic"].get(f"/api/cases/{cid}").json()
    assert final["version"] == 3
    assert final["doc"]["evidence"][0]["reliability"] == "A"
    assert final["doc"]["evidence"][2]["credibility"] == 2
    history = as_["vic"].get(f"/api/cases/{cid}/history").json()["entries"]
    assert [(e["version"], e["user"]) for e in history][1:] == \
        [(2, "ed1" if loser == "ed2" else "ed2"), (3, loser)]


def test_analysts_judgements_are_pooled_and_their_disagreement_shown(server, as_, case_id):
    ed1 = as_["ed1"].put(f"/api/cases/{case_id}/judgements/me", json={"items": {
        "witness": {"reliability": "A", "credibility": 1}}})
    assert ed1.status_code == 200, ed1.text
    as_["ed2"].put(f"/api/cases/{case_id}/judgements/me", json={"items": {
        "witness": {"reliability": "E", "credibility": 5},
        "claim": {"likelihood": {"IS": 0.5, "gov": 0.2, "other": 0.3}}}}).raise_for_status()
    analysis = analysed(server, as_["vic"], case_id)["analysis"]
    analysts = analysis["analysts"]
    assert set(analysts) == {"ed1", "ed2"}
    # log-linear pooling: the normalised geometric mean of the analysts' posteriors
    geo = {h: math.sqrt(analysts["ed1"][h] * analysts["ed2"][h]) for h in analysis["prior"]}
    z = sum(geo.values())
    assert analysis["pooled"] == pytest.approx({h: v / z for h, v in geo.items()}, rel=1e-9)
    assert "log-linear" in analysis["pooling"]["method"]
    spread = {d["item"]: d for d in analysis["disagreement"]}
    assert set(spread) == {"claim", "device", "witness"}
    assert analysis["disagreement"][0]["item"] == "witness"  # the one they grade differently
    assert spread["witness"]["spread"] > 0 and spread["witness"]["effect"] > 0
    assert spread["device"]["spread"] == 0 and spread["device"]["effect"] == 0
    pair = analysis["leading_pair"]
    assert pair["leading"] == max(analysis["pooled"], key=analysis["pooled"].get)
    p = analysis["pooled"]
    assert pair["break_even"] == pytest.approx(p[pair["leading"]] / p[pair["runner_up"]])
    assert pair["most_sensitive_item"]["item"] in spread
    # a judgement on an item the case does not have is refused with its path
    bad = as_["ed1"].put(f"/api/cases/{case_id}/judgements/me",
                         json={"items": {"nope": {"reliability": "A"}}})
    assert bad.status_code == 422 and bad.json()["path"] == "items.nope"
    bad = as_["ed1"].put(f"/api/cases/{case_id}/judgements/me",
                         json={"items": {"claim": {"credibility": 7}}})
    assert bad.status_code == 422 and bad.json()["path"] == "items.claim.credibility"


def test_exports_json_and_the_html_report(server, as_, case_id):
    analysed(server, as_["vic"], case_id)
    j = as_["vic"].get(f"/api/cases/{case_id}/export.json")
    assert j.status_code == 200 and j.json()["doc"]["title"].startswith("Bombing")
    assert j.json()["analysis"]["posterior"]
    html = as_["vic"].get(f"/api/cases/{case_id}/report.html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "Bombing in Mosul" in html.text
    csp = html.headers["content-security-policy"]
    assert "connect-src" not in csp  # default-src 'none'
    # no 'unsafe-inline' for scripts: exactly the report's own inline scripts may run
    script_src = next(p.strip() for p in csp.split(";") if p.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src
    import base64
    import hashlib
    import re

    scripts = re.findall(r"<script>(.*?)</script>", html.text, flags=re.S)
    assert len(scripts) >= 2  # the charts' library and the charts
    for js in scripts:
        digest = base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in script_src.split()


def test_lists_are_paginated_with_a_maximum_page_size(as_):
    for _ in range(3):  # more than a page, whichever tests ran before
        as_["ed2"].post("/api/cases", content=CASE_YAML,
                        headers={"Content-Type": "application/yaml"}).raise_for_status()
    page = as_["vic"].get("/api/cases", params={"limit": 2}).json()
    assert len(page["cases"]) == 2 and page["total"] >= 3
    rest = as_["vic"].get("/api/cases", params={"limit": 2, "offset": 2}).json()
    assert not {c["id"] for c in page["cases"]} & {c["id"] for c in rest["cases"]}
    too_big = as_["vic"].get("/api/cases", params={"limit": 100000})
    assert too_big.status_code == 422 and too_big.json()["path"] == "query.limit"


def test_a_body_over_the_size_limit_gets_413(as_):
    huge = "title: x\n" + "# padding\n" * 200_000
    r = as_["ed1"].post("/api/cases", content=huge, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]

    def chunks():  # no Content-Length: the server counts as the body streams in
        for _ in range(300):
            yield b"#" * 10_000

    r = as_["ed1"].post("/api/cases", content=chunks(),
                        headers={"Content-Type": "application/yaml"})
    assert r.status_code == 413


def test_deleting_takes_the_owner_or_an_admin_and_the_history_stays(as_):
    cid = as_["ed1"].post("/api/cases", content=CASE_YAML,
                          headers={"Content-Type": "application/yaml"}).json()["id"]
    assert as_["ed2"].delete(f"/api/cases/{cid}").status_code == 403
    assert as_["ed1"].delete(f"/api/cases/{cid}").status_code == 200
    assert as_["vic"].get(f"/api/cases/{cid}").status_code == 404
    entries = as_["vic"].get(f"/api/cases/{cid}/history").json()["entries"]
    assert [e["change"] for e in entries] == ["created", "deleted"]


def test_culpa_ingest_is_refused_while_the_server_holds_the_store(server, event_db):
    before = httpx.get(server.url + "/api/health").json()["events"]
    done = culpa("ingest", UCDP_IRAQ, "--db", event_db)  # the whole sample: would add events
    assert done.returncode == 2, (done.stdout, server.proc.poll(), server.output()[-4000:])
    assert "lock" in done.stderr.lower()
    assert httpx.get(server.url + "/api/health").json()["events"] == before


def test_the_history_verifies_and_a_tampered_entry_is_caught(server, as_):
    # its own case and edit, so it holds whichever tests ran before it (pytest -n)
    cid = as_["ed1"].post("/api/cases", content=CASE_YAML,
                          headers={"Content-Type": "application/yaml"}).json()["id"]
    doc = as_["ed1"].get(f"/api/cases/{cid}").json()["doc"]
    doc["evidence"][0]["reliability"] = "A"
    saved = as_["ed2"].put(f"/api/cases/{cid}", json={"version": 1, "doc": doc})
    assert saved.status_code == 200, saved.text
    entries = as_["vic"].get(f"/api/cases/{cid}/history").json()["entries"]
    assert [e["user"] for e in entries] == ["ed1", "ed2"]
    assert entries[0]["change"] == "created"
    assert {"version", "user", "at", "change", "hash"} <= set(entries[0])
    ok = culpa("audit", "verify", "--cases", server.cases_url, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    import sqlalchemy as sa

    from culpa.team.store import engine_url

    seq = entries[1]["seq"]
    engine = sa.create_engine(engine_url(server.cases_url))
    try:
        with engine.begin() as conn:
            old = conn.execute(sa.text("SELECT username FROM history WHERE seq = :s"),
                               {"s": seq}).scalar()
            conn.execute(sa.text("UPDATE history SET username = 'mallory' WHERE seq = :s"),
                         {"s": seq})
        bad = culpa("audit", "verify", "--cases", server.cases_url)
        assert bad.returncode == 1
        assert f"entry {seq}" in bad.stderr and "changed" in bad.stderr
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE history SET username = :u WHERE seq = :s"),
                         {"u": old, "s": seq})
        engine.dispose()
    assert culpa("audit", "verify", "--cases", server.cases_url).returncode == 0
