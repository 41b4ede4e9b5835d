"""The console's import: upload → preview (every problem at once) → confirm, for editors
and admins within their area (the import's own area check refuses rows outside it).

The upload is previewed by :func:`geo_service.stations.importer.import_bytes` as a dry
run, kept server-side (:mod:`geo_service.console.import_store`) and shown at
``/console/import/{token}`` (a redirect after the POST, so a reload does not upload
again). Confirming re-runs the same bytes with the preview's fingerprint: if any station
it reads changed since, nothing is written and a fresh preview is shown instead. A
second confirmation shows the first one's result. Writes are audited under the person.

Async routes like the reports queue's (the importer runs on the async pool); the session
and its CSRF check run on the sync pool in a worker thread.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Path, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg import AsyncConnection

from geo_service.console import http as web
from geo_service.console import import_store as store
from geo_service.console.http import FormText
from geo_service.console.import_pages import (
    CRS_OPTIONS,
    gone_page,
    it,
    preview_page,
    result_page,
    upload_page,
)
from geo_service.domain import accounts
from geo_service.domain.coords import Crs
from geo_service.domain.errors import GeoServiceError, PayloadTooLarge, invalid
from geo_service.imports.readers import Format, guess_format
from geo_service.imports.run import Mode, limits_of
from geo_service.infra.settings import Settings
from geo_service.stations import error_sheet, importer
from geo_service.stations.template import MEDIA_TYPE
from geo_service.web.deps import ConnDep, SettingsDep, SyncConnDep

router = APIRouter(prefix="/console", include_in_schema=False)
Token = Annotated[str, Path(min_length=20, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
#: Problems a console preview keeps (the page shows the first few hundred; the sheet
#: with the error column gets them all).
KEPT_PROBLEMS = 10_000


async def _session(request: Request, conn: Any, settings: Settings,
                   csrf_token: str | None) -> accounts.Session | Response:
    return await run_in_threadpool(web.role_session, request, conn, settings, csrf_token,
                                   "admin", "editor")


def _crs(value: str) -> Crs:
    if value not in {v for v, _, _ in CRS_OPTIONS}:
        raise invalid("crs", "must be one of " + ", ".join(v for v, _, _ in CRS_OPTIONS))
    return Crs(value)


async def _run(conn: AsyncConnection[Any], settings: Settings, session: accounts.Session,
               data: bytes, fmt: Format, crs: Crs, *, dry_run: bool,
               expect: str | None = None) -> dict[str, Any]:
    limits = dataclasses.replace(limits_of(settings), errors_reported=KEPT_PROBLEMS)
    return await importer.import_bytes(
        conn, data, fmt, mode=Mode.ALL_OR_NOTHING, dry_run=dry_run,
        principal=session.principal, max_rows=settings.max_import_rows, crs=crs,
        duplicate_within_m=settings.duplicate_distance_m, limits=limits, expect=expect)


def _admin(session: accounts.Session) -> bool:
    return session.principal.role == "admin"


def _upload_page(request: Request, session: accounts.Session, status: int = 200,
                 error: str | None = None) -> HTMLResponse:
    return web.html(upload_page(web.lang(request), session.csrf, who=session.display_name,
                                admin=_admin(session), error=error), status)


def _to_preview(request: Request, token: str) -> RedirectResponse:
    lang = "?lang=en" if web.lang(request) == "en" else ""
    return RedirectResponse(f"/console/import/{token}{lang}", 303)


@router.get("/import", response_class=HTMLResponse)
async def import_form(request: Request, sync_conn: SyncConnDep,
                      settings: SettingsDep) -> Response:
    """The upload form, the template link and how the import reads a ledger."""
    session = await _session(request, sync_conn, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    return _upload_page(request, session)


@router.post("/import")
async def import_upload(
        request: Request, conn: ConnDep, sync_conn: SyncConnDep, settings: SettingsDep,
        file: Annotated[UploadFile, File()], crs: FormText = "wgs84",
        csrf_token: FormText = "") -> Response:
    """Preview an uploaded sheet (a dry run), keep it, and show its preview page."""
    session = await _session(request, sync_conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    try:
        chosen = _crs(crs)
        data = await file.read(settings.max_import_bytes + 1)
        if len(data) > settings.max_import_bytes:
            raise PayloadTooLarge(f"file larger than {settings.max_import_bytes} bytes",
                                  [("file", "too large")])
        if not data:
            raise invalid("file", "empty file")
        fmt = guess_format(file.filename or "", data)
        if fmt is Format.GEOJSON:
            raise invalid("file", "the console imports spreadsheets (.xlsx, .csv); "
                                  "GeoJSON goes through the API")
        report = await _run(conn, settings, session, data, fmt, chosen, dry_run=True)
    except GeoServiceError as exc:
        return _upload_page(request, session, exc.status, web.problem(exc))
    assert session.principal.user_id is not None
    token = await store.save(conn, user_id=session.principal.user_id,
                             filename=file.filename or "upload", fmt=fmt.value,
                             crs=chosen.value, data=data, report=report)
    return _to_preview(request, token)


async def _upload(request: Request, conn: AsyncConnection[Any], session: accounts.Session,
                  token: str, *, lock: bool = False) -> dict[str, Any] | HTMLResponse:
    assert session.principal.user_id is not None
    upload = await store.load(conn, token, session.principal.user_id, lock=lock)
    if upload is None or (upload["expired"] and upload["applied_at"] is None):
        return web.html(gone_page(web.lang(request), session.csrf, who=session.display_name,
                                  admin=_admin(session)), 404)
    return upload


def _preview(request: Request, session: accounts.Session, token: str,
             upload: dict[str, Any], status: int = 200,
             message: str | None = None) -> HTMLResponse:
    lang = web.lang(request)
    if upload["applied_at"] is not None:
        return web.html(result_page(lang, session.csrf, who=session.display_name,
                                    admin=_admin(session), result=upload["result"]))
    return web.html(preview_page(lang, session.csrf, who=session.display_name,
                                 admin=_admin(session), token=token, upload=upload,
                                 message=message), status)


@router.get("/import/{token}", response_class=HTMLResponse)
async def import_preview(request: Request, token: Token, conn: ConnDep,
                         sync_conn: SyncConnDep, settings: SettingsDep) -> Response:
    """The preview of a kept upload (or, once confirmed, its result)."""
    session = await _session(request, sync_conn, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    upload = await _upload(request, conn, session, token)
    if isinstance(upload, HTMLResponse):
        return upload
    return _preview(request, session, token, upload)


async def _again(request: Request, conn: AsyncConnection[Any], settings: Settings,
                 session: accounts.Session, token: str, upload: dict[str, Any], crs: Crs,
                 status: int, message: str | None) -> HTMLResponse:
    """A fresh preview of the kept bytes (stations changed, or another coordinate system)."""
    report = await _run(conn, settings, session, bytes(upload["data"]),
                        Format(upload["format"]), crs, dry_run=True)
    await store.replace_report(conn, upload["id"], report, crs.value)
    upload = {**upload, "report": report, "crs": crs.value}
    return _preview(request, session, token, upload, status, message)


@router.post("/import/{token}/recheck")
async def import_recheck(request: Request, token: Token, conn: ConnDep,
                         sync_conn: SyncConnDep, settings: SettingsDep,
                         crs: FormText = "wgs84", csrf_token: FormText = "") -> Response:
    """Preview the same file again read in another coordinate system."""
    session = await _session(request, sync_conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    upload = await _upload(request, conn, session, token, lock=True)
    if isinstance(upload, HTMLResponse):
        return upload
    if upload["applied_at"] is not None:
        return _preview(request, session, token, upload)
    try:
        chosen = _crs(crs)
    except GeoServiceError as exc:
        return _preview(request, session, token, upload, exc.status, web.problem(exc))
    return await _again(request, conn, settings, session, token, upload, chosen, 200, None)


@router.post("/import/{token}/confirm")
async def import_confirm(request: Request, token: Token, conn: ConnDep,
                         sync_conn: SyncConnDep, settings: SettingsDep,
                         csrf_token: FormText = "") -> Response:
    """Apply exactly the previewed changes, or say they no longer hold and preview again."""
    session = await _session(request, sync_conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    upload = await _upload(request, conn, session, token, lock=True)
    if isinstance(upload, HTMLResponse):
        return upload
    if upload["applied_at"] is not None:  # a second click: the first one's result
        return _preview(request, session, token, upload)
    crs = Crs(upload["crs"])
    lang = web.lang(request)
    if upload["fingerprint"] is None or upload["report"]["error_count"]:
        return _preview(request, session, token, upload, 409)
    try:
        result = await _run(conn, settings, session, bytes(upload["data"]),
                            Format(upload["format"]), crs, dry_run=False,
                            expect=upload["fingerprint"])
    except importer.StaleImport:
        return await _again(request, conn, settings, session, token, upload, crs, 409,
                            it(lang, "stale"))
    if not result["written"]:  # problems that were not there at the preview
        return await _again(request, conn, settings, session, token, upload, crs, 409,
                            it(lang, "stale"))
    summary = {k: result[k] for k in ("created", "updated", "unchanged", "import_id")}
    await store.mark_applied(conn, upload["id"], summary)
    return _to_preview(request, token)


@router.get("/import/{token}/errors")
async def import_errors(request: Request, token: Token, conn: ConnDep,
                        sync_conn: SyncConnDep, settings: SettingsDep) -> Response:
    """The uploaded sheet with a 错误说明 column beside each refused row."""
    session = await _session(request, sync_conn, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    upload = await _upload(request, conn, session, token)
    if isinstance(upload, HTMLResponse):
        return upload
    fmt = Format(upload["format"])
    report = upload["report"]
    body = await run_in_threadpool(error_sheet.with_error_column, bytes(upload["data"]), fmt,
                                   report["errors"], report.get("header_row") or 1)
    stem = (upload["filename"].rsplit(".", 1)[0] or "import")[:80]
    ext, media = ("csv", "text/csv; charset=utf-8") if fmt is Format.CSV else ("xlsx", MEDIA_TYPE)
    name = f"{stem}-错误说明.{ext}"
    return Response(body, media_type=media, headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f"attachment; filename=\"errors.{ext}\"; "
                               f"filename*=UTF-8''{quote(name)}"})
