"""One call from a validated case and a prior to everything the faces show: ``analyse``.

It runs combine (posterior, per-item shares), sensitivity (break-even with and without the
undisclosed items, sentences) and ach (inconsistency scores), and gathers them in
``CaseResult``, whose ``to_dict()`` is the ``culpa case --json`` document (less nearby_events,
which the command adds from the store). Every float in it is finite.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from culpa.evidence import ach
from culpa.evidence.case import Case, hypothesis_priors
from culpa.evidence.combine import Combination, combine, counted_items
from culpa.evidence.sensitivity import break_even_table, sentences, without_undisclosed


@dataclass(frozen=True)
class CaseResult:
    title: str
    full: Combination  # every item
    disclosed: Combination  # the undisclosed items left out
    break_even: dict[str, dict]
    ach_inconsistency: dict[str, float]
    sentences: list[str]

    @property
    def leading(self) -> str:
        return self.full.leading

    @property
    def posterior(self) -> dict[str, float]:
        return self.full.posterior

    def to_dict(self) -> dict:
        d = self.full.to_dict()
        return {
            "title": self.title,
            "leading": d["leading"],
            "prior": d["prior"],
            "posterior": d["posterior"],
            "items": d["items"],
            "break_even": self.break_even,
            "ach_inconsistency": self.ach_inconsistency,
            "undisclosed_log_lr": d["undisclosed_log_lr"],
            "without_undisclosed": {"leading": self.disclosed.leading,
                                    "posterior": self.disclosed.posterior},
            "sentences": self.sentences,
        }


def analyse(case: Case, prior: Mapping[str, float] | None = None) -> CaseResult:
    """Analyse a case; ``prior`` defaults to ``hypothesis_priors(case)`` (no model: equal share)."""
    prior = dict(prior) if prior is not None else hypothesis_priors(case)
    items = list(case.evidence)
    full = combine(prior, items)
    disclosed = without_undisclosed(prior, items)
    counted = [items[i] for i in counted_items(items, list(prior))]
    return CaseResult(
        title=case.title,
        full=full,
        disclosed=disclosed,
        break_even=break_even_table(full, disclosed),
        ach_inconsistency=ach.inconsistency_scores(counted, prior),
        sentences=sentences(full, disclosed, any(it.undisclosed for it in items)),
    )
