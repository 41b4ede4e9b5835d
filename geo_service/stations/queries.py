"""All SQL of the stations room. Values are always bound parameters.

The nearest query is the hot path: an index-ordered KNN walk (``<->`` on the
geography GiST index) with every filter inside the walk, so the LIMIT counts
only qualifying stations. ``<->`` orders by *sphere* distance while
``ST_Distance(.., true)`` reports *spheroid* distance; the service takes a
margin of candidates and re-orders them (see ``service.nearest``).
"""

from __future__ import annotations

import re

from geo_service.domain.schemas import STATION_FIELDS


def compact(sql: str) -> str:
    """``sql`` with each run of whitespace made one space. psycopg caches the
    parsing of statements up to 4 KiB only; the hot nearest statement must fit
    (parsing it on every request cost ~8% of the API's CPU)."""
    return re.sub(r"\s+", " ", sql).strip()


def station_columns(geog: str = "s.geog") -> str:
    """The public columns of a station row ``s``, placed at ``geog`` (a mobile
    station's current stop, in the nearest query)."""
    return f"""
    s.code, s.name, s.name_en, s.address, s.province, s.province_code, s.city, s.city_code,
    s.district, s.district_code, s.street, s.street_code,
    ST_X({geog}::geometry) AS lon, ST_Y({geog}::geometry) AS lat,
    s.host_type, s.status, s.opening_hours, s.timezone, s.official_workdays, s.phone,
    s.floor_area_m2::float8 AS floor_area_m2, s.seats, s.opened_on, s.amenity_mask,
    s.last_verified_on, s.sample, s.created_at, s.updated_at, s.deleted_at, s.version,
    s.reported_closed_at, s.last_confirmed_at
"""


STATION_COLUMNS = station_columns()

# A station's awards, newest first, as a JSON array; NULL when it has none (most
# stations: decoding 100,000 empty arrays cost a map of them ~0.8 s).
AWARDS = """(SELECT jsonb_agg(jsonb_build_object('title', a.title, 'level', a.level,
                                         'year', a.year) ORDER BY a.year DESC, a.id)
            FROM station_award a WHERE a.station_id = s.id) AS awards"""

QUERY_POINT = "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography"

#: Open at %(at)s by a station's compiled hours, three-valued (migration 0007): true,
#: false, or NULL when nobody can tell (no rule, an ``unknown`` stretch of the rule,
#: past a dated rule's horizon). An inlined SQL function: it stays inside the KNN walk.
OPEN_STATE = """geo_open_state(s.hours_kind, s.open_minutes, s.open_periods, s.unknown_periods,
                    s.hours_valid_until, %(at)s, s.timezone)"""

# Filters on the station itself, shared by fixed stations and mobile stops.
# ``want`` is an amenity bit mask; ``host_types`` NULL means any.
_STATION_FILTERS = """
    s.status = ANY(%(statuses)s)
    AND s.amenity_mask & %(want)s = %(want)s
    AND (%(host_types)s::text[] IS NULL OR s.host_type = ANY(%(host_types)s::text[]))
    AND (%(min_ten_ones)s = 0
         OR bit_count((s.amenity_mask & %(ten_mask)s)::bit(64)) >= %(min_ten_ones)s)
"""

# Filters of the candidate walk and the exact fallback over fixed places. A
# mobile station with a schedule is not at its base: NEAREST_STOPS finds it.
_NEAREST_FILTERS = f"""{_STATION_FILTERS}
    AND NOT s.scheduled
    AND (NOT %(open_now)s
         OR (s.status = 'open' AND coalesce({OPEN_STATE}, %(include_unknown)s)))
    AND ST_DWithin(s.geog, {QUERY_POINT}, %(radius_m)s)
"""

# Open at ``at`` by the compiled hours (the same test the filter uses): NULL
# where the hours are unknown then (see OPEN_STATE).
_OPEN_AT = f"""
       {OPEN_STATE} AS open_sql"""


def _nearest_select(geog: str, open_sql: str, extra: str = "") -> str:
    """What the nearest queries return for each row ``s`` placed at ``geog``."""
    return f"""
SELECT {station_columns(geog)}, {AWARDS},
       ST_Distance({geog}, {QUERY_POINT}, true) AS distance_m,
       {geog} <-> {QUERY_POINT} AS sphere_m,
       degrees(ST_Azimuth({QUERY_POINT}, {geog})) AS bearing_deg,
       {open_sql}{extra}
"""


_NEAREST_SELECT = _nearest_select("s.geog", _OPEN_AT)

# Exact fallback: every qualifying station whose sphere distance is within the
# bound that can still beat the k-th spheroid distance of the candidate walk.
NEAREST_WITHIN = _NEAREST_SELECT + f"""FROM station s
WHERE {_NEAREST_FILTERS}
  AND ST_DWithin(s.geog, {QUERY_POINT}, %(sphere_bound_m)s, false)
"""

# A stop is current at %(at)s when the station is open, %(at)s's local date is
# in the stop's range and the stop's hours are open (half-open: a window
# ending at 16:00 is over at 16:00).
STOP_ACTIVE = """
    s.status = 'open'
    AND (st.valid_from IS NULL OR st.valid_from <= (%(at)s AT TIME ZONE s.timezone)::date)
    AND (st.valid_to IS NULL OR st.valid_to >= (%(at)s AT TIME ZONE s.timezone)::date)
    AND coalesce(geo_is_open(st.hours_kind, st.open_minutes, st.open_periods, %(at)s,
                             s.timezone), false)
"""

# Mobile stations where they are at %(at)s: every current stop within the
# radius (a station is at one stop at a time; schedules are checked on write).
# Mobile stations are few, so all of them are read, not a KNN walk.
NEAREST_STOPS = _nearest_select(
    "s.stop_geog", "true AS open_sql",
    ",\n       jsonb_build_object('seq', s.stop_seq, 'name', s.stop_name, 'opening_hours', "
    "s.stop_hours, 'valid_from', s.stop_from, 'valid_to', s.stop_to) AS current_stop",
) + f"""FROM (
    SELECT s.*, st.geog AS stop_geog, st.seq AS stop_seq, st.name AS stop_name,
           st.opening_hours AS stop_hours, st.valid_from AS stop_from, st.valid_to AS stop_to
    FROM station_stop st JOIN station s ON s.id = st.station_id
    WHERE {_STATION_FILTERS}
      AND {STOP_ACTIVE}
      AND ST_DWithin(st.geog, {QUERY_POINT}, %(radius_m)s)
) s
"""

# One round trip: the KNN walk over fixed places (``current_stop`` NULL), then
# every scheduled mobile station at its current stop (the service tells them apart).
_WALK = _nearest_select("s.geog", _OPEN_AT, ",\n       NULL::jsonb AS current_stop") + f"""FROM (
    SELECT * FROM station s
    WHERE {_NEAREST_FILTERS}
    ORDER BY s.geog <-> {QUERY_POINT}
    LIMIT %(limit)s
) s
"""
NEAREST_CANDIDATES = compact(f"({_WALK})\nUNION ALL\n({NEAREST_STOPS})")

# Every station write takes this lock first (the trigger of migration 0003 takes
# it too): held to commit, it makes change numbers follow commit order, and
# taking it before any row lock keeps writers from deadlocking on it.
LOCK_CHANGES = "SELECT pg_advisory_xact_lock(73050001)"

GET_STATION = f"SELECT {STATION_COLUMNS}, {AWARDS} FROM station s WHERE s.code = %(code)s"
GET_STATION_FOR_UPDATE = GET_STATION + " FOR UPDATE OF s"
#: A station for its page: with its open state at %(at)s (see :data:`OPEN_STATE`).
STATION_DETAIL = (f"SELECT {STATION_COLUMNS}, {AWARDS}, {OPEN_STATE} AS open_sql "
                  "FROM station s WHERE s.code = %(code)s")

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

#: The compiled forms of a station's opening hours, stored beside the rule
#: (``service.compiled_hours_columns``) so open-now is a test in SQL.
HOURS_COLUMNS = ("hours_kind", "open_minutes", "open_periods", "unknown_periods",
                 "hours_valid_until", "hours_calendar")
#: The stored columns a client field is written to, where they differ from its name:
#: the point goes to ``geog`` (written on its own), amenity codes to one bit mask,
#: the hours rule also to its compiled forms.
STORED_AS: dict[str, tuple[str, ...]] = {
    "lon": (), "lat": (), "amenities": ("amenity_mask",),
    "opening_hours": ("opening_hours", *HOURS_COLUMNS),
}
#: Every column a station write sets besides ``geog``, from the one list of fields.
WRITE_COLUMNS = ("code", *(c for f in STATION_FIELDS for c in STORED_AS.get(f, (f,))))
_CASTS = {"open_minutes": "::int4multirange", "open_periods": "::tstzmultirange",
          "unknown_periods": "::tstzmultirange"}
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

# The district (or city without districts) whose polygon covers a point, with its city
# and province: one rule for every write path (migration 0006, geo_admin_for_point).
ADMIN_FOR_POINT = """
SELECT district_code, district, city_code, city, province_code, province
FROM geo_admin_for_point(%(lon)s, %(lat)s)
"""

STREET_PROBLEM = """
SELECT geo_street_problem(%(street_code)s, %(district_code)s, %(lon)s, %(lat)s)
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

# Rows whose compiled hours may be stale (``maintenance.refresh_hours`` decides, since
# the installed calendar's label depends on each row's zone): dated rules near their
# horizon, and every rule compiled with a calendar or before calendars were recorded.
# Stations without hours (kind 'unknown') have nothing to recompile.
def _may_be_stale(t: str) -> str:
    return f"""{t}opening_hours IS NOT NULL AND ({t}hours_calendar IS DISTINCT FROM 'none'
       OR ({t}hours_kind = 'dated' AND ({t}hours_valid_until IS NULL
                                        OR {t}hours_valid_until < %(before)s)))"""

HOURS_TO_REFRESH = f"""
SELECT id, code, NULL AS seq, opening_hours, timezone, host_type, official_workdays,
       hours_kind, hours_valid_until, hours_calendar
FROM station WHERE {_may_be_stale('')}
ORDER BY id
"""

STOP_HOURS_TO_REFRESH = f"""
SELECT st.id, s.code, st.seq, st.opening_hours, s.timezone, s.host_type, s.official_workdays,
       st.hours_kind, st.hours_valid_until, st.hours_calendar
FROM station_stop st JOIN station s ON s.id = st.station_id
WHERE {_may_be_stale('st.')}
ORDER BY st.id
"""


def _refresh(table: str) -> str:
    """Store a recompilation of one row of ``table`` (unless its rule was edited
    meanwhile) and say whether the answer changed between now and the end of both
    compilations, and whether the known horizon grew.  Only stations store unknown
    stretches (a mobile stop always has hours)."""
    unknown = "unknown_periods" if table == "station" else "NULL::tstzmultirange"
    new_unknown = "t.unknown_periods" if table == "station" else "NULL::tstzmultirange"
    set_unknown = ("unknown_periods = %(unknown_periods)s::tstzmultirange,"
                   if table == "station" else "")
    window = ("tstzmultirange(tstzrange(%(now)s, greatest(%(now)s, "
              "least(old.hours_valid_until, t.hours_valid_until))))")
    return f"""
WITH old AS (
    SELECT id, hours_kind, open_minutes, open_periods, {unknown} AS unknown_periods,
           hours_valid_until
    FROM {table}
    WHERE id = %(id)s AND opening_hours = %(opening_hours)s FOR UPDATE
)
UPDATE {table} t SET hours_kind = %(hours_kind)s,
       open_minutes = %(open_minutes)s::int4multirange,
       open_periods = %(open_periods)s::tstzmultirange,
       {set_unknown}
       hours_valid_until = %(hours_valid_until)s, hours_calendar = %(hours_calendar)s
FROM old WHERE t.id = old.id
RETURNING (old.hours_kind IS DISTINCT FROM t.hours_kind
           OR old.open_minutes IS DISTINCT FROM t.open_minutes
           OR (coalesce(old.open_periods, '{{}}') * {window})
              IS DISTINCT FROM (coalesce(t.open_periods, '{{}}') * {window})
           OR (coalesce(old.unknown_periods, '{{}}') * {window})
              IS DISTINCT FROM (coalesce({new_unknown}, '{{}}') * {window})) AS changed,
          coalesce(t.hours_valid_until > old.hours_valid_until, false) AS extended
"""


REFRESH_HOURS = _refresh("station")
REFRESH_STOP_HOURS = _refresh("station_stop")


# --- the in-process nearest index (``nearest_index``) ---------------------------------------------

#: Everything the memory path needs of a station: the public columns exactly as the
#: nearest query returns them (same expressions, so the same values and types), the
#: filters' columns and the compiled hours the open-now test reads.
#: A station's compiled hours and zone as one text: stations share a few hundred
#: distinct ones, parsed once each (parsing multiranges row by row was most of a load).
HOURS_KEY = """concat_ws('|', s.hours_kind, coalesce(s.open_minutes::text, '-'),
    coalesce(s.open_periods::text, '-'), coalesce(s.unknown_periods::text, '-'),
    coalesce(s.hours_valid_until::text, '-'), s.timezone)"""
_INDEX_ROW = (f"s.id, s.change_seq, s.scheduled, {STATION_COLUMNS}, {AWARDS}, "
              f"{HOURS_KEY} AS hours_key")
_HOURS = "s.hours_kind, s.open_minutes, s.open_periods, s.unknown_periods, s.hours_valid_until"
INDEX_STATIONS = f"SELECT {_INDEX_ROW} FROM station s"
INDEX_HOURS = f"SELECT DISTINCT ON (hours_key) {HOURS_KEY} AS hours_key, {_HOURS}, s.timezone " \
              "FROM station s"
INDEX_STATIONS_BY_ID = f"SELECT {_INDEX_ROW}, {_HOURS} FROM station s WHERE s.id = ANY(%(ids)s)"

#: Every stop of a mobile station (few), with its compiled hours (``geo_is_open``).
INDEX_STOPS = """
SELECT st.station_id, st.seq, st.name, ST_X(st.geog::geometry) AS lon,
       ST_Y(st.geog::geometry) AS lat, st.opening_hours, st.valid_from, st.valid_to,
       st.hours_kind, st.open_minutes, st.open_periods
FROM station_stop st
"""
INDEX_STOPS_BY_STATION = INDEX_STOPS + "WHERE st.station_id = ANY(%(ids)s)"

#: The newest change number, read in the loading snapshot.
INDEX_MAX_SEQ = "SELECT coalesce(max(change_seq), 0) FROM station"

#: The channel migration 0009's triggers notify on every station, stop or award write.
INDEX_CHANNEL = "geo_station"
INDEX_LISTEN = f"LISTEN {INDEX_CHANNEL}"
INDEX_PING = "SELECT pg_notify(%(channel)s, %(payload)s)"
