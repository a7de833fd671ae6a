"""The team store on its own (SQLite and a real PostgreSQL): accounts, sessions, optimistic
saves under concurrent writers, the hash chain and what breaks it, and pooling."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest
import sqlalchemy as sa

from culpa.errors import InputError
from culpa.evidence.case import parse_case
from culpa.evidence.combine import posterior
from culpa.team import default_cases_url, pooling
from culpa.team.store import TeamStore, VersionConflict, engine_url
from server_support import culpa, new_postgres_database

PASSWORD = "a long enough password"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'team.sqlite'}"
    return new_postgres_database()


@pytest.fixture
def team(url):
    with TeamStore(url) as store:
        yield store


def sql(url: str, statement: str, **params) -> None:
    engine = sa.create_engine(engine_url(url))
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)
    engine.dispose()


def test_the_default_store_is_sqlite_beside_the_event_store(tmp_path, monkeypatch):
    monkeypatch.delenv("CULPA_CASES_URL", raising=False)
    assert default_cases_url(tmp_path / "x.duckdb") == \
        f"sqlite:///{tmp_path.resolve() / 'x.duckdb.cases.sqlite'}"
    monkeypatch.setenv("CULPA_CASES_URL", "postgresql://h/db")
    assert default_cases_url(tmp_path / "x.duckdb") == "postgresql://h/db"
    assert default_cases_url(tmp_path / "x.duckdb", "sqlite:///y") == "sqlite:///y"


def test_passwords_are_argon2id_and_checked(team, url):
    team.add_user("ann", "editor", PASSWORD)
    assert team.user("ann")["password_hash"].startswith("$argon2id$")
    assert team.check_login("ann", PASSWORD)["role"] == "editor"
    assert team.check_login("ann", PASSWORD + "x") is None
    assert team.check_login("nobody", PASSWORD) is None
    with pytest.raises(InputError, match="exists already"):
        team.add_user("ann", "viewer", PASSWORD)
    with pytest.raises(InputError, match="at least 8"):
        team.add_user("bob", "viewer", "short")
    with pytest.raises(InputError, match="viewer, editor, admin"):
        team.add_user("bob", "boss", PASSWORD)


def test_sessions_expire_and_removing_a_user_revokes_their_tokens(team):
    team.add_user("ann", "viewer", PASSWORD)
    live, csrf = team.new_session("ann", seconds=60)
    gone, _ = team.new_session("ann", seconds=0.05)
    api = team.new_api_token("ann")
    time.sleep(0.1)
    assert team.principal(live).csrf == csrf
    assert team.principal(gone) is None
    assert team.principal(api).kind == "api"
    team.remove_user("ann")
    assert team.principal(live) is None and team.principal(api) is None


def test_of_many_writers_saving_from_one_version_exactly_one_wins(team):
    team.add_user("ann", "editor", PASSWORD)
    cid = team.create_case({"title": "t", "n": 0}, None, "ann")["id"]
    results = []
    barrier = threading.Barrier(6)

    def save(n):
        barrier.wait()
        try:
            results.append(team.update_case(cid, 1, {"title": "t", "n": n}, None, "ann"))
        except VersionConflict as exc:
            results.append(exc.current)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [r for r in results if isinstance(r, dict)]
    assert len(wins) == 1 and wins[0]["version"] == 2
    assert sorted(r for r in results if isinstance(r, int)) == [2] * 5
    assert team.get_case(cid)["version"] == 2
    assert team.verify().ok and team.verify().entries == 2


def _history(team, n_saves=3) -> str:
    team.add_user("ann", "editor", PASSWORD)
    cid = team.create_case({"title": "t", "n": 0}, None, "ann")["id"]
    for v in range(1, n_saves + 1):
        team.update_case(cid, v, {"title": "t", "n": v}, None, "ann")
    assert team.verify().ok
    return cid


@pytest.mark.parametrize("tamper, reason", [
    ("UPDATE history SET after = replace(after, '\"n\"\\:2', '\"n\"\\:9') WHERE seq = 3", "changed"),
    ("DELETE FROM history WHERE seq = 2", "removed"),
    ("DELETE FROM history WHERE seq = 4", "removed"),
    ("UPDATE history SET at = '2020-01-01' WHERE seq = 2", "changed"),
])
def test_a_changed_or_removed_history_entry_breaks_the_chain_there(team, url, tamper, reason):
    _history(team)
    sql(url, tamper)
    verdict = team.verify()
    assert not verdict.ok
    assert verdict.bad_seq == int(tamper.rsplit("=", 1)[1])
    assert reason in verdict.reason


def test_culpa_audit_verify_exits_1_naming_the_entry(team, url):
    _history(team)
    assert culpa("audit", "verify", "--cases", url).returncode == 0
    sql(url, "UPDATE history SET change = 'nothing to see' WHERE seq = 2")
    done = culpa("audit", "verify", "--cases", url, "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["bad_entry"] == 2
    assert "entry 2" in done.stderr


def test_culpa_user_add_list_token_remove(url):
    add = culpa("user", "add", "ann", "--role", "admin", "--password-stdin", "--cases", url,
                stdin=PASSWORD + "\n")
    assert add.returncode == 0, add.stderr
    listed = json.loads(culpa("user", "list", "--cases", url, "--json").stdout)
    assert [(u["username"], u["role"]) for u in listed["users"]] == [("ann", "admin")]
    assert culpa("user", "token", "ann", "--cases", url).stdout.strip().startswith("culpa_")
    again = culpa("user", "add", "ann", "--password-stdin", "--cases", url, stdin=PASSWORD)
    assert again.returncode == 2 and "exists already" in again.stderr
    assert culpa("user", "remove", "ann", "--cases", url).returncode == 0
    assert culpa("user", "remove", "ann", "--cases", url).returncode == 2


def test_an_unreachable_cases_store_is_a_clear_error_not_a_traceback(tmp_path):
    done = culpa("user", "list", "--cases", "postgresql://nobody@127.0.0.1:1/none")
    assert done.returncode == 2
    assert "cannot open the cases store" in done.stderr and "Traceback" not in done.stderr


# -- pooling (no store needed) ----------------------------------------------------------------

CASE = """
title: pooled
incident: {time: 2017-06-01, lat: 36.3, lon: 43.1}
hypotheses: [{id: A}, {id: B}, {id: C}]
evidence:
  - {id: e1, text: one, reliability: B, credibility: 2, likelihood: {A: 0.6, B: 0.2, C: 0.3}}
  - {id: e2, text: two, reliability: C, credibility: 3, rating: {A: C, B: I, C: N}}
"""


def _validate(doc):
    import yaml

    return parse_case(yaml.safe_dump(doc))


def test_pooling_is_the_normalised_geometric_mean_and_agreement_means_no_disagreement():
    import yaml

    doc = yaml.safe_load(CASE)
    doc["incident"]["time"] = "2017-06-01"
    base = _validate(doc)
    prior = {"A": 0.5, "B": 0.3, "C": 0.2}
    judged = {"ann": {"e1": {"reliability": "A", "credibility": 1}},
              "bob": {"e1": {"likelihood": {"A": 0.1, "B": 0.6, "C": 0.3}}}}
    items, ignored = pooling.analysts_items(doc, judged, base, _validate)
    out = pooling.team_analysis(base, prior, items, ignored)
    for user in judged:
        assert out["analysts"][user] == pytest.approx(posterior(prior, items[user]))
    geo = {h: math.sqrt(out["analysts"]["ann"][h] * out["analysts"]["bob"][h]) for h in prior}
    assert out["pooled"] == pytest.approx({h: g / sum(geo.values()) for h, g in geo.items()})
    worst = out["disagreement"][0]
    assert worst["item"] == "e1" and worst["spread"] > 1 and worst["effect"] > 0.1
    assert out["disagreement"][1] == {**out["disagreement"][1], "item": "e2", "spread": 0.0,
                                      "effect": 0.0}
    same = pooling.team_analysis(base, prior, {"ann": items["ann"], "cy": items["ann"]})
    assert same["pooled"] == pytest.approx(same["analysts"]["ann"])
    assert all(d["spread"] == 0 and d["effect"] == 0 for d in same["disagreement"])


def test_the_leading_pair_names_the_break_even_and_the_item_the_answer_hangs_on():
    import yaml

    doc = yaml.safe_load(CASE)
    doc["incident"]["time"] = "2017-06-01"
    base = _validate(doc)
    prior = {"A": 0.4, "B": 0.4, "C": 0.2}
    out = pooling.team_analysis(base, prior, {})
    pair = out["leading_pair"]
    p = out["pooled"]
    assert (pair["leading"], pair["runner_up"]) == ("A", "B")
    assert pair["break_even"] == pytest.approx(p["A"] / p["B"])
    # e1 (likelihood ratio 3 between A and B) moves the odds more than e2 (C against I: 2.8)
    assert pair["most_sensitive_item"]["item"] == "e1"
    assert pair["most_sensitive_item"]["log_odds"]["highest_grade"] == "A1"
    assert out["analysts"] == {}  # the document alone is the analyst


def test_a_judgement_that_does_not_fit_the_case_names_its_path():
    import yaml

    doc = yaml.safe_load(CASE)
    doc["incident"]["time"] = "2017-06-01"
    with pytest.raises(InputError) as bad:
        pooling.check_judgement(doc, {"e2": {"rating": {"A": "XX", "B": "I", "C": "N"}}},
                                _validate)
    assert bad.value.path == "items.e2.rating.A"
    with pytest.raises(InputError) as bad:
        pooling.check_judgement(doc, {"e1": {"grade": "A1"}}, _validate)
    assert bad.value.path == "items.e1.grade"
