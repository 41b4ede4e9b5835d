"""What a map page is drawn with: the basemap, its coordinate system, the assets.

Chinese basemaps (Amap, Tencent) draw their streets in GCJ-02, the obfuscated
system every map published in China must use. A WGS-84 point drawn on them
lands ~300-600 m off its street, so when one is chosen every point and polygon
of the page is converted to GCJ-02 first (``geo_service.coords``, the one
implementation the API and feeds use). WGS-84 basemaps (OpenStreetMap, an
intranet tile server fed from OSM) get WGS-84 untouched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from geo_service.coords import Crs
from geo_service.errors import clip, invalid
from geo_service.maps.assets import AssetMode


@dataclass(frozen=True)
class Basemap:
    """A raster tile layer under the map and the system its streets are drawn in."""

    name: str
    url: str | None  # None: no tiles (a plain background)
    attribution: str
    crs: Crs
    subdomains: str = "abc"
    max_zoom: int = 19


#: Presets by name. ``none`` draws no tiles: the page makes no tile request at all.
BASEMAPS: dict[str, Basemap] = {
    "osm": Basemap("osm", "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                   '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
                   "contributors", Crs.WGS84),
    "amap": Basemap("amap", "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1"
                            "&scale=1&style=8&x={x}&y={y}&z={z}",
                    "&copy; 高德地图 AutoNavi (GCJ-02)", Crs.GCJ02, subdomains="1234",
                    max_zoom=18),
    "tencent": Basemap("tencent", "https://rt{s}.map.gtimg.com/tile?z={z}&x={x}&y={-y}"
                                  "&type=vector&styleid=0",
                       "&copy; 腾讯地图 Tencent (GCJ-02)", Crs.GCJ02, subdomains="0123",
                       max_zoom=18),
    "none": Basemap("none", None, "", Crs.WGS84),
}


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


@dataclass(frozen=True)
class MapOptions:
    """Everything about a page that is not data."""

    basemap: Basemap = BASEMAPS["osm"]
    assets: AssetMode = AssetMode.CDN
    #: The moment the page shows (open-now, overdue days), timezone-aware.
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    #: Compliance: a station is overdue when its last verification is older than this.
    overdue_days: int = 365
    #: Compliance: a station is short when it has fewer of the ten ones than this.
    min_ten_ones: int = 10
    #: Base URL of ``/maps/assets`` for ``local`` assets.
    asset_prefix: str = "/maps/assets"

    @property
    def crs(self) -> Crs:
        """The system every coordinate on the page is written in."""
        return self.basemap.crs
