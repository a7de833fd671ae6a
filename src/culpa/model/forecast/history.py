"""The history a forecast starts from: the fitted events and the events since the fit, in
the model's frame, each with what it excites (``Ex``) and its actor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from culpa.model.frames import EventArrays, days_since


def days_since_t0(model, when) -> np.ndarray:
    """Time(s) in the model's frame: days since ``model.t0_`` (float)."""
    return days_since(pd.Series(np.atleast_1d(when)), model.t0_)


@dataclass
class History:
    """Events before the horizon that can excite it, in the model's frame (days since ``t0_``,
    km in its projection). ``Ex[j, p]``: what event ``j`` triggers in process ``p`` (the
    model's ``processes_``)."""

    t: np.ndarray
    u: np.ndarray
    x: np.ndarray
    y: np.ndarray
    s2: np.ndarray
    Ex: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    ids: np.ndarray
    date: np.ndarray  # datetime64[s] of time_start
    actor: np.ndarray  # index of the label, else of the most probable actor
    actor_probability: np.ndarray
    labelled: np.ndarray
    fitted: np.ndarray  # True for the model's own events
    t_start: np.ndarray  # days since t0_ of time_start (when the event became known)

    def __len__(self) -> int:
        return len(self.t)


def history(model, extra: pd.DataFrame | None = None) -> History:
    """The model's fitted events plus ``extra`` events (same schema as ``fit``) that it has not
    seen, e.g. those between its fit and the forecast time. Rows of ``extra`` with a missing
    latitude or longitude, or an id the model was fitted on, are skipped."""
    fe = model.fitted_events_
    lat, lon = model.projection_.inverse(fe.x, fe.y)
    lab = np.asarray(fe.labels)
    top, top_p = model.event_actors(fe.label_proba, lab)
    parts = [dict(t=fe.t, u=fe.u, x=fe.x, y=fe.y, s2=fe.s2, Ex=fe.excitation,
                  lat=lat, lon=lon, ids=np.asarray(fe.ids, dtype=object),
                  date=np.asarray(fe.start, dtype="datetime64[s]"), actor=top,
                  actor_probability=top_p, labelled=lab >= 0,
                  fitted=np.ones(len(top), bool))]
    parts[0]["t_start"] = ((parts[0]["date"] - model.t0_).astype(np.float64) / 86400.0)
    if extra is not None and len(extra):
        parts.append(_extra_history(model, extra))
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return History(**out)


def _extra_history(model, ev: pd.DataFrame) -> dict:
    K = len(model.processes_)
    ev = ev[ev["latitude"].notna() & ev["longitude"].notna()]
    seen = set(map(str, model.fitted_events_.ids))
    ev = ev[~ev["id"].astype(str).isin(seen)].reset_index(drop=True)
    n = len(ev)
    if n == 0:
        return {k: v[:0] for k, v in _empty(K).items()}
    a = EventArrays.parse(ev)
    t, u = a.dates_since(model.t0_)
    x, y = model.projection_.forward(a.lat, a.lon)
    prec = np.where(np.isnan(a.location_precision), model.min_bandwidth_km,
                    a.location_precision)
    process = model.process_map_.index(model.process_names(a.actor, a.event_type, a.target))
    # labelled by an actor the model does not know: excites none of its processes (Q row 0)
    known = a.labelled & (process >= 0)
    Q = np.zeros((n, K))
    Q[known, process[known]] = 1.0
    latent = ~a.labelled
    if latent.any():
        Q[latent] = model.predict_process_proba(pd.DataFrame({
            "time": a.start[latent], "latitude": a.lat[latent], "longitude": a.lon[latent],
            "location_precision_km": prec[latent],
            "date_precision_days": a.date_precision[latent], "time_end": a.end[latent],
            "event_type": a.event_type[latent], "target": a.target[latent],
            "fatalities": a.fatalities[latent]}))
    top, top_p = model.event_actors(Q, np.full(n, -1))
    return dict(t=t, u=u, x=x, y=y, s2=prec ** 2, Ex=Q @ model.alpha_, lat=a.lat, lon=a.lon,
                ids=a.ids.astype(object), date=a.start.to_numpy(dtype="datetime64[s]"),
                actor=top, actor_probability=top_p, labelled=known,
                fitted=np.zeros(n, bool), t_start=days_since(a.start, model.t0_))


def _empty(K: int) -> dict:
    f = np.zeros(0)
    return dict(t=f, u=f, x=f, y=f, s2=f, Ex=np.zeros((0, K)), lat=f, lon=f,
                ids=np.zeros(0, object), date=np.zeros(0, "datetime64[s]"),
                actor=np.zeros(0, int), actor_probability=f, labelled=np.zeros(0, bool),
                fitted=np.zeros(0, bool), t_start=f)


def _excitation_window(hist: "History", T: float, H: float, W: float):
    """History events that can excite [T, T + H] and the part of it each one excites.

    An event counts when it began before ``T`` (it is known then). Its time is the midpoint of
    its date range, and, as in the model, it excites only after that time: from
    ``max(T, t_j)`` (an event that began before ``T`` but is dated over a range reaching past it
    starts exciting inside the horizon)."""
    cand = np.flatnonzero((hist.t_start < T) & (hist.t < T + H) & (hist.t > T - W - hist.u - 1.0))
    return cand, np.maximum(T, hist.t[cand])
