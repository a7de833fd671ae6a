"""The library API every face calls: ``Workspace(db)`` answers questions about one event store.

The command line, the HTML report and the REST server are thin layers over this object, so the
same question gets the same answer whichever face asks it. Every method returns JSON-ready
values (dicts, lists, str, int, finite floats, None): the document ``culpa VERB --json`` prints.

Which fitted model answers a question is decided in one place, :meth:`Workspace.model_request`:

- ``attribute`` and ``chain`` ask about the record as a whole: an explicit model file if given,
  else the model ``culpa fit`` saved beside the store (``STORE.model.npz``), else the model of
  every event in the store.
- ``case`` asks about one incident: the model of the case's window *before* the incident, so
  the incident (and anything later) never informs its own prior.
- ``warn`` asks about the days after ``at``: an explicit model file if given, else the model of
  every event dated before ``at``.

A model is keyed by a fingerprint of the events it is fitted on (their content, not the bounds
that selected them) and of the estimator's parameters. A keyed model is fitted once, saved in
``STORE.models/KEY.npz`` and kept in memory (a few, least recently used first out), so a
question asked again, from any face or process, loads rather than refits. A server loads
models ahead of time: :meth:`Workspace.is_ready` says whether a question's model is at hand,
:meth:`Workspace.prepare` fits or loads it (with a progress callback, in a background job), and
every question takes ``fit=False`` to refuse with :class:`ModelNotReady` instead of fitting.

A Workspace is safe to share between threads: models are fitted at most once per key, and
calls into one model are serialised by its own lock.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culpa.errors import AnalysisError, IngestInterrupted, InputError

#: Progress callbacks are called as ``progress(stage, done, total)``; ``total`` may be None.
Progress = Callable[[str, int, "int | None"], None]

#: Models kept in memory per Workspace.
MODEL_CACHE_SIZE = 8


def default_db() -> Path:
    """The store the faces use when none is named: ``$CULPA_DB``, else ``./culpa.duckdb``."""
    return Path(os.environ.get("CULPA_DB", "culpa.duckdb"))


def default_model_path(db: str | Path) -> Path:
    """Where ``culpa fit`` saves the store's model unless told otherwise."""
    db = Path(db)
    return db.with_name(db.name + ".model.npz")


class ModelNotReady(AnalysisError):
    """The question's model is neither in memory nor saved, and fitting was not allowed.

    ``request`` is the :class:`ModelRequest` to hand to :meth:`Workspace.prepare`."""

    def __init__(self, request: "ModelRequest"):
        super().__init__(f"the model for this question is not fitted yet ({request.describe()})")
        self.request = request


@dataclass(frozen=True)
class ModelRequest:
    """Which model answers a question: a saved file (``path``) or the fit of the store's
    located events with ``since <= time_start < until`` inside ``bbox``, with ``params``."""

    since: Any = None  # pd.Timestamp | None
    until: Any = None
    bbox: tuple[float, float, float, float] | None = None
    params: tuple[tuple[str, Any], ...] = ()
    path: Path | None = None

    def describe(self) -> str:
        if self.path is not None:
            return f"model file {self.path}"
        parts = [f"since {self.since.date()}" if self.since is not None else "",
                 f"before {self.until.date()}" if self.until is not None else "",
                 f"in {self.bbox}" if self.bbox else ""]
        sel = " ".join(p for p in parts if p) or "all events"
        params = ", ".join(f"{k}={v!r}" for k, v in self.params)
        return sel + (f"; {params}" if params else "")


@dataclass
class _Loaded:
    model: Any
    source: str  # where it came from, for people
    fitted_now: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)
    warmed: set = field(default_factory=set)

    @contextmanager
    def reading(self, question: str):
        """A query of the fitted model: the model is read-only for queries, so only a
        question's first call (which builds the model's lazy indexes) holds the lock; later
        calls from many threads run at once."""
        if question in self.warmed:
            yield
            return
        with self.lock:
            yield
            self.warmed.add(question)


class Workspace:
    """One event store and the questions culpa answers about it.

    ``db``: the DuckDB store (default :func:`default_db`). ``model_dir``: where keyed models are
    saved (default ``STORE.models`` beside the store; when it cannot be written, models are
    kept in memory only).

    ``reader``: how the Workspace reads the store: a callable taking no arguments that returns
    a context manager giving a read-only :class:`culpa.events.store.Store` of ``db`` for one
    read. By default each read opens the file read-only and closes it afterwards. A process
    that keeps the store open lends its handle here instead: ``culpa serve`` holds the file
    read-only for its whole life (so that a ``culpa ingest`` from another process is refused)
    and must not open and close other handles on it, since closing one can drop the
    process's file lock; its reader hands out the held handle, one thread at a time. Every
    read the Workspace makes goes through ``reader``; ingests open the store for writing
    themselves.
    """

    def __init__(self, db: str | Path | None = None, *, model_dir: str | Path | None = None,
                 reader: Callable[[], Any] | None = None):
        self.db = Path(db) if db is not None else default_db()
        self.model_dir = (Path(model_dir) if model_dir is not None
                          else self.db.with_name(self.db.name + ".models"))
        if reader is not None and not callable(reader):
            raise TypeError(f"reader must be a callable returning a context manager, not "
                            f"{type(reader).__name__}")
        self._reader = reader
        self._lock = threading.RLock()
        self._models: OrderedDict[str, _Loaded] = OrderedDict()
        self._key_locks: dict[str, threading.Lock] = {}

    def __repr__(self) -> str:
        return f"Workspace({str(self.db)!r})"

    # ------------------------------------------------------------------------------------------
    # the store

    def _store(self):
        """A context manager giving a read-only Store for one read (see ``reader``)."""
        if self._reader is not None:
            return self._reader()
        from culpa.events.store import Store

        return Store(self.db, read_only=True)

    def stats(self) -> dict:
        """What the store holds (``culpa stats --json``): events, dates, sources, actors."""
        with self._store() as store:
            return store.stats()

    def count(self) -> int:
        """How many events the store holds (0 when there is no store)."""
        if not self.db.exists():
            return 0
        with self._store() as store:
            return store.count()

    def actors(self) -> list[dict]:
        """Every actor with its events, first and last day and fatalities, busiest first."""
        return self.stats()["actors"]

    def events(self, since=None, until=None, bbox=None, actor: str | None = None,
               limit: int | None = None, offset: int = 0) -> dict:
        """A page of events: ``{"events": [...], "total": N}``, ordered by time then id.

        ``since``/``until`` are days (``until`` exclusive), ``bbox`` is ``(W, S, E, N)`` or the
        string ``"W,S,E,N"``, ``actor`` a canonical name; ``total`` counts every match, the
        page holds at most ``limit`` of them from ``offset``. Events without coordinates are
        listed unless a ``bbox`` is given. Each event is a dict of the store's columns (times
        as ISO strings, missing values as None), without the raw source record.
        """
        since, until = parse_day(since, "since"), parse_day(until, "until")
        bbox = parse_bbox(bbox)
        with self._store() as store:
            rows, total = store.events_page(since, until, bbox, actor, located=bbox is not None,
                                            limit=limit, offset=offset)
        return {"events": [{c: _plain(v) for c, v in row.items()} for row in rows],
                "total": total}

    def event(self, event_id: str) -> dict:
        """One event with its full source record; InputError when the store has no such id."""
        with self._store() as store:
            ev = store.event(str(event_id))
        if ev is None:
            raise InputError(f"no event with id {event_id!r} in the store", field="event_id")
        return {k: _plain(v) for k, v in ev.items()}

    def events_frame(self, since=None, until=None, bbox=None):
        """The located events of a selection as a DataFrame (what a model is fitted on)."""
        with self._store() as store:
            events = store.events_frame(since=since, until=until, bbox=bbox)
        if events.empty:
            raise AnalysisError("no events in the store for that selection")
        return events

    def ingest(self, paths: Sequence[str | Path], format: str = "auto", *,
               aliases: Sequence[str | Path] = (), mapping: Mapping | None = None,
               progress: Callable[[int], None] | None = None) -> dict:
        """Read event files into the store, all or nothing (``culpa ingest --json``).

        ``format``: auto|ucdp|acled|gtd|csv; ``aliases``: YAML files of extra actor aliases;
        ``mapping``: a parsed column mapping for generic CSV/Parquet; ``progress(n_bytes)``.
        Any bad row aborts the whole ingest; the store is left as it was (a store this call
        created is removed again).
        """
        from culpa.events import readers
        from culpa.events.store import ingest_files

        if format not in readers.FORMATS:
            raise InputError(f"unknown format {format!r}; choose one of "
                             f"{', '.join(readers.FORMATS)}", field="format")
        paths = [Path(p) for p in paths]
        if not paths:
            raise InputError("no files to ingest")

        report, n_total = ingest_files(self.db, paths, format,
                                       alias_files=[Path(a) for a in aliases],
                                       mapping=dict(mapping) if mapping else None,
                                       progress=progress)
        try:
            return report.to_dict() | {"db": str(self.db), "events_in_store": n_total}
        except KeyboardInterrupt:  # the events are in: say so (ingest_files says it inside)
            raise IngestInterrupted(committed=True, report=report) from None

    # ------------------------------------------------------------------------------------------
    # which model answers

    def model_request(self, question: str = "attribute", *, at=None, model_path=None,
                      case=None, since=None, until=None, bbox=None,
                      **params) -> ModelRequest | None:
        """THE rule deciding which model answers a question (see the module docstring).

        ``question``: "attribute" or "chain" (the whole record), "warn" (``at``: only events
        before it), "case" (``case``: a parsed :class:`~culpa.evidence.case.Case`; None when
        the store has too few events in its window for a model), or "fit" (``since``,
        ``until``, ``bbox`` as given). ``params`` are the estimator's parameters.
        """
        if model_path is not None:
            path = Path(model_path)
            if not path.exists():
                raise InputError("no such model file", file=str(path))
            return ModelRequest(path=path)
        check_params(params)
        frozen = tuple(sorted(params.items()))
        if question in ("attribute", "chain"):
            saved = default_model_path(self.db)
            if saved.exists() and not params:
                return ModelRequest(path=saved)
            return ModelRequest(params=frozen)
        if question == "warn":
            return ModelRequest(until=parse_day(at, "at"), params=frozen)
        if question == "case":
            from culpa.evidence import context

            since, until = context.case_window(case)
            return ModelRequest(since=since, until=until, params=frozen)
        if question == "fit":
            return ModelRequest(since=parse_day(since, "since"), until=parse_day(until, "until"),
                                bbox=parse_bbox(bbox), params=frozen)
        raise ValueError(f"unknown question {question!r}")

    def model_key(self, request: ModelRequest) -> str:
        """The fingerprint of a request: its events' content and the estimator's parameters
        (a saved file's key is its path and modification time)."""
        if request.path is not None:
            st = request.path.stat()
            return "file:" + hashlib.sha256(
                f"{request.path.resolve()}|{st.st_mtime_ns}|{st.st_size}".encode()).hexdigest()
        from culpa import __version__

        where, args = _selection(request.since, request.until, request.bbox, located=True)
        cols = ", ".join(_FINGERPRINT_COLUMNS)
        with self._store() as store:
            n, digest = store.con.execute(
                f"SELECT count(*), bit_xor(hash({cols})) FROM events WHERE {where}",
                args).fetchone()
        if not n:
            raise AnalysisError("no events in the store for that selection")
        doc = {"events": [int(n), int(digest)], "params": estimator_params(dict(request.params)),
               "culpa": __version__}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:24]

    def is_ready(self, request: ModelRequest | None) -> bool:
        """True when the request's model is in memory or saved (answering needs no fit)."""
        if request is None or request.path is not None:
            return True
        key = self.model_key(request)
        with self._lock:
            if key in self._models:
                return True
        return (self.model_dir / f"{key}.npz").exists()

    def prepare(self, request: ModelRequest, *, fit: bool = True,
                progress: Progress | None = None) -> "_Loaded":
        """The request's model, loaded or (when ``fit``) fitted, saved and kept in memory.

        Safe to call from several threads: one key is fitted once, the others wait for it."""
        key = self.model_key(request)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:  # another thread may have finished it while we waited
                if key in self._models:
                    return self._models[key]
            loaded = self._load_or_fit(request, key, fit, progress)
            with self._lock:
                self._models[key] = loaded
                while len(self._models) > MODEL_CACHE_SIZE:
                    self._models.popitem(last=False)
                self._key_locks.pop(key, None)
            return loaded

    def warm(self, request: ModelRequest | None) -> dict:
        """Load the request's model (never fitting: :class:`ModelNotReady` when it is not at
        hand) and warm it up (:meth:`~culpa.model.HawkesAttributor.warm_up`), so that its
        first questions cost what later ones do; what a server runs once in the background.
        Returns what the warm-up did (``{"rasters": N}``)."""
        if request is None:
            return {"rasters": 0}
        loaded = self.prepare(request, fit=False)
        with loaded.lock:
            return loaded.model.warm_up()

    def model(self, since=None, until=None, bbox=None, *, fit: bool = True,
              progress: Progress | None = None, **params):
        """The fitted default model (:class:`~culpa.model.PooledAttributor`: the Hawkes model
        pooled with boosted trees) of the store's located events with
        ``since <= time_start < until`` (inside ``bbox``) and these estimator parameters:
        loaded when it was fitted before (here or by any face), else fitted and saved."""
        request = self.model_request("fit", since=since, until=until, bbox=bbox, **params)
        return self.prepare(request, fit=fit, progress=progress).model

    def _load_or_fit(self, request: ModelRequest, key: str, fit: bool,
                     progress: Progress | None) -> _Loaded:
        from culpa.model import DefaultAttributor

        if request.path is not None:
            return _Loaded(DefaultAttributor.load(request.path), str(request.path))
        saved = self.model_dir / f"{key}.npz"
        if saved.exists():
            try:
                model = DefaultAttributor.load(saved)
            except InputError:  # written by another culpa version: refit below
                pass
            else:
                return _Loaded(model, f"saved model fitted on {model.n_events_:,} events"
                                      f"{_until_text(request)} ({saved})")
        if not fit:
            raise ModelNotReady(request)
        if progress:
            progress("loading events", 0, None)
        events = self.events_frame(request.since, request.until, request.bbox)
        if progress:
            progress(f"fitting on {len(events):,} events", 0, None)
        model = DefaultAttributor(**dict(request.params)).fit(events)
        self._save_keyed(model, saved)
        if progress:
            progress("fitted", 1, 1)
        return _Loaded(model, f"fitted now on {len(events):,} events{_until_text(request)}",
                       fitted_now=True)

    def _save_keyed(self, model, path: Path) -> None:
        """Save a keyed model atomically; a store beside which nothing can be written keeps its
        models in memory only."""
        part = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.part.npz")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            model.save(part)
            os.replace(part, path)
        except OSError:
            part.unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------------
    # questions

    def fit(self, since=None, until=None, bbox=None, *, out: str | Path | None = None,
            progress: Progress | None = None, **params) -> dict:
        """Fit the model on a selection of the store and save it (``culpa fit --json``).

        ``out`` defaults to :func:`default_model_path` (the model ``attribute`` and ``chain``
        then use). The fit is also kept as the keyed model of its selection, so ``case`` and
        ``warn`` questions on the same events reuse it."""
        import time as _time

        from culpa.model import DefaultAttributor

        request = self.model_request("fit", since=since, until=until, bbox=bbox, **params)
        path = Path(out) if out is not None else default_model_path(self.db)
        check_writable(path, "out" if out is not None else None)
        events = self.events_frame(request.since, request.until, request.bbox)
        if progress:
            progress(f"fitting on {len(events):,} events", 0, None)
        t0 = _time.perf_counter()
        model = DefaultAttributor(**dict(request.params)).fit(events)
        seconds = _time.perf_counter() - t0
        path = model.save(path)
        key = self.model_key(request)
        self._save_keyed(model, self.model_dir / f"{key}.npz")
        with self._lock:
            self._models[key] = _Loaded(model, str(path), fitted_now=True)
            self._models.move_to_end(key)
            self._models.pop(self.model_key(ModelRequest(path=path)), None)
        branching = model.actor_means(model.branching_ratio_)
        persistence = model.actor_means(model.mark_persistence_)
        return {"model": str(path), "n_events": len(events), "n_actors": len(model.actors_),
                "actors": list(model.actors_), "processes": list(model.processes_),
                "n_iter": int(model.n_iter_),
                "fit_seconds": round(seconds, 3),
                "log_likelihood": float(model.log_likelihood_[-1]),
                "decay_days": float(1.0 / model.omega_), "sigma_km": float(model.sigma_km_),
                "branching_ratio": dict(zip(model.actors_, map(float, branching))),
                "mark_persistence": dict(zip(model.actors_, map(float, persistence))),
                "process_branching_ratio": dict(zip(model.processes_,
                                                    map(float, model.branching_ratio_)))}

    def attribute(self, lat: float, lon: float, time, *, event_type: str | None = None,
                  target: str | None = None, fatalities: int | None = None,
                  precision_km: float | None = None, top: int = 5, model_path=None,
                  fit: bool = True, progress: Progress | None = None) -> dict:
        """Who did it? Ranked probabilities for an event at a place and time, with the reasons
        (``culpa attribute --json``)."""
        lat = check_number(lat, "lat", -90, 90)
        lon = check_number(lon, "lon", -180, 180)
        when = parse_instant(time, "time")
        if precision_km is not None:
            precision_km = check_number(precision_km, "precision_km", 0, math.inf)
        if fatalities is not None:
            fatalities = int(check_number(fatalities, "fatalities", 0, math.inf, whole=True))
        top = int(check_number(top, "top", 0, 10_000, whole=True))
        loaded = self.prepare(self.model_request("attribute", model_path=model_path), fit=fit,
                              progress=progress)
        with loaded.reading("attribute"):
            return loaded.model.explain(when, lat, lon, precision_km=precision_km,
                                        event_type=event_type, fatalities=fatalities, top=top,
                                        target=target)

    def chain(self, event_id: str, depth: int = 3, min_prob: float = 0.05, *, model_path=None,
              fit: bool = True, progress: Progress | None = None) -> dict:
        """What followed what: an event's likely triggers and what it likely triggered
        (``culpa chain --json``)."""
        depth = int(check_number(depth, "depth", 1, 10, whole=True))
        min_prob = check_number(min_prob, "min_prob", 0, 1)
        loaded = self.prepare(self.model_request("chain", model_path=model_path), fit=fit,
                              progress=progress)
        with loaded.reading("chain"):
            return loaded.model.chain(str(event_id), depth=depth, min_proba=min_prob)

    def parse_case(self, doc_or_path):
        """A validated :class:`~culpa.evidence.case.Case` from a path, YAML text or a parsed
        mapping (a JSON body)."""
        from culpa.evidence.case import Case, load_case, parse_case

        if isinstance(doc_or_path, Case):
            return doc_or_path
        if isinstance(doc_or_path, Path):
            return load_case(doc_or_path)
        if isinstance(doc_or_path, str):
            if "\n" not in doc_or_path and not doc_or_path.lstrip().startswith(("{", "title:")):
                return load_case(doc_or_path)
            return parse_case(doc_or_path)
        if isinstance(doc_or_path, Mapping):
            return _from_mapping(parse_case, dict(doc_or_path))
        raise InputError(f"a case is a path, YAML text or a mapping, not "
                         f"{type(doc_or_path).__name__}")

    def case_request(self, doc_or_path) -> ModelRequest | None:
        """The model request of a case (None when its window has too few events or there is
        no store): what a server prepares before answering :meth:`case`."""
        from culpa.evidence import context

        the_case = self.parse_case(doc_or_path)
        if not self.db.exists():
            return None
        since, until = context.case_window(the_case)
        with self._store() as store:
            n = len(store.events_frame(since=since, until=until, columns=["id"]))
        if n < context.MIN_EVENTS_FOR_MODEL:
            return None
        return self.model_request("case", case=the_case)

    def case(self, doc_or_path, *, html: str | Path | None = None, fit: bool = True,
             progress: Progress | None = None) -> dict:
        """Who did it, given the event record and the evidence? (``culpa case --json``)

        ``doc_or_path``: a case file's path, its YAML text, or the parsed mapping. ``html``:
        also write the self-contained report there (refused when it is an input, the store or
        an existing file that is not an HTML report)."""
        from culpa.evidence.context import case_document

        path = doc_or_path if isinstance(doc_or_path, (str, Path)) and not (
            isinstance(doc_or_path, str) and "\n" in doc_or_path) else None
        the_case = self.parse_case(doc_or_path)
        if html is not None:
            check_report_path(Path(html), inputs=[p for p in (path, self.db) if p is not None])

        def model_for():
            loaded = self.prepare(self.model_request("case", case=the_case), fit=fit,
                                  progress=progress)
            return loaded.model, loaded.lock

        doc = case_document(the_case, self.db if self.db.exists() else None,
                            model_for=model_for, reader=self._store)
        if html is not None:
            from culpa.report.html import render_case_report

            try:
                render_case_report(doc, html)
            except OSError as exc:
                raise InputError(f"cannot write the report: {exc.strerror or exc}",
                                 file=str(html), field="html") from None
            doc["report"] = str(html)
        return doc

    def warn(self, sites, at, horizon_days: float = 7.0, *, top: int = 5, model_path=None,
             fit: bool = True, progress: Progress | None = None) -> dict:
        """Early warning: each actor's expected events near watched sites from ``at`` against
        the usual rate (``culpa warn --json``). ``sites``: a watch-list path, its YAML text, or
        a list of ``{"name", "lat", "lon", "radius_km"[, "horizon_days"]}``."""
        from culpa.model import forecast as fc

        site_list = _sites(sites)
        when = parse_day(at, "at", required=True)
        horizon = check_number(horizon_days, "horizon_days", 0, math.inf, open_low=True)
        top = int(check_number(top, "top", 0, 10_000, whole=True))
        loaded = self.prepare(self.model_request("warn", at=when, model_path=model_path),
                              fit=fit, progress=progress)
        model = loaded.model
        with loaded.lock:
            extra = self._recent_events(model, when) if model_path is not None else None
            hist = fc.history(model, extra)
            forecasts = [fc.forecast_site(model, s, when, horizon, hist, top=top)
                         for s in site_list]
            return {"at": str(when.date()) if when == when.normalize() else when.isoformat(),
                    "horizon_days": horizon,
                    "sites": [f.to_dict() for f in forecasts],
                    "model": {"source": loaded.source,
                              "fitted_until": str(fitted_until(model).date()),
                              "actors": len(model.actors_)},
                    "levels": {name: {"min_ratio": r, "min_p_any": p}
                               for name, r, p in fc.LEVELS}}

    def _recent_events(self, model, at):
        """Store events before ``at`` that a model from a file was not fitted on and that can
        still excite at ``at``: their date range ends less than ``window_days`` before it (the
        model's own events are skipped by ``forecast.history``)."""
        import pandas as pd

        if not self.db.exists():
            return None
        with self._store() as store:
            ev = store.events_frame(until=at)
        end = ev["time_end"].fillna(ev["time_start"]) if "time_end" in ev else ev["time_start"]
        ev = ev[end >= at - pd.Timedelta(days=float(model.window_days))]
        return ev if len(ev) else None

    def backtest(self, since="2018-01-01", mask_fraction: float = 0.2, seed: int = 0, *,
                 mode: str = "masked", until=None, step_days: float = 7.0,
                 refit_every: int | None = None, plot: str | Path | None = None,
                 progress: Progress | None = None, **params) -> dict:
        """Score the model against baselines on labelled events from ``since`` on
        (``culpa backtest --json``).

        ``mode="masked"``: hide a seeded share ``mask_fraction`` of the labels, fit on
        everything with those labels latent, infer them. ``mode="forward"``: the live situation,
        step by step (``step_days``) up to ``until``: each step's labelled events are attributed
        by a model that saw only the events before the step, refitted every ``refit_every``
        steps and conditioned on all events before each step in between
        (:mod:`culpa.evaluate.forward_backtest`); ``mask_fraction`` is not used."""
        from culpa.evaluate.backtest import plot_reliability, run_backtest

        if mode not in ("masked", "forward"):
            raise InputError(f"must be 'masked' or 'forward', got {mode!r}", field="mode")
        start = parse_day(since, "since", required=True)
        check_params(params)
        if plot is not None:
            check_writable(Path(plot), "plot")
        if mode == "forward":
            from culpa.evaluate.forward_backtest import REFIT_EVERY, run_forward_backtest

            end = parse_day(until, "until")
            if end is not None and end <= start:
                raise InputError(f"must be after since ({start.date()}), got {end.date()}",
                                 field="until")
            step_days = check_number(step_days, "step_days", 0, math.inf, open_low=True)
            refit_every = int(check_number(REFIT_EVERY if refit_every is None else refit_every,
                                           "refit_every", 1, math.inf, whole=True))
            events = self.events_frame()

            def step(done: int, total: int, description: str) -> None:
                if progress:
                    progress(f"forward backtest, step {done}/{total}: {description}", done,
                             total)

            if progress:
                progress("forward backtest: first fit", 0, None)
            result = run_forward_backtest(
                events, start, end, step_days, refit_every, seed,
                model_factory=lambda: self.attributor(**params), progress=step)
        else:
            mask_fraction = check_number(mask_fraction, "mask_fraction", 0, 1, open_low=True,
                                         open_high=True)
            events = self.events_frame()
            if progress:
                progress("fitting with masked labels", 0, None)
            result = run_backtest(events, since, mask_fraction, seed,
                                  model=self.attributor(**params) if params else None)
        if plot is not None:
            plot_reliability(result, plot)
        return result.to_dict() | ({"plot": str(plot)} if plot else {})

    @staticmethod
    def attributor(**params):
        """culpa's default attributor, unfitted, with ``params`` (the one model factory the
        backtests use)."""
        from culpa.evaluate.forward_backtest import default_model_factory

        return default_model_factory(**params)

    def forecast_backtest(self, since, until=None, horizon_days: float = 7.0,
                          cell_km: float = 50.0, refit_days: float = 28.0,
                          actors: Sequence[str] | None = None, *, plot: str | Path | None = None,
                          plot_cell: tuple[float, float] | None = None,
                          progress: Callable[[int, int, str], None] | None = None,
                          n_jobs: int | None = None, **params) -> dict:
        """Score week-ahead forecasts per actor and cell against three baselines, fitting only on
        the past (``culpa forecast-backtest --json``, less ``run_seconds``). ``n_jobs``: worker
        processes for the refits (default one per core, at most two; same result)."""
        from culpa.evaluate.forecast_backtest import pick_cell, plot_forecast, run_forecast_backtest

        start = parse_day(since, "since", required=True)
        end = parse_day(until, "until")
        for name, v in (("horizon_days", horizon_days), ("cell_km", cell_km),
                        ("refit_days", refit_days)):
            check_number(v, name, 0, math.inf, open_low=True)
        check_params(params)
        if plot is not None:
            check_writable(Path(plot), "plot")
        events = self.events_frame()
        result = run_forecast_backtest(events, start, horizon_days, cell_km, refit_days,
                                       actors=list(actors) if actors else None, until=end,
                                       model_params=params, progress=progress, n_jobs=n_jobs)
        doc = result.to_dict()
        if plot is not None:
            cell = plot_forecast(result, plot, pick_cell(result, plot_cell))
            lat, lon = result.grid.centre(cell)
            doc["plot"] = {"file": str(plot), "cell_latitude": lat, "cell_longitude": lon}
        return doc


# ----------------------------------------------------------------------------------------------
# checking what a caller hands over (errors name the argument, never a command-line flag)

def estimator_params(params: Mapping[str, Any] | None = None) -> dict:
    """Every parameter of the estimator built with ``params`` (its ``get_params()``)."""
    from culpa.model import DefaultAttributor

    return DefaultAttributor(**dict(params or {})).get_params()


def check_params(params: Mapping[str, Any]) -> None:
    """Refuse a name the estimator does not take (InputError naming it and the valid ones)."""
    if not params:
        return
    from culpa.model import DefaultAttributor

    known = DefaultAttributor().get_params()
    for name in params:
        if name not in known:
            raise InputError(f"unknown model parameter {name!r}; the model takes: "
                             f"{', '.join(sorted(known))}", field=name)


def parse_param(text: str) -> tuple[str, Any]:
    """``name=value`` -> (name, value), the value read as the type of the estimator's default
    (numbers, true/false, none, a comma-separated tuple, text)."""
    from culpa.model import DefaultAttributor

    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise InputError(f"expected NAME=VALUE, got {text!r}", field="param")
    known = DefaultAttributor().get_params()
    if name not in known:
        raise InputError(f"unknown model parameter {name!r}; the model takes: "
                         f"{', '.join(sorted(known))}", field="param")
    default, raw = known[name], raw.strip()
    try:
        value = _typed(raw, default)
    except ValueError as exc:
        raise InputError(f"{name}: {exc}", field="param") from None
    check_values({name: value})
    return name, value


def check_values(params: Mapping[str, Any]) -> None:
    """The estimator's own checks of its parameter values, before any data is read (the fit
    runs them too; here they fail fast, before a long load)."""
    from culpa.model import DefaultAttributor

    try:
        DefaultAttributor(**dict(params)).check_params()
    except InputError as exc:
        raise InputError(f"{exc.field or ''}={params.get(exc.field, '?')!r}: {exc.detail}"
                         if exc.field in params else exc.detail, field="param") from None
    except ValueError as exc:
        raise InputError(str(exc), field="param") from None


def _typed(raw: str, default: Any) -> Any:
    low = raw.lower()
    if low in ("none", "null", ""):
        return None
    if isinstance(default, bool):
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
    if isinstance(default, float) or default is None:
        try:
            value = float(raw)
        except ValueError:
            if default is None:
                return raw
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {raw!r}")
        return value
    if isinstance(default, tuple):
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    return raw


def parse_day(value, name: str, required: bool = False):
    """A day or instant (``YYYY-MM-DD`` or ISO) as a pandas Timestamp; None passes through
    unless ``required``. Refuses empty text, NaN/NaT and the unparseable."""
    import pandas as pd

    if value is None:
        if required:
            raise InputError("missing (required)", field=name)
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        ts = None
    if ts is None or ts is pd.NaT or pd.isna(ts):
        raise InputError(f"not a date: {value!r} (use YYYY-MM-DD)", field=name)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def parse_instant(value, name: str):
    """A required day or instant as :func:`parse_day` reads it; a plain ISO one
    (:func:`culpa.model.frames.plain_instant`) as the same instant in datetime64[s], without
    pandas (a single attribution needs none)."""
    from culpa.model.frames import plain_instant

    plain = plain_instant(value)
    return plain if plain is not None else parse_day(value, name, required=True)


def parse_bbox(value) -> tuple[float, float, float, float] | None:
    """``"W,S,E,N"`` or a 4-sequence of degrees -> a tuple; None passes through."""
    if value is None:
        return None
    try:
        parts = value.split(",") if isinstance(value, str) else list(value)
        w, s, e, n = (float(v) for v in parts)
    except (ValueError, TypeError):
        raise InputError(f"expected W,S,E,N in degrees, got {value!r}", field="bbox") from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise InputError(f"not a box: {value!r} (W<E, S<N, in range)", field="bbox")
    return w, s, e, n


def check_number(value, name: str, lo: float, hi: float, *, open_low: bool = False,
                 open_high: bool = False, whole: bool = False) -> float:
    """A finite number within [lo, hi] (ends open when asked), else InputError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise InputError(f"must be a number, got {value!r}", field=name) from None
    ok = math.isfinite(value) and (lo < value if open_low else lo <= value) and \
        (value < hi if open_high else value <= hi)
    if whole and ok:
        ok = float(value).is_integer()
    if not ok:
        lo_b, hi_b = "(" if open_low else "[", ")" if open_high else "]"
        kind = "a whole number" if whole else "a number"
        raise InputError(f"must be {kind} in {lo_b}{lo:g}, {hi:g}{hi_b}, got {value!r}",
                         field=name)
    return value


def check_writable(path: Path, name: str | None = None) -> None:
    """Refuse an output path whose folder does not exist or cannot be written, before any
    work is done."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError("is a directory", file=str(path), field=name)
    if not parent.is_dir():
        raise InputError(f"no such directory: {parent}", file=str(path), field=name)
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError("cannot write here (permission denied)", file=str(path), field=name)


def check_report_path(path: Path, inputs: Sequence[str | Path]) -> None:
    """An HTML report may not overwrite an input, the store or a file that is not a report."""
    check_writable(path, "html")
    if not path.exists():
        return
    for other in inputs:
        other = Path(other)
        if other.exists() and path.resolve() == other.resolve():
            raise InputError("is an input of this command; refusing to overwrite it",
                             file=str(path), field="html")
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    if not (head.startswith(b"<!doctype html") or head.startswith(b"<html")):
        raise InputError("exists and is not an HTML report; refusing to overwrite it",
                         file=str(path), field="html")


# ----------------------------------------------------------------------------------------------
# helpers

#: The columns a model reads: a change in any of them changes the model's fingerprint.
_FINGERPRINT_COLUMNS = ("id", "time_start", "time_end", "date_precision_days", "latitude",
                        "longitude", "location_precision_km", "actor", "attribution",
                        "event_type", "fatalities", "other_raw")


def _selection(since, until, bbox, located: bool) -> tuple[str, list]:
    """SQL ``WHERE`` text and arguments for the store's events in a selection (the same one
    ``Store.events_frame`` makes)."""
    where, args = ["TRUE"], []
    if located:
        where.append("latitude IS NOT NULL AND longitude IS NOT NULL")
    if since is not None:
        where.append("time_start >= ?")
        args.append(since.to_pydatetime())
    if until is not None:
        where.append("time_start < ?")
        args.append(until.to_pydatetime())
    if bbox is not None:
        w, s, e, n = bbox
        where.append("longitude BETWEEN ? AND ? AND latitude BETWEEN ? AND ?")
        args += [w, e, s, n]
    return " AND ".join(where), args


def _until_text(request: ModelRequest) -> str:
    return f" before {request.until.date()}" if request.until is not None else ""


def fitted_until(model):
    """The day after the last fitted event began."""
    import numpy as np
    import pandas as pd

    last = pd.Timestamp(np.max(np.asarray(model.fitted_events_.start, dtype="datetime64[s]")))
    return last.normalize() + pd.Timedelta(days=1)


def _plain(v: Any) -> Any:
    """A value from the store as JSON-ready: times as ISO text, NaN as None."""
    import datetime as dt

    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _from_mapping(parse, doc: dict):
    """Validate a parsed document with a text parser; its errors keep the key path but lose
    the (meaningless) line of the re-serialised text."""
    import yaml

    try:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as exc:
        raise InputError(f"not a document: {exc}") from None
    try:
        return parse(text)
    except InputError as exc:
        raise InputError(exc.detail, path=exc.path, field=exc.field) from None


def _sites(sites):
    from culpa.sites import load_sites, parse_sites

    if isinstance(sites, Path) or (isinstance(sites, str) and "\n" not in sites):
        return load_sites(sites)
    if isinstance(sites, str):
        return parse_sites(sites)
    if isinstance(sites, (list, tuple, Mapping)):
        doc = {"sites": list(sites)} if not isinstance(sites, Mapping) else dict(sites)
        return _from_mapping(parse_sites, doc)
    raise InputError(f"sites are a path, YAML text or a list, not {type(sites).__name__}")
