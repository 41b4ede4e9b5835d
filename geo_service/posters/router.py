"""HTTP for station posters: ``GET /v1/posters/stations/{code}.pdf`` and
``GET /v1/posters/areas/{code}.pdf`` (``?size=A4|A5``).

Any key (admin, editor, inspector) may print, within its area. The key and the
rows are read on a pooled connection that is given back before the PDF is drawn:
drawing takes seconds of CPU for a district and no other request should wait for
a connection meanwhile. Drawing runs in a worker thread, at most
``poster_concurrency`` at once per process; past that a request is refused at
once with 429 and ``Retry-After`` (as the XLSX exports are), rather than queued
holding a socket for nothing it cannot get by asking again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from geo_service.domain.auth import ROLES, authenticate, require_role
from geo_service.domain.errors import ERROR_RESPONSES, ErrorBody
from geo_service.domain.params import AREA_PATTERN
from geo_service.infra.settings import Settings
from geo_service.posters import printing, service
from geo_service.posters.model import PageSize
from geo_service.web.deps import AuthHeader, CodePath, SettingsDep
from geo_service.web.security_headers import public_base

router = APIRouter(prefix="/v1/posters", tags=["posters"])

PDF = "application/pdf"

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    200: {"description": "The posters, one page per station (PDF, Chinese font embedded)",
          "content": {PDF: {"schema": {"type": "string", "format": "binary"}}}},
    401: {"model": ErrorBody, "description": "No key, or a key that does not work"},
    403: {"model": ErrorBody,
          "description": "The station or area lies outside the key's area (field code)"},
    404: {"model": ErrorBody, "description": "No such station or admin area (field code)"},
    409: {"model": ErrorBody,
          "description": "Nothing to print: the station is closed or planned, or the area "
                         "has no open station (field code); or the service has no public "
                         "address for the QR codes and no test print was asked for "
                         "(field allow_local)"},
    413: {"model": ErrorBody,
          "description": "More stations than one PDF holds (GEO_POSTER_MAX_PAGES; field code)"},
    429: {"model": ErrorBody,
          "description": "As many poster PDFs as the process draws at once "
                         "(GEO_POSTER_CONCURRENCY) are being drawn; retry after Retry-After "
                         "seconds",
          "headers": {"Retry-After": {"description": "seconds to wait",
                                      "schema": {"type": "integer"}}}},
}

SizeQ = Annotated[PageSize, Query(description="paper size: A4 (default) or A5")]
AllowLocalQ = Annotated[bool, Query(
    description="a test print: QR codes on this request's address, or on a local "
                "GEO_PUBLIC_BASE_URL, every page marked not to be posted")]
AreaPath = Annotated[str, Path(pattern=AREA_PATTERN, description="admin area code, any level")]


async def _pdf(request: Request, settings: Settings, authorization: str | None,
               size: PageSize, allow_local: bool, what: str, code: str) -> Response:
    """Check the key, read the rows, give the connection back, then draw off the loop."""
    async with request.app.state.pool.connection() as conn:
        principal = await authenticate(conn, authorization)
        require_role(principal, *ROLES)
        if what == "station":
            rows = await service.station_rows(conn, code, principal)
        else:
            rows = await service.area_rows(conn, code, principal, settings.poster_max_pages)
    fallback = (public_base(request) if allow_local and not settings.public_base_url
                else None)
    pdf = await printing.draw_pdf(rows, settings=settings,
                                  slots=printing.slots_of(request.app.state, settings),
                                  size=size, allow_local=allow_local, fallback=fallback)
    name = printing.filename(what, code, size)
    return Response(pdf, media_type=PDF, headers={
        "Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "no-store"})


@router.get(
    "/stations/{code}.pdf", responses=_RESPONSES, response_class=Response,
    summary="A station's printable QR poster (PDF, one page)",
    description="The station's name, address, a QR code to its check-in page on the public "
                "address (GEO_PUBLIC_BASE_URL), the ten ones, its hours in Chinese, the "
                "union hotline (GEO_UNION_HOTLINE) and the date. Any key within its area.")
async def station_poster(request: Request, settings: SettingsDep, code: CodePath,
                         authorization: AuthHeader = None, size: SizeQ = PageSize.A4,
                         allow_local: AllowLocalQ = False) -> Response:
    return await _pdf(request, settings, authorization, size, allow_local, "station", code)


@router.get(
    "/areas/{code}.pdf", responses=_RESPONSES, response_class=Response,
    summary="The posters of an area's stations (PDF, one page per station)",
    description="Every open or temporarily closed station in the admin area and below it, "
                "by district then name, one page each (see the station poster). At most "
                "GEO_POSTER_MAX_PAGES stations. Any key within its area.")
async def area_posters(request: Request, settings: SettingsDep, code: AreaPath,
                       authorization: AuthHeader = None, size: SizeQ = PageSize.A4,
                       allow_local: AllowLocalQ = False) -> Response:
    return await _pdf(request, settings, authorization, size, allow_local, "area", code)
