"""Several analysts on one case: each one's posterior, the pooled one, and where they disagree.

An analyst's *judgement* overrides, for some of the case's items, the likelihoods (or ACH
rating) and the Admiralty grade; every item they leave alone keeps the document's values. Each
analyst's posterior is the case's own analysis (:func:`culpa.evidence.combine.log_posterior`:
the same prior, the same dependence groups, the same discounting) on their version of the items.

**Pooling** is log-linear with equal weights: the pooled log posterior is the mean of the
analysts' log posteriors, renormalised. With one shared prior that is the prior times the
geometric mean of the analysts' likelihood ratios, item by item: it keeps the odds scale the
evidence works on, and an analyst who finds an item decisive moves the pool as far as the
others' doubt allows, no further. With no judgements the document is the one analyst.

Per item, for the pool's two leading hypotheses L (leading) and R (runner-up):

* ``spread``: max minus min over analysts of the item's log likelihood ratio of L against R
  (natural log; 0 when they agree);
* ``effect``: how far that disagreement moves the answer: the range of the pooled posterior of
  L when this item's pooled contribution is replaced by each analyst's own (others pooled).

And for L against R: ``break_even`` (how many times more likely one more fully reliable item
must be under R than under L to reverse them: ``post(L) / post(R)``), and the item whose grade
the answer depends on most: the one whose 36 Admiralty grades (set for every analyst) swing the
pooled log odds of L against R furthest, with whether some grade reverses L and R.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

from culpa.errors import InputError
from culpa.evidence import grading
from culpa.evidence.case import Case, EvidenceItem
from culpa.evidence.combine import combine, log_posterior
from culpa.evidence.sensitivity import break_even

JUDGEMENT_KEYS = {"likelihood", "rating", "reliability", "credibility"}
METHOD = ("log-linear pooling of the analysts' likelihood ratios (equal weights): the pooled "
          "log posterior is the mean of the analysts' log posteriors, renormalised")


def apply_judgement(doc: dict, items: Mapping[str, dict]) -> dict:
    """The case document as one analyst reads it: their values put in place of the items'."""
    if not isinstance(items, Mapping):
        raise InputError("must map item ids to judgements", path="items")
    evidence = [dict(e) if isinstance(e, dict) else e for e in doc.get("evidence") or []]
    index = {str(e.get("id")): i for i, e in enumerate(evidence) if isinstance(e, dict)}
    for item_id, judged in items.items():
        where = f"items.{item_id}"
        if item_id not in index:
            raise InputError(f"the case has no evidence item {item_id!r} (items: "
                             f"{', '.join(index) or 'none'})", path=where)
        if not isinstance(judged, Mapping) or not judged:
            raise InputError("must give likelihood or rating, and/or reliability and "
                             "credibility", path=where)
        unknown = sorted(set(judged) - JUDGEMENT_KEYS)
        if unknown:
            raise InputError(f"unknown key (expected one of: {', '.join(sorted(JUDGEMENT_KEYS))})",
                             path=f"{where}.{unknown[0]}")
        if "likelihood" in judged and "rating" in judged:
            raise InputError("give either likelihood or rating, not both", path=where)
        target = evidence[index[item_id]]
        for key in ("likelihood", "rating"):
            if key in judged:
                target.pop("likelihood", None)
                target.pop("rating", None)
                target[key] = judged[key]
        for key in ("reliability", "credibility"):
            if key in judged:
                target[key] = judged[key]
    return {**doc, "evidence": evidence}


def check_judgement(doc: dict, items: Mapping[str, dict],
                    validate: Callable[[dict], Case]) -> None:
    """InputError (path ``items.ID.KEY``) when the judgement does not fit the case."""
    judged = apply_judgement(doc, items)
    index = {str(e.get("id")): i for i, e in enumerate(judged["evidence"])}
    try:
        validate(judged)
    except InputError as exc:
        path = exc.path or ""
        for item_id, i in index.items():
            prefix = f"evidence[{i}]"
            if path == prefix or path.startswith(prefix + "."):
                path = f"items.{item_id}{path[len(prefix):]}"
        raise InputError(exc.detail, path=path or None) from None


def analysts_items(doc: dict, judgements: Mapping[str, Mapping], base: Case,
                   validate: Callable[[dict], Case]) -> tuple[dict[str, list[EvidenceItem]],
                                                               dict[str, list[str]]]:
    """Each analyst's items; a judgement item that no longer fits the case is left out
    (and listed as ignored) rather than failing the whole analysis."""
    out: dict[str, list[EvidenceItem]] = {}
    ignored: dict[str, list[str]] = {}
    for user, items in judgements.items():
        keep = {}
        for item_id, judged in items.items():
            try:
                check_judgement(doc, {item_id: judged}, validate)
                keep[item_id] = judged
            except InputError:
                ignored.setdefault(user, []).append(item_id)
        out[user] = list(validate(apply_judgement(doc, keep)).evidence) if keep \
            else list(base.evidence)
    return out, ignored


def team_analysis(base: Case, prior: Mapping[str, float],
                  analysts: Mapping[str, list[EvidenceItem]],
                  ignored: Mapping[str, list[str]] | None = None) -> dict:
    """``analysts``, ``pooled``, ``pooling``, ``disagreement``, ``leading_pair``."""
    prior = dict(prior)
    hyps = list(prior)
    people = dict(analysts) or {"(document)": list(base.evidence)}
    logs = {u: log_posterior(prior, items) for u, items in people.items()}
    pooled_log = _pool(list(logs.values()))
    pooled = {h: math.exp(v) for h, v in pooled_log.items()}
    ranked = sorted(hyps, key=lambda h: (-pooled_log[h], hyps.index(h)))
    lead, second = ranked[0], ranked[1]
    contribs = {u: {r.id: r.log_lr for r in combine(prior, items).items}
                for u, items in people.items()}
    return {
        "analysts": {u: {h: math.exp(v) for h, v in lp.items()} for u, lp in logs.items()
                     if u in analysts},
        "pooled": pooled,
        "pooling": {"method": METHOD, "leading": lead, "analysts": sorted(analysts),
                    "ignored_judgements": dict(ignored or {})},
        "disagreement": _disagreement(prior, base, contribs, pooled_log, lead, second),
        "leading_pair": _leading_pair(prior, base, people, pooled_log, lead, second),
    }


def _pool(log_posteriors: list[Mapping[str, float]]) -> dict[str, float]:
    hyps = list(log_posteriors[0])
    mean = {h: math.fsum(lp[h] for lp in log_posteriors) / len(log_posteriors) for h in hyps}
    top = max(mean.values())
    z = top + math.log(math.fsum(math.exp(v - top) for v in mean.values()))
    return {h: v - z for h, v in mean.items()}


def _disagreement(prior, base: Case, contribs, pooled_log, lead: str, second: str) -> list[dict]:
    users = list(contribs)
    out = []
    for item in base.evidence:
        per = {u: contribs[u].get(item.id) for u in users}
        per = {u: c for u, c in per.items() if c is not None}
        lr = {u: c[lead] - c[second] for u, c in per.items()}
        pooled_c = {h: math.fsum(c[h] for c in per.values()) / len(per) for h in prior}
        leads = []
        for c in per.values():  # swap the pooled contribution for this analyst's own
            shifted = {h: pooled_log[h] - pooled_c[h] + c[h] for h in prior}
            top = max(shifted.values())
            z = top + math.log(math.fsum(math.exp(v - top) for v in shifted.values()))
            leads.append(math.exp(shifted[lead] - z))
        out.append({"item": item.id, "spread": max(lr.values()) - min(lr.values()),
                    "effect": max(leads) - min(leads), "log_lr": lr,
                    "hypotheses": [lead, second]})
    out.sort(key=lambda d: (-d["effect"], -d["spread"], d["item"]))
    return out


def _leading_pair(prior, base: Case, people, pooled_log, lead: str, second: str) -> dict:
    factor = break_even(pooled_log)[second]
    best = None
    for item in base.evidence:
        odds = []
        for r in grading.RELIABILITY:
            for c in grading.CREDIBILITY:
                logs = [log_posterior(prior, _regrade(items, item.id, r, c))
                        for items in people.values()]
                lp = _pool(logs)
                odds.append((lp[lead] - lp[second], f"{r}{c}"))
        lo, hi = min(odds), max(odds)
        swing = hi[0] - lo[0]
        if best is None or swing > best["swing"] + 1e-12:
            best = {"item": item.id, "swing": swing,
                    "log_odds": {"lowest": lo[0], "lowest_grade": lo[1],
                                 "highest": hi[0], "highest_grade": hi[1]},
                    "can_reverse": lo[0] < 0}
    return {"leading": lead, "runner_up": second,
            "posterior": {lead: math.exp(pooled_log[lead]), second: math.exp(pooled_log[second])},
            "break_even": factor,
            "break_even_text": (f"One more fully reliable item would have to be {factor:.3g} "
                                f"times more likely if {second} did it than if {lead} did to "
                                f"reverse them."),
            "most_sensitive_item": best}


def _regrade(items: list[EvidenceItem], item_id: str, r: str, c: int) -> list[EvidenceItem]:
    return [dataclasses.replace(it, reliability=r, credibility=c) if it.id == item_id else it
            for it in items]
