"""ACLED (Armed Conflict Location & Event Data) CSV exports: the current API/website export and
the older layout (with ``data_id``, ``event_id_no_cnty``, ``iso3``; dates written "27 December
2019"), plain or gzip, with or without the HXL hashtag row of HDX copies.

How an ACLED row becomes an event:

- id: ``acled:<event_id_cnty>`` (ACLED keeps event_id_cnty when it revises an event).
- time: ``event_date``, "2019-12-27" or "27 December 2019" (also "27 Dec 2019");
  time_start = time_end = that date. ACLED gives one date; ``time_precision`` says how sure it
  is: 1 the actual day -> 1 day, 2 the week or weekend -> 7 days, 3 only the month -> 30 days
  (absent -> 1 day). As with UCDP, the uncertainty lives in ``date_precision_days``.
- place: ``geo_precision`` -> location_precision_km: 1 the exact town or village -> 2 km;
  2 near a town or a part of a region (the nearest town is coded) -> 20 km; 3 only a larger
  region is known (its provincial capital or centroid is coded) -> 50 km. Absent -> 2 km.
- actor: ``actor1``, resolved through the alias table; an "Unidentified ..." actor1 ("Unidentified
  Armed Group (Iraq)") leaves the actor null with attribution "unattributed", any other is
  "attributed". ACLED does not code claims, so "claimed"/"suspected" never come from it.
  actor1 is one actor, never split into a coalition, and ``actor_members`` is ``[actor]``:
  ``assoc_actor_1`` lists the actors *associated with* actor1 in that event — often identity or
  civilian groups ("Sunni Muslim Group (Iraq)"), not co-perpetrators — so it stays in the
  provenance record and is not counted as membership.
  Note: ACLED's actor1/actor2 do not encode direction (attacker/defender); actor1 is the side
  ACLED lists first, which for one-sided violence and remote violence is the perpetrator.
- event_type: ``sub_event_type`` (the most specific, e.g. "Shelling/artillery/missile attack",
  "Remote explosive/landmine/IED"; each sub-type belongs to exactly one event_type), else
  ``event_type``. Protests, riots and strategic developments are kept: choosing which event
  types feed a model is the model's business, not the reader's.
- fatalities: whole number >= 0; actor_raw = actor1, other_raw = actor2;
  country/admin1/admin2 as given.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from culpa.events.readers.base import (
    Batch, CsvSource, Progress, blank, build_table, check_coordinates, check_counts,
    resolve_actors, text, to_date, to_float)

FORMAT = "acled"
REQUIRED = ("event_id_cnty", "event_date", "event_type", "actor1", "latitude", "longitude")

#: geo_precision -> km (see the module docstring).
GEO_PRECISION_KM = {1: 2.0, 2: 20.0, 3: 50.0}
#: time_precision -> days.
TIME_PRECISION_DAYS = {1: 1.0, 2: 7.0, 3: 30.0}
#: event_date spellings, tried in order: ISO (current exports), then older exports.
DATE_FORMATS = ("ISO8601", "%d %B %Y", "%d %b %Y", "%d-%B-%Y", "%d-%b-%Y")


def detect(columns: list[str]) -> bool:
    return {"event_id_cnty", "actor1", "event_type"} <= set(columns)


def parse_dates(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """ACLED event dates in either spelling; bad = present but in none of them."""
    out = np.full(len(s), np.datetime64("NaT"), dtype="datetime64[s]")
    todo = ~blank(s)
    for fmt in DATE_FORMATS:
        if not todo.any():
            break
        parsed, _ = to_date(s[todo], fmt)
        out[todo] = parsed
        todo &= np.isnat(out)
    return out, todo


def codes(src: CsvSource, batch: Batch, col: str, table: dict, default: float) -> np.ndarray:
    """A precision code column looked up in ``table``; absent column or blank cell -> default."""
    n = len(batch.frame)
    if col not in batch.frame.columns:
        return np.full(n, default)
    code, bad = to_float(batch.frame[col])
    src.fail(batch, bad, col, "is not a number")
    with np.errstate(invalid="ignore"):
        src.fail(batch, ~np.isnan(code) & ~np.isin(code, list(table)), col,
                 f"is not a known code ({', '.join(str(k) for k in table)})")
    out = np.full(n, default)
    for k, v in table.items():
        out[code == k] = v
    return out


def whole_numbers(src: CsvSource, batch: Batch, col: str, what: str) -> np.ndarray:
    """Counts: whole numbers >= 0 as floats (NaN where blank or the column is absent)."""
    if col not in batch.frame.columns:
        return np.full(len(batch.frame), np.nan)
    val, bad = to_float(batch.frame[col])
    src.fail(batch, bad, col, f"{what} is not a number")
    check_counts(src, batch, val, col, what)
    return val


def read(path: Path, aliases, progress: Progress | None = None) -> Iterator[pa.Table]:
    src = CsvSource(path, REQUIRED, progress)
    source_file = str(Path(path).resolve())
    for batch in src.batches():
        f = batch.frame
        n = len(f)
        ids = text(f["event_id_cnty"])
        src.fail(batch, ids.isna().to_numpy(), "event_id_cnty", "event id is missing")
        date, bad = parse_dates(f["event_date"])
        src.fail(batch, bad, "event_date", "not a date (2019-12-27 or 27 December 2019)")
        src.fail(batch, np.isnat(date), "event_date", "date is missing")
        days = codes(src, batch, "time_precision", TIME_PRECISION_DAYS, 1.0)
        lat, lon = check_coordinates(src, batch, "latitude", "longitude")
        km = codes(src, batch, "geo_precision", GEO_PRECISION_KM, GEO_PRECISION_KM[1])

        actor_raw = text(f["actor1"])
        actor, _ = resolve_actors(actor_raw, aliases, sep=None)
        members = actor.map(lambda a: [a] if isinstance(a, str) else [])
        etype = text(f["event_type"])
        src.fail(batch, etype.isna().to_numpy(), "event_type", "event type is missing")
        if "sub_event_type" in f.columns:
            etype = text(f["sub_event_type"]).fillna(etype)
        yield build_table({
            "id": "acled:" + ids,
            "source": np.full(n, FORMAT, dtype=object),
            "time_start": date, "time_end": date, "date_precision_days": days,
            "latitude": lat, "longitude": lon, "location_precision_km": km,
            "country": text(f["country"]) if "country" in f.columns else None,
            "admin1": text(f["admin1"]) if "admin1" in f.columns else None,
            "admin2": text(f["admin2"]) if "admin2" in f.columns else None,
            "actor": actor, "actor_members": members,
            "attribution": np.where(actor.notna(), "attributed", "unattributed").astype(object),
            "event_type": etype,
            "fatalities": whole_numbers(src, batch, "fatalities", "fatalities"),
            "actor_raw": actor_raw,
            "other_raw": text(f["actor2"]) if "actor2" in f.columns else None,
            "source_file": np.full(n, source_file, dtype=object),
            "source_row": batch.rows(), "record": batch.records_json(),
        }, n)
