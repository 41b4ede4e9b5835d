"""What the operations room accepts and answers: query values, stops, check-ins, reports.

Written once, without a web framework, so the API and ``geo-service
stops|inspections|visits|reports`` refuse the same values naming the same
field: routers wrap the value types below in ``Query``/``Path`` (only a
description added), the CLI validates its options with them
(:func:`geo_service.operations.cli.valid`), and both send bodies through the
same models. Inspection and award bodies are in
:mod:`geo_service.operations.inspection_schemas`.

Rules a type cannot state (a date range whose ends depend on each other, a
stop's area, an instant without an offset read as China time) live in the
services, which both paths call.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from geo_service.domain.coords import Crs
from geo_service.domain.params import AREA_PATTERN, CODE_PATTERN, CURSOR2_PATTERN, CURSOR_PATTERN
from geo_service.domain.schemas import IsoText, PlainText
from geo_service.hours.compiler import HoursError, validate_hours

# --------------------------------------------------------------------------- query values

#: A station code (the CLI's CODE argument, the API's path and ``station`` filter).
StationCode = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
#: An admin area code of any level.
AreaCode = Annotated[str, StringConstraints(pattern=AREA_PATTERN)]
#: Page size of a station's inspection history.
HistoryLimit = Annotated[int, Field(ge=1, le=100)]
HistoryCursor = Annotated[str, StringConstraints(pattern=CURSOR2_PATTERN)]
#: Days without inspection that make a station overdue; also "this recent" for missing items.
Days = Annotated[int, Field(ge=1, le=3650)]
OverdueLimit = Annotated[int, Field(ge=1, le=1000)]
Period = Literal["month", "quarter", "year"]
#: Trend dates: the range inspections can have, said in the schema as a pattern too.
TrendDate = Annotated[dt.date, Field(ge=dt.date(2000, 1, 1), le=dt.date(2200, 1, 1),
                                     json_schema_extra={
                                         "pattern": r"^(2[01][0-9]{2}-|2200-01-01$)"}),
                      IsoText]
#: An instant as written; ``params.instant`` then reads one without an offset as China time.
Instant = Annotated[dt.datetime, IsoText]
#: Visit-count dates (their range is checked by ``visits.count_range``).
CountDate = Annotated[dt.date, IsoText]
AwardId = Annotated[int, Field(ge=1, le=2**62)]
ReportId = Annotated[int, Field(ge=1, le=2**63 - 1)]
ReportStatusFilter = Literal["open", "resolved", "rejected", "all"]
#: At most ``settings.max_page_size`` (checked by the service; the schema states it).
ReportLimit = Annotated[int, Field(ge=1)]
ReportCursor = Annotated[str, StringConstraints(pattern=CURSOR_PATTERN)]

# Spelled out for the OpenAPI enums; tests check they equal models.WORKER_TYPES / REPORT_KINDS.
WorkerType = Literal["sanitation", "delivery", "courier", "truck_driver", "traffic", "other"]
ReportKind = Literal["closed", "amenity_missing", "amenity_broken", "wrong_location", "moved",
                     "other"]
Group = Literal["station", "district", "worker_type", "day", "week", "month"]
ReportAction = Literal["resolved", "rejected", "reopened"]

# --------------------------------------------------------------------------- stops

#: A schedule longer than this is a data error, not a bus.
MAX_STOPS = 20
#: A stop's hours are a bus timetable, not a station's year: shorter than a station's.
MAX_STOP_HOURS_LENGTH = 200
#: Stops are planned at most this far ahead (``valid_from`` / ``valid_to``).
MAX_AHEAD_DAYS = 730
#: Dates in the schema: the overlap check and the calendar arithmetic need sane years.
_FIRST_DAY, _LAST_DAY = dt.date(2000, 1, 1), dt.date(2199, 12, 31)


class StopIn(BaseModel):
    """One stop as an editor sends it."""

    name: PlainText = Field(min_length=1, max_length=100, description="where the bus parks")
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    opening_hours: str = Field(min_length=1, max_length=MAX_STOP_HOURS_LENGTH,
                               description="OSM opening_hours of this stop, e.g. Mo-Fr 10:00-16:00")
    valid_from: dt.date | None = Field(default=None, ge=_FIRST_DAY, le=_LAST_DAY, description=(
        f"first day (local), inclusive; at most {MAX_AHEAD_DAYS} days ahead"))
    valid_to: dt.date | None = Field(default=None, ge=_FIRST_DAY, le=_LAST_DAY, description=(
        f"last day (local), inclusive; at most {MAX_AHEAD_DAYS} days ahead"))

    @field_validator("lon", "lat")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("opening_hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        try:
            return validate_hours(v)
        except HoursError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _range(self) -> StopIn:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


class ScheduleIn(BaseModel):
    """A whole schedule; ``version`` is the station's (or send ``If-Match``)."""

    stops: list[StopIn] = Field(max_length=MAX_STOPS)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class StopOut(BaseModel):
    seq: int = Field(description="order in the schedule, from 1")
    name: str
    lon: float
    lat: float
    crs: Crs
    opening_hours: str
    valid_from: dt.date | None
    valid_to: dt.date | None


class ScheduleOut(BaseModel):
    code: str
    version: int
    stops: list[StopOut]
    current_stop: StopOut | None = Field(
        description="where it is at `at` (default now), if anywhere")
    at: dt.datetime


# --------------------------------------------------------------------------- check-ins


class CheckinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_type: WorkerType | None = Field(default=None, description="optional; nothing else "
                                           "about the worker is asked or kept")


class CountedOut(BaseModel):
    station: str
    counted: bool = Field(description="false: this device already did so here within the "
                                      "de-duplication window, and nothing was stored")
    at: dt.datetime | None = Field(description="when it was counted")
    duplicate_of: dt.datetime | None = Field(description="the earlier one it repeats")


#: What ``replaces`` means on a confirmation and on a report.
REPLACES = ("when this device's earlier word here (a confirmation or a 'closed' report "
            "within the de-duplication window) was said, which this one replaced: that one "
            "is kept but no longer counted; null when none")


class ConfirmationOut(CountedOut):
    replaces: dt.datetime | None = Field(default=None, description=REPLACES)


class CheckinOut(CountedOut):
    worker_type: WorkerType | None


class CheckinLink(BaseModel):
    station: str
    url: str = Field(description="the stable link to print as the station's QR code")
    qr_svg: str | None = Field(description="that link as a QR code (SVG), when available")


class CountRow(BaseModel):
    key: str | None = Field(description="station code, district code, worker type, day "
                                        "(2026-05-04), ISO week (2026-W19) or month (2026-05); "
                                        "null: no district / type not given")
    label: str | None = Field(description="station or district name, type label, the "
                                          "Monday a week starts on, or the days a partial "
                                          "month counts ('2026-12-01 – 2026-12-07 (partial "
                                          "month)')")
    count: int
    partial: bool = Field(default=False, description="week and month rows: the range "
                                                     "covers only part of this week or month")


class VisitCounts(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    group: Group
    area: str | None
    station: str | None
    from_: dt.date = Field(alias="from", description="first local day, inclusive")
    to: dt.date = Field(description="last local day, inclusive")
    timezone: str
    total: int
    rows: list[CountRow]


# --------------------------------------------------------------------------- reports

#: :func:`_comment`'s rule as a JSON Schema pattern.
_COMMENT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def _comment(value: str | None) -> str | None:
    """Free text from a phone: line breaks are fine, other control characters are not."""
    if value is None:
        return None
    if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value.strip() or None


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ReportKind
    amenity: str | None = Field(default=None, max_length=64, description=(
        "amenity code; required for amenity_missing / amenity_broken, refused otherwise"))
    comment: str | None = Field(default=None, max_length=1000,
                                json_schema_extra={"pattern": _COMMENT_PATTERN})
    photo: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description=(
        "the sha of one photo sent with POST /v1/report-photos; shown to the public only "
        "once a clerk approves it"))

    _check_comment = field_validator("comment")(_comment)


class ReportOut(BaseModel):
    id: int
    station: str
    station_name: str
    district_code: str | None
    station_reported_closed: bool = Field(description="the station is marked reported closed")
    kind: ReportKind
    amenity: str | None
    comment: str | None
    status: Literal["open", "resolved", "rejected"]
    version: int
    created_at: dt.datetime
    superseded_at: dt.datetime | None = Field(
        default=None, description="a later word from the same device (a confirmation or "
                                  "another 'closed' report) replaced this one: kept for the "
                                  "record, not counted, not in the open queue")


class ReportCreated(ReportOut):
    replaces: dt.datetime | None = Field(default=None, description=REPLACES)
    counted: bool = Field(default=True, description=(
        "false: this device already reported this (same station, kind and amenity, still "
        "open) within the de-duplication window; nothing was stored and the report shown "
        "is the earlier one. A repeated 'closed' is counted once by replacing instead "
        "(see replaces)"))
    duplicate_of: dt.datetime | None = Field(default=None, description=(
        "when the earlier report this one repeats was made; null when counted"))


class ResolutionOut(BaseModel):
    action: ReportAction
    note: str | None
    editor: str
    created_at: dt.datetime


class ReportDetail(ReportOut):
    resolutions: list[ResolutionOut] = Field(description="every decision, oldest first")


class ReportPage(BaseModel):
    items: list[ReportOut]
    count: int
    next_cursor: str | None


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: ReportAction = Field(description=(
        "resolved: dealt with (e.g. the listing was fixed through the station API); "
        "rejected: the report was wrong; reopened: back to open"))
    note: str | None = Field(default=None, max_length=1000,
                             json_schema_extra={"pattern": _COMMENT_PATTERN})
    version: int = Field(ge=1, le=2**31 - 1, description="the report's current version")

    _check_note = field_validator("note")(_comment)
