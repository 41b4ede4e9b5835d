"""Keeping derived data fresh: compiled opening hours expire or go stale.

Two things make stored hours out of date without anyone editing a station:

* **the horizon** - rules a weekly pattern cannot hold (holidays, date ranges) are
  stored as absolute open periods up to ``hours_valid_until``; past it the SQL
  answers "unknown";
* **the calendar** - rules that depend on public holidays or make-up working days
  were compiled with the calendar package installed then (``hours_calendar`` names
  it); a newer package (the State Council publishes next year's notice each
  November) covers more days or corrects some, and rows compiled before calendars
  were recorded (label NULL, e.g. right after migration 0008) used the library's
  reduced calendar.

:func:`refresh_hours` first installs the holiday arrangements operators entered
(``holiday_arrangement``, ``geo-service calendar enter``): a newly entered year changes
the calendar's label, so every row compiled with the provisional year is recompiled.

:func:`refresh_hours` recompiles both kinds in one transaction. Run it daily (cron /
systemd timer) and after upgrading ``chinese-calendar`` / ``holidays``. It changes
derived columns only, so the station's ``version`` stays the same, and it is
idempotent: a second run right after the first finds nothing stale (hours that stop
where the installed calendar stops are not recompiled for their horizon: only a newer
calendar can extend them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from geo_service.hours.arrangements import load_arrangements
from geo_service.hours.calendar_hours import (
    NO_CALENDAR,
    calendar_end,
    current_label,
    follows_workdays,
)
from geo_service.hours.calendars import use_arrangements
from geo_service.stations import queries as q
from geo_service.stations.service import compiled_hours_columns

#: Suffix of the labels of rules the library evaluates with its own calendar
#: (``calendar_hours``' fallback): no calendar package upgrade makes them stale.
_LIBRARY_LABEL = " opening-hours-py"


@dataclass
class HoursRefresh:
    """What a refresh did.

    Attributes
    ----------
    recompiled
        Stations and mobile stops whose hours were compiled again.
    changed
        Those whose open/closed answer differs from the stored one somewhere between
        now and the end of both compilations (``"S-1"``, ``"BUS-1 stop 2"``).
    extended
        Those whose known horizon grew (e.g. a calendar that now covers next year).
    """

    recompiled: int = 0
    changed: list[str] = field(default_factory=list)
    extended: list[str] = field(default_factory=list)


def _stale(row: dict[str, Any], before: dt.datetime) -> bool:
    """Whether a row's compiled hours need compiling again (see the module docstring)."""
    label, until = row["hours_calendar"], row["hours_valid_until"]
    if label is None:
        return True
    if label != NO_CALENDAR and not label.endswith(_LIBRARY_LABEL):
        if label != current_label(row["timezone"]):
            return True
        end = calendar_end(row["timezone"])
        if until is not None and end is not None and until >= end:
            return False  # stops where the calendar does: only a newer one extends it
    return row["hours_kind"] == "dated" and (until is None or until < before)


def refresh_hours(
    conn: psycopg.Connection[Any], *, within_days: int = 60, now: dt.datetime | None = None
) -> HoursRefresh:
    """Recompile stations and mobile stops whose hours expire within ``within_days`` or
    were compiled with another calendar than the installed one; see the module
    docstring."""
    now = now or dt.datetime.now(dt.UTC)
    use_arrangements(load_arrangements(conn))
    before = now + dt.timedelta(days=within_days)
    report = HoursRefresh()
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        for table, select, update in (("station", q.HOURS_TO_REFRESH, q.REFRESH_HOURS),
                                      ("station_stop", q.STOP_HOURS_TO_REFRESH,
                                       q.REFRESH_STOP_HOURS)):
            rows = cur.execute(select, {"before": before}).fetchall()
            for row in rows:
                if not _stale(row, before):
                    continue
                workdays = follows_workdays(row["host_type"], row["official_workdays"])
                cols = compiled_hours_columns(row["opening_hours"], row["timezone"], now=now,
                                              workdays=workdays)
                cur.execute(update, {**cols, "id": row["id"], "now": now,
                                     "opening_hours": row["opening_hours"]})
                done = cur.fetchone()
                if done is None:  # edited meanwhile: the edit compiled it afresh
                    continue
                report.recompiled += 1
                name = row["code"] if table == "station" else f"{row['code']} stop {row['seq']}"
                if done["changed"]:
                    report.changed.append(name)
                if done["extended"]:
                    report.extended.append(name)
    return report


def refresh_dated_hours(
    conn: psycopg.Connection[Any], *, within_days: int = 60, now: dt.datetime | None = None
) -> int:
    """How many rows :func:`refresh_hours` recompiled (the daily job's old interface)."""
    return refresh_hours(conn, within_days=within_days, now=now).recompiled
