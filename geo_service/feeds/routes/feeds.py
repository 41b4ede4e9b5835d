"""HTTP for feeds: discovery, the GeoJSON station feed, the change feed, status, schemas.

Every feed answers with ``ETag``/``Last-Modified`` and honours
``If-None-Match``/``If-Modified-Since`` with a 304 (see ``caching``). The
validators are read first, from two index probes, so a poll of an unchanged
feed costs no feed query at all.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from geo_service.domain.coords import Crs
from geo_service.domain.errors import ERROR_RESPONSES, WRITE_RESPONSES, NotFound
from geo_service.domain.params import (
    AREA_PATTERN,
    BBOX_PATTERN,
    CURSOR_PATTERN,
    decode_cursor,
    parse_bbox,
)
from geo_service.feeds import service
from geo_service.feeds.caching import feed_state, validators
from geo_service.feeds.features import utc_iso
from geo_service.feeds.http import (
    NOT_MODIFIED,
    FeedStateDep,
    IfModifiedSince,
    IfNoneMatch,
    batch_connect,
    cache_headers,
    conditional,
)
from geo_service.feeds.schemas import SCHEMAS, feed_schema
from geo_service.roads.keeper import road_keeper
from geo_service.web.deps import ReadConnDep, SettingsDep
from geo_service.web.responses import JSONResponse, PacedStreamingResponse
from geo_service.web.security_headers import (
    link_cache_control,
    links_shared,
    public_base,
    public_url,
)

router = APIRouter(prefix="/v1/feeds", tags=["feeds"])

#: Version of our feed formats, as GBFS feeds carry theirs.
FEED_VERSION = "1.0"


def _object(required: list[str], description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 declared as a JSON object with these keys; the full schema is published."""
    return {200: {"description": description,
                  "content": {"application/json": {"schema": {
                      "type": "object", "required": required}}}}}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@router.get("", summary="Feed discovery: every feed with its URL and JSON Schema (GBFS-style)",
            responses={**_object(["last_updated", "ttl", "version", "data"], "Discovery"),
                       **NOT_MODIFIED, **ERROR_RESPONSES})
async def discovery(
    request: Request, conn: ReadConnDep, settings: SettingsDep,
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    base, shared = public_base(request), links_shared(request)
    state = await feed_state(conn)
    v = validators(state, "discovery", {"base": base})
    ttl = settings.feed_ttl_s
    if (hit := conditional(v, ttl, if_none_match, if_modified_since, shared=shared)) is not None:
        return hit

    def schema(name: str) -> str:
        return f"{base}/v1/feeds/schemas/{name}.json"

    feeds = [
        {"name": "stations", "type": "application/geo+json",
         "url": f"{base}/v1/feeds/stations.geojson", "schema": schema("stations"),
         "description": "every published station (RFC 7946 GeoJSON, WGS-84)"},
        {"name": "station_status", "type": "application/json",
         "url": f"{base}/v1/feeds/station_status", "schema": schema("station_status"),
         "description": "open now and temporarily closed, per station; poll every ttl"},
        {"name": "changes", "type": "application/json", "url": f"{base}/v1/feeds/changes",
         "schema": schema("changes"),
         "description": "every change after a cursor, with tombstones, for keeping a copy"},
        {"name": "ogc_features", "type": "application/json", "url": f"{base}/ogc",
         "description": "OGC API - Features landing page (QGIS, ArcGIS, GDAL)"},
        {"name": "vector_tiles", "type": "application/json",
         "url": f"{base}/tiles/stations.json",
         "description": "TileJSON of the station vector tiles (Mapbox Vector Tile)"},
    ]
    media = {"csv": "text/csv",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
    for platform in ("amap", "tencent", "baidu", "generic"):
        for fmt in ("csv", "xlsx"):
            feeds.append({
                "name": f"export_{platform}_{fmt}", "type": media[fmt],
                "url": f"{base}/v1/exports/{platform}.{fmt}",
                "description": f"bulk-upload file for {platform}"})
    body = {"last_updated": utc_iso(state.last_modified or _now()), "ttl": ttl,
            "version": FEED_VERSION, "data": {"feeds": feeds}}
    return JSONResponse(body, headers=cache_headers(v, ttl, shared=shared))


@router.get(
    "/stations.geojson",
    summary="All published stations as one GeoJSON FeatureCollection (streamed)",
    description="Read and sent in batches; a client that takes nothing for "
                "`GEO_CLIENT_SEND_TIMEOUT_S` (60 s) gets a truncated body and a closed "
                "connection.",
    responses={200: {"description": "RFC 7946 FeatureCollection; see schemas/stations.json",
                     "content": {"application/geo+json": {"schema": {
                         "type": "object", "required": ["type", "features"]}}}},
               **NOT_MODIFIED, **ERROR_RESPONSES},
)
async def stations_geojson(
    request: Request, state: FeedStateDep, settings: SettingsDep,
    area: Annotated[str | None, Query(pattern=AREA_PATTERN, description="admin area code")] = None,
    bbox: Annotated[str | None, Query(pattern=BBOX_PATTERN,
                                      description="minlon,minlat,maxlon,maxlat (WGS-84)")] = None,
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    box = parse_bbox(bbox, Crs.WGS84)
    now = _now()
    at = service.minute_of(now)
    v = validators(state, "stations", {"area": area, "bbox": box}, as_of=at, now=now)
    ttl = settings.feed_ttl_s
    if (hit := conditional(v, ttl, if_none_match, if_modified_since)) is not None:
        return hit
    batches = service.published_batches(batch_connect(request), area=area, bbox=box,
                                        at=at, photo_base=settings.public_base_url)
    roads = road_keeper(request.app.state)
    if roads is not None:  # the extract's date as of now (a cheap look at most each 10 s)
        await roads.current(request.app.state.pool)
    body = service.stream_feature_collection(
        batches, at=at, generated_at=now,
        roads_extract_date=None if roads is None else roads.extract_date)
    return PacedStreamingResponse(body, send_timeout_s=settings.client_send_timeout_s,
                                  media_type="application/geo+json",
                                  headers=cache_headers(v, ttl))


@router.get(
    "/changes",
    summary="Stations created, changed, closed or removed after a cursor, in commit order",
    responses={**_object(["next_cursor", "has_more", "changes"], "One page of changes"),
               **NOT_MODIFIED, **ERROR_RESPONSES},
)
async def changes(
    conn: ReadConnDep, settings: SettingsDep,
    since: Annotated[str | None, Query(pattern=CURSOR_PATTERN,
                                       description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    (after,) = decode_cursor(since, "since")
    now = _now()
    at = service.minute_of(now)
    state = await feed_state(conn)
    # A page past the last change stays the same until the next write; others
    # carry open_now, which is recomputed each minute.
    as_of = None if after >= state.seq else at
    v = validators(state, "changes", {"since": after, "limit": limit}, as_of=as_of, now=now)
    ttl = settings.feed_ttl_s
    if (hit := conditional(v, ttl, if_none_match, if_modified_since)) is not None:
        return hit
    page = await service.changes_page(conn, since=since, limit=limit, at=at,
                                      photo_base=settings.public_base_url)
    return JSONResponse(page, headers=cache_headers(v, ttl))


@router.get(
    "/station_status",
    summary="Open now / temporarily closed for every published station (short; poll it)",
    responses={**_object(["last_updated", "ttl", "version", "data"], "Station status"),
               **NOT_MODIFIED, **ERROR_RESPONSES},
)
async def station_status(
    conn: ReadConnDep, settings: SettingsDep,
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    now = _now()
    at = service.minute_of(now)
    state = await feed_state(conn)
    v = validators(state, "station_status", as_of=at, now=now)
    ttl = settings.feed_ttl_s
    if (hit := conditional(v, ttl, if_none_match, if_modified_since)) is not None:
        return hit
    stations = await service.station_status(conn, at=at)
    last = max(state.last_modified, at) if state.last_modified else at
    body = {"last_updated": utc_iso(last), "ttl": ttl, "version": FEED_VERSION,
            "data": {"stations": stations}}
    return JSONResponse(body, headers=cache_headers(v, ttl))


@router.get(
    "/schemas/{name}.json",
    summary="JSON Schema (draft 2020-12) of one of our feeds, at a stable URL",
    responses={200: {"description": "JSON Schema", "content": {"application/schema+json": {
                   "schema": {"type": "object", "required": ["$schema", "$id"]}}}},
               404: WRITE_RESPONSES[404], **ERROR_RESPONSES},
)
async def schema(
    request: Request,
    name: Annotated[str, Path(pattern=r"^[a-z_]{1,32}$", description=", ".join(SCHEMAS))],
) -> Response:
    if name not in SCHEMAS:
        raise NotFound(f"no feed schema {name!r}", [("name", f"one of {', '.join(SCHEMAS)}")])
    return JSONResponse(feed_schema(name, public_url(request, "")),
                        headers={"Cache-Control": link_cache_control(request, 86400)},
                        media_type="application/schema+json")
