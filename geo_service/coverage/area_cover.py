"""Coverage of *area* when a region has no demand data: every H3 cell counts once.

Why: a city that has loaded its districts and stations but has no count of where its
outdoor workers gather still needs a first answer to "where are we thin?". Each H3 cell
(the run's resolution) whose centroid lies in the region becomes one unit of demand,
labelled with the district its centroid lies in, so the unchanged analysis gives each
district's *share of cells* within reach of a station, and the unchanged recommender
maximises newly covered cells. Runs say so: ``basis`` is ``"area"`` in their summary, and
every page and table that shows one names it with :data:`BASIS_WORDS`.

The cells come from h3-py (``geo_to_cells`` over the region: centroid containment); each
is given the district its centroid lies in (shapely, vectorised), so a cell belongs to
exactly one of a set of non-overlapping districts.
"""

from __future__ import annotations

import json
from typing import Any

import h3
import numpy as np
import psycopg
import shapely

from geo_service.domain.errors import invalid

#: How a run measured coverage, in the words pages and tables show (Chinese, English).
BASIS_WORDS: dict[str, tuple[str, str]] = {
    "demand": ("按需求覆盖（劳动者人数）", "Coverage of demand (workers)"),
    "area": ("按面积覆盖（无需求数据）", "Coverage of area (no demand data)"),
}
#: Most cells an area run may stand for (a province at resolution 10 is ~10^7: refused
#: by name, with the way out, rather than exhausting memory).
MAX_AREA_CELLS = 1_000_000

# The labels' polygons, and the region's (polygons only).
_PARTS = """
WITH region AS (SELECT (%(region)s)::geometry AS g)
SELECT a.code, ST_AsGeoJSON(a.geom)
FROM admin_area a, region r
WHERE a.code = ANY(%(labels)s) AND a.geom IS NOT NULL AND ST_Intersects(a.geom, r.g)
ORDER BY a.code
"""
_REGION = "SELECT ST_AsGeoJSON(ST_CollectionExtract((%(region)s)::geometry, 3))"


def area_points(conn: psycopg.Connection[Any], region: str, labels: list[str],
                resolution: int) -> list[tuple[float, float, float, str, bool]]:
    """One point per H3 cell of the region, at its centroid, weight 1, with its district.

    The rows have the shape the demand query returns (lon, lat, weight, label, sample),
    so a run reads them as it reads demand. A cell's district is the one its centroid
    lies in (h3's own rule for which cells a polygon holds); a cell of the region in no
    labelled district (a bbox reaching past the districts loaded) is labelled ``""``, as
    demand there is.
    """
    size = conn.execute("SELECT ST_Area((%s)::geometry::geography)", (region,)).fetchone()
    estimate = float(size[0] or 0) / h3.average_hexagon_area(resolution, unit="m^2") \
        if size else 0.0
    if estimate > MAX_AREA_CELLS:
        raise invalid("resolution", f"about {estimate:,.0f} H3 cells at resolution "
                                    f"{resolution}, more than {MAX_AREA_CELLS:,}: analyse a "
                                    "smaller area or a coarser resolution")
    shape = conn.execute(_REGION, {"region": region}).fetchone()
    geojson = json.loads(shape[0]) if shape and shape[0] else None
    if not geojson or not geojson.get("coordinates"):
        return []
    cells = sorted(h3.geo_to_cells(geojson, resolution))
    if not cells:
        return []
    lat, lon = np.array([h3.cell_to_latlng(c) for c in cells], dtype=float).T
    label = np.full(len(cells), "", dtype=object)
    for code, part in conn.execute(_PARTS, {"region": region, "labels": labels}):
        polygon = shapely.from_geojson(part)
        shapely.prepare(polygon)
        free = label == ""
        label[free] = np.where(shapely.contains_xy(polygon, lon[free], lat[free]), code, "")
    return [(x, y, 1.0, str(code), False)
            for x, y, code in zip(lon.tolist(), lat.tolist(), label.tolist(), strict=True)]
