"""HTTP for OGC API - Features (Part 1 core + GeoJSON, Part 3 queryables) under ``/ogc``.

Add ``http://<host>/ogc`` in QGIS (Layer → Add WFS / OGC API - Features) or
open ``OAPIF:http://<host>/ogc`` with GDAL. One collection, ``stations``:
the published stations, paged by ``limit``/``offset`` with ``next``/``prev``
links, filtered by ``bbox`` (CRS84), ``datetime`` (on ``updated_at``) and the
queryables as query parameters. Unknown query parameters are refused with a
400, as the standard asks. Every link is absolute, from the configured public
address (:func:`geo_service.web.security_headers.public_base`; the request's own only for
an allowed Host, and then not cached by shared caches). Items and single
items carry ETags (they include the open-now minute) and answer
``If-None-Match`` with 304. An items page is encoded off the event loop with no
connection held, and holds fewer features than its ``limit`` rather than pass
``ogc_max_page_bytes`` (the standard lets a server return fewer; ``next``
goes on from the last one sent): a 10,000-feature page was 33 MB, kept whole
for as long as its client took to read it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from geo_service.domain.catalogue import AMENITY_BY_CODE, HostType
from geo_service.domain.errors import ERROR_RESPONSES, ErrorBody, NotFound
from geo_service.domain.params import AREA_PATTERN, CODE_PATTERN
from geo_service.feeds import ogc_service as svc
from geo_service.feeds import service
from geo_service.feeds.caching import feed_state, validators
from geo_service.feeds.features import station_feature, utc_iso
from geo_service.feeds.http import (
    NOT_MODIFIED,
    FeedStateDep,
    IfModifiedSince,
    IfNoneMatch,
    cache_headers,
    conditional,
)
from geo_service.web.deps import ReadConnDep, SettingsDep, read_pool
from geo_service.web.responses import GeoJSONResponse, JSONResponse
from geo_service.web.security_headers import (
    link_cache_control,
    links_shared,
    public_base,
    public_url,
)

router = APIRouter(prefix="/ogc", tags=["ogc"])

#: Landing page and conformance never change while the process runs.
STATIC_TTL_S = 3600


def _only(allowed: frozenset[str]) -> Any:
    """A dependency refusing query parameters outside ``allowed`` (checked first)."""
    async def check(request: Request) -> None:
        svc.refuse_unknown(set(request.query_params), allowed)
    return Depends(check)


def _doc(required: list[str], description: str, media: str = svc.JSON) -> dict[str, Any]:
    return {"description": description,
            "content": {media: {"schema": {"type": "object", "required": required}}}}


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such collection or feature"}}

FormatQ = Annotated[Literal["json"] | None,
                    Query(description="format; only JSON is offered")]
ItemsFormatQ = Annotated[Literal["json", "geojson"] | None,
                         Query(description="format; both mean GeoJSON")]
CollectionPath = Annotated[str, Path(alias="collectionId", max_length=200,
                                     description=f"collection id; only `{svc.COLLECTION_ID}`")]


def _base(request: Request) -> str:
    return public_base(request)


def _page_url(request: Request, **changes: int) -> str:
    """This request's URL with some parameters changed (commas and colons left readable)."""
    params = {**request.query_params, **{k: str(v) for k, v in changes.items()}}
    return public_url(request, urlencode(params, safe=",:/"))


def _check_collection(collection_id: str) -> None:
    if collection_id != svc.COLLECTION_ID:
        raise NotFound(f"no collection {collection_id!r}",
                       [("collectionId", f"unknown collection; the only one is "
                                         f"{svc.COLLECTION_ID!r}")])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@router.get("", summary="OGC API - Features landing page",
            dependencies=[_only(svc.DOC_PARAMS)],
            responses={200: _doc(["links"], "Landing page"), **ERROR_RESPONSES})
async def landing(request: Request, f: FormatQ = None) -> Response:
    return JSONResponse(svc.landing_page(_base(request)),
                        headers={"Cache-Control": link_cache_control(request, STATIC_TTL_S)})


@router.get("/conformance", summary="OGC conformance classes this server implements",
            dependencies=[_only(svc.DOC_PARAMS)],
            responses={200: _doc(["conformsTo"], "Conformance declaration"),
                       **ERROR_RESPONSES})
async def conformance(f: FormatQ = None) -> Response:
    return JSONResponse(svc.conformance(),
                        headers={"Cache-Control": f"public, max-age={STATIC_TTL_S}"})


async def _collection_response(
    request: Request, conn: ReadConnDep, ttl: int, inm: str | None, ims: str | None,
    build: Callable[[str, dict[str, Any]], dict[str, Any]],
) -> Response:
    """Collection metadata carries the extent, so it is validated like a feed."""
    state = await feed_state(conn)
    base, shared = _base(request), links_shared(request)
    v = validators(state, "ogc_collection", {"url": public_url(request)})
    if (hit := conditional(v, ttl, inm, ims, shared=shared)) is not None:
        return hit
    body = build(base, await svc.extent(conn))
    return JSONResponse(body, headers=cache_headers(v, ttl, shared=shared))


@router.get("/collections", summary="The feature collections (one: stations)",
            dependencies=[_only(svc.DOC_PARAMS)],
            responses={200: _doc(["links", "collections"], "Collections"),
                       **NOT_MODIFIED, **ERROR_RESPONSES})
async def collections(
    request: Request, conn: ReadConnDep, settings: SettingsDep, f: FormatQ = None,
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    return await _collection_response(request, conn, settings.feed_ttl_s, if_none_match,
                                      if_modified_since, svc.collections)


@router.get("/collections/{collectionId}",
            summary="One collection's metadata: extent, CRS, links",
            dependencies=[_only(svc.DOC_PARAMS)],
            responses={200: _doc(["id", "links", "extent", "itemType"], "Collection"),
                       **NOT_MODIFIED, **_NOT_FOUND, **ERROR_RESPONSES})
async def collection(
    request: Request, conn: ReadConnDep, settings: SettingsDep, collection_id: CollectionPath,
    f: FormatQ = None,
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    _check_collection(collection_id)
    return await _collection_response(request, conn, settings.feed_ttl_s, if_none_match,
                                      if_modified_since, svc.collection)


@router.get("/collections/{collectionId}/queryables",
            summary="JSON Schema of the properties items can be filtered on (Part 3)",
            dependencies=[_only(svc.DOC_PARAMS)],
            responses={200: _doc(["$schema", "properties"], "Queryables", svc.SCHEMA_JSON),
                       **_NOT_FOUND, **ERROR_RESPONSES})
async def queryables(
    request: Request, collection_id: CollectionPath, f: FormatQ = None,
) -> Response:
    _check_collection(collection_id)
    return JSONResponse(svc.queryables(_base(request)), media_type=svc.SCHEMA_JSON,
                        headers={"Cache-Control": link_cache_control(request, STATIC_TTL_S)})


_ITEMS_KEYS = ["type", "features", "numberMatched", "numberReturned", "timeStamp", "links"]


@router.get(
    "/collections/{collectionId}/items",
    summary="Published stations as GeoJSON, paged, filtered by bbox, datetime, queryables",
    dependencies=[_only(svc.ITEMS_PARAMS)],
    responses={200: _doc(_ITEMS_KEYS, "GeoJSON FeatureCollection, one page", svc.GEOJSON),
               **NOT_MODIFIED, **_NOT_FOUND, **ERROR_RESPONSES},
)
async def items(
    request: Request, state: FeedStateDep, settings: SettingsDep, collection_id: CollectionPath,
    f: ItemsFormatQ = None,
    bbox: Annotated[str | None, Query(
        max_length=400, description="minlon,minlat,maxlon,maxlat in CRS84 (a 6-number 3D "
                                    "box is accepted; heights are ignored)")] = None,
    limit: Annotated[int, Query(
        ge=1, description=f"page size; above {svc.MAX_LIMIT} is capped to it, and a page "
                          "ends early rather than pass GEO_OGC_MAX_PAGE_BYTES (4 MB): follow "
                          "`next`",
        json_schema_extra={"maximum": svc.MAX_LIMIT})] = svc.DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=svc.MAX_OFFSET,
                                 description="features to skip (follow `next` links)")] = 0,
    datetime: Annotated[str | None, Query(
        max_length=200, description="on updated_at: an RFC 3339 instant or an interval "
                                    "a/b, ../b, a/..")] = None,
    status: Annotated[Literal["open", "temporarily_closed"] | None, Query()] = None,
    host_type: HostType | None = None,
    district_code: Annotated[str | None, Query(pattern=AREA_PATTERN)] = None,
    city_code: Annotated[str | None, Query(pattern=AREA_PATTERN)] = None,
    code: Annotated[str | None, Query(pattern=CODE_PATTERN, description="station code")] = None,
    ten_ones_count: Annotated[int | None, Query(ge=0, le=10)] = None,
    amenity: Annotated[str | None, Query(
        description="amenity code the station has (see /v1/amenities)",
        json_schema_extra={"enum": list(AMENITY_BY_CODE)})] = None,
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    _check_collection(collection_id)
    interval = svc.parse_datetime(datetime)
    since, until = interval if interval is not None else (None, None)
    filters = svc.ItemFilters(
        bbox=svc.parse_ogc_bbox(bbox), since=since, until=until, status=status,
        host_type=host_type.value if host_type is not None else None,
        district_code=district_code, city_code=city_code, code=code,
        ten_ones_count=ten_ones_count, amenity=svc.check_amenity(amenity))
    limit = min(limit, svc.MAX_LIMIT)
    now = _now()
    at = service.minute_of(now)
    here, shared = public_url(request), links_shared(request)
    v = validators(state, "ogc_items", {"url": here}, as_of=at, now=now)
    ttl = settings.feed_ttl_s
    if (hit := conditional(v, ttl, if_none_match, if_modified_since, shared=shared)) is not None:
        return hit
    max_bytes = settings.ogc_max_page_bytes
    async with read_pool(request).connection() as conn:  # given back before encoding
        page = await svc.items_page(conn, filters, limit=min(limit, svc.rows_within(max_bytes)),
                                    offset=offset, at=at,
                                    photo_base=settings.public_base_url)
    collection_url = f"{_base(request)}/ogc/collections/{svc.COLLECTION_ID}"

    def links(returned: int) -> list[dict[str, str]]:
        out = [svc.link(here, "self", svc.GEOJSON, "This page")]
        for rel, to in svc.paging(offset, limit, returned, page.number_matched).items():
            out.append(svc.link(_page_url(request, offset=to, limit=limit), rel, svc.GEOJSON,
                                f"The {rel} page"))
        out.append(svc.link(collection_url, "collection", svc.JSON, "The collection"))
        return out

    head = {"type": "FeatureCollection", "timeStamp": utc_iso(now),
            "numberMatched": page.number_matched}
    body, _ = await asyncio.to_thread(svc.page_body, page.rows, head, links, max_bytes)
    return Response(body, media_type=svc.GEOJSON, headers=cache_headers(v, ttl, shared=shared))


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    summary="One published station as a GeoJSON Feature (its id is the station code)",
    dependencies=[_only(svc.DOC_PARAMS)],
    responses={200: _doc(["type", "id", "geometry", "properties", "links"], "GeoJSON Feature",
                         svc.GEOJSON),
               **NOT_MODIFIED, **_NOT_FOUND, **ERROR_RESPONSES},
)
async def item(
    request: Request, conn: ReadConnDep, settings: SettingsDep, collection_id: CollectionPath,
    feature_id: Annotated[str, Path(alias="featureId", max_length=200,
                                    description="station code")],
    f: ItemsFormatQ = None,
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    _check_collection(collection_id)
    now = _now()
    at = service.minute_of(now)
    # State before the row: a write in between changes the ETag, never hides behind it.
    state = await feed_state(conn)
    row = (await svc.item(conn, feature_id, at, settings.public_base_url)
           if svc.is_code(feature_id) else None)
    if row is None:
        raise NotFound(f"no published station {feature_id!r}",
                       [("featureId", "no published station has this code")])
    shared = links_shared(request)
    v = validators(state, "ogc_item", {"url": public_url(request)}, as_of=at, now=now)
    ttl = settings.feed_ttl_s
    if (hit := conditional(v, ttl, if_none_match, if_modified_since, shared=shared)) is not None:
        return hit
    here = f"{_base(request)}/ogc/collections/{svc.COLLECTION_ID}"
    body = {**station_feature(row), "links": [
        svc.link(f"{here}/items/{row['code']}", "self", svc.GEOJSON, "This feature"),
        svc.link(here, "collection", svc.JSON, "The collection")]}
    return GeoJSONResponse(body, headers=cache_headers(v, ttl, shared=shared))
