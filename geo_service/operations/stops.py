"""Mobile stations' schedules: where a cooling bus parks, and when.

A station of host type ``mobile`` may carry a schedule of stops, each with its
own OSM ``opening_hours`` and an optional date range. The schedule is
replaced whole (``PUT``), as a station edit: it needs the station's version,
bumps it, and shows in the change feed. Stops are compiled like station hours
so "is it at this stop now" stays in SQL (the nearest query places a mobile
station at its current stop, see ``stations.queries.NEAREST_STOPS``).

A bus is at most at one stop at a time, so stops whose open times overlap are
refused: each stop's open intervals are laid out on the local calendar over
the span the schedule covers (at least a year from today) and swept for the
first overlap, which the error names (``stops[2].opening_hours``: "overlaps
stop 1 … on 2026-12-01 10:00–12:00"). Intervals are half-open, so one stop
ending at 16:00 and the next starting at 16:00 do not overlap.

That check lays out the hours of every stop over the whole span, which is CPU
work: a schedule of twenty long rules valid for years took ~22 s and, run on the
event loop, stalled every other request meanwhile. So the work is bounded first
(stops, rule length, dates at most :data:`MAX_AHEAD_DAYS` ahead, and the summed
:func:`~geo_service.hours.compiler.compile_work` of the schedule), then done in a worker
thread before the write transaction opens (no locks held while it runs).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.coords import Crs, from_wgs84, to_wgs84
from geo_service.domain.errors import NotFound, invalid
from geo_service.domain.params import instant
from geo_service.domain.principal import Principal
from geo_service.hours.calendar_hours import compile_station_hours, follows_workdays
from geo_service.hours.compiler import DEFAULT_HORIZON_DAYS, CompiledHours, compile_work
from geo_service.operations import queries as q
from geo_service.operations.schemas import MAX_AHEAD_DAYS, ScheduleIn, StopIn
from geo_service.stations.service import (
    begin_station_write,
    check_version,
    compiled_hours_columns,
    lock_station,
    require_scope,
)

#: The overlap check looks at least this far ahead of today (a whole year of weekdays).
MIN_SPAN_DAYS = 371
#: …and never further than this (dated rules are compiled this far).
MAX_SPAN_DAYS = MAX_AHEAD_DAYS + 1
#: Cap on a schedule's summed :func:`~geo_service.hours.compiler.compile_work` (overlap check
#: plus stored hours): twenty stops of ``Mo-Fr 10:00-16:00`` over two years need ~70,000,
#: and the cap keeps the worst accepted schedule near a second of CPU.
MAX_SCHEDULE_WORK = 120_000

# --------------------------------------------------------------------------- overlap check


@dataclass(frozen=True)
class _Stop:
    index: int
    name: str
    compiled: CompiledHours
    valid_from: dt.date | None
    valid_to: dt.date | None


def _local_intervals(stop: _Stop, start: dt.date, end: dt.date,
                     zone: ZoneInfo) -> list[tuple[dt.datetime, dt.datetime]]:
    """The stop's open intervals in local wall time (naive) over ``[start, end)`` days,
    inside its own date range."""
    lo = max(start, stop.valid_from or start)
    hi = min(end, stop.valid_to + dt.timedelta(days=1) if stop.valid_to else end)
    if lo >= hi:
        return []
    lo_t = dt.datetime.combine(lo, dt.time())
    hi_t = dt.datetime.combine(hi, dt.time())
    out: list[tuple[dt.datetime, dt.datetime]] = []
    if stop.compiled.kind == "weekly":
        monday = lo_t - dt.timedelta(days=lo.weekday())
        while monday < hi_t:
            for a, b in stop.compiled.weekly:
                s = max(lo_t, monday + dt.timedelta(minutes=a))
                e = min(hi_t, monday + dt.timedelta(minutes=b))
                if s < e:
                    out.append((s, e))
            monday += dt.timedelta(days=7)
    else:
        for a_utc, b_utc in stop.compiled.periods:
            s = max(lo_t, a_utc.astimezone(zone).replace(tzinfo=None))
            e = min(hi_t, b_utc.astimezone(zone).replace(tzinfo=None))
            if s < e:
                out.append((s, e))
    return out


def first_overlap(stops: list[StopIn], tz: str, today: dt.date, workdays: bool = False
                  ) -> tuple[int, int, dt.datetime, dt.datetime] | None:
    """The first two stops (earlier index, later index) open at the same time, with
    the shared local interval; None when the schedule is consistent.

    Stops are laid out as they will be stored (``calendar_hours``: the official
    calendar, ``workdays`` as for the station), so two stops that only meet on a day
    the library's own calendar gets wrong are judged by the real one; past the
    calendar's last year a dependent rule has no periods, and so no overlap."""
    zone = ZoneInfo(tz)
    start = today
    ends = [s.valid_to + dt.timedelta(days=1) for s in stops if s.valid_to]
    end = max([start + dt.timedelta(days=MIN_SPAN_DAYS), *ends])
    end = min(end, start + dt.timedelta(days=MAX_SPAN_DAYS))
    now = dt.datetime.combine(start, dt.time(), zone)
    compiled = [_Stop(i, s.name, compile_station_hours(
                          s.opening_hours, tz, workdays=workdays, now=now,
                          horizon_days=(end - start).days + 1).compiled,
                      s.valid_from, s.valid_to) for i, s in enumerate(stops)]
    events = sorted((s, e, stop.index) for stop in compiled
                    for s, e in _local_intervals(stop, start, end, zone))
    reach: tuple[dt.datetime, int] | None = None  # latest end so far, and whose
    for s, e, i in events:
        if reach is not None and s < reach[0] and i != reach[1]:
            a, b = sorted((i, reach[1]))
            return a, b, s, min(e, reach[0])
        if reach is None or e > reach[0]:
            reach = (e, i)
    return None


def _span_days(stops: list[StopIn], today: dt.date) -> int:
    """Days the overlap check lays out (as :func:`first_overlap` computes them)."""
    ends = [s.valid_to + dt.timedelta(days=1) for s in stops if s.valid_to]
    end = max([today + dt.timedelta(days=MIN_SPAN_DAYS), *ends])
    return (min(end, today + dt.timedelta(days=MAX_SPAN_DAYS)) - today).days + 1


def check_bounds(stops: list[StopIn], today: dt.date) -> None:
    """The cheap checks that bound the overlap check's work; run before it.

    Dates beyond :data:`MAX_AHEAD_DAYS` are refused by name (the check would have to
    lay years of hours out), then the schedule's summed compile work is capped.
    """
    last = today + dt.timedelta(days=MAX_AHEAD_DAYS)
    for i, stop in enumerate(stops):
        for name in ("valid_from", "valid_to"):
            day = getattr(stop, name)
            if day is not None and day > last:
                raise invalid(f"stops[{i}].{name}",
                              f"at most {MAX_AHEAD_DAYS} days ahead (until {last}): "
                              "plan later stops nearer the time")
    span = _span_days(stops, today)
    work = sum(compile_work(s.opening_hours, span) + compile_work(s.opening_hours,
                                                                  DEFAULT_HORIZON_DAYS)
               for s in stops)
    if work > MAX_SCHEDULE_WORK:
        raise invalid("stops", f"the schedule is too detailed to check ({work:,} units of "
                               f"work, at most {MAX_SCHEDULE_WORK:,}): fewer stops, fewer "
                               "distinct times, or shorter date ranges")


def check_schedule(stops: list[StopIn], tz: str, today: dt.date,
                   workdays: bool = False) -> None:
    """Refuse a schedule out of bounds or whose stops overlap in time, naming the stop."""
    check_bounds(stops, today)
    found = first_overlap(stops, tz, today, workdays)
    if found is None:
        return
    a, b, s, e = found
    raise invalid(f"stops[{b}].opening_hours",
                  f"overlaps stop {a} ({stops[a].name!r}) on {s:%Y-%m-%d} "
                  f"{s:%H:%M}–{e:%H:%M}: a mobile station is at one stop at a time")


# --------------------------------------------------------------------------- storage

def _stop_out(row: dict[str, Any], crs: Crs) -> dict[str, Any]:
    lon, lat = from_wgs84(row["lon"], row["lat"], crs)
    return {"seq": row["seq"], "name": row["name"], "lon": round(lon, 7), "lat": round(lat, 7),
            "crs": crs.value, "opening_hours": row["opening_hours"],
            "valid_from": row["valid_from"], "valid_to": row["valid_to"]}


async def get_schedule(conn: AsyncConnection[Any], code: str, at: dt.datetime | str | None,
                       crs: Crs) -> dict[str, Any]:
    """The schedule and the stop the station is at, at ``at``.

    ``at`` follows the one rule for instants (:func:`geo_service.domain.params.instant`):
    none is now, a time without an offset is China time, as a planner at the
    command line or a phone in Sanya means it.
    """
    when = instant(at, "at")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.SCHEDULE_STATION, {"code": code})
        station = await cur.fetchone()
        if station is None:
            raise NotFound(f"no station with code {code!r}", [("code", "unknown station code")])
        await cur.execute(q.STOPS, {"code": code, "at": when})
        rows = await cur.fetchall()
    current = next((_stop_out(r, crs) for r in rows if r["current"]), None)
    return {"code": code, "version": station["version"],
            "stops": [_stop_out(r, crs) for r in rows], "current_stop": current, "at": when}


def prepare_schedule(stops: list[StopIn], tz: str, today: dt.date,
                     workdays: bool = False) -> list[dict[str, Any]]:
    """Check the schedule and compile each stop's stored hours: the CPU part of a
    replacement, run in a worker thread. ``workdays``: the station follows make-up
    working days and official days off (``calendar_hours.follows_workdays``), which
    holds at every stop as it does for a fixed station."""
    check_schedule(stops, tz, today, workdays)
    return [compiled_hours_columns(s.opening_hours, tz, workdays=workdays) for s in stops]


async def _check_station(conn: AsyncConnection[Any], principal: Principal, code: str,
                         version: int | None, if_match: int | None) -> dict[str, Any]:
    """The station as it is now, refused early (unknown, out of scope, stale, not
    mobile) so a request that will fail costs no hours compiling."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.SCHEDULE_STATION, {"code": code})
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no station with code {code!r}", [("code", "unknown station code")])
    await require_scope(conn, principal, row, "station")
    check_version(row["version"], version, if_match)
    if row["host_type"] != "mobile":
        raise invalid("stops", f"only mobile stations have stops; {code} is {row['host_type']}")
    return dict(row)


async def replace_schedule(conn: AsyncConnection[Any], principal: Principal, code: str,
                           body: ScheduleIn, crs: Crs, if_match: int | None,
                           today: dt.date | None = None) -> dict[str, Any]:
    """Replace the whole schedule of a mobile station, atomically, as a station edit.

    Validate, then transact: the schedule is checked and compiled against the
    station as read first; the transaction then re-checks the version under the
    row lock, and since a changed time zone or host type bumps the version, the
    work done before still holds when it matches.
    """
    seen = await _check_station(conn, principal, code, body.version, if_match)
    tz = seen["timezone"]
    stops = []
    for i, stop in enumerate(body.stops):
        lon, lat = to_wgs84(stop.lon, stop.lat, crs)
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise invalid(f"stops[{i}].lon", "outside the world after conversion")
        # A stop is where nearest places the station: it must lie in the key's
        # area like the station itself, or a scoped key could move its bus
        # anywhere in the country.
        await require_scope(conn, principal, {"lon": lon, "lat": lat}, f"stop {i}",
                            field=f"stops[{i}]")
        stops.append(stop.model_copy(update={"lon": lon, "lat": lat}))
    local_today = today or dt.datetime.now(ZoneInfo(tz)).date()
    check_bounds(stops, local_today)
    workdays = follows_workdays(seen["host_type"], seen["official_workdays"])
    compiled = await asyncio.to_thread(prepare_schedule, stops, tz, local_today, workdays)
    async with conn.transaction():
        await begin_station_write(conn, principal)
        current = await lock_station(conn, code)
        await require_scope(conn, principal, current, "station")
        check_version(current["version"], body.version, if_match)
        if current["host_type"] != "mobile":
            raise invalid("stops", f"only mobile stations have stops; {code} is "
                                   f"{current['host_type']}")
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(q.SCHEDULE_STATION, {"code": code})
            station = await cur.fetchone()
            assert station is not None
            await cur.execute(q.DELETE_STOPS, {"id": station["id"]})
            for seq, (stop, hours) in enumerate(zip(stops, compiled, strict=True), start=1):
                await cur.execute(q.INSERT_STOP, {
                    "station_id": station["id"], "seq": seq, "name": stop.name,
                    "lon": stop.lon, "lat": stop.lat, "opening_hours": stop.opening_hours,
                    "valid_from": stop.valid_from, "valid_to": stop.valid_to, **hours})
            await cur.execute(q.BUMP_SCHEDULED, {"id": station["id"], "scheduled": bool(stops)})
    return await get_schedule(conn, code, None, crs)
