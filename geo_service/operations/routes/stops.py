"""HTTP for mobile stations' schedules: ``GET``/``PUT /v1/stations/{code}/stops``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from geo_service.domain.coords import Crs
from geo_service.domain.errors import ERROR_RESPONSES, WRITE_RESPONSES
from geo_service.domain.params import AT_PATTERN, parse_if_match
from geo_service.operations import stops
from geo_service.operations.schemas import Instant, ScheduleIn, ScheduleOut
from geo_service.web.deps import CodePath, ConnDep, CrsQ, Editor, IfMatch, ReadConnDep
from geo_service.web.responses import JSONResponse

router = APIRouter(prefix="/v1", tags=["mobile stations"])

AtQ = Annotated[Instant | None, Query(
    json_schema_extra={"pattern": AT_PATTERN},
    description="where the station is at this instant (ISO 8601; without an offset, China "
                "time); default now")]


@router.get("/stations/{code}/stops", response_model=ScheduleOut,
            responses={**ERROR_RESPONSES, 404: WRITE_RESPONSES[404]},
            summary="A mobile station's schedule of stops and where it is at `at`")
async def get_stops(conn: ReadConnDep, code: CodePath, at: AtQ = None,
                    crs: CrsQ = Crs.WGS84) -> Response:
    return JSONResponse(await stops.get_schedule(conn, code, at, crs))


@router.put("/stations/{code}/stops", response_model=ScheduleOut,
            responses=WRITE_RESPONSES,
            summary="Replace a mobile station's schedule (editor or admin; needs its version)")
async def put_stops(conn: ConnDep, code: CodePath, body: ScheduleIn,
                    principal: Editor, if_match: IfMatch = None,
                    crs: CrsQ = Crs.WGS84) -> Response:
    schedule = await stops.replace_schedule(conn, principal, code, body, crs,
                                            parse_if_match(if_match))
    return JSONResponse(schedule, headers={"ETag": f'"{schedule["version"]}"'})
