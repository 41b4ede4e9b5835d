"""HTTP for the phone app's offline snapshot: ``GET /v1/app/snapshot``.

The rules and SQL are in :mod:`geo_service.app.snapshot_service`; this module
checks the query. The body goes out gzipped when the phone accepts it, by the
app-wide compression in :mod:`geo_service.web.app` (about 21 KB for 1,000 stations,
bench/APP.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from geo_service.app import snapshot_service as service
from geo_service.domain.errors import ERROR_RESPONSES, NotFound
from geo_service.domain.params import AREA_PATTERN, check_point
from geo_service.maps.assets import node_modules
from geo_service.web.deps import LatQ, LonQ, ReadConnDep, SettingsDep
from geo_service.web.responses import JSONResponse, file_response

router = APIRouter(prefix="/v1/app", tags=["app"])
#: Libraries the page loads on first need, from the npm packages installed at setup:
#: Karney's geodesics for offline.js, WGS-84 -> GCJ-02 for Amap/Tencent basemaps, and
#: protomaps-leaflet, which draws the service's own street basemap (vector tiles).
vendor_router = APIRouter(prefix="/app/vendor", include_in_schema=False)
VENDOR = {
    "geodesic.js": ("geographiclib-geodesic", "geographiclib-geodesic.min.js"),
    "gcoord.js": ("gcoord", "dist", "gcoord.global.prod.js"),
    "protomaps.js": ("protomaps-leaflet", "dist", "protomaps-leaflet.js"),
}

#: Most stations one snapshot holds (sizes measured in bench/APP.md).
MAX_N = 10_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Hours(_Strict):
    """Weekly (``w``) or dated (``d``, ``u``, ``h``) compiled hours; see the service."""

    w: list[int] | None = None
    d: list[int] | None = None
    u: list[int] | None = None
    h: int | None = None


class StationColumns(_Strict):
    """One array per field, the i-th entries belonging to the i-th station."""

    code: list[str]
    name: list[str]
    lon: list[float]
    lat: list[float]
    status: list[int]
    amenities: list[int]
    host_type: list[int]
    tz: list[int]
    sample: list[int]
    scheduled: list[int]
    reported: list[int] = Field(description="1: workers reported it closed, not yet resolved")
    rule: list[int]
    hours: list[Hours | None]


class StopColumns(_Strict):
    """Mobile stations' stops, ``station`` indexing into the station columns."""

    station: list[int]
    seq: list[int]
    name: list[str]
    lon: list[float]
    lat: list[float]
    valid_from: list[dt.date | None]
    valid_to: list[dt.date | None]
    hours: list[Hours | None]


class Snapshot(_Strict):
    """What the phone keeps to answer "nearest" with no network."""

    format: int
    as_of: dt.datetime
    base_minute: int
    horizon_minute: int
    cursor: str
    count: int
    truncated: bool
    complete_within_m: float | None
    sample: bool
    amenity_bits: dict[str, int]
    ten_ones_mask: int
    default_radius_m: float
    statuses: list[str]
    host_types: list[str]
    timezones: list[str]
    rules: list[str]
    stations: StationColumns
    stops: StopColumns


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_N = Annotated[int, Query(ge=1, le=MAX_N, description="most stations (the nearest first "
                         "around a point; the first by id in an area)")]
_OK = {200: {"model": Snapshot, "description": "Column-oriented stations, compiled hours, "
             "mobile stops, and the change-feed cursor to keep it fresh"}, **ERROR_RESPONSES}


@router.get("/snapshot", responses=_OK,
            summary="Compact snapshot of the stations nearest a point, for offline use")
async def snapshot_near(conn: ReadConnDep, settings: SettingsDep, lat: LatQ, lon: LonQ,
                        n: _N = 2000) -> Response:
    # A point and an area are two endpoints, not one with "exactly one of" rules the
    # published schema could not state.
    check_point(lat, lon)
    body = await service.snapshot(conn, now=_now(), n=n, lon=lon, lat=lat,
                                  default_radius_m=settings.default_radius_m)
    return JSONResponse(body)


@router.get("/snapshot/areas/{area}", responses=_OK,
            summary="Compact snapshot of the stations of an admin area, for offline use")
async def snapshot_area(conn: ReadConnDep, settings: SettingsDep,
                        area: Annotated[str, Path(pattern=AREA_PATTERN,
                                                  description="admin area code, any level")],
                        n: _N = MAX_N) -> Response:
    body = await service.snapshot(conn, now=_now(), n=n, area=area,
                                  default_radius_m=settings.default_radius_m)
    return JSONResponse(body)


@vendor_router.get("/{name}")
def vendor_js(request: Request, name: str) -> Response:
    """A library for the phone, from node_modules (never a CDN); nothing outside VENDOR."""
    if name not in VENDOR:
        raise NotFound(f"no vendor file {name!r}", [("name", "not a vendor file of the app")])
    path = node_modules().joinpath(*VENDOR[name])
    if not path.is_file():
        raise NotFound(f"{VENDOR[name][0]} is not installed (npm ci)",
                       [("name", "not installed")])
    return file_response(request, path, {"Cache-Control": "no-cache"},
                         media_type="text/javascript; charset=utf-8")
