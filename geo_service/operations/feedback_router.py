"""HTTP for worker feedback: QR check-ins and their counts, reports, confirmations.

Check-ins, reports and confirmations need no key (a worker at a station has
none) and are rate-limited per client address instead; reading and deciding
reports needs an editor or admin key, limited to its area if it has one.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from geo_service.deps import CodePath, ConnDep, Editor, SettingsDep
from geo_service.errors import ERROR_RESPONSES, WRITE_RESPONSES, ErrorBody
from geo_service.html import page_csp
from geo_service.operations import reports, visits
from geo_service.operations.common import DEVICE_COOKIE, client_hash, device_hash, station_ref
from geo_service.params import AREA_PATTERN, CODE_PATTERN, CURSOR_PATTERN
from geo_service.responses import JSONResponse
from geo_service.schemas import IsoText
from geo_service.security import public_base

router = APIRouter(prefix="/v1", tags=["worker feedback"])

# Spelled out for the OpenAPI enums; tests check they equal models.WORKER_TYPES / REPORT_KINDS.
WorkerType = Literal["sanitation", "delivery", "courier", "truck_driver", "traffic", "other"]
ReportKind = Literal["closed", "amenity_missing", "amenity_broken", "wrong_location", "moved",
                     "other"]
Group = Literal["station", "district", "worker_type", "day", "week", "month"]


#: :func:`_comment`'s rule as a JSON Schema pattern.
_COMMENT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def _comment(value: str | None) -> str | None:
    """Free text from a phone: line breaks are fine, other control characters are not."""
    if value is None:
        return None
    if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value.strip() or None


class CheckinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_type: WorkerType | None = Field(default=None, description="optional; nothing else "
                                           "about the worker is asked or kept")


class ConfirmationOut(BaseModel):
    station: str
    counted: bool = Field(description="false: this device already did so here within the "
                                      "de-duplication window, and nothing was stored")
    at: dt.datetime | None = Field(description="when it was counted")
    duplicate_of: dt.datetime | None = Field(description="the earlier one it repeats")


class CheckinOut(ConfirmationOut):
    worker_type: WorkerType | None


class CheckinLink(BaseModel):
    station: str
    url: str = Field(description="the stable link to print as the station's QR code")
    qr_svg: str | None = Field(description="that link as a QR code (SVG), when available")


class CountRow(BaseModel):
    key: str | None = Field(description="station code, district code, worker type, day "
                                        "(2026-05-04), ISO week (2026-W19) or month (2026-05); "
                                        "null: no district / type not given")
    label: str | None = Field(description="station or district name, type label, or the "
                                          "Monday a week starts on")
    count: int


class VisitCounts(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    group: Group
    area: str | None
    station: str | None
    from_: dt.date = Field(alias="from", description="first local day, inclusive")
    to: dt.date = Field(description="last local day, inclusive")
    timezone: str
    total: int
    rows: list[CountRow]


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ReportKind
    amenity: str | None = Field(default=None, max_length=64, description=(
        "amenity code; required for amenity_missing / amenity_broken, refused otherwise"))
    comment: str | None = Field(default=None, max_length=1000,
                                json_schema_extra={"pattern": _COMMENT_PATTERN})

    _check_comment = field_validator("comment")(_comment)


class ReportOut(BaseModel):
    id: int
    station: str
    station_name: str
    district_code: str | None
    station_reported_closed: bool = Field(description="the station is marked reported closed")
    kind: ReportKind
    amenity: str | None
    comment: str | None
    status: Literal["open", "resolved", "rejected"]
    version: int
    created_at: dt.datetime


class ResolutionOut(BaseModel):
    action: Literal["resolved", "rejected", "reopened"]
    note: str | None
    editor: str
    created_at: dt.datetime


class ReportDetail(ReportOut):
    resolutions: list[ResolutionOut] = Field(description="every decision, oldest first")


class ReportPage(BaseModel):
    items: list[ReportOut]
    count: int
    next_cursor: str | None


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["resolved", "rejected", "reopened"] = Field(description=(
        "resolved: dealt with (e.g. the listing was fixed through the station API); "
        "rejected: the report was wrong; reopened: back to open"))
    note: str | None = Field(default=None, max_length=1000,
                             json_schema_extra={"pattern": _COMMENT_PATTERN})
    version: int = Field(ge=1, le=2**31 - 1, description="the report's current version")

    _check_note = field_validator("note")(_comment)


async def caller_of(
    request: Request, settings: SettingsDep,
    x_device_id: Annotated[str | None, Header(alias="X-Device-Id", max_length=200, description=(
        "a random id the app keeps per device, for de-duplication; else the geo_device "
        "cookie"))] = None,
) -> visits.Caller:
    return visits.Caller(device=device_hash(request, settings),
                         client=client_hash(request, settings))


CallerDep = Annotated[visits.Caller, Depends(caller_of)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: WRITE_RESPONSES[404]}
_PUBLIC_WRITE: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, **_NOT_FOUND,
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
    station = await station_ref(conn, code)
    html = visits.checkin_page(station, f"../stations/{code}/checkins")
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
    await station_ref(conn, code)
    url = public_base(request) + request.app.url_path_for("checkin_page", code=code)
    return JSONResponse({"station": code, "url": url,
                         "qr_svg": await run_in_threadpool(visits.qr_svg, url)})


@router.post(
    "/stations/{code}/checkins", status_code=201, response_model=CheckinOut,
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
    area: Annotated[str | None, Query(pattern=AREA_PATTERN, description=(
        "admin area code, any level"))] = None,
    station: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
    from_: Annotated[dt.date | None, IsoText, Query(alias="from", description=(
        "first local day (Asia/Shanghai), inclusive; default 29 days before 'to'"))] = None,
    to: Annotated[dt.date | None, IsoText, Query(description=(
        "last local day, inclusive; default today; at most 3 years after 'from'"))] = None,
) -> Response:
    return JSONResponse(await visits.visit_counts(conn, settings, group=group, area=area,
                                                  station=station, start=from_, end=to))


# --- reports and confirmations ---------------------------------------------------------------


@router.post("/stations/{code}/reports", status_code=201, response_model=ReportOut,
             responses=_PUBLIC_WRITE,
             summary="Report a problem at a station (no key; rate-limited)")
async def create_report(conn: ConnDep, settings: SettingsDep, caller: CallerDep,
                        code: CodePath, body: ReportIn) -> Response:
    report = await reports.create_report(conn, settings, code, body.model_dump(), caller)
    return JSONResponse(report, status_code=201)


@router.post(
    "/stations/{code}/confirmations", status_code=201, response_model=ConfirmationOut,
    responses={**_PUBLIC_WRITE,
               200: {"model": ConfirmationOut, "description": "A repeat within the window"}},
    summary="Confirm with one tap that a station is as listed (no key; rate-limited)",
)
async def confirm(conn: ConnDep, settings: SettingsDep, caller: CallerDep,
                  code: CodePath) -> Response:
    result = await reports.confirm(conn, settings, code, caller)
    return JSONResponse(result, status_code=201 if result["counted"] else 200)


ReportId = Annotated[int, Path(ge=1, le=2**63 - 1, description="report id")]


@router.get("/reports", response_model=ReportPage, responses=WRITE_RESPONSES,
            summary="Worker reports to work through, oldest first (editor or admin key)")
async def list_reports(
    conn: ConnDep, settings: SettingsDep, principal: Editor,
    status: Literal["open", "resolved", "rejected", "all"] = "open",
    kind: ReportKind | None = None,
    station: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
    area: Annotated[str | None, Query(pattern=AREA_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN,
                                        description="next_cursor of the previous page")] = None,
) -> Response:
    await visits.require_area(conn, area)
    page = await reports.list_reports(
        conn, principal, status=None if status == "all" else status, kind=kind,
        station=station, area=area, limit=min(limit, settings.max_page_size), cursor=cursor)
    return JSONResponse(page)


@router.get("/reports/{report_id}", response_model=ReportDetail, responses=_EDITOR,
            summary="One report with its resolution history (editor or admin key)")
async def get_report(conn: ConnDep, report_id: ReportId,
                     principal: Editor) -> Response:
    return JSONResponse(await reports.report_detail(conn, principal, report_id))


@router.post("/reports/{report_id}/resolution", response_model=ReportDetail, responses=_EDITOR,
             summary="Resolve, reject or reopen a report; needs its version (editor or admin)")
async def resolve_report(conn: ConnDep, settings: SettingsDep, report_id: ReportId,
                         body: ResolutionIn, principal: Editor) -> Response:
    return JSONResponse(await reports.resolve_report(
        conn, settings, principal, report_id, body.action, body.note, body.version))
