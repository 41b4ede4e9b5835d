"""The spreadsheet union offices keep: Chinese headers, the values people type, one layout.

One list of columns (:data:`SHEET_COLUMNS`) serves three things so they cannot drift
apart: the station import reads these headers (and their aliases), the template
(``GET /v1/stations:template.xlsx``, ``geo-service template``) writes them with
drop-downs, and the ``union`` export writes published stations in them, so an
exported sheet, edited and imported again, changes only what was edited.

Headers are matched after ``imports.readers.normalise_header``: NFKC (full-width
letters and brackets become plain), spaces and ``*`` required markers removed, bracketed units
dropped (``经度(°)`` is ``经度``), English lower-cased. Values are what people type:
yes/no as ``是/否``, ``有/无``, ``√/×``, ``1/0``, ``Y/N``; host types and statuses by
their Chinese names (:data:`geo_service.domain.catalogue.HOST_TYPE_ZH`, ``STATUS_ZH``) or
codes; a coordinate system per row (``坐标系``) or for the whole file; hours in OSM
syntax or the Chinese forms :mod:`geo_service.hours.chinese` converts.

Pure: plain values in and out, no database. The importer turns a sheet row into the
API's own station fields with :func:`to_station_row` and validates it like any row.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from geo_service.domain.catalogue import (
    AMENITIES,
    AMENITY_BY_CODE,
    AMENITY_WORDS,
    HOST_TYPE_ZH,
    STATUS_ZH,
    TEN_ONES,
    HostType,
    Status,
)
from geo_service.domain.coords import Crs, from_wgs84
from geo_service.domain.errors import clip
from geo_service.domain.schemas import REQUIRED_STATION_FIELDS
from geo_service.hours.chinese import ChineseHoursError, to_osm
from geo_service.hours.compiler import HoursError, validate_hours
from geo_service.imports.readers import normalise_header


@dataclass(frozen=True)
class Column:
    """One column of the union sheet: its key in a row, its Chinese header, its help."""

    key: str
    header: str
    note: str
    values: str = ""
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    width: int = 12


#: Words read as yes and as no in a yes/no column (after NFKC and lower-casing).
YES_WORDS = frozenset({"是", "有", "√", "✓", "✔", "☑", "1", "y", "yes", "true", "t", "对"})
NO_WORDS = frozenset({"否", "无", "没有", "×", "✗", "✘", "✕", "✖", "☐", "0", "n", "no",
                      "false", "f", "x"})
YES_NO_TEXT = "是/否 (also 有/无, √/×, 1/0, Y/N, yes/no, true/false); blank = 否"

#: What each coordinate system is called in a sheet (lower-cased, spaces removed).
CRS_WORDS: dict[str, Crs] = {
    **dict.fromkeys(("wgs-84", "wgs84", "wgs", "gps", "epsg:4326", "4326", "wgs84ll"),
                    Crs.WGS84),
    **dict.fromkeys(("gcj-02", "gcj02", "gcj", "火星坐标", "火星坐标系", "国测局", "国测局坐标",
                     "高德", "高德地图", "腾讯", "腾讯地图", "amap", "tencent"), Crs.GCJ02),
    **dict.fromkeys(("bd-09", "bd09", "bd09ll", "百度", "百度地图", "百度坐标", "baidu"),
                    Crs.BD09),
}
CRS_CHOICES = {Crs.WGS84: "WGS-84", Crs.GCJ02: "GCJ-02", Crs.BD09: "BD-09"}
CRS_TEXT = ("WGS-84 (GPS, 天地图), GCJ-02 (火星坐标: 高德/腾讯; Amap's coordinate picker gives "
            "GCJ-02), BD-09 (百度); blank = the file's choice (default WGS-84)")

#: Host types and statuses as people write them, besides the catalogue's own names.
HOST_TYPE_WORDS: dict[str, HostType] = {
    **{zh: h for h, zh in HOST_TYPE_ZH.items()}, **{h.value: h for h in HostType},
    "工会建设": HostType.UNION_BUILT, "自建": HostType.UNION_BUILT,
    "党群阵地": HostType.PARTY_SERVICE_CENTRE, "社区党群服务中心": HostType.PARTY_SERVICE_CENTRE,
    "环卫驿站": HostType.SANITATION_DEPOT, "环卫工人作息点": HostType.SANITATION_DEPOT,
    "企业共建": HostType.ENTERPRISE, "爱心企业": HostType.ENTERPRISE,
    "银行": HostType.BANK_BRANCH, "金融网点": HostType.BANK_BRANCH,
    "志愿者服务站": HostType.VOLUNTEER, "志愿服务站": HostType.VOLUNTEER,
    "流动站点": HostType.MOBILE, "纳凉公交": HostType.MOBILE, "移动驿站": HostType.MOBILE,
}
STATUS_WORDS: dict[str, Status] = {
    **{zh: s for s, zh in STATUS_ZH.items()}, **{s.value: s for s in Status},
    "营业": Status.OPEN, "正常": Status.OPEN, "运营": Status.OPEN, "正常开放": Status.OPEN,
    "在用": Status.OPEN, "暂停": Status.TEMPORARILY_CLOSED,
    "临时关闭": Status.TEMPORARILY_CLOSED, "暂停服务": Status.TEMPORARILY_CLOSED,
    "筹建": Status.PLANNED, "在建": Status.PLANNED, "建设中": Status.PLANNED,
    "关闭": Status.CLOSED, "撤销": Status.CLOSED, "已撤销": Status.CLOSED, "停用": Status.CLOSED,
}

#: A code that starts with this marks the template's example row, which is never imported
#: (a station code is ASCII, so no real station's code can start with it).
EXAMPLE_PREFIX = "示例"

_TEN = tuple(Column(f"yes:{a.code}", a.label_zh, f"十个一: {a.label_zh} ({a.label_en})",
                    YES_NO_TEXT, choices=("是", "否"), width=8,
                    aliases=tuple(w for w in AMENITY_WORDS.get(a.code, ()) if w != a.label_zh))
             for a in TEN_ONES)
_EXTRAS = tuple(a for a in AMENITIES if not a.ten_ones)

#: The sheet, in template and export order. ``yes:*``, ``extras``, ``crs`` and
#: ``district_ref`` are the sheet's own; every other key is a station field.
SHEET_COLUMNS: tuple[Column, ...] = (
    Column("code", "站点编码", "stable id of the station: letters, digits, - _ . (e.g. SY-0001); "
           "a row with a known code updates that station", aliases=("编号", "站点编号", "编码"),
           width=14),
    Column("name", "站点名称", "name as shown to workers", aliases=("名称", "站点", "驿站名称"),
           width=30),
    Column("district_ref", "所属区县", "district name (as in the admin areas, e.g. 吉阳区) or its "
           "6-digit code; checked against the point's district",
           aliases=("区县", "所属区", "区县名称"), width=12),
    Column("street", "所属街道", "street / township (街道、乡镇) name",
           aliases=("街道", "乡镇街道"), width=12),
    Column("street_code", "街道代码", "9-digit street code (optional; must be a street of the "
           "district)", width=12),
    Column("address", "详细地址", "address", aliases=("地址",), width=36),
    Column("lon", "经度", "longitude in decimal degrees (e.g. 109.512)", aliases=("longitude",),
           width=13),
    Column("lat", "纬度", "latitude in decimal degrees (e.g. 18.252)", aliases=("latitude",),
           width=13),
    Column("crs", "坐标系", "coordinate system of this row's 经度/纬度", CRS_TEXT,
           aliases=("坐标类型", "坐标系统", "coord_type"),
           choices=tuple(CRS_CHOICES.values()), width=10),
    Column("host_type", "建设类型", "who hosts the station", "、".join(HOST_TYPE_ZH.values()),
           aliases=("站点类型", "类型", "建设方式"),
           choices=tuple(HOST_TYPE_ZH.values()), width=14),
    Column("status", "状态", "state of the station; blank = 开放 (a file without this "
           "column leaves known stations' states alone)", "、".join(STATUS_ZH.values()),
           aliases=("站点状态", "运行状态"),
           choices=tuple(STATUS_ZH.values()), width=10),
    Column("opening_hours", "开放时间", "opening hours: OSM syntax or a Chinese form (see below)",
           aliases=("营业时间", "服务时间", "开放时段"), width=30),
    Column("official_workdays", "按法定调休上班",
           "是: the station keeps the State Council's working-day arrangement (weekday hours "
           "on make-up working days 调休上班, closed on official days off); 否: only PH in the "
           "hours counts; blank: the host type's default (是 for 工会自建、党群服务中心、银行网点)",
           "是/否 (also 有/无, √/×, 1/0, Y/N, yes/no, true/false); blank = by host type",
           aliases=("法定调休", "调休上班", "按法定作息"), choices=("是", "否"), width=12),
    Column("phone", "联系电话", "phone number", aliases=("电话", "联系方式"), width=16),
    *_TEN,
    Column("extras", "其他设施", "amenities beyond the ten ones, separated by 、",
           "、".join(a.label_zh for a in _EXTRAS), aliases=("其它设施", "其他服务设施"), width=24),
    Column("last_verified_on", "最近核实日期", "date the station was last checked (YYYY-MM-DD)",
           aliases=("核实日期",), width=14),
    Column("sample", "示例数据", "是 only for made-up sample stations", YES_NO_TEXT,
           choices=("是", "否"), width=10),
)

def is_required(column: Column) -> bool:
    """Whether a new station must have this column (the API's required fields)."""
    return column.key in ("code", *REQUIRED_STATION_FIELDS)


def header_cell(column: Column) -> str:
    """The header as the template and the export write it: ``*`` when required (the
    importer ignores the mark)."""
    return column.header + ("*" if is_required(column) else "")


#: Chinese names for the remaining station fields, accepted on import though the
#: template leaves them out (a richer ledger may have them).
OTHER_HEADERS: dict[str, tuple[str, ...]] = {
    "name_en": ("英文名称", "英文名"),
    "province": ("省份", "所属省份", "省"),
    "province_code": ("省级代码", "省份代码"),
    "city": ("城市", "所属城市", "所属市", "市"),
    "city_code": ("市级代码", "城市代码"),
    "district_code": ("区县代码", "行政区划代码"),
    "floor_area_m2": ("面积", "建筑面积", "使用面积"),
    "seats": ("座位数", "座位"),
    "opened_on": ("开放日期", "建成日期", "启用日期"),
    "timezone": ("时区",),
    "amenities": ("设施代码",),
}

#: Keys of the sheet's own columns (not station fields).
SHEET_KEYS: tuple[str, ...] = tuple(
    c.key for c in SHEET_COLUMNS if c.key.startswith("yes:") or c.key in (
        "extras", "crs", "district_ref"))


def aliases_of(columns: tuple[Column, ...],
               others: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, str]:
    """Every accepted header of ``columns`` (normalised) → the row key it fills.

    One alias machinery for every sheet (stations here, demand in
    :mod:`geo_service.coverage.demand_sheet`): a header, its aliases and any ``others``.
    """
    out: dict[str, str] = {}
    for col in columns:
        for name in (col.header, *col.aliases):
            out[normalise_header(name)] = col.key
    for key, names in (others or {}).items():
        for name in names:
            out[normalise_header(name)] = key
    return out


@functools.cache
def header_aliases() -> dict[str, str]:
    """Every accepted header of the station sheet (normalised) → the row key it fills."""
    return aliases_of(SHEET_COLUMNS, OTHER_HEADERS)


def _word(value: Any) -> str:
    return re.sub(r"\s", "", unicodedata.normalize("NFKC", str(value))).lower()


def yes_no(value: Any) -> bool:
    """A yes/no cell; blank is no. Raises ValueError naming the accepted words."""
    if value is None or value is False or value is True:
        return bool(value)
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    word = _word(value)
    if word == "" or word in NO_WORDS:
        return False
    if word in YES_WORDS:
        return True
    raise ValueError(f"{clip(str(value))!r} is not yes/no; use {YES_NO_TEXT}")


def parse_crs(value: Any) -> Crs:
    """``WGS-84``/``GCJ-02``/``BD-09`` and their everyday names (``高德``, ``火星坐标``...)."""
    word = re.sub(r"\(.*?\)", "", _word(value))
    if word in CRS_WORDS:
        return CRS_WORDS[word]
    raise ValueError(f"unknown coordinate system {clip(str(value))!r}; use {CRS_TEXT}")


def _choice(value: Any, words: Mapping[str, Any], what: str, names: str) -> Any:
    word = _word(value)
    if word in words:
        return words[word]
    raise ValueError(f"unknown {what} {clip(str(value))!r}; one of {names}")


def _amenity(name: str) -> str:
    for a in AMENITIES:
        if (name in (a.label_zh, a.code, *AMENITY_WORDS.get(a.code, ()))
                or _word(name) == _word(a.label_en)):
            return a.code
    raise ValueError(f"unknown amenity {clip(name)!r}; one of "
                     + "、".join(a.label_zh for a in AMENITIES))


def is_example(row: Mapping[str, Any], key: str = "code") -> bool:
    """The template's example row (code ``示例-…``; ``key`` names the code column), which
    the importer skips."""
    code = row.get(key)
    return isinstance(code, str) and unicodedata.normalize("NFKC", code).strip().startswith(
        EXAMPLE_PREFIX)


def covered_amenities(present: set[str]) -> int | None:
    """The amenity bits a file's columns decide, when they are not all of them.

    None when the file lists ``amenities`` (it decides every amenity) or has no
    amenity column (it decides none). Otherwise the bits of its yes/no columns,
    plus the extras when it has ``其他设施``: a station's other amenities keep
    their stored values, so a sheet with only the ten ones keeps its extras.
    """
    if "amenities" in present:
        return None
    bits = 0
    for key in present:
        if key.startswith("yes:"):
            bits |= 1 << AMENITY_BY_CODE[key[4:]].bit
    if "extras" in present:
        bits |= sum(1 << a.bit for a in _EXTRAS)
    return bits or None


@dataclass
class SheetRow:
    """A sheet row as station fields, plus what the sheet said beyond them."""

    fields: dict[str, Any]
    crs: Crs | None = None
    district_ref: str | None = None
    hours_given: str | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)


def _text_code(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))  # Excel turns 460203 into 460203.0
    return str(value).strip()


def _hours(value: Any, out: SheetRow) -> Any:
    """OSM as it is; a Chinese form converted (the original kept for the report)."""
    if not isinstance(value, str) or value.isascii():
        return value  # OSM or garbage: the model's validator names the problem
    osm_error = ""
    if '"' in value:  # OSM with a quoted comment ("24小时开放") is OSM; else skip the parser
        try:
            return validate_hours(value)
        except HoursError as exc:
            osm_error = str(exc)
    try:
        converted = to_osm(value)
    except ChineseHoursError as exc:
        # OSM day names in it: the OSM parser's message says more than ours
        if not osm_error and re.search(r"\b(?:Mo|Tu|We|Th|Fr|Sa|Su|PH)\b", value):
            try:
                validate_hours(value)
            except HoursError as osm:
                osm_error = str(osm)
        raise ValueError(osm_error or str(exc)) from None
    out.hours_given = value
    return converted


def to_station_row(row: dict[str, Any], present: set[str]) -> SheetRow:
    """A cleaned sheet row (blank cells gone) → station fields the API's model validates.

    The sheet's own columns are taken out (yes/no amenities folded into
    ``amenities``, ``坐标系`` and ``所属区县`` kept aside); Chinese names of host
    types and statuses become codes; problems are (key, reason) pairs. A value with
    a problem is left as it was: the caller drops the model's second word on it.
    """
    fields = {k: v for k, v in row.items() if k not in SHEET_KEYS}
    out = SheetRow(fields)

    def attempt(key: str, fn: Any, value: Any) -> Any:
        try:
            return fn(value)
        except ValueError as exc:
            out.problems.append((key, str(exc)))
            return None

    if "opening_hours" in fields:
        fields["opening_hours"] = attempt(
            "opening_hours", lambda v: _hours(v, out), fields["opening_hours"])
    for key, words, what, names in (
        ("host_type", HOST_TYPE_WORDS, "host type (建设类型)",
         "、".join(HOST_TYPE_ZH.values()) + " or " + ", ".join(HostType)),
        ("status", STATUS_WORDS, "status (状态)",
         "、".join(STATUS_ZH.values()) + " or " + ", ".join(Status)),
    ):
        if isinstance(fields.get(key), str):
            found = attempt(key, lambda v, w=words, a=what, n=names: _choice(v, w, a, n),
                            fields[key])
            if found is not None:
                fields[key] = found.value
    if "sample" in fields:
        fields["sample"] = attempt("sample", yes_no, fields["sample"])
    if "official_workdays" in fields:  # blank cells are gone: the host type decides
        fields["official_workdays"] = attempt("official_workdays", yes_no,
                                              fields["official_workdays"])
    if "crs" in row:
        out.crs = attempt("crs", parse_crs, row["crs"])
    if "district_ref" in row:
        out.district_ref = _text_code(row["district_ref"])
    yes_keys = [k for k in present if k.startswith("yes:")]
    if yes_keys or "extras" in present:
        amenities = list(fields.get("amenities") or [])
        if "extras" in row:
            for name in re.split(r"[、,;，；/\s]+", str(row["extras"]).strip()):
                if name and (code := attempt("extras", _amenity, name)) is not None:
                    amenities.append(code)
        for key in sorted(yes_keys):
            has = attempt(key, yes_no, row.get(key))
            code = key[4:]
            if has and code not in amenities:
                amenities.append(code)
            elif has is False and code in amenities:
                amenities.remove(code)
        fields["amenities"] = amenities
    return out


def typed_hours(row: Mapping[str, Any]) -> Any:
    """The hours as the clerk typed them (a Chinese form), while they still mean the
    stored OSM value; else the OSM value (an edit through the API changed them)."""
    text, osm = row.get("hours_text"), row.get("opening_hours")
    if text:
        try:
            if to_osm(text) == osm:
                return text
        except ChineseHoursError:
            pass
    return osm


def export_cells(row: Mapping[str, Any]) -> list[Any]:
    """A stored station (a feed row, WGS-84) as the sheet's cells, in column order.

    Written so the importer reads back exactly what is stored, in what the clerk typed:
    coordinates in the system the station was imported in (``source_crs``; WGS-84 when
    none), with 坐标系 naming it; hours as typed when they were a Chinese form that still
    means the stored value (:func:`typed_hours`), else OSM syntax; every amenity (the ten
    as 是/否, the rest in 其他设施), the district by name. Text is not yet guarded
    against formulas.
    """
    mask = int(row["amenity_mask"])
    crs = Crs(row.get("source_crs") or Crs.WGS84.value)
    lon, lat = (row["lon"], row["lat"]) if crs is Crs.WGS84 else from_wgs84(
        row["lon"], row["lat"], crs)
    values: dict[str, Any] = {
        "district_ref": row["district"] or row["district_code"],
        "lon": lon, "lat": lat,
        "crs": CRS_CHOICES[crs],
        "opening_hours": typed_hours(row),
        "host_type": HOST_TYPE_ZH.get(row["host_type"], row["host_type"]),
        "status": STATUS_ZH.get(row["status"], row["status"]),
        "extras": "、".join(a.label_zh for a in _EXTRAS if mask >> a.bit & 1) or None,
        "sample": "是" if row["sample"] else "否",
        "official_workdays": (None if row.get("official_workdays") is None
                              else "是" if row["official_workdays"] else "否"),
    }
    for a in TEN_ONES:
        values[f"yes:{a.code}"] = "是" if mask >> a.bit & 1 else "否"
    return [values[c.key] if c.key in values else row.get(c.key) for c in SHEET_COLUMNS]
