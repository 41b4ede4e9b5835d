"""The station form's fields: labels, the form's text to an API body, errors in Chinese.

The console saves through the same service functions and the same body models as
``POST/PUT /v1/stations`` (:class:`StationCreate`, :class:`StationReplace`), so what the
API refuses the form refuses too. This module only translates: the typed text into the
body the API would get (hours typed in Chinese converted as the import converts them),
and the API's field names and messages into the clerk's language, next to the field.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from geo_service.domain.catalogue import (
    AMENITY_BY_CODE,
    HOST_TYPE_ZH,
    STATUS_ZH,
    HostType,
    Status,
)
from geo_service.domain.coords import Crs
from geo_service.domain.errors import GeoServiceError
from geo_service.domain.schemas import STATION_FIELDS, StationCreate, StationReplace
from geo_service.domain.sheet import SHEET_COLUMNS
from geo_service.hours.chinese import ChineseHoursError, to_osm

#: The coordinate systems the form offers: what the clerk copies from Amap first.
FORM_CRS: tuple[Crs, ...] = (Crs.GCJ02, Crs.WGS84)
_SHEET = {c.key: c.header for c in SHEET_COLUMNS}
#: Each field as people read it (the import sheet's Chinese column names where it has one).
LABELS: dict[str, tuple[str, str]] = {
    "code": (_SHEET["code"], "Station code"),
    "name": (_SHEET["name"], "Name"),
    "name_en": ("英文名称", "English name"),
    "address": (_SHEET["address"], "Address"),
    "province": ("省", "Province"), "province_code": ("省代码", "Province code"),
    "city": ("市", "City"), "city_code": ("市代码", "City code"),
    "district": ("区县", "District"), "district_code": (_SHEET["district_ref"], "District"),
    "street": (_SHEET["street"], "Street / township"),
    "street_code": (_SHEET["street"], "Street / township"),
    "lon": (_SHEET["lon"], "Longitude"), "lat": (_SHEET["lat"], "Latitude"),
    "crs": (_SHEET["crs"], "Coordinate system"),
    "host_type": (_SHEET["host_type"], "Host type"),
    "status": (_SHEET["status"], "Status"),
    "opening_hours": (_SHEET["opening_hours"], "Opening hours"),
    "timezone": ("时区", "Time zone"),
    "official_workdays": (_SHEET["official_workdays"], "Follows official working days"),
    "phone": (_SHEET["phone"], "Phone"),
    "floor_area_m2": ("面积（平方米）", "Floor area (m²)"),
    "seats": ("座位数", "Seats"),
    "opened_on": ("启用日期", "Opened on"),
    "amenities": ("设施（十个一及其他）", "Amenities (the ten ones and others)"),
    "last_verified_on": (_SHEET["last_verified_on"], "Last verified on"),
    "sample": (_SHEET["sample"], "Sample data"),
    "version": ("版本", "Version"),
    "reason": ("原因", "Reason"),
}
#: Fields whose blank means "not given" (null), as an empty spreadsheet cell does.
_OPTIONAL = ("name_en", "address", "district_code", "street_code", "opening_hours", "phone",
             "floor_area_m2", "seats", "opened_on", "last_verified_on", "official_workdays")
_NUMBERS = {"lon": float, "lat": float, "floor_area_m2": float, "seats": int}
_TRI = {"": None, "yes": True, "no": False}


def label(lang: str, name: str) -> str:
    zh, en = LABELS.get(name, (name, name))
    return zh if lang == "zh" else en


@dataclass
class Parsed:
    """The form as an API body (coordinates in ``crs``), or the problems found by field;
    ``hours_given``: the Chinese hours text the clerk typed, when it was converted."""

    body: dict[str, Any]
    crs: Crs
    errors: dict[str, str] = field(default_factory=dict)
    hours_given: str | None = None


def typed_hours(text: str) -> tuple[str | None, str | None]:
    """Hours as typed: OSM syntax as it is (the model checks it), an unambiguous Chinese
    form converted as the import converts it (``hours/chinese``); (value, Chinese given)."""
    text = text.strip()
    if not text:
        return None, None
    if text.isascii() or '"' in text:
        return text, None
    norm = unicodedata.normalize("NFKC", text)
    if norm.isascii():
        return norm, None
    return to_osm(text), text


def parse_form(form: Mapping[str, Any], *, new: bool) -> Parsed:
    """The submitted form (``form[name]``: text; ``amenities``: a list) as a body for
    :class:`StationCreate` (``new``) or :class:`StationReplace`, validated by that model."""
    errors: dict[str, str] = {}
    try:
        crs = Crs(str(form.get("crs") or Crs.GCJ02.value))
    except ValueError:
        crs, errors["crs"] = Crs.GCJ02, "请选择 GCJ-02 或 WGS-84"
    if crs not in FORM_CRS:
        crs, errors["crs"] = Crs.GCJ02, "请选择 GCJ-02 或 WGS-84"
    body: dict[str, Any] = {}
    hours_given: str | None = None
    names = ("code", *STATION_FIELDS, "version") if new else (*STATION_FIELDS, "version")
    for name in names:
        if name in ("province", "province_code", "city", "city_code", "district", "street"):
            continue  # filled from the point by the service (stations.service.fill_admin)
        raw = form.get(name)
        if name == "amenities":
            body[name] = [str(v) for v in (raw or [])]
            continue
        text = "" if raw is None else str(raw).strip()
        if name == "version" and new:
            continue
        if name == "sample":
            body[name] = text in ("1", "on", "true")
        elif name == "official_workdays":
            body[name] = _TRI.get(text, text)
        elif name in _NUMBERS and text:
            try:
                body[name] = _NUMBERS[name](unicodedata.normalize("NFKC", text))
            except ValueError:
                errors[name] = "须为整数" if _NUMBERS[name] is int else "须为数字"
        elif name == "opening_hours":
            try:
                body[name], given = typed_hours(text)
            except ChineseHoursError:
                errors[name] = hours_problem()
                continue
            hours_given = given
        elif name == "version":
            body[name] = int(text) if text.isdigit() else None
        elif text or name not in _OPTIONAL:
            body[name] = text
        else:
            body[name] = None
    parsed = Parsed(body, crs, errors, hours_given)
    model = StationCreate if new else StationReplace
    try:
        checked = model.model_validate({k: v for k, v in body.items() if k not in errors})
    except ValidationError as exc:
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "form"
            parsed.errors.setdefault(name, pydantic_problem(name, err))
        return parsed
    if not errors:
        parsed.body = checked.model_dump()
    return parsed


def hours_problem() -> str:
    return ("无法识别这个营业时间。可以这样写：周一至周五 9:00-17:00；周末休息、每天8:00-20:00、"
            "24小时，或 OSM 格式 Mo-Fr 09:00-17:00")


_PATTERNS = {
    "code": "只能用字母、数字和 - _ .，以字母或数字开头，最长 64 位",
    "phone": "电话号码只能有数字、+、-、括号和空格，3 到 32 位",
}


def pydantic_problem(name: str, err: Mapping[str, Any]) -> str:
    """A body model's complaint about one field, in Chinese."""
    kind, ctx = str(err.get("type", "")), err.get("ctx") or {}
    if name == "opening_hours" and kind == "value_error":
        return hours_problem()
    if name == "timezone":
        return "时区名称无效（例如 Asia/Shanghai）"
    if name == "amenities":
        return "包含未知的设施"
    simple = {
        "missing": "必填", "string_too_short": "必填",
        "float_parsing": "须为数字", "float_type": "须为数字", "finite_number": "须为数字",
        "int_parsing": "须为整数", "int_type": "须为整数", "int_from_float": "须为整数",
        "date_parsing": "日期格式应为 年-月-日（如 2026-05-04）",
        "date_from_datetime_parsing": "日期格式应为 年-月-日（如 2026-05-04）",
        "date_type": "日期格式应为 年-月-日（如 2026-05-04）",
        "enum": "请从列表中选择", "bool_type": "请选择是或否",
    }
    if kind in simple:
        return simple[kind]
    if kind == "greater_than_equal":
        return f"不能小于 {_number(ctx.get('ge'))}"
    if kind == "less_than_equal":
        return f"不能大于 {_number(ctx.get('le'))}"
    if kind == "string_too_long":
        return f"太长了（最多 {ctx.get('max_length')} 个字）"
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(name, "格式不对")
    if "control characters" in str(err.get("msg", "")):
        return "不能包含控制字符（如换行）"
    return f"输入有误（{err.get('msg', kind)}）"


def _number(value: Any) -> str:
    """A limit as people write it (180, not 180.0)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def service_problems(exc: GeoServiceError, area: str | None) -> dict[str, str]:
    """A service refusal (:mod:`geo_service.stations.service`) by form field, in Chinese."""
    out: dict[str, str] = {}
    for name, problem in exc.fields or [("form", exc.message)]:
        if problem == "already exists":
            text = "这个编码已被其他驿站使用"
        elif "outside the key's area" in problem:
            text = f"不在您的管辖区域（{area}）内"
        elif "does not contain the point, which lies in" in problem:
            text = f"与坐标不符：该点位于 {problem.rsplit(' ', 1)[-1]}"
        elif "does not contain the point" in problem:
            text = "与坐标不符：该区域不包含这个点"
        elif name == "timezone":
            text = "数据库不认识这个时区"
        elif problem.startswith("stale"):
            text = "此驿站已被他人修改"
        else:
            text = f"输入有误（{problem}）"
        # Province and city codes are not on the form: the district stands for them.
        out.setdefault("district_code" if name in ("province_code", "city_code") else name,
                       text)
    return out


def form_values(station: Mapping[str, Any]) -> dict[str, Any]:
    """A stored station (public form, coordinates already in the form's system) as the
    form's values."""
    values: dict[str, Any] = {}
    for name in ("code", *STATION_FIELDS, "version"):
        value = station.get(name)
        if name == "official_workdays":
            values[name] = "" if value is None else ("yes" if value else "no")
        elif name in ("lon", "lat") and value is not None:
            values[name] = f"{float(value):.6f}"
        elif name == "amenities":
            values[name] = list(value or [])
        elif isinstance(value, bool):
            values[name] = value
        else:
            values[name] = "" if value is None else str(getattr(value, "value", value))
    return values


def submitted_values(form: Mapping[str, Any]) -> dict[str, Any]:
    """What the clerk typed, kept as typed for the form shown again."""
    values: dict[str, Any] = {k: str(v) for k, v in form.items()
                              if k != "amenities" and isinstance(v, str)}
    values["amenities"] = [str(v) for v in form.get("amenities") or []]
    values["sample"] = str(form.get("sample", "")) in ("1", "on", "true")
    return values


def shown(lang: str, name: str, value: Any) -> str:
    """A field's value as the conflict table shows it."""
    if value is None or value == "":
        return "—"
    if name == "amenities":
        names = [AMENITY_BY_CODE[c].label_zh if lang == "zh" else AMENITY_BY_CODE[c].label_en
                 for c in sorted(value) if c in AMENITY_BY_CODE]
        return "、".join(names) or "—"
    if name in ("host_type", "status", "official_workdays"):
        key = {True: "yes", False: "no"}.get(value, value) if name == "official_workdays" \
            else str(getattr(value, "value", value))
        return dict(choices(lang, name)).get(key, str(key))
    if name in ("lon", "lat"):
        return f"{float(value):.6f}"
    if isinstance(value, bool):
        return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
    return str(getattr(value, "value", value))


def choices(lang: str, name: str) -> list[tuple[str, str]]:
    """The options of a select field: (value, label)."""
    if name == "host_type":
        return [(h.value, HOST_TYPE_ZH[h] if lang == "zh" else h.value.replace("_", " "))
                for h in HostType]
    if name == "status":
        return [(s.value, STATUS_ZH[s] if lang == "zh" else s.value.replace("_", " "))
                for s in Status]
    if name == "official_workdays":
        return [("", "按建设类型默认" if lang == "zh" else "host type's default"),
                ("yes", "是" if lang == "zh" else "yes"), ("no", "否" if lang == "zh" else "no")]
    return [(c.value, "GCJ-02（高德、腾讯）" if c is Crs.GCJ02 else "WGS-84（GPS）")
            for c in FORM_CRS]
