"""Case files: parse and validate the YAML that states an incident, hypotheses and evidence.

The schema is a contract (see examples/k1_airbase.yaml): extend it, do not break it. Every
problem raises ``InputError`` whose message starts with the file, the line and the key path,
e.g. ``case.yaml:31: evidence[2].reliability: 'Z' is not A-F``; ``exc.path`` holds the key path.
Unknown keys are errors too, so a misspelt ``reliabilty`` is caught rather than ignored.

``hypothesis_priors`` turns a validated case plus the model's attribution into the prior.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culpa import yamldoc
from culpa.errors import InputError
from culpa.inputs import read_text
from culpa.evidence import ach, grading

#: A hypothesis the model gives no mass to still starts with this share of what is left to
#: share (before renormalising): a zero prior could never be revised by any evidence.
MIN_SHARE = 0.001

#: Explicit priors may miss summing to 1 by this much (decimal rounding in a file).
PRIOR_TOLERANCE = 1e-6

#: The longest look-back a case may ask of the model (a century of events).
MAX_WINDOW_DAYS = 36_525.0
#: Half the Earth's circumference: no place is less precisely known than that.
MAX_PRECISION_KM = 20_038.0


@dataclass(frozen=True)
class Incident:
    time: dt.datetime  # naive UTC; a date alone is midnight with ``date_only`` set
    lat: float
    lon: float
    precision_km: float | None = None  # None: the place is known exactly
    event_type: str | None = None
    target: str | None = None  # who was attacked or fought
    description: str | None = None
    date_only: bool = False


@dataclass(frozen=True)
class Hypothesis:
    id: str
    actor: str | None = None  # None only for the catch_all
    prior: float | None = None  # explicit prior, else shared out by hypothesis_priors
    catch_all: bool = False  # "every actor not listed"
    label: str | None = None

    def __post_init__(self) -> None:
        if self.actor is None and not self.catch_all:  # `- id: IS` means the actor IS
            object.__setattr__(self, "actor", self.id)


@dataclass(frozen=True)
class EvidenceItem:
    """One item: P(E | H) per hypothesis (``likelihood``) or ACH ``rating``, and its grade."""

    id: str
    reliability: str  # Admiralty A-F
    credibility: int  # Admiralty 1-6
    likelihood: dict[str, float] | None = None
    rating: dict[str, str] | None = None
    text: str = ""
    source: str | None = None
    group: str | None = None  # items sharing a group (an origin) count once
    undisclosed: bool = False
    url: str | None = None
    date: str | None = None
    notes: str | None = None

    def __post_init__(self) -> None:
        # Direct construction (Python API, tests) gets the same basic guarantees as a file.
        where = f"evidence '{self.id}'"
        if (self.likelihood is None) == (self.rating is None):
            raise InputError("give exactly one of likelihood or rating", path=where)
        if not isinstance(self.reliability, str) or self.reliability not in grading.RELIABILITY:
            raise InputError(f"{self.reliability!r} is not A-F", path=where + ".reliability")
        if isinstance(self.credibility, bool) or not isinstance(self.credibility, int) \
                or self.credibility not in grading.CREDIBILITY:
            raise InputError(f"{self.credibility!r} is not 1-6", path=where + ".credibility")

    @property
    def weight(self) -> float:
        """Admiralty weight in [0, 1] (grading.py)."""
        return grading.weight(self.reliability, self.credibility)

    @property
    def p(self) -> dict[str, float]:
        """P(E | h) per hypothesis: the likelihoods as given, or the ratings through ach.RATINGS."""
        if self.likelihood is not None:
            return dict(self.likelihood)
        return ach.likelihoods_from_ratings(self.rating)


@dataclass(frozen=True)
class Case:
    title: str
    incident: Incident
    hypotheses: tuple[Hypothesis, ...]
    evidence: tuple[EvidenceItem, ...] = ()
    window_days: float | None = None
    description: str | None = None
    file: str | None = field(default=None, compare=False)

    @property
    def hypothesis_ids(self) -> list[str]:
        return [h.id for h in self.hypotheses]

    def hypothesis(self, hid: str) -> Hypothesis:
        return next(h for h in self.hypotheses if h.id == hid)


# ---------------------------------------------------------------------------------------------
# Loading


def load_case(path: str | Path) -> Case:
    """Read and validate a case file."""
    return parse_case(read_text(path, "case file"), file=str(path))


def parse_case(text: str, file: str | None = None) -> Case:
    """Validate case YAML given as a string; ``file`` only labels error messages."""
    doc = yamldoc.load(text, file)
    return _Validator(file, doc.lines).case(doc.data,
                                            default_title=Path(file).stem if file else None)


# ---------------------------------------------------------------------------------------------
# Validation

_TOP_KEYS = {"title", "incident", "window_days", "hypotheses", "evidence", "description", "notes"}
_INCIDENT_KEYS = {"time", "lat", "lon", "precision_km", "event_type", "target", "description"}
_HYPOTHESIS_KEYS = {"id", "actor", "prior", "catch_all", "label", "description", "notes"}
_EVIDENCE_KEYS = {"id", "text", "source", "reliability", "credibility", "likelihood", "rating",
                  "group", "undisclosed", "url", "date", "notes"}


class _Validator:
    """Walks the parsed document; every failure names its key path (and line, when known)."""

    def __init__(self, file: str | None, lines: dict[str, int]):
        self.file, self.lines = file, lines

    def fail(self, path: str, message: str) -> InputError:
        return yamldoc.Document(None, self.lines, self.file).fail(path, message)

    # -- shapes --------------------------------------------------------------------------------

    def mapping(self, value: Any, path: str, allowed: set[str], required: set[str]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, not {_show(value)}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                raise self.fail(_join(path, key),
                                f"unknown key (expected one of: {', '.join(sorted(allowed))})")
        for key in sorted(required):
            if value.get(key) is None:
                raise self.fail(_join(path, key), "missing (required)")
        return value

    def text(self, value: Any, path: str, optional: bool = True) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be a non-empty string, not {_show(value)}")
        return value.strip()

    def ident(self, value: Any, path: str) -> str:
        # YAML reads `no`/`yes` as booleans and `1` as a number: accept numbers, refuse booleans.
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
            raise self.fail(path, f"must be a name (quote it if YAML reads it otherwise), "
                                  f"not {_show(value)}")
        return str(value).strip()

    def number(self, value: Any, path: str, lo: float, hi: float, *, lo_open: bool = False,
               hi_open: bool = False, interval: str) -> float:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value)):
            raise self.fail(path, f"{_show(value)} is not a number")
        if value < lo or value > hi or (lo_open and value == lo) or (hi_open and value == hi):
            raise self.fail(path, f"{value!r} is outside {interval}")
        return float(value)

    def flag(self, value: Any, path: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, not {_show(value)}")
        return value

    # -- the case ------------------------------------------------------------------------------

    def case(self, doc: Any, default_title: str | None) -> Case:
        if doc is None:
            raise self.fail("", "the case file is empty")
        doc = self.mapping(doc, "", _TOP_KEYS, {"incident", "hypotheses"})
        window = doc.get("window_days")
        hypotheses = self.hypotheses(doc["hypotheses"])
        return Case(
            title=self.text(doc.get("title"), "title") or default_title or "Untitled case",
            incident=self.incident(doc["incident"]),
            hypotheses=hypotheses,
            evidence=self.evidence(doc.get("evidence"), [h.id for h in hypotheses]),
            window_days=None if window is None else self.number(
                window, "window_days", 0, MAX_WINDOW_DAYS, lo_open=True,
                interval=f"(0, {MAX_WINDOW_DAYS:g}]"),
            description=self.text(doc.get("description"), "description"),
            file=self.file,
        )

    def incident(self, value: Any) -> Incident:
        p = "incident"
        d = self.mapping(value, p, _INCIDENT_KEYS, {"time", "lat", "lon"})
        time, date_only = self.time(d["time"], f"{p}.time")
        precision = d.get("precision_km")
        return Incident(
            time=time, date_only=date_only,
            lat=self.number(d["lat"], f"{p}.lat", -90, 90, interval="[-90, 90]"),
            lon=self.number(d["lon"], f"{p}.lon", -180, 180, interval="[-180, 180]"),
            precision_km=None if precision is None else self.number(
                precision, f"{p}.precision_km", 0, MAX_PRECISION_KM, lo_open=True,
                interval=f"(0, {MAX_PRECISION_KM:g}]"),
            event_type=self.text(d.get("event_type"), f"{p}.event_type"),
            target=self.text(d.get("target"), f"{p}.target"),
            description=self.text(d.get("description"), f"{p}.description"),
        )

    def time(self, value: Any, path: str) -> tuple[dt.datetime, bool]:
        # YAML already turns unquoted ISO dates and datetimes into objects; strings are parsed.
        if isinstance(value, str):
            s = value.strip()
            try:
                value = dt.date.fromisoformat(s) if len(s) == 10 else dt.datetime.fromisoformat(s)
            except ValueError:
                raise self.fail(path, f"{value!r} is not an ISO date or datetime") from None
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                try:
                    value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
                except (OverflowError, ValueError):
                    raise self.fail(path, f"{value.isoformat()!r} is out of range") from None
            return value, False
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day), True
        raise self.fail(path, f"{_show(value)} is not an ISO date or datetime")

    def hypotheses(self, value: Any) -> tuple[Hypothesis, ...]:
        if not isinstance(value, list):
            raise self.fail("hypotheses", f"must be a list, not {_show(value)}")
        if len(value) < 2:
            raise self.fail("hypotheses", f"{'no hypotheses' if not value else 'one hypothesis'}"
                                          f" given; at least two are needed")
        out: list[Hypothesis] = []
        seen: dict[tuple[str, str], str] = {}  # ("id"|"actor", name) -> path first seen
        catch_all_at: str | None = None
        for i, raw in enumerate(value):
            p = f"hypotheses[{i}]"
            d = self.mapping(raw, p, _HYPOTHESIS_KEYS, {"id"})
            hid = self.ident(d["id"], f"{p}.id")
            if ("id", hid) in seen:
                raise self.fail(f"{p}.id", f"duplicate id {hid!r} (also {seen[('id', hid)]})")
            seen[("id", hid)] = p
            catch_all = self.flag(d.get("catch_all"), f"{p}.catch_all")
            actor = self.text(d.get("actor"), f"{p}.actor")
            if catch_all:
                if catch_all_at is not None:
                    raise self.fail(f"{p}.catch_all", f"only one hypothesis can be the "
                                                      f"catch_all (already {catch_all_at})")
                if actor is not None:
                    raise self.fail(f"{p}.actor", "a catch_all hypothesis names no actor")
                catch_all_at = p
            else:
                actor = actor or hid  # `- id: IS` means the actor IS
                if ("actor", actor.casefold()) in seen:
                    raise self.fail(f"{p}.actor", f"actor {actor!r} is already named by "
                                                  f"{seen[('actor', actor.casefold())]}")
                seen[("actor", actor.casefold())] = p
            prior = d.get("prior")
            if prior is not None:
                prior = self.number(prior, f"{p}.prior", 0, 1, lo_open=True, interval="(0, 1]")
            out.append(Hypothesis(id=hid, actor=actor, prior=prior, catch_all=catch_all,
                                  label=self.text(d.get("label"), f"{p}.label")))
        self.check_priors(out)
        return tuple(out)

    def check_priors(self, hyps: list[Hypothesis]) -> None:
        explicit = math.fsum(h.prior for h in hyps if h.prior is not None)
        rest = [h.id for h in hyps if h.prior is None]
        if explicit > 1 + PRIOR_TOLERANCE:
            raise self.fail("hypotheses", f"explicit priors sum to {explicit:g}, more than 1")
        if rest and explicit >= 1 - PRIOR_TOLERANCE:
            raise self.fail("hypotheses", f"explicit priors sum to 1 and leave nothing for "
                                          f"{', '.join(rest)}, which "
                                          f"{'has' if len(rest) == 1 else 'have'} no prior")
        if not rest and abs(explicit - 1) > PRIOR_TOLERANCE:
            raise self.fail("hypotheses", f"every hypothesis has a prior, so they must sum to 1 "
                                          f"(they sum to {explicit:g})")

    def evidence(self, value: Any, hyp_ids: list[str]) -> tuple[EvidenceItem, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail("evidence", f"must be a list, not {_show(value)}")
        out: list[EvidenceItem] = []
        seen: dict[str, str] = {}
        for i, raw in enumerate(value):
            p = f"evidence[{i}]"
            d = self.mapping(raw, p, _EVIDENCE_KEYS, {"id", "text", "reliability", "credibility"})
            eid = self.ident(d["id"], f"{p}.id")
            if eid in seen:
                raise self.fail(f"{p}.id", f"duplicate id {eid!r} (also {seen[eid]})")
            seen[eid] = p
            has_l, has_r = d.get("likelihood") is not None, d.get("rating") is not None
            if has_l and has_r:
                raise self.fail(p, "give either likelihood or rating, not both")
            if not has_l and not has_r:
                raise self.fail(p, "needs a likelihood (P(E | H) per hypothesis) or an ACH rating")
            key = "likelihood" if has_l else "rating"
            per_h = self.per_hypothesis(d[key], f"{p}.{key}", hyp_ids, rating=has_r)
            group = d.get("group")
            out.append(EvidenceItem(
                id=eid,
                reliability=self.reliability(d["reliability"], f"{p}.reliability"),
                credibility=self.credibility(d["credibility"], f"{p}.credibility"),
                likelihood=None if has_r else per_h, rating=per_h if has_r else None,
                text=self.text(d["text"], f"{p}.text"),
                source=self.text(d.get("source"), f"{p}.source"),
                group=None if group is None else self.ident(group, f"{p}.group"),
                undisclosed=self.flag(d.get("undisclosed"), f"{p}.undisclosed"),
                url=self.text(d.get("url"), f"{p}.url"),
                date=None if d.get("date") is None else str(d["date"]),
                notes=self.text(d.get("notes"), f"{p}.notes"),
            ))
        return tuple(out)

    def per_hypothesis(self, value: Any, path: str, hyp_ids: list[str], rating: bool) -> dict:
        if not isinstance(value, dict):
            raise self.fail(path, f"must map each hypothesis to a value, not {_show(value)}")
        out: dict = {}
        for key, v in value.items():
            hid = self.ident(key, path)
            if hid not in hyp_ids:
                raise self.fail(f"{path}.{hid}", f"unknown hypothesis {hid!r} "
                                                 f"(hypotheses: {', '.join(hyp_ids)})")
            if rating:
                r = v.strip().upper() if isinstance(v, str) else None
                if r not in ach.RATINGS:
                    raise self.fail(f"{path}.{hid}", f"{_show(v)} is not one of "
                                                     f"{', '.join(ach.RATINGS)}")
                out[hid] = r
            else:
                out[hid] = self.number(v, f"{path}.{hid}", 0, 1, lo_open=True, interval="(0, 1]")
        missing = [h for h in hyp_ids if h not in out]
        if missing:
            raise self.fail(path, f"no value for hypothesis {', '.join(map(repr, missing))} "
                                  f"(every hypothesis needs one)")
        return {h: out[h] for h in hyp_ids}  # hypothesis order, whatever the file's order

    def reliability(self, value: Any, path: str) -> str:
        r = value.strip().upper() if isinstance(value, str) else None
        if r not in grading.RELIABILITY:
            raise self.fail(path, f"{_show(value)} is not A-F")
        return r

    def credibility(self, value: Any, path: str) -> int:
        c = value.strip() if isinstance(value, str) else value
        c = int(c) if isinstance(c, str) and c.isascii() and c.isdigit() and len(c) < 3 else c
        if isinstance(c, bool) or not isinstance(c, int) or c not in grading.CREDIBILITY:
            raise self.fail(path, f"{_show(value)} is not 1-6")
        return c


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(value)


# ---------------------------------------------------------------------------------------------
# Priors


def hypothesis_priors(case: Case, model_proba: Mapping[str, float] | None = None,
                      resolve: Callable[[str], str | None] = lambda name: name) -> dict[str, float]:
    """The prior over the case's hypotheses.

    * A hypothesis with an explicit ``prior`` keeps it.
    * The others share what is left, ``1 - sum(explicit)``, in proportion to the model's mass at
      the incident: ``model_proba`` maps canonical actor -> P. A hypothesis' ``actor`` goes
      through ``resolve`` (the alias table); the catch_all gets the mass of every actor that no
      hypothesis names (explicit-prior ones included).
    * If ``model_proba`` is None or gives zero to all of them, they share equally.
    * No hypothesis starts at zero: each share is at least ``MIN_SHARE`` before renormalising,
      so an actor the model never saw near the incident can still be raised by evidence.
    """
    explicit = {h.id: h.prior for h in case.hypotheses if h.prior is not None}
    shared = [h for h in case.hypotheses if h.prior is None]
    prior = dict(explicit)
    if shared:
        named: dict[str, str] = {}  # canonical actor -> hypothesis path
        for i, h in enumerate(case.hypotheses):
            if h.catch_all:
                continue
            canon = resolve(h.actor) or h.actor
            if canon in named:
                raise InputError(f"actor {h.actor!r} resolves to {canon!r}, already named by "
                                 f"{named[canon]}", file=case.file, path=f"hypotheses[{i}].actor")
            named[canon] = f"hypotheses[{i}]"
        masses = [_model_mass(h, model_proba or {}, resolve, named) for h in shared]
        total = math.fsum(masses)
        shares = [m / total for m in masses] if total > 0 else [1.0] * len(shared)
        shares = [max(s, MIN_SHARE) for s in shares]
        left = 1.0 - math.fsum(explicit.values())
        norm = math.fsum(shares)
        prior.update({h.id: left * s / norm for h, s in zip(shared, shares)})
    norm = math.fsum(prior.values())  # explicit-only priors may miss 1 by rounding
    return {h.id: prior[h.id] / norm for h in case.hypotheses}


def _model_mass(h: Hypothesis, model_proba: Mapping[str, float], resolve, named) -> float:
    if h.catch_all:
        return math.fsum(p for actor, p in model_proba.items() if actor not in named)
    return float(model_proba.get(resolve(h.actor) or h.actor, 0.0))
