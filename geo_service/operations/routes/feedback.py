"""HTTP for worker feedback: QR check-ins and their counts, reports, confirmations.

Check-ins, reports and confirmations need no key (a worker at a station has
none); they are rate-limited per client address instead and take only a JSON
body (``deps.same_site_write``: no other site's page can send them). Reading
and deciding reports needs an editor or admin key, limited to its area if it
has one.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Header, Path, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from geo_service.domain.errors import (
    ERROR_RESPONSES,
    WRITE_RESPONSES,
    ErrorBody,
    UnsupportedMediaType,
)
from geo_service.domain.html import page_csp
from geo_service.operations import reports, visits
from geo_service.operations.common import client_address, client_hash, device_hash
from geo_service.operations.schemas import (
    AreaCode,
    CheckinIn,
    CheckinLink,
    CheckinOut,
    ConfirmationOut,
    CountDate,
    Group,
    ReportCreated,
    ReportCursor,
    ReportDetail,
    ReportId,
    ReportIn,
    ReportKind,
    ReportLimit,
    ReportPage,
    ReportStatusFilter,
    ResolutionIn,
    StationCode,
    VisitCounts,
)
from geo_service.photos import service as photos
from geo_service.photos.schemas import PhotoOut
from geo_service.web.deps import (
    CodePath,
    ConnDep,
    Editor,
    SameSiteWrite,
    SettingsDep,
    own_origin,
)
from geo_service.web.responses import JSONResponse
from geo_service.web.security_headers import public_base

router = APIRouter(prefix="/v1", tags=["worker feedback"])

#: The cookie that identifies a device for de-duplication (random, no personal data).
DEVICE_COOKIE = "geo_device"
#: A device id as the app (hex) and the cookie (URL-safe base64) make them.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9_-]+$"


async def caller_of(
    request: Request, settings: SettingsDep,
    x_device_id: Annotated[str | None, Header(
        alias="X-Device-Id", min_length=1, max_length=200, pattern=DEVICE_ID_PATTERN,
        description="a random id the app keeps per device (letters, digits, '-' and '_'), "
                    "for de-duplication and one standing word per device; else the "
                    "geo_device cookie")] = None,
) -> visits.Caller:
    """Who sends a check-in, report or confirmation, as keyed hashes: the device id (header,
    else the page's cookie) and the client address (see ``common.client_address``)."""
    peer = request.client.host if request.client else "unknown"
    address = client_address(peer, request.headers.getlist("x-forwarded-for"), settings)
    device = x_device_id or request.cookies.get(DEVICE_COOKIE)
    return visits.Caller(device=device_hash(settings, device),
                         client=client_hash(settings, address))


CallerDep = Annotated[visits.Caller, Depends(caller_of)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: WRITE_RESPONSES[404]}
_PUBLIC_WRITE: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, **_NOT_FOUND,
    415: {"model": ErrorBody, "description": "A body that is not JSON (field Content-Type): "
                                             "what a page on another site could send"},
    429: {"model": ErrorBody, "description": "Rate limit reached (field client); see Retry-After"},
}
_EDITOR: dict[int | str, dict[str, Any]] = {
    **WRITE_RESPONSES, 404: {"model": ErrorBody, "description": "No such report"}}
# The page answers HTML, its errors JSON (see maps.router for why this is spelled out).
_HTML_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The check-in page", "content": {"text/html": {"schema": {
        "type": "string"}}}},
    **{status: {"description": r["description"], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
       for status, r in {**ERROR_RESPONSES, **_NOT_FOUND}.items()},
}


# --- check-ins -------------------------------------------------------------------------------


@router.get("/checkin/{code}", response_class=HTMLResponse, responses=_HTML_RESPONSES,
            name="checkin_page", summary="The page a station's QR code opens: tap to check in")
async def checkin_page(request: Request, conn: ConnDep, code: CodePath) -> HTMLResponse:
    """Sets the ``geo_device`` cookie (random, HttpOnly, a year) so repeat taps count once."""
    html = await visits.station_checkin_page(conn, code, f"../stations/{code}/checkins",
                                             app_url=f"../../app/s/{quote(code, safe='')}")
    page = HTMLResponse(html, headers={"Cache-Control": "no-store",
                                       "Content-Security-Policy": page_csp(
                                           html, connect=["'self'"])})
    if not 0 < len(request.cookies.get(DEVICE_COOKIE, "")) <= 200:
        page.set_cookie(DEVICE_COOKIE, secrets.token_urlsafe(18), max_age=365 * 86400,
                        httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return page


@router.get("/stations/{code}/checkin-link", response_model=CheckinLink,
            responses={**ERROR_RESPONSES, **_NOT_FOUND},
            summary="The station's stable check-in link (and QR code) to print")
async def checkin_link(request: Request, conn: ConnDep, code: CodePath) -> Response:
    url = public_base(request) + request.app.url_path_for("checkin_page", code=code)
    return JSONResponse(await visits.checkin_link(conn, code, url))


@router.post(
    "/stations/{code}/checkins", status_code=201, response_model=CheckinOut,
    dependencies=SameSiteWrite,
    responses={**_PUBLIC_WRITE,
               200: {"model": CheckinOut, "description": "A repeat within the window: not "
                                                         "counted, nothing stored"},
               409: {"model": ErrorBody, "description": "The station is closed or planned "
                                                        "(field code)"}},
    summary="Check in at a station (no key; one per device per window; rate-limited)",
)
async def check_in(conn: ConnDep, settings: SettingsDep, caller: CallerDep, code: CodePath,
                   body: CheckinIn | None = None) -> Response:
    result = await visits.check_in(conn, settings, code, body.worker_type if body else None,
                                   caller)
    return JSONResponse(result, status_code=201 if result["counted"] else 200)


@router.get("/visits/counts", response_model=VisitCounts,
            responses={**ERROR_RESPONSES, 404: {"model": ErrorBody,
                                                "description": "Unknown area or station"}},
            summary="Check-ins (person-times) per station, district, worker type, day, "
                    "week or month")
async def visit_counts(
    conn: ConnDep, settings: SettingsDep, group: Group = "station",
    area: Annotated[AreaCode | None, Query(description="admin area code, any level")] = None,
    station: Annotated[StationCode | None, Query()] = None,
    from_: Annotated[CountDate | None, Query(alias="from", description=(
        "first local day (Asia/Shanghai), inclusive; default 29 days before 'to', or with "
        "group=month the first day of the month before that of 'to' (whole months)"))] = None,
    to: Annotated[CountDate | None, Query(description=(
        "last local day, inclusive; default today; at most 3 years after 'from'"))] = None,
) -> Response:
    return JSONResponse(await visits.visit_counts(conn, settings, group=group, area=area,
                                                  station=station, start=from_, end=to))


# --- reports and confirmations ---------------------------------------------------------------


@router.post(
    "/stations/{code}/reports", status_code=201, response_model=ReportCreated,
    dependencies=SameSiteWrite,
    responses={**_PUBLIC_WRITE,
               200: {"model": ReportCreated, "description": "Already reported: this device's "
                     "open report of the same kind within the window; nothing stored"}},
    summary="Report a problem at a station (no key; once per device per window; "
            "rate-limited)")
async def create_report(conn: ConnDep, settings: SettingsDep, caller: CallerDep,
                        code: CodePath, body: ReportIn) -> Response:
    report = await reports.create_report(conn, settings, code, body.model_dump(), caller)
    return JSONResponse(report, status_code=201 if report["counted"] else 200)


@router.post(
    "/stations/{code}/confirmations", status_code=201, response_model=ConfirmationOut,
    dependencies=SameSiteWrite,
    responses={**_PUBLIC_WRITE,
               200: {"model": ConfirmationOut, "description": "A repeat within the window"}},
    summary="Confirm with one tap that a station is as listed (no key; rate-limited)",
)
async def confirm(conn: ConnDep, settings: SettingsDep, caller: CallerDep,
                  code: CodePath) -> Response:
    result = await reports.confirm(conn, settings, code, caller)
    return JSONResponse(result, status_code=201 if result["counted"] else 200)


async def same_site_upload(request: Request, settings: SettingsDep) -> None:
    """A keyless photo upload from a script (no ``Origin``) or from this service's own
    pages; a multipart body is what any web page can make a browser send, so a browser
    on another site is refused (415 naming ``Origin``)."""
    origin = request.headers.get("origin")
    if origin is not None and not own_origin(request, settings, origin):
        raise UnsupportedMediaType("a photo upload from another site's page is refused",
                                   [("Origin", "not this service")])


@router.post(
    "/report-photos", status_code=201, response_model=PhotoOut,
    dependencies=[Depends(same_site_upload)],
    responses={**_PUBLIC_WRITE,
               413: {"model": ErrorBody, "description": "图片太大 or 图片像素过多 (field file)"},
               415: {"model": ErrorBody, "description": "不是图片文件 (field file), or an "
                                                        "upload from another site (Origin)"}},
    summary="Send a photo for a report (no key; rate-limited; private until a clerk "
            "approves it)")
async def upload_report_photo(request: Request, conn: ConnDep, settings: SettingsDep,
                              caller: CallerDep, file: Annotated[UploadFile, File(
                                  description="the photo: JPEG, PNG or HEIC")]) -> Response:
    """Then name its ``sha`` as the report's ``photo``. Stored like a staff photo (EXIF,
    GPS and device data dropped), served only to staff until approved."""
    data = await file.read(settings.photo_max_bytes + 1)
    if len(data) > settings.photo_max_bytes:
        raise photos.too_large(settings.photo_max_bytes)
    photo = await reports.store_report_photo(conn, request.app.state.photos, settings, data,
                                             caller)
    return JSONResponse(photo, status_code=201)


ReportIdPath = Annotated[ReportId, Path(description="report id")]


@router.get("/reports", response_model=ReportPage, responses=WRITE_RESPONSES,
            summary="Worker reports to work through, oldest first (editor or admin key)")
async def list_reports(
    conn: ConnDep, settings: SettingsDep, principal: Editor,
    status: ReportStatusFilter = "open",
    kind: ReportKind | None = None,
    station: Annotated[StationCode | None, Query()] = None,
    area: Annotated[AreaCode | None, Query()] = None,
    limit: Annotated[ReportLimit, Query()] = 100,
    cursor: Annotated[ReportCursor | None, Query(
        description="next_cursor of the previous page")] = None,
) -> Response:
    return JSONResponse(await reports.list_reports(
        conn, settings, principal, status=status, kind=kind, station=station, area=area,
        limit=limit, cursor=cursor))


@router.get("/reports/{report_id}", response_model=ReportDetail, responses=_EDITOR,
            summary="One report with its resolution history (editor or admin key)")
async def get_report(conn: ConnDep, report_id: ReportIdPath,
                     principal: Editor) -> Response:
    return JSONResponse(await reports.report_detail(conn, principal, report_id))


@router.post("/reports/{report_id}/resolution", response_model=ReportDetail, responses=_EDITOR,
             summary="Resolve, reject or reopen a report; needs its version (editor or admin)")
async def resolve_report(conn: ConnDep, settings: SettingsDep, report_id: ReportIdPath,
                         body: ResolutionIn, principal: Editor) -> Response:
    return JSONResponse(await reports.resolve_report(
        conn, settings, principal, report_id, body.action, body.note, body.version))
