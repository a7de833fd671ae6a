"""Event and query frames to the arrays the model computes with: validated, in input order.

A bad value raises :class:`~culpa.errors.InputError` naming the row and the column; nothing is
coerced silently. The model's columns are those of the store's schema, except ``target`` (who
was attacked or fought), which is the schema's ``other_raw`` when the frame has no ``target``
(:func:`target_column`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from culpa import lazyimport
from culpa.errors import InputError

pd = lazyimport.module("pandas")  # imported when first used: a single query needs none

#: Columns an event frame must have; the others have defaults (see :meth:`EventArrays.parse`).
REQUIRED_COLUMNS = ("id", "time_start", "latitude", "longitude", "actor", "attribution")
OPTIONAL_COLUMNS = {"time_end": None, "date_precision_days": 1.0, "location_precision_km": None,
                    "event_type": None, "target": None, "fatalities": np.nan,
                    "latent": False}
#: Columns a query frame must have (``time`` may be ``time_start``).
QUERY_COLUMNS = ("time", "latitude", "longitude")


def check_frame(df, required, what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    for col in required:
        if col not in df.columns:
            raise InputError(f"{what} has no column '{col}'", field=col)
    if len(df) == 0:
        raise InputError(f"{what} is empty")


def numbers(df, col, *, lo=-np.inf, hi=np.inf, allow_nan=False, what="events") -> np.ndarray:
    """Column ``col`` as floats in [lo, hi] (NaN allowed where ``allow_nan``)."""
    v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(v) if not allow_nan else np.isinf(v)
    bad |= (v < lo) | (v > hi)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise InputError(f"{what} row {r}: {df[col].iloc[r]!r} is not a number in "
                         f"[{lo}, {hi}] ({int(bad.sum())} such rows)", field=col)
    return v


def optional_numbers(df, col, default: float, *, lo=-np.inf, what="events") -> np.ndarray:
    """Column ``col`` (missing values and a missing column: ``default``, which may be NaN)."""
    if col not in df.columns:
        return np.full(len(df), default, dtype=float)
    v = numbers(df, col, lo=lo, allow_nan=True, what=what)
    return v if np.isnan(default) else np.where(np.isnan(v), default, v)


def timestamps(df, col, what="events") -> pd.Series:
    """Column ``col`` as naive UTC timestamps, none missing."""
    try:
        ts = pd.to_datetime(df[col])
    except (ValueError, TypeError) as e:
        raise InputError(f"{what}: not a timestamp ({e})", field=col) from None
    if ts.isna().any():
        r = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise InputError(f"{what} row {r}: timestamp is missing", field=col)
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts


def date_range(df, start_col: str, what: str) -> tuple[pd.Series, pd.Series]:
    """``start_col`` and ``time_end`` (default: the start), the end never before the start."""
    start = timestamps(df, start_col, what)
    end = timestamps(df, "time_end", what) if "time_end" in df.columns else start
    if (end < start).any():
        r = int(np.flatnonzero((end < start).to_numpy())[0])
        raise InputError(f"{what} row {r}: time_end is before {start_col}", field="time_end")
    return start, end


def texts(df, col) -> np.ndarray:
    """Column ``col`` as objects, None where missing or where the frame has no such column."""
    if col not in df.columns:
        return np.full(len(df), None, dtype=object)
    return df[col].astype(object).where(df[col].notna(), None).to_numpy()


def target_column(df: pd.DataFrame) -> np.ndarray:
    """Who was attacked or fought: ``target``, else the store's ``other_raw``, else unknown."""
    for col in ("target", "other_raw"):
        if col in df.columns:
            return texts(df, col)
    return np.full(len(df), None, dtype=object)


#: A day or a naive instant to the second, ISO 8601: what :func:`plain_instant` reads itself.
_PLAIN_ISO = re.compile(r"(\d{4})-\d{2}-\d{2}(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d)?)?")


def plain_instant(value) -> np.datetime64 | None:
    """``YYYY-MM-DD`` or a naive ``YYYY-MM-DD[T ]HH:MM[:SS]`` (a string) as datetime64[s],
    the instant pandas' ``Timestamp`` reads in it; None for anything else (a time zone, other
    layouts, an invalid day, a year pandas cannot hold), which the caller hands to pandas. A
    single query then needs no pandas."""
    m = _PLAIN_ISO.fullmatch(value) if isinstance(value, str) else None
    if m is None or not 1678 <= int(m.group(1)) <= 2261:
        return None
    try:
        return np.datetime64(value.replace(" ", "T"), "s")
    except ValueError:
        return None


def instant_text(ts) -> str:
    """An instant as ``str(pd.Timestamp(ts))`` writes it (``YYYY-MM-DD HH:MM:SS``); a
    datetime64 to the second without pandas."""
    if isinstance(ts, np.datetime64) and np.datetime_data(ts.dtype)[0] in ("s", "m", "h", "D"):
        return str(np.datetime_as_string(ts.astype("datetime64[s]"))).replace("T", " ")
    return str(pd.Timestamp(ts))


def day_text(ts) -> str:
    """The day of a datetime64 (``YYYY-MM-DD``), as ``str(pd.Timestamp(ts).date())``."""
    return str(np.datetime64(ts, "D"))


def date_intervals(start_days, end_days, precision_days) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint and half-width (days) of when each event happened.

    The stated range is ``[start, end + 1 day)`` for dates (precision >= 1 day; an exact time
    when the precision is 0) and the event happened somewhere in it. A precision wider than the
    stated range (a source that gives one date and says "that week") widens the range
    symmetrically about the stated dates: the event is no later or earlier than the dates say,
    on average, so an event coded "within the year" stays near its stated dates.
    """
    s, e = np.asarray(start_days, float), np.asarray(end_days, float)
    p = np.asarray(precision_days, float)
    stated = (e - s) + np.minimum(p, 1.0)
    return s + 0.5 * stated, 0.5 * np.maximum(p, stated)


def days_since(ts, t0: np.datetime64) -> np.ndarray:
    """Timestamps as days (float) since ``t0``."""
    v = pd.to_datetime(ts).to_numpy(dtype="datetime64[s]")
    return (v - t0).astype(np.float64) / 86400.0


@dataclass(frozen=True)
class EventArrays:
    """An event frame's columns (input order). ``location_precision`` is NaN where unknown;
    ``labelled``: the actor is known (:func:`culpa.events.schema.is_labelled`) and the event is
    not marked ``latent``."""

    ids: np.ndarray
    start: pd.Series
    end: pd.Series
    lat: np.ndarray
    lon: np.ndarray
    date_precision: np.ndarray
    location_precision: np.ndarray
    actor: np.ndarray
    labelled: np.ndarray
    event_type: np.ndarray
    target: np.ndarray
    fatalities: np.ndarray

    @classmethod
    def parse(cls, df: pd.DataFrame) -> "EventArrays":
        """Validate an event frame (columns: ``REQUIRED_COLUMNS``, optional
        ``OPTIONAL_COLUMNS``) and return its arrays."""
        from culpa.events.schema import is_labelled  # pyarrow: fitting only

        check_frame(df, REQUIRED_COLUMNS, "events")
        ids = df["id"].astype(object)
        if ids.isna().any():
            raise InputError(f"events row {int(np.flatnonzero(ids.isna())[0])}: id is missing",
                             field="id")
        ids = ids.astype(str).to_numpy()
        if len(set(ids)) != len(ids):
            dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
            raise InputError(f"events: id {dup!r} occurs more than once", field="id")
        start, end = date_range(df, "time_start", "events")
        n = len(df)
        latent = (df["latent"].fillna(False).astype(bool).to_numpy()
                  if "latent" in df.columns else np.zeros(n, bool))
        fat = df["fatalities"] if "fatalities" in df.columns else np.full(n, np.nan)
        return cls(ids=ids, start=start, end=end,
                   lat=numbers(df, "latitude", lo=-90, hi=90),
                   lon=numbers(df, "longitude", lo=-180, hi=180),
                   date_precision=optional_numbers(df, "date_precision_days", 1.0, lo=0),
                   location_precision=optional_numbers(df, "location_precision_km", np.nan,
                                                       lo=0),
                   actor=texts(df, "actor"), labelled=is_labelled(df) & ~latent,
                   event_type=texts(df, "event_type"), target=target_column(df),
                   fatalities=np.asarray(fat))

    def dates_since(self, t0: np.datetime64) -> tuple[np.ndarray, np.ndarray]:
        """Midpoint and half-width of each event's date range, in days since ``t0``."""
        return date_intervals(days_since(self.start, t0), days_since(self.end, t0),
                              self.date_precision)


@dataclass(frozen=True)
class QueryArrays:
    """A query frame's columns: when (days since the model's ``t0``: midpoint ``t`` and
    half-width ``u``), where, and the marks as given (``location_precision`` NaN where unknown)."""

    t: np.ndarray
    u: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    location_precision: np.ndarray
    event_type: np.ndarray
    target: np.ndarray
    fatalities: np.ndarray

    @classmethod
    def parse(cls, queries: pd.DataFrame, t0: np.datetime64) -> "QueryArrays":
        """Columns: ``time`` (or ``time_start``), ``latitude``, ``longitude``; optional
        ``time_end``, ``location_precision_km``, ``date_precision_days``, ``event_type``,
        ``target`` (or ``other_raw``), ``fatalities``."""
        tcol = "time" if "time" in queries.columns else "time_start"
        check_frame(queries, (tcol, "latitude", "longitude"), "queries")
        ts, end = date_range(queries, tcol, "queries")
        n = len(queries)
        lat = numbers(queries, "latitude", lo=-90, hi=90, what="queries")
        lon = numbers(queries, "longitude", lo=-180, hi=180, what="queries")
        prec = optional_numbers(queries, "location_precision_km", np.nan, lo=0, what="queries")
        dprec = optional_numbers(queries, "date_precision_days", 1.0, lo=0, what="queries")
        fat = queries["fatalities"] if "fatalities" in queries.columns else np.full(n, np.nan)
        t, u = date_intervals(days_since(ts, t0), days_since(end, t0), dprec)
        return cls(t=t, u=u, lat=lat, lon=lon, location_precision=prec,
                   event_type=texts(queries, "event_type"), target=target_column(queries),
                   fatalities=np.asarray(fat))

    @classmethod
    def one(cls, t0: np.datetime64, time, lat: float, lon: float,
            precision_km: float | None = None, date_precision_days: float | None = 1.0,
            event_type: str | None = None, target: str | None = None,
            fatalities: float | None = None) -> "QueryArrays":
        """One query given as values: the arrays and checks of :meth:`parse` on the one-row
        frame of those values, without building the frame (a served attribution is one
        query, and the frame cost more than the model's arithmetic)."""
        day = (np.array([_one_time(time)]).astype("datetime64[s]") - t0).astype(
            np.float64) / 86400.0
        prec = _one_number(precision_km, "location_precision_km", 0.0, np.nan)
        dprec = _one_number(date_precision_days, "date_precision_days", 0.0, 1.0)
        t, u = date_intervals(day, day, dprec)
        return cls(t=t, u=u,
                   lat=_one_number(lat, "latitude", -90.0, None, hi=90.0),
                   lon=_one_number(lon, "longitude", -180.0, None, hi=180.0),
                   location_precision=prec,
                   event_type=np.array([_one_text(event_type)], dtype=object),
                   target=np.array([_one_text(target)], dtype=object),
                   fatalities=np.array([np.nan if fatalities is None else fatalities],
                                       dtype=float))


def _one_time(time) -> np.datetime64:
    """One query's time as naive UTC datetime64 (a datetime64 to the second or a plain ISO
    string without pandas)."""
    if isinstance(time, np.datetime64) and np.datetime_data(time.dtype)[0] in ("s", "m", "h",
                                                                                "D"):
        return time.astype("datetime64[s]")
    plain = plain_instant(time)
    if plain is not None:
        return plain
    try:
        ts = pd.Timestamp(time)
    except (ValueError, TypeError) as e:
        raise InputError(f"queries: not a timestamp ({e})", field="time") from None
    if pd.isna(ts):
        raise InputError("queries row 0: timestamp is missing", field="time")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_datetime64()


def _one_number(value, col: str, lo: float, default, hi: float = np.inf) -> np.ndarray:
    """One query's number as a length-1 array, as :func:`numbers` (``default`` None: required)
    or :func:`optional_numbers` (missing: ``default``) check it."""
    try:
        v = float("nan") if value is None else float(value)
    except (TypeError, ValueError):
        v = float("nan")
    missing = v != v
    if missing and default is not None:
        return np.array([default], dtype=float)
    if missing or v in (np.inf, -np.inf) or v < lo or v > hi:
        raise InputError(f"queries row 0: {value!r} is not a number in [{lo}, {hi}] "
                         f"(1 such rows)", field=col)
    return np.array([v], dtype=float)


def _one_text(value):
    """As :func:`texts` for one value: None where missing."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value
