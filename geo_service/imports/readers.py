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
) -> list[str]:
    """The row key of each header cell; unknown, missing and duplicate columns refused.

    Without ``aliases`` a header must be a column's own name. With them (a room's
    other names for its columns, keyed by a normaliser's output), each header is
    normalised first and may be either; ``names`` then receives, for each key,
    the header as the file wrote it, so problems can name the column the person sees.
    """
    given = [h.strip() for h in header]
    if aliases is None:
        cols = given
    else:
        cols = []
        for h in given:
            norm = normalise_header(h)
            key = aliases.get(norm, norm if norm in columns else h)
            cols.append(key if h else "")
    unknown = [g for g, c in zip(given, cols, strict=True) if c and c not in columns]
    missing = [c for c in required if c not in cols]
    # a missing column also by the first name the room's aliases give it (站点编码)
    labels: dict[str, str] = {}
    for alias, key in (aliases or {}).items():
        labels.setdefault(key, alias)
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
        names.update((c, g) for c, g in seen.items() if c)
    return cols


def _too_many(max_rows: int) -> FileError:
    return FileError(f"more than {max_rows} rows; split the file",
                     [("file", f"at most {max_rows} rows per import")])


@dataclass
class Table:
    """A file's rows, the columns it has, and each column's header as the file wrote it."""

    rows: list[dict[str, Any]]
    present: set[str]
    headers: dict[str, str] = field(default_factory=dict)


def read_table(
    data: bytes, fmt: Format, max_rows: int, columns: tuple[str, ...],
    required: tuple[str, ...], limits: Limits = DEFAULT_LIMITS,
    aliases: Mapping[str, str] | None = None,
) -> Table:
    """Parse a file into raw row dicts keyed by ``columns``; see :func:`read_rows`.

    ``aliases`` (normalised header → column, :func:`normalise_header`) lets a room
    accept other names for its columns, such as the Chinese headers of a union
    office's spreadsheet; ``Table.headers`` says which header gave each column.
    """
    names: dict[str, str] = {}
    if fmt is Format.XLSX:
        check_archive(data, limits)
        rows, cols = _read_xlsx(data, max_rows, columns, required, aliases, names)
    elif fmt is Format.GEOJSON:
        rows, cols = _read_geojson(data, max_rows, columns)
    else:
        rows, cols = _read_csv(data, max_rows, columns, required, aliases, names)
    check_cells(rows, limits.cell_chars)
    return Table(rows, cols, names)


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
) -> tuple[list[dict[str, Any]], set[str]]:
    reader = csv.reader(io.StringIO(decode_csv(data), newline=""))
    try:
        cols = _check_header(next(reader), columns, required, aliases, names)
        rows: list[dict[str, Any]] = []
        for r in reader:
            if any(c.strip() for c in r):
                rows.append(dict(zip(cols, r, strict=False)))
                if len(rows) > max_rows:
                    raise _too_many(max_rows)
    except StopIteration:
        raise FileError("empty file", [("file", "no header row")]) from None
    except csv.Error as exc:
        raise FileError(f"bad CSV: {exc}", [("file", "malformed CSV")]) from None
    return rows, set(cols)


def _read_xlsx(
    data: bytes, max_rows: int, columns: tuple[str, ...], required: tuple[str, ...],
    aliases: Mapping[str, str] | None = None, names: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], set[str]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise FileError(f"not a readable XLSX file ({type(exc).__name__})",
                        [("file", "malformed XLSX")]) from None
    if not wb.worksheets:
        raise FileError("the workbook has no worksheet", [("file", "no worksheet")])
    ws = wb.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        raise FileError("empty workbook", [("file", "no header row")])
    cols = _check_header(["" if h is None else str(h) for h in header], columns, required,
                         aliases, names)
    out = []
    for values in rows:
        if all(v is None or str(v).strip() == "" for v in values):
            continue
        row = {}
        for col, value in zip(cols, values, strict=False):
            if isinstance(value, dt.datetime):
                value = value.date().isoformat()
            row[col] = value
        out.append(row)
        if len(out) > max_rows:
            raise _too_many(max_rows)
    wb.close()
    return out, set(cols)


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
