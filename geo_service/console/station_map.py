"""What the station form's map and its conflict notice read from the database.

The point's place (district and street containing it, by the admin-area polygons, the rule
the service places a station by: ``geo_admin_for_point``), the outline of the person's
area and the stations around, so the map is useful with no tiles at all; and who changed a
station since the version a form was opened at (the audit trail).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.coords import Crs, from_wgs84, to_wgs84
from geo_service.stations import queries as station_queries

#: The stations drawn around the pin, at most.
NEIGHBOURS = 300
#: Outline simplification, degrees (~50 m): enough to see the border, small to send.
SIMPLIFY_DEG = 0.0005

_STREET = """
SELECT a.code, a.name FROM admin_area_part p JOIN admin_area a ON a.code = p.code
WHERE p.level = 'street' AND ST_Covers(p.geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))
ORDER BY a.code LIMIT 1
"""
_OUTLINE = """
SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, %(tol)s), 6) AS outline
FROM admin_area WHERE code = %(code)s AND geom IS NOT NULL
"""
_NEIGHBOURS = """
SELECT code, name, status, ST_X(geog::geometry) AS lon, ST_Y(geog::geometry) AS lat
FROM station
WHERE deleted_at IS NULL AND code IS DISTINCT FROM %(code)s
  AND (%(area)s::text IS NULL
       OR %(area)s IN (province_code, city_code, district_code, street_code))
ORDER BY geog <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography
LIMIT %(limit)s
"""
_MIDDLE = """
SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM admin_area
                              WHERE code = %(code)s AND geom IS NOT NULL) AS m
"""
_OPTIONS = """
SELECT code, name, name_en, level, parent_code, sample FROM admin_area
WHERE level IN ('district', 'street')
  AND (%(scope)s::text IS NULL OR geo_area_within(code, %(scope)s))
ORDER BY code
"""
_NAME = "SELECT name FROM admin_area WHERE code = %(code)s"
_CHANGED_BY = """
SELECT l.at, l.actor, u.display_name, l.changes
FROM audit_log l LEFT JOIN staff_user u ON u.id = l.user_id
WHERE l.station_code = %(code)s AND l.action = 'station.update'
  AND (l.changes -> 'version' ->> 0)::int >= %(since)s
ORDER BY l.id DESC
"""


async def locate(conn: AsyncConnection[Any], lon: float, lat: float, crs: Crs) -> dict[str, Any]:
    """A point given in ``crs``: in each of the form's systems, and the district and
    street whose polygons contain it (None where none is loaded)."""
    wlon, wlat = to_wgs84(lon, lat, crs)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(station_queries.ADMIN_FOR_POINT, {"lon": wlon, "lat": wlat})
        place = await cur.fetchone() or {}
        await cur.execute(_STREET, {"lon": wlon, "lat": wlat})
        street = await cur.fetchone() or {}
    out: dict[str, Any] = {}
    for system in (Crs.WGS84, Crs.GCJ02):
        x, y = from_wgs84(wlon, wlat, system)
        out[system.value] = {"lon": round(x, 7), "lat": round(y, 7)}
    out.update({"district_code": place.get("district_code"), "district": place.get("district"),
                "city_code": place.get("city_code"), "street_code": street.get("code"),
                "street": street.get("name")})
    return out


async def context(conn: AsyncConnection[Any], *, area: str | None, code: str | None,
                  point: tuple[float, float] | None, map_crs: Crs) -> dict[str, Any]:
    """The map's data in ``map_crs``: the area's outline (GeoJSON) and the nearest
    stations of the area around ``point`` (WGS-84; None: the area's middle), the edited
    one left out."""
    rows: list[dict[str, Any]] = []
    async with conn.cursor(row_factory=dict_row) as cur:
        outline = None
        if area is not None:
            await cur.execute(_OUTLINE, {"code": area, "tol": SIMPLIFY_DEG})
            row = await cur.fetchone()
            outline = json.loads(row["outline"]) if row else None
            if point is None:  # a new station: around the middle of the area
                await cur.execute(_MIDDLE, {"code": area})
                middle = await cur.fetchone()
                point = (middle["st_x"], middle["st_y"]) if middle else None
        if point is not None:  # else (an unscoped admin's new station) the country, bare
            await cur.execute(_NEIGHBOURS, {"code": code, "area": area, "lon": point[0],
                                            "lat": point[1], "limit": NEIGHBOURS})
            rows = await cur.fetchall()
    if outline is not None and map_crs is not Crs.WGS84:
        outline = _shift(outline, map_crs)
    stations = []
    for r in rows:
        x, y = from_wgs84(r["lon"], r["lat"], map_crs)
        stations.append({"code": r["code"], "name": r["name"], "status": r["status"],
                         "lon": round(x, 7), "lat": round(y, 7)})
    return {"outline": outline, "stations": stations}


def _shift(geometry: Any, crs: Crs) -> Any:
    """Every position of a GeoJSON geometry moved from WGS-84 into ``crs``."""
    if isinstance(geometry, dict):
        return {k: _shift(v, crs) for k, v in geometry.items()}
    if isinstance(geometry, list) and geometry and isinstance(geometry[0], int | float):
        x, y = from_wgs84(float(geometry[0]), float(geometry[1]), crs)
        return [round(x, 6), round(y, 6)]
    if isinstance(geometry, list):
        return [_shift(g, crs) for g in geometry]
    return geometry


async def area_options(conn: AsyncConnection[Any], scope: str | None) -> list[dict[str, Any]]:
    """The districts and streets a person limited to ``scope`` may place a station in."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_OPTIONS, {"scope": scope})
        rows: list[dict[str, Any]] = await cur.fetchall()
    return rows


async def area_name(conn: AsyncConnection[Any], code: str | None) -> str | None:
    if not code:
        return None
    async with conn.cursor() as cur:
        await cur.execute(_NAME, {"code": code})
        row = await cur.fetchone()
    return str(row[0]) if row else None


async def changed_since(conn: AsyncConnection[Any], code: str,
                        since: int) -> list[dict[str, Any]]:
    """The station's updates from version ``since`` on, newest first: when, who (display
    name and sign-in name, or the key's name), and the columns each changed."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_CHANGED_BY, {"code": code, "since": since})
        rows: list[dict[str, Any]] = await cur.fetchall()
    return rows


def when(at: dt.datetime, tz: str) -> str:
    """An instant on the clerk's clock (the service's zone)."""
    return f"{at.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}"
