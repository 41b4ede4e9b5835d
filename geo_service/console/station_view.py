"""What the console's station page shows, read with the API's own rules and services.

The station as ``GET /v1/stations/{code}`` gives it (every field, the hours in plain
Chinese, ``open_now`` and ``next_change`` from the same evaluator); the area check of
the API's scoped reads (:func:`geo_service.stations.service.in_scope`); the audit trail
newest first, each entry naming the console account (``audit_log.user_id``) or the key
that wrote it; the worker reports (editors and admins only, as ``GET /v1/reports``);
the inspections (public, as ``GET /v1/stations/{code}/inspections``); check-ins per
month over the last twelve months (``GET /v1/visits/counts``).

Out-of-area stations are refused with a 403, not hidden behind a 404: the API answers
any station's public record to anyone (``GET /v1/stations/{code}``), so its existence is
no secret; what an area's staff may not see is its history and reports, and the 403
says why. (Report ids, unlike station codes, are not public, which is why the reports
API answers 404 for another area's report.)
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.console.stations_list import MAP_MISSING_SQL
from geo_service.domain.coords import Crs
from geo_service.domain.errors import Forbidden, NotFound
from geo_service.domain.principal import Principal
from geo_service.domain.verification import LAST_VERIFIED_SQL
from geo_service.infra.settings import Settings
from geo_service.operations import inspections, reports, visits
from geo_service.stations.service import in_scope, station_detail

#: History entries per page of the station page.
HISTORY_PAGE = 30
#: Inspections and reports the page lists (the newest).
RECENT = 10
#: Reports read to find the newest (the API lists them oldest first).
REPORTS_READ = 200
#: Months of check-ins shown.
MONTHS = 12

_PLACE = f"""
SELECT ST_X(s.geog::geometry) AS lon, ST_Y(s.geog::geometry) AS lat,
       s.province_code, s.city_code, s.district_code, s.street_code,
       (SELECT max(i.inspected_on) FROM inspection i WHERE i.station_id = s.id)
           AS last_inspected_on, {LAST_VERIFIED_SQL} AS verified_on,
       {MAP_MISSING_SQL} AS map_missing
FROM station s WHERE s.code = %(code)s
"""
_HISTORY = """
SELECT a.id, a.at, a.actor, a.user_id, a.key_id, a.action, a.import_id, a.changes,
       u.display_name, u.name AS account
FROM audit_log a LEFT JOIN staff_user u ON u.id = a.user_id
WHERE a.station_code = %(code)s AND (%(before)s::bigint IS NULL OR a.id < %(before)s)
ORDER BY a.id DESC
LIMIT %(limit)s
"""


def month_start(today: dt.date, back: int) -> dt.date:
    """The first day of the month ``back`` months before ``today``'s."""
    months = today.year * 12 + today.month - 1 - back
    return dt.date(months // 12, months % 12 + 1, 1)


async def history(conn: AsyncConnection[Any], code: str, *, before: int | None,
                  limit: int = HISTORY_PAGE) -> dict[str, Any]:
    """The station's audit entries, newest first, ``limit`` before entry ``before``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_HISTORY, {"code": code, "before": before, "limit": limit + 1})
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"entries": rows, "older": rows[-1]["id"] if more else None}


async def station_view(conn: AsyncConnection[Any], settings: Settings, principal: Principal,
                       code: str, *, now: dt.datetime,
                       history_before: int | None = None) -> dict[str, Any]:
    """Everything the station page shows; :class:`NotFound` for an unknown code,
    :class:`Forbidden` for a station outside the person's area."""
    station = await station_detail(conn, code, Crs.WGS84, now)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_PLACE, {"code": code})
        place = await cur.fetchone()
    if place is None:  # deleted for good between the two reads
        raise NotFound(f"no station with code {code!r}", [("code", "unknown station code")])
    if not await in_scope(conn, principal, place):
        raise Forbidden(f"this account is limited to area {principal.area_code}; station "
                        f"{code} is outside it",
                        [("code", f"outside the account's area {principal.area_code}")])
    editor = principal.role in ("admin", "editor")
    today = now.astimezone(ZoneInfo(settings.default_timezone)).date()
    view: dict[str, Any] = {
        "station": station, "last_inspected_on": place["last_inspected_on"],
        "verified_on": place["verified_on"], "map_missing": place["map_missing"],
        "history": await history(conn, code, before=history_before) if editor else None,
        "reports": None, "inspections": [], "visits": None, "today": today}
    if editor:
        found = await reports.list_reports(
            conn, settings, principal, status="all", kind=None, station=code, area=None,
            limit=min(REPORTS_READ, settings.max_page_size), cursor=None)
        items = found["items"]
        view["reports"] = {"recent": items[::-1][:RECENT],
                           "open": sum(r["status"] == "open" for r in items),
                           "total": len(items), "more": found["next_cursor"] is not None}
    if station["status"] != "duplicate":  # the operations services ignore duplicates
        found = await inspections.list_inspections(conn, code, limit=RECENT, cursor=None)
        view["inspections"] = found["inspections"]
        view["visits"] = await visits.visit_counts(
            conn, settings, group="month", area=None, station=code,
            start=month_start(today, MONTHS - 1), end=today)
    return view
