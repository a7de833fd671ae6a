"""The case report in a real headless Chromium: the charts draw, nothing errs, nothing is fetched.

Chromium is driven from the command line alone (``--dump-dom``, ``--screenshot``), so no Python
package is needed. The page itself lists every error (script errors, refused loads) in
``#js-errors`` and marks ``<html data-charts-drawn="N">`` when its charts are drawn; the tests
read both from the dumped DOM. Chromium missing is a failure, not a skip: ``make browser``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from culpa.report import render_case_report
from test_report import k1_doc

pytestmark = pytest.mark.browser

FIGURES = ("fig-map", "fig-timeline", "fig-steps", "fig-model")
#: Colours the screenshot must show: IS's markers and bars, and the incident's star.
IS_BLUE = (0x00, 0x72, 0xB2)
STAR_YELLOW = (0xFF, 0xCC, 0x00)


def chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser",
                      "/usr/bin/chromium", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    pytest.fail("headless Chromium is needed for the report's browser tests and was not "
                "found: install it with `make browser` (Debian package `chromium`), or set "
                "$CHROMIUM to its path")


def run_chromium(page: Path, tmp: Path, *args: str, timeout: float = 30) -> str:
    """Open ``page`` headless with the network cut off; returns stdout."""
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-extensions",
           "--hide-scrollbars", "--mute-audio",
           # Belt and braces: even if the page tried, no name resolves and no proxy answers.
           "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
           f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=10000",
           *args, page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc.stdout


class Dom(HTMLParser):
    """What the tests need from the dumped DOM: the error list, and what each chart holds."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.root: dict = {}
        self.errors: list[str] = []
        self.errors_hidden = None
        self.charts: dict[str, dict] = {f: {"classes": [], "legend": [], "points": 0,
                                            "attrs": {}, "width": None} for f in FIGURES}
        self.details_open: list[bool] = []
        self._stack: list[tuple[str, str | None]] = []  # (tag, chart it belongs to)
        self._in_error_li = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.root = a
        chart = self._stack[-1][1] if self._stack else None
        if a.get("id") in self.charts:
            chart = a["id"]
            self.charts[chart]["attrs"] = a
        if a.get("id") == "js-errors":
            self.errors_hidden = "hidden" in a
        if tag == "details":
            self.details_open.append("open" in a)
        if chart:
            info = self.charts[chart]
            classes = a.get("class", "").split()
            info["classes"] += classes
            info["points"] += "point" in classes
            if "main-svg" in classes and info["width"] is None:
                info["width"] = float(a.get("width", "nan"))
            if "legendtext" in classes:
                info["legend"].append(a.get("data-unformatted", ""))
        self._in_error_li = tag == "li" and any(t == "div#js-errors" for t, _ in self._stack)
        if tag not in ("meta", "br", "img", "input", "link", "hr", "path", "rect", "line",
                       "circle", "stop", "use", "image"):
            name = "div#js-errors" if a.get("id") == "js-errors" else tag
            self._stack.append((name, chart))

    def handle_endtag(self, tag):
        if self._stack and self._stack[-1][0].split("#")[0] == tag:
            self._stack.pop()
        self._in_error_li = False

    def handle_data(self, data):
        if self._in_error_li:
            self.errors.append(data)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("browser")
    return render_case_report(k1_doc(), tmp / "k1.html"), tmp


@pytest.fixture(scope="module")
def dom(rendered) -> Dom:
    page, tmp = rendered
    return Dom(run_chromium(page, tmp, "--dump-dom", "--window-size=1280,2400"))


def test_charts_draw_without_errors(dom):
    assert dom.errors == [] and dom.errors_hidden, f"errors in the page: {dom.errors}"
    assert dom.root.get("data-charts-drawn") == str(len(FIGURES))
    for fig in FIGURES:
        info = dom.charts[fig]
        assert info["attrs"].get("data-drawn") == "true", fig
        assert "js-plotly-plot" in info["attrs"].get("class", "").split(), fig
        assert {"plot-container", "main-svg"} <= set(info["classes"]), fig


def test_map_shows_every_event_the_incident_and_a_legend(dom):
    doc = k1_doc()
    info = dom.charts["fig-map"]
    # 40 events + 3 ringed top events + the star (lines are not points).
    assert info["points"] == len(doc["nearby_events"]) + 3 + 1
    assert "the incident" in info["legend"] and "50 km radius" in info["legend"]
    assert {"IS (24)", "Government of Iraq (7)", "PKK (3)", "unattributed (6)"} <= set(
        info["legend"])
    steps = dom.charts["fig-steps"]
    assert steps["legend"] == ["IS", "KH", "other"]
    assert steps["points"] == 3 * (len(doc["items"]) + 1)


def test_an_error_or_a_remote_load_would_show(rendered):
    """The checks above mean something: an injected script and a remote image are both
    reported, and both are refused by the page's own policy: the image before any network is
    tried, the script because only the page's own scripts (by their SHA-256) may run."""
    page, tmp = rendered
    bad = tmp / "bad.html"
    bad.write_text(page.read_text(encoding="utf-8").replace(
        '<div class="page">',
        '<img src="https://example.org/pixel.png" alt=""><script>notDefinedAnywhere();</script>'
        '<div class="page">', 1), encoding="utf-8")
    found = Dom(run_chromium(bad, tmp, "--dump-dom"))
    assert not found.errors_hidden
    text = " | ".join(found.errors)
    assert "notDefinedAnywhere" not in text  # it never ran
    assert "blocked by the page's offline policy: script-src" in text
    assert "blocked by the page's offline policy: img-src https://example.org/pixel.png" in text
    assert found.root.get("data-charts-drawn") == str(len(FIGURES))  # the rest still works


def test_hover_and_printing(rendered, dom):
    """Hovering an event shows its id, date, actor and fatalities (without tripping the page's
    policy, which allows no eval); printing fits the charts to the paper and unfolds tables."""
    page, tmp = rendered
    assert dom.charts["fig-map"]["width"] > 900  # on screen (1280 px window): the full width
    assert dom.details_open == [False]
    ev = min((e for e in k1_doc()["nearby_events"] if e["actor"] == "IS"), key=lambda e: e["date"])
    driven = tmp / "driven.html"
    driver = """
      (function wait() {
        if (!document.documentElement.getAttribute("data-charts-drawn")) {
          return setTimeout(wait, 50);
        }
        var map = document.getElementById("fig-map");
        var k = map.data.findIndex(function (t) { return t.name === "IS (24)"; });
        var i = map.data[k].customdata.findIndex(function (c) { return c[0] === "%s"; });
        Plotly.Fx.hover(map, [{curveNumber: k, pointNumber: i}]);
        var label = map.querySelector(".hoverlayer");
        document.body.setAttribute("data-hover", label ? label.textContent : "none");
        window.dispatchEvent(new Event("beforeprint"));
      })();""" % ev["id"]
    # The page runs only scripts whose SHA-256 its policy lists: list the test's driver too.
    digest = base64.b64encode(hashlib.sha256(driver.encode()).digest()).decode()
    html = page.read_text(encoding="utf-8").replace(
        "script-src ", f"script-src 'sha256-{digest}' ", 1)
    driven.write_text(html.replace("</body>", f"<script>{driver}</script></body>", 1),
                      encoding="utf-8")
    text = run_chromium(driven, tmp, "--dump-dom", "--window-size=1280,2400")
    found = Dom(text)
    assert found.errors == []
    hover = re.search(r'<body[^>]*data-hover="([^"]*)"', text).group(1)
    for part in (ev["id"], ev["date"], "actor: IS", f"fatalities: {ev['fatalities']}"):
        assert part in hover, (part, hover)
    assert {f: found.charts[f]["width"] for f in FIGURES} == {f: 700.0 for f in FIGURES}
    assert found.details_open == [True]


def test_screenshot(rendered):
    import matplotlib.image as mpimg
    import numpy as np

    page, tmp = rendered
    shot = tmp / "k1.png"
    run_chromium(page, tmp, f"--screenshot={shot}", "--window-size=1280,2400")
    img = mpimg.imread(shot)
    assert img.shape[:2] == (2400, 1280)
    rgb = np.round(img[..., :3] * 255).astype(int)
    assert rgb.std() > 20  # not a blank page

    def near(colour, tol=12):
        return int((np.abs(rgb - np.array(colour)).max(axis=-1) <= tol).sum())

    assert near(IS_BLUE) > 2000  # IS's markers, bars and lines
    assert near(STAR_YELLOW) > 150  # the incident's star on the map
