"""Attribution backtest: hide some known labels, let the model infer them, score it and baselines.

Events before ``since`` keep their labels. Of the labelled events on or after it, a random
``mask_fraction`` (seeded) lose their labels; the model is fitted on everything with those labels
latent and scored on them. Actors with fewer than ``min_events`` labelled events in the store are
scored together as one class, "other". The baselines see exactly the labels the model sees.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from culpa.errors import AnalysisError, InputError
from culpa.evaluate import baselines, metrics
from culpa.events.schema import is_labelled
from culpa.model.combiner import GeometricCombiner
from culpa.model.geo import LocalProjection

OTHER = "other"


@dataclass
class BacktestResult:
    n_scored: int
    classes: list[str]
    model: dict[str, float]
    baselines: dict[str, dict[str, float]]
    fit_seconds: float
    since: str
    mask_fraction: float
    seed: int
    proba: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    y: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, int))
    #: The Hawkes model and the trees combined (geometric mean 0.5/0.5, nothing fitted).
    combined: dict[str, float] = field(default_factory=dict)
    #: The Hawkes core of the model alone (the model itself when it is one).
    hawkes: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"n_scored": self.n_scored, "model": self.model, "hawkes": self.hawkes,
                "baselines": self.baselines, "combined": self.combined,
                "fit_seconds": round(self.fit_seconds, 3), "classes": self.classes,
                "since": self.since, "mask_fraction": self.mask_fraction, "seed": self.seed,
                "mode": "masked"}


def scoring_classes(events: pd.DataFrame, min_events: int) -> list[str]:
    labelled = events[is_labelled(events)]
    counts = labelled["actor"].value_counts()
    big = sorted(counts[counts >= min_events].index)
    return big + [OTHER]


def collapse(proba: np.ndarray, actors: list[str], classes: list[str],
             unseen: float = 0.0) -> np.ndarray:
    """Model probabilities over its actors -> over the scoring classes (small actors summed).

    ``unseen``: the model's probability that the actor is none of its ``actors`` (e.g.
    ``unseen_actor_proba_``), shared equally by the classes none of its actors falls in; the
    rest is the model's own. Where its actors cover every class, it changes nothing."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((proba.shape[0], len(classes)))
    for j, actor in enumerate(actors):
        out[:, index.get(actor, index[OTHER])] += proba[:, j]
    out /= out.sum(axis=1, keepdims=True)
    covered = {index.get(a, index[OTHER]) for a in actors}
    uncovered = [i for i in range(len(classes)) if i not in covered]
    if unseen > 0 and uncovered:
        out *= 1.0 - unseen
        out[:, uncovered] += unseen / len(uncovered)
    return out


def unseen_proba(model) -> float:
    """The model's ``unseen_actor_proba_`` (0 for a model without one)."""
    return float(getattr(model, "unseen_actor_proba_", 0.0))


@dataclass
class Masking:
    """Which events a backtest hides: ``events`` sorted by time, ``labelled`` (known actor),
    ``masked`` (positions whose labels are hidden), and each event's scoring class ``y`` among
    ``classes``."""

    events: pd.DataFrame
    labelled: np.ndarray
    masked: np.ndarray
    classes: list[str]
    y: np.ndarray

    @property
    def latent(self) -> np.ndarray:
        """The masked events as a boolean mask over ``events``."""
        out = np.zeros(len(self.events), dtype=bool)
        out[self.masked] = True
        return out


def mask_labels(events: pd.DataFrame, since: str, mask_fraction: float = 0.2, seed: int = 0,
                min_events: int = 30) -> Masking:
    """Hide the labels of a seeded random ``mask_fraction`` of labelled events on or after
    ``since``; actors with under ``min_events`` labelled events score as one class, "other"."""
    if not 0 < mask_fraction < 1:
        raise InputError(f"must be between 0 and 1, got {mask_fraction}", field="mask_fraction")
    events = events.sort_values(["time_start", "id"]).reset_index(drop=True)
    since_ts = pd.Timestamp(since)
    labelled = is_labelled(events)
    candidates = np.flatnonzero(labelled & (events["time_start"] >= since_ts).to_numpy())
    n_mask = int(round(mask_fraction * len(candidates)))
    if n_mask < 10:
        raise AnalysisError(f"only {len(candidates)} labelled events on or after {since}: "
                            "too few to score")
    rng = np.random.default_rng(seed)
    masked = np.sort(rng.choice(candidates, size=n_mask, replace=False))
    classes = scoring_classes(events, min_events)
    cls_index = {c: i for i, c in enumerate(classes)}
    y_all = events["actor"].map(lambda a: cls_index.get(a, cls_index[OTHER])).to_numpy()
    return Masking(events, labelled, masked, classes, y_all)


def baseline_proba(m: Masking, seed: int = 0) -> dict[str, np.ndarray]:
    """Each baseline's probabilities for the masked events, from the labels the model sees."""
    events = m.events
    train_mask = m.labelled.copy()
    train_mask[m.masked] = False
    train, test = events[train_mask], events.iloc[m.masked]
    y_train = m.y[train_mask]
    proj = LocalProjection.about(events["latitude"], events["longitude"])
    day0 = events["time_start"].min()

    def xy_t(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x, yy = proj.forward(frame["latitude"].to_numpy(), frame["longitude"].to_numpy())
        t = (frame["time_start"] - day0).dt.total_seconds().to_numpy() / 86400.0
        return np.column_stack([x, yy]), t

    (train_xy, train_t), (test_xy, test_t) = xy_t(train), xy_t(test)
    k = len(m.classes)
    return {
        "admin1_majority": baselines.admin1_majority(train, y_train, test, k),
        "knn": baselines.knn(train_xy, train_t, y_train, test_xy, test_t, k),
        "gbm": baselines.gbm(train, train_t, y_train, test, test_t, k, random_state=seed),
    }


def run_backtest(events: pd.DataFrame, since: str, mask_fraction: float = 0.2, seed: int = 0,
                 min_events: int = 30, model=None, progress=None) -> BacktestResult:
    """Mask, fit, score. ``model`` is an unfitted estimator (default: culpa's default model,
    :func:`culpa.model.default_attributor`). ``combined`` is the naive geometric mean of its
    Hawkes core and the ``gbm`` baseline; ``hawkes`` its Hawkes core alone."""
    from culpa.model import default_attributor

    m = mask_labels(events, since, mask_fraction, seed, min_events)
    fitted = model if model is not None else default_attributor()
    t0 = time.perf_counter()
    fitted.fit(m.events.assign(latent=m.latent))
    fit_seconds = time.perf_counter() - t0
    row_of = {eid: i for i, eid in enumerate(fitted.event_ids_)} \
        if hasattr(fitted, "event_ids_") else None
    rows = m.masked if row_of is None else np.array(
        [row_of[e] for e in m.events["id"].iloc[m.masked]])
    u = unseen_proba(fitted)
    p_model = collapse(fitted.label_proba_[rows], list(fitted.actors_), m.classes, u)
    p_hawkes = collapse(getattr(fitted, "hawkes_label_proba_", fitted.label_proba_)[rows],
                        list(fitted.actors_), m.classes, u)
    if progress:
        progress()
    y = m.y[m.masked]
    p_base = baseline_proba(m, seed)
    p_comb = GeometricCombiner().predict_proba([p_hawkes, p_base["gbm"]])
    return BacktestResult(
        n_scored=len(m.masked), classes=m.classes, model=metrics.score(p_model, y),
        baselines={name: metrics.score(p, y) for name, p in p_base.items()},
        fit_seconds=fit_seconds, since=str(pd.Timestamp(since).date()),
        mask_fraction=mask_fraction, seed=seed,
        proba={"model": p_model, "hawkes": p_hawkes, **p_base}, y=y,
        combined=metrics.score(p_comb, y), hawkes=metrics.score(p_hawkes, y))


def plot_reliability(result: BacktestResult, path) -> None:
    """Reliability diagram (15 bins) of the model and each baseline, written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 6.0), dpi=120)
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="perfectly calibrated")
    styles = {"model": ("#c0392b", "o", 2.5), "hawkes": ("#e67e22", "v", 1.2), "admin1_majority": ("#7f8c8d", "s", 1.2),
              "knn": ("#2980b9", "^", 1.2), "gbm": ("#27ae60", "D", 1.2)}
    for name, proba in result.proba.items():
        r = metrics.reliability(proba, result.y)
        used = r["count"] > 0
        color, marker, lw = styles.get(name, ("#333", "x", 1))
        ece = metrics.ece(proba, result.y)
        ax.plot(r["confidence"][used], r["accuracy"][used], marker=marker, color=color, lw=lw,
                label=f"{name} (ECE {ece:.3f})")
    ax.set_xlabel("predicted probability of the top actor")
    ax.set_ylabel("share of events where that actor was right")
    what = ("masked events" if getattr(result, "mask_fraction", None) is not None
            else f"events attributed forward, {result.since} to {result.until}")
    ax.set_title(f"Reliability: {result.n_scored} {what}" + (
        f" since {result.since}" if what == "masked events" else ""))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
