"""Demand import: where outdoor workers gather, weighted by how many.

Same rules as the station import, through the same readers and runner
(:mod:`geo_service.imports`): CSV (UTF-8 or GB18030), XLSX or GeoJSON; every
bad row named with its field; all or nothing by default; upsert by ``id`` that
leaves unchanged rows alone (idempotent). The SQL is in ``queries``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any, Literal

from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from geo_service.coverage import queries as q
from geo_service.domain.coords import Crs, to_wgs84
from geo_service.domain.schemas import Lat, Lon, no_control_chars
from geo_service.imports.limits import DEFAULT_LIMITS, Limits
from geo_service.imports.readers import Format, clean_row, read_rows
from geo_service.imports.run import Mode, count_upserts, run_import

COLUMNS = ("id", "lon", "lat", "weight", "worker_type", "source", "observed_on", "sample")
REQUIRED = ("id", "lon", "lat", "weight", "worker_type")
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


def validate(raw_rows: list[dict[str, Any]], crs: Crs) -> tuple[list[tuple[Any, ...]],
                                                                list[dict[str, Any]]]:
    rows: list[tuple[Any, ...]] = []
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(raw_rows, start=1):
        clean = clean_row(raw)
        if isinstance(clean.get("id"), int | float) and not isinstance(clean.get("id"), bool):
            clean["id"] = str(clean["id"]).removesuffix(".0")
        ident = str(clean.get("id")) if clean.get("id") is not None else None
        if raw.get("_geometry_problem"):
            problems.append({"row": n, "code": ident, "field": "geometry",
                             "problem": raw["_geometry_problem"]})
            continue
        try:
            row = DemandRow.model_validate(clean)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append({"row": n, "code": ident,
                                 "field": ".".join(str(p) for p in err["loc"]) or "row",
                                 "problem": err["msg"]})
            continue
        if row.id in seen:
            problems.append({"row": n, "code": row.id, "field": "id",
                             "problem": f"same id as row {seen[row.id]}"})
            continue
        seen[row.id] = n
        lon, lat = to_wgs84(row.lon, row.lat, crs)
        rows.append((n, row.id, lon, lat, row.weight, row.worker_type, row.source,
                     row.observed_on, row.sample))
    return rows, problems


async def _write(conn: AsyncConnection[Any], rows: list[Any], report: dict[str, Any],
                 scope: str | None, mode: Mode) -> None:
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
    raw, _ = await asyncio.to_thread(read_rows, data, fmt, max_rows, COLUMNS, REQUIRED, limits)

    async def write(c: AsyncConnection[Any], rows: list[Any], report: dict[str, Any]) -> None:
        await _write(c, rows, report, scope, mode)

    return await run_import(conn, raw, fmt, mode=mode, dry_run=dry_run,
                            validate=lambda rows: validate(rows, crs), write=write,
                            limits=limits)
