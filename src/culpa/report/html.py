"""The case report: one self-contained HTML file that works offline.

    render_case_report(doc, Path("k1.html"))

``doc`` is the ``culpa case --json`` document with the context the command adds (incident,
hypotheses, window, the model's attribution and its explanation, nearby events, an optional
early-warning view, the data credit). The page is rendered with Jinja2 (autoescape on) from
``templates/``; Plotly's JavaScript is inlined once and every chart is drawn from JSON embedded
in the page, so nothing is fetched from the network. A Content-Security-Policy in the page
enforces that: a browser opening the report refuses any remote script, style, image, font or
connection, and the page lists any error (including such a refusal) in ``#js-errors``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import jinja2
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.utils import PlotlyJSONEncoder

from culpa.report import figures as F

#: Plotly config shared by every chart: no link to plotly.com, no cloud, PNG download kept.
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "showLink": False,
                 "showSendToCloud": False, "showEditInChartStudio": False,
                 "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
                 "toImageButtonOptions": {"format": "png", "scale": 2}}

RELIABILITY_WORDS = {"A": "completely reliable", "B": "usually reliable",
                     "C": "fairly reliable", "D": "not usually reliable", "E": "unreliable",
                     "F": "reliability cannot be judged"}
CREDIBILITY_WORDS = {1: "confirmed by other sources", 2: "probably true", 3: "possibly true",
                     4: "doubtful", 5: "improbable", 6: "truth cannot be judged"}

#: Words of estimative probability (after US ICD 203), upper bounds.
ESTIMATIVE = [(0.05, "almost no chance"), (0.20, "very unlikely"), (0.45, "unlikely"),
              (0.55, "roughly an even chance"), (0.80, "likely"), (0.95, "very likely"),
              (1.01, "almost certain")]

#: Break-even factors at or above this are shown as "over a trillion" (the float max included).
HUGE_FACTOR = 1e12


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("culpa.report", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["pct"] = pct
    env.filters["num"] = num
    env.filters["factor"] = factor
    env.filters["signed"] = signed
    return env


def _scripts() -> dict[str, str]:
    """The page's three scripts, exactly as they go between <script> and </script>."""
    loader = _environment().loader
    source = {name: loader.get_source(_environment(), f"{name}.js")[0]
              for name in ("errors", "charts")}
    return {"errors": source["errors"], "plotly": _plotly_js(), "charts": source["charts"]}


def script_hashes(scripts: Mapping[str, str]) -> str:
    """CSP sources allowing exactly these inline scripts (by SHA-256) and no other: a script
    that an escaping slip let into the page would not run."""
    import base64
    import hashlib

    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                    for s in scripts.values())


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    js = get_plotlyjs()
    # An inline script ends at the first "</script"; the bundle has none, but make sure.
    return js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


# --------------------------------------------------------------------------------------------
# Formatting (also used as template filters)
# --------------------------------------------------------------------------------------------

def pct(p: object, digits: int = 0) -> str:
    if p is None:
        return "—"
    p = float(p)
    if 0 < p < 0.001:
        return "<0.1%"
    if 0.999 < p < 1:
        return ">99.9%"
    if 0 < p < 0.01 and digits == 0:
        return f"{100 * p:.1f}%"
    return f"{100 * p:.{digits}f}%"


def num(x: object, digits: int = 2) -> str:
    if x is None:
        return "—"
    return f"{float(x):.{digits}f}"


def signed(x: object, digits: int = 2) -> str:
    if x is None:
        return "—"
    x = float(x)
    if abs(x) < 0.5 * 10 ** -digits:
        return "0"
    return f"{x:+.{digits}f}".replace("-", "\u2212")


def factor(x: object) -> str:
    """A likelihood-ratio factor in words-friendly form: 2.3, 14, 1,200, 3.5 million."""
    if x is None:
        return "—"
    x = float(x)
    if not math.isfinite(x) or x >= HUGE_FACTOR:
        return "over a trillion"
    if x < 9.95:
        return f"{x:.1f}"
    if x < 1e6:
        return f"{x:,.0f}"
    if x < 1e9:
        return f"{x / 1e6:.1f} million"
    return f"{x / 1e9:.1f} billion"


def estimative(p: float) -> str:
    for bound, words in ESTIMATIVE:
        if p < bound:
            return words
    return ESTIMATIVE[-1][1]


# --------------------------------------------------------------------------------------------
# Figures as JSON that is safe inside <script type="application/json">
# --------------------------------------------------------------------------------------------

def figure_json(fig: go.Figure) -> str:
    """The figure as JSON with <, > and & escaped, so no text can close the script element."""
    plotly_json = fig.to_plotly_json()
    spec = {"data": plotly_json["data"], "layout": plotly_json["layout"]}
    text = json.dumps(spec, cls=PlotlyJSONEncoder, ensure_ascii=False, allow_nan=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# --------------------------------------------------------------------------------------------
# The view: everything the template shows, computed here so the template stays simple
# --------------------------------------------------------------------------------------------

def _hypotheses(doc: Mapping) -> list[dict]:
    hyps = [dict(h) for h in doc.get("hypotheses") or []]
    known = {str(h.get("id")) for h in hyps}
    for hid in doc["posterior"]:  # a document without the hypotheses list still renders
        if str(hid) not in known:
            hyps.append({"id": str(hid), "actor": str(hid), "prior_source": "explicit"})
    order = [str(h) for h in doc["posterior"]]
    hyps = [h for h in hyps if str(h["id"]) in doc["posterior"]]
    hyps.sort(key=lambda h: order.index(str(h["id"])))
    return hyps


def _safe_url(url: object) -> str | None:
    if not url:
        return None
    parsed = urlparse(str(url))
    return str(url) if parsed.scheme in ("http", "https") and parsed.netloc else None


def _warning_view(w: Mapping | None) -> dict | None:
    if not w:
        return None
    actors = []
    for a, v in (w.get("actors") or {}).items():
        v = dict(v or {})
        actors.append({"actor": a, **{k: v.get(k) for k in ("expected", "baseline", "ratio",
                                                             "p_any")}})
    actors.sort(key=lambda r: -float(r["p_any"] or 0))
    drivers = []
    for d in w.get("drivers") or []:
        if isinstance(d, Mapping):
            drivers.append("; ".join(f"{k}: {_plain(v)}" for k, v in d.items()))
        else:
            drivers.append(str(d))
    return {"at": w.get("at"), "horizon_days": w.get("horizon_days"), "level": w.get("level"),
            "actors": actors, "drivers": drivers}


def _plain(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def build_view(doc: Mapping) -> dict:
    """Numbers and words for the template; the figures as escaped JSON."""
    hyps = _hypotheses(doc)
    hids = [str(h["id"]) for h in hyps]
    events = list(doc.get("nearby_events") or [])
    explanation = doc.get("explanation") or {}
    model_prior = dict(doc.get("model_prior") or {})
    colours = F.colour_table(hyps, [[e.get("actor") for e in events], model_prior,
                                    [t.get("actor") for t in explanation.get("top_events") or []]])
    for h in hyps:
        h["colour"] = F.hypothesis_colour(colours, h)
        h["label"] = h.get("label") or (h.get("actor") if h.get("prior_source") != "catch_all"
                                        else "any other actor")
        h["prior"] = float(doc["prior"].get(h["id"], 0.0))
        h["posterior"] = float(doc["posterior"].get(h["id"], 0.0))
        h["ach"] = (doc.get("ach_inconsistency") or {}).get(h["id"])
        be = (doc.get("break_even") or {}).get(h["id"]) or {}
        h["break_even_with"] = be.get("with_undisclosed")
        h["break_even_without"] = be.get("without_undisclosed")
        h["source_words"] = {"explicit": "stated in the case file",
                             "model": "the model's attribution",
                             "catch_all": "what the model gives every other actor"
                             }.get(h.get("prior_source"), h.get("prior_source") or "")

    named = [h["id"] for h in hyps if h.get("prior_source") != "catch_all"]
    for h in hyps:  # who "did it" in a sentence
        h["subject"] = (f"an actor other than {_and(named)}" if h.get("prior_source") == "catch_all"
                        else h["id"])
    leading = str(doc["leading"])
    lead = next(h for h in hyps if h["id"] == leading)
    seq = F.steps(doc)
    items = []
    for i, it in enumerate(doc.get("items") or [], 1):
        r, c = it.get("reliability"), it.get("credibility")
        grade = f"{r or ''}{c or ''}" or "—"
        lr = it.get("log_lr") or {}
        items.append({
            "n": i, "id": it.get("id"), "text": it.get("text") or "", "source": it.get("source"),
            "url": _safe_url(it.get("url")), "date": it.get("date"),
            "grade": grade,
            "grade_words": ", ".join(w for w in (RELIABILITY_WORDS.get(str(r or "")),
                                                 CREDIBILITY_WORDS.get(_int(c))) if w),
            "weight": it.get("weight"), "undisclosed": bool(it.get("undisclosed")),
            "group": it.get("group"), "counted": it.get("counted", True) is not False,
            "log_lr": [float(lr.get(h, 0.0)) for h in hids],
            "loo": [(it.get("loo_posterior") or {}).get(h) for h in hids],
            "after": [seq[i].get(h) for h in hids],
        })
    ach_sorted = sorted(hyps, key=lambda h: float(h["ach"]) if h["ach"] is not None else math.inf)
    inc = dict(doc["incident"])
    t_inc = F.parse_time(inc["time"])
    inc["date"] = t_inc.date().isoformat()
    inc["when"] = (t_inc.strftime("%d %B %Y").lstrip("0") if t_inc.time() == dt.time(0)
                   else t_inc.strftime("%d %B %Y, %H:%M UTC").lstrip("0"))
    inc["precision_s"] = _g(inc.get("precision_km"), "g", " km")
    inc["lat_s"] = f"{abs(float(inc['lat'])):.4f}°{'N' if float(inc['lat']) >= 0 else 'S'}"
    inc["lon_s"] = f"{abs(float(inc['lon'])):.4f}°{'E' if float(inc['lon']) >= 0 else 'W'}"

    without = doc.get("without_undisclosed") or None
    has_undisclosed = any(it["undisclosed"] for it in items)

    top_events = [dict(t) for t in explanation.get("top_events") or []]
    for t in top_events:
        t["colour"] = F.actor_colour(colours, t.get("actor"))
        t["day"] = F.day(t["date"]) if t.get("date") else "—"
    members = {a["actor"]: a for a in explanation.get("actors") or []
               if "hawkes_probability" in a}
    background = []
    for a, share in sorted((explanation.get("background_share") or {}).items(),
                           key=lambda kv: -float(model_prior.get(kv[0], 0.0))):
        background.append({"actor": a, "share": share, "prior": model_prior.get(a),
                           "triggered": None if share is None else 1.0 - float(share),
                           "hawkes": members.get(a, {}).get("hawkes_probability"),
                           "trees": members.get(a, {}).get("trees_probability"),
                           "colour": F.actor_colour(colours, a)})

    nearby = [dict(e, day=F.day(e["date"]), fatalities_s=_g(e.get("fatalities")),
                   distance_s=_g(e.get("distance_km"), ".1f", " km"))
              for e in sorted(events, key=lambda e: str(e["date"]))]
    radius = F.map_radius_km(doc, events)
    actors_in_window = sorted({e.get("actor") or F.UNATTRIBUTED for e in events})

    figs = {"map": F.map_figure(doc, colours), "timeline": F.timeline_figure(doc, colours),
            "steps": F.steps_figure(doc, hyps, colours)}
    if model_prior:
        figs["model"] = F.model_prior_figure(model_prior, colours)

    return {
        "title": doc.get("title") or "Case report",
        "leading": lead,
        "leading_words": estimative(lead["posterior"]),
        "hypotheses": hyps,
        "items": items,
        "has_undisclosed": has_undisclosed,
        "without_undisclosed": without,
        "break_even_text": list(doc.get("break_even_text") or doc.get("sentences") or []),
        "ach": ach_sorted,
        "incident": inc,
        "window_days": doc.get("window_days"),
        "radius_km": F.fmt_km(radius),
        "nearby": nearby,
        "n_nearby": len(events),
        "n_actors_in_window": len(actors_in_window),
        "model_prior": model_prior,
        "background": background,
        "combiner": _combiner_view(explanation.get("combiner")),
        "top_events": top_events,
        "warning": _warning_view(doc.get("warning")),
        "credit": doc.get("credit") or "",
        "figures": {k: figure_json(v) for k, v in figs.items()},
        "plotly_config": json.dumps(PLOTLY_CONFIG),
        "scripts": (scripts := _scripts()),
        "script_hashes": script_hashes(scripts),
        "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "colours": colours,
    }


def _combiner_view(comb: dict | None) -> dict | None:
    """How the model's attribution pools its two members, in words (None: the Hawkes model
    alone)."""
    if not comb:
        return None
    w = comb["weights"]
    agree = "agree" if comb.get("members_agree", True) else "disagree"
    return {"hawkes": float(w["hawkes"]), "trees": float(w["trees"]),
            "text": (f"The model's attribution pools two members: the Hawkes model (background "
                     f"and earlier events, as below) and boosted trees over place, time and "
                     f"marks, as p ∝ p_Hawkes^{float(w['hawkes']):.2f} · "
                     f"p_trees^{float(w['trees']):.2f}, weights fitted on out-of-fold "
                     f"attributions ({comb.get('calibration', '?')} calibration: "
                     f"{comb.get('why', '')}; the two {agree} on the most likely actor).")}


def _g(x: object, spec: str = "g", unit: str = "") -> str:
    v = F.finite(x)
    return "—" if v is None else f"{v:{spec}}{unit}"


def _and(names: Sequence[str]) -> str:
    names = list(names)
    return " and ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " and " + names[-1]


def _int(x: object) -> int | None:
    try:
        return int(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def render_case_report_html(doc: Mapping) -> str:
    """The report as one HTML string."""
    return _environment().get_template("case.html.j2").render(**build_view(doc))


def render_case_report(doc: Mapping, path: Path | str) -> Path:
    """Write the case report for ``doc`` (the extended ``culpa case --json`` document) to
    ``path`` as one self-contained HTML file; returns the path."""
    path = Path(path)
    text = render_case_report_html(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


__all__: Sequence[str] = ["render_case_report", "render_case_report_html", "build_view"]
