"""Requests of the coverage room, validated so a bad one is a 422 naming the field."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from geo_service.catalogue import Status
from geo_service.coverage.analysis import minutes_to_metres
from geo_service.schemas import check_amenities

AreaCode = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,20}$")]

#: Speeds for "minutes" thresholds (km/h): a 15-minute walk at 4 km/h is 1 km.
SPEEDS_KMH = {"walk": 4.0, "ebike": 15.0}


class StationFilter(BaseModel):
    """Which stations count ("qualifying"): the planner's question decides."""

    model_config = ConfigDict(extra="forbid")

    statuses: list[Status] = Field(default=[Status.OPEN], min_length=1)
    min_ten_ones: Annotated[int, Field(ge=0, le=10)] = 0
    amenities: Annotated[list[str], Field(max_length=32)] = []
    open_at: dt.datetime | None = Field(
        default=None, description="count only stations open at this instant (e.g. noon)")
    exclude: Annotated[list[str], Field(max_length=1000)] = Field(
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
    def _aware(cls, v: dt.datetime | None) -> dt.datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-11-23T12:00:00+08:00")
        if v is not None and not (1970 <= v.year < 2200):
            raise ValueError("must be between 1970 and 2200")
        return v


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
    stations: StationFilter = StationFilter()
    worker_types: list[str] | None = None
    verified_days: Annotated[int, Field(ge=1, le=3650)] = 180
    gaps: Annotated[int, Field(ge=0, le=1000)] = 20

    @model_validator(mode="after")
    def _one_region(self) -> CoverageRequest:
        given = [n for n in ("area", "polygon", "bbox") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of area, polygon, bbox")
        if self.bbox is not None:
            minlon, minlat, maxlon, maxlat = self.bbox
            if not (-180 <= minlon < maxlon <= 180 and -90 <= minlat < maxlat <= 90):
                raise ValueError("bbox must be minlon,minlat,maxlon,maxlat within range")
        if self.polygon is not None and self.polygon.get("type") not in ("Polygon",
                                                                         "MultiPolygon"):
            raise ValueError("polygon must be a GeoJSON Polygon or MultiPolygon")
        if self.threshold_m is not None and self.threshold_minutes is not None:
            raise ValueError("give threshold_m or threshold_minutes, not both")
        return self

    def threshold(self) -> float:
        """The coverage distance in metres (minutes × speed when given as time)."""
        if self.threshold_minutes is not None:
            return minutes_to_metres(self.threshold_minutes, SPEEDS_KMH[self.mode])
        return self.threshold_m if self.threshold_m is not None else 1000.0


class RecommendRequest(CoverageRequest):
    """Where the next ``add`` stations would cover the most uncovered demand."""

    add: Annotated[int | None, Field(ge=1, le=1000)] = None
    target_share: Annotated[float | None, Field(gt=0, le=1)] = None
    candidates: Annotated[list[tuple[float, float]], Field(max_length=50_000)] | None = Field(
        default=None, description="[lon, lat] of possible host sites; default: gap cell centres")
    method: str = Field(default="greedy", pattern="^(greedy|exact)$")

    @model_validator(mode="after")
    def _one_goal(self) -> RecommendRequest:
        if (self.add is None) == (self.target_share is None):
            raise ValueError("give exactly one of add (N new sites) or target_share")
        return self
