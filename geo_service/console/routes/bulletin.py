"""The console's monthly bulletin page (admins and editors, within their area).

``GET /console/bulletin?area=&month=`` shows the form and, once both are chosen, the
figures; ``POST /console/bulletin`` (the session's CSRF token, ``format`` pdf or xlsx)
answers with the file as a download. The session and the areas are read on the sync
pool in a worker thread (as the other console routes are); the figures on the async
pool, given back before drawing; the drawing is the API's
(:func:`geo_service.bulletin.printing.draw_async`, with its draw slots).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from geo_service.bulletin import printing, service
from geo_service.bulletin.model import MONTH_PATTERN, Bulletin, Month
from geo_service.bulletin.printing import MEDIA_TYPES, Format
from geo_service.console import http as web
from geo_service.console.bulletin_pages import bt, bulletin_page
from geo_service.console.http import FormText
from geo_service.domain import accounts
from geo_service.domain.errors import Busy, Forbidden, GeoServiceError, NotFound
from geo_service.infra.settings import Settings
from geo_service.posters.printing import slots_of
from geo_service.web.deps import SettingsDep

router = APIRouter(prefix="/console", include_in_schema=False)
ROLES = ("admin", "editor")


def _signed_in(request: Request, settings: Settings, csrf_token: str | None
               ) -> tuple[accounts.Session | Response, list[dict[str, Any]]]:
    """The admin's or editor's session (a POST's CSRF token checked) and the areas they
    may pick, or the refusal; on a sync pooled connection given back at once."""
    with request.app.state.sync_pool.connection() as conn:
        session = web.role_session(request, conn, settings, csrf_token, *ROLES)
        if not isinstance(session, accounts.Session):
            return session, []
        return session, web.areas_within(conn, session.principal.area_code)


def _last_month(settings: Settings) -> str:
    """The month before this one, the bulletin people usually ask for."""
    today = dt.datetime.now(ZoneInfo(settings.default_timezone)).date()
    return (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")


async def _read(request: Request, settings: Settings, session: accounts.Session,
                areas: list[dict[str, Any]], area: str, month: str
                ) -> tuple[Bulletin | None, str | None, int]:
    """The bulletin asked for, or the reason (in the person's language) and status."""
    lang = web.lang(request)
    if not re.fullmatch(MONTH_PATTERN, month):
        return None, bt(lang, "bad_month"), 422
    if area not in {a["code"] for a in areas}:
        return None, bt(lang, "bad_area"), 422
    try:
        when = Month.parse(month, settings.default_timezone)
        async with request.app.state.pool.connection() as conn:
            return await service.read(conn, area, when, session.principal), None, 200
    except NotFound:
        return None, bt(lang, "unknown_area", code=area), 404
    except Forbidden:
        return None, bt(lang, "bad_area"), 403
    except GeoServiceError as exc:
        return None, web.problem(exc), exc.status


def _page(request: Request, session: accounts.Session, areas: list[dict[str, Any]],
          area: str, month: str, bulletin: Bulletin | None, error: str | None,
          status: int) -> HTMLResponse:
    return web.html(bulletin_page(
        web.lang(request), session.csrf, who=session.display_name,
        admin=session.principal.role == "admin", areas=areas, area=area, month=month,
        bulletin=bulletin, error=error), status)


@router.get("/bulletin", response_class=HTMLResponse)
async def bulletin_form(request: Request, settings: SettingsDep) -> Response:
    session, areas = await run_in_threadpool(_signed_in, request, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    area = request.query_params.get("area", "").strip()
    month = request.query_params.get("month", "").strip()
    if not area and not month:
        own = session.principal.area_code or (areas[0]["code"] if areas else "")
        return _page(request, session, areas, own, _last_month(settings), None, None, 200)
    bulletin, error, status = await _read(request, settings, session, areas, area, month)
    return _page(request, session, areas, area, month, bulletin, error, status)


@router.post("/bulletin")
async def bulletin_download(request: Request, settings: SettingsDep, area: FormText = "",
                            month: FormText = "", format: FormText = "pdf",
                            csrf_token: FormText = "") -> Response:
    """The PDF or the workbook as a download; or the page again naming what stood in
    the way."""
    session, areas = await run_in_threadpool(_signed_in, request, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    area, month = area.strip(), month.strip()
    fmt = Format.XLSX if format == "xlsx" else Format.PDF
    bulletin, error, status = await _read(request, settings, session, areas, area, month)
    if bulletin is None:
        return _page(request, session, areas, area, month, None, error, status)
    try:
        body = await printing.draw_async(bulletin, fmt, settings=settings,
                                         slots=slots_of(request.app.state, settings))
    except Busy:
        response = _page(request, session, areas, area, month, bulletin,
                         bt(web.lang(request), "busy", s=Busy.retry_after), 429)
        response.headers["Retry-After"] = str(Busy.retry_after)
        return response
    name = printing.filename(area, bulletin.month.label, fmt)
    return Response(body, media_type=MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
