"""HTTP for the coverage room: run analyses, read stored runs and their GeoJSON, import demand."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from geo_service.coverage import demand_sheet, raster, service, whatif
from geo_service.coverage.demand import WorkerType, import_demand
from geo_service.coverage.schemas import CoverageRequest, RecommendRequest
from geo_service.domain.coords import Crs
from geo_service.domain.errors import ERROR_RESPONSES, WRITE_RESPONSES, PayloadTooLarge
from geo_service.domain.params import AREA_PATTERN
from geo_service.domain.schemas import ImportReport
from geo_service.imports.run import Mode, import_upload
from geo_service.roads.graph import RoadNetwork
from geo_service.roads.keeper import road_keeper
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


async def loaded_roads(request: Request) -> RoadNetwork | None:
    """The serving process's road network (None: no roads loaded), for reach=walk|ebike;
    looked up on the event loop, as nearest by road does, before the run's thread."""
    keeper = road_keeper(request.app.state)
    return None if keeper is None else await keeper.current(request.app.state.pool)


RoadsDep = Annotated[RoadNetwork | None, Depends(loaded_roads)]


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
    basis: str = Field(default="demand", description=(
        "what the demand figures count: demand (workers, from demand points) or area (no "
        "demand data in the region: every H3 cell of the run's resolution counts once, so "
        "shares are shares of area, 按面积覆盖)"))
    basis_label: str = Field(default="", description="basis in words, Chinese then English")
    reach: str = Field(default="straight", description=(
        "straight, walk or ebike: how covered was decided. By road each area row also "
        "carries straight_covered_share, the straight-line share of the same run "
        "(直线覆盖 vs 步行/电动车实际覆盖); cells' nearest_m stay straight metres"))
    reach_limit_s: float | None = Field(default=None, description=(
        "by road: the limit in seconds (threshold_minutes given)"))
    reach_limit_m: float | None = Field(default=None, description=(
        "by road: the limit in metres along the ways (threshold_m given)"))


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
    basis: str = Field(default="demand", description=(
        "what the demand figures count: demand (workers, from demand points) or area (no "
        "demand data in the region: every H3 cell of the run's resolution counts once, so "
        "shares are shares of area, 按面积覆盖)"))
    basis_label: str = Field(default="", description="basis in words, Chinese then English")
    reach: str = Field(default="straight", description=(
        "straight, walk or ebike: candidates cover the cells they reach by road"))
    reach_limit_s: float | None = None
    reach_limit_m: float | None = None


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
def coverage(conn: SyncConnDep, body: CoverageRequest, principal: SyncEditor,
             roads: RoadsDep) -> Response:
    """Runs write to the database, so they need an editor or admin key (area-scoped).
    With reach=walk|ebike and no roads loaded: 409 naming reach."""
    return JSONResponse(service.run_coverage(conn, body, scope=principal.area_code,
                                             roads=lambda: roads))


@router.post("/recommendations", response_model=RecommendationRun, responses=WRITE_RESPONSES,
             summary="Where N new stations would cover the most uncovered demand (MCLP)")
def recommendations(conn: SyncConnDep, body: RecommendRequest,
                    principal: SyncEditor, roads: RoadsDep) -> Response:
    return JSONResponse(service.run_recommendations(conn, body, scope=principal.area_code,
                                                    roads=lambda: roads))


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
    basis: str = Field(default="demand", description="as a coverage run's: demand or area")
    basis_label: str = Field(default="", description="basis in words, Chinese then English")


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


@router.get("/runs/{run_id}/service-areas", responses=_GEOJSON_RESPONSES,
            summary="The run's service areas by road (reach=walk|ebike): per station, the "
                    "road network it reaches within the limit, 50 m either side, as GeoJSON")
def run_service_areas(conn: SyncConnDep, run_id: RunId) -> Response:
    """Empty for a straight run: its service area is the circle (threshold_m)."""
    return GeoJSONResponse(service.run_geojson(conn, run_id, "service-areas"))


#: Demand is the coverage room's input, imported at ``/v1/demand:import`` (outside
#: ``/v1/analysis``); tagged as it always was, so the published API is unchanged.
demand_router = APIRouter(prefix="/v1", tags=["stations"])


@demand_router.post(
    "/demand:import", response_model=ImportReport, responses=WRITE_RESPONSES,
    tags=["analysis"],
    summary="Import weighted demand points (编号, 经度, 纬度, 人数, 工种, 坐标系 or id, lon, lat, "
            "weight, worker_type, …) (admin key)",
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


@demand_router.get(
    "/demand:template.xlsx", tags=["analysis"],
    summary="The demand import template: Chinese columns (编号, 经度, 纬度, 人数, 工种, 坐标系), "
            "drop-downs, an example row and a 说明 sheet listing every alias (public)",
    description="Public like the station template: it holds no data, only the columns and "
                "vocabularies. The example row (编号 示例-0001) is skipped on import.",
    response_class=Response,
    responses={200: {"description": "XLSX workbook, as an attachment",
                     "content": {demand_sheet.MEDIA_TYPE: {
                         "schema": {"type": "string", "format": "binary"}}}},
               **ERROR_RESPONSES},
)
async def demand_template() -> Response:
    body = await asyncio.to_thread(demand_sheet.template_xlsx)
    return Response(body, media_type=demand_sheet.MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{demand_sheet.FILENAME}"',
        "Cache-Control": "public, max-age=3600"})


class RasterReport(BaseModel):
    area: str
    file: str
    worker_type: str
    share: float
    resolution: int
    raster_size: list[int] = Field(description="the raster's width and height in pixels")
    window: list[int] | None = Field(
        description="the part read: column, row, width, height (null: the raster does not "
                    "reach the area)")
    pixels_read: int
    pixels_inside: int = Field(description="pixels with population whose centres lie in the "
                                           "area's polygon")
    population: float = Field(description="their population sum")
    cells: int = Field(description="H3 cells (demand points) stored")
    stored_weight: float = Field(description="population × share: the workers stored")
    created: int
    updated: int
    unchanged: int
    removed: int = Field(description="the area's earlier raster points no longer present")


@demand_router.post(
    "/demand:raster", response_model=RasterReport, responses=WRITE_RESPONSES, tags=["analysis"],
    summary="Estimate an area's demand from a population GeoTIFF (e.g. WorldPop), replacing "
            "its earlier raster demand (editor key, within its area)")
def import_demand_raster(
    conn: SyncConnDep, settings: SettingsDep, file: ImportFile, principal: SyncEditor,
    area: Annotated[str, Query(pattern=AREA_PATTERN, description="admin area code")],
    worker_type: Annotated[WorkerType, Query(description="who the estimate counts")] = "other",
    share: Annotated[float, Query(gt=0, le=1, description="share of residents counted")]
    = raster.DEFAULT_SHARE,
    resolution: Annotated[int, Query(ge=5, le=10)] = raster.DEFAULT_RESOLUTION,
) -> Response:
    data = file.file.read(settings.max_import_bytes + 1)
    if len(data) > settings.max_import_bytes:
        raise PayloadTooLarge(f"file larger than {settings.max_import_bytes} bytes",
                              [("file", "too large")])
    opts = raster.Options(area=area, worker_type=worker_type, share=share,
                          resolution=resolution)
    return JSONResponse(raster.import_raster(conn, data, file.filename or "upload.tif", opts,
                                             scope=principal.area_code))
