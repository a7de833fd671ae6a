"""Watch-list files: the YAML that names the sites ``culpa warn`` watches (see
``examples/sites_syria.yaml``). Errors name the file, the line and the key path, e.g.
``sites.yaml:9: sites[2].radius_km: must be a number > 0 and <= 1000, not -5``.
"""

from __future__ import annotations

import math
from typing import Any

from culpa import yamldoc
from culpa.inputs import read_text
from culpa.model.forecast import Site

_TOP_KEYS = {"sites", "title", "description"}
_SITE_KEYS = {"name", "lat", "lon", "radius_km", "horizon_days", "description"}


def load_sites(path) -> list[Site]:
    """Read and validate a watch-list YAML file."""
    return parse_sites(read_text(path, "sites file"), file=str(path))


def parse_sites(text: str, file: str | None = None) -> list[Site]:
    """Validate watch-list YAML given as a string; ``file`` only labels error messages."""
    doc = yamldoc.load(text, file)
    data = doc.data
    if isinstance(data, list):  # a bare list of sites is accepted too
        data = {"sites": data}
        doc.lines = {f"sites{k}": v for k, v in doc.lines.items()}
    fail = doc.fail
    if not isinstance(data, dict):
        raise fail("", "must be a mapping with a 'sites' list")
    for key in data:
        if key not in _TOP_KEYS:
            raise fail(str(key), f"unknown key (expected one of: {', '.join(sorted(_TOP_KEYS))})")
    sites_doc = data.get("sites")
    if not isinstance(sites_doc, list) or not sites_doc:
        raise fail("sites", "must be a non-empty list of sites")
    out: list[Site] = []
    names: set[str] = set()
    for i, s in enumerate(sites_doc):
        p = f"sites[{i}]"
        if not isinstance(s, dict):
            raise fail(p, f"must be a mapping with name, lat, lon, radius_km, not {s!r}")
        for key in s:
            if key not in _SITE_KEYS:
                raise fail(f"{p}.{key}",
                           f"unknown key (expected one of: {', '.join(sorted(_SITE_KEYS))})")
        for key in ("name", "lat", "lon", "radius_km"):
            if s.get(key) is None:
                raise fail(f"{p}.{key}", "missing (required)")
        name = s["name"]
        if not isinstance(name, str) or not name.strip():
            raise fail(f"{p}.name", f"must be a non-empty string, not {name!r}")
        if name.strip() in names:
            raise fail(f"{p}.name", f"{name!r} is already the name of another site")
        names.add(name.strip())
        lat = _number(s["lat"], -90, 90, f"{p}.lat", fail)
        lon = _number(s["lon"], -180, 180, f"{p}.lon", fail)
        radius = _number(s["radius_km"], 0, 1000, f"{p}.radius_km", fail, open_low=True)
        hz = s.get("horizon_days")
        if hz is not None:
            hz = _number(hz, 0, 366, f"{p}.horizon_days", fail, open_low=True)
        out.append(Site(name.strip(), lat, lon, radius, hz))
    return out


def _number(v: Any, lo: float, hi: float, path: str, fail, open_low: bool = False) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if ok:
        ok = (v > lo if open_low else v >= lo) and v <= hi
    if not ok:
        rel = ">" if open_low else ">="
        raise fail(path, f"must be a number {rel} {lo:g} and <= {hi:g}, not {v!r}")
    return float(v)
