"""The case report's charts, as Plotly figures built from the case document alone.

Nothing here reaches the network: the map is a plain lon/lat scatter (no ``scattergeo`` or
``scattermap``, which fetch topojson or tiles), with equal-aspect degrees corrected by cos(lat),
a km scale bar and the search radius drawn around the incident.

Text that came from the case or the data is HTML-escaped before it reaches Plotly, because
Plotly reads a few tags (``<b>``, ``<br>``) in labels and hover text and decodes entities, so an
actor called ``<b>X</b>`` shows literally instead of in bold.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import plotly.graph_objects as go

#: Mean Earth radius (km), as in culpa.model.geo.
EARTH_RADIUS_KM = 6371.0088

#: Okabe–Ito (colour-blind safe) first, then Paul Tol's muted scheme; yellow left out (white bg).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
           "#882255", "#117733", "#332288", "#999933", "#AA4499", "#44AA99", "#661100"]
CATCH_ALL_COLOUR = "#6b6b6b"
UNATTRIBUTED_COLOUR = "#b5b5b5"
UNATTRIBUTED = "unattributed"
#: Key of the catch-all hypothesis in the colour table (no actor of that name can exist).
CATCH_ALL_KEY = "\x00catch_all"

FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, "
                   "sans-serif", size=13, color="#1d2433")


def finite(x: object) -> float | None:
    """``x`` as a float, or None when it is missing or not a finite number."""
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=False)


# --------------------------------------------------------------------------------------------
# Colours: one table per report, so an actor has the same colour in every chart and table.
# --------------------------------------------------------------------------------------------

def colour_table(hypotheses: Sequence[Mapping], actor_lists: Iterable[Iterable[str | None]]
                 ) -> dict[str, str]:
    """Actor -> colour: the hypotheses' actors first (in order), then the rest by frequency."""
    colours: dict[str, str] = {CATCH_ALL_KEY: CATCH_ALL_COLOUR, UNATTRIBUTED: UNATTRIBUTED_COLOUR}
    order: list[str] = []
    for h in hypotheses:
        if h.get("prior_source") != "catch_all" and h.get("actor"):
            order.append(str(h["actor"]))
    counts: Counter[str] = Counter()
    for actors in actor_lists:
        for a in actors:
            if a:
                counts[str(a)] += 1
    order += [a for a, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    i = 0
    for a in order:
        if a not in colours:
            colours[a] = PALETTE[i % len(PALETTE)]
            i += 1
    return colours


def actor_colour(colours: Mapping[str, str], actor: str | None) -> str:
    if not actor:
        return colours[UNATTRIBUTED]
    return colours.get(str(actor), UNATTRIBUTED_COLOUR)


def hypothesis_colour(colours: Mapping[str, str], h: Mapping) -> str:
    if h.get("prior_source") == "catch_all" or not h.get("actor"):
        return colours[CATCH_ALL_KEY]
    return actor_colour(colours, h["actor"])


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------

def destination(lat: float, lon: float, bearing_deg: float, dist_km: float) -> tuple[float, float]:
    """The point ``dist_km`` from (lat, lon) along a great circle at ``bearing_deg``."""
    phi1, lam1 = math.radians(lat), math.radians(lon)
    theta, delta = math.radians(bearing_deg), dist_km / EARTH_RADIUS_KM
    phi2 = math.asin(math.sin(phi1) * math.cos(delta)
                     + math.cos(phi1) * math.sin(delta) * math.cos(theta))
    lam2 = lam1 + math.atan2(math.sin(theta) * math.sin(delta) * math.cos(phi1),
                             math.cos(delta) - math.sin(phi1) * math.sin(phi2))
    return math.degrees(phi2), (math.degrees(lam2) + 540.0) % 360.0 - 180.0


def circle(lat: float, lon: float, radius_km: float, n: int = 145) -> tuple[list, list]:
    pts = [destination(lat, lon, 360.0 * i / (n - 1), radius_km) for i in range(n)]
    return [p[1] for p in pts], [p[0] for p in pts]


def nice_number(x: float) -> float:
    """The largest of 1, 2, 2.5, 5 × 10^k not above x (at least a small positive number)."""
    if not (x > 0 and math.isfinite(x)):
        return 1.0
    k = math.floor(math.log10(x))
    for m in (5, 2.5, 2, 1):
        if m * 10 ** k <= x:
            return m * 10 ** k
    return 10 ** k


def nice_ceil(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k not below x."""
    if not (x > 0 and math.isfinite(x)):
        return 1.0
    k = math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * 10 ** k >= x * (1 - 1e-12):
            return m * 10 ** k
    return 10 ** (k + 1)


def fmt_km(x: float) -> str:
    return f"{x:g} km"


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------

def parse_time(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    text = str(value).strip().replace("Z", "+00:00")
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        t = dt.datetime.fromisoformat(text[:10])
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return t


def day(value: object) -> str:
    return parse_time(value).date().isoformat()


def _base_layout(**kw) -> dict:
    layout = dict(font=FONT, paper_bgcolor="white", plot_bgcolor="white",
                  margin=dict(l=60, r=20, t=30, b=50),
                  hoverlabel=dict(font=dict(family=FONT["family"], size=12)),
                  legend=dict(bgcolor="rgba(255,255,255,0.85)", bordercolor="#d0d4dc",
                              borderwidth=1))
    layout.update(kw)
    return layout


# --------------------------------------------------------------------------------------------
# Map
# --------------------------------------------------------------------------------------------

def map_radius_km(doc: Mapping, events: Sequence[Mapping]) -> float:
    """The radius searched (``radius_km``), else a round one that holds every event."""
    if doc.get("radius_km"):
        return float(doc["radius_km"])
    if not events:  # nothing to hold: frame the incident's surroundings
        return nice_ceil(max(4.0 * (finite(doc["incident"].get("precision_km")) or 0.0), 10.0))
    far = max((finite(e.get("distance_km")) or 0.0 for e in events), default=0.0)
    return nice_ceil(max(far, 5.0))


def map_figure(doc: Mapping, colours: Mapping[str, str]) -> go.Figure:
    inc = doc["incident"]
    lat0, lon0 = float(inc["lat"]), float(inc["lon"])
    events = list(doc.get("nearby_events") or [])
    radius = map_radius_km(doc, events)
    coslat = max(math.cos(math.radians(lat0)), 1e-6)
    fig = go.Figure()

    # The search radius, and the incident's own location precision.
    searched = bool(events or doc.get("radius_km"))
    if searched:
        cx, cy = circle(lat0, lon0, radius)
        fig.add_trace(go.Scatter(x=cx, y=cy, mode="lines", name=f"{fmt_km(radius)} radius",
                                 line=dict(color="#7a8193", width=1.2, dash="dash"),
                                 hoverinfo="skip"))
    prec = float(inc.get("precision_km") or 0.0)
    if prec > 0:
        px_, py_ = circle(lat0, lon0, prec)
        fig.add_trace(go.Scatter(x=px_, y=py_, mode="lines", fill="toself",
                                 fillcolor="rgba(240,180,0,0.18)",
                                 line=dict(color="rgba(190,140,0,0.7)", width=1),
                                 name=f"incident location ± {fmt_km(prec)}", hoverinfo="skip"))

    # Events, one trace per actor (legend order: most events first).
    by_actor: dict[str, list[Mapping]] = {}
    for e in events:
        by_actor.setdefault(e.get("actor") or UNATTRIBUTED, []).append(e)
    order = sorted(by_actor, key=lambda a: (a == UNATTRIBUTED, -len(by_actor[a]), a))
    for actor in order:
        evs = by_actor[actor]
        fat = [finite(e.get("fatalities")) for e in evs]
        fig.add_trace(go.Scatter(
            x=[float(e["lon"]) for e in evs], y=[float(e["lat"]) for e in evs],
            mode="markers", name=f"{esc(actor)} ({len(evs)})",
            marker=dict(color=actor_colour(colours, None if actor == UNATTRIBUTED else actor),
                        size=[7 + 3.0 * math.sqrt(max(f or 0.0, 0.0)) for f in fat],
                        sizemode="diameter", opacity=0.85,
                        line=dict(color="white", width=0.8)),
            customdata=[[esc(e.get("id")), day(e["date"]), esc(actor),
                         "unknown" if f is None else f"{f:g}",
                         esc(e.get("event_type") or "—"),
                         "?" if finite(e.get("distance_km")) is None
                         else f"{finite(e['distance_km']):.1f}"]
                        for e, f in zip(evs, fat)],
            hovertemplate=("<b>%{customdata[0]}</b><br>%{customdata[1]}<br>"
                           "actor: %{customdata[2]}<br>fatalities: %{customdata[3]}<br>"
                           "type: %{customdata[4]}<br>%{customdata[5]} km from the incident"
                           "<extra></extra>"),
        ))

    # The earlier events that raise the model's intensity most: ringed and numbered.
    pos = {str(e.get("id")): e for e in events}
    top = [t for t in (doc.get("explanation") or {}).get("top_events") or []
           if str(t.get("id")) in pos]
    if top:
        fig.add_trace(go.Scatter(
            x=[float(pos[str(t["id"])]["lon"]) for t in top],
            y=[float(pos[str(t["id"])]["lat"]) for t in top],
            mode="markers+text", name="raise the model's prior most",
            text=[str(i + 1) for i in range(len(top))], textposition="top right",
            textfont=dict(size=11, color="#1d2433"),
            marker=dict(symbol="circle-open", size=20, color="#1d2433", line=dict(width=2)),
            customdata=[[esc(t["id"]), f"{100 * float(t.get('share') or 0):.1f}"] for t in top],
            hovertemplate=("<b>%{customdata[0]}</b><br>%{customdata[1]}% of the intensity at "
                           "the incident<extra></extra>"),
        ))

    fig.add_trace(go.Scatter(
        x=[lon0], y=[lat0], mode="markers", name="the incident",
        marker=dict(symbol="star", size=24, color="#ffcc00", line=dict(color="#1d2433", width=1.5)),
        customdata=[[esc(day(inc["time"])), esc(inc.get("event_type") or "incident"),
                     f"{lat0:.4f}", f"{lon0:.4f}"]],
        hovertemplate=("<b>the incident</b><br>%{customdata[0]}<br>%{customdata[1]}<br>"
                       "%{customdata[2]}°N, %{customdata[3]}°E<extra></extra>"),
    ))

    # Extent: the radius circle (and every event) with a margin; the scale bar at bottom left.
    dlat = radius / 111.2 * 1.12
    dlon = dlat / coslat
    xs = [lon0 - dlon, lon0 + dlon] + [float(e["lon"]) for e in events]
    ys = [lat0 - dlat, lat0 + dlat] + [float(e["lat"]) for e in events]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    bar_km = nice_number(radius / 2.5)
    bar_dlon = bar_km / (111.2 * coslat)
    bx, by = x0 + 0.04 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    y0 -= 0.04 * (y1 - y0)
    shapes = [dict(type="line", xref="x", yref="y", x0=bx, x1=bx + bar_dlon, y0=by, y1=by,
                   line=dict(color="#1d2433", width=3))]
    for xb in (bx, bx + bar_dlon):
        shapes.append(dict(type="line", xref="x", yref="y", x0=xb, x1=xb,
                           y0=by - 0.008 * (y1 - y0), y1=by + 0.008 * (y1 - y0),
                           line=dict(color="#1d2433", width=2)))
    annotations = [dict(x=bx + bar_dlon / 2, y=by, xref="x", yref="y", text=fmt_km(bar_km),
                        showarrow=False, yshift=12, font=dict(size=12, color="#1d2433"),
                        bgcolor="rgba(255,255,255,0.7)")]
    if searched:
        annotations.append(dict(x=lon0, y=destination(lat0, lon0, 0.0, radius)[0], xref="x",
                                yref="y", text=fmt_km(radius), showarrow=False, yshift=9,
                                font=dict(size=11, color="#5a6172")))
    else:
        annotations.append(dict(x=0.5, y=0.97, xref="paper", yref="paper", showarrow=False,
                                text="no events in the data near the incident",
                                font=dict(size=13, color="#5a6172")))
    axis = dict(showgrid=True, gridcolor="#e6e9ef", zeroline=False, ticks="outside",
                showline=True, linecolor="#b8bfcc", mirror=True)
    fig.update_layout(**_base_layout(
        height=620, plot_bgcolor="#f6f7f4", shapes=shapes, annotations=annotations,
        margin=dict(l=70, r=20, t=20, b=55),
        xaxis=dict(title="longitude (°E)", range=[x0, x1], **axis),
        # One degree of longitude is cos(lat) times as long as one of latitude.
        yaxis=dict(title="latitude (°N)", range=[y0, y1], scaleanchor="x",
                   scaleratio=1.0 / coslat, **axis),
        legend=dict(x=1.0, xanchor="right", y=1.0, bgcolor="rgba(255,255,255,0.88)",
                    bordercolor="#d0d4dc", borderwidth=1, font=dict(size=12)),
        hovermode="closest",
    ))
    return fig


# --------------------------------------------------------------------------------------------
# Timeline
# --------------------------------------------------------------------------------------------

def timeline_figure(doc: Mapping, colours: Mapping[str, str]) -> go.Figure:
    """Events per week by actor over the window; the incident marked."""
    t_inc = parse_time(doc["incident"]["time"])
    events = list(doc.get("nearby_events") or [])
    window = int(doc.get("window_days") or 0)
    dates = [parse_time(e["date"]) for e in events]
    start = min([t_inc - dt.timedelta(days=window)] + dates)
    end = max([t_inc] + dates)
    # Weeks counted back from the incident's day, so the incident closes its week.
    inc_day = dt.datetime(t_inc.year, t_inc.month, t_inc.day)
    n_before = math.ceil((inc_day - start).days / 7) if start < inc_day else 0
    first = inc_day - dt.timedelta(days=7 * n_before - 1)
    n_weeks = max(1, math.ceil(((end - first).days + 1) / 7))
    week_starts = [first + dt.timedelta(days=7 * i) for i in range(n_weeks)]

    counts: dict[str, list[int]] = {}
    for e, t in zip(events, dates):
        i = min(max(((t - first).days) // 7, 0), n_weeks - 1)
        counts.setdefault(e.get("actor") or UNATTRIBUTED, [0] * n_weeks)[i] += 1
    order = sorted(counts, key=lambda a: (a == UNATTRIBUTED, -sum(counts[a]), a))
    fig = go.Figure()
    mids = [(w + dt.timedelta(days=3.5)) for w in week_starts]
    for actor in order:
        fig.add_trace(go.Bar(
            x=[m.isoformat() for m in mids], y=counts[actor], name=esc(actor), width=6 * 86400e3,
            marker=dict(color=actor_colour(colours, None if actor == UNATTRIBUTED else actor)),
            customdata=[[w.date().isoformat(), (w + dt.timedelta(days=6)).date().isoformat()]
                        for w in week_starts],
            hovertemplate=(f"<b>{esc(actor)}</b><br>%{{customdata[0]}} – %{{customdata[1]}}"
                           "<br>%{y} events<extra></extra>"),
        ))
    t_iso = t_inc.isoformat()
    notes = [] if events else [dict(x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                                    text="no events in the data near the incident",
                                    font=dict(size=13, color="#5a6172"))]
    fig.update_layout(**_base_layout(
        height=330, barmode="stack", bargap=0.1,
        xaxis=dict(type="date", showgrid=False, ticks="outside", showline=True,
                   linecolor="#b8bfcc",
                   range=[(first - dt.timedelta(days=3)).isoformat(),
                          (week_starts[-1] + dt.timedelta(days=10)).isoformat()]),
        yaxis=dict(title="events per week", rangemode="tozero", gridcolor="#e6e9ef",
                   zeroline=True, zerolinecolor="#b8bfcc"),
        shapes=[dict(type="line", xref="x", yref="paper", x0=t_iso, x1=t_iso, y0=0, y1=1,
                     line=dict(color="#1d2433", width=2, dash="dot"))],
        annotations=[dict(x=t_iso, y=1, xref="x", yref="paper", text="★ incident",
                          showarrow=False, xanchor="right", yanchor="bottom", xshift=-2,
                          font=dict(size=12, color="#1d2433"),
                          bgcolor="rgba(255,255,255,0.8)")] + notes,
        legend=dict(orientation="h", x=0, y=-0.18, yanchor="top", traceorder="normal"),
        margin=dict(l=60, r=20, t=36, b=70),
    ))
    return fig


# --------------------------------------------------------------------------------------------
# Prior -> posterior, item by item
# --------------------------------------------------------------------------------------------

def steps(doc: Mapping) -> list[dict[str, float]]:
    """Posterior after each item, applied in order: ``[prior, after item 1, ...]``.

    Each item adds its ``log_lr`` (0 for an item that does not count) to the log posterior,
    which is normalised after each step; the last step is the document's posterior.
    """
    prior = {str(h): float(p) for h, p in doc["prior"].items()}
    total = math.fsum(prior.values())
    logs = {h: math.log(p / total) if p > 0 else -math.inf for h, p in prior.items()}
    out = [_normalise(logs)]
    for item in doc.get("items") or []:
        lr = item.get("log_lr") or {}
        logs = {h: v + float(lr.get(h, 0.0)) for h, v in logs.items()}
        out.append(_normalise(logs))
    return out


def _normalise(logs: Mapping[str, float]) -> dict[str, float]:
    top = max(logs.values())
    if not math.isfinite(top):
        return {h: 1.0 / len(logs) for h in logs}
    z = math.fsum(math.exp(v - top) for v in logs.values())
    return {h: math.exp(v - top) / z for h, v in logs.items()}


def steps_figure(doc: Mapping, hyps: Sequence[Mapping], colours: Mapping[str, str]) -> go.Figure:
    items = list(doc.get("items") or [])
    seq = steps(doc)
    labels = ["prior"]
    for i, it in enumerate(items, 1):
        lab = f"{i}. {esc(it.get('id'))}"
        if it.get("undisclosed"):
            lab = f"<i>{lab}</i><br>(undisclosed)"
        elif it.get("counted") is False:
            lab = f"{lab}<br>(counted in group)"
        labels.append(lab)
    fig = go.Figure()
    shapes, annotations = [], []
    for i, it in enumerate(items, 1):
        if it.get("undisclosed"):
            shapes.append(dict(type="rect", xref="x", yref="paper", x0=i - 0.5, x1=i + 0.5,
                               y0=0, y1=1, layer="below", line=dict(width=0),
                               fillcolor="rgba(213,94,0,0.10)"))
            annotations.append(dict(x=i, y=1, xref="x", yref="paper", text="undisclosed",
                                    showarrow=False, yanchor="bottom",
                                    font=dict(size=11, color="#a04400")))
    for h in hyps:
        hid = str(h["id"])
        ys = [s.get(hid, 0.0) for s in seq]
        lrs = ["" ] + [_signed((it.get("log_lr") or {}).get(hid, 0.0)) for it in items]
        names = ["prior"] + [esc(it.get("id")) for it in items]
        symbols = ["circle"] + ["diamond-open" if it.get("undisclosed") else "circle"
                                for it in items]
        colour = hypothesis_colour(colours, h)
        fig.add_trace(go.Scatter(
            x=list(range(len(seq))), y=ys, mode="lines+markers", name=esc(hid),
            line=dict(color=colour, width=2.5, shape="hv"),
            marker=dict(color=colour, size=[11] + [12 if it.get("undisclosed") else 9
                                                   for it in items],
                        symbol=symbols, line=dict(width=2, color=colour)),
            customdata=[[n, l] for n, l in zip(names, lrs)],
            hovertemplate=(f"<b>{esc(hid)}</b> after %{{customdata[0]}}: %{{y:.1%}}"
                           "<br>log-LR of this item: %{customdata[1]}<extra></extra>"),
        ))
    fig.update_layout(**_base_layout(
        height=420, shapes=shapes, annotations=annotations, hovermode="x unified",
        xaxis=dict(tickmode="array", tickvals=list(range(len(labels))), ticktext=labels,
                   range=[-0.4, len(labels) - 0.6], showgrid=False, showline=True,
                   linecolor="#b8bfcc"),
        yaxis=dict(title="probability", range=[0, 1.0001], tickformat=".0%",
                   gridcolor="#e6e9ef", zeroline=False),
        legend=dict(orientation="h", x=0, y=1.12, yanchor="bottom"),
        margin=dict(l=60, r=20, t=60, b=80),
    ))
    return fig


def _signed(x: float) -> str:
    return "0" if abs(x) < 5e-4 else f"{x:+.2f}"


# --------------------------------------------------------------------------------------------
# The model's attribution at the incident
# --------------------------------------------------------------------------------------------

def model_prior_figure(model_prior: Mapping[str, float], colours: Mapping[str, str],
                       top: int = 10) -> go.Figure:
    ranked = sorted(model_prior.items(), key=lambda kv: (-float(kv[1]), kv[0]))
    shown, rest = ranked[:top], ranked[top:]
    names = [a for a, _ in shown]
    vals = [float(p) for _, p in shown]
    cols = [actor_colour(colours, a) for a in names]
    if rest:
        names.append(f"{len(rest)} more actors")
        vals.append(math.fsum(float(p) for _, p in rest))
        cols.append(UNATTRIBUTED_COLOUR)
    fig = go.Figure(go.Bar(
        x=vals[::-1], y=[esc(n) for n in names][::-1], orientation="h",
        marker=dict(color=cols[::-1]), text=[f"{v:.1%}" for v in vals][::-1],
        textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.2%}<extra></extra>",
    ))
    fig.update_layout(**_base_layout(
        height=max(200, 34 * len(names) + 94), showlegend=False,
        xaxis=dict(title="the model's attribution at the incident", tickformat=".0%",
                   range=[0, min(1.0, max(vals + [0.01]) * 1.18)], gridcolor="#e6e9ef"),
        yaxis=dict(automargin=True),
        margin=dict(l=20, r=50, t=34, b=50),
    ))
    return fig
