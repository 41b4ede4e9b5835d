"""All SQL of the coverage room: the area, its demand, the qualifying stations, stored
runs, the demand import."""

from __future__ import annotations

from geo_service.domain.verification import LAST_VERIFIED_SQL

AREA = """
SELECT a.code, a.name, a.level, a.geom IS NOT NULL AS has_geom,
       ARRAY(SELECT c.code FROM admin_area c WHERE c.parent_code = a.code ORDER BY c.code)
         AS children
FROM admin_area a WHERE a.code = %(code)s
"""

# The analysed region as one geometry: an admin area, a GeoJSON polygon or a bbox.
REGION = """
SELECT CASE
    WHEN %(area)s::text IS NOT NULL THEN (SELECT geom FROM admin_area WHERE code = %(area)s)
    WHEN %(polygon)s::text IS NOT NULL
        THEN ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(%(polygon)s), 4326))
    ELSE ST_Multi(ST_MakeEnvelope(%(minlon)s, %(minlat)s, %(maxlon)s, %(maxlat)s, 4326))
END
"""

# The region's extent, held to the same limit as a bbox (an area's polygon may carry a
# spike that reaches far past the area itself).
REGION_EXTENT = """
SELECT ST_XMin(g), ST_YMin(g), ST_XMax(g), ST_YMax(g) FROM (SELECT (%(region)s)::geometry AS g) r
"""

# Is the region inside a key's area? An admin area below the key's area in the
# tree always is (sample polygons of parent and child need not nest exactly);
# anything else must lie within the key's area's polygon.
IN_SCOPE = """
SELECT geo_area_within(%(area)s, %(scope)s)
    OR coalesce((SELECT ST_Covers(geom, (%(region)s)::geometry) FROM admin_area
                 WHERE code = %(scope)s), false)
"""

# Demand points in the region, each labelled with the child area (e.g. district)
# that covers it, so the scorecard has one row per child area.
DEMAND = """
WITH region AS (SELECT (%(region)s)::geometry AS g),
     parts AS (SELECT code, geom FROM admin_area_part WHERE code = ANY(%(labels)s))
SELECT ST_X(d.geog::geometry), ST_Y(d.geog::geometry), d.weight,
       coalesce((SELECT p.code FROM parts p WHERE ST_Covers(p.geom, d.geog::geometry)
                 ORDER BY p.code LIMIT 1), '') AS label,
       d.sample
FROM demand_point d, region r
WHERE ST_Covers(r.g, d.geog::geometry)
  AND (%(worker_types)s::text[] IS NULL OR d.worker_type = ANY(%(worker_types)s))
"""

# Qualifying stations: inside the region or within the threshold of it (a
# station just across the border still serves the cells near it). Verified is the
# later of the imported 最近核实日期 and the last inspection (domain.verification).
STATIONS = f"""
WITH region AS (SELECT (%(region)s)::geometry AS g),
     parts AS (SELECT code, geom FROM admin_area_part WHERE code = ANY(%(labels)s))
SELECT s.code, ST_X(s.geog::geometry), ST_Y(s.geog::geometry),
       coalesce((SELECT p.code FROM parts p WHERE ST_Covers(p.geom, s.geog::geometry)
                 ORDER BY p.code LIMIT 1), '') AS label,
       bit_count((s.amenity_mask & %(ten_mask)s)::bit(64))::int AS ten_ones,
       ({LAST_VERIFIED_SQL} IS NULL
        OR {LAST_VERIFIED_SQL} < current_date - %(verified_days)s) AS unverified,
       s.sample
FROM station s, region r
WHERE s.status = ANY(%(statuses)s)
  AND s.amenity_mask & %(want)s = %(want)s
  AND bit_count((s.amenity_mask & %(ten_mask)s)::bit(64)) >= %(min_ten_ones)s
  AND (%(open_at)s::timestamptz IS NULL
       OR coalesce(geo_open_state(s.hours_kind, s.open_minutes, s.open_periods,
                                  s.unknown_periods, s.hours_valid_until, %(open_at)s,
                                  s.timezone), %(include_unknown)s))
  AND (%(exclude)s::text[] IS NULL OR NOT s.code = ANY(%(exclude)s))
  AND (%(verified_within)s::int IS NULL
       OR {LAST_VERIFIED_SQL} >= current_date - %(verified_within)s::int)
  AND (%(confirmed_within)s::int IS NULL
       OR s.last_confirmed_at >= now() - make_interval(days => %(confirmed_within)s::int))
  AND ST_DWithin(s.geog, r.g::geography, %(reach_m)s)
"""

INSERT_RUN = """
INSERT INTO analysis_run (kind, params, inputs, summary, sample)
VALUES (%(kind)s, %(params)s, %(inputs)s, %(summary)s, %(sample)s)
RETURNING id, created_at
"""

COPY_CELLS = """
COPY analysis_cell (run_id, cell, area_code, demand, points, nearest_code, nearest_m,
                    second_m, covered, doubly) FROM STDIN
"""

INSERT_SITE = """
INSERT INTO analysis_site (run_id, rank, label, geog, gain, covered_after)
VALUES (%(run_id)s, %(rank)s, %(label)s,
        ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, %(gain)s,
        %(covered_after)s)
"""

GET_RUN = """
SELECT id, kind, params, inputs, summary, created_at, sample FROM analysis_run WHERE id = %(id)s
"""

RUN_CELLS = """
SELECT cell, area_code, demand, points, nearest_code, nearest_m, second_m, covered, doubly
FROM analysis_cell WHERE run_id = %(id)s ORDER BY cell, area_code
"""

RUN_CELL_COUNT = "SELECT count(*) FROM analysis_cell WHERE run_id = %(id)s"

# The newest stored run for an area (recommendation runs first: they carry
# both the cells and the picked sites).
LATEST_RUN = """
SELECT id FROM analysis_run
WHERE (%(area)s::text IS NULL OR params->>'area' = %(area)s)
ORDER BY (kind = 'recommendations') DESC, created_at DESC, id DESC
LIMIT 1
"""

RUN_SITES = """
SELECT rank, label, ST_X(geog::geometry) AS lon, ST_Y(geog::geometry) AS lat, gain,
       covered_after
FROM analysis_site WHERE run_id = %(id)s ORDER BY rank
"""

# Stations on record in the region (every status but duplicate), for context:
# "74 stations, of which 65 qualify", and whether any of them is sample data.
ON_RECORD = """
SELECT count(*), coalesce(bool_or(s.sample), false) FROM station s
WHERE s.status <> 'duplicate' AND ST_Covers((%(region)s)::geometry, s.geog::geometry)
"""

# The demand import (coverage/demand.py): the file's rows copied into ``_dem``, then
# one upsert by external id that leaves unchanged points alone.
DEMAND_TABLE = """
CREATE TEMP TABLE _dem (rownum int, external_id text, lon float8, lat float8, weight float8,
    worker_type text, source text, observed_on date, sample bool) ON COMMIT DROP
"""
DEMAND_UPSERT = """
INSERT INTO demand_point AS d (external_id, geog, weight, worker_type, source, observed_on,
                               sample)
SELECT external_id, ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography, weight, worker_type,
       source, observed_on, sample
FROM _dem ORDER BY rownum
ON CONFLICT (external_id) DO UPDATE SET
    geog = EXCLUDED.geog, weight = EXCLUDED.weight, worker_type = EXCLUDED.worker_type,
    source = EXCLUDED.source, observed_on = EXCLUDED.observed_on, sample = EXCLUDED.sample
WHERE (ST_AsBinary(d.geog::geometry), d.weight, d.worker_type, d.source, d.observed_on,
       d.sample)
      IS DISTINCT FROM
      (ST_AsBinary(EXCLUDED.geog::geometry), EXCLUDED.weight, EXCLUDED.worker_type,
       EXCLUDED.source, EXCLUDED.observed_on, EXCLUDED.sample)
RETURNING (xmax = 0) AS inserted
"""

# Rows a scoped key may not write: the new point, or the stored point the row
# replaces, lies outside the key's area. Demand points carry no area codes, so
# an area without a polygon cannot vouch for any of them.
DEMAND_OUT_OF_SCOPE = """
SELECT d.rownum, d.external_id
FROM _dem d
JOIN admin_area a ON a.code = %(area)s
LEFT JOIN demand_point p ON p.external_id = d.external_id
WHERE a.geom IS NULL
   OR NOT ST_Covers(a.geom, ST_SetSRID(ST_MakePoint(d.lon, d.lat), 4326))
   OR (p.id IS NOT NULL AND NOT ST_Covers(a.geom, p.geog::geometry))
ORDER BY d.rownum
"""

DEMAND_DROP_ROWS = "DELETE FROM _dem WHERE rownum = ANY(%s)"

INSERT_SERVICE_AREA = """
INSERT INTO analysis_service_area (run_id, station_code, geom)
VALUES (%(run_id)s, %(code)s, ST_SetSRID(ST_GeomFromWKB(%(wkb)s), 4326))
"""

RUN_SERVICE_AREAS = """
SELECT station_code, ST_AsGeoJSON(geom, 6) FROM analysis_service_area
WHERE run_id = %(id)s ORDER BY station_code
"""
