"""HTTP for the monthly bulletin: ``GET /v1/bulletins/{area}/{month}.pdf`` and ``.xlsx``.

An admin or editor key, within its area (an inspector's key does not: the bulletin is
the office's report, not a field task). The key and the figures are read on a pooled
connection given back before anything is drawn; the drawing (charts and PDF, or the
workbook) runs in a worker thread in one of the process's draw slots, past which a
request is refused at once with 429 and ``Retry-After``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from geo_service.bulletin import printing, service
from geo_service.bulletin.model import MONTH_PATTERN, Month
from geo_service.bulletin.printing import MEDIA_TYPES, Format
from geo_service.domain.auth import authenticate, require_role
from geo_service.domain.errors import ERROR_RESPONSES, ErrorBody
from geo_service.domain.params import AREA_PATTERN
from geo_service.posters.printing import slots_of
from geo_service.web.deps import AuthHeader, SettingsDep

router = APIRouter(prefix="/v1/bulletins", tags=["bulletins"])


def _responses(fmt: Format) -> dict[int | str, dict[str, Any]]:
    what = ("A4 PDF, Chinese font embedded: the figures by district, person-times by "
            "worker type, a bar and a line chart" if fmt == Format.PDF else
            "XLSX workbook, one sheet per table, the PDF's figures")
    return {
        **ERROR_RESPONSES,
        200: {"description": f"The bulletin ({what})",
              "content": {MEDIA_TYPES[fmt]: {"schema": {"type": "string", "format": "binary"}}}},
        401: {"model": ErrorBody, "description": "No key, or a key that does not work"},
        403: {"model": ErrorBody, "description": "An inspector's key, or an area outside the "
                                                 "key's area (field area)"},
        404: {"model": ErrorBody, "description": "No such admin area (field area)"},
        422: {"model": ErrorBody, "description": "A month that is not YYYY-MM of the years "
                                                 "2000-2100 (field month)"},
        429: {"model": ErrorBody,
              "description": "As many PDFs as the process draws at once "
                             "(GEO_POSTER_CONCURRENCY) are being drawn; retry after "
                             "Retry-After seconds",
              "headers": {"Retry-After": {"description": "seconds to wait",
                                          "schema": {"type": "integer"}}}},
    }


AreaPath = Annotated[str, Path(pattern=AREA_PATTERN,
                               description="admin area code, any level (and all below it)")]
MonthPath = Annotated[str, Path(pattern=MONTH_PATTERN,
                                description="calendar month, YYYY-MM, in the service's "
                                            "time zone (GEO_DEFAULT_TIMEZONE)")]


async def _bulletin(request: Request, settings: SettingsDep, authorization: str | None,
                    area: str, month: str, fmt: Format) -> Response:
    """Check the key, read the figures, give the connection back, then draw off the loop."""
    when = Month.parse(month, settings.default_timezone)
    async with request.app.state.pool.connection() as conn:
        principal = await authenticate(conn, authorization)
        require_role(principal, "admin", "editor")
        bulletin = await service.read(conn, area, when, principal)
    body = await printing.draw_async(bulletin, fmt, settings=settings,
                                     slots=slots_of(request.app.state, settings))
    name = printing.filename(area, when.label, fmt)
    return Response(body, media_type=MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


_DESCRIPTION = (
    "The monthly bulletin (每月通报) of an admin area and everything below it, for a "
    "calendar month in the service's time zone: stations built, serving at month end, "
    "verified, on the map; inspections done and overdue at month end; worker reports "
    "received and resolved; person-times (check-ins) by district and worker type in that "
    "month; the change of covered share between the newest stored coverage runs of the "
    "area by the end of the month and by the end of the month before. An admin or editor "
    "key, within its area.")


@router.get("/{area}/{month}.pdf", responses=_responses(Format.PDF), response_class=Response,
            summary="An area's monthly bulletin (PDF, A4, Chinese)", description=_DESCRIPTION)
async def bulletin_pdf(request: Request, settings: SettingsDep, area: AreaPath,
                       month: MonthPath, authorization: AuthHeader = None) -> Response:
    return await _bulletin(request, settings, authorization, area, month, Format.PDF)


@router.get("/{area}/{month}.xlsx", responses=_responses(Format.XLSX),
            response_class=Response,
            summary="An area's monthly bulletin (XLSX, one sheet per table)",
            description=_DESCRIPTION)
async def bulletin_xlsx(request: Request, settings: SettingsDep, area: AreaPath,
                        month: MonthPath, authorization: AuthHeader = None) -> Response:
    return await _bulletin(request, settings, authorization, area, month, Format.XLSX)
