"""Geometry in NumPy: a local map projection (lon/lat -> x/y km) and great-circle distance.

The model works in kilometres on a plane. :class:`LocalProjection` is an azimuthal equidistant
projection about a centre (by default the centroid of the fitted events): distances *from the
centre* are exact and local distances elsewhere are stretched by at most ``c**2 / 6`` where ``c``
is the angular distance to the centre (0.07 % at 400 km, 1.6 % at 2,000 km). That is ample for a
country or a region; a global fit should be split into regions (they are nearly independent).
The projection is stored with the fitted model so queries are projected exactly the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Mean Earth radius in km (IUGG).
EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km between points given in degrees (broadcasts)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def spherical_centroid(lat, lon) -> tuple[float, float]:
    """Centre of a point cloud on the sphere (mean of unit vectors), in degrees."""
    la, lo = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    v = np.array([np.mean(np.cos(la) * np.cos(lo)), np.mean(np.cos(la) * np.sin(lo)),
                  np.mean(np.sin(la))])
    if np.linalg.norm(v) < 1e-9:  # antipodal cloud: any centre is as good
        return 0.0, 0.0
    return (float(np.degrees(np.arctan2(v[2], np.hypot(v[0], v[1])))),
            float(np.degrees(np.arctan2(v[1], v[0]))))


@dataclass(frozen=True)
class LocalProjection:
    """Azimuthal equidistant projection about ``(lat0, lon0)``; x east, y north, in km."""

    lat0: float
    lon0: float

    @classmethod
    def about(cls, lat, lon) -> "LocalProjection":
        """The projection centred on the spherical centroid of the given points."""
        return cls(*spherical_centroid(lat, lon))

    def forward(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """lon/lat in degrees -> (x, y) in km."""
        p = np.radians(np.asarray(lat, dtype=float))
        dl = np.radians(np.asarray(lon, dtype=float) - self.lon0)
        p0 = np.radians(self.lat0)
        cos_c = np.clip(np.sin(p0) * np.sin(p) + np.cos(p0) * np.cos(p) * np.cos(dl), -1.0, 1.0)
        c = np.arccos(cos_c)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.where(c < 1e-12, 1.0, c / np.sin(c))
        x = EARTH_RADIUS_KM * k * np.cos(p) * np.sin(dl)
        y = EARTH_RADIUS_KM * k * (np.cos(p0) * np.sin(p) - np.sin(p0) * np.cos(p) * np.cos(dl))
        return x, y

    def inverse(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) in km -> (lat, lon) in degrees."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        rho = np.hypot(x, y)
        c = rho / EARTH_RADIUS_KM
        p0, l0 = np.radians(self.lat0), np.radians(self.lon0)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(rho < 1e-9, 0.0, y * np.sin(c) * np.cos(p0) / np.where(rho > 0, rho, 1))
        lat = np.arcsin(np.clip(np.cos(c) * np.sin(p0) + s, -1.0, 1.0))
        lon = l0 + np.arctan2(x * np.sin(c),
                              rho * np.cos(p0) * np.cos(c) - y * np.sin(p0) * np.sin(c))
        lon = (np.degrees(lon) + 180.0) % 360.0 - 180.0
        return np.degrees(lat), lon

    def to_dict(self) -> dict:
        return {"kind": "azimuthal_equidistant", "lat0": self.lat0, "lon0": self.lon0}

    @classmethod
    def from_dict(cls, d: dict) -> "LocalProjection":
        return cls(float(d["lat0"]), float(d["lon0"]))
