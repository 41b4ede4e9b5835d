"""HTTP for the station vector tiles: ``/tiles/{z}/{x}/{y}.mvt`` and their TileJSON; and
the street basemap's, ``/tiles/base/{z}/{x}/{y}.mvt`` (issue 28, at the end).

Tiles are Mapbox Vector Tiles (v2) with one layer, ``stations``: one point per
published station (open or temporarily closed) with the attributes a map
layer styles and filters on. PostGIS builds each tile in one statement
(``ST_AsMVT``, see :mod:`geo_service.feeds.tile_queries`), so a tile never
turns into Python objects.

Choices, for the people who draw the map:

- **Empty tiles are 204 No Content**, as the Mapbox GL developers recommend
  (mapbox/mapbox-gl-js#1800: Mapbox GL and MapLibre draw a 204 as an empty
  tile, while older versions report a 0-byte 200 as an error).
- **No ``open_now`` in tiles.** Tiles are cached (``ETag``, ``max-age``) and
  a tile stays valid until a station changes; open-now changes every minute.
  Apps take it from ``/v1/feeds/station_status`` and join on ``code``
  (e.g. ``promoteId: "code"`` and feature state).
- **Exact at every zoom**: no thinning or clustering, so a zoomed-out tile of
  a national data set is large (at 1M stations a zoom-4 tile over eastern
  China is ~64 MB and takes seconds; zoom 0 is every station). So the
  TileJSON's ``minzoom`` :data:`TILEJSON_MINZOOM` is also the floor the
  endpoint serves: a lower zoom is a 422 naming ``z``. Above the TileJSON's
  ``maxzoom`` clients overzoom; deeper tiles (to 22) are still served, since
  they only get smaller.
- Bodies are gzipped by the app-wide compression (:mod:`geo_service.web.app`)
  when the client accepts it, as vector tiles usually are.
- ``crs=gcj02`` places the points in GCJ-02 before projecting, for overlays on
  Amap or Tencent basemaps (their tiles are Web Mercator over GCJ-02
  coordinates). Baidu basemaps use their own tile grid, so there is no bd09.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Path, Query, Request, Response
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.catalogue import TEN_ONES_MASK
from geo_service.domain.coords import Crs, from_wgs84_array
from geo_service.domain.errors import ERROR_RESPONSES, invalid
from geo_service.feeds import basemap_queries as bq
from geo_service.feeds import tile_queries as tq
from geo_service.feeds.caching import FeedState, feed_state, validators
from geo_service.feeds.features import SAMPLE_NOTE
from geo_service.feeds.http import (
    NOT_MODIFIED,
    IfModifiedSince,
    IfNoneMatch,
    cache_headers,
    conditional,
)
from geo_service.web.deps import ReadConnDep, SettingsDep
from geo_service.web.responses import JSONResponse
from geo_service.web.security_headers import links_shared, public_base

router = APIRouter(prefix="/tiles", tags=["tiles"])

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
MAX_ZOOM = 22
#: Zooms the TileJSON advertises. Below the minimum a tile of a national data set
#: holds hundreds of thousands of points (tens of MB); above the maximum, clients
#: overzoom (a point gains nothing from deeper tiles).
TILEJSON_MINZOOM = 8
TILEJSON_MAXZOOM = 16
#: Version of the tile schema (layer and fields); the minor changes with the fields.
TILESET_VERSION = "1.0.0"
ATTRIBUTION = "Stations: geo_service (工会户外劳动者服务站点)"
#: GCJ-02 candidates are searched this many degrees beyond the buffered tile
#: (the shift is at most ~0.011° in longitude, 0.004° in latitude).
GCJ02_PAD_DEG = 0.02

TileCrs = Annotated[
    Literal["wgs84", "gcj02"],
    Query(description="wgs84 (default; OSM, Mapbox, MapTiler basemaps) or gcj02 (Amap, "
                      "Tencent basemaps: points are shifted to GCJ-02 before projecting)"),
]

#: The fields of the ``stations`` layer, as TileJSON ``vector_layers[].fields``
#: describes them: the type, then what it means.
FIELDS: dict[str, str] = {
    "code": "String: stable station code; join key with the feeds (/v1/feeds/station_status)",
    "name": "String: station name",
    "status": "String: open or temporarily_closed",
    "host_type": "String: union_built, party_service_centre, sanitation_depot, enterprise, "
                 "bank_branch, volunteer or mobile",
    "ten_ones_count": "Number: how many of the ten-ones (十个一) items the station has, 0-10",
    "amenities": "String: comma-separated amenity codes (see /v1/amenities), catalogue order",
    "sample": "Boolean: true for SAMPLE DATA generated for demonstration",
    "version": "Number: the station record's version (changes on every edit)",
    "scheduled": "Boolean: a mobile station with a schedule of stops; the point is its base, "
                 "its stops and current stop are in /v1/feeds/stations.geojson (join on code)",
}


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse a tile address outside the zoom's grid, naming the field."""
    n = 1 << z
    if x >= n:
        raise invalid("x", f"must be below 2^z = {n} at zoom {z}")
    if y >= n:
        raise invalid("y", f"must be below 2^z = {n} at zoom {z}")


def tile_params(z: int, x: int, y: int) -> dict[str, Any]:
    """The parameters of ``tile_queries.TILE_MVT`` for one tile (also used by the bench)."""
    return {"z": z, "x": x, "y": y, "margin": tq.MARGIN, "ten_mask": TEN_ONES_MASK}


async def station_tile(conn: AsyncConnection[Any], z: int, x: int, y: int,
                       crs: Crs = Crs.WGS84) -> bytes:
    """The MVT bytes of tile ``z/x/y``; empty when no published station is in it."""
    params = tile_params(z, x, y)
    async with conn.cursor() as cur:
        if crs is Crs.WGS84:
            await cur.execute(tq.TILE_MVT, params, prepare=True)
        else:
            await cur.execute(tq.TILE_CANDIDATES, {**params, "pad": GCJ02_PAD_DEG})
            rows = await cur.fetchall()
            if not rows:
                return b""
            ids, lon, lat = zip(*rows, strict=True)
            slon, slat = from_wgs84_array(np.asarray(lon), np.asarray(lat), crs)
            await cur.execute(tq.TILE_MVT_AT, {**params, "ids": list(ids),
                                               "lons": slon.tolist(), "lats": slat.tolist()})
        row = await cur.fetchone()
    return bytes(row[0]) if row and row[0] else b""


def center_zoom(bounds: list[float]) -> int:
    """A zoom at which ``bounds`` (lon/lat) fits in about one 512-px view."""
    span = max(bounds[2] - bounds[0], (bounds[3] - bounds[1]) * 1.5, 1e-6)
    z = math.floor(math.log2(360.0 / span)) + 1
    return max(TILEJSON_MINZOOM, min(TILEJSON_MAXZOOM, z))


def tilejson(base: str, crs: str, summary: dict[str, Any]) -> dict[str, Any]:
    """The TileJSON 3.0.0 document of the station tiles (plain data)."""
    query = "" if crs == "wgs84" else f"?crs={crs}"
    if summary["n"]:
        bounds = [summary["minlon"], summary["minlat"], summary["maxlon"], summary["maxlat"]]
        if crs == "gcj02":  # the points move by less than GCJ02_PAD_DEG
            bounds = [max(-180.0, bounds[0] - GCJ02_PAD_DEG), max(-90.0, bounds[1] - GCJ02_PAD_DEG),
                      min(180.0, bounds[2] + GCJ02_PAD_DEG), min(90.0, bounds[3] + GCJ02_PAD_DEG)]
        # Bounds must cover every point: round outwards to 1e-6 degree.
        bounds = [math.floor(bounds[0] * 1e6) / 1e6, math.floor(bounds[1] * 1e6) / 1e6,
                  math.ceil(bounds[2] * 1e6) / 1e6, math.ceil(bounds[3] * 1e6) / 1e6]
    else:
        bounds = [-180.0, -85.051129, 180.0, 85.051129]
    center = [round((bounds[0] + bounds[2]) / 2, 6), round((bounds[1] + bounds[3]) / 2, 6),
              center_zoom(bounds) if summary["n"] else TILEJSON_MINZOOM]
    if summary["all_sample"]:
        data_note = "All stations are SAMPLE DATA generated for demonstration, not real stations."
    elif summary["any_sample"]:
        data_note = "Some stations are SAMPLE DATA (sample=true) generated for demonstration."
    else:
        data_note = SAMPLE_NOTE
    crs_note = (" Points are in GCJ-02 (for Amap / Tencent basemaps)."
                if crs == "gcj02" else " Points are WGS-84.")
    description = (
        f"Published trade-union outdoor-worker rest stations (open or temporarily closed), "
        f"{summary['n']} now, one point each (no thinning).{crs_note} Open-now is not in the "
        f"tiles (they are cached): take it from /v1/feeds/station_status, joined on code. "
        f"{data_note}")
    return {
        "tilejson": "3.0.0",
        "name": "geo_service stations",
        "description": description,
        "version": TILESET_VERSION,
        "attribution": ATTRIBUTION,
        "scheme": "xyz",
        "tiles": [f"{base}/tiles/{{z}}/{{x}}/{{y}}.mvt{query}"],
        "minzoom": TILEJSON_MINZOOM,
        "maxzoom": TILEJSON_MAXZOOM,
        "bounds": bounds,
        "center": center,
        "vector_layers": [{
            "id": "stations",
            "description": "One point per published station; empty tiles answer 204.",
            "minzoom": TILEJSON_MINZOOM,
            "maxzoom": TILEJSON_MAXZOOM,
            "fields": FIELDS,
        }],
    }


_TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Mapbox Vector Tile (v2) with one layer, `stations`",
          "content": {MVT_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
    204: {"description": "No published station in this tile: an empty tile"},
    **NOT_MODIFIED,
    **ERROR_RESPONSES,
}


@router.get(
    "/{z}/{x}/{y}.mvt",
    summary="One vector tile of the published stations (Mapbox Vector Tile, layer `stations`)",
    response_class=Response,
    responses=_TILE_RESPONSES,
)
async def tile(
    conn: ReadConnDep, settings: SettingsDep,
    z: Annotated[int, Path(ge=TILEJSON_MINZOOM, le=MAX_ZOOM, description=(
        f"zoom, {TILEJSON_MINZOOM}-{MAX_ZOOM} (a lower zoom holds too many stations)"))],
    x: Annotated[int, Path(ge=0, lt=1 << MAX_ZOOM, description="column, 0 ≤ x < 2^z")],
    y: Annotated[int, Path(ge=0, lt=1 << MAX_ZOOM,
                           description="row from the north, 0 ≤ y < 2^z (XYZ scheme)")],
    crs: TileCrs = "wgs84",
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    check_tile(z, x, y)
    state = await feed_state(conn)
    v = validators(state, "tile", {"z": z, "x": x, "y": y, "crs": crs})
    ttl = settings.feed_ttl_s
    if (hit := conditional(v, ttl, if_none_match, if_modified_since)) is not None:
        return hit
    body = await station_tile(conn, z, x, y, Crs(crs))
    headers = cache_headers(v, ttl)
    if not body:
        return Response(status_code=204, headers=headers)
    return Response(body, media_type=MVT_MEDIA_TYPE, headers=headers)


@router.get(
    "/stations.json",
    summary="TileJSON 3.0.0 of the station vector tiles (for Mapbox GL / MapLibre sources)",
    responses={200: {"description": "TileJSON 3.0.0",
                     "content": {"application/json": {"schema": {
                         "type": "object", "required": ["tilejson", "tiles", "vector_layers"]}}}},
               **NOT_MODIFIED, **ERROR_RESPONSES},
)
async def stations_tilejson(
    request: Request, conn: ReadConnDep, settings: SettingsDep, crs: TileCrs = "wgs84",
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    base, shared = public_base(request), links_shared(request)
    state = await feed_state(conn)
    v = validators(state, "tilejson", {"base": base, "crs": crs})
    ttl = settings.feed_ttl_s
    if (hit := conditional(v, ttl, if_none_match, if_modified_since, shared=shared)) is not None:
        return hit
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(tq.TILESET_SUMMARY)
        summary = await cur.fetchone()
    assert summary is not None
    return JSONResponse(tilejson(base, crs, summary),
                        headers=cache_headers(v, ttl, shared=shared))


# --- the street basemap: /tiles/base/{z}/{x}/{y}.mvt (issue 28) ---------------------
# A real street map with no tile server and no internet: the loaded roads (``geo-service
# roads load``), their water and the admin areas' outlines, as Mapbox Vector Tiles built
# by PostGIS (:mod:`geo_service.feeds.basemap_queries`) and drawn under the stations by
# the app and the planners' maps when no tile URL is configured.
#
# Three layers: ``roads`` (``class``: motorway, primary, secondary, tertiary, minor,
# path; ``name``, ``name:zh`` first), ``water`` (polygons; ``kind``, ``name``) and
# ``districts`` (``kind`` outline or label, ``code``, ``name``, ``name_en``, ``level``,
# ``sample``). The same machinery as the station tiles: a tile outside the zoom's grid is
# a 422 naming ``x`` or ``y``, an empty tile a 204, ``ETag`` / ``Last-Modified`` /
# ``max-age`` with 304s, but the validators follow ``basemap_state`` (bumped by any change
# of the extract, its water or the areas), not the stations.


async def basemap_state(conn: AsyncConnection[Any]) -> FeedState:
    """The base tiles' version and when it last changed (one row)."""
    async with conn.cursor() as cur:
        await cur.execute(bq.BASEMAP_STATE, prepare=True)
        row = await cur.fetchone()
    assert row is not None  # migration 0023 writes the one row
    return FeedState(seq=int(row[0]), last_modified=row[1])


async def base_tile(conn: AsyncConnection[Any], z: int, x: int, y: int) -> bytes:
    """The MVT bytes of base tile ``z/x/y``; empty when nothing is in it."""
    async with conn.cursor() as cur:
        await cur.execute(bq.BASEMAP_MVT, bq.basemap_params(z, x, y), prepare=True)
        row = await cur.fetchone()
    return bytes(row[0]) if row and row[0] else b""


_BASE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Mapbox Vector Tile (v2), layers `roads`, `water`, `districts`",
          "content": {MVT_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
    204: {"description": "Nothing of the basemap in this tile: an empty tile"},
    **NOT_MODIFIED,
    **ERROR_RESPONSES,
}


@router.get(
    "/base/{z}/{x}/{y}.mvt",
    summary="One tile of the street basemap: roads, water, district outlines (MVT)",
    response_class=Response,
    responses=_BASE_RESPONSES,
)
async def base_tile_route(
    conn: ReadConnDep, settings: SettingsDep,
    z: Annotated[int, Path(ge=0, le=MAX_ZOOM, description=f"zoom, 0-{MAX_ZOOM}")],
    x: Annotated[int, Path(ge=0, lt=1 << MAX_ZOOM, description="column, 0 ≤ x < 2^z")],
    y: Annotated[int, Path(ge=0, lt=1 << MAX_ZOOM,
                           description="row from the north, 0 ≤ y < 2^z (XYZ scheme)")],
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    check_tile(z, x, y)
    v = validators(await basemap_state(conn), "basemap", {"z": z, "x": x, "y": y})
    ttl = settings.feed_ttl_s
    if (hit := conditional(v, ttl, if_none_match, if_modified_since)) is not None:
        return hit
    body = await base_tile(conn, z, x, y)
    headers = cache_headers(v, ttl)
    if not body:
        return Response(status_code=204, headers=headers)
    return Response(body, media_type=MVT_MEDIA_TYPE, headers=headers)
