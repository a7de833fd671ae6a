"""Analysis of Competing Hypotheses (ACH): ratings as likelihoods, and Heuer's inconsistency score.

An analyst may rate an item against each hypothesis instead of giving P(E | H):
CC (very consistent), C (consistent), N (neutral / not applicable), I (inconsistent),
II (very inconsistent). ``RATINGS`` turns each rating into a likelihood.

Why these numbers: N is one fixed value (0.5), so an item rated N everywhere — or rated the same
everywhere — is non-diagnostic. Following Heuer, consistency is weak evidence (most facts fit
several explanations) and inconsistency is what discriminates: C is only 1.4x as likely as N,
CC 1.8x, while I is half as likely as N and II a fifth. Even II is not zero, so a rating never
rules a hypothesis out on its own (deception and error remain possible).

The inconsistency score is Heuer's: per hypothesis, the sum over items of the item's weight
times 1 for I and 2 for II (consistent ratings do not count). Items given as likelihoods are
first mapped to ratings by ``rating_from_ratio`` — the ratio of P(E | h) to the item's mean
over hypotheses, cut at the geometric midpoints of the table's own ratios to N — so both kinds
of item are scored alike. The weight is the item's Admiralty weight (grading.py); the caller
passes only the items that count (one per dependence group), as combine.py decides.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

#: ACH rating -> P(E | H). The one table for ratings.
RATINGS: dict[str, float] = {"CC": 0.9, "C": 0.7, "N": 0.5, "I": 0.25, "II": 0.1}

#: How much each rating counts toward a hypothesis' inconsistency score (Heuer).
INCONSISTENCY: dict[str, int] = {"CC": 0, "C": 0, "N": 0, "I": 1, "II": 2}

# Ratio-to-mean cut points, from the table: the geometric midpoints between neighbouring ratings'
# ratios to N (CC/N = 1.8, C/N = 1.4, 1, I/N = 0.5, II/N = 0.2), strongest rating first.
_ORDER = ["CC", "C", "N", "I", "II"]
_CUTS = [math.sqrt(RATINGS[a] * RATINGS[b]) / RATINGS["N"] for a, b in zip(_ORDER, _ORDER[1:])]


def likelihoods_from_ratings(ratings: Mapping[str, str]) -> dict[str, float]:
    """``{h: 'I'}`` -> ``{h: 0.25}``."""
    return {h: RATINGS[r] for h, r in ratings.items()}


def rating_from_ratio(ratio: float) -> str:
    """Rating for P(E | h) / mean_k P(E | k): >=1.59 CC, >=1.18 C, >=0.71 N, >=0.32 I, else II."""
    for rating, cut in zip(_ORDER, _CUTS):
        if ratio >= cut:
            return rating
    return "II"


def ratings_from_likelihoods(likelihood: Mapping[str, float]) -> dict[str, str]:
    """Map an item's likelihoods to ratings by their ratio to the item's mean over hypotheses."""
    values = list(likelihood.values())
    if max(values) == min(values):
        return {h: "N" for h in likelihood}
    mean = sum(values) / len(values)
    return {h: rating_from_ratio(p / mean) for h, p in likelihood.items()}


def item_ratings(item) -> dict[str, str]:
    """An EvidenceItem's ratings: as given, else derived from its likelihoods."""
    if item.rating is not None:
        return dict(item.rating)
    return ratings_from_likelihoods(item.likelihood)


def inconsistency_scores(items: Iterable, hypotheses: Iterable[str]) -> dict[str, float]:
    """Heuer's weighted inconsistency score per hypothesis (lower = fits the evidence better).

    ``items`` are EvidenceItems (anything with ``rating``, ``likelihood`` and ``weight``).
    """
    terms: dict[str, list[float]] = {h: [] for h in hypotheses}
    for item in items:
        ratings = item_ratings(item)
        for h, t in terms.items():
            t.append(item.weight * INCONSISTENCY[ratings[h]])
    # fsum is exactly rounded, so the score does not depend on the order of the items.
    return {h: math.fsum(t) for h, t in terms.items()}
