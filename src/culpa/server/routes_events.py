"""Events, actors and the model's answers (attribute, chain, warn)."""

from __future__ import annotations

import csv
import io
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from culpa.errors import InputError
from culpa.server import auth
from culpa.server.app import MAX_PAGE
from culpa.server.state import FitStarted, ModelNotReady
from culpa.team.store import Principal

router = APIRouter(prefix="/api", tags=["events"])


class Filters:
    """The query of the event endpoints: since, until (exclusive), bbox W,S,E,N, actor, page."""

    def __init__(self, since: str | None = Query(None, max_length=32, description="YYYY-MM-DD"),
                 until: str | None = Query(None, max_length=32,
                                           description="YYYY-MM-DD (exclusive)"),
                 bbox: str | None = Query(None, max_length=128, description="W,S,E,N degrees"),
                 actor: str | None = Query(None, max_length=256),
                 limit: int = Query(100, ge=1, le=MAX_PAGE),
                 offset: int = Query(0, ge=0, le=2**31 - 1)):
        from culpa.api import parse_bbox

        self.since, self.until = day(since, "since"), day(until, "until")
        self.bbox = parse_bbox(bbox)
        self.actor, self.limit, self.offset = actor, limit, offset

    def query(self, engine) -> tuple[list[dict], int]:
        return engine.events(self.since, self.until, self.bbox, self.actor, self.limit,
                             self.offset)


@router.get("/events")
def events(request: Request, f: Filters = Depends(),
           who: Principal = Depends(auth.viewer)) -> dict:
    """Events in the store, oldest first, one page at a time (``total`` counts them all)."""
    rows, total = f.query(request.app.state.engine)
    return {"events": rows, "total": total, "limit": f.limit, "offset": f.offset}


@router.get("/events.geojson")
def events_geojson(request: Request, f: Filters = Depends(),
                   who: Principal = Depends(auth.viewer)) -> Response:
    """The same page of events as a GeoJSON FeatureCollection (for QGIS, Leaflet)."""
    rows, total = f.query(request.app.state.engine)
    features = [{"type": "Feature", "id": r["id"],
                 "geometry": None if r["longitude"] is None else
                 {"type": "Point", "coordinates": [r["longitude"], r["latitude"]]},
                 "properties": r} for r in rows]
    return JSONResponse({"type": "FeatureCollection", "features": features,
                         "total": total, "limit": f.limit, "offset": f.offset},
                        media_type="application/geo+json")


@router.get("/events.csv")
def events_csv(request: Request, f: Filters = Depends(),
               who: Principal = Depends(auth.viewer)) -> Response:
    """The same page of events as CSV (for spreadsheets); ``X-Total-Count`` counts them all."""
    rows, total = f.query(request.app.state.engine)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=request.app.state.engine._columns,
                            extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else v
                         for k, v in r.items()})
    return Response(buf.getvalue(), media_type="text/csv",
                    headers={"X-Total-Count": str(total),
                             "Content-Disposition": 'attachment; filename="events.csv"'})


@router.get("/events/{event_id}")
def event(event_id: str, request: Request, who: Principal = Depends(auth.viewer)) -> dict:
    """One event with its full source record (provenance)."""
    found = request.app.state.engine.event(event_id) if len(event_id) <= 256 else None
    if found is None:
        raise HTTPException(404, f"no event {event_id!r}")
    return _plain(found)


@router.get("/actors")
def actors(request: Request, who: Principal = Depends(auth.viewer)) -> dict:
    """The actors of the store: events, first and last dates, fatalities."""
    return {"actors": request.app.state.engine.actors()}


def day(value: str | None, field: str):
    """A date or datetime, or InputError naming the field (an empty string is no date)."""
    import pandas as pd

    from culpa.api import parse_day

    if value is None:
        return None
    when = parse_day(value, field)
    if when is None or pd.isna(when):
        raise InputError(f"not a date: {value!r} (use YYYY-MM-DD)", field=field)
    return when


class Attribute(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    time: str = Field(max_length=32, description="YYYY-MM-DD or ISO datetime")
    event_type: str | None = Field(None, max_length=256)
    target: str | None = Field(None, max_length=256)
    precision_km: float | None = Field(None, ge=0, le=20000)
    fatalities: int | None = Field(None, ge=0, le=10**7)
    top: int = Field(5, ge=0, le=50)


@router.post("/attribute")
def attribute(body: Attribute, request: Request,
              who: Principal = Depends(auth.viewer)) -> Response:
    """Who did it? The same JSON as ``culpa attribute --json``."""
    engine = request.app.state.engine
    day(body.time, "time")
    with _model_ready():
        doc = engine.attribute(body.time, body.lat, body.lon, precision_km=body.precision_km,
                               event_type=body.event_type, target=body.target,
                               fatalities=body.fatalities, top=body.top)
    return _json_response(doc)


@router.get("/events/{event_id}/chain")
def chain(event_id: str, request: Request, depth: int = Query(3, ge=1, le=10),
          min_prob: float = Query(0.05, ge=0, le=1),
          who: Principal = Depends(auth.viewer)) -> Response:
    """What triggered the event and what it triggered: ``culpa chain ID --json``."""
    with _model_ready():
        doc = request.app.state.engine.chain(event_id, depth=depth, min_prob=min_prob)
    return _json_response(doc)


class Site(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_km: float = Field(gt=0, le=2000)
    horizon_days: float | None = Field(None, gt=0, le=365)


class Warn(BaseModel):
    sites: list[Site] = Field(min_length=1, max_length=200)
    at: str = Field(max_length=32, description="First day of the horizon (YYYY-MM-DD)")
    horizon_days: float = Field(7.0, gt=0, le=365)
    top: int = Field(5, ge=0, le=50)


@router.post("/warn")
def warn(body: Warn, request: Request, who: Principal = Depends(auth.viewer)) -> Response:
    """Early warning at watched sites: the same JSON as ``culpa warn --json``."""
    day(body.at, "at")
    with _model_ready():
        doc = request.app.state.engine.warn([s.model_dump(exclude_none=True) for s in body.sites],
                                            body.at, body.horizon_days, top=body.top)
    return _json_response(doc)


class _model_ready:
    """Turn 'no model yet' into 503 naming the refit job, and a missing event into 404."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, FitStarted):
            raise HTTPException(202, {"job": exc.job_id, "message": (
                "a model fitted only on the events before that day is being made; poll the "
                "job, then ask again")}) from None
        if isinstance(exc, ModelNotReady):
            raise HTTPException(503, {"error": "the model is still being fitted; poll the job "
                                               "and ask again", "job": exc.job_id},
                                headers={"Retry-After": "5"}) from None
        if isinstance(exc, InputError) and exc.field == "event_id":
            raise HTTPException(404, exc.detail) from None
        return False


def _json_response(doc) -> Response:
    """The answer's JSON, serialised once (the same document as ``culpa VERB --json``)."""
    from culpa.server.analyses import dumps

    return Response(dumps(doc), media_type="application/json")


def _json(doc):
    from culpa.server.analyses import json_ready

    return json_ready(doc)


def _plain(row: dict) -> dict:
    return _json({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()})
