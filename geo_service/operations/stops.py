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
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, Field, field_validator, model_validator

from geo_service.coords import Crs, from_wgs84, to_wgs84
from geo_service.errors import NotFound, invalid
from geo_service.hours import CompiledHours, HoursError, compile_hours, validate_hours
from geo_service.stations.queries import STOP_ACTIVE
from geo_service.stations.service import (
    Principal,
    begin_station_write,
    check_version,
    compiled_hours_columns,
    lock_station,
    require_scope,
)

#: A schedule longer than this is a data error, not a bus.
MAX_STOPS = 20
#: The overlap check looks at least this far ahead of today (a whole year of weekdays).
MIN_SPAN_DAYS = 371
#: …and never further than this (dated rules are compiled this far).
MAX_SPAN_DAYS = 3 * 366


class StopIn(BaseModel):
    """One stop as an editor sends it."""

    name: str = Field(min_length=1, max_length=100, description="where the bus parks")
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    opening_hours: str = Field(min_length=1, max_length=500,
                               description="OSM opening_hours of this stop, e.g. Mo-Fr 10:00-16:00")
    valid_from: dt.date | None = Field(default=None, description="first day (local), inclusive")
    valid_to: dt.date | None = Field(default=None, description="last day (local), inclusive")

    @field_validator("lon", "lat")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("opening_hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        try:
            return validate_hours(v)
        except HoursError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _range(self) -> StopIn:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


class ScheduleIn(BaseModel):
    """A whole schedule; ``version`` is the station's (or send ``If-Match``)."""

    stops: list[StopIn] = Field(max_length=MAX_STOPS)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class StopOut(BaseModel):
    seq: int = Field(description="order in the schedule, from 1")
    name: str
    lon: float
    lat: float
    crs: Crs
    opening_hours: str
    valid_from: dt.date | None
    valid_to: dt.date | None


class ScheduleOut(BaseModel):
    code: str
    version: int
    stops: list[StopOut]
    current_stop: StopOut | None = Field(
        description="where it is at `at` (default now), if anywhere")
    at: dt.datetime


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


def first_overlap(stops: list[StopIn], tz: str, today: dt.date) -> tuple[int, int, dt.datetime,
                                                                         dt.datetime] | None:
    """The first two stops (earlier index, later index) open at the same time, with
    the shared local interval; None when the schedule is consistent."""
    zone = ZoneInfo(tz)
    start = today
    ends = [s.valid_to + dt.timedelta(days=1) for s in stops if s.valid_to]
    end = max([start + dt.timedelta(days=MIN_SPAN_DAYS), *ends])
    end = min(end, start + dt.timedelta(days=MAX_SPAN_DAYS))
    now = dt.datetime.combine(start, dt.time(), zone)
    compiled = [_Stop(i, s.name, compile_hours(s.opening_hours, tz, now=now,
                                               horizon_days=(end - start).days + 1),
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


def check_schedule(stops: list[StopIn], tz: str, today: dt.date) -> None:
    """Refuse a schedule whose stops overlap in time, naming the later stop."""
    found = first_overlap(stops, tz, today)
    if found is None:
        return
    a, b, s, e = found
    raise invalid(f"stops[{b}].opening_hours",
                  f"overlaps stop {a} ({stops[a].name!r}) on {s:%Y-%m-%d} "
                  f"{s:%H:%M}–{e:%H:%M}: a mobile station is at one stop at a time")


# --------------------------------------------------------------------------- storage

_DELETE_STOPS = "DELETE FROM station_stop WHERE station_id = %(id)s"
#: One stop with its compiled hours (also used by the sample-data loader).
INSERT_STOP = """
INSERT INTO station_stop (station_id, seq, name, geog, opening_hours, hours_kind, open_minutes,
                          open_periods, hours_valid_until, valid_from, valid_to)
VALUES (%(station_id)s, %(seq)s, %(name)s,
        ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, %(opening_hours)s,
        %(hours_kind)s, %(open_minutes)s::int4multirange, %(open_periods)s::tstzmultirange,
        %(hours_valid_until)s, %(valid_from)s, %(valid_to)s)
"""
_BUMP = """
UPDATE station SET version = version + 1, scheduled = %(scheduled)s WHERE id = %(id)s
RETURNING version
"""
_STATION_ID = "SELECT id, timezone, host_type, version FROM station WHERE code = %(code)s"

#: The stops of a station, and which is current at %(at)s (the nearest query's test).
STOPS = f"""
SELECT st.seq, st.name, ST_X(st.geog::geometry) AS lon, ST_Y(st.geog::geometry) AS lat,
       st.opening_hours, st.valid_from, st.valid_to, ({STOP_ACTIVE}) AS current
FROM station_stop st JOIN station s ON s.id = st.station_id
WHERE s.code = %(code)s
ORDER BY st.seq
"""


def _stop_out(row: dict[str, Any], crs: Crs) -> dict[str, Any]:
    lon, lat = from_wgs84(row["lon"], row["lat"], crs)
    return {"seq": row["seq"], "name": row["name"], "lon": round(lon, 7), "lat": round(lat, 7),
            "crs": crs.value, "opening_hours": row["opening_hours"],
            "valid_from": row["valid_from"], "valid_to": row["valid_to"]}


async def get_schedule(conn: AsyncConnection[Any], code: str, at: dt.datetime,
                       crs: Crs) -> dict[str, Any]:
    """The schedule and the stop the station is at, at ``at``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_STATION_ID, {"code": code})
        station = await cur.fetchone()
        if station is None:
            raise NotFound(f"no station with code {code!r}", [("code", "unknown station code")])
        await cur.execute(STOPS, {"code": code, "at": at})
        rows = await cur.fetchall()
    current = next((_stop_out(r, crs) for r in rows if r["current"]), None)
    return {"code": code, "version": station["version"],
            "stops": [_stop_out(r, crs) for r in rows], "current_stop": current, "at": at}


async def replace_schedule(conn: AsyncConnection[Any], principal: Principal, code: str,
                           body: ScheduleIn, crs: Crs, if_match: int | None,
                           today: dt.date | None = None) -> dict[str, Any]:
    """Replace the whole schedule of a mobile station, atomically, as a station edit."""
    async with conn.transaction():
        await begin_station_write(conn, principal)
        current = await lock_station(conn, code)
        await require_scope(conn, principal, current, "station")
        check_version(current["version"], body.version, if_match)
        if current["host_type"] != "mobile":
            raise invalid("stops", f"only mobile stations have stops; {code} is "
                                   f"{current['host_type']}")
        tz = current["timezone"]
        stops = []
        for i, stop in enumerate(body.stops):
            lon, lat = to_wgs84(stop.lon, stop.lat, crs)
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise invalid(f"stops[{i}].lon", "outside the world after conversion")
            # A stop is where nearest places the station: it must lie in the
            # key's area like the station itself, or a scoped key could move
            # its bus anywhere in the country.
            await require_scope(conn, principal, {"lon": lon, "lat": lat}, f"stop {i}",
                                field=f"stops[{i}]")
            stops.append(stop.model_copy(update={"lon": lon, "lat": lat}))
        check_schedule(stops, tz, today or dt.datetime.now(ZoneInfo(tz)).date())
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_STATION_ID, {"code": code})
            station = await cur.fetchone()
            assert station is not None
            await cur.execute(_DELETE_STOPS, {"id": station["id"]})
            for seq, stop in enumerate(stops, start=1):
                await cur.execute(INSERT_STOP, {
                    "station_id": station["id"], "seq": seq, "name": stop.name,
                    "lon": stop.lon, "lat": stop.lat, "opening_hours": stop.opening_hours,
                    "valid_from": stop.valid_from, "valid_to": stop.valid_to,
                    **compiled_hours_columns(stop.opening_hours, tz)})
            await cur.execute(_BUMP, {"id": station["id"], "scheduled": bool(stops)})
    return await get_schedule(conn, code, dt.datetime.now(dt.UTC), crs)
