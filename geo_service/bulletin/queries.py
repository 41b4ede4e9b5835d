"""Every SQL statement of the bulletin room. Values are always bound parameters.

Each figure is counted for several "units" at once: the area itself (the total) and each
of its districts, as ``unnest(%(units)s)``; a station lies in a unit when the unit's code
is one of its area codes (the rule every area filter of the service follows). Instants
are compared with the month's bounds in the service's time zone, computed by the caller
(``%(start)s`` counted in, ``%(end)s`` counted out); dates with its first and last day.
"""

from __future__ import annotations

from geo_service.console.stations_list import MAP_MISSING_SQL
from geo_service.domain.verification import INSPECTED_STATUSES, OVERDUE_SQL

#: The statuses that serve (open, temporarily closed): those counted, inspected, mapped.
SERVING = INSPECTED_STATUSES


def verified_as_of_sql(on: str) -> str:
    """When station ``s`` was last verified on site as of the date parameter ``on``: the
    later of its 最近核实日期 and its latest inspection, each only when not after ``on``.

    The service's one rule (:data:`geo_service.domain.verification.LAST_VERIFIED_SQL`)
    seen from a month's end instead of today, so a bulletin of a past month does not
    change when a station is inspected later. ``last_verified_on`` holds one date: once
    a later inspection has moved it past ``on``, the inspections before ``on`` still say
    when the station was verified.
    """
    return f"""greatest(
    CASE WHEN s.last_verified_on <= %({on})s::date THEN s.last_verified_on END,
    (SELECT max(i.inspected_on) FROM inspection i
     WHERE i.station_id = s.id AND i.inspected_on <= %({on})s::date))"""


#: The units of a bulletin: the admin areas at district level in the area (the area
#: itself when it is a district, none when it lies below one), by code.
DISTRICTS = """
SELECT a.code, a.name, a.name_en FROM admin_area a
WHERE a.level = 'district' AND geo_area_within(a.code, %(area)s)
ORDER BY a.code
"""

#: The area asked for, whether it lies within the caller's (``scope``; NULL: everywhere),
#: and whether it, or any station in it, is sample data (the sample city's boundaries are
#: real, its stations and their operations are not).
AREA = """
SELECT a.code, a.name, a.name_en,
       a.sample OR EXISTS (SELECT FROM station s WHERE s.sample AND a.code IN
           (s.province_code, s.city_code, s.district_code, s.street_code)) AS sample,
       %(scope)s::text IS NULL OR geo_area_within(a.code, %(scope)s) AS allowed
FROM admin_area a WHERE a.code = %(area)s
"""

_UNIT_STATIONS = """
FROM unnest(%(units)s::text[]) AS u(code)
JOIN station s ON u.code IN (s.province_code, s.city_code, s.district_code, s.street_code)
WHERE s.deleted_at IS NULL AND s.status <> 'duplicate'
"""

#: The day station ``s`` came into service: its 建站/开放日期 (``opened_on``) when the
#: union recorded one, else the day it was entered here (local date). Imported stations
#: are entered on the day of the import, years after many of them opened: counting them
#: by entry alone would report a city's whole network as "built" in its import month.
STARTED_SQL = "coalesce(s.opened_on, (s.created_at AT TIME ZONE %(tz)s)::date)"

#: Stations built (came into service in the month, planned ones left out), serving at
#: its end, verified in it (an inspection, or a 最近核实日期, in the month), on the map
#: (serving, every field the platforms ask for) and overdue at its end (serving, not
#: verified for ``days`` days before it, by the one overdue rule with the month's last
#: day as "today"). "Serving at the end" is today's status of a station that
#: came into service by then: the service keeps no history of statuses.
STATIONS = f"""
SELECT u.code,
  count(*) FILTER (WHERE {STARTED_SQL} BETWEEN %(first_day)s AND %(last_day)s
                   AND s.status <> 'planned') AS built,
  count(*) FILTER (WHERE {STARTED_SQL} <= %(last_day)s
                   AND s.status = ANY(%(serving)s)) AS serving,
  count(*) FILTER (WHERE {STARTED_SQL} <= %(last_day)s AND (
      s.last_verified_on BETWEEN %(first_day)s AND %(last_day)s
      OR EXISTS (SELECT FROM inspection i WHERE i.station_id = s.id
                 AND i.inspected_on BETWEEN %(first_day)s AND %(last_day)s))) AS verified,
  count(*) FILTER (WHERE {STARTED_SQL} <= %(last_day)s AND s.status = ANY(%(serving)s)
                   AND cardinality({MAP_MISSING_SQL}) = 0) AS on_map,
  count(*) FILTER (WHERE {STARTED_SQL} <= %(last_day)s AND s.status = ANY(%(serving)s)
                   AND {OVERDUE_SQL.format(verified=verified_as_of_sql("last_day"))}
                  ) AS overdue
{_UNIT_STATIONS}
GROUP BY u.code
"""

#: Inspections done in the month (by inspection date).
INSPECTIONS = f"""
SELECT u.code, count(*) AS inspections
{_UNIT_STATIONS.replace("WHERE", "JOIN inspection i ON i.station_id = s.id WHERE", 1)}
  AND i.inspected_on BETWEEN %(first_day)s AND %(last_day)s
GROUP BY u.code
"""

#: Worker reports received in the month, and resolved in it (a ``resolved`` decision
#: made in the month, whenever the report came in; a report resolved twice, reopened
#: between, counts once).
REPORTS = f"""
SELECT u.code,
  count(*) FILTER (WHERE r.created_at >= %(start)s AND r.created_at < %(end)s) AS received,
  count(*) FILTER (WHERE EXISTS (
      SELECT FROM report_resolution d WHERE d.report_id = r.id AND d.action = 'resolved'
      AND d.created_at >= %(start)s AND d.created_at < %(end)s)) AS resolved
{_UNIT_STATIONS.replace("WHERE", "JOIN station_report r ON r.station_id = s.id WHERE", 1)}
GROUP BY u.code
"""

_VISITS = _UNIT_STATIONS.replace("WHERE", "JOIN visit v ON v.station_id = s.id WHERE", 1) + """
  AND v.at >= %(start)s AND v.at < %(end)s"""

#: Person-times (check-ins) in the calendar month, per unit.
VISITS = f"SELECT u.code, count(*) AS visits {_VISITS} GROUP BY u.code"

#: Person-times of the area in the month by worker type (NULL: not given).
VISITS_BY_WORKER = f"""
SELECT v.worker_type, count(*) AS visits {_VISITS} GROUP BY v.worker_type
"""

#: Person-times of the area per local day of the month (days without any left out).
VISITS_BY_DAY = f"""
SELECT (v.at AT TIME ZONE %(tz)s)::date AS day, count(*) AS visits {_VISITS}
GROUP BY 1 ORDER BY 1
"""

#: Stations of the area serving at the end of each month (``ends``: the last day of
#: each), today's status of those in service by then.
STATIONS_BY_MONTH = f"""
SELECT e.day, count(s.id) FILTER (WHERE s.started <= e.day
                                   AND s.status = ANY(%(serving)s)) AS serving
FROM unnest(%(ends)s::date[]) AS e(day)
LEFT JOIN (SELECT s.id, s.status, {STARTED_SQL} AS started {_UNIT_STATIONS}) s ON true
GROUP BY e.day ORDER BY e.day
"""

#: The newest stored coverage run of the area made before ``before`` (NULL: none).
RUN_BEFORE = """
SELECT id, created_at FROM analysis_run
WHERE kind IN ('coverage', 'recommendations') AND params->>'area' = %(area)s
  AND created_at < %(before)s
ORDER BY created_at DESC, id DESC LIMIT 1
"""

#: A run's covered share of demand per unit (units without demand in the run left out);
#: the tree is walked once per distinct area of the run's cells, not once per cell.
RUN_SHARES = """
WITH codes AS (SELECT DISTINCT area_code FROM analysis_cell WHERE run_id = %(run)s),
     units AS (SELECT c.area_code, u.code FROM codes c
               CROSS JOIN unnest(%(units)s::text[]) AS u(code)
               WHERE geo_area_within(c.area_code, u.code))
SELECT units.code, sum(c.demand) FILTER (WHERE c.covered) / sum(c.demand) AS covered
FROM analysis_cell c JOIN units ON units.area_code = c.area_code
WHERE c.run_id = %(run)s
GROUP BY units.code HAVING sum(c.demand) > 0
"""
