"""HTTP for the stations room: nearest, list, get, create/replace/patch/delete, import,
the import template."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_service.domain.catalogue import AMENITY_BY_CODE, HostType, Status, amenity_mask
from geo_service.domain.coords import Crs, to_wgs84
from geo_service.domain.encoding import GZIP_MIN_BYTES, dumps, gzip_body
from geo_service.domain.errors import ERROR_RESPONSES, WRITE_RESPONSES, GeoServiceError, invalid
from geo_service.domain.params import (
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
from geo_service.stations import importer, service
from geo_service.stations import template as sheet_template
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
    LatQ,
    LonQ,
    MinChangeSeq,
    ReadConnDep,
    SettingsDep,
    awaited,
    routing_state,
)
from geo_service.web.responses import JSONResponse
from geo_service.web.security_headers import SECURITY_HEADERS

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
    and has that change (``stations/memindex.py``, ``replicas.py``). The connection is
    taken only for the SQL path."""
    p = query.resolve(settings)
    seq = None if min_change_seq is None else int(min_change_seq)
    keeper = request.app.state.nearest_index
    index = None if keeper is None else keeper.usable(seq)
    if index is not None:
        results: list[Any] = [orjson.Fragment(row) for row in index.nearest_json(p, query.crs)]
        source = "memory"
    else:
        routing = request.app.state.routing
        async with routing.read_connection(routing_state(request), seq) as conn:
            results = await service.nearest_results(conn, p, query.crs)
        source = "sql"
    if keeper is not None:
        keeper.answers[source] += 1
    log.debug("nearest at %s k=%d -> %d (%s)", _location_log(query.lat, query.lon, settings),
              p.k, len(results), source)
    return _nearest_response(query, p, results, source)


def _nearest_response(query: NearestQuery, p: NearestParams, results: list[Any],
                      source: str) -> Response:
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


# --- the thin route --------------------------------------------------------------------------

# Decimal, without leading zeros, exponents, signs on counts or spaces.
_NUMBER = re.compile(r"-?(0|[1-9][0-9]{0,2})(\.[0-9]{1,15})?")
_COUNT = re.compile(r"0|[1-9][0-9]{0,3}")
_RADIUS = re.compile(r"(0|[1-9][0-9]{0,8})(\.[0-9]{1,9})?")
_SEQ = re.compile(rb"[0-9]{1,18}")
_BOOLS = {"true": True, "false": False}
_CRS = {c.value: c for c in Crs}
_LIST_PATTERNS = {"amenities": re.compile(list_pattern(_AMENITIES)),
                  "host_type": re.compile(list_pattern(_HOSTS)),
                  "status": re.compile(list_pattern(_STATUSES))}
_AT = TypeAdapter(Annotated[dt.datetime, IsoText])


def _fast_query(raw: bytes) -> NearestQuery | None:
    """The query string as :class:`NearestQuery` when it is plainly valid, written the
    canonical way (decimal numbers, ``true``/``false``, known names, each parameter
    once); else None, and the request takes the declared route, whose validation and
    error bodies are the contract. Stricter than the route, never looser."""
    values: dict[str, Any] = {}
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    for key, value in pairs:
        if key in values:
            return None
        if key in ("lat", "lon"):
            if not _NUMBER.fullmatch(value):
                return None
            values[key] = float(value)
        elif key in ("k", "min_ten_ones"):
            if not _COUNT.fullmatch(value):
                return None
            values[key] = int(value)
        elif key == "radius_m":
            if not _RADIUS.fullmatch(value):
                return None
            values[key] = float(value)
        elif key in ("open_now", "include_unknown"):
            if value not in _BOOLS:
                return None
            values[key] = _BOOLS[value]
        elif key in _LIST_PATTERNS:
            if not _LIST_PATTERNS[key].fullmatch(value):
                return None
            values[key] = value
        elif key == "at":
            try:
                values[key] = _AT.validate_python(value)
            except ValueError:
                return None
        elif key == "crs":
            if value not in _CRS:
                return None
            values[key] = _CRS[value]
        else:
            return None
    if "lat" not in values or "lon" not in values or values.get("k", 1) < 1 \
            or not 0 <= values.get("min_ten_ones", 0) <= 10 or values.get("radius_m", 1) <= 0:
        return None
    return NearestQuery(**values)


PATH_NEAREST = "/v1/stations/nearest"


async def answer_from_memory(state: Any, scope: Scope, send: Send) -> bool:
    """Answer ``GET /v1/stations/nearest`` from the memory index, before FastAPI's
    routing, dependencies, validation and the whole middleware stack, which cost more
    than the index itself (profiled: ``bench/README.md``); the app calls it first
    (``main.GeoServiceApp``). It sends what the stack would add: the security headers,
    ``Vary`` and gzip (level and threshold of ``responses``). It takes only requests that
    are plainly valid (:func:`_fast_query`, then the same ``resolve`` checks) while the
    index is usable, and says whether it answered; everything else - errors included, so
    their bodies stay the route's - goes on to the app. The rows come from the same index
    method as the route's."""
    if scope["type"] != "http" or scope["path"] != PATH_NEAREST or scope["method"] != "GET":
        return False
    try:
        body = _answer(state, scope)
    except Exception:  # outside the app's error handling: a bug here must not cost a 500
        log.exception("nearest from memory failed; the route answers instead")
        return False
    if body is None:
        return False
    await _send_json(scope, send, body)
    return True


def _answer(state: Any, scope: Scope) -> bytes | None:
    keeper = state.nearest_index
    if keeper is None:
        return None
    min_seq = None
    for name, value in scope["headers"]:
        if name == b"x-min-change-seq":
            if min_seq is not None or not _SEQ.fullmatch(value):
                return None
            min_seq = int(value)
    index = keeper.usable(min_seq)
    if index is None:
        return None
    query = _fast_query(scope["query_string"])
    if query is None:
        return None
    try:
        p = query.resolve(state.settings)
    except GeoServiceError:
        return None  # the route refuses it, with its own body
    rows = index.nearest_json(p, query.crs)
    keeper.answers["memory"] += 1
    return dumps(_nearest_body(query, p, [orjson.Fragment(row) for row in rows]))


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
        keeper = scope["app"].state.nearest_index
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


_FAST_HEADERS = [(b"content-type", b"application/json"), (b"x-nearest-source", b"memory"),
                 *SECURITY_HEADERS]


async def _send_json(scope: Scope, send: Send, body: bytes) -> None:
    """Send a 200 JSON answer as the middleware stack would: gzip when the client
    accepts it (the same substring test as Starlette's), ``Vary`` above the threshold."""
    headers = list(_FAST_HEADERS)
    if len(body) >= GZIP_MIN_BYTES:
        headers.append((b"vary", b"Accept-Encoding"))
        if any(name == b"accept-encoding" and b"gzip" in value
               for name, value in scope["headers"]):
            body = gzip_body(body)
            headers.append((b"content-encoding", b"gzip"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
