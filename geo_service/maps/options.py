"""The choices a map page is made with, checked: the basemap a user names or
configures, where rendered files go. The plain types are :mod:`.model`.

A bad choice is a 422 naming its field, for the ``/maps`` pages and
``geo-service maps render`` alike.
"""

from __future__ import annotations

from pathlib import Path

from geo_service.domain.coords import Crs
from geo_service.domain.errors import clip, invalid
from geo_service.infra.settings import Settings
from geo_service.maps import assets
from geo_service.maps.model import BASEMAPS, Basemap


def basemap(name: str | None, *, tiles_url: str | None = None, attribution: str | None = None,
            tiles_crs: str | None = None, offline: bool = False) -> Basemap:
    """The basemap a page is drawn on.

    ``tiles_url`` (a Leaflet URL template, e.g. an intranet tile server) wins
    over a preset name; its streets are WGS-84 unless ``tiles_crs`` says
    gcj02. With no choice at all, an offline page gets ``none`` (no request may
    leave the machine) and an online one OpenStreetMap.
    """
    if tiles_url:
        if not all(k in tiles_url for k in ("{z}", "{x}")) or not (
                "{y}" in tiles_url or "{-y}" in tiles_url):
            raise invalid("tiles", "a tile URL template needs {z}, {x} and {y} (or {-y})")
        try:
            crs = Crs(tiles_crs or "wgs84")
        except ValueError:
            raise invalid("tiles_crs", "must be wgs84 or gcj02") from None
        if crs is Crs.BD09:
            raise invalid("tiles_crs", "Baidu tiles use their own grid: give wgs84 or gcj02")
        return Basemap("custom", tiles_url, attribution or "", crs)
    if name is None:
        name = "none" if offline else "osm"
    if name not in BASEMAPS:
        raise invalid("basemap", f"unknown basemap {clip(repr(name))}: one of "
                                 f"{', '.join(BASEMAPS)}")
    return BASEMAPS[name]


def maps_dir(settings: Settings) -> Path:
    """Where rendered map files are written and served from."""
    return Path(settings.maps_dir) if settings.maps_dir else assets.ROOT / "maps"
