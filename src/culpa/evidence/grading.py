"""Admiralty grades and how they discount an evidence item.

An item's source is graded for *reliability* (A–F) and the information itself for
*credibility* (1–6), as in the NATO/Admiralty system. The grade becomes one number, the
item's **weight** ``w = RELIABILITY[r] * CREDIBILITY[c]`` in [0, 1], read from the single table
below. Nothing else in culpa interprets a grade.

Reading of the table
--------------------
* A/1 (completely reliable / confirmed) keep the item at full strength.
* Each step down the ordinal scale removes 0.2, a simple, even ladder.
* E (unreliable) and 5 (improbable) are the lowest, 0.15: such a report tells us little, but not
  nothing — grading a source E is itself a judgement, so it is not thrown away altogether.
* F and 6 ("cannot be judged") are 0.3: without a track record the report is neither trusted
  like D ("not usually reliable", 0.4) nor written off like E. So by weight the order is
  A > B > C > D > F > E (and 1 > 2 > 3 > 4 > 6 > 5); "less reliable" below means lower weight.

How a weight discounts an item
------------------------------
We use a **mixture toward the non-diagnostic average**::

    p'(h) = w * p(h) + (1 - w) * mean_k p(k)

Reading: with probability ``w`` the report is sound and arrives as P(E | h) says; otherwise it
is noise (error, rumour, deception) that would have reached us whoever did it, at the item's
average rate. This is the classic reliability model of testimony (Schum; Bovens & Hartmann)
with the noise rate set so that discounting never changes the item's mean likelihood.

Why the mixture rather than tempering (``p'(h) ∝ p(h)**w``): the mixture bounds what a weak
source can do — however small the likelihood it states for a hypothesis, the discounted value
never falls below ``(1 - w) * mean``, so one dubious report can never rule a hypothesis out.
Tempering lets a weight-0.15 report that gives 1e-12 still move the odds by a factor of ~60.

Properties (tested): w = 1 leaves p unchanged; w = 0, or equal likelihoods, make the item
non-diagnostic; for any two hypotheses the ratio p'(h1)/p'(h2) is a Möbius function of w that
equals 1 at w = 0 and moves monotonically toward p(h1)/p(h2), so a lower weight never moves the
odds more than a higher one.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Source reliability -> (meaning, factor). The one table that turns grades into numbers.
RELIABILITY: dict[str, tuple[str, float]] = {
    "A": ("completely reliable", 1.0),
    "B": ("usually reliable", 0.8),
    "C": ("fairly reliable", 0.6),
    "D": ("not usually reliable", 0.4),
    "E": ("unreliable", 0.15),
    "F": ("reliability cannot be judged", 0.3),
}

#: Information credibility -> (meaning, factor).
CREDIBILITY: dict[int, tuple[str, float]] = {
    1: ("confirmed by other sources", 1.0),
    2: ("probably true", 0.8),
    3: ("possibly true", 0.6),
    4: ("doubtful", 0.4),
    5: ("improbable", 0.15),
    6: ("truth cannot be judged", 0.3),
}


def weight(reliability: str, credibility: int) -> float:
    """The item's weight in [0, 1]: reliability factor times credibility factor."""
    return RELIABILITY[reliability][1] * CREDIBILITY[credibility][1]


def describe(reliability: str, credibility: int) -> str:
    """E.g. ``'B2 (usually reliable, probably true)'``."""
    return (f"{reliability}{credibility} ({RELIABILITY[reliability][0]}, "
            f"{CREDIBILITY[credibility][0]})")


def discount(likelihood: Mapping[str, float], w: float) -> dict[str, float]:
    """Discounted likelihoods ``p'(h) = w p(h) + (1 - w) mean(p)``; keeps the mean unchanged."""
    values = list(likelihood.values())
    if max(values) == min(values):
        # Non-diagnostic already; return it untouched so it is recognised exactly downstream.
        return dict(likelihood)
    mean = sum(values) / len(values)
    return {h: w * p + (1.0 - w) * mean for h, p in likelihood.items()}
