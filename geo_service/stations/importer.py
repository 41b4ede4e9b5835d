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

from geo_service.domain.audit import set_actor
from geo_service.domain.coords import Crs
from geo_service.domain.errors import StateConflict
from geo_service.domain.principal import Principal
from geo_service.domain.schemas import (
    IMPORT_CONTEXT,
    REQUIRED_STATION_FIELDS,
    STATION_FIELDS,
    StationCreate,
)
from geo_service.domain.sheet import (
    SHEET_KEYS,
    covered_amenities,
    header_aliases,
    is_example,
    to_station_row,
)
from geo_service.imports.limits import DEFAULT_LIMITS, Limits
from geo_service.imports.readers import Format, Table, clean_row, read_table
from geo_service.imports.run import Mode, count_upserts, run_import
from geo_service.stations import import_queries as iq
from geo_service.stations import queries as q
from geo_service.stations.import_preview import FUNCTIONAL_ZONE, annotate, build_preview
from geo_service.stations.service import names_alike, to_record

#: A file's columns: the station's code and the fields a client sets (schemas.STATION_FIELDS).
COLUMNS = ("code", *STATION_FIELDS)
REQUIRED = ("code", *REQUIRED_STATION_FIELDS)
#: What a file may have: the columns, and a union sheet's own (see :mod:`geo_service.domain.sheet`).
_READ = (*COLUMNS, *SHEET_KEYS)
#: Columns Excel turns into numbers (``110105``, a phone number) that are text here.
_CODES = ("province_code", "city_code", "district_code", "street_code", "phone", "code")


#: The columns of :func:`import_queries.changes`, in order.
_DIFF_KEYS = ("rownum", "code", "version", "new", "changes", "moved_m", "old_lon", "old_lat",
              "lon", "lat", "name", "district", "hours_text")

_YES_NO_ZH = {"是": True, "否": False}
#: First characters our exports guard with a leading ``'`` (see export_formats.neutralise).
_GUARDED = ("=", "+", "-", "@")


def _clean(raw: dict[str, Any]) -> dict[str, Any]:
    row = clean_row(raw, flags=())  # yes/no cells are read by sheet.to_station_row
    for key, value in row.items():
        if isinstance(value, str) and value[:1] == "'" and value[1:2] in _GUARDED:
            row[key] = value[1:]  # an export's formula guard ('+86 ...), not the value
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


class Notes:
    """What a validation saw besides records and problems, for the report: example rows
    skipped, hours converted from Chinese forms, each row's 所属区县."""

    def __init__(self) -> None:
        self.skipped: list[dict[str, Any]] = []
        self.converted: list[dict[str, Any]] = []
        self.district_refs: dict[int, str] = {}
        #: Each valid row's coordinate system, for the preview's "did you mean GCJ-02?".
        self.crs: dict[int, Crs] = {}


def validate_rows(
    raw_rows: list[dict[str, Any]], crs: Crs, present: set[str] | None = None,
    headers: dict[str, str] | None = None, notes: Notes | None = None,
) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]]]:
    """Every row validated; returns (row number, record) pairs and the problems found.

    A row's ``坐标系`` overrides the file's ``crs``. Problems name the column as the
    file's header does (``开放时间`` in a Chinese sheet, ``opening_hours`` in an
    English one). The template's example row (code ``示例-…``) is skipped, in ``notes``.
    """
    records: list[tuple[int, dict[str, Any]]] = []
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    now = dt.datetime.now(dt.UTC)
    present = present if present is not None else set(COLUMNS)
    names = headers or {}
    notes = notes if notes is not None else Notes()
    for n, raw in enumerate(raw_rows, start=1):
        if is_example(raw):
            notes.skipped.append({"row": n, "code": str(raw["code"]).strip(),
                                  "reason": "the template's example row (code 示例-…)"})
            continue
        row = _clean(raw)
        code = str(row.get("code")) if row.get("code") is not None else None
        # Every problem of every row in one pass: a repeated code is named even when
        # the row has other problems (they are named too).
        first = seen.get(code) if code is not None else None
        duplicate = first is not None
        if first is not None:
            problems.append({"row": n, "code": code, "field": names.get("code", "code"),
                             "problem": f"same code as row {first}"})
        elif code is not None:
            seen[code] = n
        if raw.get("_geometry_problem"):
            field = "properties" if "properties" in raw["_geometry_problem"] else "geometry"
            problems.append({"row": n, "code": code, "field": field,
                             "problem": raw["_geometry_problem"]})
            continue
        sheet = to_station_row(row, present)
        said = {key for key, _ in sheet.problems}
        for key, problem in sheet.problems:
            problems.append({"row": n, "code": code, "field": names.get(key, key),
                             "problem": problem})
        try:
            body = StationCreate.model_validate(sheet.fields, context=IMPORT_CONTEXT)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "row"
                if field not in said:
                    problems.append({"row": n, "code": code,
                                     "field": names.get(field, field), "problem": err["msg"]})
            continue
        if said or duplicate:
            continue
        if sheet.hours_given is not None:
            notes.converted.append({"row": n, "code": body.code, "given": sheet.hours_given,
                                    "opening_hours": body.opening_hours})
        if sheet.district_ref is not None:
            notes.district_refs[n] = sheet.district_ref
        notes.crs[n] = sheet.crs or crs
        record = to_record(body.model_dump(), sheet.crs or crs, now=now)
        record["source_crs"] = (sheet.crs or crs).value  # what was typed, for the export
        record["hours_text"] = sheet.hours_given
        records.append((n, record))
    return records, problems


class StaleImport(StateConflict):
    """A confirmation whose preview no longer holds: a station it reads changed since."""


async def import_bytes(
    conn: AsyncConnection[Any], data: bytes, fmt: Format, *, mode: Mode, dry_run: bool,
    principal: Principal | None, max_rows: int, crs: Crs = Crs.WGS84,
    duplicate_within_m: float = 30.0, limits: Limits = DEFAULT_LIMITS,
    expect: str | None = None,
) -> dict[str, Any]:
    """Validate and (unless refused or dry run) write stations; returns the import report.

    English headers or a union sheet's Chinese ones (:mod:`geo_service.domain.sheet`),
    under title rows if need be; unknown columns are set aside (``ignored_columns``).
    One pass names every problem: a row's own and, for the rows that parsed, the
    database's (time zones, polygons, the principal's area), each with its spreadsheet
    row, reason in Chinese and hint (:mod:`.import_preview`). The report adds
    ``skipped`` (the template's example row), ``converted_hours`` (Chinese hours and the
    OSM value stored), ``preview`` (rows to add, update field by field, unchanged; the
    fingerprint) and ``districts_by_point``. ``expect``: the fingerprint of the preview
    a person confirmed; if the changes differ now, :class:`StaleImport` and nothing written.
    """
    table = await asyncio.to_thread(read_table, data, fmt, max_rows, _READ, REQUIRED, limits,
                                    header_aliases(), True)
    present = set(table.present)
    bits = covered_amenities(present)
    if bits is not None:
        present.add("amenities")
    notes = Notes()
    import_id = uuid.uuid4()  # ties this import's audit entries together
    sheet = _Sheet(bits, notes, table, limits.errors_reported, expect)

    async def write(c: AsyncConnection[Any], records: list[Any], report: dict[str, Any]) -> None:
        report["import_id"] = str(import_id)
        await set_actor(c, principal, import_id)
        await _write(c, records, report, principal, mode, duplicate_within_m, present, sheet)

    report = await run_import(
        conn, table.rows, fmt, mode=mode, dry_run=dry_run,
        validate=lambda rows: validate_rows(rows, crs, table.present, table.headers, notes),
        write=write, limits=limits, check_all=True)
    annotate(report, table.rows, table.headers)
    report["skipped"] = notes.skipped[:limits.errors_reported]
    report["converted_hours"] = notes.converted[:limits.errors_reported]
    report["ignored_columns"] = table.ignored
    report["header_row"] = table.header_row
    report.setdefault("districts_by_point", [])
    return report


class _Sheet:
    """What the writer needs from a sheet: the amenity bits its columns decide, each
    row's 所属区县 (with that column's header, to name it in problems), and what the
    preview needs (spreadsheet rows, headers, each row's coordinate system)."""

    def __init__(self, bits: int | None, notes: Notes, table: Table, limit: int,
                 expect: str | None) -> None:
        self.bits, self.refs = bits, notes.district_refs
        self.header = table.headers.get("district_ref") or "district_ref"
        self.headers, self.crs, self.limit, self.expect = table.headers, notes.crs, limit, expect
        self.lines = {n: row.get("_line") for n, row in enumerate(table.rows, start=1)}
        #: Rows whose 所属区县 is a functional zone, placed by the point.
        self.zones: dict[int, str] = {}


async def _resolve_districts(
    cur: Any, sheet: _Sheet, principal: Principal | None, report: dict[str, Any],
    refused: dict[int, str],
) -> None:
    """Each row's 所属区县 (a district's name or code, in the key's area) → its code.

    A name several districts share is settled by the one covering the point; a
    name no district has, or that stays ambiguous, refuses the row.
    """
    area = principal.area_code if principal is not None else None
    rows = sorted(sheet.refs)
    await cur.execute(iq.DISTRICT_CANDIDATES, {
        "rows": rows, "refs": [sheet.refs[n] for n in rows], "area": area})
    found: dict[int, list[tuple[str, str, bool]]] = {}
    meta: dict[int, tuple[str, str, str | None]] = {}
    for rownum, station, ref, given, code, name, covers in await cur.fetchall():
        meta[rownum] = (station, ref, given)
        found.setdefault(rownum, [])
        if code is not None:
            found[rownum].append((code, name, covers))
    updates = []
    for rownum, candidates in found.items():
        station, ref, given = meta[rownum]
        if len(candidates) > 1:
            candidates = [c for c in candidates if c[2]] or candidates
        problem = None
        if not candidates and FUNCTIONAL_ZONE.fullmatch(ref):
            sheet.zones[rownum] = ref  # the point decides, after PLACE
            continue
        if not candidates:
            where = f" within the key's area {area}" if area else ""
            problem = f"no district named or coded {ref!r}{where}"
        elif len(candidates) > 1:
            problem = (f"{len(candidates)} districts are named {ref!r} ("
                       + ", ".join(c[0] for c in candidates) + "); give the 6-digit code")
        elif given is not None and given != candidates[0][0]:
            problem = f"{ref!r} is {candidates[0][0]}, but district_code says {given}"
        if problem:
            refused[rownum] = station
            report["errors"].append({"row": rownum, "code": station, "field": sheet.header,
                                     "problem": problem})
        else:
            updates.append((candidates[0][0], candidates[0][1], rownum))
    if updates:
        codes, names, rownums = map(list, zip(*updates, strict=True))
        await cur.execute(iq.SET_DISTRICT, {"codes": codes, "names": names, "rows": rownums})


async def _place_zones(cur: Any, sheet: _Sheet, report: dict[str, Any],
                       refused: dict[int, str]) -> None:
    """Rows whose 所属区县 named a functional zone (高新区 …): the district under the
    point is theirs, and the report says which (``districts_by_point``)."""
    rows = sorted(sheet.zones)
    await cur.execute(iq.ZONE_DISTRICTS, {"rows": rows})
    placed = {n: (dc, dn) for n, dc, dn in await cur.fetchall()}
    report["districts_by_point"] = []
    for n in rows:
        dc, dn = placed.get(n, (None, None))
        if dc is None:
            refused[n] = str(n)
            report["errors"].append({
                "row": n, "code": None, "field": sheet.header,
                "problem": f"{sheet.zones[n]!r} is a functional zone and no district "
                           "covers the point"})
            continue
        report["districts_by_point"].append({
            "row": n, "sheet_row": sheet.lines.get(n), "given": sheet.zones[n],
            "district": dn, "district_code": dc})


async def _write(
    conn: AsyncConnection[Any], records: list[tuple[int, dict[str, Any]]],
    report: dict[str, Any], principal: Principal | None, mode: Mode, within_m: float,
    present: set[str], sheet: _Sheet,
) -> None:
    had_problems = bool(report["errors"])  # rows that failed validation: check, not write
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
        if sheet.refs:
            await _resolve_districts(cur, sheet, principal, report, refused)
        await cur.execute(iq.PLACE)
        if sheet.zones:
            await _place_zones(cur, sheet, report, refused)
        await cur.execute(iq.MISPLACED)
        for rownum, code, field, given, actual in await cur.fetchall():
            if rownum in refused:
                continue
            refused[rownum] = code
            if field == "district_code" and rownum in sheet.refs:
                field, given = sheet.header, f"{sheet.refs[rownum]} ({given})"
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
        bound = {"amenity_bits": sheet.bits} if sheet.bits is not None else None
        await cur.execute(iq.changes(present, sheet.bits), bound)
        diff = await cur.fetchall()
        given = {n: (float(rec["lon"]), float(rec["lat"])) for n, rec in records}
        preview = build_preview(
            [dict(zip(_DIFF_KEYS, d, strict=True)) for d in diff], set(refused),
            sheet.lines, sheet.headers, sheet.crs, given)
        if sheet.expect is not None and preview["fingerprint"] != sheet.expect:
            raise StaleImport("the stations this file changes have changed since the "
                              "preview; preview it again",
                              [("file", "changed since the preview")])
        report["preview"] = {
            "fingerprint": preview["fingerprint"], "crs_hint": preview["crs_hint"],
            **{f"{k}_count": len(preview[k]) for k in ("add", "update", "unchanged")},
            **{k: preview[k][:sheet.limit] for k in ("add", "update", "unchanged")}}
        if refused or (had_problems and mode is Mode.ALL_OR_NOTHING):
            report["valid_rows"] -= len(refused)
            if mode is Mode.ALL_OR_NOTHING:
                return
            await cur.execute(iq.DROP_ROWS, (list(refused),))
        await cur.execute(iq.upsert(present, sheet.bits), bound)
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
