"""SQL of the street basemap's vector tiles (issue 28): roads, water and district outlines.

One statement per tile, as the station tiles (:mod:`geo_service.feeds.tile_queries`):
PostGIS selects by the buffered tile in WGS-84 (the GiST indexes on ``road_edge``,
``water_area`` and ``admin_area`` answer it), projects, simplifies to one tile unit
(nothing finer can be drawn), clips and encodes, so no geometry crosses into Python.
Which road classes and which admin levels a zoom shows is decided here in Python
(:func:`basemap_params`) and bound as arrays: no SQL is built from data.

Roads of one class and name are merged in each tile (``ST_LineMerge``): a street is one
feature, so a renderer places its name once along it instead of on every short edge.
"""

from __future__ import annotations

import math
from typing import Any

from geo_service.feeds.tile_queries import BUFFER, EXTENT, MARGIN

#: OSM ``highway`` value → the class the basemap styles by.
ROAD_CLASS: dict[str, str] = {
    **dict.fromkeys(("motorway", "motorway_link", "trunk", "trunk_link"), "motorway"),
    **dict.fromkeys(("primary", "primary_link"), "primary"),
    **dict.fromkeys(("secondary", "secondary_link"), "secondary"),
    **dict.fromkeys(("tertiary", "tertiary_link"), "tertiary"),
    **dict.fromkeys(("residential", "unclassified", "living_street", "service", "road",
                     "busway"), "minor"),
    **dict.fromkeys(("footway", "path", "cycleway", "pedestrian", "steps", "track",
                     "bridleway"), "path"),
}
#: The lowest zoom each class is drawn at: minor streets and paths only from z14, where a
#: city block is a few hundred pixels (below, they are a grey smear and most of the bytes).
CLASS_MINZOOM: dict[str, int] = {"motorway": 6, "primary": 8, "secondary": 10,
                                 "tertiary": 12, "minor": 14, "path": 14}
#: The lowest zoom each admin level is outlined at.
LEVEL_MINZOOM: dict[str, int] = {"province": 0, "city": 5, "district": 8, "street": 12}
#: Water below this zoom would be specks of a city extract; a lake is drawn from here.
WATER_MINZOOM = 8
#: Web Mercator's circumference, metres.
WORLD_M = 2 * math.pi * 6378137.0


def basemap_params(z: int, x: int, y: int) -> dict[str, Any]:
    """The parameters of :data:`BASEMAP_MVT` for tile ``z/x/y``.

    >>> p = basemap_params(14, 9326, 4741)
    >>> "residential" in p["highways"] and round(p["tol"], 2)
    0.6
    >>> "residential" in basemap_params(13, 4663, 2370)["highways"]
    False
    """
    shown = [(h, c) for h, c in ROAD_CLASS.items() if z >= CLASS_MINZOOM[c]]
    return {"z": z, "x": x, "y": y, "margin": MARGIN,
            "tol": WORLD_M / (1 << z) / EXTENT,
            "highways": [h for h, _ in shown], "classes": [c for _, c in shown],
            "levels": [lv for lv, mz in LEVEL_MINZOOM.items() if z >= mz],
            "water": z >= WATER_MINZOOM}


#: The three layers of one tile, concatenated (an MVT is a sequence of layers); empty
#: bytes when nothing is in the tile.
BASEMAP_MVT = f"""
WITH t AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
           ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4326)
               AS box,
           %(tol)s::float8 AS tol
),
roads AS (
    SELECT ST_AsMVTGeom(ST_LineMerge(ST_Collect(ST_Simplify(ST_Transform(e.geom, 3857),
                                                            t.tol))),
                        t.env, {EXTENT}, {BUFFER}, true) AS geom,
           k.class, e.name
    FROM t
    JOIN road_edge e ON e.geom && t.box
    JOIN unnest(%(highways)s::text[], %(classes)s::text[]) AS k(highway, class)
        ON k.highway = e.highway
    GROUP BY k.class, e.name, t.env
),
water AS (
    SELECT ST_AsMVTGeom(ST_Simplify(ST_Transform(w.geom, 3857), t.tol),
                        t.env, {EXTENT}, {BUFFER}, true) AS geom,
           w.kind, w.name
    FROM t JOIN water_area w ON w.geom && t.box
    WHERE %(water)s
),
areas AS (
    SELECT a.code, a.name, a.name_en, a.level, a.sample, a.geom
    FROM t JOIN admin_area a ON a.geom && t.box
    WHERE a.level = ANY(%(levels)s::text[])
),
districts AS (
    SELECT ST_AsMVTGeom(ST_Simplify(ST_Boundary(ST_Transform(a.geom, 3857)), t.tol),
                        t.env, {EXTENT}, {BUFFER}, true) AS geom,
           'outline' AS kind, a.code, a.name, a.name_en, a.level, a.sample
    FROM t CROSS JOIN areas a
    UNION ALL
    -- The name once, in the tile its label point falls in (no buffer: no twin labels).
    SELECT ST_AsMVTGeom(ST_Transform(p.pt, 3857), t.env, {EXTENT}, 0, true),
           'label', a.code, a.name, a.name_en, a.level, a.sample
    FROM t CROSS JOIN areas a
    CROSS JOIN LATERAL (SELECT ST_PointOnSurface(a.geom) AS pt) p
    WHERE ST_Intersects(p.pt, ST_Transform(t.env, 4326))
)
SELECT coalesce((SELECT ST_AsMVT(r.*, 'roads', {EXTENT}, 'geom')
                 FROM roads r WHERE r.geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(w.*, 'water', {EXTENT}, 'geom')
                 FROM water w WHERE w.geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(d.*, 'districts', {EXTENT}, 'geom')
                 FROM districts d WHERE d.geom IS NOT NULL), ''::bytea)
"""

#: The version the base tiles' validators are computed from (migration 0023's triggers).
BASEMAP_STATE = "SELECT version, changed_at FROM basemap_state"
