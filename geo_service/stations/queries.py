"""All SQL of the stations room. Values are always bound parameters.

The nearest query is the hot path: an index-ordered KNN walk (``<->`` on the
geography GiST index) with every filter inside the walk, so the LIMIT counts
only qualifying stations. ``<->`` orders by *sphere* distance while
``ST_Distance(.., true)`` reports *spheroid* distance; the service takes a
margin of candidates and re-orders them (see ``service.nearest``).
"""

from __future__ import annotations

STATION_COLUMNS = """
    s.code, s.name, s.name_en, s.address, s.province, s.province_code, s.city, s.city_code,
    s.district, s.district_code, s.street, s.street_code,
    ST_X(s.geog::geometry) AS lon, ST_Y(s.geog::geometry) AS lat,
    s.host_type, s.status, s.opening_hours, s.timezone, s.phone,
    s.floor_area_m2::float8 AS floor_area_m2, s.seats, s.opened_on, s.amenity_mask,
    s.last_verified_on, s.sample, s.created_at, s.updated_at, s.deleted_at, s.version,
    s.reported_closed_at, s.last_confirmed_at
"""

# A station's awards, newest first, as a JSON array (API responses only, not feeds).
AWARDS = """(SELECT coalesce(jsonb_agg(jsonb_build_object('title', a.title, 'level', a.level,
                                                  'year', a.year) ORDER BY a.year DESC, a.id),
                         '[]'::jsonb)
            FROM station_award a WHERE a.station_id = s.id) AS awards"""

QUERY_POINT = "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography"

# Filters shared by the candidate walk and the exact fallback. ``want`` is an
# amenity bit mask; ``host_types`` NULL means any.
_NEAREST_FILTERS = f"""
    s.status = ANY(%(statuses)s)
    AND s.amenity_mask & %(want)s = %(want)s
    AND (%(host_types)s::text[] IS NULL OR s.host_type = ANY(%(host_types)s::text[]))
    AND (%(min_ten_ones)s = 0
         OR bit_count((s.amenity_mask & %(ten_mask)s)::bit(64)) >= %(min_ten_ones)s)
    AND (NOT %(open_now)s
         OR (s.status = 'open'
             AND geo_is_open(s.hours_kind, s.open_minutes, s.open_periods, %(at)s, s.timezone)))
    AND ST_DWithin(s.geog, {QUERY_POINT}, %(radius_m)s)
"""

# Open at ``at`` by the compiled hours (the same test the filter uses), and
# NULL where the compiled horizon of a dated rule does not reach ``at``.
_OPEN_AT = """
       CASE WHEN s.hours_kind = 'dated' AND NOT (s.hours_valid_until > %(at)s) THEN NULL
            ELSE geo_is_open(s.hours_kind, s.open_minutes, s.open_periods, %(at)s, s.timezone)
       END AS open_sql"""

# What both nearest queries return for each station row ``s``.
_NEAREST_SELECT = f"""
SELECT {STATION_COLUMNS}, {AWARDS},
       ST_Distance(s.geog, {QUERY_POINT}, true) AS distance_m,
       s.geog <-> {QUERY_POINT} AS sphere_m,
       degrees(ST_Azimuth({QUERY_POINT}, s.geog)) AS bearing_deg,
       {_OPEN_AT}
"""

NEAREST_CANDIDATES = _NEAREST_SELECT + f"""FROM (
    SELECT * FROM station s
    WHERE {_NEAREST_FILTERS}
    ORDER BY s.geog <-> {QUERY_POINT}
    LIMIT %(limit)s
) s
"""

# Exact fallback: every qualifying station whose sphere distance is within the
# bound that can still beat the k-th spheroid distance of the candidate walk.
NEAREST_WITHIN = _NEAREST_SELECT + f"""FROM station s
WHERE {_NEAREST_FILTERS}
  AND ST_DWithin(s.geog, {QUERY_POINT}, %(sphere_bound_m)s, false)
"""

# Every station write takes this lock first (the trigger of migration 0003 takes
# it too): held to commit, it makes change numbers follow commit order, and
# taking it before any row lock keeps writers from deadlocking on it.
LOCK_CHANGES = "SELECT pg_advisory_xact_lock(73050001)"

GET_STATION = f"SELECT {STATION_COLUMNS}, {AWARDS} FROM station s WHERE s.code = %(code)s"
GET_STATION_FOR_UPDATE = GET_STATION + " FOR UPDATE OF s"

LIST_STATIONS = f"""
SELECT s.id, {STATION_COLUMNS}, {AWARDS}
FROM station s
WHERE s.id > %(after_id)s
  AND s.status = ANY(%(statuses)s)
  AND s.amenity_mask & %(want)s = %(want)s
  AND (%(host_types)s::text[] IS NULL OR s.host_type = ANY(%(host_types)s::text[]))
  AND (%(area)s::text IS NULL
       OR %(area)s IN (s.province_code, s.city_code, s.district_code, s.street_code))
  AND (%(bbox)s::float8[] IS NULL OR ST_Intersects(s.geog::geometry, ST_MakeEnvelope(
        (%(bbox)s::float8[])[1], (%(bbox)s::float8[])[2],
        (%(bbox)s::float8[])[3], (%(bbox)s::float8[])[4], 4326)))
ORDER BY s.id
LIMIT %(limit)s
"""

WRITE_COLUMNS = (
    "code", "name", "name_en", "address", "province", "province_code", "city", "city_code",
    "district", "district_code", "street", "street_code", "host_type", "status",
    "opening_hours", "timezone", "hours_kind", "open_minutes", "open_periods",
    "hours_valid_until", "phone", "floor_area_m2", "seats", "opened_on", "amenity_mask",
    "last_verified_on", "sample",
)
_CASTS = {"open_minutes": "::int4multirange", "open_periods": "::tstzmultirange"}
_VALUES = ", ".join(f"%({c})s{_CASTS.get(c, '')}" for c in WRITE_COLUMNS)

INSERT_STATION = f"""
INSERT INTO station ({", ".join(WRITE_COLUMNS)}, geog)
VALUES ({_VALUES}, {QUERY_POINT})
ON CONFLICT (code) DO NOTHING
RETURNING code
"""

_SET = ", ".join(f"{c} = %({c})s{_CASTS.get(c, '')}" for c in WRITE_COLUMNS if c != "code")

UPDATE_STATION = f"""
UPDATE station SET {_SET}, geog = {QUERY_POINT},
       deleted_at = CASE WHEN %(status)s = 'closed' THEN deleted_at END,
       version = version + 1, updated_at = now()
WHERE code = %(code)s AND version = %(expected_version)s
RETURNING code
"""

SOFT_DELETE = """
UPDATE station SET status = 'closed', deleted_at = coalesce(deleted_at, now()),
       version = version + 1, updated_at = now()
WHERE code = %(code)s AND version = %(expected_version)s
RETURNING code
"""

# The district whose polygon covers a point, with its city and province.
ADMIN_FOR_POINT = """
SELECT d.code AS district_code, d.name AS district,
       c.code AS city_code, c.name AS city,
       p.code AS province_code, p.name AS province
FROM admin_area d
LEFT JOIN admin_area c ON c.code = d.parent_code
LEFT JOIN admin_area p ON p.code = c.parent_code
WHERE d.level = 'district'
  AND ST_Covers(d.geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))
ORDER BY d.code
LIMIT 1
"""

PG_TIMEZONES = "SELECT name FROM pg_timezone_names"

IN_AREA = """
SELECT CASE WHEN a.geom IS NOT NULL
            THEN ST_Covers(a.geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))
            ELSE %(area)s IN (%(province_code)s, %(city_code)s, %(district_code)s,
                              %(street_code)s) END
FROM admin_area a WHERE a.code = %(area)s
"""

AMENITIES = "SELECT code, label_zh, label_en, ten_ones FROM amenity ORDER BY bit"

ADMIN_AREAS = """
SELECT a.code, a.name, a.name_en, a.level, a.parent_code, a.sample,
       (SELECT count(*) FROM station s
        WHERE a.code IN (s.province_code, s.city_code, s.district_code, s.street_code)
          AND s.status IN ('open', 'temporarily_closed'))::int AS stations
FROM admin_area a
WHERE %(code)s::text IS NULL OR a.code = %(code)s
ORDER BY a.code
"""

UPSERT_ADMIN_AREA = """
INSERT INTO admin_area (code, name, name_en, level, parent_code, geom, sample)
VALUES (%(code)s, %(name)s, %(name_en)s, %(level)s, %(parent_code)s,
        ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(%(geometry)s), 4326)), %(sample)s)
ON CONFLICT (code) DO UPDATE SET
    name = EXCLUDED.name, name_en = EXCLUDED.name_en, level = EXCLUDED.level,
    parent_code = EXCLUDED.parent_code, geom = EXCLUDED.geom, sample = EXCLUDED.sample
"""

DATED_HOURS = """
SELECT code, opening_hours, timezone FROM station
WHERE hours_kind = 'dated' AND (hours_valid_until IS NULL OR hours_valid_until < %(before)s)
"""

REFRESH_PERIODS = """
UPDATE station SET open_periods = %(open_periods)s::tstzmultirange,
       hours_valid_until = %(hours_valid_until)s
WHERE code = %(code)s AND opening_hours = %(opening_hours)s
"""
