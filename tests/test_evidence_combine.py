"""Worked examples of the evidence arithmetic: grades, ACH, log-odds combination, break-even."""

from __future__ import annotations

import json
import math

from pathlib import Path

import pytest

from culpa.evidence import ach, grading
from culpa.evidence.analysis import analyse
from culpa.evidence.case import EvidenceItem, load_case
from culpa.evidence.combine import combine, contribution, counted_items, posterior
from culpa.evidence.sensitivity import (MAX_FACTOR, break_even, sentences, times,
                                        without_undisclosed)

K1 = Path(__file__).resolve().parents[1] / "examples" / "k1_airbase.yaml"
H2 = {"a": 0.5, "b": 0.5}
H3 = {"IS": 0.6, "KH": 0.1, "other": 0.3}


def item(id="e", likelihood=None, rating=None, grade="A1", **kw) -> EvidenceItem:
    return EvidenceItem(id=id, reliability=grade[0], credibility=int(grade[1:]),
                        likelihood=likelihood, rating=rating, **kw)


# --- grading ---------------------------------------------------------------------------------

def test_weight_is_reliability_times_credibility():
    assert grading.weight("A", 1) == 1.0
    assert grading.weight("B", 2) == pytest.approx(0.64)
    assert grading.weight("E", 5) == pytest.approx(0.15 * 0.15)
    assert grading.describe("B", 2) == "B2 (usually reliable, probably true)"


def test_cannot_be_judged_sits_between_not_usually_reliable_and_unreliable():
    rel = [grading.RELIABILITY[r][1] for r in "ABCDFE"]
    cred = [grading.CREDIBILITY[c][1] for c in (1, 2, 3, 4, 6, 5)]
    assert rel == sorted(rel, reverse=True) and cred == sorted(cred, reverse=True)
    assert min(rel) > 0 and min(cred) > 0  # an unreliable report is weak, not erased


def test_discount_mixes_toward_the_mean_and_keeps_it():
    d = grading.discount({"a": 0.8, "b": 0.2}, 0.64)
    assert d == pytest.approx({"a": 0.64 * 0.8 + 0.36 * 0.5, "b": 0.64 * 0.2 + 0.36 * 0.5})
    assert sum(d.values()) == pytest.approx(1.0)
    assert grading.discount({"a": 0.8, "b": 0.2}, 1.0) == {"a": 0.8, "b": 0.2}
    assert grading.discount({"a": 0.8, "b": 0.2}, 0.0) == pytest.approx({"a": 0.5, "b": 0.5})


def test_weak_source_cannot_rule_a_hypothesis_out():
    # A weight-0.0225 report saying "almost impossible under b" still leaves b most of its odds.
    post = posterior(H2, [item(likelihood={"a": 1.0, "b": 1e-12}, grade="E5")])
    assert post["b"] > 0.45


# --- combination -----------------------------------------------------------------------------

def test_fully_reliable_item_is_bayes_rule():
    post = posterior(H2, [item(likelihood={"a": 0.8, "b": 0.2})])
    assert post == pytest.approx({"a": 0.8, "b": 0.2})
    post = posterior({"a": 0.2, "b": 0.8}, [item(likelihood={"a": 0.9, "b": 0.1})])
    assert post["a"] == pytest.approx(0.2 * 0.9 / (0.2 * 0.9 + 0.8 * 0.1))


def test_graded_item_uses_discounted_likelihoods():
    post = posterior(H2, [item(likelihood={"a": 0.8, "b": 0.2}, grade="B2")])
    assert post["a"] == pytest.approx(0.692)  # 0.64 * 0.8 + 0.36 * 0.5


def test_log_lr_is_log_of_discounted_likelihood_over_its_mean():
    c = contribution(item(likelihood={"IS": 0.8, "KH": 0.1, "other": 0.3}, grade="C3"), list(H3))
    w, mean = 0.36, 0.4
    for h, p in {"IS": 0.8, "KH": 0.1, "other": 0.3}.items():
        assert c[h] == pytest.approx(math.log(1 + w * (p / mean - 1)))
    # differences are log likelihood ratios between hypotheses
    assert c["IS"] - c["KH"] == pytest.approx(math.log((w * 0.8 + (1 - w) * mean)
                                                       / (w * 0.1 + (1 - w) * mean)))


def test_posterior_is_prior_plus_summed_log_lr():
    items = [item("x", {"IS": 0.8, "KH": 0.1, "other": 0.3}, grade="B2"),
             item("y", rating={"IS": "N", "KH": "I", "other": "C"}, grade="C3")]
    res = combine(H3, items)
    logs = {h: math.log(H3[h]) + sum(r.log_lr[h] for r in res.items) for h in H3}
    z = sum(math.exp(v) for v in logs.values())
    assert res.posterior == pytest.approx({h: math.exp(v) / z for h, v in logs.items()})
    assert res.leading == "IS"


def test_group_counts_its_most_diagnostic_item_once():
    strong = item("strong", {"a": 0.9, "b": 0.1}, group="g")
    weak = item("weak", {"a": 0.6, "b": 0.4}, group="g")
    alone = item("alone", {"a": 0.3, "b": 0.6})
    res = combine(H2, [weak, alone, strong])
    assert [r.counted for r in res.items] == [False, True, True]
    assert res.items[0].log_lr == {"a": 0.0, "b": 0.0}
    assert res.items[0].standalone_log_lr["a"] > 0
    assert res.posterior == pytest.approx(posterior(H2, [strong, alone]))
    # leaving out the shadowed item changes nothing; leaving out the strong one lets weak count
    assert res.items[0].loo_posterior == res.posterior
    assert res.items[2].loo_posterior == pytest.approx(posterior(H2, [weak, alone]))


def test_group_ties_are_broken_by_id_whatever_the_order():
    a = item("a-first", {"a": 0.9, "b": 0.1}, group="g")
    b = item("b-second", {"a": 0.9, "b": 0.1}, group="g")
    assert [a, b][counted_items([a, b], list(H2))[0]].id == "a-first"
    assert [b, a][counted_items([b, a], list(H2))[0]].id == "a-first"


def test_undisclosed_items_count_and_are_totalled_separately():
    seen = item("seen", {"a": 0.7, "b": 0.3})
    hidden = item("hidden", {"a": 0.2, "b": 0.8}, grade="B6", undisclosed=True)
    res = combine(H2, [seen, hidden])
    assert res.undisclosed_log_lr == res.items[1].log_lr
    assert res.items[1].undisclosed and not res.items[0].undisclosed
    assert without_undisclosed(H2, [seen, hidden]).posterior == pytest.approx(
        posterior(H2, [seen]))


def test_mismatched_hypotheses_are_an_input_error():
    from culpa.errors import InputError

    with pytest.raises(InputError, match="evidence 'e'"):
        combine(H3, [item(likelihood={"IS": 0.5, "KH": 0.2})])
    with pytest.raises(InputError, match="prior.b"):
        combine({"a": 1.0, "b": 0.0}, [])


# --- ACH -------------------------------------------------------------------------------------

def test_ratings_map_to_likelihoods_and_neutral_is_non_diagnostic():
    assert ach.likelihoods_from_ratings({"a": "CC", "b": "II"}) == {"a": 0.9, "b": 0.1}
    assert posterior(H3, [item(rating={"IS": "N", "KH": "N", "other": "N"})]) == posterior(H3, [])


@pytest.mark.parametrize("ratio,rating", [(2.0, "CC"), (1.6, "CC"), (1.5, "C"), (1.2, "C"),
                                          (1.1, "N"), (0.75, "N"), (0.7, "I"), (0.33, "I"),
                                          (0.3, "II"), (0.01, "II")])
def test_rating_from_ratio_to_mean(ratio, rating):
    assert ach.rating_from_ratio(ratio) == rating


def test_heuer_weighted_inconsistency():
    items = [item("x", rating={"a": "I", "b": "C"}, grade="A1"),
             item("y", rating={"a": "II", "b": "N"}, grade="C3"),
             item("z", {"a": 0.05, "b": 0.5}, grade="B2")]  # a: ratio 0.18 -> II
    scores = ach.inconsistency_scores(items, ["a", "b"])
    assert scores == pytest.approx({"a": 1 + 0.36 * 2 + 0.64 * 2, "b": 0.0})


# --- break-even ------------------------------------------------------------------------------

def test_break_even_must_beat_every_rival():
    lp = {h: math.log(p) for h, p in {"a": 0.6, "b": 0.3, "c": 0.1}.items()}
    assert break_even(lp) == pytest.approx({"a": None, "b": 2.0, "c": 6.0})


def test_break_even_of_a_tie_is_one():
    lp = {"a": math.log(0.5), "b": math.log(0.5)}
    assert break_even(lp) == {"a": None, "b": 1.0}


def test_break_even_survives_underflow_and_stays_finite():
    # posteriors of e^-700 and e^-1e6 underflow or nearly so; the factors are still reported
    be = break_even({"a": 0.0, "b": -700.0, "c": -1e6})
    assert be["b"] == pytest.approx(math.exp(700.0))
    assert be["c"] == MAX_FACTOR  # too large for a float: the largest float, never inf


def test_sentences_name_the_hypotheses_and_factor():
    items = [item("x", {"IS": 0.9, "KH": 0.1, "other": 0.3}, grade="B2"),
             item("u", {"IS": 0.3, "KH": 0.9, "other": 0.3}, grade="B6", undisclosed=True)]
    full = combine(H3, items)
    disclosed = without_undisclosed(H3, items)
    text = sentences(full, disclosed, True)
    x = math.exp(disclosed.log_posterior["IS"] - disclosed.log_posterior["KH"])
    assert (f"The undisclosed evidence would have to be {times(x)} times more likely if KH did "
            f"it than if IS did for KH to become the leading explanation") in " ".join(text)
    assert any("favours KH over IS" in s for s in text)


def test_times_formatting():
    assert [times(x) for x in (1.0, 2.345, 14.2, 1234.5, 3.4e7)] == \
        ["1.0", "2.3", "14", "1,234", "3.4e+07"]


# --- the whole case --------------------------------------------------------------------------

def test_k1_case_result_is_json_safe_and_complete():
    case = load_case(K1)
    res = analyse(case)
    doc = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert {"title", "leading", "prior", "posterior", "items", "break_even",
            "ach_inconsistency", "undisclosed_log_lr", "sentences"} <= set(doc)
    assert set(doc["items"][0]) >= {"id", "weight", "log_lr", "loo_posterior", "undisclosed"}
    assert doc["break_even"][doc["leading"]] == {"with_undisclosed": None,
                                                "without_undisclosed": None}
    assert sum(doc["posterior"].values()) == pytest.approx(1.0)
    assert [i["id"] for i in doc["items"] if i["undisclosed"]] == ["cited-evidence"]
    # the public record points to IS; the hidden evidence would need to be far stronger
    assert doc["leading"] == "IS"
    assert doc["break_even"]["KH"]["without_undisclosed"] > 10
