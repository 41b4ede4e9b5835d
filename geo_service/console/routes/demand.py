"""The console's demand page (editors and admins, within their area): the template, a
demand sheet checked or imported, a population raster, and what an area holds.

A sheet goes through the API's import (:func:`geo_service.coverage.demand.import_demand`)
with the person's area as its scope, so a row outside it is refused as the API refuses
it; a raster through :func:`geo_service.coverage.raster.import_raster`, for an area the
person may pick (their area or one within it). Uploads are capped at
``GEO_MAX_IMPORT_BYTES`` like the API's, read no further.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from geo_service.console import http as web
from geo_service.console.demand_pages import demand_page, dt_, report_html
from geo_service.coverage import raster
from geo_service.coverage.demand import import_demand
from geo_service.coverage.demand_stock import area_stock
from geo_service.domain import accounts
from geo_service.domain.coords import Crs
from geo_service.domain.errors import GeoServiceError, PayloadTooLarge, invalid
from geo_service.domain.params import AREA_PATTERN
from geo_service.imports.readers import guess_format
from geo_service.imports.run import Mode, limits_of
from geo_service.infra.settings import Settings
from geo_service.web.deps import ConnDep, SettingsDep, SyncConnDep

router = APIRouter(prefix="/console", include_in_schema=False)
Upload = Annotated[UploadFile, File()]


def _session(request: Request, conn: Any, settings: Settings,
             csrf_token: str | None) -> accounts.Session | Response:
    return web.role_session(request, conn, settings, csrf_token, "admin", "editor")


def _chosen(areas: list[dict[str, Any]], asked: str, scope: str | None) -> str | None:
    """The area asked for if the person may see it; else their own; else the first city."""
    codes = [a["code"] for a in areas]
    if asked in codes:
        return asked
    if scope in codes:
        return scope
    return next((a["code"] for a in areas if a["level"] == "city"), codes[0] if codes else None)


def _page(request: Request, conn: Any, session: accounts.Session, asked: str = "",
          status: int = 200, *, result: str = "", error: str | None = None) -> HTMLResponse:
    scope = session.principal.area_code
    areas = web.areas_within(conn, scope)
    chosen = _chosen(areas, asked, scope)
    stock = area_stock(conn, chosen) if chosen else None
    return web.html(demand_page(
        web.lang(request), session.csrf, who=session.display_name,
        admin=session.principal.role == "admin", areas=areas, chosen=chosen, stock=stock,
        result=result, error=error), status)


@router.get("/demand", response_class=HTMLResponse)
def demand_form(request: Request, conn: SyncConnDep, settings: SettingsDep,
                area: str = "") -> Response:
    session = _session(request, conn, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    return _page(request, conn, session, area if re.fullmatch(AREA_PATTERN, area) else "")


async def _read(file: UploadFile, settings: Settings) -> bytes:
    data = await file.read(settings.max_import_bytes + 1)
    if len(data) > settings.max_import_bytes:
        raise PayloadTooLarge(f"file larger than {settings.max_import_bytes} bytes",
                              [("file", "too large")])
    if not data:
        raise invalid("file", "the file is empty")
    return data


@router.post("/demand/sheet")
async def demand_sheet(request: Request, conn: ConnDep, sync_conn: SyncConnDep,
                       settings: SettingsDep, file: Upload, action: web.FormText = "check",
                       crs: web.FormText = "wgs84", csrf_token: web.FormText = "") -> Response:
    """Check (dry run) or import a demand sheet; the page again with the report."""
    session = await run_in_threadpool(_session, request, sync_conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    lang = web.lang(request)
    try:
        if crs not in {c.value for c in Crs}:
            raise invalid("crs", "must be wgs84, gcj02 or bd09")
        data = await _read(file, settings)
        report = await import_demand(
            conn, data, guess_format(file.filename or "", data), mode=Mode.ALL_OR_NOTHING,
            dry_run=action != "import", max_rows=settings.max_import_rows, crs=Crs(crs),
            limits=limits_of(settings), scope=session.principal.area_code)
    except GeoServiceError as exc:
        return await run_in_threadpool(_page, request, sync_conn, session, "", exc.status,
                                       error=web.problem(exc))
    status = 422 if report["errors"] else 200
    return await run_in_threadpool(_page, request, sync_conn, session, "", status,
                                   result=report_html(lang, report))


@router.post("/demand/raster")
async def demand_raster(request: Request, sync_conn: SyncConnDep, settings: SettingsDep,
                        file: Upload, area: web.FormText = "", worker_type: web.FormText = "",
                        share: web.FormText = "", csrf_token: web.FormText = "") -> Response:
    """Estimate an area's demand from an uploaded population GeoTIFF."""
    session = await run_in_threadpool(_session, request, sync_conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    lang = web.lang(request)

    def run(data: bytes) -> str:
        if not re.fullmatch(AREA_PATTERN, area):
            raise invalid("area", "not an area code")
        try:
            fraction = float(share)
        except ValueError:
            raise invalid("share", "must be a number between 0 and 1") from None
        report = raster.import_raster(sync_conn, data, file.filename or "upload.tif",
                                      raster.Options(area=area, worker_type=worker_type,
                                                     share=fraction),
                                      scope=session.principal.area_code)
        return raster.describe(report)

    try:
        text = await run_in_threadpool(run, await _read(file, settings))
    except GeoServiceError as exc:
        return await run_in_threadpool(_page, request, sync_conn, session, area, exc.status,
                                       error=web.problem(exc))
    result = f'<p class="msg" role="status">{dt_(lang, "raster_done", text=text)}</p>'
    return await run_in_threadpool(_page, request, sync_conn, session, area, result=result)
