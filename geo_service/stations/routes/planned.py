"""HTTP for planned stations from a coverage run's recommended sites (issue 27).

In the stations room because it writes stations (the coverage room reads stations and
never writes them); its paths sit beside the run they come from, under
``/v1/analysis/runs/{run_id}``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from geo_service.domain.errors import ERROR_RESPONSES, WRITE_RESPONSES
from geo_service.stations import planned
from geo_service.web.deps import ConnDep, Editor
from geo_service.web.responses import JSONResponse

router = APIRouter(prefix="/v1")
RunId = Annotated[int, Path(ge=1, le=2**62)]


class PlanRequest(BaseModel):
    """Which of the run's sites to plan; all of them when ``ranks`` is left out."""

    model_config = ConfigDict(extra="forbid")

    ranks: Annotated[list[Annotated[int, Field(ge=1, le=1000)]],
                     Field(min_length=1, max_length=1000)] | None = None


class PlannedStation(BaseModel):
    code: str = Field(description="PLAN-<run>-<rank>: the same site always gets the same code")
    name: str
    rank: int
    lon: float = Field(description="WGS-84")
    lat: float = Field(description="WGS-84")
    district_code: str | None
    district: str | None
    street: str | None
    new_workers: float = Field(description="workers the site newly covers (after the "
                                           "sites ranked before it)")
    status: str
    created: bool = Field(description="false: it was planned by an earlier request")
    gcj02: list[float]
    bd09: list[float]
    amap: str


class PlanResult(BaseModel):
    run_id: int
    created: list[str] = Field(description="codes of the stations this request added")
    existing: list[str] = Field(description="codes already planned (nothing changed)")
    stations: list[PlannedStation]


@router.post("/analysis/runs/{run_id}/sites/plan", response_model=PlanResult,
             responses=WRITE_RESPONSES,
             summary="Add a recommendations run's sites as planned stations (筹建中), at once")
async def plan_sites(conn: ConnDep, run_id: RunId, principal: Editor,
                     body: PlanRequest | None = None) -> Response:
    """One transaction, audited under the caller; asking again adds nothing (same codes)."""
    return JSONResponse(await planned.plan_sites(conn, principal, run_id,
                                                 body.ranks if body else None))


@router.get("/analysis/runs/{run_id}/sites/plan.xlsx", responses={
    200: {"content": {planned.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
          "description": "The sites as planned stations in the union's station sheet"},
    **ERROR_RESPONSES, 404: WRITE_RESPONSES[404], 409: WRITE_RESPONSES[409]},
    summary="A recommendations run's sites as planned stations, in the union template")
async def plan_sheet(conn: ConnDep, run_id: RunId) -> Response:
    bodies = await planned.planned_bodies(conn, run_id)
    return Response(planned.plan_sheet(bodies), media_type=planned.MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="planned-stations-run-{run_id}.xlsx"'})
