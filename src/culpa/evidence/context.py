"""What the event record says about a case's incident: the model's prior over actors at that
time and place, its reasons, and the events of the window around it.

The model is fitted only on events in the case's window *before* the incident, so the incident
itself (if the store holds it) never informs its own prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from culpa.events.actors import AliasTable
from culpa.evidence.case import Case

#: Fewer events than this in the window and the model's prior is not worth having.
MIN_EVENTS_FOR_MODEL = 30
NEARBY_RADIUS_KM = 150.0
DEFAULT_WINDOW_DAYS = 365
#: The warning view: who was expected within this distance over the next days, the day before.
WARNING_RADIUS_KM = 25.0
WARNING_HORIZON_DAYS = 7


@dataclass
class IncidentContext:
    model_prior: dict[str, float] | None = None  # actor -> P at the incident
    explanation: dict | None = None
    nearby_events: list[dict] = field(default_factory=list)
    n_window_events: int = 0
    note: str | None = None  # why there is no model prior, when there is none
    aliases: AliasTable = field(default_factory=AliasTable.builtin)
    window_events: pd.DataFrame | None = None
    model: object | None = None
    warning: dict | None = None  # culpa warn's view of the place, the day before


def incident_context(case: Case, db: Path | None, top: int = 10) -> IncidentContext:
    """Fit on the window before the incident and read off the prior, reasons and nearby events."""
    from culpa.events.store import Store
    from culpa.model.geo import haversine_km
    from culpa.model.hawkes import HawkesAttributor

    if db is None or not Path(db).exists():
        return IncidentContext(note="no store: hypotheses without an explicit prior share equally")
    inc = case.incident
    window = case.window_days or DEFAULT_WINDOW_DAYS
    start = pd.Timestamp(inc.time) - pd.Timedelta(days=window)
    with Store(db, read_only=True) as store:
        aliases = store.alias_table()
        events = store.events_frame(since=start, until=pd.Timestamp(inc.time))
    ctx = IncidentContext(aliases=aliases, n_window_events=len(events), window_events=events)
    if not events.empty:
        dist = haversine_km(inc.lat, inc.lon, events["latitude"].to_numpy(),
                            events["longitude"].to_numpy())
        near = events.assign(distance_km=dist)[dist <= NEARBY_RADIUS_KM]
        ctx.nearby_events = [
            {"id": r.id, "date": r.time_start.date().isoformat(), "lat": r.latitude,
             "lon": r.longitude, "actor": r.actor, "event_type": r.event_type,
             "fatalities": None if pd.isna(r.fatalities) else int(r.fatalities),
             "distance_km": round(float(r.distance_km), 1),
             "location_precision_km": r.location_precision_km}
            for r in near.itertuples()]
    if len(events) < MIN_EVENTS_FOR_MODEL:
        ctx.note = (f"only {len(events)} events in the {window} days before the incident: "
                    "hypotheses without an explicit prior share equally")
        return ctx
    model = HawkesAttributor().fit(events)
    ctx.model = model
    ctx.explanation = model.explain(pd.Timestamp(inc.time), inc.lat, inc.lon,
                                    precision_km=inc.precision_km, event_type=inc.event_type,
                                    target=inc.target,
                                    top=top)
    ctx.model_prior = {a["actor"]: float(a["probability"]) for a in ctx.explanation["actors"]}
    ctx.warning = warning_before(model, case)
    return ctx


def warning_before(model, case: Case) -> dict:
    """The early-warning view of the incident's place as it stood the day before it."""
    from culpa.model.forecast import Site, forecast_site

    inc = case.incident
    at = pd.Timestamp(inc.time).normalize() - pd.Timedelta(days=1)
    site = Site(name=case.title, lat=inc.lat, lon=inc.lon,
                radius_km=max(WARNING_RADIUS_KM, inc.precision_km or 0.0))
    fc = forecast_site(model, site, at, horizon_days=WARNING_HORIZON_DAYS)
    return {"at": str(at.date()), "horizon_days": WARNING_HORIZON_DAYS,
            **fc.to_dict(min_expected=1e-4)}


def context_key(case: Case) -> tuple:
    """What an incident's context depends on in a case: the incident and the window."""
    inc = case.incident
    return (inc.time.isoformat(), inc.lat, inc.lon, inc.precision_km, inc.event_type,
            inc.target, case.window_days)


def case_document(case: Case, db: Path | None, ctx: IncidentContext | None = None) -> dict:
    """The `culpa case --json` document, with the context the report draws on.

    ``ctx`` is the incident's context when the caller already has it (the same incident and
    window: :func:`context_key`), so an edit of the hypotheses or items needs no new fit."""
    from culpa.data import UCDP_CREDIT
    from culpa.evidence.analysis import analyse
    from culpa.evidence.case import hypothesis_priors

    if ctx is None:
        ctx = incident_context(case, db)
    prior = hypothesis_priors(case, ctx.model_prior, resolve=ctx.aliases.resolve)
    result = analyse(case, prior)
    doc = result.to_dict()
    by_id = {it.id: it for it in case.evidence}
    for item in doc["items"]:  # what the report's evidence table shows beside the numbers
        src = by_id[item["id"]]
        item.update({"text": src.text, "source": src.source, "reliability": src.reliability,
                     "credibility": src.credibility, "group": src.group,
                     "undisclosed": src.undisclosed})
    inc = case.incident
    doc.update({
        "break_even_text": doc.get("sentences", []),
        # Canonical names, so a hypothesis and the events of its actor share one colour.
        "hypotheses": [{"id": h.id, "actor": ctx.aliases.resolve(h.actor) if h.actor else None,
                        "actor_as_written": h.actor, "catch_all": h.catch_all,
                        "prior_source": "explicit" if h.prior is not None
                        else ("catch_all" if h.catch_all else "model")}
                       for h in case.hypotheses],
        "incident": {"time": inc.time.isoformat(), "lat": inc.lat, "lon": inc.lon,
                     "precision_km": inc.precision_km, "event_type": inc.event_type,
                     "target": inc.target,
                     "description": inc.description},
        "window_days": int(case.window_days or DEFAULT_WINDOW_DAYS),
        "radius_km": NEARBY_RADIUS_KM,
        "model_prior": ctx.model_prior,
        "model_note": ctx.note,
        "explanation": _explanation_summary(ctx.explanation),
        "nearby_events": ctx.nearby_events,
        "n_window_events": ctx.n_window_events,
        "warning": ctx.warning,
        "credit": UCDP_CREDIT,
    })
    return doc


def _explanation_summary(explanation: dict | None) -> dict | None:
    if explanation is None:
        return None
    top = []
    for a in explanation["actors"]:
        for e in a["top_events"]:
            top.append({"id": e["id"], "date": e["date"], "distance_km": e["distance_km"],
                        "actor": a["actor"], "share": e["share"]})
    top.sort(key=lambda e: -e["share"])
    return {"background_share": {a["actor"]: a["background_share"] for a in explanation["actors"]},
            "top_events": top[:10], "actors": explanation["actors"]}
