"""UCDP Georeferenced Event Dataset (GED) CSV, including HDX exports with an HXL hashtag row.

The attributed party follows DESIGN.md: in state-based violence (type 1) with a government as
side_a, the non-state side_b; otherwise side_a (for one-sided violence, the perpetrator).
Precision codes come from the GED codebook (Högbladh 2019).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from culpa.events.readers.base import (
    CsvSource, Progress, build_table, check_coordinates, check_counts, resolve_actors, text, to_date,
    to_float)

FORMAT = "ucdp"
REQUIRED = ("id", "type_of_violence", "side_a", "side_b", "date_start", "date_end",
            "latitude", "longitude")

#: where_prec -> km: 1 exact place, 2 within ~25 km of it, 3 second-order admin area,
#: 4 first-order admin area (often its centroid), 5 a linear feature or wider area,
#: 6 only the country, 7 international waters or airspace.
WHERE_PREC_KM = {1: 1.0, 2: 25.0, 3: 50.0, 4: 100.0, 5: 100.0, 6: 300.0, 7: 300.0}
#: date_prec -> days: 1 exact day, 2 a range of 2-6 days, 3 the week, 4 the month, 5 the year.
#: Only used when date_start = date_end: otherwise those two are UCDP's earliest and latest
#: possible dates and their span is the precision (code 5 means "between a month and a year",
#: and on the shared Syria data its spans run from 32 to 366 days, median 65).
DATE_PREC_DAYS = {1: 1.0, 2: 6.0, 3: 7.0, 4: 30.0, 5: 365.0}
VIOLENCE_TYPES = {1: "state-based", 2: "non-state", 3: "one-sided"}


def detect(columns: list[str]) -> bool:
    return {"type_of_violence", "side_a", "side_b", "where_prec", "date_prec"} <= set(columns)


def _codes(src: CsvSource, batch, col: str, table: dict) -> np.ndarray:
    if col not in batch.frame.columns:
        return np.full(len(batch.frame), np.nan)
    code, bad = to_float(batch.frame[col])
    src.fail(batch, bad, col, "is not a number")
    with np.errstate(invalid="ignore"):
        src.fail(batch, ~np.isnan(code) & ~np.isin(code, list(table)), col,
                 f"is not a known code ({min(table)}-{max(table)})")
    return _lookup(code, table)


def _lookup(code: np.ndarray, table: dict) -> np.ndarray:
    out = np.full(code.shape, np.nan)
    for k, v in table.items():
        out[code == k] = v
    return out


def read(path: Path, aliases, progress: Progress | None = None) -> Iterator[pa.Table]:
    src = CsvSource(path, REQUIRED, progress)
    for batch in src.batches():
        f = batch.frame
        n = len(f)
        ids = text(f["id"])
        src.fail(batch, ids.isna().to_numpy(), "id", "event id is missing")
        tov, bad = to_float(f["type_of_violence"])
        src.fail(batch, bad | ~np.isin(tov, [1, 2, 3]), "type_of_violence", "must be 1, 2 or 3")
        start, bad = to_date(f["date_start"])
        src.fail(batch, bad, "date_start", "not a date (YYYY-MM-DD)")
        src.fail(batch, np.isnat(start), "date_start", "date is missing")
        end, bad = to_date(f["date_end"])
        src.fail(batch, bad, "date_end", "not a date (YYYY-MM-DD)")
        end = np.where(np.isnat(end), start, end)
        src.fail(batch, end < start, "date_end", "is before date_start")
        lat, lon = check_coordinates(src, batch, "latitude", "longitude")
        loc_km = _codes(src, batch, "where_prec", WHERE_PREC_KM)
        date_days = _codes(src, batch, "date_prec", DATE_PREC_DAYS)
        span = (end - start).astype("timedelta64[D]").astype(float) + 1.0
        date_days = np.where(span > 1, span, np.where(np.isnan(date_days), 1.0, date_days))

        side_a, side_b = text(f["side_a"]), text(f["side_b"])
        gov_a = side_a.str.startswith("Government of").fillna(False).to_numpy(dtype=bool)
        takes_b = (tov == 1) & gov_a
        attributed_raw = side_a.where(~takes_b, side_b)
        other_raw = side_b.where(~takes_b, side_a)
        actor, members = resolve_actors(attributed_raw, aliases, sep=",")
        deaths, bad = to_float(f["best"]) if "best" in f.columns else (np.full(n, np.nan), None)
        if bad is not None:
            src.fail(batch, bad, "best", "fatalities are not a number")
            check_counts(src, batch, deaths, "best", "fatalities")
        yield build_table({
            "id": "ucdp:" + ids,
            "source": np.full(n, FORMAT, dtype=object),
            "time_start": start, "time_end": end, "date_precision_days": date_days,
            "latitude": lat, "longitude": lon, "location_precision_km": loc_km,
            "country": text(f["country"]) if "country" in f else None,
            "admin1": text(f["adm_1"]) if "adm_1" in f else None,
            "admin2": text(f["adm_2"]) if "adm_2" in f else None,
            "actor": actor, "actor_members": members,
            "attribution": np.where(actor.notna(), "attributed", "unattributed").astype(object),
            "event_type": np.array([VIOLENCE_TYPES[int(t)] for t in tov], dtype=object),
            "fatalities": deaths,
            "actor_raw": attributed_raw, "other_raw": other_raw,
            "source_file": np.full(n, str(Path(path).resolve()), dtype=object),
            "source_row": batch.rows(), "record": batch.records_json(),
        }, n)
