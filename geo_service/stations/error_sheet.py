"""The clerk's own sheet handed back with a 错误说明 (error) column beside each refused row.

Same workbook, same layout (title rows, merged cells, widths and every other sheet
kept): one column is added after the header's last one, headed 错误说明, and each
refused row gets its problems there ("开放时间：开放时间的写法无法识别（示例：…）"), so the
clerk fixes the cells in Excel and uploads the file again. A column of that name from a
previous round is reused rather than added twice (the importer sets it aside as an
unknown column). CSV comes back as CSV (UTF-8 with BOM, which Excel opens as such).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from geo_service.imports.readers import Format, decode_csv

ERROR_HEADER = "错误说明"


def _messages(errors: Iterable[Mapping[str, Any]]) -> dict[int, str]:
    by_row: dict[int, list[str]] = defaultdict(list)
    for e in errors:
        line = e.get("sheet_row")
        if line is None:
            continue
        reason = e.get("reason_zh") or e.get("problem")
        hint = f"（{e['hint']}）" if e.get("hint") else ""
        text = f"{e.get('column') or e['field']}：{reason}{hint}"
        if text not in by_row[int(line)]:
            by_row[int(line)].append(text)
    return {line: "；".join(texts) for line, texts in by_row.items()}


def with_error_column(data: bytes, fmt: Format, errors: Iterable[Mapping[str, Any]],
                      header_row: int) -> bytes:
    """The uploaded file with a 错误说明 column filled in on each refused row.

    ``errors``: the import report's problems (their ``sheet_row``, column, Chinese
    reason and hint); ``header_row``: the spreadsheet row of the header.
    """
    messages = _messages(errors)
    if fmt is Format.CSV:
        return _csv(data, messages, header_row)
    from openpyxl import load_workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    book = load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    column = None
    for cell in sheet[header_row]:
        if isinstance(cell.value, str) and cell.value.strip() == ERROR_HEADER:
            column = cell.column
    if column is None:  # after every column (the last header cell may be merged)
        column = sheet.max_column + 1
    head = sheet.cell(row=header_row, column=column, value=ERROR_HEADER)
    head.font = Font(bold=True, color="B3261E")
    fill = PatternFill("solid", fgColor="FDECEA")
    for line in range(header_row + 1, sheet.max_row + 1):
        text = messages.get(line)
        cell = sheet.cell(row=line, column=column, value=text)
        if text:
            cell.fill = fill
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    from openpyxl.utils import get_column_letter

    sheet.column_dimensions[get_column_letter(column)].width = 60
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _csv(data: bytes, messages: Mapping[int, str], header_row: int) -> bytes:
    records = list(csv.reader(io.StringIO(decode_csv(data), newline="")))
    width = max((len(r) for r in records), default=0)
    header = records[header_row - 1] if len(records) >= header_row else []
    at = next((i for i, h in enumerate(header) if h.strip() == ERROR_HEADER), width)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for line, record in enumerate(records, start=1):
        cells = record + [""] * (max(width, at + 1) - len(record))
        if line == header_row:
            cells[at] = ERROR_HEADER
        elif line > header_row:
            cells[at] = messages.get(line, "")
        writer.writerow(cells)
    return ("\ufeff" + out.getvalue()).encode("utf-8")
