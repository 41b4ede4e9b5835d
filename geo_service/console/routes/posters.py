"""The console's posters page (any role, within its area): the form, and the PDF it asks for.

The PDF comes from a POST carrying the session's CSRF token, not from a GET. Printing
changes nothing, but drawing a district takes seconds of CPU and one of the process's
few draw slots (``GEO_POSTER_CONCURRENCY``, shared with the API): with a GET, any other
site could spend them through a signed-in person's browser, since the ``Lax`` session
cookie rides on top-level links. The token keeps printing to the console's own form.

The session and the areas are read on the sync pool in a worker thread (as the other
console routes are); the station rows on the async pool, given back before drawing;
the drawing is :func:`geo_service.posters.printing.draw_pdf`, the API's, with its slots,
its page cap and its public-address rule.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from geo_service.console import http as web
from geo_service.console.http import FormText
from geo_service.console.posters_pages import posters_page, pt
from geo_service.domain import accounts
from geo_service.domain.errors import (
    Busy,
    Forbidden,
    GeoServiceError,
    NotFound,
    PayloadTooLarge,
    StateConflict,
)
from geo_service.domain.params import AREA_PATTERN, CODE_PATTERN
from geo_service.infra.settings import Settings
from geo_service.posters import printing, service
from geo_service.posters import queries as q
from geo_service.posters.model import PageSize
from geo_service.web.deps import SettingsDep, SyncConnDep
from geo_service.web.security_headers import public_base

router = APIRouter(prefix="/console", include_in_schema=False)


def _public(settings: Settings) -> bool:
    """Whether real posters can print: a public address is configured for the QR codes."""
    base = settings.public_base_url
    return bool(base) and not service.is_local(base or "")


def _areas(conn: Any, scope: str | None) -> list[dict[str, Any]]:
    """The areas the person may print (``scope`` and below), each with ``stations``:
    how many pages its PDF would have, so the list shows what is empty or over the cap
    before anyone asks."""
    areas = web.areas_within(conn, scope)
    counts = dict(conn.execute(q.AREA_COUNTS, {"codes": [a["code"] for a in areas]})
                  .fetchall())
    return [{**a, "stations": counts.get(a["code"], 0)} for a in areas]


def _page(request: Request, settings: Settings, session: accounts.Session,
          areas: list[dict[str, Any]], status: int = 200, *,
          chosen: dict[str, str] | None = None, error: str | None = None) -> HTMLResponse:
    return web.html(posters_page(
        web.lang(request), session.csrf, who=session.display_name,
        admin=session.principal.role == "admin", areas=areas, public=_public(settings),
        max_pages=settings.poster_max_pages, chosen=chosen, error=error), status)


@router.get("/posters", response_class=HTMLResponse)
def posters_form(request: Request, conn: SyncConnDep, settings: SettingsDep) -> Response:
    session = web.current_session(request, conn, settings)
    if session is None:
        return web.signed_out(request, settings)
    return _page(request, settings, session, _areas(conn, session.principal.area_code))


def _signed_in(request: Request, settings: Settings, csrf_token: str
               ) -> tuple[accounts.Session | Response, list[dict[str, Any]]]:
    """The session of a print request (its CSRF token checked) and its areas, or the
    refusal; in a worker thread, on a sync pooled connection given back at once."""
    with request.app.state.sync_pool.connection() as conn:
        session = web.current_session(request, conn, settings)
        if session is None:
            return web.signed_out(request, settings), []
        refusal = web.forged(request, settings, session.csrf, csrf_token)
        if refusal is not None:
            return refusal, []
        return session, _areas(conn, session.principal.area_code)


def _why(lang: str, exc: GeoServiceError, settings: Settings, code: str, what: str,
         own_area: str) -> str:
    """What stood in the way of a print, in the person's language."""
    if isinstance(exc, Busy):
        return pt(lang, "busy", n=settings.poster_concurrency, s=Busy.retry_after)
    if isinstance(exc, PayloadTooLarge):
        return pt(lang, "too_many", n=settings.poster_max_pages)
    if isinstance(exc, Forbidden):
        return pt(lang, "outside", area=own_area)
    if isinstance(exc, NotFound):
        return pt(lang, f"unknown_{what}", code=code)
    if isinstance(exc, StateConflict):
        no_address = any(field == "allow_local" for field, _ in exc.fields)
        return pt(lang, "must_test" if no_address else "nothing")
    return web.problem(exc)


@router.post("/posters")
async def posters_print(request: Request, settings: SettingsDep, what: FormText = "area",
                        area: FormText = "", station: FormText = "", size: FormText = "A4",
                        test_print: FormText = "", csrf_token: FormText = "") -> Response:
    """The PDF of an area's stations or of one station, as a download; or the page
    again, with the status and the reason, when it cannot print."""
    session, areas = await run_in_threadpool(_signed_in, request, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    lang = web.lang(request)
    what = "station" if what == "station" else "area"
    code = (station if what == "station" else area).strip()
    chosen = {"area": area, "station": station, "size": size, "test_print": test_print}

    def again(status: int, error: str) -> HTMLResponse:
        return _page(request, settings, session, areas, status, chosen=chosen, error=error)

    if size not in {s.value for s in PageSize}:
        return again(422, pt(lang, "bad_size"))
    if not re.fullmatch(CODE_PATTERN if what == "station" else AREA_PATTERN, code):
        return again(422, pt(lang, "bad_code" if what == "station" else "bad_area"))
    allow_local = test_print == "1"
    principal = session.principal
    try:
        async with request.app.state.pool.connection() as conn:
            rows = (await service.station_rows(conn, code, principal) if what == "station"
                    else await service.area_rows(conn, code, principal,
                                                 settings.poster_max_pages))
        fallback = (public_base(request) if allow_local and not settings.public_base_url
                    else None)
        pdf = await printing.draw_pdf(rows, settings=settings,
                                      slots=printing.slots_of(request.app.state, settings),
                                      size=PageSize(size), allow_local=allow_local,
                                      fallback=fallback)
    except GeoServiceError as exc:
        own = next((f'{a["name_en"] if lang == "en" and a["name_en"] else a["name"]} '
                    f'({a["code"]})' for a in areas
                    if a["code"] == principal.area_code), principal.area_code or "")
        response = again(exc.status, _why(lang, exc, settings, code, what, own))
        if isinstance(exc, Busy):
            response.headers["Retry-After"] = str(Busy.retry_after)
        return response
    name = printing.filename(what, code, PageSize(size))
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
