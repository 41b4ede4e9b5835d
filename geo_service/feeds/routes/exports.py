"""HTTP for platform bulk-upload exports: ``GET /v1/exports/{platform}.{fmt}``.

Amap, Tencent, Baidu (their Chinese upload columns and coordinate systems),
``generic`` (English headers, WGS-84) or ``union`` (the import template's columns,
to edit and re-import), as CSV or XLSX; see
:mod:`geo_service.feeds.export_formats` for the columns and why.

Both read the published stations in keyset batches, each on a pooled
connection given back before the batch is used
(:func:`geo_service.feeds.service.published_batches`), so no connection waits
on a client or on encoding. CSV is streamed as it is read, so memory stays
flat for a national export. XLSX cannot be streamed (it is a zip whose
directory comes last), so it is written batch by batch to a spooled temporary
file in a worker thread (openpyxl is blocking) and then sent from that file
with its length; at most ``export_xlsx_concurrency`` are built at once per
process, and the others are refused with 429 and ``Retry-After``. A client
that takes nothing for ``client_send_timeout_s`` loses its download. Both
answer ``If-None-Match``/``If-Modified-Since`` with a 304 from the feed
validators.

The files themselves are written by :mod:`geo_service.feeds.service`
(``csv_chunks``, ``write_xlsx``) from batches of rows, not a request, so
``geo-service export`` makes the same files without this module.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import tempfile
from collections.abc import AsyncIterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from geo_service.domain.coords import Crs
from geo_service.domain.errors import ERROR_RESPONSES, ErrorBody, invalid
from geo_service.domain.params import AREA_PATTERN, BBOX_PATTERN, parse_bbox
from geo_service.feeds.caching import validators
from geo_service.feeds.export_formats import (
    MEDIA_TYPES,
    PLATFORMS,
    XLSX_MEDIA_TYPE,
    ExportFormat,
    PlatformName,
    TooManyRows,
    china_date,
    export_filename,
)
from geo_service.feeds.http import (
    NOT_MODIFIED,
    FeedStateDep,
    IfModifiedSince,
    IfNoneMatch,
    batch_connect,
    cache_headers,
    conditional,
)
from geo_service.feeds.service import (
    Batches,
    csv_chunks,
    minute_of,
    published_batches,
    write_xlsx,
    xlsx_slots_of,
)
from geo_service.web.deps import SettingsDep
from geo_service.web.responses import PacedStreamingResponse

router = APIRouter(prefix="/v1/exports", tags=["feeds"])

#: XLSX files up to this size stay in memory; larger ones spill to a temporary file.
XLSX_SPOOL_BYTES = 16 * 1024 * 1024
#: Bytes per chunk when an XLSX file is sent.
FILE_CHUNK = 256 * 1024

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The bulk-upload file, as an attachment (CSV: UTF-8 with BOM, CRLF)",
          "content": {"text/csv": {"schema": {"type": "string"}},
                      XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
    **NOT_MODIFIED,
    404: {"model": ErrorBody, "description": "No such export: the path is {platform}.{fmt}"},
    429: {"model": ErrorBody,
          "description": "XLSX only: as many exports as the process builds at once "
                         "(GEO_EXPORT_XLSX_CONCURRENCY) are being built; retry after "
                         "Retry-After seconds, or ask for CSV",
          "headers": {"Retry-After": {"description": "seconds to wait",
                                      "schema": {"type": "integer"}}}},
    **ERROR_RESPONSES,
}


async def _file_chunks(f: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(f.read, FILE_CHUNK):
            yield chunk
    finally:
        f.close()


@router.get(
    "/{platform}.{fmt}",
    summary="Bulk-upload file of the published stations for Amap, Tencent, Baidu or generic use",
    description="CSV (UTF-8 with BOM) or XLSX with the columns the platforms' POI upload "
                "templates take (Chinese headers; English for `generic`), coordinates in the "
                "platform's system: Amap/Tencent GCJ-02, Baidu BD-09, generic WGS-84. "
                "`union`: the station import template's Chinese columns (WGS-84, stored "
                "values), to edit and import again with `POST /v1/stations:import`.",
    responses=_RESPONSES,
    response_class=Response,  # the 200 media types are the two declared above, not JSON
)
async def export(
    request: Request, state: FeedStateDep, settings: SettingsDep,
    platform: Annotated[PlatformName, Path(description="target platform")],
    fmt: Annotated[ExportFormat, Path(description="file format")],
    area: Annotated[str | None, Query(pattern=AREA_PATTERN, description="admin area code")] = None,
    bbox: Annotated[str | None, Query(pattern=BBOX_PATTERN,
                                      description="minlon,minlat,maxlon,maxlat (WGS-84)")] = None,
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    box = parse_bbox(bbox, Crs.WGS84)
    now = dt.datetime.now(dt.UTC)
    params = {"platform": platform.value, "fmt": fmt.value, "area": area, "bbox": box}
    v = validators(state, "exports", params, now=now)
    ttl = settings.feed_ttl_s
    if (hit := conditional(v, ttl, if_none_match, if_modified_since)) is not None:
        return hit
    spec = PLATFORMS[platform]
    name = export_filename(spec, fmt, china_date(now))
    headers = {**cache_headers(v, ttl), "Content-Disposition": f'attachment; filename="{name}"'}
    timeout = settings.client_send_timeout_s

    def batches() -> Batches:
        return published_batches(batch_connect(request), area=area, bbox=box,
                                 at=minute_of(now), photo_base=settings.public_base_url)

    if fmt is ExportFormat.CSV:
        return PacedStreamingResponse(csv_chunks(batches(), spec), send_timeout_s=timeout,
                                      media_type=MEDIA_TYPES["csv"], headers=headers)
    with xlsx_slots_of(request.app.state, settings).take():
        out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=XLSX_SPOOL_BYTES)  # noqa: SIM115
        try:
            await write_xlsx(batches(), spec, out, area=area, bbox=box, generated_at=now)
            headers["Content-Length"] = str(out.seek(0, io.SEEK_END))
            out.seek(0)
        except TooManyRows as exc:
            out.close()
            raise invalid("fmt", f"{exc}; use csv, or an area or bbox filter") from None
        except BaseException:
            out.close()
            raise
    return PacedStreamingResponse(_file_chunks(out), send_timeout_s=timeout,
                                  media_type=XLSX_MEDIA_TYPE, headers=headers)
