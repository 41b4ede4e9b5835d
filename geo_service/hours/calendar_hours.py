"""Opening hours evaluated with the official calendar (public holidays, make-up days).

opening-hours-py accepts no custom holiday calendar, and its ``CN`` one has a day per
festival and no make-up working days (see :mod:`geo_service.hours.compiler`).  This module runs
every rule through the library with ``country=None`` (``PH`` never matches) and puts
the real calendar (:mod:`geo_service.hours.calendars`) in by **rewriting the rule per day**.

Why per day works
-----------------
Whether a time on local day *D* is open depends on the rules that match *D* and on
the rules of *D - 1* that run past midnight (times go up to 48:00), and on nothing
else.  Give each day an *effective weekday* and a *holiday flag*:

* ordinary day: its own weekday, not a holiday;
* official day off (``PH`` matches): its own weekday, holiday;
* with ``workdays`` on (the station follows the State Council's working-day
  arrangement, :func:`follows_workdays`): a day off is a **rest day**, evaluated as a
  Sunday; a make-up working day is evaluated as a **working weekday**: a Saturday as
  the Friday before it, a Sunday as the Monday after it.  The notices name no weekday
  whose hours a make-up day keeps; the nearest ordinary working day is what staff and
  visitors expect, and for the usual ``Mo-Fr`` office hours every choice agrees.

For a day whose own or previous day is not ordinary, every weekday selector list
(``Mo-Fr,PH``) is replaced by the *real* weekday names of those of *D - 1* and *D*
that it matches by effective weekday and holiday flag; a list matching neither
becomes ``PH`` which, with ``country=None``, never matches.  Evaluated at the real
dates, the rewritten rule then selects exactly the rules the calendar says for *D*
and *D - 1*, so the spill-over past midnight and the later-rule-wins override are the
library's own.  Date, month, year and week selectors still see the real dates.
Ordinary stretches (most of the year) are evaluated in one call, unchanged.

Rules the rewrite cannot serve
------------------------------
``Mo[1]`` (the n-th weekday of a month) and ``PH +1 day`` (offsets) select days by
counting weekdays or holidays, which a renaming does not preserve; ``SH`` has no
calendar.  Those rules are evaluated by the library with its *own* calendar, as
before this module existed, and are stored with a label saying so
(``"CN opening-hours-py"``).

Provisional years, and unknown beyond the calendar
--------------------------------------------------
A rule that depends on the calendar (it names ``PH``, or follows make-up days and
its hours differ between days) is compiled only up to the end of the last year the
calendar covers: ``valid_until`` stops there and the SQL answer (and
:func:`calendar_open_state`) is unknown (``None``) after it.  For China that end is
years away: after the last notice the package or an operator supplied, the calendar
carries the statutory days as *provisional* years, and :func:`provisional_at` says
when an answer rests on one.  Rules that do not depend on the calendar are compiled
exactly as before.

Examples
--------
>>> from datetime import UTC, datetime
>>> c = compile_station_hours("Mo-Fr 09:00-17:00", "Asia/Shanghai", workdays=True,
...                           now=datetime(2026, 10, 1, tzinfo=UTC), horizon_days=30)
>>> c.label, c.compiled.kind
('CN chinese-calendar 1.11.0; provisional from 2027 (holidays 0.109)', 'dated')
>>> calendar_open_state("Mo-Fr 09:00-17:00", "Asia/Shanghai",
...                     datetime(2026, 10, 10, 2, tzinfo=UTC), workdays=True)[0]
True
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from opening_hours import State

from geo_service.hours import compiler as hours
from geo_service.hours.calendars import Calendar, calendar_for, country_for_timezone
from geo_service.hours.compiler import (
    DAY_MINUTES,
    DEFAULT_HORIZON_DAYS,
    NEXT_CHANGE_LIMIT,
    WEEK_MINUTES,
    CompiledHours,
    HoursError,
)

__all__ = [
    "NO_CALENDAR",
    "WORKDAY_HOST_TYPES",
    "StationHours",
    "calendar_end",
    "calendar_open_state",
    "compile_station_hours",
    "current_label",
    "follows_workdays",
    "provisional_at",
]

WORKDAY_HOST_TYPES: Final = frozenset({"bank_branch", "party_service_centre", "union_built"})
"""Hosts that keep office hours by default.  Bank branches, Party service centres and
union-built stations are staffed by employees on the official working-day schedule,
so they open on make-up working days and close on official days off; sanitation
depots, enterprises, volunteers and mobile stations run their own rosters."""

NO_CALENDAR: Final = "none"
"""Label of compiled hours that do not depend on any calendar."""

_DAYS: Final = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_SUNDAY: Final = 6
_DAY_NAME: Final = r"(?:Mo|Tu|We|Th|Fr|Sa|Su)"
_ITEM: Final = rf"(?:{_DAY_NAME}(?:-{_DAY_NAME})?|PH)"
# A weekday selector list in the library's normalised spelling ("Mo-Fr,PH", "Sa-Mo").
_LIST_RE: Final = re.compile(rf"\b{_ITEM}(?:,{_ITEM})*\b")
# Selectors a renaming of weekdays cannot carry (see the module docstring).
_UNSOUND_RE: Final = re.compile(rf"\b{_DAY_NAME}\s*\[|\bPH\s*[+-]|\bSH\b|\bday")
_QUOTED_RE: Final = re.compile(r'("[^"]*")')

_Day = tuple[int, int, bool]  # (real weekday, effective weekday, holiday)
_Runs = list[tuple[datetime, datetime, State]]


@dataclass(frozen=True)
class StationHours:
    """Compiled hours plus the calendar they were compiled with.

    ``label`` is :data:`NO_CALENDAR` when the rule does not depend on one, else the
    calendar's :attr:`~geo_service.hours.calendars.Calendar.label` (or the library fallback's
    label); ``geo-service hours refresh`` recompiles rows whose label is stale.
    """

    compiled: CompiledHours
    label: str


def follows_workdays(host_type: str, choice: bool | None) -> bool:
    """Whether make-up working days and days off apply: the station's own choice, else
    the default for its host type (:data:`WORKDAY_HOST_TYPES`)."""
    return choice if choice is not None else str(host_type) in WORKDAY_HOST_TYPES


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Plan:
    normal: str  # the library's normalised rule, which the rewrite reads
    depends: bool  # the answer can change with the calendar
    sound: bool  # the per-day rewrite is exact for it


def _outside_quotes(expr: str) -> list[tuple[bool, str]]:
    return [(chunk.startswith('"'), chunk) for chunk in _QUOTED_RE.split(expr) if chunk]


def _same_every_day(weekly: tuple[tuple[int, int], ...]) -> bool:
    """A weekly pattern identical on all seven days (``24/7``, ``Mo-Su 08:00-20:00``)."""
    shifted: list[tuple[int, int]] = []
    for start, end in weekly:
        start, end = start + DAY_MINUTES, end + DAY_MINUTES
        if start >= WEEK_MINUTES:
            shifted.append((start - WEEK_MINUTES, end - WEEK_MINUTES))
        elif end > WEEK_MINUTES:  # now crosses the Sunday -> Monday wrap: two pieces
            shifted += [(start, WEEK_MINUTES), (0, end - WEEK_MINUTES)]
        else:
            shifted.append((start, end))
    return hours._merge(list(weekly)) == hours._merge(shifted)


@lru_cache(maxsize=4096)
def _plan(expr: str, workdays: bool) -> _Plan:
    normal = hours.validate_hours(expr)
    code = " ".join(text for quoted, text in _outside_quotes(normal) if not quoted)
    lists = _LIST_RE.findall(code)
    names_ph = any("PH" in item.split(",") for item in lists)
    names_days = any(re.search(_DAY_NAME, item) for item in lists)
    follows = workdays and names_days
    if follows:
        weekly = hours._compile_weekly(normal)
        follows = weekly is None or not _same_every_day(weekly)
    depends = names_ph or follows
    return _Plan(normal, depends, depends and _UNSOUND_RE.search(code) is None)


def _expand(item: str) -> set[int]:
    if "-" not in item:
        return {_DAYS.index(item)}
    first, last = (_DAYS.index(x) for x in item.split("-"))
    return {(first + i) % 7 for i in range((last - first) % 7 + 1)}


@lru_cache(maxsize=4096)
def _rewrite(normal: str, view: tuple[_Day, _Day]) -> str:
    """*normal* with each weekday list replaced by the real names it selects in *view*."""

    def replace(match: re.Match[str]) -> str:
        effective: set[int] = set()
        holiday = False
        for item in match.group(0).split(","):
            if item == "PH":
                holiday = True
            else:
                effective |= _expand(item)
        real = sorted({r for r, e, h in view if e in effective or (holiday and h)})
        return ",".join(_DAYS[r] for r in real) or "PH"

    return "".join(text if quoted else _LIST_RE.sub(replace, text)
                   for quoted, text in _outside_quotes(normal))


def _classify(cal: Calendar, day: date, workdays: bool) -> _Day:
    holiday = day in cal.days_off
    real = day.weekday()
    if workdays and holiday:
        return real, _SUNDAY, True
    if workdays and day in cal.workdays:
        return real, 4 if real == 5 else 0, False  # Sat as Friday, Sun as Monday
    return real, real, holiday


# --------------------------------------------------------------------------- evaluation


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return hours._wall_to_utc(datetime.combine(day, time()), zone)


def _runs(normal: str, tz: str, cal: Calendar, workdays: bool,
          coords: tuple[float, float] | None, start: datetime, end: datetime) -> _Runs:
    """States over ``[start, end)`` (aware, library UTC zone) with *cal*'s days."""
    zone = ZoneInfo(tz)
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    runs: _Runs = []
    plain_from: datetime | None = None  # start of a stretch of ordinary days

    def plain_until(stop: datetime) -> None:
        nonlocal plain_from
        if plain_from is not None and plain_from < stop:
            runs.extend(hours._timeline(normal, tz, None, coords, plain_from, stop))
        plain_from = None

    before = _classify(cal, day - timedelta(days=1), workdays)
    while day <= last:
        today = _classify(cal, day, workdays)
        lo = max(start, _midnight(day, zone))
        hi = min(end, _midnight(day + timedelta(days=1), zone))
        if before[1:] == (before[0], False) and today[1:] == (today[0], False):
            plain_from = lo if plain_from is None else plain_from
        else:
            plain_until(lo)
            if lo < hi:
                runs.extend(hours._timeline(_rewrite(normal, (before, today)), tz, None,
                                            coords, lo, hi))
        before, day = today, day + timedelta(days=1)
    plain_until(end)
    return hours._merge_runs(runs)


def _window(cal: Calendar, tz: str, end: datetime) -> datetime:
    """*end* cut to the end of the last day the calendar covers."""
    return min(end, _midnight(cal.until, ZoneInfo(tz)))


def current_label(tz: str) -> str:
    """The label hours depending on the calendar of zone *tz* are compiled with now."""
    country = country_for_timezone(tz)
    return NO_CALENDAR if country is None else calendar_for(country).label


def calendar_end(tz: str) -> datetime | None:
    """First instant the installed calendar of zone *tz* does not cover (aware, UTC), or
    None without a calendar.  Hours compiled up to it cannot be extended by compiling
    again, only by a newer calendar."""
    country = country_for_timezone(tz)
    if country is None:
        return None
    return _midnight(calendar_for(country).until, ZoneInfo(tz)).astimezone(UTC)


def provisional_at(expr: str, tz: str, at: datetime, *, workdays: bool) -> bool:
    """Whether the answer for *expr* at *at* rests on a provisional year: the rule
    depends on the calendar and *at*'s local year has only the statutory days so far
    (no notice in the package, none entered), so the notice may still change it."""
    plan = _plan(expr, workdays)
    country = country_for_timezone(tz)
    if not plan.depends or not plan.sound or country is None:
        return False
    local = hours._aware(at, "at").astimezone(ZoneInfo(tz))
    return local.year in calendar_for(country).provisional


def _fallback_country(country: str | None) -> str | None:
    """The library's own calendar for *country*, where it has one."""
    try:
        return hours._validate_country(country)
    except ValueError:
        return None


def compile_station_hours(
    expr: str,
    tz: str,
    *,
    workdays: bool,
    now: datetime | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    coords: tuple[float, float] | None = None,
) -> StationHours:
    """Compile a station's rule with its country's calendar (see the module docstring).

    Parameters
    ----------
    expr, tz, now, horizon_days, coords
        As for :func:`geo_service.hours.compiler.compile_hours`; the country follows from *tz*.
    workdays
        The station follows the official working-day arrangement
        (:func:`follows_workdays`).

    Memoised per distinct argument tuple (``now`` to the minute): an import repeats a
    few hundred rules over thousands of rows.
    """
    minute = hours._floor_minute(hours._aware(now, "now") if now is not None
                                 else datetime.now(UTC))
    hours.validate_timezone(tz)
    country = country_for_timezone(tz)
    cal = None if country is None else calendar_for(country)
    return _compile(expr, tz, workdays, minute, horizon_days,
                    hours._coords_key(expr, coords), country, cal)


# Sized for memory: an entry holds a year of periods (~30 kB); an import repeats a few
# hundred rules with one ``now``, and the API's single writes rarely repeat a minute.
@lru_cache(maxsize=512)
def _compile(expr: str, tz: str, workdays: bool, now: datetime, horizon_days: int,
             coords: tuple[float, float] | None, country: str | None,
             cal: Calendar | None) -> StationHours:
    """The work of :func:`compile_station_hours`, keyed by the calendar itself so a
    newer calendar (a package upgrade, a test's stand-in) is never served from cache."""
    plan = _plan(expr, workdays)
    if not plan.depends or country is None or cal is None:
        return StationHours(hours.compile_hours(expr, tz, now=now, horizon_days=horizon_days,
                                                country=None, coords=coords), NO_CALENDAR)
    if not plan.sound:
        fallback = _fallback_country(country)
        compiled = hours.compile_hours(expr, tz, now=now, horizon_days=horizon_days,
                                       country=fallback, coords=coords)
        return StationHours(compiled, f"{fallback or 'none'} opening-hours-py")
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be at least 1, got {horizon_days}")
    # As far back as hours.compile_hours, but not before the calendar's first day.
    start = max(now - hours.LOOKBACK, _midnight(cal.first, ZoneInfo(tz))
                ).astimezone(hours._UTC_ZONE)
    end = _window(cal, tz, (now + timedelta(days=horizon_days)).astimezone(hours._UTC_ZONE))
    runs = _runs(plan.normal, tz, cal, workdays, coords, start, end) if start < end else []
    periods = [(lo.astimezone(UTC), hi.astimezone(UTC)) for lo, hi, st in runs
               if st == State.OPEN]
    unknown = [(lo.astimezone(UTC), hi.astimezone(UTC)) for lo, hi, st in runs
               if st == State.UNKNOWN]
    compiled = CompiledHours("dated", (), hours._merge(periods), end.astimezone(UTC),
                             bool(unknown), hours._merge(unknown), start.astimezone(UTC))
    return StationHours(compiled, cal.label)


# --------------------------------------------------------------------------- per row


# ~100 kB an entry (a year and a month of runs): distinct rules x zones x months in use.
@lru_cache(maxsize=256)
def _month_runs(normal: str, tz: str, cal: Calendar, workdays: bool,
                coords: tuple[float, float] | None, month: date
                ) -> tuple[list[datetime], _Runs, datetime]:
    """A window from the day before *month* to a year and a bit after (≥ the
    next-change limit past any instant of the month), with the runs' start times for
    bisecting; shared by every row of every request in that month."""
    zone = ZoneInfo(tz)
    start = _midnight(month - timedelta(days=1), zone)
    limit = _midnight(month + timedelta(days=NEXT_CHANGE_LIMIT.days + 32), zone)
    end = _window(cal, tz, limit)
    runs = _runs(normal, tz, cal, workdays, coords, start, end) if start < end else []
    return [lo for lo, _hi, _st in runs], runs, end


def calendar_open_state(
    expr: str,
    tz: str,
    at: datetime,
    *,
    workdays: bool,
    coords: tuple[float, float] | None = None,
) -> tuple[bool | None, datetime | None]:
    """:func:`geo_service.hours.compiler.open_state` with the station's calendar.

    Agrees with what :func:`compile_station_hours` stores (the SQL answer): both come
    from the same per-day evaluation.  Past the calendar's last covered day the state
    is ``None``; the change to unknown at that boundary is reported as the next change.
    Before its first covered day the state is ``None`` too (nobody knows the holidays).
    """
    zone = ZoneInfo(hours.validate_timezone(tz))
    local = hours._aware(at, "at").astimezone(zone)
    plan = _plan(expr, workdays)
    country = country_for_timezone(tz)
    if not plan.depends or country is None:
        return hours.open_state(expr, tz, at, country=None, coords=coords)
    if not plan.sound:
        return hours.open_state(expr, tz, at, country=_fallback_country(country),
                                coords=coords)
    cal = calendar_for(country)
    if local.date() < cal.first:
        return None, None
    coords_key = hours._coords_key(expr, coords)
    starts, runs, end = _month_runs(plan.normal, tz, cal, workdays, coords_key,
                                    local.date().replace(day=1))
    instant = local.astimezone(hours._UTC_ZONE)
    if instant >= end:
        return None, None
    index = bisect_right(starts, instant) - 1
    if index < 0:  # pragma: no cover - the window starts before the month
        raise HoursError("instant before the evaluated window", expr)
    _lo, hi, state = runs[index]
    next_change: datetime | None = hi.astimezone(zone)
    if hi >= end and end < _midnight(cal.until, zone):
        next_change = None  # the window's end, not a change
    if next_change is not None and next_change - local > NEXT_CHANGE_LIMIT:
        next_change = None
    value = {State.OPEN: True, State.CLOSED: False}.get(state)
    return value, next_change
