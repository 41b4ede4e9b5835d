"""Official public-holiday calendars: which days are off, which weekend days are worked.

``PH`` in an opening-hours rule means "the country's public holidays", and stations
that keep office hours also work on China's make-up working days (调休上班, e.g.
Saturday 2026-10-10).  opening-hours-py's own ``CN`` calendar knows only the first day
of each festival and no make-up days, so the days come from maintained packages:

* **China (CN): ``chinese-calendar``** is authoritative.  It transcribes the State
  Council's yearly notice (国务院办公厅关于节假日安排的通知) including every day of each
  break and every make-up working day, and it *refuses* years whose notice it does not
  have - exactly the "unknown" we need, where ``holidays`` would project festivals
  into next year without the swaps the notice will add.  ``holidays`` (which also
  models CN swaps) is checked against it in the tests for the years both cover.
* **Every other country: ``holidays``** (python-holidays).  Its calendars are rules
  (Finnish Independence Day is 6 December every year), so they cover every year up
  to the package's ``end_year``.

A station's country follows from its IANA time zone via tzdata's ``zone.tab``
(``Asia/Shanghai`` and ``Asia/Urumqi`` → CN, ``Europe/Helsinki`` → FI,
``Asia/Hong_Kong`` → HK); zones that name no country (``UTC``, ``Etc/GMT-8``) fall back
to :data:`DEFAULT_COUNTRY`, because every station this service was built for is in
China.

Each calendar carries a :attr:`Calendar.label` naming the package version it came
from; stations store the label they were compiled with, so ``geo-service hours
refresh`` can find what a package upgrade (a newly published notice) made stale.

Examples
--------
>>> import datetime as dt
>>> cn = calendar_for("CN")
>>> dt.date(2026, 10, 2) in cn.days_off, dt.date(2026, 10, 10) in cn.workdays
(True, True)
>>> country_for_timezone("Europe/Helsinki")
'FI'
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import importlib.resources
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import chinese_calendar
import holidays

__all__ = [
    "DEFAULT_COUNTRY",
    "Calendar",
    "calendar_for",
    "country_for_timezone",
]

DEFAULT_COUNTRY: Final = "CN"
"""Calendar for zones that name no country (the service's stations are Chinese)."""


@dataclass(frozen=True)
class Calendar:
    """A country's official days off and make-up working days over the covered years.

    Attributes
    ----------
    country
        ISO 3166-1 alpha-2 code.
    days_off
        Official days off (``PH`` matches them).  For CN every day of each break,
        weekends inside a break included, as the notice lists them.
    workdays
        Weekend days that are official working days (make-up days, 调休上班).
    first, until
        Covered dates are ``first <= day < until``; outside them the calendar does not
        know, and answers that depend on it are unknown.
    label
        Source and version, e.g. ``"CN chinese-calendar 1.11.0"``; stored with compiled
        hours so a package upgrade can be detected.
    """

    country: str
    days_off: frozenset[dt.date]
    workdays: frozenset[dt.date]
    first: dt.date
    until: dt.date
    label: str

    def covers(self, day: dt.date) -> bool:
        """Whether the calendar knows what *day* is."""
        return self.first <= day < self.until


def _version(package: str) -> str:
    return importlib.metadata.version(package)


def _chinese_calendar() -> Calendar:
    """China from ``chinese-calendar``: the State Council's notices, year by year."""
    years = [d.year for d in chinese_calendar.holidays]
    first, last = min(years), max(years)
    return Calendar(
        country="CN",
        days_off=frozenset(chinese_calendar.holidays),
        # The package lists make-up days as "workdays" (all fall on weekends).
        workdays=frozenset(d for d in chinese_calendar.workdays if d.weekday() >= 5),
        first=dt.date(first, 1, 1),
        until=dt.date(last + 1, 1, 1),
        label=f"CN chinese-calendar {_version('chinese-calendar')}",
    )


#: Years of a rule-based ``holidays`` calendar materialised per country: far more than
#: any compile horizon (400 days) needs, and ~1 ms to build.
_HOLIDAYS_SPAN_YEARS: Final = 12
_HOLIDAYS_FIRST_YEAR: Final = 2020


def _holidays_calendar(country: str) -> Calendar:
    """Any other country from python-holidays (rules, so every year to ``end_year``)."""
    last = min(_HOLIDAYS_FIRST_YEAR + _HOLIDAYS_SPAN_YEARS,
               int(holidays.country_holidays(country).end_year))
    cal = holidays.country_holidays(country, years=range(_HOLIDAYS_FIRST_YEAR, last + 1))
    return Calendar(
        country=country,
        days_off=frozenset(cal),
        workdays=frozenset(d for d in cal.weekend_workdays
                           if _HOLIDAYS_FIRST_YEAR <= d.year <= last),
        first=dt.date(_HOLIDAYS_FIRST_YEAR, 1, 1),
        until=dt.date(last + 1, 1, 1),
        label=f"{country} holidays {_version('holidays')}",
    )


@lru_cache(maxsize=64)
def calendar_for(country: str) -> Calendar:
    """The official calendar of *country* (ISO code, any case); built once per process.

    Raises
    ------
    ValueError
        No calendar for that code (``"XX"``).
    """
    code = country.strip().upper()
    if code == "CN":
        return _chinese_calendar()
    try:
        return _holidays_calendar(code)
    except NotImplementedError as exc:  # holidays' "country not available"
        raise ValueError(f"no public-holiday calendar for country {country!r}") from exc


@lru_cache(maxsize=1)
def _zone_countries() -> dict[str, str]:
    """tzdata's ``zone.tab``: each zone's one country (the file's own choice)."""
    text = importlib.resources.files("tzdata").joinpath("zoneinfo/zone.tab").read_text()
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            code, _coords, zone, *_rest = line.split("\t")
            out[zone] = code
    return out


@lru_cache(maxsize=1024)
def country_for_timezone(tz: str) -> str | None:
    """The country whose public holidays a station in zone *tz* keeps.

    ``Asia/Shanghai`` → ``CN``, ``Europe/Helsinki`` → ``FI``; zones that are no
    country's (``UTC``) → :data:`DEFAULT_COUNTRY`.  ``None`` for a country no package
    has a calendar for (``Antarctica/Troll``): ``PH`` then never matches, as in
    opening-hours-py without a country, rather than refusing the station.
    """
    code = _zone_countries().get(tz, DEFAULT_COUNTRY)
    if code != DEFAULT_COUNTRY and code not in holidays.list_supported_countries():
        return None
    return code
