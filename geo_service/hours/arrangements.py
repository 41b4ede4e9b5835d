"""A year's days off and make-up working days (调休), entered by an operator.

The State Council publishes each year's arrangement (国务院办公厅关于节假日安排的通知)
weeks before the year begins, often before ``chinese-calendar`` publishes a release
with it.  Until then :mod:`geo_service.hours.calendars` answers that year with the statutory
days only (provisional).  An operator enters the notice as a small TOML file::

    year = 2027
    notice = "国办发明电〔2026〕12号"
    days_off = ["2027-01-01", "2027-02-05..2027-02-11"]
    workdays = ["2027-02-20"]          # make-up working days (weekend days)

``geo-service calendar enter FILE`` validates it (:func:`parse_arrangement`: every
problem at once, nothing stored when there is one) and stores it in the
``holiday_arrangement`` table, where every process finds it: ``geo-service hours
refresh`` installs the stored years and recompiles the rows compiled without them; API
processes install them at start and on each ``/healthz``.

Examples
--------
>>> a = parse_arrangement({"year": 2027, "notice": "N", "days_off": ["2027-02-05..2027-02-07"],
...                        "workdays": ["2027-02-20"]}, first_year=2027)
>>> sorted(a.days_off)[-1], sorted(a.workdays)
(datetime.date(2027, 2, 7), [datetime.date(2027, 2, 20)])
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import psycopg

from geo_service.hours.calendars import Arrangement, calendar_for, use_arrangements

log = logging.getLogger(__name__)

__all__ = [
    "ArrangementError",
    "delete_arrangement",
    "load_arrangements",
    "load_arrangements_async",
    "parse_arrangement",
    "read_arrangement",
    "store_arrangement",
]

_KEYS: Final = ("year", "notice", "days_off", "workdays")
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_LAST_YEAR: Final = 2100  # the migration's check, and python-holidays' end
_NOTICE_MAX: Final = 80
#: A year has at most 366 days; a list longer than that is not a notice.
_ITEMS_MAX: Final = 366

SELECT: Final = "SELECT year, notice, days_off, workdays FROM holiday_arrangement ORDER BY year"


class ArrangementError(ValueError):
    """An arrangement that cannot be entered; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _day(item: Any, key: str, problems: list[str]) -> dt.date | None:
    if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
        return item  # TOML's own (unquoted) dates
    if isinstance(item, str) and _DATE_RE.fullmatch(item.strip()):
        try:
            return dt.date.fromisoformat(item.strip())
        except ValueError:
            pass
    problems.append(f"{key}: {item!r} is not a date (YYYY-MM-DD, or a range "
                    "YYYY-MM-DD..YYYY-MM-DD)")
    return None


def _days(value: Any, key: str, year: int | None, problems: list[str]) -> set[dt.date]:
    """Dates and inclusive ``A..B`` ranges, each inside *year*."""
    if not isinstance(value, list):
        problems.append(f"{key}: must be a list of dates")
        return set()
    if len(value) > _ITEMS_MAX:
        problems.append(f"{key}: more than {_ITEMS_MAX} items")
        return set()
    out: set[dt.date] = set()
    for item in value:
        if isinstance(item, str) and ".." in item:
            lo_text, _, hi_text = item.partition("..")
            lo, hi = _day(lo_text, key, problems), _day(hi_text, key, problems)
            if lo is None or hi is None:
                continue
            if hi < lo:
                problems.append(f"{key}: range {item!r} ends before it starts")
                continue
            days = [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]
        else:
            one = _day(item, key, problems)
            if one is None:
                continue
            days = [one]
        outside = [d for d in days if year is not None and d.year != year]
        if outside:
            problems.append(f"{key}: {outside[0].isoformat()} is outside the year {year}")
            continue
        out.update(days)
    return out


def parse_arrangement(data: Mapping[str, Any], *, first_year: int) -> Arrangement:
    """A validated :class:`~geo_service.hours.calendars.Arrangement` from a file's or command's
    keys.

    ``first_year`` is the first year the calendar package does not cover: earlier years
    are the package's (its transcription of the notice wins), so entering one is refused.

    Raises
    ------
    ArrangementError
        With every problem found: unknown or missing keys, a year out of range, a
        malformed date or range, a date outside the year, a make-up day that is not a
        Saturday or Sunday, a day both off and worked.
    """
    problems = [f"unknown key {key!r} (expected: {', '.join(_KEYS)})"
                for key in data if key not in _KEYS]
    problems += [f"{key}: missing" for key in ("year", "notice", "days_off")
                 if key not in data]
    year = data.get("year")
    if "year" in data and (not isinstance(year, int) or isinstance(year, bool)
                           or not first_year <= year <= _LAST_YEAR):
        problems.append(f"year: must be a whole year from {first_year} to {_LAST_YEAR} "
                        f"(earlier years come from the chinese-calendar package), "
                        f"got {year!r}")
        year = None
    notice = data.get("notice")
    if "notice" in data and (
            not isinstance(notice, str) or not notice.strip() or len(notice) > _NOTICE_MAX
            or any(unicodedata.category(c).startswith("C") for c in notice)):
        problems.append(f"notice: the notice's number as text, 1 to {_NOTICE_MAX} "
                        "characters without control characters")
    known = year if isinstance(year, int) else None
    days_off = _days(data.get("days_off", []), "days_off", known, problems)
    workdays = _days(data.get("workdays", []), "workdays", known, problems)
    if "days_off" in data and isinstance(data["days_off"], list) and not data["days_off"]:
        problems.append("days_off: empty (every year has New Year's Day off)")
    problems += [f"workdays: {d.isoformat()} is a {d:%A}; make-up working days are "
                 "Saturdays or Sundays" for d in sorted(workdays) if d.weekday() < 5]
    problems += [f"{d.isoformat()} is both a day off and a make-up working day"
                 for d in sorted(days_off & workdays)]
    if problems:
        raise ArrangementError(problems)
    assert isinstance(year, int) and isinstance(notice, str)
    return Arrangement(year, frozenset(days_off), frozenset(workdays), notice.strip())


def read_arrangement(path: Path, *, first_year: int) -> Arrangement:
    """:func:`parse_arrangement` of a TOML file (the format in the module docstring)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ArrangementError([f"cannot read {path.name}: {exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ArrangementError([f"{path.name} is not valid TOML: {exc}"]) from exc
    return parse_arrangement(data, first_year=first_year)


def _from_rows(rows: Iterable[tuple[Any, ...]]) -> list[Arrangement]:
    return [Arrangement(year, frozenset(off), frozenset(work), notice)
            for year, notice, off, work in rows]


def load_arrangements(conn: psycopg.Connection[Any]) -> list[Arrangement]:
    """Every stored arrangement, by year."""
    return _from_rows(conn.execute(SELECT).fetchall())


async def load_arrangements_async(conn: psycopg.AsyncConnection[Any]) -> list[Arrangement]:
    """:func:`load_arrangements` on the API's async pool."""
    cur = await conn.execute(SELECT)
    return _from_rows(await cur.fetchall())


def store_arrangement(conn: psycopg.Connection[Any], arrangement: Arrangement) -> bool:
    """Store (or replace) a year; True when it replaced an earlier entry."""
    with conn.transaction():
        row = conn.execute(
            """INSERT INTO holiday_arrangement (year, notice, days_off, workdays)
               VALUES (%s, %s, %s, %s)
               ON CONFLICT (year) DO UPDATE SET notice = EXCLUDED.notice,
                   days_off = EXCLUDED.days_off, workdays = EXCLUDED.workdays,
                   entered_at = now()
               RETURNING (xmax <> 0)""",
            (arrangement.year, arrangement.notice, sorted(arrangement.days_off),
             sorted(arrangement.workdays))).fetchone()
    return bool(row and row[0])


def delete_arrangement(conn: psycopg.Connection[Any], year: int) -> bool:
    """Remove an entered year (it becomes provisional again); True when there was one."""
    with conn.transaction():
        cur = conn.execute("DELETE FROM holiday_arrangement WHERE year = %s", (year,))
    return cur.rowcount > 0


async def install_arrangements(conn: Any) -> None:
    """Pick up the holiday arrangements operators entered since this process started,
    so its calendar (new writes, ``hours_provisional``) matches ``hours refresh``'s.
    A failure here (a database not migrated yet) is logged, never a 503."""
    try:
        async with conn.transaction():
            changed = use_arrangements(await load_arrangements_async(conn))
    except Exception as exc:
        log.warning("holiday arrangements not read: %s", exc)
        return
    if changed:  # build the calendar (lunar dates: up to a second) off the event loop
        await asyncio.to_thread(calendar_for, "CN")


async def load_calendar(pool: Any) -> None:
    """At start-up, beside the pool's own connecting: the entered holiday arrangements
    (a database still away is fine: ``/healthz`` reads them again), and the calendar
    built before the first request needs it."""
    with contextlib.suppress(Exception):
        async with pool.connection(timeout=10.0) as conn:
            await install_arrangements(conn)
    await asyncio.to_thread(calendar_for, "CN")
