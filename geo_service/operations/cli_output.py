"""Tables for people and CSV for spreadsheets: how the operations commands print rows.

Kept apart from the commands so the formatting (Chinese characters two columns
wide, numbers right-aligned, free text cut for the screen but whole in CSV,
formula-looking cells neutralised) can be tested without a database.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

Columns = Sequence[tuple[str, str]]  # (key in the row, heading)
#: Free text in a table is cut to this many columns; --json and --csv keep all of it.
_TEXT_WIDTH = 40


def _width(text: str) -> int:
    """Terminal columns: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _cell(value: Any, zone: ZoneInfo) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return f"{value.astimezone(zone):%Y-%m-%d %H:%M}"
    if isinstance(value, float):
        return f"{value:g}"
    text = " ".join(str(value).split())
    if _width(text) > _TEXT_WIDTH:
        while _width(text) > _TEXT_WIDTH - 1:
            text = text[:-1]
        text += "…"
    return text


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def print_table(rows: Sequence[dict[str, Any]], columns: Columns, zone: ZoneInfo) -> None:
    """Rows as aligned columns; numbers right-aligned."""
    if not rows:
        print("(none)")
        return
    cells = [[_cell(r.get(key), zone) for key, _ in columns] for r in rows]
    numeric = [any(_is_number(r.get(key)) for r in rows)
               and all(r.get(key) is None or _is_number(r.get(key)) for r in rows)
               for key, _ in columns]
    widths = [max(_width(h), *(_width(c[i]) for c in cells)) for i, (_, h) in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = []
        for v, w, num in zip(values, widths, numeric, strict=True):
            pad = " " * (w - _width(v))
            parts.append(pad + v if num else v + pad)
        return "  ".join(parts).rstrip()

    print(line([h for _, h in columns]))
    print(line(["-" * w for w in widths]))
    for c in cells:
        print(line(c))


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Columns) -> None:
    """The table as CSV for Excel (BOM, CRLF; text cells that a spreadsheet would run as a
    formula are neutralised, as in the platform exports)."""
    from geo_service.feeds.export_formats import BOM, encode_csv, neutralise

    def value(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, dt.date | int | float):
            return v.isoformat() if isinstance(v, dt.date) else str(v)
        return neutralise(str(v))

    data = [[h for _, h in columns], *[[value(r.get(k)) for k, _ in columns] for r in rows]]
    path.write_bytes(BOM + encode_csv(data))
