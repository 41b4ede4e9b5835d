"""The roads in PostgreSQL: replace the loaded extract in one transaction, and read it
back (the extract's row for ``/healthz`` and the feeds, the edges for the graph)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from geo_service.roads.loader import Extract
from geo_service.roads.water import replace_water

AREA_POLYGON = "SELECT ST_AsBinary(geom) FROM admin_area WHERE code = %(code)s"
EXTRACT = """
SELECT file_name, replication_at, extract_date, loaded_at, area_code, ways, edges, vertices
FROM road_extract ORDER BY id DESC LIMIT 1"""
#: What the in-process graph needs of each edge (geometry as WKB, costs in seconds).
EDGES = """
SELECT id, source, target, length_m, walk_cost, ebike_cost, ebike_reverse_cost,
       ST_AsBinary(geom) AS wkb
FROM road_edge ORDER BY id"""
#: Changes whenever an extract is (re)loaded: the graph reloads when it differs.
STAMP = "SELECT loaded_at, extract_date FROM road_extract ORDER BY id DESC LIMIT 1"


def area_polygon(conn: psycopg.Connection[Any], code: str) -> bytes | None:
    row = conn.execute(AREA_POLYGON, {"code": code}).fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


def _linestring(coords: list[tuple[float, float]]) -> str:
    return "SRID=4326;LINESTRING(" + ",".join(f"{x!r} {y!r}" for x, y in coords) + ")"


def replace_extract(conn: psycopg.Connection[Any], extract: Extract, *, path: Path,
                    area_code: str | None) -> dict[str, Any]:
    """Replace whatever roads were loaded by ``extract``, all or nothing (one
    transaction: a reader sees the old roads or the new, never half)."""
    with conn.transaction():
        conn.execute("LOCK TABLE road_extract IN EXCLUSIVE MODE")
        conn.execute("DELETE FROM road_edge")
        conn.execute("DELETE FROM road_vertex")
        conn.execute("DELETE FROM road_extract")
        with conn.cursor() as cur:
            with cur.copy("COPY road_vertex (id, geom) FROM STDIN") as copy:
                for vid, (lon, lat) in extract.vertices.items():
                    copy.write_row((vid, f"SRID=4326;POINT({lon!r} {lat!r})"))
            with cur.copy("COPY road_edge (osm_way_id, source, target, highway, name, "
                          "length_m, walk_cost, ebike_cost, ebike_reverse_cost, geom) "
                          "FROM STDIN") as copy:
                for e in extract.edges:
                    copy.write_row((e.way_id, e.source, e.target, e.highway, e.name,
                                    e.length_m, e.walk_cost, e.ebike_cost,
                                    e.ebike_reverse_cost, _linestring(e.coords)))
        replace_water(conn, extract.water)
        when = extract.replication_at
        row = conn.execute(
            "INSERT INTO road_extract (file_name, replication_at, extract_date, area_code, "
            "ways, edges, vertices, speeds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING loaded_at",
            (path.name, when, None if when is None else when.astimezone(dt.UTC).date(),
             area_code, extract.ways, len(extract.edges), len(extract.vertices),
             Jsonb(extract.speeds))).fetchone()
    conn.execute("ANALYZE road_edge")
    conn.execute("ANALYZE road_vertex")
    conn.execute("ANALYZE water_area")
    assert row is not None
    return {"file": path.name, "area": area_code, "ways": extract.ways,
            "edges": len(extract.edges), "vertices": len(extract.vertices),
            "water_areas": len(extract.water),
            "extract_date": None if when is None else when.date().isoformat(),
            "loaded_at": row[0].isoformat()}


async def extract_info(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any] | None:
    """The loaded extract's row, or None when no roads are loaded."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(EXTRACT)
        row: dict[str, Any] | None = await cur.fetchone()
    return row
