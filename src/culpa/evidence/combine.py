"""Combine a prior over hypotheses with evidence items, in log-odds.

    log posterior(h) = log prior(h) + Σ_counted items c_i(h)   (then normalised)

Each item's **contribution** is its discounted likelihood relative to its own mean::

    c_i(h) = log p'_i(h) - log mean_k p_i(k),   p' = grading.discount(p, weight)

so ``c_i(h) - c_i(k)`` is the item's log likelihood ratio of h against k (natural log), c = 0
everywhere for a non-diagnostic item, and ``exp(c_i(h))`` reads "E is this many times more likely
under h than on average over the hypotheses". (Any constant per item cancels on normalising;
the mean is the one the discount preserves, so w enters simply: ``exp(c) = 1 + w (p/mean - 1)``.)

**Dependence groups count once.** Items sharing a ``group`` (one origin reported several times)
are represented by their single most diagnostic member — the largest likelihood ratio between
any two hypotheses after discounting; ties go to the larger contribution vector, then the
smaller id. The rest of the group contributes nothing (``counted`` is False). Taking the
strongest rather than an average makes "a copy of an item added to its own group changes
nothing" hold exactly, and never lets repetition add strength; it is conservative when a group
holds genuinely different facts (put those in different groups).

Sums use ``math.fsum`` (exactly rounded), so the order of items changes nothing, bit for bit.
Undisclosed items are counted like any other; their total is also reported on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from culpa.errors import InputError
from culpa.evidence import grading
from culpa.evidence.case import EvidenceItem


@dataclass(frozen=True)
class ItemResult:
    id: str
    weight: float  # Admiralty weight (grading.py)
    log_lr: dict[str, float]  # what the item adds to each log posterior (0 if not counted)
    standalone_log_lr: dict[str, float]  # its contribution were it counted on its own
    counted: bool  # False: a more diagnostic item of its group stands for it
    group: str | None
    undisclosed: bool
    loo_posterior: dict[str, float]  # the posterior with this item left out

    def to_dict(self) -> dict:
        return {"id": self.id, "weight": self.weight, "log_lr": self.log_lr,
                "standalone_log_lr": self.standalone_log_lr, "counted": self.counted,
                "group": self.group, "undisclosed": self.undisclosed,
                "loo_posterior": self.loo_posterior}


@dataclass(frozen=True)
class Combination:
    prior: dict[str, float]
    posterior: dict[str, float]
    log_posterior: dict[str, float]  # normalised: exp() of it is ``posterior``
    leading: str
    items: tuple[ItemResult, ...]
    undisclosed_log_lr: dict[str, float]  # sum of the counted undisclosed items' log_lr

    def to_dict(self) -> dict:
        return {"leading": self.leading, "prior": self.prior, "posterior": self.posterior,
                "items": [it.to_dict() for it in self.items],
                "undisclosed_log_lr": self.undisclosed_log_lr}


def contribution(item: EvidenceItem, hypotheses: Sequence[str]) -> dict[str, float]:
    """``c(h) = log p'(h) - log mean p`` for each hypothesis (exactly 0 for equal likelihoods)."""
    p = item.p
    if set(p) != set(hypotheses):
        raise InputError(f"gives P(E | H) for {sorted(p)}, but the hypotheses are "
                         f"{sorted(hypotheses)}", path=f"evidence '{item.id}'")
    values = [p[h] for h in hypotheses]
    if max(values) == min(values):
        return {h: 0.0 for h in hypotheses}
    mean = sum(values) / len(values)
    d = grading.discount(p, item.weight)
    return {h: math.log(d[h]) - math.log(mean) for h in hypotheses}


def counted_items(items: Sequence[EvidenceItem], hypotheses: Sequence[str]) -> list[int]:
    """Indices of the items that count: every ungrouped item, one per dependence group."""
    groups: dict[str, list[int]] = {}
    chosen: list[int] = []
    for i, item in enumerate(items):
        if item.group is None:
            chosen.append(i)
        else:
            groups.setdefault(item.group, []).append(i)
    for members in groups.values():
        def strength(i: int) -> tuple:
            c = contribution(items[i], hypotheses)
            v = [c[h] for h in hypotheses]
            return (max(v) - min(v), tuple(v))
        # max() keeps the first of equal keys, so sorting by id first breaks exact ties by id.
        chosen.append(max(sorted(members, key=lambda i: items[i].id), key=strength))
    return sorted(chosen)


def log_posterior(prior: Mapping[str, float], items: Sequence[EvidenceItem]) -> dict[str, float]:
    """Normalised log posterior (natural log)."""
    hyps = list(prior)
    for h, p in prior.items():
        if not (p > 0 and math.isfinite(p)):
            raise InputError(f"{p!r} is not a positive probability", path=f"prior.{h}")
    contribs = [contribution(items[i], hyps) for i in counted_items(items, hyps)]
    logs = {h: math.log(prior[h]) + math.fsum(c[h] for c in contribs) for h in hyps}
    top = max(logs.values())
    log_z = top + math.log(math.fsum(math.exp(v - top) for v in logs.values()))
    return {h: v - log_z for h, v in logs.items()}


def posterior(prior: Mapping[str, float], items: Sequence[EvidenceItem]) -> dict[str, float]:
    return {h: math.exp(v) for h, v in log_posterior(prior, items).items()}


def leading(post: Mapping[str, float]) -> str:
    """The hypothesis with the highest posterior; an exact tie goes to the one listed first."""
    return max(post, key=post.__getitem__)


def combine(prior: Mapping[str, float], items: Sequence[EvidenceItem]) -> Combination:
    """Posterior, leading hypothesis and every item's share in it (see the module docstring)."""
    hyps = list(prior)
    items = list(items)
    total = math.fsum(prior.values())
    prior = {h: p / total for h, p in prior.items()}
    lp = log_posterior(prior, items)
    counted = set(counted_items(items, hyps))
    results = []
    for i, item in enumerate(items):
        own = contribution(item, hyps)
        results.append(ItemResult(
            id=item.id, weight=item.weight,
            log_lr=own if i in counted else {h: 0.0 for h in hyps},
            standalone_log_lr=own, counted=i in counted, group=item.group,
            undisclosed=item.undisclosed,
            loo_posterior=posterior(prior, items[:i] + items[i + 1:]),
        ))
    undisclosed = [r.log_lr for r in results if r.undisclosed]
    post = {h: math.exp(v) for h, v in lp.items()}
    return Combination(
        prior=prior, posterior=post, log_posterior=lp, leading=leading(lp), items=tuple(results),
        undisclosed_log_lr={h: math.fsum(c[h] for c in undisclosed) for h in hyps},
    )
