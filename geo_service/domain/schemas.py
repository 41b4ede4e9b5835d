"""Request and response models (separate Create / Replace / Patch / Public shapes).

Validation here is the first line against bad input: every rule produces a
422 naming the field. Rules that need the opening-hours parser or the
amenity catalogue live here too so the importer and the API share them.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_type_hints

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    create_model,
    field_validator,
)

from geo_service.domain.catalogue import AMENITY_BY_CODE, HostType, Status
from geo_service.domain.coords import Crs
from geo_service.domain.errors import clip
from geo_service.hours.compiler import (
    MAX_EXPRESSION_LENGTH,
    HoursError,
    validate_hours,
    validate_timezone,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: :func:`no_control_chars` as a JSON Schema pattern, so the published schema says it too.
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f]*$"


def no_control_chars(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL, and no station field needs control characters."""
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


_ISO_START = re.compile(r"[0-9]{4}-")


def iso_text(value: Any) -> Any:
    """Dates and instants in a query are ISO 8601 text, as the schema says; without
    this pydantic reads ``0.5`` as a Unix time and ``0`` as 1970-01-01."""
    if isinstance(value, str) and not _ISO_START.match(value):
        raise ValueError("must be an ISO 8601 date or date-time, e.g. 2026-05-04T12:00:00+08:00")
    return value


def json_integer(value: Any) -> Any:
    """A JSON Schema integer: a whole number, ``384.0`` included, but never ``true`` or
    ``"5"`` (pydantic's lax mode would take both, which the schema refuses)."""
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: An ``int`` in a JSON body that accepts exactly what the published schema does.
JsonInt = Annotated[int, BeforeValidator(json_integer)]


def json_boolean(value: Any) -> Any:
    """A JSON Schema boolean: ``true`` or ``false``, never ``0``, ``1`` or ``"yes"``
    (pydantic's lax mode would take them, which the schema refuses). Imports turn
    spreadsheet yes/no cells into booleans before validating."""
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


#: A ``bool`` in a JSON body that accepts exactly what the published schema does.
JsonBool = Annotated[bool, BeforeValidator(json_boolean)]

#: Validation context of a file import: cells are text (CSV) or spreadsheet values, so
#: ``"109.5"`` is a longitude there, while a JSON body must send a number.
IMPORT_CONTEXT: dict[str, bool] = {"import": True}
_NUMBERS = ("lon", "lat", "floor_area_m2", "seats", "version")
_DATES = ("opened_on", "last_verified_on")


def json_types(value: Any, info: ValidationInfo) -> Any:
    """A JSON body's numbers and dates as the published schema types them.

    pydantic's lax mode reads ``"1.5"`` as a number and ``0`` as the date 1970-01-01,
    which the schema refuses (the contract fuzzer found both accepted on PUT). Imports
    validate with :data:`IMPORT_CONTEXT` and keep the lax reading their cells need.
    """
    if value is None or (info.context or {}).get("import"):
        return value
    if info.field_name in _DATES:
        if isinstance(value, dt.date):
            return value
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date, e.g. 2026-05-04")
        return iso_text(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value

#: For ``Annotated`` query dates and instants (``Annotated[dt.date, IsoText, Query(...)]``).
IsoText = BeforeValidator(iso_text)

#: Free text that reaches PostgreSQL: any string without control characters (a NUL
#: would fail the insert with a 500; line breaks have no place in a name).
PlainText = Annotated[str, AfterValidator(no_control_chars),
                      Field(json_schema_extra={"pattern": NO_CONTROL_PATTERN})]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
Text200 = Annotated[PlainText, StringConstraints(min_length=1, max_length=200,
                                                 strip_whitespace=True)]
OptText = Annotated[PlainText | None, StringConstraints(max_length=300, strip_whitespace=True)]
AreaCode = Annotated[str | None, StringConstraints(pattern=r"^[0-9A-Za-z]{1,20}$")]
Phone = Annotated[str | None, StringConstraints(pattern=r"^[0-9+\-() ]{3,32}$")]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]



def check_amenities(codes: list[str]) -> list[str]:
    """Reject unknown codes; return them de-duplicated in input order."""
    unknown = [c for c in codes if c not in AMENITY_BY_CODE]
    if unknown:
        raise ValueError(f"unknown amenity code(s): {clip(', '.join(sorted(set(unknown))))}")
    return list(dict.fromkeys(codes))


def _hours(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return validate_hours(value)
    except HoursError as exc:
        raise ValueError(str(exc)) from None


def blank_hours(value: Any) -> Any:
    """A blank ``opening_hours`` means "unknown", as null or an absent field does.

    Spreadsheets and OSM extracts leave the cell empty when nobody knows the hours;
    the parser would read blank as ``24/7``, the worst possible guess. Longer blanks
    than the field allows stay strings and are refused by length, as the schema says.
    """
    if isinstance(value, str) and len(value) <= MAX_EXPRESSION_LENGTH and not value.strip():
        return None
    return value


#: OSM ``opening_hours``; null, absent or blank = the hours are unknown.
OpeningHoursField = Annotated[
    Annotated[str, StringConstraints(max_length=MAX_EXPRESSION_LENGTH)] | None,
    BeforeValidator(blank_hours),
    Field(description="OpenStreetMap opening_hours syntax; null, absent or blank when the "
                      "hours are unknown (open_now is then null, never a guess)")]


def _tz(value: str) -> str:
    try:
        return validate_timezone(value)
    except HoursError as exc:
        raise ValueError(str(exc)) from None


class _StationBody(BaseModel):
    """Fields a client may set; coordinates are in the request's ``crs``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text200
    name_en: OptText = None
    address: OptText = None
    province: OptText = None
    province_code: AreaCode = None
    city: OptText = None
    city_code: AreaCode = None
    district: OptText = None
    district_code: AreaCode = None
    street: OptText = None
    street_code: AreaCode = None
    lon: Lon
    lat: Lat
    host_type: HostType
    status: Status = Status.OPEN
    opening_hours: OpeningHoursField = None
    timezone: str = "Asia/Shanghai"
    official_workdays: JsonBool | None = Field(
        default=None,
        description="follows the State Council's working-day arrangement: open with weekday "
                    "hours on make-up working days (调休上班) and closed as on a Sunday on "
                    "official days off; null = the host type's default (on for bank_branch, "
                    "party_service_centre, union_built)")
    phone: Phone = None
    floor_area_m2: Annotated[float | None, Field(ge=0, le=100_000, allow_inf_nan=False)] = None
    seats: Annotated[int | None, Field(ge=0, le=10_000)] = None
    opened_on: dt.date | None = None
    amenities: Annotated[list[str], Field(max_length=64)] = []
    last_verified_on: dt.date | None = None
    sample: JsonBool = False

    _plain = field_validator("*")(no_control_chars)
    _json = field_validator(*_NUMBERS[:-1], *_DATES, mode="before")(json_types)
    _check_hours = field_validator("opening_hours")(_hours)
    _check_tz = field_validator("timezone")(_tz)
    _check_amenities = field_validator("amenities")(check_amenities)


class StationCreate(_StationBody):
    """A new station; ``code`` is its stable public id."""

    code: Code


class StationReplace(_StationBody):
    """A full replacement; ``version`` (or ``If-Match``) must be the current one."""

    version: Annotated[int | None, Field(ge=1, le=2**31 - 1)] = None

    _json_version = field_validator("version", mode="before")(json_types)


#: The fields a client sets on a station, in order. Declared once, by ``_StationBody``
#: (name, type, limits, default); the patch model, the service's merge, the import's
#: columns and the stored columns (``stations/queries.WRITE_COLUMNS``) derive from it.
STATION_FIELDS: tuple[str, ...] = tuple(_StationBody.model_fields)
#: Those a new station must have.
REQUIRED_STATION_FIELDS: tuple[str, ...] = tuple(
    n for n, f in _StationBody.model_fields.items() if f.is_required())
#: Those a patch may leave out but never set to null: required, or a default other than null.
NOT_NULL_STATION_FIELDS: tuple[str, ...] = tuple(
    n for n, f in _StationBody.model_fields.items() if f.is_required() or f.default is not None)


class _PatchRules(BaseModel):
    """A partial edit: only the fields present change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: Annotated[int | None, Field(ge=1, le=2**31 - 1)] = None

    # Every field may be absent, so these let None through (the router refuses
    # null for NOT_NULL_STATION_FIELDS by name).
    _plain = field_validator("*")(no_control_chars)
    _json = field_validator(*_NUMBERS, *_DATES, mode="before", check_fields=False)(json_types)

    @field_validator("opening_hours", check_fields=False)
    @classmethod
    def _check_hours(cls, v: str | None) -> str | None:
        return _hours(v)  # null clears the hours: they become unknown

    @field_validator("timezone", check_fields=False)
    @classmethod
    def _check_tz(cls, v: str | None) -> str | None:
        return None if v is None else _tz(v)

    @field_validator("amenities", check_fields=False)
    @classmethod
    def _check_amenities(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else check_amenities(v)


def _optional_fields(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s fields with their types and limits, each optional (default None)."""
    hints = get_type_hints(model, include_extras=True)
    return {name: (hints[name] if name not in NOT_NULL_STATION_FIELDS else hints[name] | None,
                   None) for name in model.model_fields}


if TYPE_CHECKING:  # what mypy needs to know; the fields are the body's, made optional
    class StationPatch(_PatchRules):
        """A partial edit: only the fields present change."""
else:
    StationPatch = create_model("StationPatch", __base__=_PatchRules, __module__=__name__,
                                __doc__=_PatchRules.__doc__, **_optional_fields(_StationBody))


class TenOnes(BaseModel):
    count: int = Field(description="how many of the ten ones the station has")
    of: int = 10
    missing: list[str] = Field(description="codes of the ten-ones items it lacks")


class StationLinks(BaseModel):
    """Deep links that open the station in each app, in that app's coordinate system."""

    amap: str = Field(description="Amap marker (GCJ-02)")
    amap_ride: str = Field(description="Amap riding navigation to the station (GCJ-02)")
    baidu: str = Field(description="Baidu Maps marker page (BD-09)")
    baidu_ride: str = Field(description="Baidu Maps app riding navigation (BD-09)")
    tencent: str = Field(description="Tencent Maps marker (GCJ-02)")
    tencent_ride: str = Field(description="Tencent Maps bike route plan (GCJ-02)")
    geo: str = Field(description="RFC 5870 geo: URI (WGS-84) for any map app")


#: Spelled out for the OpenAPI enum; a test checks it equals ``models.AWARD_LEVELS``.
AwardLevel = Literal["national", "provincial", "city"]


class Award(BaseModel):
    """A recognition the station carries, e.g. 最美户外劳动者服务站点."""

    title: str
    level: AwardLevel
    year: int


class StationPublic(BaseModel):
    """A station as the API shows it; ``lon``/``lat`` are in ``crs``."""

    code: str
    name: str
    name_en: str | None
    address: str | None
    province: str | None
    province_code: str | None
    city: str | None
    city_code: str | None
    district: str | None
    district_code: str | None
    street: str | None
    street_code: str | None
    lon: float
    lat: float
    crs: Crs
    host_type: HostType
    status: Status
    opening_hours: str | None = Field(
        description="OpenStreetMap opening_hours syntax; null when the hours are unknown")
    timezone: str
    official_workdays: bool | None = Field(
        description="follows make-up working days and official days off; null = the host "
                    "type's default")
    phone: str | None
    floor_area_m2: float | None
    seats: int | None
    opened_on: dt.date | None
    amenities: list[str]
    ten_ones: TenOnes
    last_verified_on: dt.date | None
    sample: bool = Field(description="true for generated sample data, not a real station")
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None
    version: int
    links: StationLinks
    reported_closed: bool = Field(
        description="enough independent workers reported it closed recently; shown, not "
                    "hidden, until an editor resolves the reports")
    reported_closed_at: dt.datetime | None
    last_confirmed_at: dt.datetime | None = Field(
        description="when a worker last confirmed with one tap that it is as listed "
                    "(beside last_verified_on, the inspection date)")
    awards: list[Award] = Field(description="recognitions, newest first")


class OpenState(BaseModel):
    """Whether a station is open at an instant and until when: a nearest result's, and a
    station page's (the courier app's "营业至 22:00" line)."""

    open_now: bool | None = Field(
        description="open at `at`; null when the hours cannot tell (no hours on record, an "
                    "'unknown' rule, or a dated rule past its horizon)")
    next_change: dt.datetime | None = Field(description="when open_now next flips, station time")
    hours_provisional: bool = Field(
        default=False,
        description="open_now rests on a provisional holiday calendar: the year's official "
                    "arrangement (days off, make-up working days) is not known yet, so only "
                    "the statutory holidays count; it may change when it is entered")


class StationDetail(StationPublic, OpenState):
    """One station as its page shows it: everything public, plus the hours for people and
    whether it is open at `at` (now by default)."""

    opening_hours_zh: str = Field(
        description="the hours in plain Chinese (周一至周五 08:00-18:00; 营业时间未知 when "
                    "unknown); a rule with no plain form as written")


class CurrentStop(BaseModel):  # a stop's window is its hours: never unknown
    """The stop a mobile station is at (its lon/lat are the result's)."""

    seq: int
    name: str
    opening_hours: str
    valid_from: dt.date | None
    valid_to: dt.date | None


class RoadLeg(BaseModel):
    """How far a station is by road (``by=walk|ebike``), beside its straight distance."""

    mode: Literal["walk", "ebike"]
    metres: float = Field(description="along the road network, both snaps included")
    minutes: float = Field(description="at the mode's speeds (the snaps at walking speed)")
    straight_m: float = Field(description="the straight (geodesic) distance, as distance_m")
    snap_m: float = Field(description="from the station to its nearest usable road edge")


class NearestStation(StationPublic, OpenState):
    current_stop: CurrentStop | None = Field(
        default=None, description="mobile stations: the stop it is at, at `at`; the result's "
                                  "lon/lat and distance are the stop's")
    distance_m: float = Field(description="geodesic distance on the WGS-84 spheroid, metres")
    bearing_deg: float | None = Field(
        description="azimuth from the query point, degrees clockwise from north"
    )
    road: RoadLeg | None = Field(
        default=None, description="by=walk|ebike only: road metres and minutes; results "
                                  "are then in road order")


class NearestQuery(BaseModel):
    lat: float
    lon: float
    crs: Crs
    k: int
    radius_m: float
    at: dt.datetime
    amenities: list[str]
    open_now: bool
    include_unknown: bool
    host_types: list[str] | None
    statuses: list[str]
    by: Literal["straight", "walk", "ebike"] = Field(
        default="straight", description="the order asked for (absent: straight)")
    snap_m: float | None = Field(
        default=None, description="by road: from the query point to its nearest usable edge")


class NearestResponse(BaseModel):
    query: NearestQuery
    count: int
    results: list[NearestStation]


class StationPage(BaseModel):
    items: list[StationPublic]
    count: int
    next_cursor: str | None


class ImportProblem(BaseModel):
    row: int = Field(description="1-based data row (header excluded) or feature index")
    sheet_row: int | None = Field(
        default=None, description="the row as the spreadsheet shows it (title rows and the "
                                  "header counted; CSV: the record number); null for GeoJSON")
    code: str | None
    field: str
    problem: str
    column: str | None = Field(default=None, description="station import: the column as "
                                                         "the file names it")
    reason_zh: str | None = Field(default=None, description="station import: the reason in "
                                                            "Chinese")
    hint: str | None = Field(default=None, description="station import: what to type instead")


class PreviewRow(BaseModel):
    row: int
    sheet_row: int | None
    code: str
    name: str | None


class PreviewAdd(PreviewRow):
    district: str | None


class FieldChange(BaseModel):
    field: str = Field(description="the station column")
    column: str = Field(description="the column as the file (or the template) names it")
    old: Any
    new: Any


class PreviewUpdate(PreviewRow):
    version: int = Field(description="the stored version the change was read from")
    changes: list[FieldChange]
    moved_m: float | None = Field(description="how far the point moves, metres")


class CrsHint(BaseModel):
    suggest: str
    rows: int
    moved_rows: int
    message_zh: str
    message: str


class ImportPreview(BaseModel):
    fingerprint: str = Field(description="the changes and the stored versions they were read "
                                         "from; a confirmation must match it")
    crs_hint: CrsHint | None = Field(description="points that all move as GCJ-02 read as "
                                                 "WGS-84 would: did you mean GCJ-02?")
    add_count: int
    update_count: int
    unchanged_count: int
    add: list[PreviewAdd] = Field(description="the first rows to add")
    update: list[PreviewUpdate] = Field(description="the first rows to update")
    unchanged: list[PreviewRow] = Field(description="the first unchanged rows")


class DistrictByPoint(BaseModel):
    row: int
    sheet_row: int | None
    given: str = Field(description="the functional zone the file names (高新区 …)")
    district: str | None
    district_code: str


class LikelyDuplicate(BaseModel):
    code: str
    other_code: str
    distance_m: float
    name: str
    other_name: str


class ErrorCount(BaseModel):
    field: str
    problem: str
    count: int


class SkippedRow(BaseModel):
    row: int = Field(description="1-based data row (header excluded)")
    code: str
    reason: str


class ConvertedHours(BaseModel):
    row: int = Field(description="1-based data row (header excluded)")
    code: str
    given: str = Field(description="the hours as the file wrote them (a Chinese form)")
    opening_hours: str = Field(description="the OSM value stored")


class ImportReport(BaseModel):
    format: str
    mode: str
    dry_run: bool
    rows: int
    valid_rows: int
    created: int
    updated: int
    unchanged: int
    written: bool
    import_id: str | None = Field(
        default=None, description="ties this import's audit-trail entries together")
    errors: list[ImportProblem] = Field(
        description="the first problems by row (at most the server's "
                    "max_import_errors_reported, default 100)")
    error_count: int = Field(description="every problem found")
    errors_truncated: bool = Field(description="`errors` lists only the first of them")
    error_counts: list[ErrorCount] = Field(
        description="problems counted by field and problem, most common first (as many "
                    "pairs as errors listed)")
    likely_duplicates: list[LikelyDuplicate] = Field(description="the first pairs found")
    likely_duplicate_count: int
    skipped: list[SkippedRow] = Field(
        default=[], description="station import: rows not imported on purpose (the "
                                "template's example row, code 示例-…)")
    converted_hours: list[ConvertedHours] = Field(
        default=[], description="station import: Chinese opening hours (开放时间) converted "
                                "to OSM syntax, first rows")
    preview: ImportPreview | None = Field(
        default=None, description="station import: what the file adds, updates (field by "
                                  "field) and leaves unchanged; absent when no row reached "
                                  "the database checks")
    ignored_columns: list[str] = Field(
        default=[], description="station import: columns set aside (序号, 备注 …), as "
                                "header (column letter)")
    header_row: int | None = Field(
        default=None, description="station import: the spreadsheet row of the header")
    districts_by_point: list[DistrictByPoint] = Field(
        default=[], description="station import: functional zones in 所属区县 placed in the "
                                "district under the point")


class AmenityPublic(BaseModel):
    code: str
    label_zh: str
    label_en: str
    ten_ones: bool


class AdminAreaPublic(BaseModel):
    code: str
    name: str
    name_en: str | None
    level: str
    parent_code: str | None
    sample: bool
    stations: int

