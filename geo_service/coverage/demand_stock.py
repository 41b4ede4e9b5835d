"""What demand an area holds: points and workers by origin and worker type.

Why: before a planner runs coverage they need to see whether the area has demand at
all, and from where (a clerk's sheet, a population raster, the sample). The console's
demand page and ``geo-service demand summary`` read it here.
"""

from __future__ import annotations

from typing import Any

import psycopg

from geo_service.domain.errors import NotFound

# Points inside the area's polygon, grouped by where they came from: a raster (by file),
# the sample, or an imported sheet.
_STOCK = """
SELECT CASE WHEN d.sample THEN 'sample'
            WHEN starts_with(d.external_id, 'raster:') THEN 'raster'
            ELSE 'sheet' END AS origin,
       CASE WHEN starts_with(d.external_id, 'raster:') THEN d.source END AS file,
       d.worker_type, count(*) AS points, sum(d.weight) AS workers
FROM demand_point d JOIN admin_area a ON a.code = %(area)s
WHERE ST_Covers(a.geom, d.geog::geometry)
GROUP BY 1, 2, 3 ORDER BY 1, 2 NULLS FIRST, 3
"""

#: How each origin is named on pages (Chinese, English).
ORIGIN_WORDS = {"sheet": ("表格导入", "imported sheet"), "raster": ("人口栅格估算",
                                                                "population raster"),
                "sample": ("示例数据", "sample data")}


def area_stock(conn: psycopg.Connection[Any], area: str) -> list[dict[str, Any]]:
    """The area's demand as rows of origin, file (rasters), worker type, points, workers."""
    row = conn.execute("SELECT geom IS NOT NULL FROM admin_area WHERE code = %s",
                       (area,)).fetchone()
    if row is None:
        raise NotFound(f"no admin area {area!r}", [("area", "unknown area code")])
    keys = ("origin", "file", "worker_type", "points", "workers")
    return [dict(zip(keys, r, strict=True)) for r in conn.execute(_STOCK, {"area": area})]
