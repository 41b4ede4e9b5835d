"""Demand import: where outdoor workers gather, weighted by how many.

Same rules as the station import, through the same readers and runner
(:mod:`geo_service.imports`): CSV (UTF-8 or GB18030), XLSX or GeoJSON; every
bad row named with its field; all or nothing by default; upsert by ``id`` that
leaves unchanged rows alone (idempotent). The SQL is in ``queries``.

Headers may be English (``id, lon, lat, weight, worker_type``) or the demand
sheet's Chinese ones (编号, 经度, 纬度, 人数, 工种, 坐标系 and their aliases,
:mod:`geo_service.coverage.demand_sheet`); a problem then names the column as the
file's header does and carries ``sheet_row``, the row number Excel shows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from geo_service.coverage import demand_sheet
from geo_service.coverage import queries as q
from geo_service.domain.coords import Crs, to_wgs84
from geo_service.domain.schemas import Lat, Lon, no_control_chars
from geo_service.domain.sheet import is_example, parse_crs, yes_no
from geo_service.imports.limits import DEFAULT_LIMITS, Limits
from geo_service.imports.readers import Format, clean_row, read_table
from geo_service.imports.run import Mode, count_upserts, run_import

#: The point's fields (the manual's table, docs/hooks.py, lists these).
COLUMNS = ("id", "lon", "lat", "weight", "worker_type", "source", "observed_on", "sample")
REQUIRED = demand_sheet.REQUIRED
#: What a file may have: the fields, and the sheet's own ``crs`` (a row's coordinate system).
_READ = (*COLUMNS, "crs")
WorkerType = Literal["sanitation", "delivery", "courier", "truck_driver", "traffic", "other"]


class DemandRow(BaseModel):
    """One weighted demand point (coordinates in the import's ``crs``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # The descriptions are the manual's (docs/hooks.py writes its table from this model).
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$",
                             description="stable id of the point: a known id replaces it")]
    lon: Annotated[Lon, Field(description="longitude in the import's coordinate system")]
    lat: Annotated[Lat, Field(description="latitude in the import's coordinate system")]
    weight: Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False,
                                   description="how many workers gather there (人数)")]
    worker_type: Annotated[WorkerType, Field(description="who they are (工种)")]
    source: Annotated[str | None, Field(max_length=200,
                                        description="where the figure comes from")] = None
    observed_on: Annotated[dt.date | None, Field(
        description="when it was counted (YYYY-MM-DD)")] = None
    sample: Annotated[bool, Field(description="true only for made-up sample points")] = False

    _plain = field_validator("*")(no_control_chars)


def _sheet_values(clean: dict[str, Any], n: int, ident: str | None,
                  name: Any, problems: list[dict[str, Any]],
                  sheet_row: int | None) -> Crs | None:
    """The sheet's words made field values in place (工种, 示例数据), the row's 坐标系 returned;
    a word that is not understood becomes a problem naming the column."""
    row_crs: Crs | None = None
    parsers: tuple[tuple[str, Callable[[Any], Any]], ...] = (
        ("worker_type", demand_sheet.parse_worker_type), ("sample", yes_no), ("crs", parse_crs))
    for key, parse in parsers:
        if key not in clean:
            continue
        try:
            value = parse(clean.pop(key))
        except ValueError as exc:
            problems.append({"row": n, "sheet_row": sheet_row, "code": ident,
                             "field": name(key), "problem": str(exc)})
            continue
        if key == "crs":
            row_crs = value
        else:
            clean[key] = value
    return row_crs


def validate(raw_rows: list[dict[str, Any]], crs: Crs, headers: dict[str, str] | None = None,
             first_row: int | None = 2, skipped: list[dict[str, Any]] | None = None,
             ) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    """Every row validated: (records, problems).

    ``headers`` (row key → the header as the file wrote it) names columns in problems;
    ``first_row`` is the spreadsheet row of the first data row (2: under the header;
    None for GeoJSON, which has no rows to point at). A row's 坐标系 overrides ``crs``.
    The template's example row (编号 ``示例-…``) is skipped, into ``skipped``.
    """
    rows: list[tuple[Any, ...]] = []
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    names = headers or {}

    def name(key: str) -> str:
        return names.get(key, key)

    for n, raw in enumerate(raw_rows, start=1):
        sheet_row = None if first_row is None else n + first_row - 1
        if is_example(raw, "id"):
            if skipped is not None:
                skipped.append({"row": n, "code": str(raw["id"]).strip(),
                                "reason": "the template's example row (编号 示例-…)"})
            continue
        clean = clean_row(raw, flags=())
        if isinstance(clean.get("id"), int | float) and not isinstance(clean.get("id"), bool):
            clean["id"] = str(clean["id"]).removesuffix(".0")
        ident = str(clean.get("id")) if clean.get("id") is not None else None
        if raw.get("_geometry_problem"):
            problems.append({"row": n, "sheet_row": sheet_row, "code": ident,
                             "field": "geometry", "problem": raw["_geometry_problem"]})
            continue
        before = len(problems)
        row_crs = _sheet_values(clean, n, ident, name, problems, sheet_row)
        said = {p["field"] for p in problems[before:]}
        try:
            row = DemandRow.model_validate(clean)
        except ValidationError as exc:
            for err in exc.errors():
                field = name(".".join(str(p) for p in err["loc"]) or "row")
                if field not in said:
                    problems.append({"row": n, "sheet_row": sheet_row, "code": ident,
                                     "field": field, "problem": err["msg"]})
            continue
        if said:
            continue
        if row.id in seen:
            problems.append({"row": n, "sheet_row": sheet_row, "code": row.id,
                             "field": name("id"), "problem": f"same id as row {seen[row.id]}"})
            continue
        seen[row.id] = n
        lon, lat = to_wgs84(row.lon, row.lat, row_crs or crs)
        rows.append((n, row.id, lon, lat, row.weight, row.worker_type, row.source,
                     row.observed_on, row.sample))
    return rows, problems


async def _write(conn: AsyncConnection[Any], rows: list[Any], report: dict[str, Any],
                 scope: str | None, mode: Mode, first_row: int | None) -> None:
    async with conn.cursor() as cur:
        await cur.execute(q.DEMAND_TABLE)
        async with cur.copy("COPY _dem FROM STDIN") as copy:
            for row in rows:
                await copy.write_row(row)
        if scope is not None:
            await cur.execute(q.DEMAND_OUT_OF_SCOPE, {"area": scope})
            refused = await cur.fetchall()
            for rownum, ident in refused:
                report["errors"].append({"row": rownum, "code": ident, "field": "lon",
                                         "sheet_row": (None if first_row is None
                                                       else rownum + first_row - 1),
                                         "problem": f"outside the key's area {scope}"})
            if refused:
                report["valid_rows"] -= len(refused)
                if mode is Mode.ALL_OR_NOTHING:
                    return
                await cur.execute(q.DEMAND_DROP_ROWS,
                                  ([r[0] for r in refused],))
        await cur.execute(q.DEMAND_UPSERT)
        count_upserts(report, [r[0] for r in await cur.fetchall()])


async def import_demand(
    conn: AsyncConnection[Any], data: bytes, fmt: Format, *, mode: Mode, dry_run: bool,
    max_rows: int, crs: Crs = Crs.WGS84, limits: Limits = DEFAULT_LIMITS,
    scope: str | None = None,
) -> dict[str, Any]:
    """Validate every row, then write all (or the good ones) in one transaction.

    ``scope`` is the key's area: rows placing (or moving) a point outside it
    are refused like any bad row.
    """
    table = await asyncio.to_thread(read_table, data, fmt, max_rows, _READ, REQUIRED, limits,
                                    demand_sheet.header_aliases())
    first_row = None if fmt is Format.GEOJSON else 2
    skipped: list[dict[str, Any]] = []

    async def write(c: AsyncConnection[Any], rows: list[Any], report: dict[str, Any]) -> None:
        await _write(c, rows, report, scope, mode, first_row)

    report = await run_import(
        conn, table.rows, fmt, mode=mode, dry_run=dry_run,
        validate=lambda rows: validate(rows, crs, table.headers, first_row, skipped),
        write=write, limits=limits)
    report["skipped"] = skipped[:limits.errors_reported]
    return report
