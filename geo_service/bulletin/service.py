"""Reading one bulletin's figures: which area, whether the caller may see it, the SQL.

Plain values out (:class:`~geo_service.bulletin.model.Bulletin`), read on a connection
the caller gives back before anything is drawn (a chart and a PDF take seconds of CPU;
no pooled connection waits on them). The API, the command line and the console call
:func:`read` alike; the command line passes no principal (no area limit).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.bulletin import queries as q
from geo_service.bulletin.model import NO_WORKER_TYPE, Bulletin, CoverageRun, Figures, Month
from geo_service.domain.errors import Forbidden, NotFound
from geo_service.domain.principal import Principal
from geo_service.operations.visits import WORKER_TYPE_LABELS

#: Days without an inspection (or a 最近核实日期) after which a serving station is
#: overdue: the default of ``GET /v1/inspections/overdue`` and its command.
OVERDUE_DAYS = 365
#: How many months the stations line chart covers, this one included.
TREND_MONTHS = 12


async def _all(conn: AsyncConnection[Any], sql: str, params: dict[str, Any]
               ) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def area_of(conn: AsyncConnection[Any], area: str,
                  principal: Principal | None) -> dict[str, Any]:
    """Area ``area``'s row: 404 unknown, 403 outside the caller's area (both naming
    ``area``)."""
    scope = principal.area_code if principal is not None else None
    rows = await _all(conn, q.AREA, {"area": area, "scope": scope})
    if not rows:
        raise NotFound(f"no admin area {area!r}", [("area", "unknown admin area code")])
    if not rows[0]["allowed"]:
        raise Forbidden(f"limited to area {scope}; area {area} is outside it",
                        [("area", f"outside the caller's area {scope}")])
    return rows[0]


def _month_ends(month: Month) -> list[dt.date]:
    """The last day of each of the :data:`TREND_MONTHS` months up to ``month``."""
    ends = []
    year, mon = month.year, month.month
    for _ in range(TREND_MONTHS):
        ends.append(Month(year, mon, month.tz).last_day)
        year, mon = (year - 1, 12) if mon == 1 else (year, mon - 1)
    return ends[::-1]


async def _run(conn: AsyncConnection[Any], area: str, before: dt.datetime
               ) -> CoverageRun | None:
    rows = await _all(conn, q.RUN_BEFORE, {"area": area, "before": before})
    return CoverageRun(rows[0]["id"], rows[0]["created_at"]) if rows else None


async def _shares(conn: AsyncConnection[Any], run: CoverageRun | None,
                  units: list[str]) -> dict[str, float]:
    if run is None:
        return {}
    rows = await _all(conn, q.RUN_SHARES, {"run": run.id, "units": units})
    return {r["code"]: float(r["covered"]) for r in rows}


async def read(conn: AsyncConnection[Any], area: str, month: Month,
               principal: Principal | None, *,
               overdue_days: int = OVERDUE_DAYS) -> Bulletin:
    """The bulletin of ``area`` (and everything below it) for ``month``."""
    found = await area_of(conn, area, principal)
    districts = await _all(conn, q.DISTRICTS, {"area": area})
    units = [area, *(d["code"] for d in districts if d["code"] != area)]
    start, end = month.start(), month.end()
    params: dict[str, Any] = {
        "units": units, "start": start, "end": end, "first_day": month.first_day,
        "last_day": month.last_day, "today": month.last_day, "serving": list(q.SERVING),
        "days": overdue_days,
        "tz": month.tz}
    figures: dict[str, dict[str, Any]] = {u: {} for u in units}
    for row in await _all(conn, q.STATIONS, params):
        figures[row["code"]].update(built=row["built"], serving=row["serving"],
                                    verified=row["verified"], on_map=row["on_map"],
                                    overdue=row["overdue"])
    for row in await _all(conn, q.INSPECTIONS, params):
        figures[row["code"]]["inspections"] = row["inspections"]
    for row in await _all(conn, q.REPORTS, params):
        figures[row["code"]].update(reports_received=row["received"],
                                    reports_resolved=row["resolved"])
    for row in await _all(conn, q.VISITS, params):
        figures[row["code"]]["person_times"] = row["visits"]
    # The coverage change: the newest run made by the end of this month, against the
    # newest made by the end of the month before.
    run_after = await _run(conn, area, end)
    run_before = await _run(conn, area, start)
    after = await _shares(conn, run_after, units)
    before = await _shares(conn, run_before, units)
    for u in units:
        figures[u].update(covered_after=after.get(u), covered_before=before.get(u))

    area_params = {**params, "units": [area]}
    counts = {r["worker_type"]: r["visits"]
              for r in await _all(conn, q.VISITS_BY_WORKER, area_params)}
    labels = [*WORKER_TYPE_LABELS, None]  # the check-in page's order, "not given" last
    by_worker = [(*WORKER_TYPE_LABELS.get(w or "", NO_WORKER_TYPE), counts[w])
                 for w in sorted(counts, key=lambda w: (-counts[w], labels.index(w)))]
    per_day = {r["day"]: r["visits"] for r in await _all(conn, q.VISITS_BY_DAY, area_params)}
    ends = _month_ends(month)
    trend = await _all(conn, q.STATIONS_BY_MONTH, {**area_params, "ends": ends})
    stations_by_month = [(r["day"].strftime("%Y-%m"), r["serving"]) for r in trend]
    names = {d["code"]: d["name"] for d in districts}
    return Bulletin(
        area_code=area, area_name=found["name"], month=month, sample=found["sample"],
        overdue_days=overdue_days,
        total=Figures(code=area, name=found["name"], **figures[area]),
        districts=[Figures(code=u, name=names[u], **figures[u]) for u in units[1:]],
        by_worker=by_worker, by_day=[(d, per_day.get(d, 0)) for d in month.days()],
        stations_by_month=stations_by_month, run_after=run_after, run_before=run_before,
        made_at=dt.datetime.now(ZoneInfo(month.tz)))
