"""The maps, served live from current data, their offline assets and the rendered files.

``/maps/{stations,coverage,compliance}.html`` draw the same pages as
``geo-service maps render``, from the data as it is at the request. Every page
loads Leaflet from ``/maps/assets/...`` (this service, from the npm packages
installed at setup), never from a CDN, so it draws on an intranet with no
internet. Unless a basemap or a tile URL is configured or named, a page draws the
service's own street basemap (``/tiles/base``) and makes no request beyond this
service; ``offline=true`` (which used to be needed for that) is kept for old links.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from psycopg import Connection

from geo_service.domain.errors import ERROR_RESPONSES, ErrorBody, NotFound
from geo_service.domain.params import AT_PATTERN, instant
from geo_service.domain.schemas import IsoText
from geo_service.infra.settings import Settings
from geo_service.maps import assets
from geo_service.maps.assets import AssetMode
from geo_service.maps.model import BASEMAPS, MapOptions
from geo_service.maps.options import basemap, maps_dir
from geo_service.maps.pages import MapKind, make_page
from geo_service.web.deps import SyncReadConnDep
from geo_service.web.responses import file_response
from geo_service.web.security_headers import FRAME_CSP

router = APIRouter(prefix="/maps", tags=["maps"])

#: The rendered files ``/maps/files/{name}`` may serve (``geo-service maps render`` writes them).
RENDERED = ("stations.html", "coverage.html", "compliance.html")

_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    404: {"model": ErrorBody, "description": "Unknown area, run, asset or file"},
}
# The pages answer HTML, their errors JSON: spelled out, since FastAPI would
# document a ``model`` under the route's own media type (text/html).
_HTML_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A self-contained Leaflet map page",
          "content": {"text/html": {"schema": {"type": "string"}}}},
    **{status: {"description": r["description"], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
       for status, r in _ERRORS.items()},
}

Area = Annotated[str | None, Query(max_length=32, pattern=r"^[0-9A-Za-z_-]+$",
                                   description="admin area code (any level); default: all")]
Basemap = Annotated[str | None, Query(max_length=16, pattern=f"^({'|'.join(BASEMAPS)})$",
                                      description=(
    "basemap preset: " + ", ".join(BASEMAPS) + " (amap and tencent are GCJ-02: every point "
    "and outline is shifted to GCJ-02); default: the configured one, else this service's own "
    "street basemap"))]
Offline = Annotated[bool, Query(description=(
    "kept for old links: with nothing configured or named a page already draws this "
    "service's own streets and makes no request beyond this service"))]
At = Annotated[dt.datetime | None, IsoText, Query(
    json_schema_extra={"pattern": AT_PATTERN}, description=(
        "the moment the map shows (open now, overdue), ISO 8601; naive = China time; "
        "default now"))]


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def options(settings: Settings, *, basemap_name: str | None, offline: bool,
            at: dt.datetime | None, **extra: Any) -> MapOptions:
    """Page options from request or command-line choices over the settings' defaults.

    A named basemap wins; else the configured tile URL (an intranet tile
    server); else the configured preset; else no tiles, so that the page draws
    the service's own street basemap (issue 28: OpenStreetMap's tiles by default
    left an office intranet grey). The moment follows the one rule for instants
    (``params.instant``).
    """
    if basemap_name is not None:
        bm = basemap(basemap_name, offline=offline)
    else:
        bm = basemap(settings.map_basemap, tiles_url=settings.map_tiles_url,
                     attribution=settings.map_tiles_attribution,
                     tiles_crs=settings.map_tiles_crs, offline=True)
    return MapOptions(basemap=bm, assets=AssetMode.LOCAL, at=instant(at, "at"), **extra)


def _page(conn: Connection[Any], kind: MapKind, area: str | None, opts: MapOptions,
          run: int | None = None) -> HTMLResponse:
    page = make_page(conn, kind, area, opts, run_id=run)
    # The page's own <meta> policy says what may run and load; the header adds what a
    # meta policy cannot (frame-ancestors), and both apply. Tile servers see our origin
    # (OpenStreetMap's tile policy asks for a Referer), never the page's query.
    return HTMLResponse(page, headers={"Cache-Control": "no-store",
                                       "Content-Security-Policy": FRAME_CSP,
                                       "Referrer-Policy": "strict-origin-when-cross-origin"})


@router.get("/stations.html", response_class=HTMLResponse, responses=_HTML_RESPONSES,
            summary="Map of the stations: ten-ones completeness, host type, status, popups")
def stations_page(request: Request, conn: SyncReadConnDep, area: Area = None,
                  basemap: Basemap = None, offline: Offline = False, at: At = None,
                  ) -> HTMLResponse:
    opts = options(settings_of(request), basemap_name=basemap, offline=offline, at=at)
    return _page(conn, MapKind.STATIONS, area, opts)


@router.get("/compliance.html", response_class=HTMLResponse, responses=_HTML_RESPONSES,
            summary="Map of the stations to follow up: inspection overdue or short of the ten ones")
def compliance_page(
    request: Request, conn: SyncReadConnDep, area: Area = None, basemap: Basemap = None,
    offline: Offline = False,
    at: At = None,
    overdue_days: Annotated[int, Query(ge=1, le=3650, description=(
        "overdue when last verified more than this many days ago (or never)"))] = 365,
    min_ten_ones: Annotated[int, Query(ge=0, le=10, description=(
        "short when it has fewer of the ten ones than this"))] = 10,
) -> HTMLResponse:
    opts = options(settings_of(request), basemap_name=basemap, offline=offline, at=at,
                   overdue_days=overdue_days,
                   min_ten_ones=min_ten_ones)
    return _page(conn, MapKind.COMPLIANCE, area, opts)


@router.get("/coverage.html", response_class=HTMLResponse, responses=_HTML_RESPONSES,
            summary="Map of a stored coverage run: gaps by uncovered demand, recommended sites")
def coverage_page(
    request: Request, conn: SyncReadConnDep, area: Area = None, basemap: Basemap = None,
    offline: Offline = False,
    at: At = None,
    run: Annotated[int | None, Query(ge=1, le=2**63 - 1, description=(
        "analysis run id; default: the newest run of the area"))] = None,
) -> HTMLResponse:
    opts = options(settings_of(request), basemap_name=basemap, offline=offline, at=at)
    return _page(conn, MapKind.COVERAGE, area, opts, run=run)


@router.get("/assets/{key:path}", responses={
    200: {"description": "A Leaflet file from the npm packages installed at setup",
          "content": {"application/javascript": {}, "text/css": {}, "image/png": {}}},
    **_ERRORS}, summary="Leaflet and plugin files for offline pages")
def asset(request: Request, key: str) -> Response:
    path = assets.file_path(key)
    if path is None:
        raise NotFound(f"no map asset {key!r}", [("key", "not a map asset")])
    return file_response(request, path, {"Cache-Control": "public, max-age=86400"})


@router.get("/files/{name}", response_class=FileResponse, responses={
    200: {"description": "A map rendered by `geo-service maps render`",
          "content": {"text/html": {"schema": {"type": "string"}}}},
    **_ERRORS}, summary="The rendered map files (maps/)")
def rendered(request: Request, name: str) -> Response:
    if name not in RENDERED:
        raise NotFound(f"no rendered map {name!r}", [("name", "one of " + ", ".join(RENDERED))])
    path = maps_dir(settings_of(request)) / name
    if not path.is_file():
        raise NotFound(f"{name} has not been rendered: run `geo-service maps render`",
                       [("name", "not rendered yet")])
    return file_response(request, path, {"Content-Security-Policy": FRAME_CSP},
                         media_type="text/html")
