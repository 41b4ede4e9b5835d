"""HTTP for the phone app's offline snapshot: ``GET /v1/app/snapshot``.

The rules and SQL are in :mod:`geo_service.app.snapshot_service`; this module
checks the query, and gzips the body itself when the phone accepts it (the app
has no global compression middleware: streamed feeds and exports would pay for
it; the snapshot is the one big body a phone fetches on a weak signal).
"""

from __future__ import annotations

import datetime as dt
import gzip
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict

from geo_service.app import snapshot_service as service
from geo_service.deps import LatQ, LonQ, ReadConnDep, SettingsDep
from geo_service.errors import ERROR_RESPONSES, NotFound
from geo_service.maps.assets import node_modules
from geo_service.params import AREA_PATTERN, check_point
from geo_service.responses import dumps

router = APIRouter(prefix="/v1/app", tags=["app"])
#: The geodesic library offline.js computes distances with (npm, installed at setup).
vendor_router = APIRouter(prefix="/app/vendor", include_in_schema=False)
GEODESIC = ("geographiclib-geodesic", "geographiclib-geodesic.min.js")

#: Most stations one snapshot holds (sizes measured in bench/APP.md).
MAX_N = 10_000
#: Bodies smaller than this go uncompressed (gzip's header costs more than it saves).
GZIP_MIN = 1024


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


def gzip_response(body: Any, accept_encoding: str | None) -> Response:
    """``body`` as JSON, gzipped when the client accepts gzip and it is worth it."""
    raw = dumps(body)
    headers = {"Vary": "Accept-Encoding"}
    accepts = any(part.split(";")[0].strip().lower() == "gzip"
                  for part in (accept_encoding or "").split(","))
    if accepts and len(raw) >= GZIP_MIN:
        raw = gzip.compress(raw, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(raw, media_type="application/json", headers=headers)


_N = Annotated[int, Query(ge=1, le=MAX_N, description="most stations (the nearest first "
                         "around a point; the first by id in an area)")]
_OK = {200: {"model": Snapshot, "description": "Column-oriented stations, compiled hours, "
             "mobile stops, and the change-feed cursor to keep it fresh"}, **ERROR_RESPONSES}


@router.get("/snapshot", responses=_OK,
            summary="Compact snapshot of the stations nearest a point, for offline use")
async def snapshot_near(conn: ReadConnDep, settings: SettingsDep, lat: LatQ, lon: LonQ,
                        n: _N = 2000,
                        accept_encoding: Annotated[str | None, Header()] = None) -> Response:
    # A point and an area are two endpoints, not one with "exactly one of" rules the
    # published schema could not state.
    check_point(lat, lon)
    body = await service.snapshot(conn, now=_now(), n=n, lon=lon, lat=lat,
                                  default_radius_m=settings.default_radius_m)
    return gzip_response(body, accept_encoding)


@router.get("/snapshot/areas/{area}", responses=_OK,
            summary="Compact snapshot of the stations of an admin area, for offline use")
async def snapshot_area(conn: ReadConnDep, settings: SettingsDep,
                        area: Annotated[str, Path(pattern=AREA_PATTERN,
                                                  description="admin area code, any level")],
                        n: _N = MAX_N,
                        accept_encoding: Annotated[str | None, Header()] = None) -> Response:
    body = await service.snapshot(conn, now=_now(), n=n, area=area,
                                  default_radius_m=settings.default_radius_m)
    return gzip_response(body, accept_encoding)


@vendor_router.get("/geodesic.js")
def geodesic_js() -> Response:
    """Karney's geodesics for the phone (``window.geodesic``): from node_modules, never a CDN."""
    path = node_modules().joinpath(*GEODESIC)
    if not path.is_file():
        raise NotFound("geographiclib-geodesic is not installed (npm ci)",
                       [("path", "not installed")])
    return FileResponse(path, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})
