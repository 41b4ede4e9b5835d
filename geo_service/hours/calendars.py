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
* **China after the last notice the package has: entered, else provisional.**  An
  operator enters a year's arrangement once the State Council publishes it
  (:class:`Arrangement`, ``geo-service calendar enter``; stored in the database and
  installed here with :func:`use_arrangements`).  A year nobody has entered yet falls
  back to the days the law itself fixes (全国年节及纪念日放假办法: New Year, Spring
  Festival eve to its third day, Qingming, 1-2 May, Dragon Boat, Mid-Autumn, 1-3 Oct,
  and a weekday in lieu of one that falls on a weekend), as ``holidays`` computes them,
  lunar dates included, with no make-up working days: the notice will add its swaps, so
  those years are **provisional** (:attr:`Calendar.provisional`), and labelled so.
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
import hashlib
import importlib.metadata
import importlib.resources
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import chinese_calendar
import holidays

__all__ = [
    "DEFAULT_COUNTRY",
    "WARN_DAYS",
    "Arrangement",
    "Calendar",
    "calendar_for",
    "calendar_health",
    "country_for_timezone",
    "package_last_year",
    "use_arrangements",
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
        Source and version, e.g. ``"CN chinese-calendar 1.11.0; provisional from 2027
        (holidays 0.109)"``; stored with compiled hours so a package upgrade or an
        entered year can be detected.
    provisional
        Years whose days are only the statutory ones, awaiting the year's notice.
    """

    country: str
    days_off: frozenset[dt.date]
    workdays: frozenset[dt.date]
    first: dt.date
    until: dt.date
    label: str
    provisional: frozenset[int] = frozenset()

    def covers(self, day: dt.date) -> bool:
        """Whether the calendar knows what *day* is."""
        return self.first <= day < self.until

    @property
    def official_until(self) -> dt.date:
        """First day from which the calendar is provisional (or not covered at all)."""
        return dt.date(min(self.provisional), 1, 1) if self.provisional else self.until


@dataclass(frozen=True)
class Arrangement:
    """One year's State Council arrangement as an operator entered it (China only).

    Validated by :func:`geo_service.hours.arrangements.parse_arrangement`: every day
    in ``year``, make-up days on weekends, no day both off and worked.
    """

    year: int
    days_off: frozenset[dt.date]
    workdays: frozenset[dt.date]
    notice: str

    @property
    def digest(self) -> str:
        """Six hex digits of the days: re-entering a corrected year under the same notice
        number still changes the calendar label, so ``hours refresh`` recompiles."""
        days = ",".join(d.isoformat() for d in sorted(self.days_off))
        days += "|" + ",".join(d.isoformat() for d in sorted(self.workdays))
        return hashlib.sha256(days.encode()).hexdigest()[:6]


def _version(package: str) -> str:
    return importlib.metadata.version(package)


#: Years of a rule-based ``holidays`` calendar materialised per country: far more than
#: any compile horizon (400 days) needs, and ~1 ms to build.
_HOLIDAYS_SPAN_YEARS: Final = 12
_HOLIDAYS_FIRST_YEAR: Final = 2020
#: China's provisional years reach at least this far past the last official one, so a
#: compile window (~400 days) never meets the calendar's end.
_PROVISIONAL_MIN_YEARS: Final = 3

#: Arrangements installed in this process, per country (see :func:`use_arrangements`).
_entered: dict[str, tuple[Arrangement, ...]] = {}


def package_last_year() -> int:
    """The last year ``chinese-calendar`` has a notice for; later ones are entered or
    provisional."""
    return max(int(d.year) for d in chinese_calendar.holidays)


def use_arrangements(arrangements: tuple[Arrangement, ...] | list[Arrangement]) -> bool:
    """Install the entered arrangements (all of them: the database's current set) in this
    process; True when that changed China's calendar.

    Years the package covers are ignored: its transcription of the notice wins.
    """
    wanted = tuple(sorted((a for a in arrangements if a.year > package_last_year()),
                          key=lambda a: a.year))
    if _entered.get("CN", ()) == wanted:
        return False
    _entered["CN"] = wanted
    return True


def _chinese_calendar(entered: tuple[Arrangement, ...]) -> Calendar:
    """China: the package's notices, then entered years, then provisional statutory days."""
    last = package_last_year()
    first = min(d.year for d in chinese_calendar.holidays)
    days_off = set(chinese_calendar.holidays)
    # The package lists make-up days as "workdays" (all fall on weekends).
    workdays = {d for d in chinese_calendar.workdays if d.weekday() >= 5}
    label = f"CN chinese-calendar {_version('chinese-calendar')}"
    years = {a.year: a for a in entered}
    for year, arrangement in sorted(years.items()):
        days_off |= arrangement.days_off
        workdays |= arrangement.workdays
        label += f"; {year} entered ({arrangement.notice}, {arrangement.digest})"
    official_last = max([last, *years])
    end = max(official_last + _PROVISIONAL_MIN_YEARS, _HOLIDAYS_FIRST_YEAR + _HOLIDAYS_SPAN_YEARS)
    provisional = frozenset(y for y in range(last + 1, end + 1) if y not in years)
    if provisional:
        statutory = holidays.country_holidays("CN", years=sorted(provisional))
        days_off |= set(statutory)
        workdays |= {d for d in statutory.weekend_workdays if d.year in provisional}
        label += f"; provisional from {min(provisional)} (holidays {_version('holidays')})"
    return Calendar(
        country="CN",
        days_off=frozenset(days_off),
        workdays=frozenset(workdays),
        first=dt.date(first, 1, 1),
        until=dt.date(end + 1, 1, 1),
        label=label,
        provisional=provisional,
    )


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


def calendar_for(country: str) -> Calendar:
    """The official calendar of *country* (ISO code, any case), with the arrangements
    installed in this process; built once per set of them.

    Raises
    ------
    ValueError
        No calendar for that code (``"XX"``).
    """
    code = country.strip().upper()
    return _calendar(code, _entered.get(code, ()))


@lru_cache(maxsize=64)
def _calendar(code: str, entered: tuple[Arrangement, ...]) -> Calendar:
    """Built once per country and set of arrangements (China's: ~10 ms of lunar dates)."""
    if code == "CN":
        return _chinese_calendar(entered)
    try:
        return _holidays_calendar(code)
    except NotImplementedError as exc:  # holidays' "country not available"
        raise ValueError(f"no public-holiday calendar for country {code!r}") from exc


WARN_DAYS: Final = 60
"""``/healthz`` warns this many days before the official calendar's last day."""


def calendar_health(today: dt.date, country: str = DEFAULT_COUNTRY) -> dict[str, object]:
    """What ``/healthz`` says of the holiday calendar on *today* (the country's date).

    ``official_until`` is the last day an official arrangement covers (the package's or
    an entered one); after it the calendar is provisional.  ``warning`` is set from
    :data:`WARN_DAYS` days before that day, and stays while the next year is provisional.
    """
    cal = calendar_for(country)
    last = cal.official_until - dt.timedelta(days=1)
    warning = None
    if (last - today).days <= WARN_DAYS:
        year = last.year + 1
        warning = (f"the official holiday calendar ends {last.isoformat()}: from "
                   f"{year}-01-01 public holidays are provisional (statutory days only, no "
                   f"make-up working days) until the {year} arrangement is entered "
                   f"(`geo-service calendar enter`) or chinese-calendar is upgraded, then "
                   f"`geo-service hours refresh` is run")
    return {"label": cal.label, "official_until": last.isoformat(),
            "provisional_from": (cal.official_until.isoformat() if cal.provisional
                                 else None),
            "warning": warning}


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
