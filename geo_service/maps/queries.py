"""All SQL of the maps room. Values are always bound parameters."""

from __future__ import annotations

from geo_service.domain.verification import LAST_VERIFIED_SQL
from geo_service.feeds.queries import OPEN_AT, STOPS
from geo_service.stations.queries import AWARDS

#: Statuses a map draws: what workers can use or soon will. Closed (soft-deleted)
#: and duplicate records are not stations on the ground.
MAP_STATUSES = ("open", "temporarily_closed", "planned")

# Stations of an area (any admin level; NULL = everywhere), in id order.
# ``open_now`` is taken at %(at)s: the moment the page is made. ``last_verified_on`` is
# the later of the imported 最近核实日期 and the last inspection (domain.verification).
STATIONS = f"""
SELECT s.code, s.name, s.address, ST_X(s.geog::geometry) AS lon,
       ST_Y(s.geog::geometry) AS lat, s.host_type, s.status, s.opening_hours, s.phone,
       s.amenity_mask, {LAST_VERIFIED_SQL} AS last_verified_on, s.district_code, s.sample,
       {OPEN_AT} AS open_now, {STOPS} AS stops, {AWARDS},
       s.reported_closed_at, s.last_confirmed_at
FROM station s
WHERE s.status = ANY(%(statuses)s)
  AND (%(area)s::text IS NULL
       OR %(area)s IN (s.province_code, s.city_code, s.district_code, s.street_code))
ORDER BY s.id
"""

AREA = "SELECT code, name, name_en, level, sample FROM admin_area WHERE code = %(code)s"

# The districts to outline: the area itself when it is a district or a street's
# district, else every district below it (or every district, for no area).
DISTRICTS = """
WITH RECURSIVE below(code) AS (
    SELECT code FROM admin_area WHERE %(area)s::text IS NULL AND parent_code IS NULL
    UNION ALL
    SELECT code FROM admin_area WHERE code = %(area)s
    UNION ALL
    SELECT c.code FROM admin_area c JOIN below b ON c.parent_code = b.code
)
SELECT a.code, a.name, a.name_en, ST_AsGeoJSON(a.geom, 6) AS geometry
FROM admin_area a
WHERE a.level = 'district' AND a.geom IS NOT NULL
  AND (a.code IN (SELECT code FROM below)
       OR a.code = (SELECT parent_code FROM admin_area WHERE code = %(area)s
                    AND level = 'street'))
ORDER BY a.code
"""

CITIES = "SELECT code FROM admin_area WHERE level = 'city' ORDER BY code"

HAS_SAMPLE = "SELECT coalesce(bool_or(sample), false) FROM station WHERE status = ANY(%(statuses)s)"
