"""The case report: one self-contained HTML file, built from a realistic K-1-like document.

The document is written by hand here (not computed by culpa.evidence) so these tests pin the
report's contract alone; its numbers are made internally consistent by ``k1_doc``.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from culpa.report import render_case_report, render_case_report_html

CREDIT = ("Event data: UCDP Georeferenced Event Dataset (CC BY 4.0). Sundberg & Melander (2013), "
          "Introducing the UCDP Georeferenced Event Dataset, Journal of Peace Research 50(4).")
INCIDENT = {"time": "2019-12-27", "lat": 35.52, "lon": 44.28, "precision_km": 5,
            "event_type": "rocket attack", "target": "US and Iraqi forces",
            "description": "About 30 rockets fired at K-1 air base; one US contractor killed."}
HYPS = ["IS", "KH", "other"]


def _haversine(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def _posterior(prior, items):
    logs = {h: math.log(prior[h]) + sum(it["log_lr"][h] for it in items) for h in prior}
    top = max(logs.values())
    z = sum(math.exp(v - top) for v in logs.values())
    return {h: math.exp(v - top) / z for h, v in logs.items()}


def _break_even(post):
    lead = max(post, key=post.get)
    return {h: None if h == lead else max(p for k, p in post.items() if k != h) / post[h]
            for h in post}


def nearby_events(n: int = 40, seed: int = 7) -> list[dict]:
    """~40 UCDP-like events around Kirkuk (35.3–35.7N, 43.9–44.6E) in the year before."""
    rng = random.Random(seed)
    actors = ["IS"] * 24 + ["Government of Iraq"] * 7 + ["PKK"] * 3 + [None] * 6
    rng.shuffle(actors)
    out = []
    for i in range(n):
        lat, lon = round(rng.uniform(35.3, 35.7), 4), round(rng.uniform(43.9, 44.6), 4)
        d = date(2019, 12, 27) - timedelta(days=rng.randint(1, 364))
        out.append({"id": f"ucdp:{300000 + 17 * i}", "date": d.isoformat(), "lat": lat,
                    "lon": lon, "actor": actors[i % len(actors)],
                    "event_type": rng.choice(["one-sided", "state-based", "non-state"]),
                    "fatalities": rng.choice([0, 1, 1, 2, 3, 5, 12]),
                    "distance_km": round(_haversine(INCIDENT["lat"], INCIDENT["lon"], lat, lon), 2)})
    return out


def k1_doc(*, warning: bool = True) -> dict:
    """A K-1-like case: IS / KH / other, 5 items (one undisclosed), ~40 nearby events."""
    prior = {"IS": 0.76, "KH": 0.05, "other": 0.19}
    items = [
        {"id": "launch-site", "text": "The launch vehicle was found in a Sunni area near the base "
         "where IS cells operate.", "source": "Iraqi military officials (New York Times, 6 Feb 2020)",
         "reliability": "B", "credibility": 2, "weight": 0.64, "undisclosed": False,
         "group": "iraqi-officials", "log_lr": {"IS": 0.48, "KH": -0.71, "other": -0.06}},
        {"id": "militia-absent", "text": "Kata'ib Hezbollah has had no presence in Kirkuk province "
         "since 2014.", "source": "Iraqi military and intelligence officials",
         "reliability": "B", "credibility": 2, "weight": 0.64, "undisclosed": False,
         "group": "iraqi-officials", "counted": False,
         "log_lr": {"IS": 0.0, "KH": 0.0, "other": 0.0}},
        {"id": "rocket-campaign", "text": "The attack followed a run of unclaimed rocket attacks "
         "on bases hosting US forces, attributed to Iran-aligned militias.",
         "source": "US officials and press reports", "url": "https://example.org/report",
         "reliability": "C", "credibility": 3, "weight": 0.36, "undisclosed": False,
         "group": None, "log_lr": {"IS": -0.19, "KH": 0.12, "other": 0.04}},
        {"id": "denial", "text": "Kata'ib Hezbollah denied carrying out the attack.",
         "source": "militia statement", "reliability": "C", "credibility": 3, "weight": 0.36,
         "undisclosed": False, "group": None, "log_lr": {"IS": 0.04, "KH": -0.09, "other": 0.04}},
        {"id": "cited-evidence", "text": "US officials said they held solid evidence that "
         "Kata'ib Hezbollah was responsible; it was never made public.", "source": "US officials",
         "reliability": "B", "credibility": 6, "undisclosed": True, "weight": 0.24,
         "group": None, "log_lr": {"IS": -0.10, "KH": 0.18, "other": -0.10}},
    ]
    for i, it in enumerate(items):
        it["loo_posterior"] = _posterior(prior, items[:i] + items[i + 1:])
    post = _posterior(prior, items)
    disclosed = [it for it in items if not it["undisclosed"]]
    post_d = _posterior(prior, disclosed)
    be_with, be_without = _break_even(post), _break_even(post_d)
    lead, lead_d = max(post, key=post.get), max(post_d, key=post_d.get)
    text = [f"With all the evidence, {lead} is the leading explanation (posterior {post[lead]:.2f})."]
    text += [f"One more fully reliable item would have to be {x:.1f} times more likely if {h} did "
             f"it than if {lead} did for {h} to become the leading explanation."
             for h, x in be_with.items() if x is not None]
    text += [f"The undisclosed evidence would have to be {x:.0f} times more likely if {h} did it "
             f"than if {lead_d} did for {h} to become the leading explanation."
             for h, x in be_without.items() if x is not None]
    events = nearby_events()
    doc = {
        "title": "Rocket attack on K-1 air base, Kirkuk (27 Dec 2019)",
        "leading": lead, "prior": prior, "posterior": post, "items": items,
        "break_even": {h: {"with_undisclosed": be_with[h], "without_undisclosed": be_without[h]}
                       for h in HYPS},
        "break_even_text": text,
        "without_undisclosed": {"leading": lead_d, "posterior": post_d},
        "ach_inconsistency": {"IS": 0.36, "KH": 1.0, "other": 0.0},
        "hypotheses": [{"id": "IS", "actor": "IS", "prior_source": "model"},
                       {"id": "KH", "actor": "Kata'ib Hezbollah", "prior_source": "explicit",
                        "label": "Kata'ib Hezbollah (Iran-aligned militia)"},
                       {"id": "other", "actor": None, "prior_source": "catch_all"}],
        "incident": dict(INCIDENT), "window_days": 365,
        "model_prior": {"IS": 0.80, "Government of Iraq": 0.11, "PKK": 0.05,
                        "Ansar al-Islam": 0.03, "KDP": 0.01},
        "explanation": {
            "background_share": {"IS": 0.42, "Government of Iraq": 0.7, "PKK": 0.93},
            "top_events": [{"id": e["id"], "date": e["date"], "distance_km": e["distance_km"],
                            "actor": e["actor"], "share": s}
                           for e, s in zip(sorted((e for e in events if e["actor"] == "IS"),
                                                  key=lambda e: e["distance_km"])[:3],
                                           (0.21, 0.12, 0.07))]},
        "nearby_events": events,
        "credit": CREDIT,
    }
    if warning:
        doc["warning"] = {"at": "2019-12-26", "horizon_days": 7, "level": "elevated",
                          "actors": {"IS": {"expected": 0.9, "baseline": 0.4, "ratio": 2.25,
                                            "p_any": 0.59},
                                     "Government of Iraq": {"expected": 0.1, "baseline": 0.1,
                                                            "ratio": 1.0, "p_any": 0.1}},
                          "drivers": ["three IS events within 20 km in the last ten days",
                                      {"event": "ucdp:300017", "share": 0.2}]}
    return doc


# --------------------------------------------------------------------------------------------
# A small HTML reader: every element with its attributes, script bodies, tag balance
# --------------------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Page(HTMLParser):
    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.scripts: list[tuple[dict, str]] = []
        self.ids: list[str] = []
        self._in_script: dict | None = None
        self._buf: list[str] = []
        self.text_parts: list[str] = []
        self.feed(text)
        self.close()
        if self.stack:
            self.problems.append(f"unclosed at end: {self.stack}")

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        self.elements.append((tag, a))
        if "id" in a:
            self.ids.append(a["id"])
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "script":
            self._in_script, self._buf = a, []

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()
        if tag == "script":
            self.scripts.append((self._in_script, "".join(self._buf)))
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self._buf.append(data)
        else:
            self.text_parts.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.text_parts))

    def by_id(self, id_: str) -> dict:
        return next(a for t, a in self.elements if a.get("id") == id_)

    def figures(self) -> dict[str, dict]:
        return {a["data-figure"]: json.loads(body) for a, body in self.scripts
                if a.get("type") == "application/json" and "data-figure" in a}


@pytest.fixture(scope="module")
def doc() -> dict:
    return k1_doc()


@pytest.fixture(scope="module")
def report(tmp_path_factory, doc) -> Path:
    return render_case_report(doc, tmp_path_factory.mktemp("report") / "k1.html")


@pytest.fixture(scope="module")
def html(report) -> str:
    return report.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def page(html) -> Page:
    return Page(html)


# --------------------------------------------------------------------------------------------

def test_writes_one_self_contained_file(tmp_path, doc):
    before = copy.deepcopy(doc)
    out = render_case_report(doc, tmp_path / "sub" / "case.html")
    assert doc == before  # the document is not changed
    assert out == tmp_path / "sub" / "case.html"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["case.html"]
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # Plotly's bundle is inlined exactly once for all the charts.
    assert text.count("* plotly.js v") == 1
    assert out.stat().st_size > 2_000_000


def test_markup_is_balanced(page):
    assert page.problems == []
    assert len(page.ids) == len(set(page.ids)), "duplicate ids"


def test_sections_present(page, doc):
    for id_ in ["summary", "map", "timeline", "evidence-chart", "evidence", "break-even", "ach",
                "model", "warning", "method", "js-errors", "fig-map", "fig-timeline",
                "fig-steps", "fig-model", "evidence-table", "break-even-table", "ach-table",
                "top-events", "background-table", "nearby-table", "steps-table"]:
        assert id_ in page.ids, id_
    assert set(page.figures()) == {"fig-map", "fig-timeline", "fig-steps", "fig-model"}
    tags = [t for t, _ in page.elements]
    assert tags.count("h1") == 1 and "main" in tags and "footer" in tags
    assert page.elements[0] == ("html", {"lang": "en"})


def test_nothing_is_loaded_from_the_network(page, html):
    for tag, a in page.elements:
        assert not (tag == "script" and "src" in a), a
        assert not (tag in ("link", "iframe", "img", "embed", "object", "source", "audio",
                            "video") and re.match(r"\s*(https?:)?//", a.get("src", "")
                                                   + a.get("href", "") + a.get("data", ""))), a
        assert tag not in ("link", "iframe", "base"), (tag, a)
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc\s*=\s*[\"']?(https?:)?//", html, re.I)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?(https?:)?//", html, re.I)
    styles = "".join(re.findall(r"<style>(.*?)</style>", html, re.S))
    assert "url(" not in styles and "@import" not in styles
    # The browser is told so too: nothing but inline code and data: URIs.
    csp = next(a["content"] for t, a in page.elements
               if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    assert "http" not in csp


def test_only_the_pages_own_scripts_may_run(page, html):
    """script-src lists the SHA-256 of each inline script and nothing else (no
    'unsafe-inline'), so markup that slipped past escaping could not run script."""
    import base64
    import hashlib

    csp = next(a["content"] for t, a in page.elements
               if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src")).split()[1:]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    bodies = re.findall(r"<script>(.*?)</script>", html, re.S)  # the executable ones
    assert len(bodies) == 3
    expected = {f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'"
                for b in bodies}
    assert set(script_src) == expected


def test_header_states_the_answer_in_plain_words(page, doc):
    post = doc["posterior"][doc["leading"]]
    assert doc["leading"] == "IS" and 0.8 < post < 0.95
    assert (f"The leading explanation is IS: with all the evidence it is very likely that IS "
            f"carried "
            f"out this attack (posterior probability {round(100 * post)}%, against 76% before "
            f"the evidence).") in page.text
    assert ("Without the undisclosed evidence IS still leads, at "
            f"{round(100 * doc['without_undisclosed']['posterior']['IS'])}%.") in page.text
    assert "rocket attack against US and Iraqi forces" in page.text


def test_header_says_when_the_undisclosed_evidence_decides(tmp_path):
    d = k1_doc()
    d["leading"] = "KH"
    d["posterior"] = {"IS": 0.3, "KH": 0.6, "other": 0.1}
    text = Page(render_case_report_html(d)).text
    assert ("The leading explanation is KH — Kata'ib Hezbollah (Iran-aligned militia): with all "
            "the evidence it is likely that KH carried out this attack (posterior probability "
            "60%, against 5% before the evidence).") in text
    assert ("Without the undisclosed evidence the leading explanation would be IS, at "
            f"{round(100 * d['without_undisclosed']['posterior']['IS'])}%: the answer rests on "
            "evidence nobody outside its source has seen.") in text


def test_map_is_drawn_from_the_data(page, doc):
    fig = page.figures()["fig-map"]
    types = {tr.get("type", "scatter") for tr in fig["data"]}
    assert types == {"scatter"}  # no scattergeo / scattermap: they fetch from the network
    lat0 = doc["incident"]["lat"]
    y = fig["layout"]["yaxis"]
    assert y["scaleanchor"] == "x"
    assert y["scaleratio"] == pytest.approx(1 / math.cos(math.radians(lat0)))
    star = next(tr for tr in fig["data"] if tr["name"] == "the incident")
    assert star["marker"]["symbol"] == "star"
    assert star["x"] == [doc["incident"]["lon"]] and star["y"] == [lat0]
    # Every nearby event is plotted once, with its id, date, actor and fatalities in the hover.
    ev = [tr for tr in fig["data"] if tr.get("customdata") and tr["mode"] == "markers"
          and tr["name"] != "the incident"]
    shown = {cd[0]: cd for tr in ev for cd in tr["customdata"]}
    assert len(shown) == sum(len(tr["x"]) for tr in ev) == len(doc["nearby_events"])
    for e in doc["nearby_events"]:
        cd = shown[e["id"]]
        assert cd[1] == e["date"] and cd[2] == (e["actor"] or "unattributed")
        assert cd[3] == str(e["fatalities"])
    assert all("fatalities" in tr["hovertemplate"] and "customdata[0]" in tr["hovertemplate"]
               for tr in ev)
    # The radius circle surrounds every event; the scale bar has a km label.
    radius = next(tr for tr in fig["data"] if tr["name"].endswith("km radius"))
    assert radius["name"] == "50 km radius"
    assert any(a["text"].endswith(" km") for a in fig["layout"]["annotations"])
    # The circle is round on the ground: every point 50 km from the incident.
    for lon, lat in zip(radius["x"][::12], radius["y"][::12]):
        assert _haversine(lat0, doc["incident"]["lon"], lat, lon) == pytest.approx(50, rel=1e-6)


def test_actor_colours_agree_across_charts(page):
    figs = page.figures()
    def colours(fig, key):
        return {tr["name"].split(" (")[0]: tr["marker"]["color"] if isinstance(
            tr["marker"].get("color"), str) else None for tr in fig["data"] if key(tr)}
    m = colours(figs["fig-map"], lambda tr: tr["mode"] == "markers")
    t = colours(figs["fig-timeline"], lambda tr: True)
    s = {tr["name"]: tr["line"]["color"] for tr in figs["fig-steps"]["data"]}
    bars = figs["fig-model"]["data"][0]
    b = dict(zip(bars["y"], bars["marker"]["color"]))
    for actor in ("IS", "Government of Iraq", "PKK", "unattributed"):
        assert m[actor] == t[actor], actor
    assert m["IS"] == s["IS"] == b["IS"]
    assert b["Government of Iraq"] == m["Government of Iraq"]
    assert len({s["IS"], s["KH"], s["other"], m["Government of Iraq"], m["PKK"]}) == 5


def test_timeline_counts_every_event_by_week(page, doc):
    fig = page.figures()["fig-timeline"]
    assert all(tr["type"] == "bar" for tr in fig["data"])
    assert sum(sum(tr["y"]) for tr in fig["data"]) == len(doc["nearby_events"])
    n_is = sum(1 for e in doc["nearby_events"] if e["actor"] == "IS")
    assert sum(next(tr for tr in fig["data"] if tr["name"] == "IS")["y"]) == n_is
    assert len(fig["data"][0]["x"]) == 53  # 365 days in weeks ending on the incident's day
    line = fig["layout"]["shapes"][0]
    assert line["x0"].startswith("2019-12-27")


def test_steps_start_at_the_prior_and_end_at_the_posterior(page, doc):
    fig = page.figures()["fig-steps"]
    assert [tr["name"] for tr in fig["data"]] == ["IS", "KH", "other"]
    for tr in fig["data"]:
        assert len(tr["y"]) == len(doc["items"]) + 1
        assert tr["y"][0] == pytest.approx(doc["prior"][tr["name"]])
        assert tr["y"][-1] == pytest.approx(doc["posterior"][tr["name"]], abs=1e-12)
    # The undisclosed item (the 5th) is shaded and labelled; its markers differ.
    shaded = [s for s in fig["layout"]["shapes"] if s["type"] == "rect"]
    assert [(s["x0"], s["x1"]) for s in shaded] == [(4.5, 5.5)]
    assert "undisclosed" in fig["layout"]["xaxis"]["ticktext"][5]
    assert fig["data"][0]["marker"]["symbol"][5] != fig["data"][0]["marker"]["symbol"][4]


def _rows(html: str, table_id: str) -> list[str]:
    body = re.search(rf'<table id="{table_id}"[^>]*>(.*?)</table>', html, re.S).group(1)
    tbody = re.search(r"<tbody>(.*?)</tbody>", body, re.S).group(1)
    return re.findall(r"<tr[^>]*>.*?</tr>", tbody, re.S)


def _cells(row: str) -> list[str]:
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]


def test_evidence_table(html, doc):
    rows = _rows(html, "evidence-table")
    assert len(rows) == len(doc["items"])
    assert ['class="undisclosed"' in r for r in rows] == [False, False, False, False, True]
    first = _cells(rows[0])
    assert first[0] == "1" and first[1].startswith("launch-site group: iraqi-officials")
    assert first[2] == "B2 usually reliable, probably true" and first[3] == "0.64"
    assert first[4:7] == ["+0.48", "\u22120.71", "\u22120.06"]
    loo = doc["items"][0]["loo_posterior"]
    assert first[7:10] == [f"{100 * loo[h]:.1f}%" for h in HYPS]
    assert "Counted once with its group" in _cells(rows[1])[1]
    assert _cells(rows[4])[1].startswith("cited-evidence undisclosed US officials said")
    # A source with a URL is a plain link a reader can follow (never loaded by the page).
    assert '<a href="https://example.org/report" rel="noopener noreferrer">' in rows[2]


def test_break_even_and_ach(html, doc, page):
    for s in doc["break_even_text"]:
        assert s.replace("'", "&#39;") in html
    rows = [_cells(r) for r in _rows(html, "break-even-table")]
    be = doc["break_even"]
    assert rows[0] == ["IS", "leads", "leads"]
    assert rows[1] == ["KH", f"× {be['KH']['with_undisclosed']:,.0f}",
                       f"× {be['KH']['without_undisclosed']:,.0f}"]
    assert rows[2] == ["other", f"× {be['other']['with_undisclosed']:.1f}",
                       f"× {be['other']['without_undisclosed']:.1f}"]
    ach = [_cells(r)[:2] for r in _rows(html, "ach-table")]
    assert ach == [["other", "0.00"], ["IS", "0.36"], ["KH", "1.00"]]


def test_model_reasons(html, doc):
    top = [_cells(r) for r in _rows(html, "top-events")]
    assert [r[1] for r in top] == [t["id"] for t in doc["explanation"]["top_events"]]
    assert top[0][-1] == "21.0%"
    bg = {r[0]: r[1:] for r in map(_cells, _rows(html, "background-table"))}
    assert bg["IS"] == ["80.0%", "42%", "58%"]


def test_the_pooled_attribution_is_traced_to_its_members():
    doc = k1_doc()
    doc["explanation"]["actors"] = [
        {"actor": "IS", "probability": 0.80, "hawkes_probability": 0.70,
         "trees_probability": 0.90, "background_share": 0.42, "top_events": []},
        {"actor": "PKK", "probability": 0.05, "hawkes_probability": 0.12,
         "trees_probability": 0.01, "background_share": 0.93, "top_events": []}]
    doc["explanation"]["combiner"] = {
        "weights": {"hawkes": 0.4, "trees": 0.6}, "members_agree": True,
        "calibration": "forward", "why": "the query is after the fit's last event (2019-11-30)"}
    html = render_case_report_html(doc)
    bg = {r[0]: r[1:] for r in map(_cells, _rows(html, "background-table"))}
    assert bg["IS"] == ["80.0%", "70.0%", "90.0%", "42%", "58%"]
    assert bg["PKK"][:3] == ["5.0%", "12.0%", "1.0%"]
    assert bg["Government of Iraq"][1:3] == ["—", "—"]  # no member probabilities given
    said = re.search(r'<p id="combiner"[^>]*>(.*?)</p>', html, re.S).group(1)
    assert "p_Hawkes^0.40 · p_trees^0.60" in said and "forward calibration" in said
    assert "fit&#39;s last event" in said  # escaped like every other text
    assert "pooled with boosted trees" in html
    plain = render_case_report_html(k1_doc())  # a Hawkes-only model: no members to show
    assert 'id="combiner"' not in plain and "pooled with boosted trees" not in plain


def test_footer_has_the_credit_and_method(page, doc):
    footer = re.search(r'<footer class="report" id="method">(.*?)</footer>',
                       render_case_report_html(doc), re.S).group(1)
    assert "Sundberg &amp; Melander (2013)" in footer
    assert "Method." in footer


def test_warning_only_when_present(tmp_path):
    text = render_case_report_html(k1_doc(warning=False))
    assert 'id="warning"' not in text and 'href="#warning"' not in text
    with_w = render_case_report_html(k1_doc())
    rows = [_cells(r) for r in _rows(with_w, "warning-table")]
    assert rows[0] == ["IS", "0.90", "0.40", "× 2.2", "59%"]
    assert "event: ucdp:300017; share: 0.2" in with_w


def test_all_text_is_escaped(tmp_path):
    evil = "<script>alert('x')</script>"
    d = k1_doc()
    d["title"] = f"K-1 {evil} & co"
    d["items"][0]["text"] = f"text {evil}"
    d["items"][0]["source"] = "<b>bold</b>"
    d["items"][2]["url"] = "javascript:alert(1)"
    d["incident"]["description"] = evil
    d["credit"] = evil
    d["break_even_text"] = [evil]
    for e in d["nearby_events"][:5]:
        e["actor"] = "</script><img src=x onerror=alert(1)>"
    d["explanation"]["top_events"][0]["id"] = evil
    text = render_case_report(d, tmp_path / "evil.html").read_text(encoding="utf-8")
    assert "<script>alert" not in text and "<img src=x" not in text and "<b>bold" not in text
    assert not re.search(r"href=[\"']?javascript:", text)
    assert "K-1 &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in text
    page = Page(text)
    assert page.problems == []
    # Inside the charts' JSON the actor is escaped for Plotly too (shown literally, not as HTML).
    names = [tr["name"] for tr in page.figures()["fig-timeline"]["data"]]
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in names
    assert sum(1 for t, a in page.elements if t == "script") == 8  # 4 figures + 4 of ours


def test_minimal_document_renders(tmp_path):
    """Only what ``CaseResult.to_dict()`` gives plus an incident: no events, model or credit."""
    d = k1_doc(warning=False)
    for key in ("hypotheses", "nearby_events", "model_prior", "explanation", "break_even_text",
                "without_undisclosed"):
        d.pop(key)
    for it in d["items"]:
        for key in ("text", "source", "reliability", "credibility"):
            it.pop(key, None)
    text = render_case_report(copy.deepcopy(d), tmp_path / "min.html").read_text("utf-8")
    page = Page(text)
    assert page.problems == []
    assert set(page.figures()) == {"fig-map", "fig-timeline", "fig-steps"}
    assert "The leading explanation is <strong>IS</strong>" in text
    assert "No events in the data within 20 km of the incident" in page.text
    assert "nearby-table" not in page.ids
    assert not any(tr["name"].endswith("radius") for tr in page.figures()["fig-map"]["data"])


def test_catch_all_leading_and_missing_numbers(tmp_path):
    d = k1_doc(warning=False)
    d["leading"] = "other"
    d["posterior"] = {"IS": 0.2, "KH": 0.1, "other": 0.7}
    d["nearby_events"][0]["fatalities"] = None
    d["nearby_events"][1]["fatalities"] = float("nan")
    d["nearby_events"][2]["distance_km"] = None
    page = Page(render_case_report_html(d))
    assert ("The leading explanation is other — any other actor: with all the evidence it is "
            "likely that an actor other than IS and KH carried out this attack") in page.text
    fig = page.figures()["fig-map"]
    shown = {cd[0]: cd for tr in fig["data"] for cd in tr.get("customdata") or []}
    assert shown[d["nearby_events"][0]["id"]][3] == "unknown"
    assert shown[d["nearby_events"][1]["id"]][3] == "unknown"
