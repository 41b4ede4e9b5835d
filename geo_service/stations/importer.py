"""Station import from CSV, XLSX and GeoJSON: what a station row means and how it is written.

Reading the file and the all-or-nothing rules are :mod:`geo_service.imports`,
shared with the demand import; the SQL is :mod:`.import_queries`. Here: a row
becomes a :class:`StationCreate` (the API's own rules, so a file cannot store
what the API would refuse), then the rows are checked in bulk against what
only the database knows (time zones, the polygon under each point, the key's
area) and upserted by code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import uuid
from typing import Any

from psycopg import AsyncConnection
from pydantic import ValidationError

from geo_service.audit import set_actor
from geo_service.auth import Principal
from geo_service.coords import Crs
from geo_service.imports.limits import DEFAULT_LIMITS, Limits
from geo_service.imports.readers import Format, clean_row, read_rows
from geo_service.imports.run import Mode, count_upserts, run_import
from geo_service.schemas import (
    IMPORT_CONTEXT,
    REQUIRED_STATION_FIELDS,
    STATION_FIELDS,
    StationCreate,
)
from geo_service.stations import import_queries as iq
from geo_service.stations import queries as q
from geo_service.stations.service import names_alike, to_record

#: A file's columns: the station's code and the fields a client sets (schemas.STATION_FIELDS).
COLUMNS = ("code", *STATION_FIELDS)
REQUIRED = ("code", *REQUIRED_STATION_FIELDS)
#: Columns Excel turns into numbers (``110105``, a phone number) that are text here.
_CODES = ("province_code", "city_code", "district_code", "street_code", "phone", "code")


_YES_NO_ZH = {"是": True, "否": False}


def _clean(raw: dict[str, Any]) -> dict[str, Any]:
    row = clean_row(raw)
    if "amenities" in row:
        text = str(row["amenities"]).replace(",", ";").replace("|", ";")
        row["amenities"] = [a.strip() for a in text.split(";") if a.strip()]
    if isinstance(row.get("sample"), int) and row["sample"] in (0, 1):
        row["sample"] = bool(row["sample"])  # a spreadsheet's 1/0; JSON takes true/false
    workdays = row.get("official_workdays")
    if isinstance(workdays, str) and workdays in _YES_NO_ZH:
        # Tri-state: blank = the host type's default; pydantic reads true/false/yes/no/1/0
        # and refuses anything else by name, here it also reads the Chinese yes/no.
        row["official_workdays"] = _YES_NO_ZH[workdays]
    for key in _CODES:
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
            body = StationCreate.model_validate(row, context=IMPORT_CONTEXT)
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
        await cur.execute(iq.TABLE)
        async with cur.copy(f"COPY _imp ({', '.join(iq.COLUMNS)}) FROM STDIN") as copy:
            for n, rec in records:
                await copy.write_row((n, *(rec[c] for c in iq.COLUMNS[1:])))
        refused: dict[int, str] = {}
        await cur.execute(iq.UNKNOWN_TZ)
        for rownum, code, tz in await cur.fetchall():
            refused[rownum] = code
            report["errors"].append({"row": rownum, "code": code, "field": "timezone",
                                     "problem": f"{tz!r} is not a time zone the database knows"})
        await cur.execute(iq.PLACE)
        await cur.execute(iq.MISPLACED)
        for rownum, code, field, given, actual in await cur.fetchall():
            refused[rownum] = code
            report["errors"].append({
                "row": rownum, "code": code, "field": field,
                "problem": f"{given} does not contain the point, which lies in {actual}"})
        await cur.execute(iq.FILL_ADMIN)
        await cur.execute(iq.BAD_STREET)
        for rownum, code, problem in await cur.fetchall():
            refused[rownum] = code
            report["errors"].append({"row": rownum, "code": code, "field": "street_code",
                                     "problem": problem})
        if principal is not None and principal.area_code is not None:
            await cur.execute(iq.OUT_OF_SCOPE, {"area": principal.area_code})
            for rownum, code in await cur.fetchall():
                refused[rownum] = code
                report["errors"].append({
                    "row": rownum, "code": code, "field": "district_code",
                    "problem": f"outside the key's area {principal.area_code}"})
        if refused:
            report["valid_rows"] -= len(refused)
            if mode is Mode.ALL_OR_NOTHING:
                return
            await cur.execute(iq.DROP_ROWS, (list(refused),))
        await cur.execute(iq.upsert(present))
        count_upserts(report, [r[0] for r in await cur.fetchall()])
        await cur.execute(iq.DUPLICATES, {"within": within_m})
        pairs = set()
        for code, other, name, other_name, d in await cur.fetchall():
            key = tuple(sorted((code, other)))
            if key in pairs or not names_alike(name, other_name):
                continue
            pairs.add(key)
            report["likely_duplicates"].append({
                "code": code, "other_code": other, "distance_m": round(float(d), 1),
                "name": name, "other_name": other_name})
