"""HTTP for the coverage room: run analyses, read stored runs and their GeoJSON, import demand."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from geo_service.coverage import service, whatif
from geo_service.coverage.demand import import_demand
from geo_service.coverage.schemas import CoverageRequest, RecommendRequest
from geo_service.domain.coords import Crs
from geo_service.domain.errors import ERROR_RESPONSES, WRITE_RESPONSES
from geo_service.domain.schemas import ImportReport
from geo_service.imports.run import Mode, import_upload
from geo_service.web.deps import (
    Admin,
    ConnDep,
    CrsQ,
    ImportFile,
    ImportFormatQ,
    SettingsDep,
    SyncConnDep,
    SyncEditor,
)
from geo_service.web.responses import GeoJSONResponse, JSONResponse

router = APIRouter(prefix="/v1/analysis", tags=["analysis"])
RunId = Annotated[int, Path(ge=1, le=2**62)]


class CoverageRun(BaseModel):
    run_id: int
    kind: str
    created_at: str
    threshold_m: float
    resolution: int
    areas: list[dict[str, Any]] = Field(
        description="the scorecard: one row per district, worst first (lowest covered "
                    "share, then most uncovered workers), each with `area` (code) and "
                    "`name`, stations, demand, covered_share, doubly_share, "
                    "uncovered_demand (gap workers), …; the total row (area 'total') last")
    gaps: list[dict[str, Any]]
    sample_data: bool


class RecommendationRun(BaseModel):
    run_id: int
    kind: str
    created_at: str
    threshold_m: float
    resolution: int
    stations_on_record: int
    stations_before: int
    stations_after: int
    total_demand: float
    covered_before: float
    covered_after: float
    covered_share_before: float | None
    covered_share_after: float | None
    method: str = Field(description="swap (greedy + interchange search, the default), "
                                    "lazy_greedy, exact, swap_share or greedy_share")
    optimal_gap: float | None = Field(
        description="the shown plan's shortfall against HiGHS's optimum, where the exact "
                    "solver ran (up to 2,000 candidates, or method exact); else null")
    target_share: float | None
    target_reached: bool | None
    note: str | None
    solver_seconds: float = Field(description="wall time of choosing the sites and bounding "
                                              "them (after the coverage matrix)")
    time_budget_s: float = Field(description="the time budget the swap search was given")
    upper_bound: float | None = Field(
        description="proven: no choice of `add` new sites among these candidates covers more "
                    "demand than this (existing coverage included; Lagrangian/LP bound with "
                    "float slack). Null for target_share requests")
    certified_gap: float | None = Field(
        description="1 - newly covered / (upper_bound - covered_before): the plan covers at "
                    "least 1 - certified_gap of the most any plan could newly cover")
    at_least_share_of_best: float | None = Field(
        description="1 - certified_gap, e.g. 0.993: 'at least 99.3 % of the best possible'")
    bound_source: str | None = Field(
        description="how upper_bound was proven: lagrangian (subgradient multipliers), "
                    "lp-duals (HiGHS's LP duals, evaluated here), or a trivial case")
    sites_lower_bound: int | None = Field(
        description="target_share requests: proven, fewer sites than this cannot reach the "
                    "target (equal to the number of sites: the count is optimal)")
    greedy_covered_after: float = Field(
        description="what lazy greedy alone covers, for comparison")
    greedy_sites: int = Field(description="how many sites lazy greedy alone picks")
    sites: list[dict[str, Any]] = Field(
        description="the picked sites in order: rank, WGS-84 lon/lat, gain (= new_workers, "
                    "the workers it newly covers), district_code and district, street "
                    "(乡镇/街道 where loaded, else '—'), gcj02 and bd09 [lon, lat], amap (a "
                    "link that opens the point in Amap)")
    sample_data: bool


class StoredRun(BaseModel):
    id: int
    kind: str
    params: dict[str, Any]
    inputs: dict[str, Any]
    summary: dict[str, Any]
    created_at: dt.datetime
    sample: bool


@router.post("/coverage", response_model=CoverageRun, responses=WRITE_RESPONSES,
             summary="H3 coverage-gap analysis for an area; the run is stored")
def coverage(conn: SyncConnDep, body: CoverageRequest, principal: SyncEditor) -> Response:
    """Runs write to the database, so they need an editor or admin key (area-scoped)."""
    return JSONResponse(service.run_coverage(conn, body, scope=principal.area_code))


@router.post("/recommendations", response_model=RecommendationRun, responses=WRITE_RESPONSES,
             summary="Where N new stations would cover the most uncovered demand (MCLP)")
def recommendations(conn: SyncConnDep, body: RecommendRequest,
                    principal: SyncEditor) -> Response:
    return JSONResponse(service.run_recommendations(conn, body, scope=principal.area_code))


class WhatIfResult(BaseModel):
    run_id: int = Field(description="the after state, stored as a coverage run: "
                                    "/maps/coverage.html?run=<run_id> draws it")
    created_at: str
    threshold_m: float
    closed: list[str]
    added: list[dict[str, Any]] = Field(description="the added sites, described as a "
                                                    "recommendations run's sites are")
    rows: list[dict[str, Any]] = Field(
        description="per district (area code and name), worst first before the change, "
                    "the total last: stations, covered_share, doubly_share and "
                    "uncovered_demand (gap workers), each _before, _after and _change")
    sample_data: bool


@router.post("/whatif", response_model=WhatIfResult, responses=WRITE_RESPONSES,
             summary="What if stations close and/or sites are added: before and after per "
                     "district, in one request")
def run_whatif(conn: SyncConnDep, body: whatif.WhatIfRequest, principal: SyncEditor) -> Response:
    """Stores the after state as a run (for its map), so it needs an editor or admin key."""
    return JSONResponse(whatif.run_whatif(conn, body, scope=principal.area_code))


@router.get("/runs/{run_id}", response_model=StoredRun,
            responses={**ERROR_RESPONSES, 404: WRITE_RESPONSES[404]})
def get_run(conn: SyncConnDep, run_id: RunId) -> Response:
    return JSONResponse(service.get_run(conn, run_id))


_GEOJSON_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/geo+json": {"schema": {"type": "object"}}},
          "description": "GeoJSON FeatureCollection"},
    **ERROR_RESPONSES, 404: WRITE_RESPONSES[404],
}


@router.get("/runs/{run_id}/cells", responses=_GEOJSON_RESPONSES,
            summary="The run's H3 cells as GeoJSON polygons")
def run_cells(conn: SyncConnDep, run_id: RunId) -> Response:
    return GeoJSONResponse(service.run_geojson(conn, run_id, "cells"))


@router.get("/runs/{run_id}/sites", responses=_GEOJSON_RESPONSES,
            summary="The run's recommended sites as GeoJSON")
def run_sites(conn: SyncConnDep, run_id: RunId) -> Response:
    return GeoJSONResponse(service.run_geojson(conn, run_id, "sites"))


#: Demand is the coverage room's input, imported at ``/v1/demand:import`` (outside
#: ``/v1/analysis``); tagged as it always was, so the published API is unchanged.
demand_router = APIRouter(prefix="/v1", tags=["stations"])


@demand_router.post(
    "/demand:import", response_model=ImportReport, responses=WRITE_RESPONSES,
    tags=["analysis"],
    summary="Import weighted demand points (id, lon, lat, weight, worker_type, …) (admin key)",
)
async def import_demand_points(
    conn: ConnDep, settings: SettingsDep, file: ImportFile, principal: Admin,
    format: ImportFormatQ = None, mode: Mode = Mode.ALL_OR_NOTHING,
    dry_run: bool = False, crs: CrsQ = Crs.WGS84,
) -> Response:
    report = await import_upload(
        file, format, settings, dry_run=dry_run,
        run=lambda data, fmt, limits: import_demand(
            conn, data, fmt, mode=mode, dry_run=dry_run, max_rows=settings.max_import_rows,
            crs=crs, limits=limits, scope=principal.area_code))
    return JSONResponse(report)
