"""HTTP for inspections and awards: record and list inspections, planners' views, awards.

Writes need a key: inspections an inspector, editor or admin key; awards an
editor or admin key; either way a key scoped to an area may touch only
stations inside it. The planners' views are public reads, like analysis runs.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response

from geo_service.domain.errors import ERROR_RESPONSES, WRITE_RESPONSES, ErrorBody
from geo_service.operations import inspections as svc
from geo_service.operations.inspection_schemas import (
    AwardCreate,
    AwardList,
    AwardPublic,
    InspectionCreate,
    InspectionCreated,
    InspectionPage,
    MissingItems,
    OverdueList,
    Trend,
)
from geo_service.operations.schemas import (
    AreaCode,
    AwardId,
    Days,
    HistoryCursor,
    HistoryLimit,
    OverdueLimit,
    Period,
    TrendDate,
)
from geo_service.web.deps import CodePath, ConnDep, Editor, Inspector
from geo_service.web.responses import JSONResponse

router = APIRouter(prefix="/v1", tags=["inspections"])

PLANNER_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, 404: {"model": ErrorBody, "description": "Unknown area"}}
STATION_READ = {**ERROR_RESPONSES, 404: WRITE_RESPONSES[404]}
AreaQ = Annotated[AreaCode | None, Query(description="any admin area code")]
AwardIdPath = Annotated[AwardId, Path()]


@router.post("/stations/{code}/inspections", response_model=InspectionCreated, status_code=201,
             responses=WRITE_RESPONSES,
             summary="Record an inspection (inspector, editor or admin key, within its area)")
async def record_inspection(
    conn: ConnDep, code: CodePath, body: InspectionCreate, principal: Inspector,
    idempotency_key: Annotated[uuid.UUID | None, Header(
        description="a UUID the client makes per inspection: sent again (a retry after a "
                    "lost response), the inspection already recorded is the answer")] = None,
) -> Response:
    """The station's verified amenities and date follow it when it is the latest."""
    created = await svc.record_inspection(conn, principal, code, body.model_dump(),
                                          idempotency_key)
    return JSONResponse(created, status_code=201)


@router.get("/stations/{code}/inspections", response_model=InspectionPage,
            responses=STATION_READ, summary="A station's inspection history, newest first")
async def list_inspections(
    conn: ConnDep, code: CodePath, limit: Annotated[HistoryLimit, Query()] = 20,
    cursor: Annotated[HistoryCursor | None, Query(
        description="next_cursor of the previous page")] = None,
) -> Response:
    return JSONResponse(await svc.list_inspections(conn, code, limit=limit, cursor=cursor))


@router.get("/inspections/overdue", response_model=OverdueList, responses=PLANNER_RESPONSES,
            summary="Published stations never inspected or not inspected for `days` days")
async def overdue(
    conn: ConnDep, area: AreaQ = None, days: Annotated[Days, Query()] = 365,
    limit: Annotated[OverdueLimit, Query()] = 100,
) -> Response:
    return JSONResponse(await svc.overdue(conn, area=area, days=days, limit=limit))


DateQ = Annotated[TrendDate | None, Query()]


@router.get("/inspections/trend", response_model=Trend, response_model_by_alias=True,
            responses=PLANNER_RESPONSES,
            summary="Ten-ones compliance per district and month, quarter or year")
async def trend(
    conn: ConnDep, area: AreaQ = None,
    period: Period = "month",
    from_: Annotated[DateQ, Query(alias="from", description="first day, inclusive")] = None,
    to: Annotated[DateQ, Query(description="last day, inclusive")] = None,
) -> Response:
    return JSONResponse(await svc.trend(conn, area=area, period=period, start=from_, end=to))


@router.get("/inspections/missing-items", response_model=MissingItems,
            responses=PLANNER_RESPONSES,
            summary="Ten-ones items most often missing or broken at latest inspections")
async def missing_items(
    conn: ConnDep, area: AreaQ = None,
    days: Annotated[Days | None, Query(description="only inspections this recent")] = None,
) -> Response:
    return JSONResponse(await svc.missing_items(conn, area=area, days=days))


@router.get("/stations/{code}/awards", response_model=AwardList, responses=STATION_READ,
            tags=["awards"], summary="A station's awards with their ids")
async def list_awards(conn: ConnDep, code: CodePath) -> Response:
    return JSONResponse(await svc.list_awards(conn, code))


@router.post("/stations/{code}/awards", response_model=AwardPublic, status_code=201,
             responses=WRITE_RESPONSES, tags=["awards"],
             summary="Give a station an award (editor or admin key, within its area)")
async def add_award(conn: ConnDep, code: CodePath, body: AwardCreate,
                    principal: Editor) -> Response:
    return JSONResponse(await svc.add_award(conn, principal, code, body.model_dump()),
                        status_code=201)


@router.delete("/stations/{code}/awards/{award_id}", status_code=204, response_class=Response,
               responses={**WRITE_RESPONSES, 204: {"description": "Removed"}}, tags=["awards"],
               summary="Remove an award (editor or admin key, within its area)")
async def delete_award(conn: ConnDep, code: CodePath, award_id: AwardIdPath,
                       principal: Editor) -> Response:
    await svc.delete_award(conn, principal, code, award_id)
    return Response(status_code=204)
