"""HTTP for the stations room: nearest, list, get, create/replace/patch/delete, import,
the import template."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_service.catalogue import AMENITY_BY_CODE, HostType, Status, amenity_mask
from geo_service.coords import Crs, to_wgs84
from geo_service.deps import (
    Admin,
    CodePath,
    ConnDep,
    CrsQ,
    Editor,
    IfMatch,
    ImportFile,
    ImportFormatQ,
    LatQ,
    LonQ,
    MinChangeSeq,
    ReadConnDep,
    SettingsDep,
    awaited,
    routing_state,
)
from geo_service.errors import (
    ERROR_RESPONSES,
    WRITE_RESPONSES,
    invalid,
)
from geo_service.imports.run import Mode, import_upload
from geo_service.params import (
    AREA_PATTERN,
    AT_PATTERN,
    BBOX_PATTERN,
    CURSOR_PATTERN,
    at_most,
    check_point,
    instant,
    list_pattern,
    parse_bbox,
    parse_if_match,
    split_list,
)
from geo_service.responses import JSONResponse
from geo_service.schemas import (
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
from geo_service.settings import Settings
from geo_service.stations import importer, service
from geo_service.stations import template as sheet_template
from geo_service.stations.nearest_index.index import Index
from geo_service.stations.nearest_index.state import NearestKeeper, nearest_keeper
from geo_service.stations.service import NearestParams

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["stations"])


def _location_log(lat: float, lon: float, settings: Settings) -> str:
    """Courier location is personal: logs get it rounded (~100 m at 3 decimals)."""
    d = settings.log_location_decimals
    return f"{round(lat, d)},{round(lon, d)}"


_AMENITIES = set(AMENITY_BY_CODE)
_HOSTS = {h.value for h in HostType}
_STATUSES = {s.value for s in Status}


@dataclass
class NearestQuery:
    """Nearest's query parameters as one dependency (as titiler-pgstac declares them).

    Caps come from settings only (``GEO_MAX_K``, ``GEO_MAX_RADIUS_M``); the
    published schema states them too (``openapi.py``).
    """

    lat: LatQ
    lon: LonQ
    k: Annotated[int, Query(ge=1, description="how many (at most settings.max_k)")] = 5
    radius_m: Annotated[float | None, Query(
        gt=0, allow_inf_nan=False, description="search radius in metres (at most "
                                                "settings.max_radius_m)")] = None
    amenities: Annotated[str | None, Query(pattern=list_pattern(_AMENITIES),
                                           description="comma list of amenity codes")] = None
    open_now: Annotated[bool, Query(
        description="only stations open at `at` (their hours say open; stations whose hours "
                    "are unknown then are left out unless include_unknown)")] = False
    include_unknown: Annotated[bool, Query(
        description="with open_now: also stations whose hours are unknown at `at` (no hours "
                    "on record, an 'unknown' rule, or a dated rule past its horizon); they "
                    "answer open_now null")] = False
    at: Annotated[
        dt.datetime | None, IsoText, Query(description="instant for open_now; naive = China time; "
                                                       "a year from 1970 to 2199",
                                           json_schema_extra={"pattern": AT_PATTERN})
    ] = None
    host_type: Annotated[str | None, Query(pattern=list_pattern(_HOSTS),
                                           description="comma list of host types")] = None
    status: Annotated[
        str | None, Query(pattern=list_pattern(_STATUSES),
                          description="comma list; default open,temporarily_closed")
    ] = None
    min_ten_ones: Annotated[int, Query(ge=0, le=10)] = 0
    crs: CrsQ = Crs.WGS84

    def resolve(self, settings: Settings) -> NearestParams:
        """Checked, converted to WGS-84 and filled with the defaults: what the service takes."""
        check_point(self.lat, self.lon)
        at_most(self.k, settings.max_k, "k")
        radius = self.radius_m if self.radius_m is not None else settings.default_radius_m
        at_most(radius, settings.max_radius_m, "radius_m")
        wlon, wlat = to_wgs84(self.lon, self.lat, self.crs)
        return NearestParams(
            lon=wlon, lat=wlat, k=self.k, radius_m=radius,
            at=instant(self.at, "at", default_tz=settings.default_timezone),
            want=split_list(self.amenities, "amenities", _AMENITIES) or [],
            open_now=self.open_now, include_unknown=self.include_unknown,
            host_types=split_list(self.host_type, "host_type", _HOSTS),
            statuses=split_list(self.status, "status", _STATUSES) or service.DEFAULT_STATUSES,
            min_ten_ones=self.min_ten_ones)


@router.get(
    "/stations/nearest", response_model=NearestResponse, responses=ERROR_RESPONSES,
    summary="Nearest stations, optionally open now and with given amenities",
)
async def nearest(request: Request, settings: SettingsDep,
                  query: Annotated[NearestQuery, Depends(awaited(NearestQuery))],
                  min_change_seq: MinChangeSeq = None) -> Response:
    """From the process's memory index when it is loaded, fresh within its bound and has
    applied ``X-Min-Change-Seq``; else from PostgreSQL, a standby when one is configured
    and has that change (``stations/nearest_index/``, ``replicas.py``). The connection is
    taken only for the SQL path. Plainly valid requests the index can answer usually
    never get here: ``nearest_index.fastpath`` answers them with :func:`nearest_answer`."""
    p = query.resolve(settings)
    seq = None if min_change_seq is None else int(min_change_seq)
    keeper = nearest_keeper(request.app.state)
    index = None if keeper is None else keeper.usable(seq)
    if keeper is not None and index is not None:
        return nearest_answer(keeper, index, query, p, settings)
    routing = request.app.state.routing
    async with routing.read_connection(routing_state(request), seq) as conn:
        results = await service.nearest_results(conn, p, query.crs)
    return _nearest_response(keeper, query, p, results, "sql", settings)


#: The route's own parameter rules, for callers outside FastAPI's dependency system
#: (the fast path): the same dataclass, validated by the same pydantic fields.
_NEAREST_QUERY = TypeAdapter(NearestQuery)
_NEAREST_FIELDS = frozenset(f.name for f in dataclasses.fields(NearestQuery))
_MIN_CHANGE_SEQ: TypeAdapter[str | None] = TypeAdapter(MinChangeSeq)


def nearest_query(params: Mapping[str, str]) -> NearestQuery:
    """:class:`NearestQuery` from query parameters as FastAPI reads them (Starlette's
    ``QueryParams``: the last of a repeated parameter; unknown ones ignored), by the
    route's own field declarations. Raises ``pydantic.ValidationError`` where the route
    answers 422."""
    return _NEAREST_QUERY.validate_python(
        {name: value for name, value in params.items() if name in _NEAREST_FIELDS})


def min_change_seq_of(header: str | None) -> int | None:
    """``X-Min-Change-Seq`` by the route's declaration (:data:`deps.MinChangeSeq`);
    raises ``pydantic.ValidationError`` where the route answers 422."""
    value = _MIN_CHANGE_SEQ.validate_python(header)
    return None if value is None else int(value)


def nearest_answer(keeper: NearestKeeper, index: Index, query: NearestQuery,
                   p: NearestParams, settings: Settings) -> Response:
    """The answer from the memory index: the route's and the fast path's, one code."""
    rows: list[Any] = [orjson.Fragment(row) for row in index.nearest_json(p, query.crs)]
    return _nearest_response(keeper, query, p, rows, "memory", settings)


def _nearest_response(keeper: NearestKeeper | None, query: NearestQuery, p: NearestParams,
                      results: list[Any], source: str, settings: Settings) -> Response:
    if keeper is not None:
        keeper.answers[source] += 1
    log.debug("nearest at %s k=%d -> %d (%s)", _location_log(query.lat, query.lon, settings),
              p.k, len(results), source)
    return JSONResponse(_nearest_body(query, p, results), headers={"X-Nearest-Source": source})


def _nearest_body(query: NearestQuery, p: NearestParams,
                  results: list[Any]) -> dict[str, Any]:
    """The answer: the query as resolved and the rows (dicts, or JSON fragments from the
    memory index)."""
    return {
        "query": {
            "lat": query.lat, "lon": query.lon, "crs": query.crs.value, "k": p.k,
            "radius_m": p.radius_m, "at": p.at, "amenities": p.want, "open_now": p.open_now,
            "include_unknown": p.include_unknown,
            "host_types": p.host_types, "statuses": p.statuses,
        },
        "count": len(results),
        "results": results,
    }


class NoteWrites:
    """Marks when this process last answered a successful write, so its memory index
    answers again only once it has provably applied it (this process reads its own
    writes).

    Only a 2xx answer counts: a refused request (unknown path, no key, bad body, rate
    limited) wrote nothing, and anyone can send those as fast as they like - each one
    stamped would send this process's nearest to SQL for a ping's round trip."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        keeper = nearest_keeper(scope["app"].state)
        succeeded = False

        async def noting_writes(message: Message) -> None:
            nonlocal succeeded
            if message["type"] == "http.response.start":
                succeeded = 200 <= message["status"] < 300
            await send(message)
            if succeeded and keeper is not None and message["type"] == "http.response.body" \
                    and not message.get("more_body", False):
                # Committed before it answered: the index answers again once it has
                # provably applied it.
                keeper.wrote_at = time.monotonic()

        await self.app(scope, receive, noting_writes)


@router.get("/stations", response_model=StationPage, responses=ERROR_RESPONSES,
            summary="List stations with filters and cursor pagination")
async def list_stations(
    conn: ReadConnDep,
    settings: SettingsDep,
    bbox: Annotated[str | None, Query(pattern=BBOX_PATTERN,
                                      description="minlon,minlat,maxlon,maxlat in crs")] = None,
    area: Annotated[str | None, Query(pattern=AREA_PATTERN, description="admin area code")] = None,
    amenities: Annotated[str | None, Query(pattern=list_pattern(_AMENITIES),
                                           description="comma list of amenity codes")] = None,
    host_type: Annotated[str | None, Query(pattern=list_pattern(_HOSTS),
                                           description="comma list of host types")] = None,
    status: Annotated[
        str | None, Query(pattern=list_pattern(_STATUSES),
                          description="comma list; default open,temporarily_closed")
    ] = None,
    limit: Annotated[int, Query(ge=1, description="page size (at most settings.max_page_size)")
                     ] = 100,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN,
                                        description="next_cursor of the previous page")] = None,
    crs: CrsQ = Crs.WGS84,
) -> Response:
    at_most(limit, settings.max_page_size, "limit")
    want = split_list(amenities, "amenities", _AMENITIES) or []
    statuses = split_list(status, "status", _STATUSES) or service.DEFAULT_STATUSES
    page = await service.list_stations(
        conn, crs=crs, limit=limit, cursor=cursor,
        statuses=statuses, want_mask=amenity_mask(want),
        host_types=split_list(host_type, "host_type", _HOSTS), area=area,
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
async def get_station(conn: ReadConnDep, code: CodePath, crs: CrsQ = Crs.WGS84) -> Response:
    return _station_response(await service.get_station(conn, code, crs))


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
