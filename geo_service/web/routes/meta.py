"""Root page, health check and the small reference endpoints (amenities, admin areas)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse
from psycopg.rows import dict_row

from geo_service.domain.errors import ERROR_RESPONSES, NotFound
from geo_service.domain.params import AREA_PATTERN
from geo_service.domain.schemas import AdminAreaPublic, AmenityPublic
from geo_service.hours.arrangements import install_arrangements
from geo_service.hours.calendars import calendar_health
from geo_service.roads.keeper import road_keeper
from geo_service.roads.store import extract_info
from geo_service.stations import queries as q
from geo_service.stations.nearest_index.state import nearest_keeper
from geo_service.web import serving
from geo_service.web.deps import ReadConnDep
from geo_service.web.responses import JSONResponse

log = logging.getLogger(__name__)
router = APIRouter()

ROOT_HTML = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>geo_service</title></head>
<body style="font-family: sans-serif; max-width: 46rem; margin: 2rem auto">
<h1>geo_service — 户外劳动者服务站点 / outdoor-worker station locator</h1>
<p>Nearest stations, coverage analysis, maps and feeds for trade-union rest stations.</p>
<ul>
<li><a href="/guide/">使用手册 Manual</a>: getting started in a new city (新城市上手), the
 courier app, union offices, planners, feeds, import formats, operations</li>
<li><a href="/app/">Courier app 附近驿站</a>: the nearest open stations on a phone, a map,
 navigation, reports (Chinese first, English toggle)</li>
<li><a href="/docs">API documentation (OpenAPI / Swagger UI)</a> · <a href="/redoc">ReDoc</a>
 · <a href="/openapi.json">openapi.json</a></li>
<li><a href="/v1/stations/nearest?lat=18.25&amp;lon=109.50&amp;k=5&amp;open_now=true\
&amp;amenities=microwave">
Example: 5 nearest open stations with a microwave near Sanya downtown</a></li>
<li><a href="/v1/stations">All stations</a> · <a href="/v1/amenities">Amenity catalogue</a>
 · <a href="/v1/areas">Admin areas</a></li>
<li>Maps for planners (sample city, rendered by <code>make run</code> into <code>maps/</code>):
 <a href="/maps/files/stations.html">stations</a> ·
 <a href="/maps/files/coverage.html">coverage gaps and recommended sites</a> ·
 <a href="/maps/files/compliance.html">stations to follow up</a>;
 live from current data: <a href="/maps/stations.html">stations</a> ·
 <a href="/maps/coverage.html">coverage</a> · <a href="/maps/compliance.html">compliance</a>
 (add <code>?offline=true</code> for intranets, <code>&amp;basemap=amap</code> for a GCJ-02
 basemap)</li>
<li>Feeds for navigation apps and GIS tools (<a href="/v1/feeds">discovery</a>):
 <a href="/v1/feeds/stations.geojson">GeoJSON</a> ·
 <a href="/v1/feeds/station_status">station status</a> ·
 <a href="/v1/feeds/changes">change feed</a> ·
 <a href="/ogc">OGC API – Features</a> ·
 <a href="/tiles/stations.json">vector tiles (TileJSON)</a></li>
<li>Bulk-upload exports: Amap <a href="/v1/exports/amap.csv">CSV</a> /
 <a href="/v1/exports/amap.xlsx">XLSX</a> (GCJ-02) · Tencent
 <a href="/v1/exports/tencent.csv">CSV</a> / <a href="/v1/exports/tencent.xlsx">XLSX</a>
 (GCJ-02) · Baidu <a href="/v1/exports/baidu.csv">CSV</a> /
 <a href="/v1/exports/baidu.xlsx">XLSX</a> (BD-09) · generic
 <a href="/v1/exports/generic.csv">CSV</a> / <a href="/v1/exports/generic.xlsx">XLSX</a>
 (WGS-84)</li>
<li><a href="/healthz">Health</a></li>
</ul>
<p><em>Any station marked <code>"sample": true</code> is SAMPLE DATA generated for
demonstration, not a real station.</em></p>
</body></html>"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def root() -> HTMLResponse:
    return HTMLResponse(ROOT_HTML)


@router.get("/healthz", responses={503: ERROR_RESPONSES[503]}, tags=["meta"],
            summary="Is the database answering?")
async def healthz(request: Request) -> Response:
    """Tries the pool with a short timeout; 503 while the primary is away.

    ``status`` is ``degraded`` (still 200: every request is answered) while the
    memory index is on but not answering nearest (loading, lagging, reconnecting,
    or unconfigured behind PgBouncer): nearest then costs a query each, which a
    monitor should see rather than a plain "ok".
    The pool reconnects by itself, so the service recovers without a restart.
    ``databases`` lists the primary and every standby of ``GEO_READ_DATABASE_URLS``
    as the replica monitor last saw them (role, reachable, lag, whether it serves
    reads); a standby that is down or behind does not make the service unhealthy,
    reads go elsewhere. ``serving`` says whether ``geo-service serve`` coalesces writes
    with these settings, and why not when the installed uvicorn no longer allows it.
    """
    pool = request.app.state.pool
    routing = request.app.state.routing
    for attempt in range(2):
        try:
            async with asyncio.timeout(2.0), pool.connection(timeout=2.0) as conn:
                await conn.execute("SELECT 1")
                await install_arrangements(conn)
                roads = await _roads_status(request, conn)
            index = _index_status(request)
            return JSONResponse({"status": "ok" if index["state"] in ("off", "ready")
                                 else "degraded", "database": "online",
                                 "databases": routing.health(True),
                                 "nearest_index": index,
                                 "calendar": _calendar_status(),
                                 "roads": roads,
                                 "serving": _serving_status(request)})
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            if attempt == 0:
                # Connections may have died with a database restart: replace the
                # broken idle ones and ask once more before saying "offline".
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(3.0):
                        await pool.check()
    return JSONResponse({"status": "unavailable", "database": "offline",
                         "databases": routing.health(False),
                         "nearest_index": _index_status(request),
                         "calendar": _calendar_status(),
                         "serving": _serving_status(request)}, status_code=503)


async def _roads_status(request: Request, conn: Any) -> dict[str, Any]:
    """The road network: whether an extract is loaded, which (file, the extract's date
    from its header, area, counts) and whether this process holds its graph."""
    extract = await extract_info(conn)
    keeper = road_keeper(request.app.state)
    return {"loaded": extract is not None, "extract": extract,
            **({"graph": "off"} if keeper is None else keeper.status())}


def _calendar_status() -> dict[str, object]:
    """China's holiday calendar: its label, the last official day, and a warning from
    60 days before it (``calendars.calendar_health``)."""
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    return calendar_health(today)


def _serving_status(request: Request) -> dict[str, Any]:
    """The write coalescing of ``geo-service serve`` (``serving.status``)."""
    return serving.status(request.app.state.settings.write_coalescing)


def _index_status(request: Request) -> dict[str, Any]:
    """The in-memory nearest index: state (off, loading, ready, lagging, reconnecting,
    unconfigured), stations held, the change number applied, its lag behind the database
    in seconds (every commit older than that is applied), load time and bytes held."""
    keeper = nearest_keeper(request.app.state)
    if keeper is None:
        return {"state": "off"}
    return dataclasses.asdict(keeper.status())


@router.get("/v1/amenities", response_model=list[AmenityPublic], tags=["reference"],
            responses=ERROR_RESPONSES, summary="The amenity catalogue (the ten ones and extras)")
async def amenities(conn: ReadConnDep) -> Response:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.AMENITIES)
        return JSONResponse(await cur.fetchall())


async def _areas(conn: Any, code: str | None) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.ADMIN_AREAS, {"code": code})
        rows: list[dict[str, Any]] = await cur.fetchall()
        return rows


@router.get("/v1/areas", response_model=list[AdminAreaPublic], tags=["reference"],
            responses=ERROR_RESPONSES, summary="Admin areas with their station counts")
async def areas(conn: ReadConnDep) -> Response:
    return JSONResponse(await _areas(conn, None))


@router.get("/v1/areas/{code}", response_model=AdminAreaPublic, tags=["reference"],
            responses={**ERROR_RESPONSES, 404: {"description": "unknown area"}})
async def area(
    conn: ReadConnDep, code: Annotated[str, Path(pattern=AREA_PATTERN)]
) -> Response:
    rows = await _areas(conn, code)
    if not rows:
        raise NotFound(f"no admin area {code!r}", [("code", "unknown area code")])
    return JSONResponse(rows[0])
