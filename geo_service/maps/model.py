"""What a map is drawn from, as plain data: the area, the stations as columns, a stored
run, the basemap and the page's options.

Loaders (:mod:`.data`) fill these from the database and the choices
(:mod:`.options`) check what a user asked for; the renderer (:mod:`.render`)
takes only these, so it can be tested and benchmarked without either.

Chinese basemaps (Amap, Tencent) draw their streets in GCJ-02, the obfuscated
system every map published in China must use. A WGS-84 point drawn on them
lands ~300-600 m off its street, so when one is chosen every point and polygon
of the page is converted to GCJ-02 first (``geo_service.domain.coords``, the one
implementation the API and feeds use). WGS-84 basemaps (OpenStreetMap, an
intranet tile server fed from OSM) get WGS-84 untouched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geo_service.domain.catalogue import TEN_ONES_MASK
from geo_service.domain.coords import Crs
from geo_service.maps.assets import AssetMode


@dataclass
class Area:
    """The admin area a map is about (None: everywhere)."""

    code: str | None
    name: str
    name_en: str | None = None


@dataclass
class Stations:
    """The stations of a map as columns, coordinates already in the basemap's system."""

    code: list[str]
    name: list[str]
    address: list[str | None]
    lon: np.ndarray
    lat: np.ndarray
    host_type: list[str]
    status: list[str]
    #: None where the hours are unknown.
    opening_hours: list[str | None]
    phone: list[str | None]
    amenity_mask: list[int]
    last_verified_on: list[dt.date | None]
    district_code: list[str | None]
    sample: list[bool]
    open_now: list[bool | None]
    #: A scheduled mobile station's stops (seq, name, lon, lat, hours, current), else None.
    stops: list[list[dict[str, Any]] | None]
    #: Awards per station: [{title, level, year}], newest first; None for none.
    awards: list[list[dict[str, Any]] | None]
    #: Worker feedback: marked closed by independent reports; last one-tap confirmation.
    reported_closed_at: list[dt.datetime | None]
    last_confirmed_at: list[dt.datetime | None]

    def __len__(self) -> int:
        return len(self.code)

    @property
    def any_sample(self) -> bool:
        return any(self.sample)

    def ten_ones(self) -> np.ndarray:
        """How many of the ten ones each station has."""
        masks = np.asarray(self.amenity_mask, dtype=np.int64) & TEN_ONES_MASK
        return np.asarray([int(m).bit_count() for m in masks.tolist()], dtype=np.int64)


@dataclass
class Run:
    """A stored coverage or recommendations run, ready to draw."""

    id: int
    kind: str
    area: str | None
    created_at: dt.datetime
    sample: bool
    summary: dict[str, Any]
    cells: list[dict[str, Any]]
    sites: list[dict[str, Any]]
    #: by road (reach walk/ebike): [station code, Leaflet (lat, lon) polygon rings]
    service_areas: list[list[Any]] = field(default_factory=list)


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


@dataclass(frozen=True)
class MapOptions:
    """Everything about a page that is not data."""

    basemap: Basemap = BASEMAPS["osm"]
    assets: AssetMode = AssetMode.LOCAL
    #: The moment the page shows (open-now, overdue days), timezone-aware.
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    #: Compliance: a station is overdue when its last verification is older than this.
    overdue_days: int = 365
    #: Compliance: a station is short when it has fewer of the ten ones than this.
    min_ten_ones: int = 10
    #: Base URL of the assets: this service's ``/maps/assets`` for ``local``, the npm
    #: CDN's base (checked by ``assets.check_cdn``) for ``cdn``.
    asset_prefix: str = "/maps/assets"

    @property
    def streets(self) -> bool:
        """Whether the page draws the service's own street basemap (issue 28): when no
        tile URL is drawn and the page is served by this service (a file opened from a
        disk has no service to ask for tiles)."""
        return self.basemap.url is None and self.assets is AssetMode.LOCAL

    @property
    def crs(self) -> Crs:
        """The system every coordinate on the page is written in."""
        return self.basemap.crs
