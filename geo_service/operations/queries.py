"""Every SQL statement of the operations room: stops, inspections, awards, check-ins,
reports, confirmations and the rate limits they share.

The services (``stops``, ``inspections``, ``visits``, ``reports``, ``common``)
keep the rules and run these; nothing else in the room writes SQL. Values are
always bound parameters; the few statements assembled from parts
(:func:`rate_query`, :func:`earlier_query`, :func:`counts_query`) join only
our own identifiers and text, never a client's.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from geo_service.domain.verification import LAST_VERIFIED_SQL, OVERDUE_SQL
from geo_service.stations.queries import STOP_ACTIVE

# --------------------------------------------------------------------------- stations

#: A station by code (duplicates excluded): id, place and area codes.
STATION_REF = """
SELECT s.id, s.code, s.name, s.status, s.host_type, s.version,
       ST_X(s.geog::geometry) AS lon, ST_Y(s.geog::geometry) AS lat,
       s.province_code, s.city_code, s.district_code, s.street_code
FROM station s WHERE s.code = %(code)s AND s.status <> 'duplicate'
"""

#: An admin area of any level, for area filters.
AREA_EXISTS = "SELECT 1 FROM admin_area WHERE code = %(area)s"

#: Same-client writes within a window, over several (table, time column) sources.
_RATE_SOURCE = "SELECT {t} AS t FROM {tbl} WHERE client_hash = %(c)s AND {t} > now() - %(w)s"
_RATE = "SELECT count(*), min(t) FROM (SELECT t FROM ({u}) u ORDER BY t DESC LIMIT %(n)s) x"


def rate_query(sources: Sequence[tuple[str, str]]) -> sql.Composed:
    """How many of the last ``%(n)s`` rows of client ``%(c)s`` fall within ``%(w)s``, and
    the oldest of them, over the ``(table, time column)`` sources (our own identifiers)."""
    union = sql.SQL(" UNION ALL ").join(
        sql.SQL(_RATE_SOURCE).format(t=sql.Identifier(col), tbl=sql.Identifier(table))
        for table, col in sources)
    return sql.SQL(_RATE).format(u=union)


# --------------------------------------------------------------------------- stops

#: The station a schedule belongs to: what the early refusals and the write need.
SCHEDULE_STATION = """
SELECT s.id, s.code, s.timezone, s.host_type, s.official_workdays, s.version,
       ST_X(s.geog::geometry) AS lon, ST_Y(s.geog::geometry) AS lat,
       s.province_code, s.city_code, s.district_code, s.street_code
FROM station s WHERE s.code = %(code)s
"""
DELETE_STOPS = "DELETE FROM station_stop WHERE station_id = %(id)s"
#: One stop with its compiled hours (also used by the sample-data loader).
INSERT_STOP = """
INSERT INTO station_stop (station_id, seq, name, geog, opening_hours, hours_kind, open_minutes,
                          open_periods, hours_valid_until, hours_calendar, valid_from, valid_to)
VALUES (%(station_id)s, %(seq)s, %(name)s,
        ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, %(opening_hours)s,
        %(hours_kind)s, %(open_minutes)s::int4multirange, %(open_periods)s::tstzmultirange,
        %(hours_valid_until)s, %(hours_calendar)s, %(valid_from)s, %(valid_to)s)
"""
BUMP_SCHEDULED = """
UPDATE station SET version = version + 1, scheduled = %(scheduled)s WHERE id = %(id)s
RETURNING version
"""
#: The stops of a station, and which is current at %(at)s (the nearest query's test).
STOPS = f"""
SELECT st.seq, st.name, ST_X(st.geog::geometry) AS lon, ST_Y(st.geog::geometry) AS lat,
       st.opening_hours, st.valid_from, st.valid_to, ({STOP_ACTIVE}) AS current
FROM station_stop st JOIN station s ON s.id = st.station_id
WHERE s.code = %(code)s
ORDER BY st.seq
"""

# --------------------------------------------------------------------------- inspections

# Station codes of the area filter, the same test the station list uses.
_IN_AREA = """(%(area)s::text IS NULL
       OR %(area)s IN (s.province_code, s.city_code, s.district_code, s.street_code))"""

_LATER_EXISTS = """EXISTS (SELECT 1 FROM inspection j WHERE j.station_id = i.station_id
                 AND (j.inspected_on, j.id) > (i.inspected_on, i.id))"""

_INSPECTION_COLUMNS = f"""
    i.id, s.code AS station_code, i.inspected_on, i.inspector, i.items, i.extras,
    i.hours_observed, i.photos, i.remarks, i.score::float8 AS score, i.ten_ones_count,
    i.amenity_mask, NOT {_LATER_EXISTS} AS current, i.created_at, i.sample
"""

INSERT_INSPECTION = """
INSERT INTO inspection (station_id, inspected_on, inspector_key_id, inspector, items, extras,
                        hours_observed, photos, remarks, score, ten_ones_count, amenity_mask,
                        sample)
VALUES (%(station_id)s, %(inspected_on)s, %(inspector_key_id)s, %(inspector)s, %(items)s,
        %(extras)s, %(hours_observed)s, %(photos)s, %(remarks)s, %(score)s,
        %(ten_ones_count)s, %(amenity_mask)s, %(sample)s)
RETURNING id
"""

GET_INSPECTION = f"""
SELECT {_INSPECTION_COLUMNS}
FROM inspection i JOIN station s ON s.id = i.station_id WHERE i.id = %(id)s
"""

# Only a change that consumers can see bumps the version (and so the change feed).
APPLY_TO_STATION = """
UPDATE station SET amenity_mask = %(amenity_mask)s, last_verified_on = %(inspected_on)s,
       version = version + 1
WHERE id = %(station_id)s
  AND (amenity_mask, last_verified_on)
      IS DISTINCT FROM (%(amenity_mask)s::bigint, %(inspected_on)s::date)
RETURNING version
"""

# Newest first, keyset-paged on (inspected_on, id).
LIST_INSPECTIONS = f"""
SELECT {_INSPECTION_COLUMNS}
FROM inspection i JOIN station s ON s.id = i.station_id
WHERE i.station_id = %(station_id)s
  AND (%(after_on)s::date IS NULL
       OR (i.inspected_on, i.id) < (%(after_on)s::date, %(after_id)s::bigint))
ORDER BY i.inspected_on DESC, i.id DESC
LIMIT %(limit)s
"""

# The later of the last inspection and the imported 最近核实日期 (domain.verification).
OVERDUE = f"""
SELECT s.code, s.name, s.status, s.district_code, s.district, s.sample,
       li.last_on AS last_inspected_on, v.verified AS last_verified_on,
       %(today)s::date - v.verified AS days_since,
       count(*) OVER ()::int AS total
FROM station s
LEFT JOIN LATERAL (SELECT max(i.inspected_on) AS last_on FROM inspection i
                   WHERE i.station_id = s.id) li ON true
CROSS JOIN LATERAL (SELECT {LAST_VERIFIED_SQL} AS verified) v
WHERE s.status = ANY(%(statuses)s) AND {_IN_AREA}
  AND {OVERDUE_SQL.format(verified="v.verified")}
ORDER BY v.verified NULLS FIRST, s.code
LIMIT %(limit)s
"""

TREND = f"""
SELECT s.district_code, min(s.district) AS district,
       date_trunc(%(period)s, i.inspected_on::timestamp)::date AS period_start,
       count(*)::int AS inspections, count(DISTINCT i.station_id)::int AS stations,
       round(avg(i.ten_ones_count), 2)::float8 AS mean_ten_ones,
       round(avg((i.ten_ones_count = 10)::int), 3)::float8 AS all_ten_share,
       round(avg(i.score), 1)::float8 AS mean_score, count(i.score)::int AS scored
FROM inspection i JOIN station s ON s.id = i.station_id
WHERE s.status <> 'duplicate' AND {_IN_AREA}
  AND (%(start)s::date IS NULL OR i.inspected_on >= %(start)s::date)
  AND (%(end)s::date IS NULL OR i.inspected_on <= %(end)s::date)
GROUP BY s.district_code, period_start
ORDER BY s.district_code NULLS LAST, period_start
LIMIT %(limit)s
"""

# Each published station's latest inspection (recent enough), then its items' states.
MISSING_ITEMS = f"""
WITH latest AS (
    SELECT DISTINCT ON (i.station_id) i.items, i.inspected_on
    FROM inspection i JOIN station s ON s.id = i.station_id
    WHERE s.status = ANY(%(statuses)s) AND {_IN_AREA}
    ORDER BY i.station_id, i.inspected_on DESC, i.id DESC
), recent AS (
    SELECT items FROM latest WHERE %(since)s::date IS NULL OR inspected_on >= %(since)s::date
)
SELECT (SELECT count(*) FROM recent)::int AS stations, e.key AS code,
       count(*) FILTER (WHERE e.value = 'missing')::int AS missing,
       count(*) FILTER (WHERE e.value = 'broken')::int AS broken
FROM recent r CROSS JOIN LATERAL jsonb_each_text(r.items) e
GROUP BY e.key
"""

# --------------------------------------------------------------------------- awards

# Serialises award writes per station (the duplicate check) without the change-feed lock.
LOCK_STATION_ROW = "SELECT 1 FROM station WHERE id = %(station_id)s FOR NO KEY UPDATE"

_AWARD_COLUMNS = "id, title, level, year, created_at, sample"

INSERT_AWARD = f"""
INSERT INTO station_award (station_id, title, level, year, sample)
SELECT %(station_id)s, %(title)s, %(level)s, %(year)s, %(sample)s
WHERE NOT EXISTS (SELECT 1 FROM station_award WHERE station_id = %(station_id)s
                  AND title = %(title)s AND level = %(level)s AND year = %(year)s)
RETURNING {_AWARD_COLUMNS}
"""

LIST_AWARDS = f"""
SELECT {_AWARD_COLUMNS} FROM station_award WHERE station_id = %(station_id)s
ORDER BY year DESC, id
"""

DELETE_AWARD = "DELETE FROM station_award WHERE id = %(id)s AND station_id = %(station_id)s"

# --------------------------------------------------------------------------- check-ins

LOCK = "SELECT pg_advisory_xact_lock(%(cls)s, hashtext(%(key)s))"
_EARLIER = "SELECT max(at) FROM {table} WHERE station_id = %(station)s AND at > now() - %(window)s"
_BY_DEVICE = " AND device_hash = %(device)s"
_BY_CLIENT = " AND device_hash IS NULL AND client_hash = %(client)s"


def earlier_query(table: str, by_device: bool) -> sql.Composed:
    """Time of the caller's latest row in ``table`` (``visit`` or ``confirmation``) at
    station ``%(station)s`` within ``%(window)s``: by device hash, else by client hash
    among rows without a device."""
    return sql.SQL(_EARLIER + (_BY_DEVICE if by_device else _BY_CLIENT)).format(
        table=sql.Identifier(table))


INSERT_VISIT = """
INSERT INTO visit (station_id, worker_type, device_hash, client_hash)
VALUES (%(station)s, %(worker_type)s, %(device)s, %(client)s)
RETURNING at
"""

# ``{key}`` / ``{label}`` come from _GROUP_SQL (our own text, never the client's).
_COUNTS = """
SELECT {key} AS key, min({label}) AS label, count(*)::int AS count
FROM visit v JOIN station s ON s.id = v.station_id
WHERE v.at >= %(start)s AND v.at < %(end)s
  AND (%(station)s::bigint IS NULL OR v.station_id = %(station)s)
  AND (%(area)s::text IS NULL
       OR %(area)s IN (s.province_code, s.city_code, s.district_code, s.street_code))
GROUP BY 1
ORDER BY 1 NULLS LAST
"""
_LOCAL = "(v.at AT TIME ZONE %(tz)s)"
_GROUP_SQL = {
    "station": ("s.code", "s.name"),
    "district": ("s.district_code", "s.district"),
    "worker_type": ("v.worker_type", "NULL::text"),
    "day": (f"{_LOCAL}::date", "NULL::text"),
    "week": (f"date_trunc('week', {_LOCAL})::date", "NULL::text"),
    "month": (f"date_trunc('month', {_LOCAL})::date", "NULL::text"),
}


def counts_query(group: str) -> sql.Composed:
    """Check-ins per ``group`` (a :data:`~geo_service.operations.schemas.Group`) between
    ``%(start)s`` and ``%(end)s``, local buckets in ``%(tz)s``."""
    key_sql, label_sql = _GROUP_SQL[group]
    return sql.SQL(_COUNTS).format(key=sql.SQL(key_sql), label=sql.SQL(label_sql))


# --------------------------------------------------------------------------- reports

# Reports and confirmations share one budget per client address.
INSERT_REPORT = """
INSERT INTO station_report (station_id, kind, amenity, comment, device_hash, client_hash)
VALUES (%(station)s, %(kind)s, %(amenity)s, %(comment)s, %(device)s, %(client)s)
RETURNING id
"""

# Who filed the open 'closed' reports of a station within the window (a report
# stored without hashes, e.g. sample data, stands for a reporter of its own).
CLOSED_REPORTERS = """
SELECT coalesce(device_hash, client_hash, 'report:' || id),
       coalesce(client_hash, device_hash, 'report:' || id)
FROM station_report
WHERE station_id = %(station)s AND kind = 'closed' AND status = 'open'
  AND superseded_at IS NULL AND created_at > now() - %(window)s
"""

# Touches the row only when the mark changes; keeps the first time it was set.
SET_MARK = """
UPDATE station
SET reported_closed_at = CASE WHEN %(closed)s THEN coalesce(reported_closed_at, now()) END
WHERE id = %(station)s AND %(closed)s = (reported_closed_at IS NULL)
"""

# lon, lat and the area codes are for the scope check; the service drops them.
_REPORT_COLUMNS = """
SELECT r.id, s.code AS station, s.name AS station_name, s.district_code,
       s.reported_closed_at IS NOT NULL AS station_reported_closed,
       r.kind, r.amenity, r.comment, r.status, r.version, r.created_at, r.superseded_at,
       ST_X(s.geog::geometry) AS lon, ST_Y(s.geog::geometry) AS lat,
       s.province_code, s.city_code, s.street_code
FROM station_report r JOIN station s ON s.id = r.station_id
"""
#: The columns of :data:`GET_REPORT` / :data:`LIST_REPORTS` only the scope check reads.
REPORT_SCOPE_ONLY = ("lon", "lat", "province_code", "city_code", "street_code")
GET_REPORT = _REPORT_COLUMNS + "WHERE r.id = %(id)s"

LIST_REPORTS = _REPORT_COLUMNS + """
WHERE r.id > %(after)s
  AND (%(status)s::text IS NULL OR r.status = %(status)s)
  -- the open queue holds standing words only; a replaced one stays readable under 'all'
  AND (%(status)s::text IS DISTINCT FROM 'open' OR r.superseded_at IS NULL)
  AND (%(kind)s::text IS NULL OR r.kind = %(kind)s)
  AND (%(station)s::text IS NULL OR s.code = %(station)s)
  AND (%(area)s::text IS NULL
       OR %(area)s IN (s.province_code, s.city_code, s.district_code, s.street_code))
  AND (%(scope)s::text IS NULL
       OR %(scope)s IN (s.province_code, s.city_code, s.district_code, s.street_code))
ORDER BY r.id
LIMIT %(limit)s
"""

# For the console's queue: who filed each listed report (as CLOSED_REPORTERS pairs them),
# whether its station is sample data, and whether the station has an open 'closed' report.
REPORT_REPORTERS = """
SELECT r.id, coalesce(r.device_hash, r.client_hash, 'report:' || r.id),
       coalesce(r.client_hash, r.device_hash, 'report:' || r.id), s.sample,
       EXISTS (SELECT 1 FROM station_report o
               WHERE o.station_id = r.station_id AND o.kind = 'closed' AND o.status = 'open'
                 AND o.superseded_at IS NULL) AS open_closed
FROM station_report r JOIN station s ON s.id = r.station_id
WHERE r.id = ANY(%(ids)s)
"""

# The latest decision on each of the listed reports (for the console's rows).
LAST_RESOLUTIONS = """
SELECT DISTINCT ON (report_id) report_id, action, note, editor, created_at
FROM report_resolution WHERE report_id = ANY(%(ids)s)
ORDER BY report_id, id DESC
"""

REPORT_STATION = "SELECT station_id FROM station_report WHERE id = %(id)s"

LOCK_REPORT = """
SELECT r.status, r.version, r.kind, ST_X(s.geog::geometry) AS lon, ST_Y(s.geog::geometry) AS lat,
       s.province_code, s.city_code, s.district_code, s.street_code
FROM station_report r JOIN station s ON s.id = r.station_id
WHERE r.id = %(id)s
FOR UPDATE OF r
"""

INSERT_RESOLUTION = """
INSERT INTO report_resolution (report_id, action, note, editor_key_id, editor)
VALUES (%(id)s, %(action)s, %(note)s, %(key_id)s, %(editor)s)
"""

UPDATE_REPORT = """
UPDATE station_report SET status = %(status)s, version = version + 1 WHERE id = %(id)s
"""

RESOLUTIONS = """
SELECT action, note, editor, created_at FROM report_resolution
WHERE report_id = %(id)s ORDER BY id
"""

CONFIRM = """
WITH c AS (
    INSERT INTO confirmation (station_id, device_hash, client_hash)
    VALUES (%(station)s, %(device)s, %(client)s)
    RETURNING at
)
UPDATE station SET last_confirmed_at = c.at FROM c WHERE station.id = %(station)s
RETURNING c.at
"""

# ------------------------------------------------------------------ standing words

# A device's standing words on whether a station is open, newest first: its
# confirmations and 'closed' reports within the window that no later word replaced.
STANDING_WORDS = """
SELECT 'confirmation' AS word, id, at FROM confirmation
WHERE station_id = %(station)s AND device_hash = %(device)s AND superseded_at IS NULL
  AND at > now() - %(window)s
UNION ALL
SELECT 'closed', id, created_at FROM station_report
WHERE station_id = %(station)s AND device_hash = %(device)s AND kind = 'closed'
  AND superseded_at IS NULL AND created_at > now() - %(window)s
ORDER BY at DESC, id DESC
"""

# The device's open, standing report of this kind (and amenity) at the station within
# the de-duplication window: a repeat of it is "already reported" and stores nothing.
EARLIER_REPORT = """
SELECT id, created_at FROM station_report
WHERE station_id = %(station)s AND device_hash = %(device)s AND kind = %(kind)s
  AND amenity IS NOT DISTINCT FROM %(amenity)s AND status = 'open'
  AND superseded_at IS NULL AND created_at > now() - %(window)s
ORDER BY created_at DESC, id DESC
LIMIT 1
"""

SUPERSEDE_CONFIRMATIONS = "UPDATE confirmation SET superseded_at = now() WHERE id = ANY(%(ids)s)"
SUPERSEDE_REPORTS = "UPDATE station_report SET superseded_at = now() WHERE id = ANY(%(ids)s)"

# The station's last confirmation among the standing ones (a replaced one no longer counts).
STANDING_CONFIRMED = """
UPDATE station SET last_confirmed_at = (
    SELECT max(at) FROM confirmation WHERE station_id = %(station)s AND superseded_at IS NULL)
WHERE id = %(station)s
"""
