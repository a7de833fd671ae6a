"""Break-even: how strong would one more piece of evidence have to be to change the answer?

For a hypothesis H that is not leading, imagine ONE more fully reliable item (grade A1, so no
discount) that is x times more likely under H than under every other hypothesis alike. Its
effect multiplies H's posterior odds against each rival by x, so H leads (beats *all* rivals,
not just the current leader) exactly when

    x > max_{k != H} post(k) / post(H)        -- the break-even factor.

With H not leading, that maximum is the leader's posterior, so the factor is
post(leader) / post(H), the likelihood ratio P(E | H) / P(E | leader) the item needs.

Computed twice: with every item, and without the undisclosed ones. The second answers "how
strong would the evidence nobody has seen have to be for H to lead?", which can be set beside
the strength its graders claim for it (``undisclosed_log_lr``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence

from culpa.evidence.case import EvidenceItem
from culpa.evidence.combine import Combination, combine, leading

#: Factors too large for a float are reported as the largest float (JSON has no infinity).
MAX_FACTOR = sys.float_info.max


def break_even(log_posterior: Mapping[str, float]) -> dict[str, float | None]:
    """Break-even factor per hypothesis from a (log) posterior; None for the leading one.

    Takes log posteriors so that hypotheses whose probability underflows to 0 still get a figure.
    """
    lead = leading(log_posterior)
    out: dict[str, float | None] = {}
    for h, v in log_posterior.items():
        if h == lead:
            out[h] = None
            continue
        gap = max(w for k, w in log_posterior.items() if k != h) - v
        out[h] = MAX_FACTOR if gap >= math.log(MAX_FACTOR) else math.exp(gap)
    return out


def without_undisclosed(prior: Mapping[str, float], items: Sequence[EvidenceItem]) -> Combination:
    return combine(prior, [it for it in items if not it.undisclosed])


def break_even_table(full: Combination, disclosed: Combination) -> dict[str, dict]:
    """``{h: {"with_undisclosed": x, "without_undisclosed": y}}``; None means already leading."""
    with_u, without_u = break_even(full.log_posterior), break_even(disclosed.log_posterior)
    return {h: {"with_undisclosed": with_u[h], "without_undisclosed": without_u[h]}
            for h in full.log_posterior}


def times(x: float) -> str:
    """A factor in words-friendly form: 2.3, 14, 1,200, 3.5e+07."""
    if x < 9.95:
        return f"{x:.1f}"
    if x < 1e6:
        return f"{x:,.0f}"
    return f"{x:.2g}"


def sentences(full: Combination, disclosed: Combination, has_undisclosed: bool) -> list[str]:
    """Plain-words reading of the break-even figures."""
    lead = full.leading
    out = [f"With all the evidence, {lead} is the leading explanation "
           f"(posterior {full.posterior[lead]:.2f})."]
    for h, x in break_even(full.log_posterior).items():
        if x is not None:
            out.append(f"One more fully reliable item would have to be {times(x)} times more "
                       f"likely if {h} did it than if {lead} did for {h} to become the leading "
                       f"explanation.")
    if not has_undisclosed:
        return out
    lead_d = disclosed.leading
    out.append(f"Without the undisclosed evidence, {lead_d} is the leading explanation "
               f"(posterior {disclosed.posterior[lead_d]:.2f}).")
    claimed = full.undisclosed_log_lr
    for h, x in break_even(disclosed.log_posterior).items():
        if x is None:
            continue
        out.append(f"The undisclosed evidence would have to be {times(x)} times more likely if "
                   f"{h} did it than if {lead_d} did for {h} to become the leading explanation; "
                   f"{_as_graded(claimed[h] - claimed[lead_d], h, lead_d)}.")
    return out


def _as_graded(gap: float, h: str, rival: str) -> str:
    """What the undisclosed items, as graded, say about h against rival (log ratio ``gap``)."""
    factor = math.exp(min(abs(gap), math.log(MAX_FACTOR)))
    if times(factor) == "1.0":
        return f"as graded, it does not tell {h} from {rival}"
    a, b = (h, rival) if gap > 0 else (rival, h)
    return f"as graded, it favours {a} over {b} by a factor of {times(factor)}"
