"""Case files: the example parses; every malformed file names the key path (and line) to fix."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from culpa.errors import InputError
from culpa.evidence.case import (Case, Hypothesis, Incident, hypothesis_priors, load_case,
                                 parse_case)

K1 = Path(__file__).resolve().parents[1] / "examples" / "k1_airbase.yaml"

BASE = {
    "title": "Rocket attack on a base",
    "incident": {"time": "2019-12-27", "lat": 35.52, "lon": 44.28},
    "hypotheses": [
        {"id": "IS", "actor": "IS"},
        {"id": "KH", "actor": "Kata'ib Hezbollah", "prior": 0.05},
        {"id": "other", "catch_all": True},
    ],
    "evidence": [
        {"id": "launch-site", "text": "Launch site in IS territory", "reliability": "B",
         "credibility": 2, "likelihood": {"IS": 0.8, "KH": 0.1, "other": 0.3}},
        {"id": "denial", "text": "The militia denied it", "reliability": "C", "credibility": 3,
         "rating": {"IS": "N", "KH": "I", "other": "N"}},
        {"id": "cited", "text": "Officials cite evidence", "reliability": "B", "credibility": 6,
         "undisclosed": True, "likelihood": {"IS": 0.3, "KH": 0.9, "other": 0.3}},
    ],
}


def parse(doc) -> Case:
    return parse_case(yaml.safe_dump(doc, sort_keys=False), file="case.yaml")


def broken(edit):
    doc = copy.deepcopy(BASE)
    edit(doc)
    return doc


# --- the example and the happy path ----------------------------------------------------------

def test_k1_example_parses():
    case = load_case(K1)
    assert case.incident.time == dt.datetime(2019, 12, 27) and case.incident.date_only
    assert (case.incident.lat, case.incident.lon, case.incident.precision_km) == (35.52, 44.28, 5)
    assert case.hypothesis_ids == ["IS", "KH", "other"]
    kh = case.hypothesis("KH")
    assert kh.prior == 0.05 and kh.actor == "Kata'ib Hezbollah"
    assert case.hypothesis("other").catch_all and case.hypothesis("other").actor is None
    assert 5 <= len(case.evidence) <= 7
    assert [e.id for e in case.evidence if e.undisclosed] == ["cited-evidence"]
    denial = next(e for e in case.evidence if e.id == "denial")
    assert denial.rating == {"IS": "N", "KH": "I", "other": "N"}
    assert denial.p == {"IS": 0.5, "KH": 0.25, "other": 0.5}


def test_base_document_parses_with_defaults():
    case = parse(BASE)
    assert case.incident.precision_km is None and case.window_days is None  # known exactly
    assert case.evidence[0].weight == pytest.approx(0.64)
    assert case.evidence[1].likelihood is None and case.evidence[0].rating is None
    assert case.hypothesis("IS").prior is None
    assert case.file == "case.yaml"


def test_times_dates_and_numbers_in_friendly_forms():
    doc = broken(lambda d: d["incident"].update(time="2019-12-27T21:30:00+03:00"))
    doc["evidence"][0].update(reliability="b", credibility="2")
    doc["hypotheses"][0]["id"] = "IS"
    case = parse(doc)
    assert case.incident.time == dt.datetime(2019, 12, 27, 18, 30) and not case.incident.date_only
    assert (case.evidence[0].reliability, case.evidence[0].credibility) == ("B", 2)


def test_unquoted_yaml_date_is_accepted():
    text = yaml.safe_dump(BASE, sort_keys=False).replace("'2019-12-27'", "2019-12-27")
    assert parse_case(text).incident.time == dt.datetime(2019, 12, 27)


def test_likelihoods_are_kept_in_hypothesis_order():
    doc = broken(lambda d: d["evidence"][0].update(likelihood={"other": 0.3, "IS": 0.8, "KH": 0.1}))
    assert list(parse(doc).evidence[0].likelihood) == ["IS", "KH", "other"]


# --- malformed files: the key path in the message --------------------------------------------

def _set(path, value):
    def edit(d):
        *head, last = path
        for k in head:
            d = d[k]
        d[last] = value
    return edit


def _drop(path):
    def edit(d):
        *head, last = path
        for k in head:
            d = d[k]
        del d[last]
    return edit


MALFORMED = [
    # (edit, key path, message fragment)
    (_set(["hypotheses"], []), "hypotheses", "no hypotheses given"),
    (_set(["hypotheses"], [{"id": "IS"}]), "hypotheses", "one hypothesis given"),
    (_drop(["hypotheses"]), "hypotheses", "missing (required)"),
    (_set(["hypotheses", 2, "id"], "IS"), "hypotheses[2].id",
     "duplicate id 'IS' (also hypotheses[0])"),
    (_set(["evidence", 1, "id"], "launch-site"), "evidence[1].id", "duplicate id 'launch-site'"),
    (_set(["evidence", 0, "likelihood", "XX"], 0.5), "evidence[0].likelihood.XX",
     "unknown hypothesis 'XX' (hypotheses: IS, KH, other)"),
    (_set(["evidence", 1, "rating", "AQ"], "N"), "evidence[1].rating.AQ",
     "unknown hypothesis 'AQ'"),
    (_drop(["evidence", 0, "likelihood", "other"]), "evidence[0].likelihood",
     "no value for hypothesis 'other'"),
    (_drop(["evidence", 1, "rating", "KH"]), "evidence[1].rating", "no value for hypothesis 'KH'"),
    (_set(["evidence", 0, "likelihood", "IS"], 0), "evidence[0].likelihood.IS",
     "0 is outside (0, 1]"),
    (_set(["evidence", 0, "likelihood", "KH"], 1.5), "evidence[0].likelihood.KH",
     "1.5 is outside (0, 1]"),
    (_set(["evidence", 0, "likelihood", "KH"], "high"), "evidence[0].likelihood.KH",
     "'high' is not a number"),
    (_set(["evidence", 2, "reliability"], "Z"), "evidence[2].reliability", "'Z' is not A-F"),
    (_set(["evidence", 0, "credibility"], 7), "evidence[0].credibility", "7 is not 1-6"),
    (_set(["evidence", 0, "credibility"], 0), "evidence[0].credibility", "0 is not 1-6"),
    (_set(["evidence", 1, "rating", "KH"], "X"), "evidence[1].rating.KH",
     "'X' is not one of CC, C, N, I, II"),
    (_set(["evidence", 0, "rating"], {"IS": "N", "KH": "N", "other": "N"}), "evidence[0]",
     "either likelihood or rating, not both"),
    (_drop(["evidence", 1, "rating"]), "evidence[1]", "needs a likelihood"),
    (_drop(["evidence", 0, "reliability"]), "evidence[0].reliability", "missing (required)"),
    (_set(["evidence", 0, "reliabilty"], "B"), "evidence[0].reliabilty", "unknown key"),
    (_set(["evidence", 2, "undisclosed"], "yes please"), "evidence[2].undisclosed",
     "must be true or false"),
    (_set(["hypotheses", 0, "prior"], 0.97), "hypotheses",
     "explicit priors sum to 1.02, more than 1"),
    (_set(["hypotheses", 0, "prior"], 0.95), "hypotheses", "leave nothing for other"),
    (_set(["hypotheses", 1, "prior"], 1.5), "hypotheses[1].prior", "1.5 is outside (0, 1]"),
    (_set(["hypotheses", 1, "prior"], 0), "hypotheses[1].prior", "0 is outside (0, 1]"),
    (lambda d: d["hypotheses"].append({"id": "rest", "catch_all": True}),
     "hypotheses[3].catch_all", "only one hypothesis can be the catch_all (already hypotheses[2])"),
    (_set(["hypotheses", 2, "actor"], "PKK"), "hypotheses[2].actor",
     "a catch_all hypothesis names no actor"),
    (_set(["hypotheses", 0, "actor"], "kata'ib hezbollah"), "hypotheses[1].actor",
     "already named by hypotheses[0]"),
    (_set(["incident", "time"], "yesterday"), "incident.time",
     "'yesterday' is not an ISO date or datetime"),
    (_set(["incident", "time"], "2019-13-45"), "incident.time", "is not an ISO date"),
    (_set(["incident", "lat"], 95), "incident.lat", "95 is outside [-90, 90]"),
    (_set(["incident", "lon"], -200.5), "incident.lon", "-200.5 is outside [-180, 180]"),
    (_drop(["incident", "lon"]), "incident.lon", "missing (required)"),
    (_set(["incident", "precision_km"], 0), "incident.precision_km", "0 is outside (0, 20038]"),
    (_set(["window_days"], -3), "window_days", "-3 is outside (0, 36525]"),
    (_drop(["incident"]), "incident", "missing (required)"),
    (_set(["incident"], "Kirkuk"), "incident", "must be a mapping"),
    (_set(["evidence"], {"id": "x"}), "evidence", "must be a list"),
]


@pytest.mark.parametrize("edit,path,fragment", MALFORMED,
                         ids=[f"{p}:{m[:30]}" for _, p, m in MALFORMED])
def test_malformed_case_names_the_key_path(edit, path, fragment):
    with pytest.raises(InputError) as info:
        parse(broken(edit))
    exc = info.value
    assert exc.path == path
    assert f"{path}: " in str(exc) and fragment in str(exc)
    assert str(exc).startswith("case.yaml:")  # file, then the line when the key is in the file
    assert exc.exit_code == 2


def test_every_hypothesis_given_a_prior_must_sum_to_one():
    doc = broken(lambda d: d["hypotheses"][0].update(prior=0.5))
    doc["hypotheses"][2]["prior"] = 0.2
    with pytest.raises(InputError, match=r"hypotheses: every hypothesis has a prior.*0\.75"):
        parse(doc)
    doc["hypotheses"][2]["prior"] = 0.45
    assert parse(doc).hypothesis("other").prior == 0.45


def test_message_names_file_line_and_path():
    text = """\
title: t
incident: {time: 2019-12-27, lat: 35.5, lon: 44.3}
hypotheses:
  - id: IS
  - id: KH
evidence:
  - id: a
    text: something
    reliability: B
    credibility: 2
    likelihood: {IS: 0.5, KH: 0.2}
  - id: b
    text: something else
    reliability: Z
    credibility: 2
    likelihood: {IS: 0.5, KH: 0.2}
"""
    with pytest.raises(InputError) as info:
        parse_case(text, file="k1.yaml")
    assert str(info.value) == "k1.yaml:14: evidence[1].reliability: 'Z' is not A-F"
    assert (info.value.file, info.value.line, info.value.path) == (
        "k1.yaml", 14, "evidence[1].reliability")


def test_yaml_syntax_error_names_file_and_line():
    text = "title: t\nincident: {time: 2019-12-27, lat: 35.5\nhypotheses: []\n"
    with pytest.raises(InputError, match=r"^case\.yaml:3: YAML syntax error") as info:
        parse_case(text, file="case.yaml")
    assert info.value.line == 3


def test_empty_and_non_mapping_files():
    with pytest.raises(InputError, match="the case file is empty"):
        parse_case("", file="case.yaml")
    with pytest.raises(InputError, match="must be a mapping"):
        parse_case("- a\n- b\n", file="case.yaml")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="case file not found"):
        load_case(tmp_path / "nope.yaml")


def test_yaml_booleans_as_names_are_explained():
    # `NO` (Norway?) is a boolean in YAML 1.1: say so instead of failing obscurely
    doc = broken(lambda d: d["hypotheses"][0].update(id=False))
    with pytest.raises(InputError, match=r"hypotheses\[0\]\.id: must be a name \(quote it"):
        parse(doc)


# --- priors ----------------------------------------------------------------------------------

def _case(*hyps: Hypothesis) -> Case:
    return Case(title="t", incident=Incident(time=dt.datetime(2019, 12, 27), lat=0, lon=0),
                hypotheses=hyps)


IS = Hypothesis("IS", actor="Islamic State")
KH = Hypothesis("KH", actor="Kata'ib Hezbollah", prior=0.05)
OTHER = Hypothesis("other", catch_all=True)


def test_priors_share_what_explicit_priors_leave_in_model_proportions():
    model = {"IS": 0.6, "PKK": 0.3, "Iraq": 0.1}
    resolve = {"Islamic State": "IS"}.get
    prior = hypothesis_priors(_case(IS, KH, OTHER), model, resolve=resolve)
    assert prior == pytest.approx({"IS": 0.95 * 0.6, "KH": 0.05, "other": 0.95 * 0.4})
    assert list(prior) == ["IS", "KH", "other"]


def test_priors_share_equally_without_a_model_or_when_it_gives_them_nothing():
    assert hypothesis_priors(_case(IS, KH, OTHER)) == pytest.approx(
        {"IS": 0.475, "KH": 0.05, "other": 0.475})
    # the model knows only the explicit-prior actor: nothing to go on for the rest
    assert hypothesis_priors(_case(IS, KH, OTHER), {"Kata'ib Hezbollah": 1.0}) == pytest.approx(
        {"IS": 0.475, "KH": 0.05, "other": 0.475})


def test_no_hypothesis_starts_at_zero():
    # every actor the model knows is listed, so the catch_all has no model mass
    prior = hypothesis_priors(_case(Hypothesis("IS"), Hypothesis("PKK"), OTHER),
                              {"IS": 0.7, "PKK": 0.3})
    assert 0 < prior["other"] < 0.002
    assert prior["IS"] / prior["PKK"] == pytest.approx(0.7 / 0.3)
    assert sum(prior.values()) == pytest.approx(1.0)


def test_catch_all_does_not_take_mass_of_explicit_prior_actors():
    model = {"IS": 0.5, "Kata'ib Hezbollah": 0.25, "PKK": 0.25}
    prior = hypothesis_priors(_case(IS, KH, OTHER), model, resolve={"Islamic State": "IS"}.get)
    assert prior["IS"] / prior["other"] == pytest.approx(2.0)


def test_two_hypotheses_resolving_to_one_actor_is_an_input_error():
    with pytest.raises(InputError, match=r"hypotheses\[1\]\.actor: actor 'ISIL' resolves to 'IS'"):
        hypothesis_priors(_case(Hypothesis("IS"), Hypothesis("ISIL"), OTHER), {"IS": 1.0},
                          resolve={"ISIL": "IS", "IS": "IS"}.get)


# -- hostile documents: refused fast, with the key path and line ------------------------------

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def _k1_with(pattern: str, replacement: str) -> str:
    import re

    text, n = re.subn(pattern, replacement, K1.read_text(), count=1, flags=re.M)
    assert n == 1, pattern
    return text


@pytest.mark.parametrize("text, line, path, message", [
    (LAUGHS, 1, "a", "anchors"),  # the billion-laughs bomb (560 bytes, once 118 s and 4.5 GB)
    ("notes: &a [*a]\n", 1, "notes", "anchors"),
    ("[" * 5000, 1, None, "nesting"),
    ("a:\n" + "".join(" " * (2 * i + 2) + "b:\n" for i in range(100)), None, None,
     "nested deeper than 64"),
    (_k1_with(r"^(\s*time:).*$", r"\1 2018-02-30"), 14, "incident.time", "not a valid date"),
    (_k1_with(r"^(\s*time:).*$", r"\1 2018-13-01"), 14, "incident.time", "not a valid date"),
    (_k1_with(r"^(\s*time:).*$", r"\1 2018-01-01 25:00:00"), 14, "incident.time",
     "not a valid date"),
    (_k1_with(r"^(\s*time:).*$", r"\1 25:00:00"), 14, "incident.time",  # YAML 1.1: 90000
     "not an ISO date"),
    (_k1_with(r"^(\s*lat:).*$", r"\1 " + "9" * 400), 15, "incident.lat", "too large"),
    (_k1_with(r"^(window_days:.*)$", r"\1\nradius_km: " + "9" * 400), 23, "radius_km",
     "too large"),
    (_k1_with(r"likelihood: \{IS: 0\.7,", "likelihood: {IS: " + "9" * 400 + ","), 44,
     "evidence[0].likelihood.IS", "too large"),
    (_k1_with(r"^(window_days:).*$", r"\1 " + "9" * 400), 22, "window_days", "too large"),
    (_k1_with(r"^(window_days:).*$", r"\1 1.0e+300"), 22, "window_days", "outside"),
    (_k1_with(r"^(\s*reliability:).*$", r"\1 [A]"), 42, "evidence[0].reliability", "not A-F"),
    (_k1_with(r"^(\s*credibility:).*$", r"\1 [2]"), 43, "evidence[0].credibility", "not 1-6"),
    (_k1_with(r"^(\s*lat:.*)$", r"\1\n  lat: 10"), 16, "incident.lat",
     "duplicate key 'lat' (first on line 15, again on line 16)"),
    (_k1_with(r"^(title:.*)$", "title: !!python/object:os.system x"), 12, "title", "tag"),
    ("a: 1\n---\nb: 2\n", 2, None, "more than one YAML document"),
])
def test_hostile_case_files_are_refused_quickly_with_their_place(text, line, path, message):
    import time

    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        parse_case(text, file="case.yaml")
    assert time.perf_counter() - start < 1.0
    exc = info.value
    assert message in str(exc) and exc.file == "case.yaml"
    assert (line is None or exc.line == line) and (path is None or exc.path == path), str(exc)


def test_the_bounded_loader_reads_every_example_as_pyyaml_does():
    from culpa import yamldoc

    for f in [*K1.parent.glob("*.yaml"), *(K1.parents[1] / "tests" / "data").glob("*.yaml")]:
        assert yamldoc.load(f.read_text(), str(f)).data == yaml.safe_load(f.read_text()), f


def test_hostile_sites_files_are_refused_with_their_place():
    from culpa.sites import parse_sites

    good = "sites:\n  - name: base\n    lat: 35.5\n    lon: 44.3\n    radius_km: 25\n"
    assert parse_sites(good)[0].radius_km == 25
    for text, path, line in [
        (good.replace("radius_km: 25", "radius_km: " + "9" * 400), "sites[0].radius_km", 5),
        (good + "    lat: 1\n", "sites[0].lat", 6),
        (good.replace("35.5", "&x 35.5"), "sites[0].lat", 3),
        (LAUGHS, "a", 1),
    ]:
        with pytest.raises(InputError) as info:
            parse_sites(text, file="sites.yaml")
        assert (info.value.path, info.value.line) == (path, line), str(info.value)


def test_case_and_sites_files_must_be_regular_utf8_files(tmp_path):
    from culpa.sites import load_sites

    (tmp_path / "dir.yaml").mkdir()
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"title: ok\nnotes: caf\xe9\n")
    with pytest.raises(InputError, match="is a directory"):
        load_case(tmp_path / "dir.yaml")
    with pytest.raises(InputError, match="not UTF-8") as info:
        load_sites(bad)
    assert info.value.line == 2
