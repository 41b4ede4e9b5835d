"""Coverage of *area* when a region has no demand data: every H3 cell counts once.

Why: a city that has loaded its districts and stations but has no count of where its
outdoor workers gather still needs a first answer to "where are we thin?". Each H3 cell
(the run's resolution) whose centroid lies in the region becomes one unit of demand,
labelled with the district its centroid lies in, so the unchanged analysis gives each
district's *share of cells* within reach of a station, and the unchanged recommender
maximises newly covered cells. Runs say so: ``basis`` is ``"area"`` in their summary, and
every page and table that shows one names it with :data:`BASIS_WORDS`.

The cells come from h3-py (``geo_to_cells``: centroid containment, so a cell belongs to
exactly one of a set of non-overlapping districts); the district polygons are clipped to
the region in PostGIS.
"""

from __future__ import annotations

import json
from typing import Any

import h3
import psycopg

from geo_service.domain.errors import invalid

#: How a run measured coverage, in the words pages and tables show (Chinese, English).
BASIS_WORDS: dict[str, tuple[str, str]] = {
    "demand": ("按需求覆盖（劳动者人数）", "Coverage of demand (workers)"),
    "area": ("按面积覆盖（无需求数据）", "Coverage of area (no demand data)"),
}
#: Most cells an area run may stand for (a province at resolution 10 is ~10^7: refused
#: by name, with the way out, rather than exhausting memory).
MAX_AREA_CELLS = 1_000_000

# Each label's polygon clipped to the region (polygons only), and the region itself.
_PARTS = """
WITH region AS (SELECT (%(region)s)::geometry AS g)
SELECT a.code, ST_AsGeoJSON(ST_CollectionExtract(ST_Intersection(a.geom, r.g), 3))
FROM admin_area a, region r
WHERE a.code = ANY(%(labels)s) AND a.geom IS NOT NULL AND ST_Intersects(a.geom, r.g)
UNION ALL
SELECT '', ST_AsGeoJSON(ST_CollectionExtract(r.g, 3)) FROM region r
"""


def _cells(geojson: str | None, resolution: int) -> set[str]:
    if not geojson:
        return set()
    shape = json.loads(geojson)
    if not shape.get("coordinates"):
        return set()
    return set(h3.geo_to_cells(shape, resolution))


def area_points(conn: psycopg.Connection[Any], region: str, labels: list[str],
                resolution: int) -> list[tuple[float, float, float, str, bool]]:
    """One point per H3 cell of the region, at its centroid, weight 1, with its district.

    The rows have the shape the demand query returns (lon, lat, weight, label, sample),
    so a run reads them as it reads demand. A cell of the region in no labelled district
    (a bbox reaching past the districts loaded) is labelled ``""`` as demand there is.
    """
    size = conn.execute("SELECT ST_Area((%s)::geometry::geography)", (region,)).fetchone()
    estimate = float(size[0] or 0) / h3.average_hexagon_area(resolution, unit="m^2") \
        if size else 0.0
    if estimate > MAX_AREA_CELLS:
        raise invalid("resolution", f"about {estimate:,.0f} H3 cells at resolution "
                                    f"{resolution}, more than {MAX_AREA_CELLS:,}: analyse a "
                                    "smaller area or a coarser resolution")
    rows = conn.execute(_PARTS, {"region": region, "labels": labels}).fetchall()
    seen: set[str] = set()
    out: list[tuple[float, float, float, str, bool]] = []
    for code, geojson in rows:  # the districts first, then the region for what is left
        for cell in sorted(_cells(geojson, resolution) - seen):
            seen.add(cell)
            lat, lon = h3.cell_to_latlng(cell)
            out.append((lon, lat, 1.0, code, False))
    return out
