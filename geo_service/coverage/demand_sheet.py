"""The demand sheet: where outdoor workers gather, in the Chinese columns a clerk fills in.

Why a sheet of its own: a union office counts its workers in a spreadsheet (编号, 经度,
纬度, 人数, 工种, 坐标系), not in the API's English field names. The columns here are
read through the station sheet's alias machinery (:func:`geo_service.domain.sheet.aliases_of`,
so ``经度（°）``, ``*人数`` and full-width letters match as they do there), English
headers keep working, and the template (``GET /v1/demand:template.xlsx``) is written
from the same list, so the sheet, its 说明 and the importer cannot drift apart.

Pure: no database. :mod:`geo_service.coverage.demand` validates and writes the rows.
"""

from __future__ import annotations

import functools
import io
from typing import Any

from geo_service.domain.coords import Crs
from geo_service.domain.errors import clip
from geo_service.domain.sheet import (
    CRS_CHOICES,
    CRS_TEXT,
    EXAMPLE_PREFIX,
    YES_NO_TEXT,
    Column,
    aliases_of,
)
from geo_service.imports.readers import normalise_header
from geo_service.operations.visits import WORKER_TYPE_LABELS

FILENAME = "demand-import-template.xlsx"
MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DATA_SHEET = "需求点 demand"
README_SHEET = "说明 README"
#: Columns a new point must have (marked ``*`` in the template; the importer ignores the mark).
REQUIRED = ("id", "lon", "lat", "weight", "worker_type")

#: 工种 as people write it (normalised like a header: NFKC, no spaces, lower case).
WORKER_TYPE_WORDS: dict[str, str] = {
    **{normalise_header(zh): code for code, (zh, _en) in WORKER_TYPE_LABELS.items()},
    **{code: code for code in WORKER_TYPE_LABELS},
    **dict.fromkeys(("环卫工", "环卫", "环卫人员", "清洁工", "保洁员", "道路清扫"), "sanitation"),
    **dict.fromkeys(("外卖员", "外卖", "骑手", "送餐员", "外卖配送员", "网约配送员"),
                    "delivery"),
    **dict.fromkeys(("快递", "快递小哥", "快递从业人员", "快递员工", "快递配送员", "揽投员"),
                    "courier"),
    **dict.fromkeys(("卡车司机", "货运司机", "货车驾驶员", "货运", "司机"), "truck_driver"),
    **dict.fromkeys(("交警", "交通协管员", "辅警", "交通", "交通协管"), "traffic"),
    **dict.fromkeys(("其他", "其它", "其他劳动者", "户外劳动者"), "other"),
}
WORKER_TYPE_TEXT = "、".join(zh for zh, _en in WORKER_TYPE_LABELS.values())

#: The demand sheet, in template order.
DEMAND_COLUMNS: tuple[Column, ...] = (
    Column("id", "编号", "stable id of the point: letters, digits, - _ . : (e.g. CD-0001); "
           "a row with a known 编号 replaces that point", aliases=("点位编号", "点位编码", "编码",
                                                              "需求点编号"), width=14),
    Column("lon", "经度", "longitude in decimal degrees (e.g. 104.066)",
           aliases=("longitude", "lng", "东经"), width=13),
    Column("lat", "纬度", "latitude in decimal degrees (e.g. 30.572)",
           aliases=("latitude", "北纬"), width=13),
    Column("weight", "人数", "how many outdoor workers gather there (0 - 1,000,000)",
           aliases=("劳动者人数", "户外劳动者人数", "从业人数", "人员数量", "数量", "规模"),
           width=10),
    Column("worker_type", "工种", "who they are", WORKER_TYPE_TEXT,
           aliases=("劳动者类型", "人员类型", "职业", "行业"),
           choices=tuple(zh for zh, _en in WORKER_TYPE_LABELS.values()), width=16),
    Column("crs", "坐标系", "coordinate system of this row's 经度/纬度", CRS_TEXT,
           aliases=("坐标类型", "坐标系统", "coord_type"),
           choices=tuple(CRS_CHOICES.values()), width=10),
    Column("source", "来源", "where the figure comes from (e.g. 区环卫所 2026 年排班表)",
           aliases=("数据来源", "出处"), width=28),
    Column("observed_on", "统计日期", "when it was counted (YYYY-MM-DD)",
           aliases=("调查日期", "采集日期", "日期"), width=14),
    Column("sample", "示例数据", "是 only for made-up sample points", YES_NO_TEXT,
           aliases=("示例",), choices=("是", "否"), width=10),
)

EXAMPLE: dict[str, Any] = {
    "id": f"{EXAMPLE_PREFIX}-0001", "lon": 104.0665, "lat": 30.5723, "weight": 35,
    "worker_type": WORKER_TYPE_LABELS["delivery"][0], "crs": CRS_CHOICES[Crs.GCJ02],
    "source": "【示例】某区外卖站点排班表", "observed_on": "2026-11-01", "sample": "否",
}


@functools.cache
def header_aliases() -> dict[str, str]:
    """Every accepted demand header (normalised) → the row key it fills."""
    return aliases_of(DEMAND_COLUMNS)


def parse_worker_type(value: Any) -> str:
    """A 工种 cell → the service's worker type; raises ValueError naming the accepted words."""
    word = normalise_header(str(value))
    if word in WORKER_TYPE_WORDS:
        return WORKER_TYPE_WORDS[word]
    raise ValueError(f"unknown 工种 {clip(str(value))!r}; one of {WORKER_TYPE_TEXT} "
                     f"(or {', '.join(WORKER_TYPE_LABELS)})")


def readme_lines() -> list[tuple[str, str, str, str]]:
    """The 说明 sheet as (column, required, what it holds, accepted values) rows."""
    lines: list[tuple[str, str, str, str]] = [
        ("户外劳动者需求点 导入模板", "", "Demand import template (geo_service)", ""),
        ("填写 How to fill", "",
         "第 1 个工作表第 1 行是表头（* 为必填），从第 3 行起每行一个需求点："
         "某处聚集多少户外劳动者。"
         "第 2 行是示例（编号以「示例」开头），导入时跳过。"
         "One point per row from row 3: where outdoor workers gather and how many; row 2 "
         "is an example (编号 starting 示例) that the import skips.", ""),
        ("导入 Import", "",
         "控制台「需求数据」页面，或 POST /v1/demand:import（管理员密钥），或 geo-service import "
         "demand FILE.xlsx；先预检（dry_run=true / --dry-run）只查错不写入。"
         "有一行出错则整份不写入，"
         "报告列出 Excel 行号、列名和原因。同一编号再次导入即更新该点，内容未变的行不动。"
         "Console page 需求数据, the API or the CLI; one bad row and nothing is written; the "
         "report names the Excel row, column and reason; re-importing is idempotent.", ""),
        ("坐标系 Coordinates", "",
         "每行的「坐标系」优先；留空则用导入时选的坐标系。高德、腾讯地图拾取的坐标是 GCJ-02，"
         "百度为 BD-09，GPS 为 WGS-84。", CRS_TEXT),
        ("", "", "", ""),
        ("列 Column", "必填 Required", "说明 What", "可填值 Accepted values"),
    ]
    for col in DEMAND_COLUMNS:
        names = "、".join(col.aliases)
        note = col.note + (f"（也可写作 also headed: {names}）" if names else "")
        lines.append((col.header, "是" if col.key in REQUIRED else "", note, col.values))
    lines.append(("", "", "", ""))
    lines.append(("工种 写法 Worker types", "", "下列写法均可 (all accepted)", ""))
    for code, (zh, en) in WORKER_TYPE_LABELS.items():
        words = [w for w, c in WORKER_TYPE_WORDS.items() if c == code and w != code]
        lines.append((zh, "", f"{en} ({code})", "、".join(words)))
    return lines


@functools.cache
def template_xlsx() -> bytes:
    """The demand template workbook as bytes (made once per process: it never changes)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = DATA_SHEET
    sheet.freeze_panes = "A2"
    for i, col in enumerate(DEMAND_COLUMNS, start=1):
        letter = get_column_letter(i)
        required = col.key in REQUIRED
        cell = sheet.cell(row=1, column=i, value=col.header + ("*" if required else ""))
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="FDE9D9" if required else "EEF3F8")
        cell.alignment = Alignment(horizontal="center")
        sheet.column_dimensions[letter].width = col.width
        sheet.cell(row=2, column=i, value=EXAMPLE[col.key]).font = Font(italic=True,
                                                                        color="808080")
        if col.choices:
            rule = DataValidation(type="list", formula1='"' + ",".join(col.choices) + '"',
                                  allow_blank=True, errorStyle="warning",
                                  errorTitle=col.header, showErrorMessage=True,
                                  error=f"可填：{'、'.join(col.choices)}"[:255])
            rule.add(f"{letter}2:{letter}5000")
            sheet.add_data_validation(rule)
    readme = book.create_sheet(README_SHEET)
    for width, letter in zip((22, 12, 70, 50), "ABCD", strict=True):
        readme.column_dimensions[letter].width = width
    for n, line in enumerate(readme_lines(), start=1):
        readme.append(list(line))
        for cell in readme[n]:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            if n == 1 or line[0].startswith("列 "):
                cell.font = Font(bold=True)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
