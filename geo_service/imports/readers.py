"""Reading CSV, XLSX and GeoJSON files into raw row dicts, for any import.

Chinese Excel writes CSV in GBK, so CSV is read as UTF-8 (with or without BOM)
and falls back to GB18030, a superset of GBK. A header is checked against the
columns the import knows, so a typo'd column is refused by name instead of
silently ignored. Values are left as the file has them (strings, Excel
numbers and dates); each room validates its rows with its own model, after
:func:`clean_row`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from geo_service.domain.errors import clip
from geo_service.imports.limits import (
    DEFAULT_LIMITS,
    FileError,
    Limits,
    check_archive,
    check_cells,
)


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    GEOJSON = "geojson"


#: Cell text read as true in a yes/no column (Excel users write 是 as often as TRUE).
YES = ("true", "1", "yes", "y", "是")


def guess_format(filename: str, data: bytes) -> Format:
    """By extension, else by content: a zip is an XLSX, a JSON object GeoJSON, else CSV."""
    name = filename.lower()
    if name.endswith((".xlsx", ".xlsm")) or data[:4] == b"PK\x03\x04":
        return Format.XLSX
    if name.endswith((".geojson", ".json")) or data.lstrip()[:1] == b"{":
        return Format.GEOJSON
    return Format.CSV


def decode_csv(data: bytes) -> str:
    """UTF-8 (BOM or not), else GB18030; anything else is refused by name."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise FileError("file is neither UTF-8 nor GB18030 text",
                        [("file", "unknown text encoding")]) from None


def normalise_header(text: str) -> str:
    """A header cell as matched against aliases: NFKC (full-width letters and brackets
    become plain), no spaces or ``*`` required markers, no bracketed unit, lower case.

    >>> normalise_header(" *经度（°）")
    '经度'
    """
    norm = unicodedata.normalize("NFKC", text)
    norm = re.sub(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】", "", norm)
    return re.sub(r"[\s*]", "", norm).lower()


def _check_header(
    header: list[str], columns: tuple[str, ...], required: tuple[str, ...],
    aliases: Mapping[str, str] | None = None, names: dict[str, str] | None = None,
    ignored: list[str] | None = None,
) -> list[str]:
    """The row key of each header cell; unknown, missing and duplicate columns refused.

    Without ``aliases`` a header must be a column's own name. With them (a room's
    other names for its columns, keyed by a normaliser's output), each header is
    normalised first and may be either; ``names`` then receives, for each key,
    the header as the file wrote it, so problems can name the column the person sees.
    With ``ignored`` (a list to fill), an unknown column (序号, 备注 …) is not refused:
    its header goes to the list and its cells under a ``_`` key no row reads (but a
    header refused for a missing column names them too: one may be its typo).
    """
    given = [h.strip() for h in header]
    set_aside: list[str] = []
    if aliases is None:
        cols = given
    else:
        cols = []
        for i, h in enumerate(given):
            norm = normalise_header(h)
            key = aliases.get(norm, norm if norm in columns else h)
            if ignored is not None and (not h or key not in columns):
                if h:
                    ignored.append(f"{clip(h)} ({column_letter(i)})")
                    set_aside.append(h)
                key = f"_ignored{i}"
            cols.append(key if h or ignored is not None else "")
    unknown = [g for g, c in zip(given, cols, strict=True)
               if c and c not in columns and not c.startswith("_")]
    missing = [c for c in required if c not in cols]
    # a missing column also by the first name the room's aliases give it (站点编码)
    labels: dict[str, str] = {}
    for alias, key in (aliases or {}).items():
        labels.setdefault(key, alias)
    if missing:  # a typo'd required column: the columns set aside may be it
        unknown += set_aside
    problems = [(clip(c), "unknown column") for c in unknown[:20]] + [
        (c, f"required column missing ({labels[c]})" if c in labels
         else "required column missing") for c in missing]
    seen: dict[str, str] = {}
    for g, c in zip(given, cols, strict=True):
        if c in seen:
            problems.append(("header", f"duplicate column: {clip(seen[c])} and {clip(g)} "
                                       f"both give {c}" if seen[c] != g
                             else "duplicate column names"))
        seen.setdefault(c, g)
    if problems:
        raise FileError("header: " + "; ".join(f"{c}: {p}" for c, p in problems), problems)
    if names is not None:
        names.update((c, g) for c, g in seen.items() if c and not c.startswith("_"))
    return cols


def column_letter(index: int) -> str:
    """Excel's letter for a 0-based column index (0 → A, 26 → AA)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


#: A ledger's header is looked for in its first rows (title rows above it are common).
HEADER_SCAN = 10


def _find_header(
    head: list[list[Any]], columns: tuple[str, ...], aliases: Mapping[str, str],
) -> tuple[int, list[str]]:
    """Where a ledger's header is among its first rows, and its cells.

    The header is the row naming the most known columns (title rows above it name
    none); a second header row below it (a merged group such as 十个一 over its ten
    columns) supplies the names its upper row lacks. Returns the index of the last
    header row in ``head`` and the header texts (row 0 when nothing is recognised, so
    the refusal names the missing columns as before).
    """
    def known(value: Any) -> bool:
        norm = normalise_header("" if value is None else str(value))
        return bool(norm) and (norm in aliases or norm in columns)

    def text(value: Any) -> str:
        return "" if value is None else str(value)

    scores = [sum(known(v) for v in row) for row in head]
    best = max(range(len(scores)), key=lambda i: (scores[i], -i)) if scores else 0
    if not scores or scores[best] < 2:
        return 0, [text(v) for v in head[0]] if head else []
    header = [text(v) for v in head[best]]
    if best + 1 < len(head):
        below = head[best + 1]
        width = max(len(header), len(below))
        header += [""] * (width - len(header))
        merged = [b if not known(h) and known(b) else h
                  for h, b in zip(header, [*below, *[None] * (width - len(below))], strict=True)]
        if merged != header:
            return best + 1, [text(v) for v in merged]
    return best, header


def _merged_ranges(ws: Any) -> list[tuple[int, int, int, int]]:
    """The merged ranges of a read-only worksheet as (min_row, min_col, max_row, max_col),
    1-based. openpyxl's read-only mode does not read them, so the sheet's XML is scanned
    for ``<mergeCell ref="A1:D1"/>`` (a private path of openpyxl's read-only sheet; a
    test with a merged header fails loudly if it moves)."""
    from openpyxl.utils.cell import range_boundaries

    path = getattr(ws, "_worksheet_path", None)
    archive = getattr(getattr(ws, "parent", None), "_archive", None)
    if path is None or archive is None:
        return []
    found: list[tuple[int, int, int, int]] = []
    pattern = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')
    with archive.open(path) as stream:
        tail = b""
        while chunk := stream.read(1 << 20):
            text = tail + chunk
            end = 0
            for match in pattern.finditer(text):
                c0, r0, c1, r1 = range_boundaries(match.group(1).decode())
                assert c0 is not None and r0 is not None and c1 is not None and r1 is not None
                found.append((r0, c0, r1, c1))
                end = match.end()
            tail = text[max(end, len(text) - 200):]
    return found


def _too_many(max_rows: int) -> FileError:
    return FileError(f"more than {max_rows} rows; split the file",
                     [("file", f"at most {max_rows} rows per import")])


@dataclass
class Table:
    """A file's rows, the columns it has, and each column's header as the file wrote it."""

    rows: list[dict[str, Any]]
    present: set[str]
    headers: dict[str, str] = field(default_factory=dict)
    #: Columns kept aside (a ledger's 序号, 备注 …), as "header (letter)".
    ignored: list[str] = field(default_factory=list)
    #: The spreadsheet row of the (last) header row, as Excel numbers it (1 = top).
    header_row: int = 1


def read_table(
    data: bytes, fmt: Format, max_rows: int, columns: tuple[str, ...],
    required: tuple[str, ...], limits: Limits = DEFAULT_LIMITS,
    aliases: Mapping[str, str] | None = None, ledger: bool = False,
) -> Table:
    """Parse a file into raw row dicts keyed by ``columns``; see :func:`read_rows`.

    ``aliases`` (normalised header → column, :func:`normalise_header`) lets a room
    accept other names for its columns, such as the Chinese headers of a union
    office's spreadsheet; ``Table.headers`` says which header gave each column.
    ``ledger`` (with ``aliases``): read a ledger as people keep it (the header under
    title rows, merged cells, unknown columns set aside in ``Table.ignored``).
    Every row carries ``_line``, its row as the spreadsheet shows it.
    """
    names: dict[str, str] = {}
    layout = _Layout(ledger=aliases is not None and ledger)
    if fmt is Format.XLSX:
        check_archive(data, limits)
        rows, cols = _read_xlsx(data, max_rows, columns, required, aliases, names, layout)
    elif fmt is Format.GEOJSON:
        rows, cols = _read_geojson(data, max_rows, columns)
    else:
        rows, cols = _read_csv(data, max_rows, columns, required, aliases, names, layout)
    check_cells(rows, limits.cell_chars)
    return Table(rows, cols, names, layout.ignored, layout.header_row)


@dataclass
class _Layout:
    """Whether to read a ledger's layout; where its header was found and which columns
    it set aside."""

    ledger: bool = False
    ignored: list[str] = field(default_factory=list)
    header_row: int = 1


def read_rows(
    data: bytes, fmt: Format, max_rows: int, columns: tuple[str, ...],
    required: tuple[str, ...], limits: Limits = DEFAULT_LIMITS,
) -> tuple[list[dict[str, Any]], set[str]]:
    """Parse a file into raw row dicts and the set of ``columns`` it has.

    A GeoJSON Point becomes ``lon`` and ``lat``; a feature without one gets a
    ``_geometry_problem`` for the validator to report against its row.

    Stops as soon as the row cap is passed, so a huge file of tiny rows
    cannot exhaust memory before it is refused; no cell may be longer than
    ``limits.cell_chars``.
    """
    table = read_table(data, fmt, max_rows, columns, required, limits)
    return table.rows, table.present


def _read_csv(
    data: bytes, max_rows: int, columns: tuple[str, ...], required: tuple[str, ...],
    aliases: Mapping[str, str] | None = None, names: dict[str, str] | None = None,
    layout: _Layout | None = None,
) -> tuple[list[dict[str, Any]], set[str]]:
    """Each row carries ``_line``: its record number, as a spreadsheet shows it."""
    reader = csv.reader(io.StringIO(decode_csv(data), newline=""))
    layout = layout if layout is not None else _Layout()
    try:
        pending: list[list[Any]] = []
        if aliases is None or not layout.ledger:
            cols = _check_header(next(reader), columns, required, aliases, names)
            start = 1
        else:
            head: list[list[Any]] = []
            for record in reader:
                head.append(list(record))
                if len(head) > HEADER_SCAN:
                    break
            if not head:
                raise StopIteration
            at, header = _find_header(head, columns, aliases)
            cols = _check_header(header, columns, required, aliases, names, layout.ignored)
            layout.header_row = start = at + 1
            pending = head[at + 1:]
        rows: list[dict[str, Any]] = []
        line = start
        for r in itertools.chain(pending, reader):
            line += 1
            if any(str(c).strip() for c in r):
                row: dict[str, Any] = dict(zip(cols, r, strict=False))
                row["_line"] = line
                rows.append(row)
                if len(rows) > max_rows:
                    raise _too_many(max_rows)
    except StopIteration:
        raise FileError("empty file", [("file", "no header row")]) from None
    except csv.Error as exc:
        raise FileError(f"bad CSV: {exc}", [("file", "malformed CSV")]) from None
    return rows, {c for c in cols if not c.startswith("_")}


def _read_xlsx(
    data: bytes, max_rows: int, columns: tuple[str, ...], required: tuple[str, ...],
    aliases: Mapping[str, str] | None = None, names: dict[str, str] | None = None,
    layout: _Layout | None = None,
) -> tuple[list[dict[str, Any]], set[str]]:
    """The first worksheet's rows, each with ``_line`` (its row number as Excel shows it).

    Read as a ledger (``layout.ledger``): the header may sit below title rows, cells of a merged
    range read as its top-left cell (a merged header; a 所属区县 merged down a column of
    stations), unknown columns are set aside in ``layout``.
    """
    from openpyxl import load_workbook

    layout = layout if layout is not None else _Layout()
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise FileError(f"not a readable XLSX file ({type(exc).__name__})",
                        [("file", "malformed XLSX")]) from None
    if not wb.worksheets:
        raise FileError("the workbook has no worksheet", [("file", "no worksheet")])
    ws = wb.worksheets[0]
    fill: dict[tuple[int, int], tuple[int, int]] = {}
    if layout.ledger:
        for r0, c0, r1, c1 in _merged_ranges(ws):
            if r0 <= HEADER_SCAN + 1 or c0 == c1:  # header merges; a column's merges
                for r in range(r0, r1 + 1):
                    for c in range(c0, c1 + 1):
                        if (r, c) != (r0, c0):
                            fill[(r, c)] = (r0, c0)
    tops: dict[tuple[int, int], Any] = {}
    sources = set(fill.values())

    def numbered() -> Any:
        for line, values in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
            cells = list(values)
            if fill:
                for c, value in enumerate(cells, start=1):
                    if (line, c) in sources:
                        tops[(line, c)] = value
                    src = fill.get((line, c))
                    if src is not None and value is None:
                        cells[c - 1] = tops.get(src)
            yield line, cells

    rows = numbered()
    if aliases is None or not layout.ledger:
        first = next(rows, None)
        if first is None:
            raise FileError("empty workbook", [("file", "no header row")])
        header = ["" if h is None else str(h) for h in first[1]]
        pending: list[tuple[int, list[Any]]] = []
    else:
        head: list[tuple[int, list[Any]]] = []
        for item in rows:
            head.append(item)
            if len(head) > HEADER_SCAN:
                break
        if not head:
            raise FileError("empty workbook", [("file", "no header row")])
        at, header = _find_header([cells for _, cells in head], columns, aliases)
        layout.header_row = head[at][0]
        pending = head[at + 1:]
    cols = _check_header(header, columns, required, aliases, names,
                         layout.ignored if layout.ledger else None)
    out = []
    for line, values in (item for chunk in (pending, rows) for item in chunk):
        if all(v is None or str(v).strip() == "" for v in values):
            continue
        row: dict[str, Any] = {}
        for col, value in zip(cols, values, strict=False):
            if isinstance(value, dt.datetime):
                value = value.date().isoformat()
            row[col] = value
        row["_line"] = line
        out.append(row)
        if len(out) > max_rows:
            raise _too_many(max_rows)
    wb.close()
    return out, {c for c in cols if not c.startswith("_")}


def _read_geojson(
    data: bytes, max_rows: int, columns: tuple[str, ...]
) -> tuple[list[dict[str, Any]], set[str]]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise FileError("not valid JSON", [("file", "malformed GeoJSON")]) from None
    except RecursionError:  # arrays or objects nested past the parser's recursion limit
        raise FileError("JSON nested too deeply", [("file", "nested too deeply")]) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
        doc.get("features"), list
    ):
        raise FileError("expected a GeoJSON FeatureCollection",
                        [("file", "not a FeatureCollection")])
    if len(doc["features"]) > max_rows:
        raise _too_many(max_rows)
    out: list[dict[str, Any]] = []
    present: set[str] = {"lon", "lat"}
    for feature in doc["features"]:
        raw_props = feature.get("properties") if isinstance(feature, dict) else None
        if raw_props is not None and not isinstance(raw_props, dict):
            out.append({"_geometry_problem": "properties must be a JSON object"})
            continue
        props = dict(raw_props or {})
        present.update(k for k in props if k in columns)
        geom = feature.get("geometry") if isinstance(feature, dict) else None
        coords = geom.get("coordinates") if isinstance(geom, dict) else None
        if isinstance(geom, dict) and geom.get("type") == "Point" and isinstance(coords, list) \
                and len(coords) >= 2:
            props["lon"], props["lat"] = coords[0], coords[1]
        else:
            props["lon"] = props["lat"] = None
            props["_geometry_problem"] = "geometry must be a Point [lon, lat]"
        if isinstance(props.get("amenities"), list):
            props["amenities"] = ";".join(str(a) for a in props["amenities"])
        out.append(props)
    return out, present


def clean_row(raw: dict[str, Any], flags: tuple[str, ...] = ("sample",)) -> dict[str, Any]:
    """A raw row as a model should see it: blank cells gone, text stripped, and the
    yes/no ``flags`` given as text made booleans (:data:`YES`).

    Blank means absent, so a model's default applies to an empty cell exactly
    as to a missing column; keys starting with ``_`` are the reader's notes.
    """
    row: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("_") or value is None:
            continue
        if isinstance(value, str):
            value = value.strip()
            if value == "":
                continue
        row[key] = value
    for key in flags:
        if isinstance(row.get(key), str):
            row[key] = row[key].lower() in YES
    return row
