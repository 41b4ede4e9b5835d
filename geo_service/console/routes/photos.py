"""The console's photo pages: a station's photos (any role sees them; editors and admins
add, set the exterior one, remove), and worker-report photos to approve (editors, admins).

The session is read on the sync pool in a worker thread, as the other console routes
do; the photo work (decoding, the store, the database) is the API's service
(:mod:`geo_service.photos.service`), on the async pool, with the person's principal:
the same area rule, the same limits, the same audit trail. A change answers with a
redirect to the page (POST, then GET), naming what was done.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Path, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from geo_service.console import http as web
from geo_service.console.http import FormText, RowId
from geo_service.console.photos_pages import (
    ft,
    pending_page,
    photos_home,
    station_photos_page,
    station_photos_path,
)
from geo_service.domain import accounts
from geo_service.domain.errors import GeoServiceError, NotFound
from geo_service.domain.params import CODE_PATTERN
from geo_service.infra.settings import Settings
from geo_service.photos import service as svc
from geo_service.web.deps import SettingsDep

router = APIRouter(prefix="/console", include_in_schema=False)

EDITORS = ("admin", "editor")
CodePath = Annotated[str, Path(pattern=CODE_PATTERN)]
ShaPath = Annotated[str, Path(pattern=svc.SHA_PATTERN)]
#: What a redirect after a change says (``?done=``), by the page's own words.
DONE = ("uploaded", "already", "exterior_set", "deleted", "approved", "rejected")


def _session(request: Request, settings: Settings, csrf_token: str | None,
             roles: tuple[str, ...]) -> accounts.Session | Response:
    """The signed-in person (a POST's CSRF token checked), or the refusal; in a thread."""
    with request.app.state.sync_pool.connection() as conn:
        return web.role_session(request, conn, settings, csrf_token, *roles)


async def _signed_in(request: Request, settings: Settings, csrf_token: str | None = None,
                     roles: tuple[str, ...] = ("admin", "editor", "inspector"),
                     ) -> accounts.Session | Response:
    return await run_in_threadpool(_session, request, settings, csrf_token, roles)


def _work(request: Request) -> svc.PhotoWork:
    work: svc.PhotoWork = request.app.state.photos
    return work


def _done(request: Request) -> str | None:
    done = request.query_params.get("done")
    return ft(web.lang(request), done) if done in DONE else None


def _back(request: Request, path: str, done: str) -> RedirectResponse:
    lang = "&lang=en" if web.lang(request) == "en" else ""
    return RedirectResponse(f"{path}?done={done}{lang}", 303)


async def _station_page(request: Request, settings: Settings, session: accounts.Session,
                        code: str, status: int = 200, error: str | None = None) -> Response:
    principal = session.principal
    try:
        async with request.app.state.pool.connection() as conn:
            station = await svc.scoped_station(conn, principal, code)
            photos = (await svc.list_station_photos(conn, code))["photos"]
    except GeoServiceError as exc:
        return web.refused(request, exc.status, web.problem(exc))
    return web.html(station_photos_page(
        web.lang(request), session.csrf, who=session.display_name,
        admin=principal.role == "admin", editor=principal.role in EDITORS, station=station,
        photos=photos, max_mb=settings.photo_max_bytes / 1_000_000,
        max_mp=settings.photo_max_pixels / 1_000_000, tz=ZoneInfo(settings.default_timezone),
        message=_done(request), error=error),
        status)


@router.get("/stations/{code}/photos", response_class=HTMLResponse)
async def station_photos(request: Request, settings: SettingsDep, code: CodePath) -> Response:
    session = await _signed_in(request, settings)
    if not isinstance(session, accounts.Session):
        return session
    return await _station_page(request, settings, session, code)


@router.post("/stations/{code}/photos")
async def upload(request: Request, settings: SettingsDep, code: CodePath,
                 file: Annotated[UploadFile, File()], kind: FormText = "other",
                 csrf_token: FormText = "") -> Response:
    session = await _signed_in(request, settings, csrf_token, EDITORS)
    if not isinstance(session, accounts.Session):
        return session
    try:
        data = await file.read(settings.photo_max_bytes + 1)
        if len(data) > settings.photo_max_bytes:
            raise svc.too_large(settings.photo_max_bytes)
        async with request.app.state.pool.connection() as conn:
            _, added = await svc.add_station_photo(conn, _work(request), session.principal,
                                                   code, data, kind)
    except GeoServiceError as exc:
        return await _station_page(request, settings, session, code, exc.status,
                                   web.problem(exc))
    return _back(request, station_photos_path(code), "uploaded" if added else "already")


@router.post("/stations/{code}/photos/{photo_id}/{action}")
async def change(request: Request, settings: SettingsDep, code: CodePath, photo_id: RowId,
                 action: str, csrf_token: FormText = "") -> Response:
    """``exterior``: make it the first exterior photo; ``delete``: remove it (soft)."""
    if action not in ("exterior", "delete"):
        return web.refused(request, 404, f"no such action {action!r}")
    session = await _signed_in(request, settings, csrf_token, EDITORS)
    if not isinstance(session, accounts.Session):
        return session
    try:
        async with request.app.state.pool.connection() as conn:
            if action == "exterior":
                await svc.set_kind(conn, session.principal, code, photo_id, "exterior")
            else:
                await svc.delete_station_photo(conn, session.principal, code, photo_id)
    except GeoServiceError as exc:
        return await _station_page(request, settings, session, code, exc.status,
                                   web.problem(exc))
    return _back(request, station_photos_path(code),
                 "exterior_set" if action == "exterior" else "deleted")


@router.get("/photos", response_class=HTMLResponse)
async def photos_start(request: Request, settings: SettingsDep, code: str = "") -> Response:
    """A station's photos by its code (a GET form: nothing changes), and the queue."""
    session = await _signed_in(request, settings)
    if not isinstance(session, accounts.Session):
        return session
    code = code.strip()[:200]
    if code and re.fullmatch(CODE_PATTERN, code):
        lang = "?lang=en" if web.lang(request) == "en" else ""
        return RedirectResponse(station_photos_path(code) + lang, 303)
    principal = session.principal
    pending = None
    if principal.role in EDITORS:
        async with request.app.state.pool.connection() as conn:
            pending = (await svc.pending_report_photos(conn, principal))["count"]
    lang = web.lang(request)
    return web.html(photos_home(lang, session.csrf, who=session.display_name,
                                admin=principal.role == "admin",
                                editor=principal.role in EDITORS, pending=pending, code=code,
                                error=ft(lang, "bad_code") if code else None),
                    422 if code else 200)


async def _pending(request: Request, settings: Settings, session: accounts.Session,
                   status: int = 200, error: str | None = None) -> Response:
    async with request.app.state.pool.connection() as conn:
        photos = (await svc.pending_report_photos(conn, session.principal))["photos"]
    return web.html(pending_page(web.lang(request), session.csrf, who=session.display_name,
                                 admin=session.principal.role == "admin", photos=photos,
                                 tz=ZoneInfo(settings.default_timezone),
                                 message=_done(request), error=error), status)


@router.get("/photos/pending", response_class=HTMLResponse)
async def pending(request: Request, settings: SettingsDep) -> Response:
    session = await _signed_in(request, settings, roles=EDITORS)
    if not isinstance(session, accounts.Session):
        return session
    return await _pending(request, settings, session)


@router.post("/photos/pending/{report_id}/{action}")
async def decide(request: Request, settings: SettingsDep, report_id: RowId, action: str,
                 csrf_token: FormText = "") -> Response:
    if action not in ("approve", "reject"):
        return web.refused(request, 404, f"no such action {action!r}")
    session = await _signed_in(request, settings, csrf_token, EDITORS)
    if not isinstance(session, accounts.Session):
        return session
    try:
        async with request.app.state.pool.connection() as conn:
            await svc.decide_report_photo(conn, session.principal, report_id,
                                          action == "approve")
    except GeoServiceError as exc:
        return await _pending(request, settings, session, exc.status, web.problem(exc))
    return _back(request, "/console/photos/pending",
                 "approved" if action == "approve" else "rejected")


@router.get("/photos/{sha}/thumb.jpg")
async def thumb(request: Request, settings: SettingsDep, sha: ShaPath) -> Response:
    """A thumbnail for the signed-in staff: public, or a report photo of their area (the
    pending page shows them)."""
    session = await _signed_in(request, settings)
    if not isinstance(session, accounts.Session):
        return session
    async with request.app.state.pool.connection() as conn:
        row = await svc.photo_row(conn, sha)
        if row is not None and not row["public"] and not await svc.may_see_private(
                conn, sha, session.principal):
            row = None  # a pending report photo of another area: as if there were none
    stored = (await asyncio.to_thread(_work(request).store.get, row["thumb_sha"])
              if row is not None else None)
    if stored is None:
        exc = NotFound(f"no photo {sha}", [("sha", "no such photo")])
        return web.refused(request, 404, web.problem(exc))
    headers: dict[str, Any] = {"Cache-Control": "private, no-store",
                               "X-Content-Type-Options": "nosniff"}
    return Response(stored.data, media_type=stored.content_type, headers=headers)
