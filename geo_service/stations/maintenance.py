"""Keeping derived data fresh: dated opening hours are compiled over a finite horizon."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from geo_service.stations import queries as q
from geo_service.stations.service import compiled_hours_columns


def refresh_dated_hours(
    conn: psycopg.Connection[Any], *, within_days: int = 60, now: dt.datetime | None = None
) -> int:
    """Recompile stations (and mobile stops) whose dated hours run out within ``within_days``.

    Rules a weekly pattern cannot hold (holidays, date ranges) are stored as
    absolute open (and unknown) periods up to ``hours_valid_until``; past it the SQL
    answers "unknown" (``geo_open_state`` is NULL). Stations without hours have
    nothing to recompile and are skipped. Run this daily (cron / systemd timer). It changes derived
    columns only, so the station's ``version`` stays the same.
    """
    now = now or dt.datetime.now(dt.UTC)
    rows = conn.execute(q.DATED_HOURS, {"before": now + dt.timedelta(days=within_days)})
    count = 0
    with conn.transaction():
        for code, expr, tz in rows.fetchall():
            cols = compiled_hours_columns(expr, tz, now=now)
            conn.execute(q.REFRESH_PERIODS, {**cols, "code": code, "opening_hours": expr})
            count += 1
        stops = conn.execute(q.DATED_STOP_HOURS,
                             {"before": now + dt.timedelta(days=within_days)}).fetchall()
        for stop_id, expr, tz in stops:
            cols = compiled_hours_columns(expr, tz, now=now)
            conn.execute(q.REFRESH_STOP_PERIODS, {**cols, "id": stop_id, "opening_hours": expr})
            count += 1
    return count
