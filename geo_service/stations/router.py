"""HTTP for the stations room: nearest, list, get, create/replace/patch/delete, import,
the import template."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from geo_service.domain.catalogue import amenity_mask
from geo_service.domain.coords import Crs
from geo_service.domain.errors import (
    ERROR_RESPONSES,
    WRITE_RESPONSES,
    ErrorBody,
    StateConflict,
    invalid,
)
from geo_service.domain.params import (
    AREA_PATTERN,
    AT_PATTERN,
    BBOX_PATTERN,
    CURSOR_PATTERN,
    at_most,
    instant,
    list_pattern,
    parse_bbox,
    parse_if_match,
    split_list,
)
from geo_service.domain.schemas import (
    NOT_NULL_STATION_FIELDS,
    ImportReport,
    IsoText,
    NearestResponse,
    StationCreate,
    StationDetail,
    StationPage,
    StationPatch,
    StationPublic,
    StationReplace,
)
from geo_service.imports.run import Mode, import_upload
from geo_service.infra.settings import Settings
from geo_service.roads.graph import By
from geo_service.roads.graph import Mode as RoadMode
from geo_service.roads.keeper import road_keeper
from geo_service.roads.nearest import Fetch, NoRoadNear, nearest_by_road
from geo_service.stations import importer, service
from geo_service.stations import template as sheet_template
from geo_service.stations.nearest_index.http import (
    AMENITY_CODES,
    HOST_TYPES,
    STATUSES,
    NearestQuery,
    _nearest_body,
    nearest_answer,
    nearest_response,
)
from geo_service.stations.nearest_index.index import Index
from geo_service.stations.nearest_index.state import nearest_keeper
from geo_service.stations.service import NearestParams
from geo_service.web.deps import (
    Admin,
    CodePath,
    ConnDep,
    CrsQ,
    Editor,
    IfMatch,
    ImportFile,
    ImportFormatQ,
    MinChangeSeq,
    ReadConnDep,
    SettingsDep,
    awaited,
    routing_state,
)
from geo_service.web.responses import JSONResponse

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["stations"])
#: ``by``: the order of nearest (straight line, or by road when roads are loaded).
ByQ = Annotated[By | None, Query(
    description="straight (default): geodesic distance; walk or ebike: road time on the "
                "loaded road network (409 when none is loaded or none is within "
                "GEO_ROADS_MAX_SNAP_M of the point), each result with its road metres and "
                "minutes")]


@router.get(
    "/stations/nearest", response_model=NearestResponse,
    responses={**ERROR_RESPONSES, 409: {
        "model": ErrorBody,
        "description": "by=walk|ebike with no roads loaded, or none near the point"}},
    summary="Nearest stations, optionally open now and with given amenities",
)
async def nearest(request: Request, settings: SettingsDep,
                  query: Annotated[NearestQuery, Depends(awaited(NearestQuery))],
                  min_change_seq: MinChangeSeq = None, by: ByQ = None) -> Response:
    """From the process's memory index when it is loaded, fresh within its bound and has
    applied ``X-Min-Change-Seq``; else from PostgreSQL, a standby when one is configured
    and has that change (``stations/nearest_index/``, ``replicas.py``). The connection is
    taken only for the SQL path. Plainly valid requests the index can answer usually
    never get here: ``nearest_index.http`` answers them with :func:`nearest_answer`.
    ``by=walk|ebike`` orders by road over the same candidates (``geo_service/roads``)."""
    p = query.resolve(settings)
    seq = None if min_change_seq is None else int(min_change_seq)
    keeper = nearest_keeper(request.app.state)
    index = None if keeper is None else keeper.usable(seq)
    if by is not None and by is not By.STRAIGHT:
        return await _nearest_by_road(request, settings, query, p, by, seq, index)
    if keeper is not None and index is not None:
        return nearest_answer(keeper, index, query, p, settings)
    routing = request.app.state.routing
    async with routing.read_connection(routing_state(request), seq) as conn:
        results = await service.nearest_results(conn, p, query.crs)
    return nearest_response(keeper, query, p, results, "sql", settings)


async def _nearest_by_road(request: Request, settings: Settings, query: NearestQuery,
                           p: NearestParams, by: By, seq: int | None,
                           index: Index | None) -> Response:
    """Nearest by road: candidates in straight order from the index (else SQL, the
    connection held for the walk), ordered on the in-process road graph."""
    roads = road_keeper(request.app.state)
    network = None if roads is None else await roads.current(request.app.state.pool)
    if roads is None or network is None:
        raise StateConflict("no road network is loaded: by=walk|ebike needs one "
                       "(geo-service roads load FILE.osm.pbf)", [("by", "no roads loaded")])
    mode: RoadMode = "walk" if by is By.WALK else "ebike"
    graph, snaps = network.modes[mode], roads.snaps[mode]
    max_s = settings.roads_max_minutes * 60

    async def run(fetch: Fetch) -> tuple[list[dict[str, Any]], float]:
        try:
            return await nearest_by_road(fetch, lon=p.lon, lat=p.lat, k=p.k, crs=query.crs,
                                         graph=graph, snaps=snaps, max_s=max_s,
                                         max_snap_m=settings.roads_max_snap_m)
        except NoRoadNear as far:
            problem = (f"no road within {far.max_snap_m:g} m of this point: the loaded roads "
                       "do not cover it; ask without by for straight-line distance")
            raise StateConflict(problem, [("by", problem)]) from None

    if index is not None:
        async def from_index(k: int) -> list[dict[str, Any]]:
            return index.nearest_results(dataclasses.replace(p, k=k), query.crs)
        results, snap_m = await run(from_index)
        source = "memory"
    else:
        routing = request.app.state.routing
        async with routing.read_connection(routing_state(request), seq) as conn:
            async def from_sql(k: int) -> list[dict[str, Any]]:
                return await service.nearest_results(conn, dataclasses.replace(p, k=k),
                                                     query.crs)
            results, snap_m = await run(from_sql)
        source = "sql"
    body = _nearest_body(query, p, results)
    body["query"].update(by=by.value, snap_m=snap_m)
    return JSONResponse(body, headers={"X-Nearest-Source": source})


@router.get("/stations", response_model=StationPage, responses=ERROR_RESPONSES,
            summary="List stations with filters and cursor pagination")
async def list_stations(
    conn: ReadConnDep,
    settings: SettingsDep,
    bbox: Annotated[str | None, Query(pattern=BBOX_PATTERN,
                                      description="minlon,minlat,maxlon,maxlat in crs")] = None,
    area: Annotated[str | None, Query(pattern=AREA_PATTERN, description="admin area code")] = None,
    amenities: Annotated[str | None, Query(pattern=list_pattern(AMENITY_CODES),
                                           description="comma list of amenity codes")] = None,
    host_type: Annotated[str | None, Query(pattern=list_pattern(HOST_TYPES),
                                           description="comma list of host types")] = None,
    status: Annotated[
        str | None, Query(pattern=list_pattern(STATUSES),
                          description="comma list; default open,temporarily_closed")
    ] = None,
    limit: Annotated[int, Query(ge=1, description="page size (at most settings.max_page_size)")
                     ] = 100,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN,
                                        description="next_cursor of the previous page")] = None,
    crs: CrsQ = Crs.WGS84,
) -> Response:
    at_most(limit, settings.max_page_size, "limit")
    want = split_list(amenities, "amenities", AMENITY_CODES) or []
    statuses = split_list(status, "status", STATUSES) or service.DEFAULT_STATUSES
    page = await service.list_stations(
        conn, crs=crs, limit=limit, cursor=cursor,
        statuses=statuses, want_mask=amenity_mask(want),
        host_types=split_list(host_type, "host_type", HOST_TYPES), area=area,
        bbox=parse_bbox(bbox, crs),
    )
    return JSONResponse(page)


@router.get(
    "/stations:template.xlsx",
    summary="The import template: the union spreadsheet's Chinese columns, drop-downs, "
            "an example row and a 说明 sheet (public)",
    description="Public, like the other read endpoints: it holds no station data, only the "
                "columns and vocabularies the OpenAPI schema already publishes, and union staff "
                "need it before they have a key. The example row (code 示例-0001) is skipped "
                "on import, so importing the untouched template writes nothing.",
    response_class=Response,
    responses={200: {"description": "XLSX workbook, as an attachment",
                     "content": {sheet_template.MEDIA_TYPE: {
                         "schema": {"type": "string", "format": "binary"}}}},
               **ERROR_RESPONSES},
)
async def import_template() -> Response:
    body = await asyncio.to_thread(sheet_template.template_xlsx)
    return Response(body, media_type=sheet_template.MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{sheet_template.FILENAME}"',
        "Cache-Control": "public, max-age=3600"})


def _station_response(station: dict[str, Any], status_code: int = 200) -> Response:
    return JSONResponse(station, status_code=status_code,
                        headers={"ETag": f'"{station["version"]}"'})


@router.get("/stations/{code}", response_model=StationDetail,
            responses={**ERROR_RESPONSES, 404: WRITE_RESPONSES[404]},
            summary="One station by its public code (any status, including closed)")
async def get_station(
    conn: ReadConnDep, settings: SettingsDep, code: CodePath, crs: CrsQ = Crs.WGS84,
    at: Annotated[dt.datetime | None, IsoText, Query(
        description="instant for open_now and next_change (default now); naive = China "
                    "time; a year from 1970 to 2199",
        json_schema_extra={"pattern": AT_PATTERN})] = None,
) -> Response:
    when = instant(at, "at", default_tz=settings.default_timezone)
    return _station_response(await service.station_detail(conn, code, crs, when))


@router.post("/stations", response_model=StationPublic, status_code=201,
             responses=WRITE_RESPONSES, summary="Create a station (editor or admin key)")
async def create_station(
    conn: ConnDep, body: StationCreate, principal: Editor, crs: CrsQ = Crs.WGS84
) -> Response:
    station = await service.create_station(conn, principal, body.model_dump(), crs)
    return _station_response(station, 201)


@router.put("/stations/{code}", response_model=StationPublic, responses=WRITE_RESPONSES,
            summary="Replace a station; needs its current version")
async def replace_station(
    conn: ConnDep, code: CodePath, body: StationReplace, principal: Editor,
    if_match: IfMatch = None, crs: CrsQ = Crs.WGS84,
) -> Response:
    station = await service.replace_station(
        conn, principal, code, body.model_dump(), crs, parse_if_match(if_match)
    )
    return _station_response(station)


@router.patch("/stations/{code}", response_model=StationPublic, responses=WRITE_RESPONSES,
              summary="Change some fields of a station; needs its current version")
async def patch_station(
    conn: ConnDep, code: CodePath, body: StationPatch, principal: Editor,
    if_match: IfMatch = None, crs: CrsQ = Crs.WGS84,
) -> Response:
    patch = body.model_dump(exclude_unset=True)
    for key in NOT_NULL_STATION_FIELDS:
        if key in patch and patch[key] is None:
            raise invalid(key, "cannot be null")
    station = await service.patch_station(
        conn, principal, code, patch, crs, parse_if_match(if_match)
    )
    return _station_response(station)


@router.delete("/stations/{code}", response_model=StationPublic, responses=WRITE_RESPONSES,
               summary="Soft-delete: status closed with a timestamp; the record stays")
async def delete_station(
    conn: ConnDep, code: CodePath, principal: Editor, if_match: IfMatch = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    station = await service.delete_station(
        conn, principal, code, version, parse_if_match(if_match)
    )
    return _station_response(station)


@router.post(
    "/stations:import", response_model=ImportReport, responses=WRITE_RESPONSES,
    summary="Import stations from CSV (UTF-8/GB18030), XLSX or GeoJSON (admin key)",
)
async def import_stations(
    conn: ConnDep, settings: SettingsDep, file: ImportFile, principal: Admin,
    format: ImportFormatQ = None, mode: Mode = Mode.ALL_OR_NOTHING,
    dry_run: bool = False, crs: CrsQ = Crs.WGS84,
) -> Response:
    report = await import_upload(
        file, format, settings, dry_run=dry_run,
        run=lambda data, fmt, limits: importer.import_bytes(
            conn, data, fmt, mode=mode, dry_run=dry_run, principal=principal,
            max_rows=settings.max_import_rows, crs=crs,
            duplicate_within_m=settings.duplicate_distance_m, limits=limits))
    return JSONResponse(report)
