"""Requests of the coverage room, validated so a bad one is a 422 naming the field."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from geo_service.coverage.analysis import minutes_to_metres
from geo_service.coverage.certified import DEFAULT_BUDGET_S
from geo_service.coverage.demand import WorkerType
from geo_service.domain.catalogue import Status
from geo_service.domain.params import to_instant
from geo_service.domain.schemas import Code, check_amenities

AreaCode = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,20}$")]

#: Widest and tallest region (degrees) a bbox or polygon may span. Every province's box
#: fits (Inner Mongolia spans ~29° of longitude); a continent's coverage is not a planning
#: question, and an edge of 180° or more is one PostGIS cannot draw on the sphere.
MAX_REGION_DEGREES = 40.0


def check_extent(minlon: float, minlat: float, maxlon: float, maxlat: float) -> None:
    """Refuse a region out of range or wider/taller than :data:`MAX_REGION_DEGREES`."""
    if not (-180 <= minlon < maxlon <= 180 and -90 <= minlat < maxlat <= 90):
        raise ValueError("must be minlon,minlat,maxlon,maxlat within range")
    if maxlon - minlon > MAX_REGION_DEGREES or maxlat - minlat > MAX_REGION_DEGREES:
        raise ValueError(f"spans more than {MAX_REGION_DEGREES:g}° of longitude or latitude: "
                         "analyse a province, a city or a district")

#: Speeds for "minutes" thresholds (km/h): a 15-minute walk at 4 km/h is 1 km.
SPEEDS_KMH = {"walk": 4.0, "ebike": 15.0}


def polygon_positions(geometry: dict[str, Any]) -> tuple[list[float], list[float]]:
    """Longitudes and latitudes of a GeoJSON (Multi)Polygon, refusing any other shape.

    Checked here, not left to PostGIS, which reads a string coordinate as 0 and
    answers bad nesting with an internal error.
    """
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind not in ("Polygon", "MultiPolygon"):
        raise ValueError("must be a GeoJSON Polygon or MultiPolygon")
    polygons = [coords] if kind == "Polygon" else coords
    lons: list[float] = []
    lats: list[float] = []
    shape_error = ValueError(f"coordinates must be {kind} rings of [lon, lat] numbers, each "
                             "ring at least four positions")
    if not isinstance(polygons, list) or not polygons:
        raise shape_error
    for rings in polygons:
        if not isinstance(rings, list) or not rings:
            raise shape_error
        for ring in rings:
            if not isinstance(ring, list) or len(ring) < 4:
                raise shape_error
            for pos in ring:
                if not (isinstance(pos, list) and 2 <= len(pos) <= 3 and all(
                        isinstance(c, int | float) and not isinstance(c, bool)
                        and math.isfinite(c) for c in pos)):
                    raise shape_error
                lons.append(float(pos[0]))
                lats.append(float(pos[1]))
    return lons, lats


class StationFilter(BaseModel):
    """Which stations count ("qualifying"): the planner's question decides."""

    model_config = ConfigDict(extra="forbid")

    statuses: list[Status] = Field(default=[Status.OPEN], min_length=1)
    min_ten_ones: Annotated[int, Field(ge=0, le=10)] = 0
    amenities: Annotated[list[str], Field(max_length=32)] = []
    open_at: dt.datetime | None = Field(
        default=None, description="count only stations open at this instant (e.g. noon); "
                                  "without it every station counts, hours unknown or not")
    include_unknown: bool = Field(
        default=False, description="with open_at: also count stations whose hours are "
                                   "unknown at that instant (as the nearest filter)")
    exclude: Annotated[list[Code], Field(max_length=1000)] = Field(
        default=[], description="station codes treated as closed ('what if this one closes')")
    verified_within_days: Annotated[int | None, Field(ge=0, le=3650)] = Field(
        default=None, description="count only stations inspected (last_verified_on) within "
                                  "this many days")
    confirmed_within_days: Annotated[int | None, Field(ge=0, le=3650)] = Field(
        default=None, description="count only stations a worker confirmed as listed within "
                                  "this many days")

    _amenities = field_validator("amenities")(check_amenities)

    @field_validator("open_at")
    @classmethod
    def _instant(cls, v: dt.datetime | None) -> dt.datetime | None:
        """The service's one rule for instants (naive = China time, 1970–2199)."""
        return None if v is None else to_instant(v)


class CoverageRequest(BaseModel):
    """One coverage analysis: where, at what H3 resolution, within what distance."""

    model_config = ConfigDict(extra="forbid")

    area: AreaCode | None = Field(default=None, description="admin area code")
    polygon: dict[str, Any] | None = Field(default=None, description="GeoJSON Polygon")
    bbox: Annotated[list[float], Field(min_length=4, max_length=4)] | None = None
    resolution: Annotated[int, Field(ge=7, le=10)] = 9
    threshold_m: Annotated[float | None, Field(gt=0, le=20_000, allow_inf_nan=False)] = None
    threshold_minutes: Annotated[float | None, Field(gt=0, le=240, allow_inf_nan=False)] = None
    mode: str = Field(default="walk", pattern="^(walk|ebike)$")
    reach: str = Field(
        default="straight", pattern="^(straight|walk|ebike)$",
        description="straight (default): covered within threshold_m (or threshold_minutes "
                    "at the mode's speed) in a straight line; walk or ebike: covered when "
                    "a station is within threshold_m metres or threshold_minutes by road "
                    "(the loaded road network; 409 when none is loaded)")
    stations: StationFilter = StationFilter()
    worker_types: Annotated[list[WorkerType], Field(max_length=6)] | None = None
    verified_days: Annotated[int, Field(ge=1, le=3650)] = 180
    gaps: Annotated[int, Field(ge=0, le=1000)] = 20

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            check_extent(*v)
        return v

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            lons, lats = polygon_positions(v)
            check_extent(min(lons), min(lats), max(lons), max(lats))
        return v

    @model_validator(mode="after")
    def _one_region(self) -> CoverageRequest:
        given = [n for n in ("area", "polygon", "bbox") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of area, polygon, bbox")
        if self.threshold_m is not None and self.threshold_minutes is not None:
            raise ValueError("give threshold_m or threshold_minutes, not both")
        if self.reach != "straight" and "mode" in self.model_fields_set \
                and self.mode != self.reach:
            raise ValueError(f"mode {self.mode} contradicts reach {self.reach}: by road the "
                             "minutes are the reach's own (leave mode out)")
        return self

    def speed_mode(self) -> str:
        """Whose speed turns minutes into straight metres: the road mode, else ``mode``."""
        return self.mode if self.reach == "straight" else self.reach

    def road_limit(self) -> tuple[float, str] | None:
        """By road: the limit and its unit (seconds or metres); None in a straight line."""
        if self.reach == "straight":
            return None
        if self.threshold_minutes is not None:
            return self.threshold_minutes * 60.0, "seconds"
        return self.threshold(), "metres"

    def threshold(self) -> float:
        """The coverage distance in metres (minutes × speed when given as time)."""
        if self.threshold_minutes is not None:
            return minutes_to_metres(self.threshold_minutes, SPEEDS_KMH[self.speed_mode()])
        return self.threshold_m if self.threshold_m is not None else 1000.0


class RecommendRequest(CoverageRequest):
    """Where the next ``add`` stations would cover the most uncovered demand."""

    add: Annotated[int | None, Field(ge=1, le=1000)] = None
    target_share: Annotated[float | None, Field(gt=0, le=1)] = None
    candidates: Annotated[list[tuple[float, float]], Field(max_length=50_000)] | None = Field(
        default=None, description="[lon, lat] of possible host sites; default: gap cell centres")
    method: str = Field(
        default="swap", pattern="^(swap|greedy|exact)$",
        description="swap (default): greedy, then interchange local search with restarts "
                    "within time_budget_s, stopping once proven within 0.2 % of the best "
                    "possible; greedy: lazy greedy alone; exact: the integer program (HiGHS, "
                    "warm-started from swap), swap's plan when it is not proven in 30 s. "
                    "Every answer carries a proven upper_bound and certified_gap")
    time_budget_s: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = Field(
        default=DEFAULT_BUDGET_S,
        description="seconds the swap search and its bound may take (<= 60)")

    @model_validator(mode="after")
    def _one_goal(self) -> RecommendRequest:
        if (self.add is None) == (self.target_share is None):
            raise ValueError("give exactly one of add (N new sites) or target_share")
        return self
