"""Recommended sites become planned stations (筹建中) in one step, and a union sheet of them.

Issue 27: a planner who agrees with a run's sites should not retype them. ``plan_sites``
writes each site of a recommendations run as a station with status ``planned`` (maps and
the app show 筹建中; check-ins, feeds and nearest treat planned as not serving), all in
one transaction under the planner's name (the audit trail's triggers record each
insert). Codes are deterministic, ``PLAN-<run>-<rank>``, so asking twice adds nothing
the second time: the answer lists those stations as ``existing``.

``plan_sheet`` is the same stations as the union's import sheet (the columns of
``GET /v1/stations:template.xlsx``), so an office without the service can file them.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from psycopg import AsyncConnection

from geo_service.areas.queries import POINT_PLACES
from geo_service.domain.catalogue import HOST_TYPE_ZH, STATUS_ZH, HostType, Status
from geo_service.domain.coords import Crs
from geo_service.domain.errors import NotFound, StateConflict, invalid
from geo_service.domain.links import point_facts
from geo_service.domain.principal import Principal
from geo_service.domain.schemas import StationCreate
from geo_service.domain.sheet import CRS_CHOICES, SHEET_COLUMNS, header_cell
from geo_service.stations import queries as sq
from geo_service.stations.service import (
    begin_station_write,
    fill_admin,
    require_scope,
    to_record,
)

SAMPLE_PREFIX = "【示例】"
#: Who hosts a planned station is not known yet; the union builds or finds one.
PLANNED_HOST = HostType.UNION_BUILT
MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# A stored recommendations run's sites (the coverage room's tables, read here as SQL:
# the stations and coverage rooms do not import each other).
RUN_SITES = """
SELECT r.kind, r.sample, s.rank, ST_X(s.geog::geometry), ST_Y(s.geog::geometry), s.gain
FROM analysis_run r LEFT JOIN analysis_site s ON s.run_id = r.id
WHERE r.id = %(id)s ORDER BY s.rank
"""
EXISTING = "SELECT code FROM station WHERE code = ANY(%(codes)s)"


def planned_code(run_id: int, rank: int) -> str:
    """The station code of a run's site: the same run and site always give the same code."""
    return f"PLAN-{run_id}-{rank:02d}"


async def planned_bodies(conn: AsyncConnection[Any], run_id: int,
                         ranks: list[int] | None = None) -> list[dict[str, Any]]:
    """The run's sites as station bodies (validated as ``POST /v1/stations`` would).

    404 naming ``run`` for an unknown run; 409 naming ``run`` for a run without sites (a
    coverage run: a state of the run, not a malformed request); 422 naming ``ranks`` for
    a rank the run does not have.
    """
    async with conn.cursor() as cur:
        await cur.execute(RUN_SITES, {"id": run_id})
        rows = await cur.fetchall()
    if not rows:
        raise NotFound(f"no analysis run {run_id}", [("run", "unknown run")])
    sites = [r for r in rows if r[2] is not None]
    if rows[0][0] != "recommendations" or not sites:
        raise StateConflict(f"run {run_id} recommends no sites (run recommendations first)",
                            [("run", "recommends no sites: run recommendations first")])
    if ranks is not None:
        missing = sorted(set(ranks) - {r[2] for r in sites})
        if missing:
            raise invalid("ranks", f"run {run_id} has no site ranked {missing[0]}")
        sites = [r for r in sites if r[2] in set(ranks)]
    async with conn.cursor() as cur:
        await cur.execute(POINT_PLACES, {"lon": [r[3] for r in sites],
                                         "lat": [r[4] for r in sites]})
        found = await cur.fetchall()
    bodies = []
    for (_kind, sample, rank, lon, lat, gain), (_i, dcode, district, street) in zip(
            sites, found, strict=True):
        where = "".join(p for p in (district, street) if p)
        name = (f"{SAMPLE_PREFIX if sample else ''}筹建驿站 {where + ' ' if where else ''}"
                f"建议点 {rank}（覆盖分析 #{run_id}）")
        body = StationCreate.model_validate({
            "code": planned_code(run_id, rank), "name": name, "lon": lon, "lat": lat,
            "host_type": PLANNED_HOST, "status": Status.PLANNED, "opening_hours": None,
            "sample": bool(sample)}).model_dump()
        bodies.append({**body, "_rank": rank, "_gain": gain, "_district": district,
                       "_district_code": dcode, "_street": street})
    return bodies


async def plan_sites(conn: AsyncConnection[Any], principal: Principal, run_id: int,
                     ranks: list[int] | None = None) -> dict[str, Any]:
    """Write the run's sites (or those ranked ``ranks``) as planned stations, at once.

    All or nothing: one site outside the planner's area refuses them all (403 naming
    ``district_code``). Already planned ones are left as they are (``existing``).
    """
    bodies = await planned_bodies(conn, run_id, ranks)
    records = [await asyncio.to_thread(
        to_record, {k: v for k, v in b.items() if not k.startswith("_")}, Crs.WGS84)
        for b in bodies]
    created: list[str] = []
    async with conn.transaction():
        await begin_station_write(conn, principal)
        async with conn.cursor() as cur:
            await cur.execute(EXISTING, {"codes": [r["code"] for r in records]})
            existing = {code for (code,) in await cur.fetchall()}
        for rec in records:
            if rec["code"] in existing:
                continue
            await fill_admin(conn, rec)
            await require_scope(conn, principal, rec, "planned station")
            async with conn.cursor() as cur:
                await cur.execute(sq.INSERT_STATION, rec)
                if await cur.fetchone() is not None:
                    created.append(rec["code"])
    stations = [{"code": b["code"], "name": b["name"], "rank": b["_rank"],
                 "lon": b["lon"], "lat": b["lat"], "district_code": b["_district_code"],
                 "district": b["_district"], "street": b["_street"], "new_workers": b["_gain"],
                 "status": "planned", "created": b["code"] in created,
                 **point_facts(b["lon"], b["lat"], b["name"])} for b in bodies]
    return {"run_id": run_id, "created": created,
            "existing": [b["code"] for b in bodies if b["code"] not in created],
            "stations": stations}


def _cell(key: str, body: dict[str, Any]) -> Any:
    """One union-sheet cell of a planned station (coordinates as GCJ-02, as Amap shows)."""
    if key.startswith("yes:"):
        return "否"
    facts = point_facts(body["lon"], body["lat"], body["name"])
    values: dict[str, Any] = {
        "code": body["code"], "name": body["name"], "district_ref": body["_district"] or "",
        "street": body["_street"] or "", "lon": facts["gcj02"][0], "lat": facts["gcj02"][1],
        "crs": CRS_CHOICES[Crs.GCJ02], "host_type": HOST_TYPE_ZH[PLANNED_HOST],
        "status": STATUS_ZH[Status.PLANNED], "sample": "是" if body["sample"] else "否",
    }
    return values.get(key, "")


def plan_sheet(bodies: list[dict[str, Any]]) -> bytes:
    """The planned stations as the union's station sheet (XLSX, one row each)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "站点 stations"
    sheet.append([header_cell(c) for c in SHEET_COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for body in bodies:
        sheet.append([_cell(c.key, body) for c in SHEET_COLUMNS])
    for i, col in enumerate(SHEET_COLUMNS, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width = col.width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
