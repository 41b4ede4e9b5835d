"""The console's stations: the list of the person's area, its export, a station's page.

Any signed-in role may read them (an inspector too), within the person's area, as a
key with the same role and area reads the API. The session and the areas it may pick
are read on the sync pool in a worker thread, as every console page's are; the
stations on the async pool, whose services (the station's detail, reports,
inspections, visits) the API uses.

The export is a GET, so the list's URL with ``.xlsx`` is a link a clerk can share.
It changes nothing; building a workbook costs CPU, so it takes one of the process's
XLSX build slots (``GEO_EXPORT_XLSX_CONCURRENCY``, shared with ``/v1/exports``, which
anyone may ask for without signing in) and is refused with a 429 page past them. It is
written by the platform exports' own writer (``feeds.service.write_xlsx``, the
``union`` platform: the import template's columns), from exactly the rows the list's
filters select, in the list's order.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from typing import IO, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from geo_service.console import http as web
from geo_service.console.station_page import station_page
from geo_service.console.station_view import station_view
from geo_service.console.stations_list import Filters, export_rows, list_page, parse_filters
from geo_service.console.stations_pages import stations_page
from geo_service.domain import accounts
from geo_service.domain.auth import ROLES
from geo_service.domain.errors import Busy, Forbidden, GeoServiceError, NotFound
from geo_service.domain.params import CODE_PATTERN
from geo_service.feeds.export_formats import (
    PLATFORMS,
    XLSX_MEDIA_TYPE,
    PlatformName,
    export_filename,
)
from geo_service.feeds.service import write_xlsx, xlsx_slots_of
from geo_service.infra.settings import Settings
from geo_service.posters.service import is_local
from geo_service.web.deps import SettingsDep

router = APIRouter(prefix="/console", include_in_schema=False)

_MESSAGES = {
    "forbidden": ("此驿站不在您管辖的区域（{area}）内，无权查看其管理信息。",
                  "This station is outside your area ({area}): you cannot see its records."),
    "unknown": ("没有编号为 {code} 的驿站。", "There is no station {code}."),
    "bad_code": ("驿站编号只能含字母、数字、-、_、.，至多 64 个字符。",
                 "A station code has letters, digits, - _ . only, at most 64 characters."),
    "bad_before": ("before 须为正整数（修改记录的编号）。",
                   "before must be a positive whole number (a history entry's id)."),
    "bad_filter": ("筛选条件有误：{problem}", "A filter is wrong: {problem}"),
    "busy": ("正在生成的表格已达本服务同时生成的上限，请 {s} 秒后再试。",
             "The service is building as many spreadsheets as it builds at once: try again "
             "in {s} seconds."),
}


def _msg(lang: str, key: str, **values: Any) -> str:
    return _MESSAGES[key][0 if lang == "zh" else 1].format(**values)


def _signed_in(request: Request, settings: Settings
               ) -> tuple[accounts.Session | Response, list[dict[str, Any]]]:
    """The person (any role) and the areas they may pick; or the refusal (the sign-in
    page). On a sync pooled connection, in a worker thread, given back at once."""
    with request.app.state.sync_pool.connection() as conn:
        session = web.role_session(request, conn, settings, None, *ROLES)
        if not isinstance(session, accounts.Session):
            return session, []
        return session, web.areas_within(conn, session.principal.area_code)


def _today(settings: Settings, now: dt.datetime) -> dt.date:
    return now.astimezone(ZoneInfo(settings.default_timezone)).date()


def _filters(request: Request, areas: list[dict[str, Any]]) -> Filters:
    return parse_filters(request.query_params, {a["code"] for a in areas})


def _list(request: Request, settings: Settings, session: accounts.Session,
          areas: list[dict[str, Any]], f: Filters, listing: dict[str, Any] | None,
          status: int = 200, error: str | None = None) -> HTMLResponse:
    now = dt.datetime.now(dt.UTC)
    return web.html(stations_page(
        web.lang(request), session.csrf, who=session.display_name,
        role=session.principal.role, f=f, areas=areas, listing=listing,
        today=_today(settings, now), tz=ZoneInfo(settings.default_timezone), error=error),
        status)


@router.get("/stations", response_class=HTMLResponse)
async def stations_list(request: Request, settings: SettingsDep) -> Response:
    """The stations of the person's area, searched, filtered, sorted and paged by the
    query; a bad filter is a 422 page naming it, with the form to correct it."""
    session, areas = await run_in_threadpool(_signed_in, request, settings)
    if not isinstance(session, accounts.Session):
        return session
    lang = web.lang(request)
    try:
        f = _filters(request, areas)
    except GeoServiceError as exc:
        return _list(request, settings, session, areas, Filters(), None, exc.status,
                     _msg(lang, "bad_filter", problem=web.problem(exc)))
    async with request.app.state.pool.connection() as conn:
        listing = await list_page(conn, f, scope=session.principal.area_code,
                                  today=_today(settings, dt.datetime.now(dt.UTC)))
    return _list(request, settings, session, areas, f, listing)


@router.get("/stations.xlsx")
async def stations_export(request: Request, settings: SettingsDep) -> Response:
    """The union template (.xlsx) of every station the list's filters select."""
    session, areas = await run_in_threadpool(_signed_in, request, settings)
    if not isinstance(session, accounts.Session):
        return session
    lang = web.lang(request)
    try:
        f = _filters(request, areas)
    except GeoServiceError as exc:
        return _list(request, settings, session, areas, Filters(), None, exc.status,
                     _msg(lang, "bad_filter", problem=web.problem(exc)))
    now = dt.datetime.now(dt.UTC)
    async with request.app.state.pool.connection() as conn:
        rows = await export_rows(conn, f, scope=session.principal.area_code,
                                 today=_today(settings, now))

    async def batches() -> Any:
        for i in range(0, len(rows), 2000):
            yield rows[i:i + 2000]

    spec = PLATFORMS[PlatformName.UNION]
    shown = {"account": session.principal.name,
             "scope": session.principal.area_code or "everywhere",
             **{k: v for k, v in f.query().items() if k not in ("page", "per")}}
    try:
        with xlsx_slots_of(request.app.state, settings).take():
            out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115
            with out:
                await write_xlsx(batches(), spec, out, area=None, bbox=None,
                                 generated_at=now, filters=shown,
                                 selection="the console list's filters, every status")
                out.seek(0)
                body = out.read()
    except Busy:
        response = _list(request, settings, session, areas, f, None, 429,
                         _msg(lang, "busy", s=Busy.retry_after))
        response.headers["Retry-After"] = str(Busy.retry_after)
        return response
    name = export_filename(spec, "xlsx", _today(settings, now))
    return Response(body, media_type=XLSX_MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/stations/{code}", response_class=HTMLResponse)
async def station(request: Request, settings: SettingsDep, code: str) -> Response:
    """A station's page; another area's station is a 403 page, an unknown code a 404."""
    session, areas = await run_in_threadpool(_signed_in, request, settings)
    if not isinstance(session, accounts.Session):
        return session
    lang = web.lang(request)
    if not re.fullmatch(CODE_PATTERN, code):
        return web.refused(request, 422, _msg(lang, "bad_code"))
    raw = request.query_params.get("before", "")
    if raw and not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 2**62):
        return web.refused(request, 422, _msg(lang, "bad_before"))
    before = int(raw) if raw else None
    p = session.principal
    try:
        async with request.app.state.pool.connection() as conn:
            view = await station_view(conn, settings, p, code, now=dt.datetime.now(dt.UTC),
                                      history_before=before)
    except NotFound:
        return web.refused(request, 404, _msg(lang, "unknown", code=code))
    except Forbidden:
        own = next((f'{a["name_en"] if lang == "en" and a["name_en"] else a["name"]} '
                    f'({a["code"]})' for a in areas if a["code"] == p.area_code), p.area_code)
        return web.refused(request, 403, _msg(lang, "forbidden", area=own))
    base = settings.public_base_url
    return web.html(station_page(
        lang, session.csrf, who=session.display_name, role=p.role, view=view,
        tz=ZoneInfo(settings.default_timezone), public=bool(base) and not is_local(base or ""),
        before=before))
