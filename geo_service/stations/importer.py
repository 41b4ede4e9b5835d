"""Station import from CSV, XLSX and GeoJSON: validate everything, then write atomically.

All-or-nothing by default: one bad row and nothing is written, and the report
names every bad row, field and reason. ``skip_bad_rows`` writes the good rows.
Writes are an upsert by code that leaves unchanged rows untouched (same
version, same ``updated_at``), so importing a file twice changes nothing.
Chinese Excel writes CSV in GBK, so CSV is read as UTF-8 (with or without BOM)
and falls back to GB18030, a superset of GBK.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import math
import uuid
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from psycopg import AsyncConnection
from pydantic import ValidationError

from geo_service.audit import set_actor
from geo_service.auth import Principal
from geo_service.coords import Crs
from geo_service.errors import clip
from geo_service.schemas import StationCreate
from geo_service.stations import queries as q
from geo_service.stations.import_limits import (
    DEFAULT_LIMITS,
    FileError,
    Limits,
    check_archive,
    check_cells,
    summarise,
)
from geo_service.stations.service import names_alike, to_record


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    GEOJSON = "geojson"


class Mode(StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    SKIP_BAD_ROWS = "skip_bad_rows"


COLUMNS = (
    "code", "name", "name_en", "address", "province", "province_code", "city", "city_code",
    "district", "district_code", "street", "street_code", "lon", "lat", "host_type", "status",
    "opening_hours", "timezone", "phone", "floor_area_m2", "seats", "opened_on", "amenities",
    "last_verified_on", "sample",
)
REQUIRED = ("code", "name", "lon", "lat", "host_type", "opening_hours")




def guess_format(filename: str, data: bytes) -> Format:
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


def _check_header(
    header: list[str], columns: tuple[str, ...], required: tuple[str, ...]
) -> list[str]:
    cols = [h.strip() for h in header]
    unknown = [c for c in cols if c and c not in columns]
    missing = [c for c in required if c not in cols]
    problems = [(clip(c), "unknown column") for c in unknown[:20]] + [
        (c, "required column missing") for c in missing]
    if len(set(cols)) != len(cols):
        problems.append(("header", "duplicate column names"))
    if problems:
        raise FileError("header: " + "; ".join(f"{c}: {p}" for c, p in problems), problems)
    return cols


def _too_many(max_rows: int) -> FileError:
    return FileError(f"more than {max_rows} rows; split the file",
                     [("file", f"at most {max_rows} rows per import")])


def read_rows(
    data: bytes, fmt: Format, max_rows: int = 1_000_000,
    columns: tuple[str, ...] = COLUMNS, required: tuple[str, ...] = REQUIRED,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[list[dict[str, Any]], set[str]]:
    """Parse a file into raw row dicts and the set of columns it has.

    Stops as soon as the row cap is passed, so a huge file of tiny rows
    cannot exhaust memory before it is refused; no cell may be longer than
    ``limits.cell_chars``.
    """
    if fmt is Format.XLSX:
        check_archive(data, limits)
        rows, cols = _read_xlsx(data, max_rows, columns, required)
    elif fmt is Format.GEOJSON:
        rows, cols = _read_geojson(data, max_rows, columns)
    else:
        rows, cols = _read_csv(data, max_rows, columns, required)
    check_cells(rows, limits.cell_chars)
    return rows, cols


def _read_csv(
    data: bytes, max_rows: int, columns: tuple[str, ...], required: tuple[str, ...]
) -> tuple[list[dict[str, Any]], set[str]]:
    reader = csv.reader(io.StringIO(decode_csv(data), newline=""))
    try:
        cols = _check_header(next(reader), columns, required)
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
    data: bytes, max_rows: int, columns: tuple[str, ...], required: tuple[str, ...]
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
    cols = _check_header(["" if h is None else str(h) for h in header], columns, required)
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


def _clean(raw: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("_") or value is None:
            continue
        if isinstance(value, str):
            value = value.strip()
            if value == "":
                continue
        row[key] = value
    if "amenities" in row:
        text = str(row["amenities"]).replace(",", ";").replace("|", ";")
        row["amenities"] = [a.strip() for a in text.split(";") if a.strip()]
    if isinstance(row.get("sample"), str):
        row["sample"] = row["sample"].lower() in ("true", "1", "yes", "y", "是")
    for key in ("province_code", "city_code", "district_code", "street_code", "phone", "code"):
        value = row.get(key)
        if (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and math.isfinite(value) and value.is_integer()
        ):
            row[key] = str(int(value))  # Excel turns codes into numbers
        # other numbers (NaN, 1.5) stay numbers and fail validation as "not a string"
    return row


def validate_rows(
    raw_rows: list[dict[str, Any]], crs: Crs
) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]]]:
    """Every row validated; returns (row number, record) pairs and the problems found."""
    records: list[tuple[int, dict[str, Any]]] = []
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    now = dt.datetime.now(dt.UTC)
    for n, raw in enumerate(raw_rows, start=1):
        row = _clean(raw)
        code = str(row.get("code")) if row.get("code") is not None else None
        if raw.get("_geometry_problem"):
            field = "properties" if "properties" in raw["_geometry_problem"] else "geometry"
            problems.append({"row": n, "code": code, "field": field,
                             "problem": raw["_geometry_problem"]})
            continue
        try:
            body = StationCreate.model_validate(row)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "row"
                problems.append({"row": n, "code": code, "field": field, "problem": err["msg"]})
            continue
        if body.code in seen:
            problems.append({"row": n, "code": body.code, "field": "code",
                             "problem": f"same code as row {seen[body.code]}"})
            continue
        seen[body.code] = n
        records.append((n, to_record(body.model_dump(), crs, now=now)))
    return records, problems


_TEMP = """
CREATE TEMP TABLE _imp (
    rownum int, code text, name text, name_en text, address text, province text,
    province_code text, city text, city_code text, district text, district_code text,
    street text, street_code text, lon float8, lat float8, host_type text, status text,
    opening_hours text, timezone text, hours_kind text, open_minutes text, open_periods text,
    hours_valid_until timestamptz, phone text, floor_area_m2 numeric, seats int, opened_on date,
    amenity_mask bigint, last_verified_on date, sample bool
) ON COMMIT DROP
"""
_IMP_COLS = ("rownum", *(c for c in q.WRITE_COLUMNS), "lon", "lat")

_UNKNOWN_TZ = """
SELECT i.rownum, i.code, i.timezone FROM _imp i
WHERE i.timezone NOT IN (SELECT name FROM pg_timezone_names)
ORDER BY i.rownum
"""

_PLACE = """
CREATE TEMP TABLE _adm ON COMMIT DROP AS
SELECT DISTINCT ON (i.rownum) i.rownum, d.code AS dc, d.name AS dn, c.code AS cc,
       c.name AS cn, p.code AS pc, p.name AS pn
FROM _imp i
JOIN admin_area d ON d.level = 'district'
     AND ST_Covers(d.geom, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326))
LEFT JOIN admin_area c ON c.code = d.parent_code
LEFT JOIN admin_area p ON p.code = c.parent_code
ORDER BY i.rownum, d.code
"""

# Codes given in the file that contradict the polygon covering the point.
_MISPLACED = """
SELECT i.rownum, i.code, f.field, f.given, f.actual
FROM _imp i JOIN _adm a USING (rownum)
CROSS JOIN LATERAL (VALUES ('district_code', i.district_code, a.dc),
                           ('city_code', i.city_code, a.cc),
                           ('province_code', i.province_code, a.pc)) f(field, given, actual)
WHERE f.given IS NOT NULL AND f.actual IS NOT NULL AND f.given <> f.actual
ORDER BY i.rownum
"""

_FILL_ADMIN = """
UPDATE _imp i SET
    district_code = a.dc, district = coalesce(i.district, a.dn),
    city_code = coalesce(a.cc, i.city_code), city = coalesce(i.city, a.cn),
    province_code = coalesce(a.pc, i.province_code), province = coalesce(i.province, a.pn)
FROM _adm a WHERE i.rownum = a.rownum
"""

# Street codes that are not a street of the row's district (see geo_street_problem).
_BAD_STREET = """
SELECT rownum, code, problem FROM (
    SELECT i.rownum, i.code, geo_street_problem(i.street_code, i.district_code, i.lon, i.lat)
           AS problem
    FROM _imp i WHERE i.street_code IS NOT NULL) p
WHERE problem IS NOT NULL ORDER BY rownum
"""

# Rows a scoped key may not write: the new point, or the stored station it
# replaces, lies outside the key's area (by polygon where the area has one).
_OUT_OF_SCOPE = """
SELECT i.rownum, i.code
FROM _imp i
JOIN admin_area a ON a.code = %(area)s
LEFT JOIN station s ON s.code = i.code
WHERE NOT CASE
    WHEN a.geom IS NOT NULL THEN
        ST_Covers(a.geom, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326))
        AND (s.code IS NULL OR ST_Covers(a.geom, s.geog::geometry))
    ELSE
        %(area)s IN (coalesce(i.province_code, ''), coalesce(i.city_code, ''),
                     coalesce(i.district_code, ''), coalesce(i.street_code, ''))
        AND (s.code IS NULL OR %(area)s IN (
            coalesce(s.province_code, ''), coalesce(s.city_code, ''),
            coalesce(s.district_code, ''), coalesce(s.street_code, '')))
    END
ORDER BY i.rownum
"""

# Which stored columns a file column drives. Columns a file does not have keep
# their stored values when a station is updated (a file without ``status``
# must not reopen a closed station); new stations get the defaults.
_DERIVED = {
    "opening_hours": ("opening_hours", "timezone", "hours_kind", "open_minutes",
                      "open_periods", "hours_valid_until"),
    "amenities": ("amenity_mask",),
}
_ALWAYS = ("name", "province", "province_code", "city", "city_code", "district",
           "district_code", "street", "street_code", "host_type", "opening_hours")
_NOT_COMPARED = ("hours_kind", "open_minutes", "open_periods", "hours_valid_until")


def _upsert_sql(present: set[str]) -> str:
    """The upsert for a file with these columns; unchanged rows are left alone."""
    sources = present | set(_ALWAYS)
    updated: list[str] = []
    for col in sources:
        updated.extend(_DERIVED.get(col, (col,) if col in q.WRITE_COLUMNS else ()))
    cols = [c for c in q.WRITE_COLUMNS if c in updated and c != "code"]
    compared = [c for c in cols if c not in _NOT_COMPARED]
    select = ", ".join(
        f"i.{c}::int4multirange" if c == "open_minutes" else
        f"i.{c}::tstzmultirange" if c == "open_periods" else f"i.{c}"
        for c in q.WRITE_COLUMNS)
    deleted = ("deleted_at = CASE WHEN EXCLUDED.status = 'closed' THEN s.deleted_at END,"
               if "status" in cols else "")
    return f"""
INSERT INTO station AS s ({", ".join(q.WRITE_COLUMNS)}, geog)
SELECT {select}, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326)::geography
FROM _imp i
ORDER BY i.rownum
ON CONFLICT (code) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in cols)},
    geog = EXCLUDED.geog,
    {deleted}
    version = s.version + 1,
    updated_at = now()
WHERE ({", ".join(f"s.{c}" for c in compared)}, ST_AsBinary(s.geog::geometry))
      IS DISTINCT FROM
      ({", ".join(f"EXCLUDED.{c}" for c in compared)}, ST_AsBinary(EXCLUDED.geog::geometry))
RETURNING (xmax = 0) AS inserted
"""


_DUPLICATES = """
SELECT i.code, o.code AS other_code, i.name, o.name AS other_name,
       ST_Distance(o.geog, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326)::geography) AS d
FROM _imp i
JOIN station o ON o.code <> i.code AND o.status <> 'duplicate'
 AND ST_DWithin(o.geog, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326)::geography, %(within)s)
ORDER BY i.rownum, d
"""


class _Rollback(Exception):
    """Raised inside the transaction to undo it (dry run or refused import)."""


Validator = Callable[[list[dict[str, Any]]], tuple[list[Any], list[dict[str, Any]]]]
Writer = Callable[[AsyncConnection[Any], list[Any], dict[str, Any]], Awaitable[None]]


async def run_import(
    conn: AsyncConnection[Any], raw_rows: list[dict[str, Any]], fmt: Format, *,
    mode: Mode, dry_run: bool, validate: Validator, write: Writer, limits: Limits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """The rules every import follows, whatever it imports.

    Validate every row (off the event loop: it is CPU-bound); refuse the
    whole file on any problem unless skipping bad rows; write in one
    transaction, rolled back for a dry run or when the writer found problems
    of its own in all-or-nothing mode. ``write`` fills the report's counts.
    """
    if not raw_rows:
        raise FileError("the file has no data rows", [("file", "no data rows")])
    records, problems = await asyncio.to_thread(validate, raw_rows)
    report: dict[str, Any] = {
        "format": fmt.value, "mode": mode.value, "dry_run": dry_run, "rows": len(raw_rows),
        "valid_rows": len(records), "created": 0, "updated": 0, "unchanged": 0,
        "written": False, "errors": problems, "likely_duplicates": [],
    }
    if problems and mode is Mode.ALL_OR_NOTHING:
        return summarise(report, limits.errors_reported)
    try:
        async with conn.transaction():
            await write(conn, records, report)
            if dry_run or (report["errors"] and mode is Mode.ALL_OR_NOTHING):
                raise _Rollback
            report["written"] = True
    except _Rollback:
        pass
    return summarise(report, limits.errors_reported)


def count_upserts(report: dict[str, Any], inserted_flags: list[bool]) -> None:
    """Created / updated / unchanged from an upsert's ``RETURNING (xmax = 0)`` rows."""
    report["created"] = sum(inserted_flags)
    report["updated"] = len(inserted_flags) - report["created"]
    report["unchanged"] = report["valid_rows"] - len(inserted_flags)


async def import_bytes(
    conn: AsyncConnection[Any], data: bytes, fmt: Format, *, mode: Mode, dry_run: bool,
    principal: Principal | None, max_rows: int, crs: Crs = Crs.WGS84,
    duplicate_within_m: float = 30.0, limits: Limits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """Validate and (unless refused or dry run) write stations; returns the import report."""
    raw_rows, present = await asyncio.to_thread(read_rows, data, fmt, max_rows, COLUMNS,
                                                REQUIRED, limits)
    import_id = uuid.uuid4()  # ties this import's audit entries together

    async def write(c: AsyncConnection[Any], records: list[Any], report: dict[str, Any]) -> None:
        report["import_id"] = str(import_id)
        await set_actor(c, principal, import_id)
        await _write(c, records, report, principal, mode, duplicate_within_m, present)

    return await run_import(conn, raw_rows, fmt, mode=mode, dry_run=dry_run,
                            validate=lambda rows: validate_rows(rows, crs), write=write,
                            limits=limits)


async def _write(
    conn: AsyncConnection[Any], records: list[tuple[int, dict[str, Any]]],
    report: dict[str, Any], principal: Principal | None, mode: Mode, within_m: float,
    present: set[str],
) -> None:
    async with conn.cursor() as cur:
        await cur.execute(q.LOCK_CHANGES)  # before any row lock; see queries.LOCK_CHANGES
        await cur.execute(_TEMP)
        async with cur.copy(f"COPY _imp ({', '.join(_IMP_COLS)}) FROM STDIN") as copy:
            for n, rec in records:
                await copy.write_row((n, *(rec[c] for c in _IMP_COLS[1:])))
        refused: dict[int, str] = {}
        await cur.execute(_UNKNOWN_TZ)
        for rownum, code, tz in await cur.fetchall():
            refused[rownum] = code
            report["errors"].append({"row": rownum, "code": code, "field": "timezone",
                                     "problem": f"{tz!r} is not a time zone the database knows"})
        await cur.execute(_PLACE)
        await cur.execute(_MISPLACED)
        for rownum, code, field, given, actual in await cur.fetchall():
            refused[rownum] = code
            report["errors"].append({
                "row": rownum, "code": code, "field": field,
                "problem": f"{given} does not contain the point, which lies in {actual}"})
        await cur.execute(_FILL_ADMIN)
        await cur.execute(_BAD_STREET)
        for rownum, code, problem in await cur.fetchall():
            refused[rownum] = code
            report["errors"].append({"row": rownum, "code": code, "field": "street_code",
                                     "problem": problem})
        if principal is not None and principal.area_code is not None:
            await cur.execute(_OUT_OF_SCOPE, {"area": principal.area_code})
            for rownum, code in await cur.fetchall():
                refused[rownum] = code
                report["errors"].append({
                    "row": rownum, "code": code, "field": "district_code",
                    "problem": f"outside the key's area {principal.area_code}"})
        if refused:
            report["valid_rows"] -= len(refused)
            if mode is Mode.ALL_OR_NOTHING:
                return
            await cur.execute("DELETE FROM _imp WHERE rownum = ANY(%s)", (list(refused),))
        await cur.execute(_upsert_sql(present))
        count_upserts(report, [r[0] for r in await cur.fetchall()])
        await cur.execute(_DUPLICATES, {"within": within_m})
        pairs = set()
        for code, other, name, other_name, d in await cur.fetchall():
            key = tuple(sorted((code, other)))
            if key in pairs or not names_alike(name, other_name):
                continue
            pairs.add(key)
            report["likely_duplicates"].append({
                "code": code, "other_code": other, "distance_m": round(float(d), 1),
                "name": name, "other_name": other_name})
