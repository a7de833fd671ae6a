"""Forward attribution backtest: the live situation, step by step. An attack happens; the history
before it is known; who did it?

The period ``[since, until)`` is cut into steps of ``step_days`` (a week by default). The
labelled events of each step ``[S, S + step)`` are attributed by a model that saw only what was
known at ``S``, and scored with the masked backtest's metrics, baselines and classes
(:mod:`culpa.evaluate.backtest`):

- **parameters**: the model is refitted every ``refit_every`` steps, at the first step ``S = R``
  of each block, on every event dated before ``R`` (their labels known, the unlabelled ones
  latent as in any fit); when the estimator offers a warm start (``fit(..., warm_start=prev)``)
  the refit starts from the previous fit;
- **history**: at every step the fitted model is conditioned on all events before ``S``
  (:meth:`~culpa.model.hawkes.HawkesAttributor.with_history`): the events between ``R`` and ``S``
  excite as fitted ones do, with their labels known, so nothing that happened before the step is
  ignored, and only the parameters, backgrounds and marks are up to ``refit_every - 1`` steps old;
- **the step's own events** are added to the history with their labels hidden (``latent``, as
  the masked mode's latent events): each gets its label probabilities from the history before
  ``S``, and an event of the step is attributed from everything strictly before it (the events
  of the step before it count with those probabilities). No label of the step or after it, and
  no event after the one attributed, reaches its probabilities.

Baselines, on the same events: ``admin1_majority`` and ``knn`` see every labelled event before
``S`` (they are refitted at every step: they cost nothing); ``gbm`` is refitted with the model's
parameters, every ``refit_every`` steps, on the labelled events before ``R`` (a fit of the trees
costs about as much as a model fit). ``combined`` is the geometric mean of the model's Hawkes
core and the trees, ``hawkes`` the Hawkes core alone, as in the masked mode.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from culpa.errors import InputError
from culpa.evaluate import baselines, metrics
from culpa.evaluate.backtest import OTHER, collapse, scoring_classes, unseen_proba
from culpa.events.schema import is_labelled
from culpa.model.combiner import GeometricCombiner
from culpa.model.geo import LocalProjection

#: Steps between refits of the parameters (and of the trees) by default: with weekly steps, a
#: quarter (13 weeks). The history is brought up to every step in between, so what ages is
#: only the parameters, grounds and marks; a fit of the default model on the Syria extract
#: takes minutes on a loaded 2-core machine, so a year of weekly steps is 5 fits.
REFIT_EVERY = 13

SCHEME = ("refit every {refit_every} steps on all events before the step (warm-started when "
          "the estimator allows); at every step the model is conditioned on all events before "
          "it (labels known); the step's events are added with their labels hidden and each is "
          "attributed from the events strictly before it; admin1_majority and knn see every "
          "label before the step, gbm is refitted with the model on the labels before the refit")


def default_model_factory(**params):
    """culpa's default attributor, unfitted (what ``culpa fit`` fits): ``culpa.model``'s
    ``DefaultAttributor`` where it names one, else the Hawkes model."""
    import culpa.model

    return getattr(culpa.model, "DefaultAttributor", culpa.model.HawkesAttributor)(**params)


@dataclass
class ForwardBacktestResult:
    n_scored: int
    classes: list[str]
    model: dict[str, float]
    baselines: dict[str, dict[str, float]]
    combined: dict[str, float]
    fit_seconds: float
    since: str
    until: str
    #: The Hawkes core of the model alone (the model itself when it is one).
    hawkes: dict[str, float]
    step_days: float
    refit_every: int
    seed: int
    n_steps: int
    n_refits: int
    run_seconds: float
    steps: list[dict] = field(default_factory=list)
    warm_start: bool = False
    proba: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    y: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, int))
    ids: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, object))
    step_of: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, int))

    @property
    def mask_fraction(self) -> None:
        return None

    def to_dict(self) -> dict:
        return {"n_scored": self.n_scored, "model": self.model, "hawkes": self.hawkes,
                "baselines": self.baselines,
                "combined": self.combined, "fit_seconds": round(self.fit_seconds, 3),
                "classes": self.classes, "since": self.since, "mask_fraction": None,
                "seed": self.seed, "mode": "forward", "until": self.until,
                "step_days": self.step_days, "n_steps": self.n_steps,
                "refit_every": self.refit_every, "n_refits": self.n_refits,
                "warm_start": self.warm_start,
                "scheme": SCHEME.format(refit_every=self.refit_every),
                "run_seconds": round(self.run_seconds, 3), "steps": self.steps}


def _warm_fit(model, train: pd.DataFrame, previous):
    """``model.fit(train)``, from ``previous`` when the estimator's fit takes ``warm_start``."""
    if previous is not None and "warm_start" in inspect.signature(model.fit).parameters:
        return model.fit(train, warm_start=previous), True
    return model.fit(train), False


def _xy_t(frame: pd.DataFrame, proj: LocalProjection, day0) -> tuple[np.ndarray, np.ndarray]:
    x, y = proj.forward(frame["latitude"].to_numpy(float), frame["longitude"].to_numpy(float))
    t = (frame["time_start"] - day0).dt.total_seconds().to_numpy() / 86400.0
    return np.column_stack([x, y]), t


def step_starts(since: pd.Timestamp, until: pd.Timestamp, step_days: float) -> list[pd.Timestamp]:
    """The first instant of each step in ``[since, until)``: full steps, a remainder shorter
    than a step joining the last one (a period shorter than one step is one step)."""
    out, S, step = [], since, pd.Timedelta(days=float(step_days))
    while S + step <= until:
        out.append(S)
        S = S + step
    return out or [since]


def run_forward_backtest(events: pd.DataFrame, since, until=None, step_days: float = 7.0,
                         refit_every: int = REFIT_EVERY, seed: int = 0, min_events: int = 30,
                         model_factory: Callable[[], object] | None = None,
                         progress: Callable[[int, int, str], None] | None = None
                         ) -> ForwardBacktestResult:
    """Attribute each step's labelled events from what was known at the step's start; score
    the model and the baselines (see the module's docstring). ``model_factory()`` makes an
    unfitted estimator (default: :func:`default_model_factory`); it must offer ``fit``,
    ``actors_`` and ``with_history(events).predict_proba(queries)``. ``progress`` is called as
    ``progress(n_done, n_total, description)`` after each step."""
    tick = time.perf_counter()
    if not (isinstance(step_days, (int, float)) and np.isfinite(step_days) and step_days > 0):
        raise InputError(f"must be a positive number of days, got {step_days!r}",
                         field="step_days")
    if not (isinstance(refit_every, (int, np.integer)) and not isinstance(refit_every, bool)
            and refit_every >= 1):
        raise InputError(f"must be a whole number >= 1, got {refit_every!r}", field="refit_every")
    factory = model_factory or default_model_factory
    ev = events[events["latitude"].notna() & events["longitude"].notna()].copy()
    ev["time_start"] = pd.to_datetime(ev["time_start"])
    ev = ev.sort_values(["time_start", "id"], kind="stable").reset_index(drop=True)
    since = pd.Timestamp(since)
    last = ev["time_start"].max().floor("D") + pd.Timedelta(days=1) if len(ev) else since
    until = pd.Timestamp(until) if until is not None else last
    if until <= since:
        raise InputError(f"must be after since ({since.date()}), got {until.date()}",
                         field="until")
    labelled = is_labelled(ev)
    ts = ev["time_start"]
    scored_all = labelled & (ts >= since).to_numpy() & (ts < until).to_numpy()
    if not scored_all.any():
        raise InputError(f"no labelled events between {since.date()} and {until.date()} to "
                         "score", field="since")
    if not (labelled & (ts < since).to_numpy()).any():
        raise InputError(f"no labelled events before {since.date()} to learn from",
                         field="since")
    classes = scoring_classes(ev, min_events)
    cls_index = {c: i for i, c in enumerate(classes)}
    y_all = ev["actor"].map(lambda a: cls_index.get(a, cls_index[OTHER])).to_numpy()
    proj = LocalProjection.about(ev["latitude"], ev["longitude"])
    day0 = ev["time_start"].min()
    xy_all, t_all = _xy_t(ev, proj, day0)
    k = len(classes)
    starts = step_starts(since, until, step_days)

    model = previous = None
    gbm_clf = None
    refit_at = None
    fit_seconds, n_refits, warm = 0.0, 0, False
    parts: dict[str, list[np.ndarray]] = {n: [] for n in
                                          ("model", "hawkes", "admin1_majority", "knn", "gbm")}
    ys, ids, step_of, steps = [], [], [], []
    for i, S in enumerate(starts):
        E = starts[i + 1] if i + 1 < len(starts) else until
        before = (ts < S).to_numpy()
        in_step = (ts >= S).to_numpy() & (ts < E).to_numpy()
        if i % refit_every == 0:
            t_fit = time.perf_counter()
            model, used_warm = _warm_fit(factory(), ev[before], previous)
            previous, refit_at = model, S
            warm |= used_warm
            gbm_clf = _fit_gbm(ev[before & labelled], t_all[before & labelled],
                               y_all[before & labelled], ev, k, seed)
            fit_seconds += time.perf_counter() - t_fit
            n_refits += 1
        score = np.flatnonzero(in_step & labelled)
        info = {"start": str(S.date()), "end": str(E.date()), "n_scored": int(len(score)),
                "refit": bool(i % refit_every == 0), "model_fitted_before": str(refit_at.date())}
        if len(score):
            since_fit = (ts >= refit_at).to_numpy() & before
            added = pd.concat([ev[since_fit], ev[in_step].assign(latent=True)])
            cond = model.with_history(added) if len(added) else model
            test = ev.iloc[score]
            members = cond.member_proba(test) if hasattr(cond, "member_proba") else {}
            p_raw = cond.predict_proba(test)
            u = unseen_proba(cond)
            p_model = collapse(p_raw, list(cond.actors_), classes, u)
            parts["hawkes"].append(collapse(members.get("hawkes", p_raw), list(cond.actors_),
                                            classes, u))
            train = before & labelled
            y_train = y_all[train]
            parts["model"].append(p_model)
            parts["admin1_majority"].append(
                baselines.admin1_majority(ev[train], y_train, test, k))
            parts["knn"].append(baselines.knn(xy_all[train], t_all[train], y_train,
                                              xy_all[score], t_all[score], k))
            parts["gbm"].append(_predict_gbm(gbm_clf, test, t_all[score], k))
            ys.append(y_all[score])
            ids.append(ev["id"].to_numpy()[score])
            step_of.append(np.full(len(score), i))
            info["n_history"] = int(before.sum())
        steps.append(info)
        if progress is not None:
            progress(i + 1, len(starts), f"{S.date()} ({n_refits} fits)")

    y = np.concatenate(ys)
    proba = {n: np.concatenate(v) for n, v in parts.items()}
    p_comb = GeometricCombiner().predict_proba([proba["hawkes"], proba["gbm"]])
    return ForwardBacktestResult(
        n_scored=len(y), classes=classes, model=metrics.score(proba["model"], y),
        baselines={n: metrics.score(proba[n], y) for n in ("admin1_majority", "knn", "gbm")},
        combined=metrics.score(p_comb, y), hawkes=metrics.score(proba["hawkes"], y),
        fit_seconds=fit_seconds, since=str(since.date()),
        until=str(until.date()), step_days=float(step_days), refit_every=int(refit_every),
        seed=seed, n_steps=len(starts), n_refits=n_refits,
        run_seconds=time.perf_counter() - tick, steps=steps, warm_start=warm, proba=proba, y=y,
        ids=np.concatenate(ids), step_of=np.concatenate(step_of))


def _fit_gbm(train: pd.DataFrame, train_t: np.ndarray, y_train: np.ndarray,
             every: pd.DataFrame, n_classes: int, seed: int):
    """The trees of :func:`culpa.evaluate.baselines.gbm`, fitted once for several steps; the
    event-type categories are those of all events (a category is a code, not a label)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    cats = sorted(set(every["event_type"].fillna("?")))
    clf = HistGradientBoostingClassifier(**baselines.GBM_PARAMS, random_state=seed,
                                         categorical_features=[5])
    # early stopping holds out a stratified share: a class with one training event cannot be
    # split, so such classes (rare before the refit, e.g. an actor that appears later) are left
    # out of the trees' training (they get the floor probability)
    counts = np.bincount(y_train, minlength=n_classes)
    keep = counts[y_train] >= 2
    train, train_t, y_train = train[keep], train_t[keep], y_train[keep]
    if len(np.unique(y_train)) < 2:
        return (None, cats, int(y_train[0]) if len(y_train) else 0)
    clf.fit(baselines.gbm_features(train, train_t, cats), y_train)
    return (clf, cats, None)


def _predict_gbm(fitted, test: pd.DataFrame, test_t: np.ndarray, n_classes: int) -> np.ndarray:
    clf, cats, only = fitted
    proba = np.full((len(test), n_classes), 1e-6)
    if clf is None:
        proba[:, only] = 1.0
    else:
        proba[:, clf.classes_] = clf.predict_proba(baselines.gbm_features(test, test_t, cats))
    return proba / proba.sum(axis=1, keepdims=True)
