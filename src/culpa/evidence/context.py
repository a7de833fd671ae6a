"""What the event record says about a case's incident: the model's prior over actors at that
time and place, its reasons, and the events of the window around it.

The model is the one fitted only on events in the case's window *before* the incident, so the
incident itself (if the store holds it) never informs its own prior.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from culpa.events.actors import AliasTable
from culpa.evidence.case import Case

#: Gives the fitted model of a case's window and the lock to hold while using it.
ModelFor = Callable[[], tuple[Any, Any]]

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


def case_window(case: Case) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The days whose events inform a case: ``window_days`` up to (not including) the
    incident's time."""
    until = pd.Timestamp(case.incident.time)
    return until - pd.Timedelta(days=case.window_days or DEFAULT_WINDOW_DAYS), until


def incident_context(case: Case, db: Path | None, model_for: ModelFor | None = None,
                     top: int = 10, reader=None) -> IncidentContext:
    """Read the window before the incident from the store; when it holds enough events, take
    the model ``model_for()`` gives for that window and read off the prior and its reasons.

    Without ``model_for`` the model is the one :class:`culpa.api.Workspace` keys to the window
    (loaded when saved beside the store, else fitted and saved). ``reader()`` gives the
    read-only store to read (a Workspace's ``reader``); by default the file is opened."""
    from culpa.events.store import Store

    if model_for is None:
        model_for = _workspace_model(case, db)

    if db is None or not Path(db).exists():
        return IncidentContext(note="no store: hypotheses without an explicit prior share equally")
    start, until = case_window(case)
    with (reader() if reader is not None else Store(db, read_only=True)) as store:
        aliases = store.alias_table()
        events = store.events_frame(since=start, until=until)
    ctx = IncidentContext(aliases=aliases, n_window_events=len(events), window_events=events,
                          nearby_events=nearby_events(case, events))
    if len(events) < MIN_EVENTS_FOR_MODEL:
        window = case.window_days or DEFAULT_WINDOW_DAYS
        ctx.note = (f"only {len(events)} events in the {window} days before the incident: "
                    "hypotheses without an explicit prior share equally")
        return ctx
    model, lock = model_for()
    inc = case.incident
    with lock:
        ctx.model = model
        ctx.explanation = model.explain(until, inc.lat, inc.lon, precision_km=inc.precision_km,
                                        event_type=inc.event_type, target=inc.target, top=top)
        ctx.warning = warning_before(model, case)
    ctx.model_prior = {a["actor"]: float(a["probability"]) for a in ctx.explanation["actors"]}
    return ctx


def _workspace_model(case: Case, db: Path | None) -> ModelFor:
    def model_for():
        from culpa.api import Workspace

        ws = Workspace(db)
        loaded = ws.prepare(ws.model_request("case", case=case))
        return loaded.model, loaded.lock

    return model_for


def nearby_events(case: Case, events: pd.DataFrame) -> list[dict]:
    """The window's events within ``NEARBY_RADIUS_KM`` of the incident, as JSON-ready dicts
    (an unattributed event's actor, a missing type or precision are None)."""
    from culpa.model.geo import haversine_km

    if events.empty:
        return []
    inc = case.incident
    dist = haversine_km(inc.lat, inc.lon, events["latitude"].to_numpy(),
                        events["longitude"].to_numpy())
    near = events.assign(distance_km=dist)[dist <= NEARBY_RADIUS_KM]
    return [{"id": r.id, "date": r.time_start.date().isoformat(), "lat": r.latitude,
             "lon": r.longitude, "actor": _value(r.actor), "event_type": _value(r.event_type),
             "fatalities": None if pd.isna(r.fatalities) else int(r.fatalities),
             "distance_km": round(float(r.distance_km), 1),
             "location_precision_km": _value(r.location_precision_km)}
            for r in near.itertuples()]


def _value(v):
    """A frame value as JSON-ready: pandas' missing markers (None, NaN, NA) become None."""
    return None if v is None or (not isinstance(v, (list, tuple)) and pd.isna(v)) else v


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


def case_document(case: Case, db: Path | None, ctx: IncidentContext | None = None,
                  model_for: ModelFor | None = None, reader=None) -> dict:
    """The `culpa case --json` document, with the context the report draws on.

    ``ctx`` is the incident's context when the caller already has it (the same incident and
    window: :func:`context_key`), so an edit of the hypotheses or items needs no new fit;
    else it is read with ``model_for`` and ``reader`` (see :func:`incident_context`)."""
    from culpa.data import UCDP_CREDIT
    from culpa.evidence.analysis import analyse
    from culpa.evidence.case import hypothesis_priors

    if ctx is None:
        ctx = incident_context(case, db, model_for, reader=reader)
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
            "top_events": top[:10], "actors": explanation["actors"],
            **({"combiner": explanation["combiner"]} if "combiner" in explanation else {})}
