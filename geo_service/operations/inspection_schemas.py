"""Inspection and award bodies and answers, for the API and ``geo-service inspections``.

The rules an inspector's record must meet (all ten items named, extras from
the catalogue, photos referenced not embedded, a day not in the future in
China time) are here, so ``inspections record FILE`` refuses what
``POST /v1/stations/{code}/inspections`` refuses, naming the same field.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    field_validator,
)

from geo_service.domain.catalogue import AMENITY_BY_CODE, TEN_ONES
from geo_service.domain.params import CHINA_TZ
from geo_service.domain.schemas import AwardLevel, JsonBool, no_control_chars
from geo_service.hours.compiler import HoursError, validate_hours

#: China has one civil time zone; "today" for inspection dates and overdue lists.
CHINA = ZoneInfo(CHINA_TZ)


def china_today() -> dt.date:
    return dt.datetime.now(CHINA).date()


ItemState = Literal["present", "missing", "broken"]

# One required field per ten-ones item, from the catalogue: a missing or unknown
# code is then a 422 naming ``items.<code>``, and the schema lists all ten.
TenOnesItems = create_model(  # type: ignore[call-overload]
    "TenOnesItems",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Each of the ten ones as the inspector found it; broken counts as not available.",
    **{a.code: (ItemState, Field(description=f"{a.label_zh} / {a.label_en}")) for a in TEN_ONES},
)


def _extra_code(code: str) -> str:
    amenity = AMENITY_BY_CODE.get(code)
    if amenity is None:
        raise ValueError(f"unknown amenity code {code!r}")
    if amenity.ten_ones:
        raise ValueError(f"{code} is one of the ten ones: report it in items")
    return code


_FILE_NAME = re.compile(r"^[^\x00-\x1f\x7f/\\:*?\"<>|]+$")


def _photo_ref(ref: str) -> str:
    """A photo is referenced, never embedded: an http(s) URL or a plain file name."""
    if ref.lower().startswith(("http://", "https://")):
        try:
            host = urlsplit(ref).hostname
        except ValueError:
            host = None
        if not host or re.search(r"[\s\x00-\x1f\x7f]", ref):
            raise ValueError("not a valid http(s) URL")
        return ref
    if not _FILE_NAME.match(ref) or set(ref) == {"."}:
        raise ValueError("must be an http(s) URL or a plain file name (no path, no data: URI)")
    return ref


def _remarks(text: str | None) -> str | None:
    """Line breaks are fine in remarks; other control characters are not."""
    if text is not None and re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text):
        raise ValueError("must not contain control characters other than line breaks")
    return text


ExtraCode = Annotated[str, StringConstraints(max_length=64), AfterValidator(_extra_code)]
PhotoRef = Annotated[str, StringConstraints(min_length=1, max_length=300,
                                            strip_whitespace=True), AfterValidator(_photo_ref)]


class InspectionCreate(BaseModel):
    """One visit by an inspector; the inspector is the key's name."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    inspected_on: dt.date = Field(description="day of the visit, China time; not in the future")
    items: TenOnesItems
    extras: Annotated[list[ExtraCode], Field(
        max_length=30, description="amenities beyond the ten ones that were seen")] = []
    hours_observed: Annotated[str | None, Field(
        min_length=1, max_length=1000, description="opening hours seen, OSM syntax")] = None
    photos: Annotated[list[PhotoRef], Field(
        max_length=20, description="http(s) URLs or file names of photos (no blobs), or the "
                                   "sha of a photo uploaded with POST /v1/photos (it must "
                                   "exist)")] = []
    remarks: Annotated[str | None, Field(max_length=2000), AfterValidator(_remarks)] = None
    score: Annotated[float | None, Field(ge=0, le=100, allow_inf_nan=False)] = None
    sample: JsonBool = False

    @field_validator("inspected_on")
    @classmethod
    def _date(cls, value: dt.date) -> dt.date:
        if value < dt.date(2000, 1, 1):
            raise ValueError("must not be before 2000-01-01")
        if value > china_today():
            raise ValueError("must not be in the future (China time)")
        return value

    @field_validator("extras")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("hours_observed")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        try:
            return None if value is None else validate_hours(value)
        except HoursError as exc:
            raise ValueError(str(exc)) from None


class InspectionPublic(BaseModel):
    id: int
    station_code: str
    inspected_on: dt.date
    items: dict[str, ItemState]
    extras: list[str]
    hours_observed: str | None
    photos: list[str]
    remarks: str | None
    score: float | None
    ten_ones_count: int = Field(description="ten-ones items present (broken ones do not count)")
    amenities: list[str] = Field(description="what was available: items present plus extras")
    current: bool = Field(description="this is the station's latest inspection")
    created_at: dt.datetime
    sample: bool


class InspectionCreated(InspectionPublic):
    inspector: str = Field(description="name of the key that recorded it (not in the public "
                                       "history)")
    applied: bool = Field(description="it became the station's verified amenities and date")
    station_version: int = Field(description="the station's version after this write")


class InspectionPage(BaseModel):
    station_code: str
    inspections: list[InspectionPublic]
    count: int
    next_cursor: str | None


class OverdueStation(BaseModel):
    code: str
    name: str
    status: str
    district_code: str | None
    district: str | None
    last_inspected_on: dt.date | None = Field(description="null: never inspected")
    last_verified_on: dt.date | None = Field(
        default=None, description="the later of the last inspection and the imported "
                                  "最近核实日期: what overdue is judged on; null: neither")
    days_since: int | None = Field(description="days since last_verified_on; null: never")
    sample: bool


class OverdueList(BaseModel):
    area: str | None
    days: int
    as_of: dt.date
    total: int = Field(description="all overdue stations; `stations` holds the first `limit`")
    count: int
    stations: list[OverdueStation]


class TrendRow(BaseModel):
    district_code: str | None
    district: str | None
    period: str = Field(description="2025-06, 2025-Q2 or 2025")
    period_start: dt.date
    inspections: int
    stations: int = Field(description="distinct stations inspected")
    mean_ten_ones: float
    all_ten_share: float = Field(description="share of inspections with all ten present")
    mean_score: float | None
    scored: int = Field(description="inspections that carried a score")


class Trend(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    area: str | None
    period: str
    from_: dt.date | None = Field(alias="from")
    to: dt.date | None
    count: int
    rows: list[TrendRow]


class MissingItem(BaseModel):
    code: str
    label_zh: str
    label_en: str
    missing: int
    broken: int
    total: int


class MissingItems(BaseModel):
    area: str | None
    days: int | None
    as_of: dt.date
    stations: int = Field(description="stations whose latest inspection was counted")
    items: list[MissingItem] = Field(description="most often missing or broken first")


class AwardCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Annotated[str, StringConstraints(min_length=1, max_length=200),
                     AfterValidator(no_control_chars)]
    level: AwardLevel
    year: Annotated[int, Field(ge=1949, le=2200)]
    sample: JsonBool = False

    @field_validator("year")
    @classmethod
    def _year(cls, value: int) -> int:
        if value > china_today().year + 1:
            raise ValueError("must not be later than next year")
        return value


class AwardEntry(BaseModel):
    id: int
    title: str
    level: AwardLevel
    year: int
    created_at: dt.datetime
    sample: bool


class AwardPublic(AwardEntry):
    station_code: str


class AwardList(BaseModel):
    station_code: str
    awards: list[AwardEntry] = Field(description="newest first")
    count: int
