"""A fitted model conditioned on more history: its parameters, backgrounds and marks as fitted,
its history (what ``predict_proba`` and ``explain`` count as earlier events) extended by events
it was not fitted on — the live situation, where the model was fitted a while ago and the events
since are known.

Each added event excites as a fitted event would, ``Ex = Q alpha``: ``Q`` is one-hot for a
labelled event of a process the model knows; an event labelled by a known actor of a kind the
model has no process for excites none of them (as in :func:`culpa.model.forecast.history`); an
unlabelled event (no known actor, or marked ``latent``) gets ``Q`` = the conditioned model's
``predict_process_proba`` from the fitted events and the *labelled* added events strictly before
it (the unlabelled added events do not inform one another's ``Q``). Nothing is refitted.

An actor the fit never saw, labelled on added events, is a *newcomer*: the copy's ``actors_``
end with the newcomers (``newcomers_``), each with the intensity of a typical fitted actor
after its events (:mod:`culpa.model.newcomers`); an unlabelled added event excites a newcomer by
its probability of being the newcomer's, and the fitted processes by the rest.

Past the last fitted event the background rates are those of the last observed time
(:class:`culpa.model.forecast.background.BackgroundRates`, as forecasts use them): the fitted
bins run to the latest *end* of an event's date range, months past the last event when some
events are dated only to a year, and such bins hold only the prior. Before the bin of the last
fitted event the rates are the model's own.

The copy answers ``predict_proba``, ``predict_process_proba``, ``intensity_parts`` and
``explain``; its branching structure (``chain``, ``parent_proba_``) and ``label_proba_`` remain
the fit's own and are not extended.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from culpa.model.fitted import check_fitted
from culpa.model.frames import EventArrays
from culpa.model.newcomers import Newcomers


def with_history(model, events: pd.DataFrame):
    """A shallow copy of the fitted ``model`` whose history also holds ``events`` (the fit's
    schema, ``latent`` honoured). Rows without a place, or with an id the model holds, are
    skipped; the model itself is not changed."""
    check_fitted(model)
    ev = events[events["latitude"].notna() & events["longitude"].notna()]
    held = set(map(str, model._ids))
    ev = ev[~ev["id"].astype(str).isin(held)].reset_index(drop=True)
    if len(ev) == 0:
        return model
    a = EventArrays.parse(ev)
    t, u = a.dates_since(model.t0_)
    x, y = model.projection_.forward(a.lat, a.lon)
    prec = np.where(np.isnan(a.location_precision), model.min_bandwidth_km,
                    a.location_precision)
    K = len(model.processes_)
    process = np.asarray(model.process_map_.index(
        model.process_names(a.actor, a.event_type, a.target)))
    known = a.labelled & (process >= 0)
    Q = np.zeros((len(ev), K))
    Q[known, process[known]] = 1.0
    labels = np.where(known, process, -1).astype(np.int32)
    codes = model._marks.encode(a.event_type, a.target, a.fatalities, a.location_precision)
    mk = model._marks.kind_codes(codes).astype(np.int32)
    added = dict(ids=a.ids, start=a.start.to_numpy(dtype="datetime64[s]"), t=t, u=u, x=x, y=y,
                 s2=prec ** 2, Q=Q, labels=labels, mk=mk)
    hist = dict(t=t, u=u, x=x, y=y, s2=prec ** 2)
    names, labelled_as = _newcomer_labels(model, a)
    share = (labelled_as[:, None] == np.arange(len(names))[None, :]).astype(float)
    out = _conditioned(model, added, a.labelled, names, hist, share, labelled_as)
    latent = np.flatnonzero(~a.labelled)
    if len(latent):
        Q[latent] = out.predict_process_proba(ev.iloc[latent])
        if names:  # a latent event excites each newcomer by its share, the rest as fitted
            p = out.predict_proba(ev.iloc[latent])[:, len(model.actors_):]
            Q[latent] *= 1.0 - p.sum(1, keepdims=True)
            share[latent] = p
        out = _conditioned(model, added, np.ones(len(ev), bool), names, hist, share,
                           labelled_as)
    out.n_history_added_ = len(ev)
    return out


def _newcomer_labels(model, a: EventArrays) -> tuple[list[str], np.ndarray]:
    """The actors of labelled added events that the model has no actor for (sorted), and each
    added event's index among them (-1: not labelled as a newcomer)."""
    actor = np.asarray(a.actor, dtype=object)
    new = a.labelled & ~np.isin(actor, np.asarray(list(model.actors_), dtype=object))
    names = sorted({str(v) for v in actor[new]})
    index = {n: i for i, n in enumerate(names)}
    return names, np.array([index[str(v)] if m else -1 for v, m in zip(actor, new)], np.int64)


def _conditioned(model, added: dict, rows: np.ndarray, names: list[str], hist: dict,
                 share: np.ndarray, labelled_as: np.ndarray):
    """``model`` with the ``rows`` of ``added`` in its history and, when there are
    ``names``, those newcomers as further actors (:mod:`culpa.model.newcomers`)."""
    out = _extended(model, added, rows)
    out._temporal = _HeldRates(model)
    if names:
        keep = {k: v[rows] for k, v in hist.items()}
        order = np.argsort(keep["t"], kind="stable")
        keep = {k: v[order] for k, v in keep.items()}
        out._newcomers = Newcomers.of(model, names, keep, share[rows][order],
                                      labelled_as[rows][order])
        out.actors_ = list(model.actors_) + names
        out.newcomers_ = list(names)
    return out


def _extended(model, added: dict, rows: np.ndarray):
    """A copy of ``model`` with the ``rows`` of ``added`` merged into its history, in time
    order (stable: the fitted events first on ties)."""
    out = copy.copy(model)
    old = dict(ids=model._ids, start=model._start, t=model._t, u=model._u, x=model._x,
               y=model._y, s2=model._s2, Q=model._Q, labels=model._lab, mk=model._mk)
    merged = {k: np.concatenate([np.asarray(old[k]), np.asarray(added[k])[rows]])
              for k in old}
    order = np.argsort(merged["t"], kind="stable")
    c = np.ascontiguousarray
    m = {k: c(v[order]) for k, v in merged.items()}
    out._ids, out._start, out._t, out._u = m["ids"], m["start"], m["t"], m["u"]
    out._x, out._y, out._s2 = m["x"], m["y"], m["s2"]
    out._Q, out._lab, out._mk = m["Q"], m["labels"].astype(np.int32), m["mk"].astype(np.int32)
    out._Ex = c(out._Q @ model.alpha_)
    out._grid = None  # the query index over the longer history is rebuilt on first use
    out._pairs = None
    out._w = None
    return out


class _HeldRates:
    """The model's background rates with the last observed rate held past its last event
    (``rate``); everything else is the fitted :class:`TemporalBackground`'s."""

    def __init__(self, model):
        from culpa.model.forecast.background import BackgroundRates

        self._fitted = model._temporal
        self._held = BackgroundRates.of(model)

    def rate(self, t) -> np.ndarray:
        return self._held.rate(t)

    def __getattr__(self, name):
        return getattr(self._fitted, name)
