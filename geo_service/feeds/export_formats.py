"""Bulk-upload files for navigation platforms: platform definitions, rows, CSV and XLSX.

Trade unions put their stations on Amap (高德), Tencent (腾讯) and Baidu (百度)
maps by uploading a spreadsheet of POIs; this module turns feed rows (see
``queries.FEED_COLUMNS``) into such a spreadsheet. It is pure: plain rows in,
bytes or a written file object out. The HTTP router and the CLI share
:func:`csv_header`, :func:`csv_rows` and :class:`XlsxExport`.

Coordinates
    Each platform draws in its own system, and a WGS-84 point on Amap lands a
    few hundred metres off. Amap and Tencent get GCJ-02, Baidu BD-09 (Baidu
    calls lon/lat BD-09 ``bd09ll``), ``generic`` WGS-84, converted per batch
    with :func:`geo_service.domain.coords.from_wgs84_array` and written with 7
    decimals (~1 cm). Every file says which system it uses: a ``坐标系`` /
    ``coord_type`` column on every row, the file name
    (``stations-amap-gcj02-20250101.csv``) and, in XLSX, the README sheet.

Columns (our choice)
    The platforms' upload templates differ in detail and all let the uploader
    map columns at upload time, so every platform file has the same columns
    with the **Chinese headers** those templates use (名称, 地址, 经度, 纬度,
    电话, 营业时间, 分类, 描述 ...). ``generic`` has the same columns with
    **English snake_case headers** and English amenity labels in the
    description, for any other consumer. ``营业时间`` is a readable Chinese
    form of the hours ("周一至周五 08:00-18:00；周六、周日 09:00-17:00") where
    the rule is plain weekdays and times, else the OSM string itself
    (:func:`geo_service.hours.text.hours_zh`; every accepted value renders);
    ``营业时间(OSM)`` always holds the OSM ``opening_hours`` syntax. A station
    whose hours are unknown reads ``营业时间未知`` in ``营业时间`` (``hours
    unknown`` in the English ``generic`` file) and has an empty OSM cell: there
    is no rule, and no OSM consumer should parse a sentence as one.
    ``外观图片`` (``exterior_photo_url``) is the absolute URL of the station's first
    exterior photo on the public address (``GEO_PUBLIC_BASE_URL``; the platforms ask
    for one and fetch it from there), empty when it has none or no public address is
    set.

``union``: the union office's own ledger
    The columns of the station import template (:mod:`geo_service.domain.sheet`:
    站点编码, 站点名称, 所属区县 ... the ten ones as 是/否, 其他设施), WGS-84,
    values as stored (coordinates unrounded, hours in OSM syntax), so the file
    can be edited and imported again and only the edited stations change.
    ``分类`` is a label in the platform's own category style
    ("生活服务;工会服务站点"); platforms map categories to their own taxonomy at
    upload (or in review), so it is a hint, not a code. ``站点编码`` is our
    stable station code: upload it as the platform's own id column (Tencent
    ``ud_id``, Baidu/Amap custom id) so a re-upload updates instead of adding.

Formula injection
    Station names come from users, and a cell like ``=HYPERLINK(...)`` would
    run as a formula in Excel (and openpyxl writes any string starting with
    ``=`` as a formula). Every text cell starting with ``= + - @``, tab or CR
    gets a leading ``'`` (OWASP's advice), in both formats; a phone number
    written ``+86 ...`` therefore reads ``'+86 ...``.

Example
-------
>>> hours_zh("Mo-Fr 08:00-18:00; Sa,Su 09:00-17:00")
'周一至周五 08:00-18:00；周六、周日 09:00-17:00'
>>> neutralise("=HYPERLINK(1)")
"'=HYPERLINK(1)"
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any
from zoneinfo import ZoneInfo

import numpy as np

from geo_service.domain.coords import Crs, from_wgs84_array
from geo_service.domain.sheet import SHEET_COLUMNS, export_cells, header_cell
from geo_service.feeds.features import SAMPLE_NOTE, amenity_items, utc_iso
from geo_service.hours.text import hours_label
from geo_service.hours.text import hours_zh as hours_zh  # re-exported (tests, doctest)

Cell = str | float | int | dt.date | None
Row = Mapping[str, Any]

CHINA = ZoneInfo("Asia/Shanghai")
BOM = "\ufeff".encode()
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX_MEDIA_TYPE}
DATA_SHEET = "站点 stations"
README_SHEET = "说明 README"
COORD_DECIMALS = 7


class PlatformName(StrEnum):
    AMAP = "amap"
    TENCENT = "tencent"
    BAIDU = "baidu"
    GENERIC = "generic"
    UNION = "union"


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


@dataclass(frozen=True)
class Platform:
    """What differs between platforms: coordinates, category label, header language."""

    name: PlatformName
    label: str
    crs: Crs
    coord_type: str  # the value of the coord_type column, in the platform's own words
    category: str
    english: bool = False


PLATFORMS: dict[PlatformName, Platform] = {p.name: p for p in (
    Platform(PlatformName.AMAP, "高德地图 Amap", Crs.GCJ02, "gcj02", "生活服务;工会服务站点"),
    Platform(PlatformName.TENCENT, "腾讯地图 Tencent Maps", Crs.GCJ02, "gcj02",
             "生活服务:工会服务站点"),
    Platform(PlatformName.BAIDU, "百度地图 Baidu Maps", Crs.BD09, "bd09ll", "生活服务;公共设施"),
    Platform(PlatformName.GENERIC, "generic", Crs.WGS84, "wgs84",
             "outdoor workers' rest station (工会户外劳动者服务站点)", english=True),
    Platform(PlatformName.UNION, "工会台账 union ledger (the import template's columns)",
             Crs.WGS84, "wgs84", ""),
)}

CRS_NAMES = {Crs.WGS84: "WGS-84 (EPSG:4326, GPS)",
             Crs.GCJ02: "GCJ-02 (国测局坐标, 高德/腾讯)",
             Crs.BD09: "BD-09 (百度坐标 bd09ll)"}

#: (row key, Chinese header, English header), in file order.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("name", "名称", "name"),
    ("address", "地址", "address"),
    ("lon", "经度", "longitude"),
    ("lat", "纬度", "latitude"),
    ("coord_type", "坐标系", "coord_type"),
    ("phone", "电话", "phone"),
    ("hours_text", "营业时间", "opening_hours_zh"),
    ("opening_hours", "营业时间(OSM)", "opening_hours"),
    ("category", "分类", "category"),
    ("description", "描述", "description"),
    ("province", "省份", "province"),
    ("city", "城市", "city"),
    ("district", "区县", "district"),
    ("adcode", "行政区划代码", "adcode"),
    ("code", "站点编码", "station_code"),
    ("status", "状态", "status"),
    ("sample", "示例数据", "sample"),
    ("last_verified_on", "最近核实日期", "last_verified_on"),
    ("exterior_photo", "外观图片", "exterior_photo_url"),
)
KEYS = tuple(c[0] for c in COLUMNS)
_STATUS_ZH = {"open": "营业", "temporarily_closed": "暂停开放"}


def headers(platform: Platform) -> list[str]:
    """The header row in the platform's language (``union``: the import template's)."""
    if platform.name is PlatformName.UNION:
        return [header_cell(c) for c in SHEET_COLUMNS]
    return [en if platform.english else zh for _, zh, en in COLUMNS]


def export_filename(platform: Platform, fmt: ExportFormat | str, day: dt.date) -> str:
    """``stations-<platform>-<crs>-<YYYYMMDD>.<fmt>``: the coordinate system is in the name."""
    return f"stations-{platform.name}-{platform.crs.value}-{day:%Y%m%d}.{fmt}"


def china_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(CHINA).date()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV/formula injection)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _text(value: str | None) -> str | None:
    return None if value is None else neutralise(value)


@functools.lru_cache(maxsize=4096)
def description(mask: int, english: bool = False) -> str | None:
    """The amenities as text: the ten ones (十个一) with their count, then the extras.

    >>> description(0b101 | 1 << 17)
    '十个一（2/10）：室内休息场所、微波炉；另有：空调'
    """
    items = amenity_items(mask)
    key = "label_en" if english else "label_zh"
    ten = [a[key] for a in items if a["ten_ones"]]
    extra = [a[key] for a in items if not a["ten_ones"]]
    sep, head, also, join = (", ", "Ten ones ({}/10): ", "also: ", "; ") if english else (
        "、", "十个一（{}/10）：", "另有：", "；")
    parts = ([head.format(len(ten)) + sep.join(ten)] if ten else []) + (
        [also + sep.join(extra)] if extra else [])
    return join.join(parts) or None



def build_rows(rows: Sequence[Row], platform: Platform) -> list[list[Cell]]:
    """One batch of feed rows as cells in :data:`COLUMNS` order, coordinates converted."""
    if not rows:
        return []
    if platform.name is PlatformName.UNION:  # stored values, so a re-import changes nothing
        return [[_text(v) if isinstance(v, str) else v for v in export_cells(r)] for r in rows]
    lon, lat = from_wgs84_array(np.fromiter((r["lon"] for r in rows), np.float64, len(rows)),
                                np.fromiter((r["lat"] for r in rows), np.float64, len(rows)),
                                platform.crs)
    lons = np.round(lon, COORD_DECIMALS).tolist()
    lats = np.round(lat, COORD_DECIMALS).tolist()
    en = platform.english
    out = []
    for r, x, y in zip(rows, lons, lats, strict=True):
        status = r["status"]
        values: dict[str, Cell] = {
            "name": _text(r["name"]),
            "address": _text(r["address"]),
            "lon": x,
            "lat": y,
            "coord_type": platform.coord_type,
            "phone": _text(r["phone"]),
            "hours_text": _text(hours_label(r["opening_hours"], english=en)),
            "opening_hours": _text(r["opening_hours"]),
            "category": platform.category,
            "description": _text(description(int(r["amenity_mask"]), en)),
            "province": _text(r["province"]),
            "city": _text(r["city"]),
            "district": _text(r["district"]),
            "adcode": _text(r["district_code"] or r["city_code"] or r["province_code"]),
            "code": _text(r["code"]),
            "status": status if en else _STATUS_ZH.get(status, status),
            "sample": ("true" if r["sample"] else "false") if en else
                      ("是" if r["sample"] else "否"),
            "last_verified_on": r["last_verified_on"],
            "exterior_photo": r.get("exterior_photo"),
        }
        out.append([values[k] for k in KEYS])
    return out



def _csv_value(value: Cell, exact: bool = False) -> Cell:
    if isinstance(value, float):
        return repr(value) if exact else f"{value:.{COORD_DECIMALS}f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def encode_csv(cells: Sequence[Sequence[Cell]], exact: bool = False) -> bytes:
    """Rows as UTF-8 CSV with CRLF line ends (RFC 4180, what Excel writes); ``exact``
    writes numbers in full (the shortest text that reads back the same double)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows([_csv_value(v, exact) for v in row] for row in cells)
    return buf.getvalue().encode()


def csv_header(platform: Platform) -> bytes:
    """The start of a CSV export: the UTF-8 BOM (so Excel reads UTF-8) and the header row."""
    return BOM + encode_csv([headers(platform)])


def csv_rows(rows: Sequence[Row], platform: Platform) -> bytes:
    """One batch of feed rows as CSV lines."""
    return encode_csv(build_rows(rows, platform), exact=platform.name is PlatformName.UNION)


#: Rows an Excel sheet holds besides its header row.
XLSX_MAX_ROWS = 1_048_575


class TooManyRows(ValueError):
    """More stations than one XLSX sheet can hold."""


_WIDTHS = {"name": 36, "address": 40, "lon": 13, "lat": 13, "hours_text": 30,
           "opening_hours": 30, "category": 24, "description": 60}


class XlsxExport:
    """An XLSX export written row batch by row batch (openpyxl write-only: flat memory).

    Call :meth:`append` per batch and :meth:`save` once; both block, so the
    router runs them in a thread. The data sheet comes first (platforms read
    the first sheet); the README sheet says the coordinate system, when the
    file was made, and whether it holds SAMPLE DATA.
    """

    def __init__(self, platform: Platform, generated_at: dt.datetime,
                 filters: Mapping[str, Any] | None = None,
                 selection: str | None = None) -> None:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        self.platform, self.generated_at = platform, generated_at
        self.selection = selection or "open and temporarily closed only"
        self.filters = {k: v for k, v in (filters or {}).items() if v is not None}
        self.rows = 0
        self.samples = 0
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet(DATA_SHEET)
        self._sheet.freeze_panes = "A2"
        widths = ([c.width for c in SHEET_COLUMNS] if platform.name is PlatformName.UNION
                  else [_WIDTHS.get(key, 14) for key in KEYS])
        for i, width in enumerate(widths, start=1):
            self._sheet.column_dimensions[get_column_letter(i)].width = width
        bold = Font(bold=True)
        head = []
        for title in headers(platform):
            cell = WriteOnlyCell(self._sheet, value=title)
            cell.font = bold
            head.append(cell)
        self._sheet.append(head)

    def append(self, rows: Sequence[Row]) -> None:
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        if self.rows + len(rows) > XLSX_MAX_ROWS:
            raise TooManyRows(f"more than {XLSX_MAX_ROWS:,} stations: an XLSX sheet cannot "
                              "hold them")

        for cells in build_rows(rows, self.platform):
            self._sheet.append([ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v
                                for v in cells])
        self.rows += len(rows)
        self.samples += sum(1 for r in rows if r["sample"])

    def discard(self) -> None:
        """Abandon an unfinished export: close the data sheet and delete its temporary file."""
        self._sheet.close()
        writer = getattr(self._sheet, "_writer", None)  # openpyxl keeps rows in a temp file
        if writer is not None and isinstance(writer.out, str):
            writer.cleanup()

    def readme(self) -> list[tuple[str, str]]:
        """The README sheet's (item, value) lines."""
        p = self.platform
        local = self.generated_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
        lines = [
            ("平台 Platform", p.label),
            ("坐标系 Coordinate system", f"{CRS_NAMES[p.crs]}; coord_type = {p.coord_type}"),
            ("生成时间 Generated at", f"{utc_iso(self.generated_at)} (北京时间 {local})"),
            ("站点数 Stations", f"{self.rows} ({self.selection})"),
            ("筛选 Filters", ", ".join(f"{k}={v}" for k, v in self.filters.items()) or "none"),
            *([("分类 Category", f"{p.category}: a hint; the platform maps it to its own "
                                 "categories at upload")] if p.category else []),
            *([("导入 Re-import", "the columns of the station import template: edit and "
                                 "import this file again (POST /v1/stations:import or "
                                 "geo-service import stations); unchanged rows stay unchanged")]
              if p.name is PlatformName.UNION else []),
            ("站点编码 Station code", "stable id: map it to the platform's id column so a "
                                     "re-upload updates instead of duplicating"),
            ("公式防护 Formula guard", "text starting with = + - @ is prefixed with '"),
            ("营业时间未知 Hours unknown", "no hours on record: 营业时间 says so (营业时间未知 / "
                                        "hours unknown) and the OSM column is empty"),
        ]
        if self.samples:
            lines.insert(0, ("SAMPLE DATA 示例数据",
                             f"{self.samples} of {self.rows} stations are SAMPLE DATA, not "
                             f"real stations (示例数据，非真实站点). {SAMPLE_NOTE}"))
        return lines

    def save(self, out: IO[bytes]) -> None:
        """Add the README sheet and write the workbook to ``out`` (a seekable binary file)."""
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font

        sheet = self._book.create_sheet(README_SHEET)
        sheet.column_dimensions["A"].width = 28
        sheet.column_dimensions["B"].width = 100
        for item, value in self.readme():
            key = WriteOnlyCell(sheet, value=item)
            key.font = Font(bold=True)
            sheet.append([key, neutralise(value)])
        self._book.save(out)
