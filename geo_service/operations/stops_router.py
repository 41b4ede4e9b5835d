"""HTTP for mobile stations' schedules: ``GET``/``PUT /v1/stations/{code}/stops``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from geo_service.coords import Crs
from geo_service.deps import CodePath, ConnDep, CrsQ, Editor, IfMatch
from geo_service.errors import ERROR_RESPONSES, WRITE_RESPONSES, invalid
from geo_service.operations import stops
from geo_service.params import AT_PATTERN, parse_if_match
from geo_service.responses import JSONResponse
from geo_service.schemas import IsoText

router = APIRouter(prefix="/v1", tags=["mobile stations"])

AtQ = Annotated[dt.datetime | None, IsoText, Query(
    json_schema_extra={"pattern": AT_PATTERN},
    description="where the station is at this instant (ISO 8601 with offset); default now")]


@router.get("/stations/{code}/stops", response_model=stops.ScheduleOut,
            responses={**ERROR_RESPONSES, 404: WRITE_RESPONSES[404]},
            summary="A mobile station's schedule of stops and where it is at `at`")
async def get_stops(conn: ConnDep, code: CodePath, at: AtQ = None,
                    crs: CrsQ = Crs.WGS84) -> Response:
    if at is not None and at.tzinfo is None:
        raise invalid("at", "needs a UTC offset, e.g. 2026-11-30T14:00:00+08:00")
    if at is not None and not 1970 <= at.year < 2200:
        raise invalid("at", "must be between 1970 and 2199")
    when = at or dt.datetime.now(dt.UTC)
    return JSONResponse(await stops.get_schedule(conn, code, when, crs))


@router.put("/stations/{code}/stops", response_model=stops.ScheduleOut,
            responses=WRITE_RESPONSES,
            summary="Replace a mobile station's schedule (editor or admin; needs its version)")
async def put_stops(conn: ConnDep, code: CodePath, body: stops.ScheduleIn,
                    principal: Editor, if_match: IfMatch = None,
                    crs: CrsQ = Crs.WGS84) -> Response:
    schedule = await stops.replace_schedule(conn, principal, code, body, crs,
                                            parse_if_match(if_match))
    return JSONResponse(schedule, headers={"ETag": f'"{schedule["version"]}"'})
