"""The bulletin's figures as plain values, and the month they cover: no database, no PDF.

Kept apart from the renderers so the service, the router and the console can name them
without importing matplotlib or WeasyPrint (each ~1 s to load).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from geo_service.domain.errors import invalid

#: ``2026-11``: a calendar month of the years 2000-2100, as the command line, the API and
#: the console take it (the range in the pattern, so the OpenAPI document states it).
MONTH_PATTERN = r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])$"
#: The years :data:`MONTH_PATTERN` admits (the service's data start long after the first).
FIRST_YEAR, LAST_YEAR = 2000, 2100


@dataclass(frozen=True)
class Month:
    """A calendar month in a time zone: its first instant and the first of the next."""

    year: int
    month: int
    tz: str

    @classmethod
    def parse(cls, text: str, tz: str) -> Month:
        """``2026-11`` in zone ``tz``; anything else is a 422 naming ``month``."""
        if not re.fullmatch(MONTH_PATTERN, text):
            raise invalid("month", f"must be a calendar month as YYYY-MM of the years "
                                   f"{FIRST_YEAR}-{LAST_YEAR}, e.g. 2026-11")
        return cls(int(text[:4]), int(text[5:]), tz)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def next_first_day(self) -> dt.date:
        return (dt.date(self.year + 1, 1, 1) if self.month == 12
                else dt.date(self.year, self.month + 1, 1))

    @property
    def last_day(self) -> dt.date:
        return self.next_first_day - dt.timedelta(days=1)

    @property
    def previous_last_day(self) -> dt.date:
        return self.first_day - dt.timedelta(days=1)

    def start(self) -> dt.datetime:
        """Midnight of the first day, local time (counted in)."""
        return dt.datetime.combine(self.first_day, dt.time(), ZoneInfo(self.tz))

    def end(self) -> dt.datetime:
        """Midnight of the next month's first day, local time (counted out)."""
        return dt.datetime.combine(self.next_first_day, dt.time(), ZoneInfo(self.tz))

    def days(self) -> list[dt.date]:
        n = (self.next_first_day - self.first_day).days
        return [self.first_day + dt.timedelta(days=i) for i in range(n)]


@dataclass(frozen=True)
class Figures:
    """One row of the bulletin's main table: the area as a whole, or one district."""

    code: str
    name: str
    built: int = 0
    serving: int = 0
    verified: int = 0
    on_map: int = 0
    inspections: int = 0
    overdue: int = 0
    reports_received: int = 0
    reports_resolved: int = 0
    person_times: int = 0
    covered_before: float | None = None
    covered_after: float | None = None

    @property
    def coverage_change(self) -> float | None:
        """Covered share now minus at the previous month's end (None: a run is missing)."""
        if self.covered_before is None or self.covered_after is None:
            return None
        return self.covered_after - self.covered_before


@dataclass(frozen=True)
class CoverageRun:
    """A stored coverage run a bulletin's coverage change is read from."""

    id: int
    created_at: dt.datetime


@dataclass(frozen=True)
class Bulletin:
    """Everything one bulletin says, in the order it says it."""

    area_code: str
    area_name: str
    month: Month
    sample: bool
    overdue_days: int
    total: Figures
    districts: list[Figures]
    #: Person-times by worker type: Chinese and English label, count (most first).
    by_worker: list[tuple[str, str, int]]
    #: Person-times per day of the month, every day listed.
    by_day: list[tuple[dt.date, int]]
    #: Stations serving at the end of each of the twelve months up to this one.
    stations_by_month: list[tuple[str, int]] = field(default_factory=list)
    run_after: CoverageRun | None = None
    run_before: CoverageRun | None = None
    made_at: dt.datetime | None = None


#: The main table's columns: attribute, Chinese heading, English heading.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("built", "新建驿站", "Built"),
    ("serving", "月末在服务", "Serving at month end"),
    ("verified", "本月核实", "Verified"),
    ("on_map", "已上图", "On the map"),
    ("inspections", "巡查次数", "Inspections"),
    ("overdue", "逾期未巡查", "Overdue"),
    ("reports_received", "收到报告", "Reports received"),
    ("reports_resolved", "已处理报告", "Reports resolved"),
    ("person_times", "服务人次", "Person-times"),
)
#: The label of person-times whose worker gave no type at check-in.
NO_WORKER_TYPE = ("未填写", "Not given")


def share(value: float | None) -> str:
    """A covered share as people read it (``—``: no run)."""
    return "—" if value is None else f"{value * 100:.1f}%"


def change(value: float | None) -> str:
    """A change of covered share in percentage points (``—``: a run is missing)."""
    return "—" if value is None else f"{value * 100:+.1f} pp"
