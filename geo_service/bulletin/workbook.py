"""A bulletin as an XLSX workbook (openpyxl): the PDF's figures, one sheet per table.

Sheets: 说明 (what, when, which coverage runs; sample data said first), 分区统计 (the
main table, a row per district and the total), 按工种 (person-times by worker type),
每日人次 (person-times per day), 驿站月末数 (stations serving at each month's end).
Numbers are written as numbers, shares as fractions formatted as percentages, so a
clerk can add them up; every text cell from the database is written as text, never as
a formula.
"""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook

from geo_service.bulletin.model import COLUMNS, Bulletin
from geo_service.bulletin.render import month_zh, runs_text

PERCENT = "0.0%"


def _text(value: str) -> str:
    """A text cell that no spreadsheet reads as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def _sheet(wb: Workbook, title: str, head: list[str], rows: list[list[Any]]) -> Any:
    ws = wb.create_sheet(title)
    ws.append(head)
    for row in rows:
        ws.append([_text(v) if isinstance(v, str) else v for v in row])
    ws.freeze_panes = "A2"
    for column in ws.columns:
        width = max(len(str(c.value or "")) for c in column)
        ws.column_dimensions[column[0].column_letter].width = min(max(10, width * 1.6), 40)
    return ws


def workbook_bytes(b: Bulletin) -> bytes:
    """The workbook as bytes."""
    wb = Workbook()
    wb.remove(wb.active)
    about: list[list[Any]] = [["区域 Area", f"{b.area_name}（{b.area_code}）"],
             ["月份 Month", f"{month_zh(b)} {b.month.label}"],
             ["期间 Period", f"{b.month.first_day} – {b.month.last_day} ({b.month.tz})"],
             ["逾期天数 Overdue after days", b.overdue_days],
             ["覆盖分析 Coverage runs", runs_text(b)],
             ["生成时间 Made", f"{b.made_at:%Y-%m-%d %H:%M}" if b.made_at else ""]]
    if b.sample:
        about.insert(0, ["示例数据 SAMPLE DATA",
                         "本通报中的驿站和运营数据为示例 The stations and operations are made up"])
    _sheet(wb, "说明", ["项目 Item", "内容 Value"], about)
    head = ["区域编码 Code", "区域 Area", *(f"{zh} {en}" for _a, zh, en in COLUMNS),
            "上月末覆盖率 Covered before", "月末覆盖率 Covered after",
            "覆盖变化 Change (pp)"]
    rows = [[f.code, f.name, *(getattr(f, a) for a, _zh, _en in COLUMNS), f.covered_before,
             f.covered_after, None if f.coverage_change is None else f.coverage_change * 100]
            for f in [*b.districts, b.total]]
    rows[-1][1] = f"合计 Total: {rows[-1][1]}"
    ws = _sheet(wb, "分区统计", head, rows)
    for row in ws.iter_rows(min_row=2):
        for cell in row[-3:-1]:
            cell.number_format = PERCENT
        row[-1].number_format = "+0.0;-0.0;0.0"
    _sheet(wb, "按工种", ["工种 Worker type", "服务人次 Person-times"],
           [[f"{zh} {en}", n] for zh, en, n in b.by_worker])
    _sheet(wb, "每日人次", ["日期 Day", "服务人次 Person-times"],
           [[d, n] for d, n in b.by_day])
    _sheet(wb, "驿站月末数", ["月份 Month", "月末在服务驿站 Serving at month end"],
           [[m, n] for m, n in b.stations_by_month])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
