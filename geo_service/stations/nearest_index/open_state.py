"""Open state in Python, for the memory index: SQL's ``geo_open_state`` and
``geo_is_open`` over hours compiled by the database.

The index cannot ask PostgreSQL per request, so it keeps each station's compiled rule
(weekly minute ranges, or dated periods with their horizon) and evaluates it here. It
is one implementation of a rule that also runs in SQL and JavaScript; all of them are
run against the committed cases in ``tests/test_open_state_cases.py``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo


def _in_range(r: Any, x: Any) -> bool:
    """``range @> x`` for a psycopg Range (either bound may be open or infinite)."""
    if r.isempty:
        return False
    lo, hi = r.lower, r.upper
    if lo is not None and (x < lo or (x == lo and not r.lower_inc)):
        return False
    return not (hi is not None and (x > hi or (x == hi and not r.upper_inc)))


def _in_multirange(ranges: Sequence[Any] | None, x: Any) -> bool | None:
    if ranges is None:
        return None
    return any(_in_range(r, x) for r in ranges)


def minute_of_week(at: dt.datetime, tz: str) -> int:
    """``geo_minute_of_week``: minutes since Monday 00:00 in ``tz``."""
    local = at.astimezone(ZoneInfo(tz))
    return (local.isoweekday() - 1) * 1440 + local.hour * 60 + local.minute


@dataclass(frozen=True)
class Hours:
    """A compiled rule in one zone (interned: most stations share a handful)."""

    kind: str
    weekly: tuple[tuple[int, int], ...] | None  # half-open minute-of-week ranges
    periods: tuple[Any, ...] | None
    unknown: tuple[Any, ...] | None
    valid_until: dt.datetime | None
    tz: str

    @staticmethod
    def of(kind: str, minutes: Any, periods: Any, unknown: Any, valid_until: Any,
           tz: str) -> Hours:
        weekly = None
        if minutes is not None:
            # int4multirange is canonical: [lo, hi), never empty, sorted.
            weekly = tuple((int(r.lower), int(r.upper)) for r in minutes)
        return Hours(kind, weekly, None if periods is None else tuple(periods),
                     None if unknown is None else tuple(unknown), valid_until, tz)

    def weekly_open(self, minute: int) -> bool | None:
        if self.weekly is None:
            return None
        i = bisect.bisect_right(self.weekly, (minute, math.inf)) - 1
        return i >= 0 and self.weekly[i][0] <= minute < self.weekly[i][1]

    def state(self, at: dt.datetime, minute: int) -> bool | None:
        """``geo_open_state``: True, False, or None when nobody can tell."""
        if self.kind == "weekly":
            return self.weekly_open(minute)
        if self.kind == "dated" and self.valid_until is not None and self.valid_until > at \
                and not _in_multirange(self.unknown, at):
            return bool(_in_multirange(self.periods, at))
        return None

    def is_open(self, at: dt.datetime, minute: int) -> bool:
        """``coalesce(geo_is_open(..), false)``, the test of a mobile stop."""
        if self.kind == "weekly":
            return bool(self.weekly_open(minute))
        return bool(_in_multirange(self.periods, at))


@dataclass(frozen=True)
class Stop:
    station_id: int
    seq: int
    name: str
    lon: float
    lat: float
    opening_hours: str
    valid_from: dt.date | None
    valid_to: dt.date | None
    hours: Hours



def hours_of(row: dict[str, Any]) -> Hours:
    """The compiled hours of a row that carries them (``INDEX_HOURS``, ``.._BY_ID``)."""
    return Hours.of(row["hours_kind"], row["open_minutes"], row["open_periods"],
                    row["unknown_periods"], row["hours_valid_until"], row["timezone"])



def stop_of(row: dict[str, Any], tz: str) -> Stop:
    return Stop(int(row["station_id"]), int(row["seq"]), row["name"], float(row["lon"]),
                float(row["lat"]), row["opening_hours"], row["valid_from"], row["valid_to"],
                Hours.of(row["hours_kind"], row["open_minutes"], row["open_periods"], None,
                         None, tz))

