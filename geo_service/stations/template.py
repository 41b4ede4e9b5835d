"""The station import template: the union sheet's columns as an XLSX to fill in.

Served by ``GET /v1/stations:template.xlsx`` and written by ``geo-service template``.
The first sheet is the one the importer reads: the Chinese header row (required
columns marked ``*``, which the importer ignores), drop-down lists for the columns
with a fixed vocabulary, and one example row whose code starts with ``示例`` so the
importer skips it: importing the untouched template writes nothing. The second
sheet (说明) explains every column, the coordinate systems and the hours forms.

The drop-downs warn rather than refuse, because the importer accepts more than
they list (``有``/``√`` besides ``是``, ``高德`` for GCJ-02).
"""

from __future__ import annotations

import functools
import io
from typing import Any

from geo_service.domain.catalogue import AMENITY_BY_CODE, HOST_TYPE_ZH, STATUS_ZH, HostType, Status
from geo_service.domain.coords import Crs
from geo_service.domain.sheet import (
    CRS_CHOICES,
    EXAMPLE_PREFIX,
    SHEET_COLUMNS,
    YES_NO_TEXT,
    Column,
    header_cell,
    is_required,
)
from geo_service.hours.chinese import EXAMPLES

FILENAME = "station-import-template.xlsx"
MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DATA_SHEET = "站点 stations"
README_SHEET = "说明 README"
#: Rows the drop-downs cover (the import's own row cap is a setting; this is plenty).
VALIDATED_ROWS = 5000

#: The example row, by column key; amenity columns not listed are 否.
EXAMPLE: dict[str, Any] = {
    "code": f"{EXAMPLE_PREFIX}-0001",
    "name": "【示例】解放路环卫工人爱心驿站",
    "district_ref": "吉阳区",
    "street": "",
    "street_code": "",
    "address": "三亚市吉阳区解放路1号（示例地址）",
    "lon": 109.512,
    "lat": 18.252,
    "crs": CRS_CHOICES[Crs.GCJ02],  # as copied from Amap's coordinate picker
    "host_type": HOST_TYPE_ZH[HostType.SANITATION_DEPOT],
    "status": STATUS_ZH[Status.OPEN],
    "opening_hours": "周一至周五 8:00-18:00；周末 9:00-17:00",
    "phone": "0898-12345678",
    "extras": "、".join(AMENITY_BY_CODE[c].label_zh for c in ("air_conditioning",
                                                            "ebike_charging")),
    "last_verified_on": "",
    "sample": "否",
}
_EXAMPLE_YES = ("indoor_rest", "seating", "microwave", "water_dispenser", "restroom",
                "first_aid_kit", "phone_charging")


def _example_value(column: Column) -> Any:
    if column.key.startswith("yes:"):
        return "是" if column.key[4:] in _EXAMPLE_YES else "否"
    return EXAMPLE.get(column.key, "")


def readme_lines() -> list[tuple[str, str, str, str]]:
    """The 说明 sheet as (item, required, what it holds, accepted values) rows."""
    lines: list[tuple[str, str, str, str]] = [
        ("工会户外劳动者服务站点 导入模板", "", "Station import template (geo_service)", ""),
        ("填写 How to fill", "",
         "第 1 个工作表的第 1 行是表头（* 为新站点必填），从第 3 行起每行一个站点。"
         "第 2 行是示例（站点编码以「示例」开头），导入时跳过，可删除也可保留。"
         "One station per row from row 3; row 2 is an example (code starting 示例) that "
         "the import skips.", ""),
        ("导入 Import", "", "管理台「批量导入」(/console/import)：上传 → 预览（一次列出全部问题，"
         "行号与 Excel 左侧一致）→ 确认；有问题时可下载带「错误说明」列的表格。"
         "Or POST /v1/stations:import (admin key) or geo-service import "
         "stations FILE.xlsx; add dry_run=true / --dry-run to check without writing. "
         "One bad row and nothing is written; the report names every row, column and reason.",
         ""),
        ("坐标系 Coordinates", "",
         "每行的「坐标系」优先；留空则用导入时选的坐标系 (crs=wgs84/gcj02/bd09, --crs)。"
         "高德、腾讯地图的坐标拾取器给出 GCJ-02；百度拾取器给出 BD-09；GPS 为 WGS-84。"
         "Coordinates copied from Amap's coordinate picker are GCJ-02.",
         "WGS-84 · GCJ-02 (火星坐标/高德/腾讯) · BD-09 (百度)"),
        ("是/否 Yes/no", "", "十个一的十列与「示例数据」", YES_NO_TEXT),
        ("", "", "", ""),
        ("列 Column", "必填 Required", "说明 What", "可填值 Accepted values"),
    ]
    for col in SHEET_COLUMNS:
        lines.append((col.header, "是" if is_required(col) else "", col.note, col.values))
    lines += [("", "", "", ""), ("开放时间 Hours", "", "可写 OSM 语法，或下列中文写法 (converted "
                                 "to OSM; the import report shows the result)", "")]
    lines += [(zh, "", "→ " + osm, "") for zh, osm in EXAMPLES]
    lines.append(("不接受 Refused", "",
                  "上午/下午、季节（夏季…）、看情况、节假日（请写法定节假日）等含糊写法；"
                  "vague forms are refused with the row and a hint", ""))
    return lines


@functools.cache
def template_xlsx() -> bytes:
    """The template workbook as bytes (made once per process: it never changes)."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = DATA_SHEET
    sheet.freeze_panes = "C2"
    required_fill = PatternFill("solid", fgColor="FDE9D9")
    plain_fill = PatternFill("solid", fgColor="EEF3F8")
    example_font = Font(italic=True, color="808080")
    for i, col in enumerate(SHEET_COLUMNS, start=1):
        letter = get_column_letter(i)
        cell = sheet.cell(row=1, column=i, value=header_cell(col))
        cell.font = Font(bold=True)
        cell.fill = required_fill if is_required(col) else plain_fill
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
        cell.comment = Comment(f"{col.note}\n{col.values}".strip(), "geo_service")
        sheet.column_dimensions[letter].width = col.width
        example = sheet.cell(row=2, column=i, value=_example_value(col))
        example.font = example_font
        if col.choices:
            rule = DataValidation(type="list", formula1='"' + ",".join(col.choices) + '"',
                                  allow_blank=True, errorStyle="warning",
                                  error=f"可填：{'、'.join(col.choices)}（导入时也接受{col.values}）"
                                  [:255],
                                  errorTitle=col.header, showErrorMessage=True)
            rule.add(f"{letter}2:{letter}{VALIDATED_ROWS}")
            sheet.add_data_validation(rule)
    sheet.cell(row=2, column=1).comment = Comment(
        "示例行：站点编码以「示例」开头，导入时跳过。Example row: skipped on import.",
        "geo_service")

    readme = book.create_sheet(README_SHEET)
    for width, letter in zip((22, 12, 70, 60), "ABCD", strict=True):
        readme.column_dimensions[letter].width = width
    for n, line in enumerate(readme_lines(), start=1):
        readme.append(list(line))
        if n == 1 or line[0].startswith("列 "):
            for cell in readme[n]:
                cell.font = Font(bold=True)
        for cell in readme[n]:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
