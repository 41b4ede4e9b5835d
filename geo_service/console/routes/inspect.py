"""Recording an inspection from a phone: ``/console/stations/{code}/inspect`` (issue 27).

Inspectors, editors and admins whose area holds the station. The form posts the whole
inspection as **one multipart request, photos included**, rather than uploading each
photo first (``POST /v1/photos``) and the inspection after. Why: on a weak signal the
phone queues what it could not send and replays it later; one request is one thing to
keep (the form's fields and the photos as Blobs in IndexedDB) and one thing to replay,
and its idempotency key covers the photos too, so there is no half-sent inspection
whose photos arrived and whose record did not. Photos are content-addressed, so
sending one twice stores it once; the key makes the inspection itself once
(:func:`geo_service.operations.inspections.record_inspection`).

The fields are checked by the inspections API's own schema
(:class:`~geo_service.operations.inspection_schemas.InspectionCreate`) before any photo
is decoded, and the photos by the photo service's pipeline (GPS and device data
stripped, size and pixel limits, bombs refused); the record is written by the API's
service with the person's principal: the same area rule, the same audit trail.

A plain form submission (no script) answers with a redirect to a fresh form saying it
was recorded, or the form again with the problems listed in Chinese. The page's script
asks for JSON (``Accept: application/json``): ``{"ok", "id", "repeat", "message"}``
or ``{"error", "fields": [{"field", "label", "problem"}]}`` with the same status.
"""

from __future__ import annotations

import uuid
from functools import cache
from pathlib import Path as FilePath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from geo_service.console import http as web
from geo_service.console.inspect_pages import MAX_PHOTOS, field_label, inspect_page, it
from geo_service.console.inspect_pages import validation_fields as chinese_fields
from geo_service.domain import accounts
from geo_service.domain.catalogue import TEN_ONES
from geo_service.domain.errors import GeoServiceError, invalid
from geo_service.infra.settings import Settings
from geo_service.operations import inspections as svc
from geo_service.operations.inspection_schemas import InspectionCreate, china_today
from geo_service.photos import service as photos
from geo_service.web.deps import CodePath, SettingsDep
from geo_service.web.security_headers import STRICT_CSP

router = APIRouter(prefix="/console", include_in_schema=False)
ROLES = ("admin", "editor", "inspector")
SCRIPT = FilePath(__file__).parents[1] / "static" / "inspect.js"
#: The page's policy: the console's strict one plus its own script file and its POSTs.
CSP = STRICT_CSP + "; script-src 'self'; connect-src 'self'"
#: Form fields besides the photos: ten items, extras, a handful of text fields.
MAX_FIELDS = 80


def _session(request: Request, settings: Settings,
             csrf_token: str | None) -> accounts.Session | Response:
    with request.app.state.sync_pool.connection() as conn:
        return web.role_session(request, conn, settings, csrf_token, *ROLES)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _body(form: FormData) -> dict[str, Any]:
    """The form as the inspections API's body: empty optional fields left out (so the
    API's defaults apply), the ten items from their radio groups (an unanswered one is
    missing, which the schema names)."""
    body: dict[str, Any] = {"inspected_on": str(form.get("inspected_on") or ""),
                            "extras": [str(v) for v in form.getlist("extras")]}
    body["items"] = {a.code: str(form[f"item_{a.code}"]) for a in TEN_ONES
                     if form.get(f"item_{a.code}")}
    for name in ("hours_observed", "remarks", "score"):
        value = str(form.get(name) or "").strip()
        if value:
            body[name] = value
    return body


def _files(form: FormData) -> list[UploadFile]:
    """The photos chosen (a file input left empty sends one nameless empty part)."""
    return [f for f in form.getlist("photos")
            if isinstance(f, UploadFile) and (f.filename or f.size)]


def _key(form: FormData) -> uuid.UUID | None:
    raw = str(form.get("idempotency_key") or "").strip()
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise invalid("idempotency_key", "must be a UUID") from None


async def _page(request: Request, settings: Settings, session: accounts.Session,
                station: dict[str, Any], *, status: int = 200,
                values: dict[str, Any] | None = None,
                fields: list[tuple[str, str]] | None = None, message: str | None = None,
                error: str | None = None) -> HTMLResponse:
    return web.html(inspect_page(
        web.lang(request), session.csrf, who=session.display_name,
        role=session.principal.role, station=station, key=str(uuid.uuid4()),
        today=china_today(), max_mb=settings.photo_max_bytes / 1_000_000,
        max_mp=settings.photo_max_pixels / 1_000_000, values=values, fields=fields or [],
        message=message, error=error), status, CSP)


def _refused(request: Request, lang: str, exc: GeoServiceError) -> Response:
    """A refusal before there is a station to show the form for (unknown, elsewhere)."""
    if _wants_json(request):
        return _json_error(lang, exc.status, web.problem(exc), list(exc.fields))
    return web.refused(request, exc.status, web.problem(exc))


def _json_error(lang: str, status: int, message: str,
                fields: list[tuple[str, str]]) -> JSONResponse:
    return JSONResponse({"error": message, "fields": [
        {"field": f, "label": field_label(lang, f), "problem": p} for f, p in fields]},
        status, headers={"Cache-Control": "no-store"})


@router.get("/stations/{code}/inspect", response_class=HTMLResponse)
async def inspect_form(request: Request, settings: SettingsDep, code: CodePath) -> Response:
    session = await run_in_threadpool(_session, request, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    lang = web.lang(request)
    try:
        async with request.app.state.pool.connection() as conn:
            station = await photos.scoped_station(conn, session.principal, code)
    except GeoServiceError as exc:
        return _refused(request, lang, exc)
    done = request.query_params.get("done")
    message = it(lang, done) if done in ("recorded", "repeat") else None
    return await _page(request, settings, session, station, message=message)


async def _store_photos(request: Request, settings: Settings,
                        files: list[UploadFile]) -> list[str]:
    """Each photo through the photo pipeline (stripped, limited), in order; its hashes.
    A refusal names the photo by its place and file name."""
    shas = []
    for n, upload in enumerate(files, 1):
        data = await upload.read(settings.photo_max_bytes + 1)
        try:
            if len(data) > settings.photo_max_bytes:
                raise photos.too_large(settings.photo_max_bytes, "photos")
            async with request.app.state.pool.connection() as conn:
                stored = await photos.store_upload(conn, request.app.state.photos, data,
                                                   public=True, field="photos")
        except GeoServiceError as exc:
            name = (upload.filename or "")[:80]
            problem = exc.fields[0][1] if exc.fields else exc.message
            raise type(exc)(exc.message,
                            [("photos", f"第 {n} 张（{name}）：{problem}")]) from exc
        shas.append(stored["sha"])
    return shas


@router.post("/stations/{code}/inspect")
async def record(request: Request, settings: SettingsDep, code: CodePath) -> Response:
    """Check the person, the token and the area; the fields; the photos; then record."""
    lang = web.lang(request)
    form = await request.form(max_files=MAX_PHOTOS + 1, max_fields=MAX_FIELDS)
    session = await run_in_threadpool(_session, request, settings,
                                      str(form.get("csrf_token") or ""))
    if not isinstance(session, accounts.Session):
        if _wants_json(request):
            return _json_error(lang, session.status_code, "refused: sign in again, or the "
                               "page's csrf_token is out of date", [])
        return session
    values: dict[str, Any] = {k: v for k, v in form.multi_items()
                              if isinstance(v, str) and k != "extras"}
    values["extras"] = [str(v) for v in form.getlist("extras")]
    try:
        key = _key(form)
        async with request.app.state.pool.connection() as conn:
            station = await photos.scoped_station(conn, session.principal, code)
            earlier = await svc.answer_for_key(conn, key) if key else None
        if earlier is not None and earlier["station_code"] != station["code"]:
            raise invalid("idempotency_key", "already used for an inspection of station "
                                             f"{earlier['station_code']}")
    except GeoServiceError as exc:
        return _refused(request, lang, exc)
    try:
        if earlier is None:
            body = InspectionCreate.model_validate(_body(form)).model_dump()
            files = _files(form)
            if len(files) > MAX_PHOTOS:
                raise invalid("photos", f"最多 {MAX_PHOTOS} 张 / at most {MAX_PHOTOS} photos")
            body["photos"] = await _store_photos(request, settings, files)
            async with request.app.state.pool.connection() as conn:
                earlier = await svc.record_inspection(conn, session.principal, code, body, key)
    except ValidationError as exc:
        return await _refuse_form(request, settings, session, station, values, 422,
                                  chinese_fields(lang, exc))
    except GeoServiceError as exc:
        return await _refuse_form(request, settings, session, station, values, exc.status,
                                  list(exc.fields) or [("body", exc.message)])
    done = "repeat" if earlier["repeat"] else "recorded"
    if _wants_json(request):
        return JSONResponse({"ok": True, "id": earlier["id"], "repeat": earlier["repeat"],
                             "message": it(lang, done)},
                            200 if earlier["repeat"] else 201,
                            headers={"Cache-Control": "no-store"})
    lang_q = "&lang=en" if lang == "en" else ""
    return RedirectResponse(f"/console/stations/{code}/inspect?done={done}{lang_q}", 303)


async def _refuse_form(request: Request, settings: Settings, session: accounts.Session,
                       station: dict[str, Any], values: dict[str, Any], status: int,
                       fields: list[tuple[str, str]]) -> Response:
    lang = web.lang(request)
    if _wants_json(request):
        return _json_error(lang, status, it(lang, "errors"), fields)
    return await _page(request, settings, session, station, status=status, values=values,
                       fields=fields)


@cache
def _script() -> bytes:
    return SCRIPT.read_bytes()


@router.get("/assets/inspect.js")
def script() -> Response:
    """The form's offline queue, a file so the page's policy needs no inline script."""
    return Response(_script(), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})

