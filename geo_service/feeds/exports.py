"""HTTP for platform bulk-upload exports: ``GET /v1/exports/{platform}.{fmt}``.

Amap, Tencent, Baidu (their Chinese upload columns and coordinate systems),
``generic`` (English headers, WGS-84) or ``union`` (the import template's columns,
to edit and re-import), as CSV or XLSX; see
:mod:`geo_service.feeds.export_formats` for the columns and why.

CSV is streamed from a server-side cursor as it is read, so memory stays flat
for a national export. XLSX cannot be streamed (it is a zip whose directory
comes last), so it is written batch by batch to a spooled temporary file in a
worker thread (openpyxl is blocking) and then sent from that file with its
length. Both read the same snapshot of published stations and answer
``If-None-Match``/``If-Modified-Since`` with a 304 from the feed validators.

The files themselves are written by :mod:`geo_service.feeds.service`
(``csv_chunks``, ``write_xlsx``) from a connection, not a request, so
``geo-service export`` makes the same files without this module.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import tempfile
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from geo_service.coords import Crs
from geo_service.deps import ReadConnDep, SettingsDep, read_pool
from geo_service.errors import ERROR_RESPONSES, ErrorBody, invalid
from geo_service.feeds.caching import feed_state, validators
from geo_service.feeds.export_formats import (
    MEDIA_TYPES,
    PLATFORMS,
    XLSX_MEDIA_TYPE,
    ExportFormat,
    Platform,
    PlatformName,
    TooManyRows,
    china_date,
    export_filename,
)
from geo_service.feeds.http import (
    NOT_MODIFIED,
    IfModifiedSince,
    IfNoneMatch,
    cache_headers,
    conditional,
)
from geo_service.feeds.service import csv_chunks, minute_of, write_xlsx
from geo_service.params import AREA_PATTERN, BBOX_PATTERN, parse_bbox

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
    **ERROR_RESPONSES,
}


async def _streamed_csv(
    request: Request, platform: Platform, area: str | None, bbox: list[float] | None,
    at: dt.datetime,
) -> AsyncIterator[bytes]:
    # The connection is taken here: the body is sent after the endpoint returns.
    async with read_pool(request).connection() as conn, aclosing(
        csv_chunks(conn, platform, area=area, bbox=bbox, at=at)
    ) as chunks:
        async for chunk in chunks:
            yield chunk


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
    request: Request, conn: ReadConnDep, settings: SettingsDep,
    platform: Annotated[PlatformName, Path(description="target platform")],
    fmt: Annotated[ExportFormat, Path(description="file format")],
    area: Annotated[str | None, Query(pattern=AREA_PATTERN, description="admin area code")] = None,
    bbox: Annotated[str | None, Query(pattern=BBOX_PATTERN,
                                      description="minlon,minlat,maxlon,maxlat (WGS-84)")] = None,
    if_none_match: IfNoneMatch = None, if_modified_since: IfModifiedSince = None,
) -> Response:
    box = parse_bbox(bbox, Crs.WGS84)
    now = dt.datetime.now(dt.UTC)
    state = await feed_state(conn)
    params = {"platform": platform.value, "fmt": fmt.value, "area": area, "bbox": box}
    v = validators(state, "exports", params, now=now)
    ttl = settings.feed_ttl_s
    if (hit := conditional(v, ttl, if_none_match, if_modified_since)) is not None:
        return hit
    spec = PLATFORMS[platform]
    name = export_filename(spec, fmt, china_date(now))
    headers = {**cache_headers(v, ttl), "Content-Disposition": f'attachment; filename="{name}"'}
    if fmt is ExportFormat.CSV:
        body = _streamed_csv(request, spec, area, box, minute_of(now))
        return StreamingResponse(body, media_type=MEDIA_TYPES["csv"], headers=headers)
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=XLSX_SPOOL_BYTES)  # noqa: SIM115
    try:
        await write_xlsx(conn, spec, out, area=area, bbox=box, generated_at=now)
        headers["Content-Length"] = str(out.seek(0, io.SEEK_END))
        out.seek(0)
    except TooManyRows as exc:
        out.close()
        raise invalid("fmt", f"{exc}; use csv, or an area or bbox filter") from None
    except BaseException:
        out.close()
        raise
    return StreamingResponse(_file_chunks(out), media_type=XLSX_MEDIA_TYPE, headers=headers)
