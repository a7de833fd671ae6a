"""The one normalised event schema every reader produces and the store keeps.

A reader yields pyarrow tables with exactly the columns of ``EVENT_COLUMNS`` (in that order,
with those types). Everything downstream — store, model, evidence, faces — reads only these.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import pyarrow as pa

#: Attribution status of an event, from strongest to weakest claim on who did it.
ATTRIBUTION_STATUSES = ("claimed", "attributed", "suspected", "disputed", "unattributed")

#: Statuses whose actor label the model treats as known (q = 1); the rest are latent.
LABELLED_STATUSES = ("claimed", "attributed")


def is_labelled(events):
    """Which events' actor is known (a boolean array): those with an actor whose attribution is
    one of ``LABELLED_STATUSES``. ``events``: a DataFrame with ``actor`` and ``attribution``."""
    return (events["actor"].notna() & events["attribution"].isin(LABELLED_STATUSES)).to_numpy()

EVENT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),  # source-qualified, stable: "ucdp:114064"
        ("source", pa.string()),  # ucdp | acled | gtd | csv
        ("time_start", pa.timestamp("s")),
        ("time_end", pa.timestamp("s")),
        ("date_precision_days", pa.float64()),
        ("latitude", pa.float64()),
        ("longitude", pa.float64()),
        ("location_precision_km", pa.float64()),
        ("country", pa.string()),
        ("admin1", pa.string()),
        ("admin2", pa.string()),
        ("actor", pa.string()),  # canonical, after alias resolution; null when unattributed
        ("actor_members", pa.list_(pa.string())),  # coalition members (canonical), else [actor]
        ("attribution", pa.string()),  # one of ATTRIBUTION_STATUSES
        ("event_type", pa.string()),
        ("fatalities", pa.int64()),
        ("actor_raw", pa.string()),  # the source's own string for the attributed side
        ("other_raw", pa.string()),  # the source's own string for the other side / target
        ("source_file", pa.string()),
        ("source_row", pa.int64()),  # 1-based record number in the file (header rows excluded)
        ("record", pa.string()),  # the source record as JSON, for provenance: see below
    ]
)

# The source record of an event is kept whole, every column exactly as the file gave it, as a
# JSON array: ``["<layout>", value, value, ...]``. The column names are kept once per layout
# (the file's header) in the store's ``record_layouts`` table, not repeated in every row:
# that makes ingest about a third faster and the store 40% smaller. ``Store.event`` (and the
# ``event_records`` view) turn it back into a mapping of column -> value.

#: Schema metadata key under which a reader's table carries its record columns (a JSON list).
RECORD_COLUMNS_KEY = b"culpa.record_columns"


def record_layout(names: Sequence[str]) -> str:
    """The key of a record layout: a short hash of its column names, in order."""
    return hashlib.sha256(json.dumps(list(names)).encode()).hexdigest()[:16]

EVENT_COLUMNS = tuple(EVENT_SCHEMA.names)

#: DuckDB column types, derived from the arrow schema so the two cannot drift apart.
_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.timestamp("s"): "TIMESTAMP",
    pa.float64(): "DOUBLE",
    pa.int64(): "BIGINT",
    pa.list_(pa.string()): "VARCHAR[]",
}


def duckdb_columns() -> str:
    """Column definitions for ``CREATE TABLE events (...)``."""
    parts = []
    for field in EVENT_SCHEMA:
        # No PRIMARY KEY on id: DuckDB's index makes bulk inserts several times slower, and the
        # store keeps ids unique itself (an anti-join inside the ingest transaction).
        parts.append(f"{field.name} {_DUCK_TYPES[field.type]}")
    return ", ".join(parts)
