"""Every SQL statement of the posters room. Values are always bound parameters."""

from __future__ import annotations

#: What a poster shows of a station, and where it lies (for the key's area check).
_COLUMNS = """
s.code, s.name, s.address, s.district, s.district_code, s.status, s.opening_hours,
s.amenity_mask, s.sample, ST_X(s.geog::geometry) AS lon, ST_Y(s.geog::geometry) AS lat,
s.province_code, s.city_code, s.street_code
"""

#: One station by code, whatever its status (the service says why it will not print).
STATION = f"SELECT {_COLUMNS} FROM station s WHERE s.code = %(code)s"

#: An admin area of any level, and whether it lies within the key's area (``scope``;
#: NULL for a key of no area). An area below the key's area in the tree always does.
AREA = """
SELECT a.code, a.name, %(scope)s::text IS NULL OR geo_area_within(a.code, %(scope)s) AS allowed
FROM admin_area a WHERE a.code = %(area)s
"""

#: The live stations of an area and everything below it, by district then name, one
#: more than the page cap so the service can tell "too many" without counting twice.
AREA_STATIONS = f"""
SELECT {_COLUMNS} FROM station s
WHERE s.status IN ('open', 'temporarily_closed') AND s.deleted_at IS NULL
  AND %(area)s IN (s.province_code, s.city_code, s.district_code, s.street_code)
ORDER BY s.district_code NULLS LAST, s.name, s.code
LIMIT %(limit)s
"""

#: How many stations each of the areas ``codes`` would print (those with one or more),
#: for the console's area list: a serving station counts once for each level it lies in.
AREA_COUNTS = """
SELECT a.code, count(*) AS stations
FROM station s
CROSS JOIN LATERAL unnest(ARRAY[s.province_code, s.city_code, s.district_code,
                                s.street_code]) AS a(code)
WHERE s.status IN ('open', 'temporarily_closed') AND s.deleted_at IS NULL
  AND a.code = ANY(%(codes)s)
GROUP BY a.code
"""
