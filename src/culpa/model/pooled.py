"""PooledAttributor, culpa's default attribution: the Hawkes model pooled with boosted trees.

The Hawkes model (:class:`~culpa.model.hawkes.HawkesAttributor`) stays the explainable core:
this class *is* one (every attribute, ``explain``, ``chain``, the forecasts), fitted the same
way. On top of it sits a second member, boosted trees over place, time and marks
(:mod:`culpa.model.trees`), and a learned log-linear pool of the two members' probabilities

    p(actor) ∝ p_hawkes(actor)^w_hawkes · p_trees(actor)^w_trees        (w >= 0)

The two know different things: the Hawkes model knows what happened nearby just before (and
after, for an event in the record), the trees know sharp territorial boundaries that a kernel
density smooths across. The weights are fitted by log-loss ONLY on out-of-fold probabilities of
the labelled events, so no event's own label feeds its own prediction, and their common scale
is the held-out calibration step (a temperature):

- the trees' out-of-fold probabilities come from ``tree_folds`` forests, each fitted on the
  labelled events of the other folds (:func:`cross_fit`); a new event gets their mean;
- the Hawkes model's come from one analytic leave-one-out pass at the fitted parameters
  (:func:`hawkes_loo_proba`, :mod:`culpa.model.loo`): each labelled event's label
  probabilities as the model would give them had its label been hidden (the fixed point of the
  label sweep for that event alone: its background, cross-fitted in time blocks so an event
  never sits in its own ground; its marks; what the earlier events excite there; and its
  offspring), so it is scored on the footing of a masked event. Latent earlier events excite
  with their label probabilities from their own past only, so a label cannot come back to its
  own event through a latent neighbour; the estimates that counted the event's own label
  are taken without it (its process's rate in its own bin and its process's mark tables,
  :func:`culpa.model.loo.own_label_out`), so a small process's rows are not scored by tables
  they filled themselves; and the event is counted back in every process's rate and mark
  tables at its own left-out label probabilities, as a masked event counts in the fit ("Own
  weight" in :mod:`culpa.model.loo`). No refit: a few passes over the candidate pairs.

Two sets of weights, by agreement. Where the members' most probable actors differ (about one
out-of-fold row in twenty on the shared splits), each is less often right, and weights fitted
on every row, nearly all of which agree, are overconfident there: those rows get weights of
their own, fitted only on the out-of-fold rows where the members disagree
(:class:`~culpa.model.combiner.AgreementPool`; one set serves both when either side has under
``MIN_SPLIT_ROWS`` rows). Each calibration below is such a pair: ``pool_weights_`` is
(agree, disagree) x (hawkes, trees).

Calibration. The weights must be fitted on rows asked the way the questions are asked, and
there are two footings (``calibration_days`` = H, 13 weeks by default: the forward mode's
refit horizon, fixed a priori):

- *in the record* (a query dated at or before the fit's last event, and the fit's latent
  events): the out-of-fold rows above are on this footing (neighbours before and after
  known); the weights are fitted on all of them, equally weighted (``pool_weights_``).
  Weighting them by recency (``2^(-age / H)``) was measured and made the masked backtests
  worse (fewer effective rows, and the record's last weeks are not the masked events' kind);
- *after the fit* (a query dated after the last fitted event: the live situation and the
  forward mode, where nothing after the query is known and the trees extrapolate in time):
  forward-chained rows, the labelled events of the last H days, each scored as such a query
  is: the trees by one more forest fitted only on the labelled events before those days, the
  Hawkes model from each event's past only (no offspring; background rates held at the last
  rate bin that ends before those days) (``pool_forward_weights_``). The in-record rows
  join them as a prior, worth ``MIN_FORWARD_ROWS`` rows in all (each weighted
  ``MIN_FORWARD_ROWS / n``): a quarter of a sparse war holds a hundred-odd labelled events,
  nearly all of them certain, and weights fitted on those alone swing far (Iraq's first 2016
  refit gave a log-loss five times the trees'). With fewer than ``MIN_FORWARD_ROWS`` labelled
  events in those days or before them, the in-record weights serve.

``calibration_days=None``: the in-record weights for every query (one calibration).

The trees classify the actors with at least ``tree_min_events`` labelled events; the others
share one class, whose probability is split among them as the Hawkes model splits it. An actor
the data never saw is not a member's class at all: the case layer adds it as a hypothesis with
its own prior, as before.

Every number an attribution shows traces (``culpa attribute``, the workbench's ranking and
the case report show the members beside the pooled probability): ``explain`` returns the
Hawkes terms (background share, the earlier events) as before, each actor's
``hawkes_probability`` and ``trees_probability`` beside the pooled ``probability``, and a
``combiner`` part with the weights applied, whether the members agreed, which calibration
applied and why, both calibrations and how they were fitted.
"""

from __future__ import annotations

import inspect
import time as _time

import numpy as np

from culpa import lazyimport
from culpa.errors import ParameterError
from culpa.model.combiner import (AGREEMENT, MIN_SPLIT_ROWS, AgreementPool, disagree,
                                  pool_by_agreement)
from culpa.model.fitted import check_fitted
from culpa.model.hawkes import HawkesAttributor, _normalise
from culpa.model.treejob import cross_fit, start_cross_fit
from culpa.model.trees import TreeFeatures, TreeMember
from culpa.openmp import blas_single_threaded

pd = lazyimport.module("pandas")  # imported when first used: a single query needs none

__all__ = ["PooledAttributor", "cross_fit", "hawkes_loo_proba"]

#: The members of the pool, in the order of each row of ``pool_weights_``.
MEMBERS = ("hawkes", "trees")
#: The forward calibration's horizon H by default, in days: 13 weeks, the refit horizon of the
#: forward mode (``culpa.evaluate.forward_backtest.REFIT_EVERY`` weekly steps), the age a
#: fitted model is meant to reach before it is refitted. Fixed a priori, not tuned.
CALIBRATION_DAYS = 91.0
#: The forward calibration needs at least this many labelled events in the last H days and
#: before them (else forward queries get the in-record weights). Fixed a priori.
MIN_FORWARD_ROWS = 100
#: The column of the trees' matrix holding days since ``t0_`` (TreeFeatures.names).
DAYS = 4


def hawkes_loo_proba(model: HawkesAttributor, rows=None, parts=None) -> np.ndarray:
    """P(actor) of the fitted events ``rows`` (time order; default: the labelled ones), each
    with its own label hidden, at the fitted parameters: as a masked event's, from its past and
    its offspring (:mod:`culpa.model.loo`). Must be called right after ``fit``."""
    from culpa.model.loo import loo_process_proba

    if rows is None:
        rows = np.flatnonzero(model._lab >= 0)
    return model.by_actor(loo_process_proba(model, np.asarray(rows), parts))


def _with_pool_params(init):
    """``__init__``'s signature: the Hawkes model's parameters, then the pool's."""
    hawkes = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
              for name, p in inspect.signature(HawkesAttributor.__init__).parameters.items()
              if name != "self"]
    own = [p for name, p in inspect.signature(init).parameters.items()
           if p.kind == inspect.Parameter.KEYWORD_ONLY]
    self_ = inspect.signature(init).parameters["self"]
    init.__signature__ = inspect.Signature([self_] + hawkes + own)
    return init


class PooledAttributor(HawkesAttributor):
    """The Hawkes model pooled with cross-fitted boosted trees (see the module doc).

    Parameters: every :class:`HawkesAttributor` parameter, and

    pool : pool the trees in (False: the Hawkes model alone, as ``HawkesAttributor``).
    tree_folds : folds of the trees' cross-fitting (their out-of-fold probabilities fit the
        pool; a new event gets the mean of the fold forests).
    tree_min_events : actors with fewer labelled events are one class for the trees.
    pool_max_weight : upper bound of each pooling weight.
    pool_by_agreement : a second pair of weights for the rows where the members' most probable
        actors differ (see the module doc); False: one pair for every row.
    member : the second member: ``"trees"`` (:class:`~culpa.model.trees.TreeMember`) or any
        object with ``fit(X, y, n_classes)`` and ``predict_proba(X)`` (not saveable).
    calibration_days : the horizon H of the forward calibration (see "Calibration" in the
        module doc): queries after the fit's last event are pooled with weights fitted on its
        last H days, forward-chained. ``None``: the in-record weights for every query.
    """

    #: The pool's out-of-fold step takes each event's own label out of the rates and marks
    #: with the fit's last E pass (:func:`culpa.model.loo.own_label_out`).
    _keeps_final_pass = True

    @_with_pool_params
    def __init__(self, *, pool: bool = True, tree_folds: int = 3, tree_min_events: int = 30,
                 pool_max_weight: float = 5.0, pool_by_agreement: bool = True,
                 member="trees",
                 calibration_days: float | None = CALIBRATION_DAYS, **hawkes):
        super().__init__(**hawkes)
        self.pool = pool
        self.tree_folds = tree_folds
        self.tree_min_events = tree_min_events
        self.pool_max_weight = pool_max_weight
        self.pool_by_agreement = pool_by_agreement
        self.member = member
        self.calibration_days = calibration_days

    def check_params(self) -> None:
        super().check_params()
        for name in ("pool", "pool_by_agreement"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ParameterError(f"must be true or false, got {getattr(self, name)!r}",
                                     field=name)
        for name in ("tree_folds", "tree_min_events"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                    and v >= (2 if name == "tree_folds" else 1)):
                raise ParameterError(f"must be an integer >= "
                                     f"{2 if name == 'tree_folds' else 1}, got {v!r}", field=name)
        w = self.pool_max_weight
        if not (isinstance(w, (int, float)) and np.isfinite(w) and w > 0):
            raise ParameterError(f"must be a positive number, got {w!r}", field="pool_max_weight")
        if isinstance(self.member, str) and self.member != "trees":
            raise ParameterError(f"must be 'trees' or a member object, got {self.member!r}",
                                 field="member")
        h = self.calibration_days
        if h is not None and not (isinstance(h, (int, float, np.integer, np.floating))
                                  and not isinstance(h, bool) and np.isfinite(h) and h > 0):
            raise ParameterError(f"must be a positive number of days or null, got {h!r}",
                                 field="calibration_days")

    # -----------------------------------------------------------------------------------------
    # fit

    def _events_in_time_order(self, events):
        ev = super()._events_in_time_order(events)
        self._pool_events = ev  # the marks the trees read (dropped after the fit)
        return ev

    @blas_single_threaded  # as HawkesAttributor.fit: the pool's passes get the cores
    def fit(self, events: pd.DataFrame, y=None, warm_start: "HawkesAttributor | None" = None
            ) -> "PooledAttributor":
        """Fit the Hawkes core (as :meth:`HawkesAttributor.fit`, from ``warm_start`` when
        given), then, when ``pool``, the cross-fitted trees and the pooling weights on
        out-of-fold probabilities; returns self. The trees need only the events and their
        labels: they are fitted in a second process while the EM runs
        (:mod:`culpa.model.treejob`)."""
        try:
            super().fit(events, warm_start=warm_start)
            ev = self.__dict__.pop("_pool_events")
            if not self.pool:
                return self
            tick = _time.perf_counter()
            self._fit_pool(ev)
            self.fit_seconds_["pool"] = _time.perf_counter() - tick
            self.fit_seconds_["total"] += self.fit_seconds_["pool"]
            return self
        finally:  # on any exit, a tree job still running is stopped (it frees the worker)
            job = self.__dict__.pop("_tree_job", None)
            if job is not None:
                job.cancel()  # nothing once its result was read
            self.__dict__.pop("_tree_X", None)
            self.__dict__.pop("_final_pass", None)
            self.__dict__.pop("_mark_tables_out", None)
            self._restore_numba_threads()

    def _restore_numba_threads(self) -> None:
        """numba's thread count as it was before the tree worker took a core."""
        threads = self.__dict__.pop("_numba_threads", None)
        if threads is not None:
            import numba  # the fit's EM loaded it

            numba.set_num_threads(threads)

    def _split_into_processes(self, ev: dict) -> None:
        super()._split_into_processes(ev)
        if self.pool:  # the trees' inputs are known now: start them beside the EM
            self._start_trees(ev)

    def _tree_problem(self):
        """The labelled events' tree classes: (labelled mask, actor of each labelled event,
        class of each actor, number of classes)."""
        lab = self._lab
        labelled = lab >= 0
        actor_of = self.process_actor_[lab[labelled]]
        A = len(self.actors_)
        counts = np.bincount(actor_of, minlength=A)
        big = np.flatnonzero(counts >= int(self.tree_min_events))
        cls = np.full(A, len(big), np.int32)
        cls[big] = np.arange(len(big))
        n_cls = len(big) + int(len(big) < A)
        return labelled, actor_of, cls, n_cls

    def _start_trees(self, ev: dict) -> None:
        """The trees' classes and features, and their cross-fit started (``_tree_job``)."""
        labelled, actor_of, cls, n_cls = self._tree_problem()
        self.tree_class_of_actor_ = cls
        self.tree_features_ = TreeFeatures.for_fit(ev["event_type"], ev["target"], labelled,
                                                   self.t0_)
        X = self._tree_matrix(ev["start"], ev, self._x_lat_lon(ev))
        self._tree_X = X
        member = TreeMember(random_state=0) if isinstance(self.member, str) else self.member
        seed = 0
        # the forward calibration's forest too, when it will be fitted (see _fit_forward)
        block = self._forward_block(X[labelled][:, DAYS], float(np.nanmax(X[:, DAYS])))
        forward = None if block is None else (~block, block)
        # a member object of the caller's stays in this process
        self._tree_job = start_cross_fit(member, X[labelled], cls[actor_of], n_cls,
                                         self.tree_folds, seed,
                                         worker=isinstance(self.member, str), forward=forward)
        if self._tree_job.busy_core:  # the worker takes a core: the EM's passes one thread
            import numba  # the EM needs it next

            self._numba_threads = numba.get_num_threads()
            numba.set_num_threads(1)

    def _fit_pool(self, ev: dict) -> None:
        labelled, actor_of, cls, n_cls = self._tree_problem()
        A = len(self.actors_)
        X = self._tree_X
        job = self._tree_job  # fit() forgets both on its way out
        tick = _time.perf_counter()
        rows = np.flatnonzero(labelled)
        # the Hawkes model's out-of-fold rows first: the trees may still be fitting beside them
        if self.calibration_days is None:
            oof_h = hawkes_loo_proba(self, rows)
            parts = None
        else:
            from culpa.model.loo import _past_intensity

            parts = _past_intensity(self)
            oof_h = hawkes_loo_proba(self, rows, parts)
        tock = _time.perf_counter()
        self.members_, oof_t = job.result()  # waits for the worker when it is not done yet
        self._restore_numba_threads()  # the worker is idle now: the passes below get both cores
        # pool_trees: the wait for the trees after the EM and the out-of-fold rows;
        # pool_trees_fit: their own time
        self.fit_seconds_.update(pool_loo=tock - tick, pool_trees=_time.perf_counter() - tock,
                                 pool_trees_fit=float(job.seconds or 0.0))
        oof_t = self._trees_to_actors(oof_t, oof_h)
        days = X[:, DAYS]  # days since t0_ at each fitted event's start (the trees' column)
        self.pool_last_day_ = float(np.nanmax(days))
        H = self.calibration_days
        # in-record calibration: every out-of-fold row, equally weighted
        lp = self._agreement_pool()
        lp.fit([oof_h, oof_t], actor_of, start=np.array([1.0, 0.0]))
        self.pool_weights_ = np.asarray(lp.weights_, float)
        oof_p = lp.predict_proba([oof_h, oof_t])
        self.pool_oof_ = {"n": int(labelled.sum()), "folds": len(self.members_),
                          "log_loss": {"hawkes": _log_loss(oof_h, actor_of),
                                       "trees": _log_loss(oof_t, actor_of),
                                       "pooled": _log_loss(oof_p, actor_of)},
                          "ece": {"hawkes": _ece(oof_h, actor_of), "trees": _ece(oof_t, actor_of),
                                  "pooled": _ece(oof_p, actor_of)}}
        in_record = {"rows": int(labelled.sum()), "log_loss": float(lp.log_loss_),
                     **_agreement_doc(lp)}
        self.pool_forward_weights_ = self.pool_weights_.copy()
        forward = None
        if H is not None:
            tick = _time.perf_counter()
            forward = self._fit_forward(actor_of, days[labelled], rows, parts, float(H),
                                        job.forward, (oof_h, oof_t))
            self.fit_seconds_["pool_forward"] = _time.perf_counter() - tick
            if "weights" in forward:
                self.pool_forward_weights_ = np.asarray(forward["weights"], float)
        self.pool_calibration_ = {"days": None if H is None else float(H),
                                  "last_event": str(self.tree_features_.t0 + np.timedelta64(
                                      int(round(self.pool_last_day_ * 86400)), "s")),
                                  "in_record": in_record, "forward": forward}
        latent = np.flatnonzero(~labelled)
        if len(latent):  # the fit's latent events are in the record: in-record weights
            ph = self.by_actor(self._Q[latent])
            self._pool_latent = self._pooled(ph, self._member_proba(X[latent], ph))
        else:
            self._pool_latent = np.zeros((0, A))
        self._set_public()

    def _forward_block(self, days, last_day: float):
        """The labelled events (their ``days``) the forward calibration is fitted on, or None
        when it falls back to the in-record weights (see :meth:`_fit_forward`)."""
        H = self.calibration_days
        if H is None:
            return None
        block = days > last_day - float(H)
        if block.sum() < MIN_FORWARD_ROWS or (~block).sum() < MIN_FORWARD_ROWS:
            return None
        return block

    def _fit_forward(self, actor_of, days, rows, parts, H, pt, prior) -> dict:
        """The forward calibration: weights fitted on the labelled events of the last ``H``
        days, each scored as a query after a fit is: the trees by one forest fitted on the
        labelled events before those days, the Hawkes model from each event's past only
        (:func:`culpa.model.loo.past_process_proba`). Its description (``weights`` missing
        when there are too few events for it). ``pt``: that forest's probabilities of the
        block (:func:`culpa.model.treejob.fit_trees`, asked for by :meth:`_start_trees` on the
        same block). ``prior``: the in-record rows (Hawkes, trees out-of-fold probabilities of
        every labelled event), which count as ``MIN_FORWARD_ROWS`` rows in all."""
        from culpa.model.loo import past_process_proba

        cut = self.pool_last_day_ - H
        block = days > cut
        doc = {"rows": int(block.sum()), "trees_fitted_on": int((~block).sum()),
               "from": str(self.tree_features_.t0 + np.timedelta64(int(round(cut * 86400)), "s"))}
        if self._forward_block(days, self.pool_last_day_) is None:
            doc["fallback"] = (f"fewer than {MIN_FORWARD_ROWS} labelled events in the last "
                               f"{H:g} days or before them: the in-record weights")
            return doc
        ph = self.by_actor(past_process_proba(self, rows[block], parts,
                                              hold_rates_before=cut))
        pt = self._trees_to_actors(pt, ph)
        y = actor_of[block]
        lp = self._agreement_pool()
        n_in = len(actor_of)
        weight = np.concatenate([np.ones(len(y)), np.full(n_in, MIN_FORWARD_ROWS / n_in)])
        lp.fit([np.vstack([ph, prior[0]]), np.vstack([pt, prior[1]])],
               np.concatenate([y, actor_of]), start=np.array([1.0, 0.0]), sample_weight=weight)
        p = lp.predict_proba([ph, pt])
        dis = disagree([ph, pt])  # the block's own rows (lp's counts include the prior's)
        doc.update(weights=lp.weights_.tolist(), prior_rows=MIN_FORWARD_ROWS,
                   rows_agree=int((~dis).sum()), rows_disagree=int(dis.sum()),
                   split_by_agreement=bool(lp.split_),
                   log_loss={"hawkes": _log_loss(ph, y), "trees": _log_loss(pt, y),
                             "pooled": _log_loss(p, y)},
                   ece={"hawkes": _ece(ph, y), "trees": _ece(pt, y), "pooled": _ece(p, y)})
        return doc

    def _agreement_pool(self) -> AgreementPool:
        return AgreementPool(max_weight=float(self.pool_max_weight),
                             min_rows=MIN_SPLIT_ROWS if self.pool_by_agreement else None)

    def _x_lat_lon(self, ev):
        return self.projection_.inverse(ev["x"], ev["y"])

    def _tree_matrix(self, start, ev, latlon) -> np.ndarray:
        lat, lon = latlon
        return self.tree_features_.matrix(start, lat, lon, ev["event_type"], ev["target"],
                                          ev["fatalities"], ev["location_precision"])

    # -----------------------------------------------------------------------------------------
    # the members and the pool

    def _trees_to_actors(self, pt: np.ndarray, ph: np.ndarray) -> np.ndarray:
        """Tree classes (n x classes) -> actors (n x actors): the small actors' shared class
        is split among them as the Hawkes model splits it."""
        cls = self.tree_class_of_actor_
        out = pt[:, cls]
        shared = np.flatnonzero(np.bincount(cls)[cls] > 1)  # the actors of the shared class
        if len(shared):
            s = ph[:, shared]
            tot = s.sum(1, keepdims=True)
            share = np.where(tot > 0, s / np.where(tot > 0, tot, 1.0), 1.0 / len(shared))
            out = out.copy()
            out[:, shared] *= share
        out = np.maximum(out, 1e-12)
        return out / out.sum(1, keepdims=True)

    def _member_proba(self, X: np.ndarray, ph: np.ndarray) -> np.ndarray:
        """The second member's P(actor) (n x actors): the mean of the fold members."""
        pt = sum(m.predict_proba(X) for m in self.members_) / len(self.members_)
        return self._trees_to_actors(pt, ph)

    def _pooled(self, ph: np.ndarray, pt: np.ndarray, forward=None) -> np.ndarray:
        """The pool of rows ``ph``, ``pt``: the in-record weights, the forward weights on the
        rows where ``forward`` (a boolean per row) is true."""
        out = pool_by_agreement([ph, pt], self.pool_weights_)
        if forward is not None and np.any(forward):
            fw = np.asarray(forward, bool)
            out[fw] = pool_by_agreement([ph[fw], pt[fw]], self._forward_weights())
        return out

    def _forward_weights(self) -> np.ndarray:
        w = getattr(self, "pool_forward_weights_", None)
        return self.pool_weights_ if w is None else w

    def _is_forward(self, X: np.ndarray) -> np.ndarray:
        """Which rows of the trees' matrix ``X`` ask about a time after the fit's last event
        (these get the forward calibration)."""
        last = getattr(self, "pool_last_day_", None)
        if last is None:
            return np.zeros(len(X), bool)
        with np.errstate(invalid="ignore"):
            return X[:, DAYS] > last

    def _is_pooled(self) -> bool:
        return getattr(self, "pool_weights_", None) is not None

    def _set_public(self) -> None:
        super()._set_public()
        self.hawkes_label_proba_ = self.label_proba_
        latent = getattr(self, "_pool_latent", None)
        if self._is_pooled() and latent is not None and len(latent):
            q = self.label_proba_.copy()
            rows = self._inv  # input row -> time-order position
            pos = np.flatnonzero(self._lab < 0)  # time order
            where = np.empty(len(rows), np.int64)
            where[:] = -1
            where[pos] = np.arange(len(pos))
            sel = where[rows]
            q[sel >= 0] = latent[sel[sel >= 0]]
            self.label_proba_ = q

    # -----------------------------------------------------------------------------------------
    # prediction

    def _query_tree_matrix(self, queries: pd.DataFrame) -> np.ndarray:
        tcol = "time" if "time" in queries.columns else "time_start"
        n = len(queries)

        def col(name):
            return queries[name].to_numpy() if name in queries.columns else None

        target = col("target") if "target" in queries.columns else col("other_raw")
        start = pd.to_datetime(queries[tcol]).to_numpy(dtype="datetime64[s]")
        prec = col("location_precision_km")
        return self.tree_features_.matrix(
            start, queries["latitude"].to_numpy(float), queries["longitude"].to_numpy(float),
            col("event_type"), target, col("fatalities"),
            None if prec is None else np.asarray(prec, float) if n else prec)

    def member_proba(self, queries: pd.DataFrame) -> dict:
        """Each member's P(actor | time, place, marks) (n x actors): ``{"hawkes", "trees"}``,
        and ``forward``: which queries are after the fit's last event (the forward weights
        pool them)."""
        check_fitted(self)
        ph = super().predict_proba(queries)
        if not self._is_pooled():
            return {"hawkes": ph}
        known = _newcomers_apart(ph, len(self.tree_class_of_actor_))[0]
        X = self._query_tree_matrix(queries)
        pt = self._member_proba(X, known)
        return {"hawkes": ph, "trees": _newcomers_back(pt, ph, pt.shape[1]),
                "forward": self._is_forward(X)}

    def predict_proba(self, queries: pd.DataFrame) -> np.ndarray:
        """The pooled P(actor | time, place, marks) (n x actors, columns ``actors_``).

        A conditioned model's newcomers (actors after the fitted ones,
        :mod:`culpa.model.newcomers`) are not the trees' classes: they keep the Hawkes model's
        probabilities, and the pool splits the rest among the fitted actors."""
        m = self.member_proba(queries)
        if "trees" not in m:
            return m["hawkes"]
        A = len(self.tree_class_of_actor_)
        known = _newcomers_apart(m["hawkes"], A)[0]
        trees = _newcomers_apart(m["trees"], A)[0]
        return _newcomers_back(self._pooled(known, trees, m["forward"]), m["hawkes"], A)

    def explain(self, time, lat: float, lon: float, precision_km: float | None = None,
                event_type: str | None = None, fatalities: float | None = None,
                top: int = 10, date_precision_days: float = 1.0,
                target: str | None = None) -> dict:
        """:meth:`HawkesAttributor.explain` with the pool: each actor's ``probability`` is the
        pooled one, beside its ``hawkes_probability`` and ``trees_probability``; ``combiner``
        gives the weights, each member's probabilities and how the weights were fitted."""
        doc = super().explain(time, lat, lon, precision_km=precision_km, event_type=event_type,
                              fatalities=fatalities, top=top,
                              date_precision_days=date_precision_days, target=target)
        if not self._is_pooled():
            return doc
        index = {a: i for i, a in enumerate(self.actors_)}
        ph = np.zeros((1, len(self.actors_)))
        for a in doc["actors"]:
            ph[0, index[a["actor"]]] = a["probability"]
        X = self.tree_features_.matrix(  # the one query's row, as _query_tree_matrix makes it
            np.array([_utc(time)], dtype="datetime64[s]"), [lat], [lon],
            np.array([event_type], dtype=object), np.array([target], dtype=object),
            [np.nan if fatalities is None else fatalities],
            [np.nan if precision_km is None else precision_km])
        pt = self._member_proba(X, ph)
        forward = bool(self._is_forward(X)[0])
        pp = self._pooled(ph, pt, [forward])
        for a in doc["actors"]:
            i = index[a["actor"]]
            a["hawkes_probability"] = a["probability"]
            a["trees_probability"] = float(pt[0, i])
            a["probability"] = float(pp[0, i])
        doc["actors"].sort(key=lambda a: -a["probability"])
        agree = not bool(disagree([ph, pt])[0])
        w = (self._forward_weights() if forward else self.pool_weights_)[0 if agree else 1]
        cal = getattr(self, "pool_calibration_", None) or {}
        fw = cal.get("forward") or {}
        in_record_on = ("out-of-fold probabilities of the "
                        f"{self.pool_oof_['n']:,} labelled events (trees: "
                        f"{self.pool_oof_['folds']} folds; Hawkes: leave-one-out)")
        forward_on = (in_record_on if "weights" not in fw else
                      f"the {fw['rows']:,} labelled events after {fw['from'][:10]} (the last "
                      f"{cal['days']:g} days of the fit) as queries after a fit are asked: "
                      f"trees fitted on the {fw['trees_fitted_on']:,} labelled events before "
                      "them; Hawkes from each event's past only")
        doc["combiner"] = {
            "method": "log-linear pool: p(actor) ∝ p_hawkes^w_hawkes · p_trees^w_trees",
            "weights": {"hawkes": float(w[0]), "trees": float(w[1])},
            "members_agree": agree,
            "calibration": "forward" if forward else "in-record",
            "why": (f"the query is after the fit's last event ({cal.get('last_event', '?')[:10]})"
                    if forward else "the query is within the fitted record"),
            "members": {"hawkes": {a: float(ph[0, i]) for a, i in index.items()},
                        "trees": {a: float(pt[0, i]) for a, i in index.items()}},
            "fitted_on": forward_on if forward else in_record_on,
            "calibrations": {
                "in-record": {"weights": _weights_doc(self.pool_weights_),
                              "fitted_on": in_record_on},
                "forward": {"weights": _weights_doc(self._forward_weights()),
                            "fitted_on": forward_on}},
            "out_of_fold_log_loss": self.pool_oof_["log_loss"],
        }
        if forward and "log_loss" in fw:
            doc["combiner"]["forward_chained_log_loss"] = fw["log_loss"]
        return doc

    # -----------------------------------------------------------------------------------------
    # saving (see culpa.model.io: these are its hooks)

    def _extra_meta(self) -> dict:
        if not self._is_pooled():
            return {"estimator": "PooledAttributor", "pool": None}
        if not all(isinstance(m, TreeMember) for m in self.members_):
            raise ParameterError("only the default member ('trees') can be saved",
                                 field="member")
        return {"estimator": "PooledAttributor",
                "pool": {"weights": self.pool_weights_.tolist(),
                         "forward_weights": self._forward_weights().tolist(),
                         "last_day": getattr(self, "pool_last_day_", None),
                         "calibration": getattr(self, "pool_calibration_", None),
                         "oof": self.pool_oof_, "features": self.tree_features_.meta(),
                         "n_members": len(self.members_)}}

    def _extra_arrays(self) -> dict:
        if not self._is_pooled():
            return {}
        d = {"pool_tree_class": self.tree_class_of_actor_.astype(np.int64),
             "pool_latent": self._pool_latent}
        for i, m in enumerate(self.members_):
            d.update(m.to_arrays(f"pool_m{i}_"))
        return d

    def _load_extra(self, meta: dict, arrays) -> None:
        p = meta.get("pool")
        if not p:
            return
        self.pool_weights_ = _by_agreement(p["weights"])
        # a file from before the two calibrations: one set of weights for every query
        self.pool_forward_weights_ = _by_agreement(p.get("forward_weights", p["weights"]))
        self.pool_last_day_ = p.get("last_day")
        self.pool_calibration_ = p.get("calibration")
        self.pool_oof_ = p["oof"]
        self.tree_features_ = TreeFeatures.from_meta(p["features"])
        self.tree_class_of_actor_ = np.asarray(arrays["pool_tree_class"], np.int32)
        self._pool_latent = np.asarray(arrays["pool_latent"], float)
        self.members_ = [TreeMember.from_arrays(arrays, f"pool_m{i}_")
                         for i in range(int(p["n_members"]))]


def _newcomers_apart(p: np.ndarray, A: int) -> tuple[np.ndarray, np.ndarray]:
    """(P over the ``A`` fitted actors renormalised, the newcomers' total) of rows ``p``."""
    known = p[:, :A]
    tot = known.sum(1, keepdims=True)
    return (np.where(tot > 0, known / np.where(tot > 0, tot, 1.0), 1.0 / A),
            1.0 - tot[:, 0])


def _newcomers_back(p_known: np.ndarray, ph: np.ndarray, A: int) -> np.ndarray:
    """P over the fitted actors (``p_known``) then the newcomers: the newcomers as in the Hawkes
    rows ``ph``, the fitted actors sharing the rest as ``p_known`` does."""
    if ph.shape[1] == A:
        return p_known
    new = ph[:, A:]
    return np.hstack([p_known * (1.0 - new.sum(1, keepdims=True)), new])


def _by_agreement(weights) -> np.ndarray:
    """Saved weights as (agree, disagree) x members: a file from before the split by
    agreement holds one set, which served every row."""
    w = np.asarray(weights, float)
    return np.vstack([w, w]) if w.ndim == 1 else w


def _weights_doc(weights: np.ndarray) -> dict:
    """{"agree": {"hawkes": w, "trees": w}, "disagree": {...}} of (2 x members) weights."""
    return {side: {m: float(v) for m, v in zip(MEMBERS, row)}
            for side, row in zip(AGREEMENT, weights)}


def _agreement_doc(lp: AgreementPool) -> dict:
    """How an :class:`AgreementPool` split its rows, for ``pool_calibration_``."""
    return {"rows_agree": lp.rows_[0], "rows_disagree": lp.rows_[1],
            "split_by_agreement": bool(lp.split_)}


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1.0))))


def _ece(p: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of the top-1 probability (15 equal bins)."""
    conf = p.max(1)
    correct = (p.argmax(1) == y).astype(float)
    idx = np.clip(np.digitize(conf, np.linspace(0, 1, n_bins + 1)[1:-1], right=True), 0,
                  n_bins - 1)
    cnt = np.bincount(idx, minlength=n_bins)
    gap = np.abs(np.bincount(idx, conf - correct, minlength=n_bins))
    return float(gap.sum() / max(len(y), 1))


def _utc(time) -> np.datetime64:
    """A query's time as naive UTC datetime64 (as ``pd.to_datetime`` of a frame's column)."""
    from culpa.model.frames import plain_instant

    if isinstance(time, np.datetime64) and np.datetime_data(time.dtype)[0] in "s m h D".split():
        return time.astype("datetime64[s]")
    plain = plain_instant(time)  # no pandas for a plain ISO time
    if plain is not None:
        return plain
    ts = pd.Timestamp(time)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_datetime64()
