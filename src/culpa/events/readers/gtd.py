"""Global Terrorism Database (GTD, START / University of Maryland) CSV exports, plain or gzip.

The real export is Windows-1252 (Latin-1 family), not UTF-8: the encoding is detected (UTF-8 if
the whole file is valid UTF-8, else cp1252, else latin-1), so "Sulaymaniyah" and "Ninewa" come
through as written and so do accented names.

How a GTD row becomes an event:

- id: ``gtd:<eventid>``.
- time: ``iyear``/``imonth``/``iday``, where 0 means unknown. A known day gives one day
  (time_start = time_end, 1 day). An unknown day gives the whole month: time_start its 1st,
  time_end its last day, date_precision_days its length (28-31). An unknown month gives the
  whole year (365/366 days). GTD's ``approxdate`` text and the ``extended``/``resolution``
  columns (attacks lasting more than a day) stay in the provenance record.
- place: ``latitude``/``longitude``; ``specificity`` -> location_precision_km:
  1 the exact city/village/town -> 1 km; 2 the town, but coordinates of the smallest region
  around it -> 25 km; 3 not in a town, centroid of the smallest region known (admin-2) -> 50 km;
  4 only the admin-1 region is known, its centroid -> 100 km; 5 no admin-1 region known -> 250 km.
  Blank specificity -> null.
- Rows without coordinates: GTD leaves latitude/longitude blank for a few percent of events
  (location unknown beyond the country). They are real events and are **stored**, with latitude,
  longitude and location_precision_km null, so an ingest never loses a record and ``stats`` can
  count them; anything that needs a place (the model) must drop rows with null coordinates.
  A row with only one of the two coordinates is an error.
- actor: ``gname``, resolved through the alias table. ``gname`` "Unknown" -> actor null,
  attribution "unattributed"; otherwise ``guncertain1`` = 1 (attribution to this group is
  suspected, not confirmed) -> "suspected"; else ``claimed`` = 1 -> "claimed"; else
  "attributed" (``claimed`` 0 or -9 unknown). A doubtful claim (both 1) is "suspected".
  Second and third perpetrators (gname2, gname3) stay in the record; actor_members is [actor].
- event_type = ``attacktype1_txt`` ("Bombing/Explosion", "Armed Assault", ...);
  other_raw = ``targtype1_txt`` (the target type); actor_raw = ``gname``.
- fatalities = ``nkill`` (blank: unknown -> null; must be >= 0; rounded to a whole number).
- country = ``country_txt``, admin1 = ``provstate``; GTD has no admin-2 (``city`` is a place
  name and stays in the record).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from culpa.events.readers.base import (
    Batch, CsvSource, Progress, build_table, check_coordinates, check_counts, resolve_actors,
    sniff_encoding, text, to_float)

FORMAT = "gtd"
REQUIRED = ("eventid", "iyear", "imonth", "iday", "latitude", "longitude", "gname")

#: specificity -> km (see the module docstring).
SPECIFICITY_KM = {1: 1.0, 2: 25.0, 3: 50.0, 4: 100.0, 5: 250.0}


def detect(columns: list[str]) -> bool:
    return {"eventid", "iyear", "imonth", "iday", "gname"} <= set(columns)


def _number(src: CsvSource, batch: Batch, col: str, *, allowed=None, lo=None, hi=None,
            whole: bool = True, default: float = np.nan) -> np.ndarray:
    """A numeric column (NaN/default where blank or absent), checked cell by cell."""
    if col not in batch.frame.columns:
        return np.full(len(batch.frame), default)
    val, bad = to_float(batch.frame[col])
    src.fail(batch, bad, col, "is not a number")
    present = ~np.isnan(val)
    if whole:
        src.fail(batch, present & (val != np.floor(np.where(present, val, 0))), col,
                 "is not a whole number")
    if allowed is not None:
        src.fail(batch, present & ~np.isin(val, allowed), col,
                 f"must be one of {', '.join(str(a) for a in allowed)}")
    if lo is not None:
        src.fail(batch, present & (np.where(present, val, lo) < lo), col, f"must be >= {lo}")
    if hi is not None:
        src.fail(batch, present & (np.where(present, val, hi) > hi), col, f"must be <= {hi}")
    return np.where(present, val, default)


def dates(src: CsvSource, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """time_start and time_end (datetime64[D]) from iyear/imonth/iday, 0 meaning unknown."""
    year = _number(src, batch, "iyear", lo=1000, hi=9999)
    src.fail(batch, np.isnan(year), "iyear", "year is missing")
    month = _number(src, batch, "imonth", lo=0, hi=12, default=0)
    day = _number(src, batch, "iday", lo=0, hi=31, default=0)
    y, m, d = year.astype(np.int64), month.astype(np.int64), day.astype(np.int64)

    no_month = m == 0
    no_day = no_month | (d == 0)
    ym = ((y - 1970) * 12 + np.where(no_month, 0, m - 1)).astype("datetime64[M]")
    first = ym.astype("datetime64[D]")
    after = (ym + 1).astype("datetime64[D]")  # first day of the next month
    src.fail(batch, ~no_day & (d > (after - first).astype(np.int64)), "iday",
             "is not a day of that month")
    start = np.where(no_day, first, first + np.where(no_day, 0, d - 1))
    end = np.where(no_day, after - 1, start)
    year_first = (y - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    year_last = (y - 1970 + 1).astype("datetime64[Y]").astype("datetime64[D]") - 1
    start = np.where(no_month, year_first, start)
    end = np.where(no_month, year_last, end)
    return start, end


def read(path: Path, aliases, progress: Progress | None = None) -> Iterator[pa.Table]:
    src = CsvSource(path, REQUIRED, progress, encoding=sniff_encoding(Path(path)))
    source_file = str(Path(path).resolve())
    for batch in src.batches():
        f = batch.frame
        n = len(f)
        ids = text(f["eventid"])
        src.fail(batch, ids.isna().to_numpy(), "eventid", "event id is missing")
        start, end = dates(src, batch)
        days = (end - start).astype(np.int64) + 1.0

        lat, lon = check_coordinates(src, batch, "latitude", "longitude", required=False)
        src.fail(batch, np.isnan(lat) & ~np.isnan(lon), "latitude",
                 "latitude is missing but longitude is given")
        src.fail(batch, np.isnan(lon) & ~np.isnan(lat), "longitude",
                 "longitude is missing but latitude is given")
        spec = _number(src, batch, "specificity", allowed=list(SPECIFICITY_KM))
        km = np.full(n, np.nan)
        for code, value in SPECIFICITY_KM.items():
            km[spec == code] = value
        km[np.isnan(lat)] = np.nan  # no place, no precision

        actor_raw = text(f["gname"])
        actor, _ = resolve_actors(actor_raw, aliases, sep=None)
        members = actor.map(lambda a: [a] if isinstance(a, str) else [])
        uncertain = _number(src, batch, "guncertain1", allowed=[0, 1]) == 1
        claimed = _number(src, batch, "claimed", allowed=[0, 1, -9]) == 1
        known = actor.notna().to_numpy(dtype=bool)
        attribution = np.select(
            [~known, uncertain, claimed], ["unattributed", "suspected", "claimed"],
            default="attributed").astype(object)
        nkill = _number(src, batch, "nkill", lo=0, whole=False)
        check_counts(src, batch, nkill, "nkill", "nkill (fatalities)", whole=False)
        yield build_table({
            "id": "gtd:" + ids,
            "source": np.full(n, FORMAT, dtype=object),
            "time_start": start, "time_end": end, "date_precision_days": days,
            "latitude": lat, "longitude": lon, "location_precision_km": km,
            "country": text(f["country_txt"]) if "country_txt" in f.columns else None,
            "admin1": text(f["provstate"]) if "provstate" in f.columns else None,
            "actor": actor, "actor_members": members, "attribution": attribution,
            "event_type": text(f["attacktype1_txt"]) if "attacktype1_txt" in f.columns else None,
            "fatalities": np.round(nkill),
            "actor_raw": actor_raw,
            "other_raw": text(f["targtype1_txt"]) if "targtype1_txt" in f.columns else None,
            "source_file": np.full(n, source_file, dtype=object),
            "source_row": batch.rows(), "record": batch.records_json(),
        }, n)
