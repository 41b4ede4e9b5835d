"""Compile OSM ``opening_hours`` strings into sets PostgreSQL can test with an index.

Couriers ask "which stations near me are open *now*".  The nearest-station query is an
index-driven KNN walk with every filter inside the SQL, so "open now" must be a plain
containment test on a stored column rather than a Python post-filter.  Every station's
``opening_hours`` is therefore compiled once, when it is written, into one of two shapes:

``weekly``
    The rule depends on nothing but the weekday and the wall-clock time (``24/7``,
    ``Mo-Fr 08:00-18:00``, ``Su 22:00-02:00`` ...).  It becomes half-open
    minute-of-week ranges ``[start, end)`` in the station's **local** time, Monday 00:00
    = 0, week length :data:`WEEK_MINUTES`, stored as an ``int4multirange`` and queried
    with ``open_minutes @> local_minute_of_week(:at, tz)``.  Ranges never cross the
    Sunday -> Monday wrap (such a stretch is two ranges, ``[s, 10080)`` and ``[0, e)``).
    Because the comparison is against the *local* minute of the week, the ranges stay
    correct in zones with daylight saving time: a rule says "08:00 on the wall clock", and
    the query converts the instant to the wall clock before comparing.

``dated``
    Anything else (public holidays, months, dates, years, week numbers, sun events,
    ``unknown`` states ...).  It becomes absolute UTC intervals of *open* time over a
    horizon (by default compile time - 1 day to + 400 days), stored as a
    ``tstzmultirange`` and queried with ``open_periods @> :at``, plus the horizon end
    (:attr:`CompiledHours.valid_until`); beyond it the answer is unknown and the station
    must be recompiled.

How "weekly" is decided (soundness first)
-----------------------------------------
Evaluating a year of the rule and checking that every week looks the same is *not* a
proof: ``2030 Mo-Fr 09:00-12:00`` is "always closed" in every window before 2030,
``Sa 10:00-12:00; PH off`` only differs in years where a holiday falls on a Saturday,
and ``week 53`` or ``Feb 29`` only show up in some years.  A wrong "weekly" answer would
be wrong forever, a wrong "dated" one merely costs a recompilation, so the test is:

1. **Syntactic proof.**  With quoted comments removed, the expression may only contain
   weekday names, ``HH:MM`` times, ``24/7``, the state words ``open``/``closed``/``off``/
   ``unknown``, and the punctuation ``- , ; + ||``.  Such a rule cannot refer to a date,
   so its meaning is the same every week.  Anything else is ``dated``.
2. **Empirical check.**  The rule is evaluated by the library over three weeks around
   two reference Mondays (a leap-day week and an ISO-week-53 / new-year week).  The 2nd
   and 3rd week of each window (whose predecessors spill into them, e.g. ``Su 22:00-
   02:00`` or ``Fr 22:00-48:00``) must be identical across all windows and contain no
   ``unknown`` state; otherwise the rule is ``dated``.

This costs ~0.2 ms per distinct expression and is memoised on the expression (the
answer does not depend on zone, country or date), since an import of a million stations
repeats a few hundred distinct strings; a repeat costs ~2 µs.

Library caveats (opening-hours-py 2.1.4)
----------------------------------------
* ``intervals()`` and ``next_change()`` are wrong for many rules with a ``||`` fallback
  (``Mo-Fr 08:00-18:00 || unknown`` is reported closed for weeks), and ``intervals()``
  for some with times past midnight (``May 00:30-48:00`` stays open into June), while
  ``state()`` is right.  Such rules are rebuilt from ``state()`` at every possible change
  point (see :func:`_timeline`); this is the one slow case (~6 ms for a 400-day horizon).
* A comment-only rule is *open* to the library: ``Mo-Fr 08:00-18:00 || "by appointment"``
  would be open all weekend.  opening_hours.js (the reference) reads a comment without a
  state as *unknown*, and so do we: evaluation writes ``unknown`` in front of such a
  comment (:func:`_stated`), in both the SQL shapes and :func:`open_state`; the
  normaliser's form of a comment-only fallback, ``|| 24/7 "by appointment"``, becomes
  ``24/7 unknown "..."``, which is the same unknown.
* A blank string parses as ``24/7``; we reject it.  ``Mo 08:00-08:00`` means 24 hours,
  and an open end ``Mo 10:00+`` closes at midnight.
* Aware datetimes must carry a ``ZoneInfo`` (the library reads ``.key``): ``datetime.UTC``
  and fixed offsets raise ``TypeError``, so everything is converted before the call.
* In a DST fall-back hour ``intervals()`` lists only the second occurrence as open
  while ``state()`` says both are; ``dated`` periods in DST zones can be off for that one
  repeated hour a year (Chinese zones have no DST).

Public holidays
---------------
Stations do **not** use the library's holiday calendars: their hours are compiled and
evaluated by :mod:`geo_service.hours.calendar_hours`, which runs rules through this module
with ``country=None`` and puts in the official days off and make-up working days of the
station's country (:mod:`geo_service.hours.calendars`: ``chinese-calendar`` for China,
``holidays`` elsewhere) by rewriting the rule's weekday selectors day by day; a rule
that depends on that calendar is unknown past its last covered year.  The ``country``
argument here (``"CN"`` by default) is the library's own calendar, kept for rules that
rewrite cannot carry (``Mo[1]``, ``PH +1 day``, ``SH``) and for callers that want the
library's answer.  Things to know about the ``opening-hours-py`` 2.1.4 calendars:

* ``CN`` is known but *reduced*: one day per festival (New Year, first day of Spring
  Festival, Labour Day, Dragon Boat, Mid-Autumn, National Day); Qingming, the multi-day
  Golden Week breaks and the weekend make-up working days (调休) are missing.
  ``Mo-Fr 09:00-17:00; PH off`` is therefore still reported open on 2 October.
* With ``country=None`` the library silently treats ``PH`` as a day that never occurs
  (no error, no warning).  We keep that meaning - the station's weekday hours are the
  best guess we have - but still classify the rule ``dated`` because its meaning depends
  on a calendar.
* ``SH`` (school holidays) never matches in any country.
* An ISO code the library has no calendar for (``"XX"``, ``"KP"``) raises
  :class:`ValueError` instead of silently dropping holidays; pass ``country=None`` to opt
  out explicitly.  Codes are upper-cased first (the library rejects ``"cn"``).

Sun events
----------
Without coordinates the library uses fixed times (sunrise 07:00, sunset 19:00).  Pass
``coords=(lat, lon)`` to :func:`compile_hours` / :func:`open_state` for real sun times.

Examples
--------
>>> compile_hours("Mo-Fr 08:00-18:00").weekly[:2]
((480, 1080), (1920, 2520))
>>> compile_hours("Su 22:00-02:00").weekly
((0, 120), (9960, 10080))
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Final, Literal, TypeVar
from zoneinfo import ZoneInfo, available_timezones

import opening_hours
from opening_hours import OpeningHours, State

__all__ = [
    "DEFAULT_COUNTRY",
    "DEFAULT_HORIZON_DAYS",
    "DEFAULT_TIMEZONE",
    "LOOKBACK",
    "MAX_EXPRESSION_LENGTH",
    "WEEK_MINUTES",
    "CompiledHours",
    "HoursError",
    "compile_hours",
    "compile_work",
    "minute_of_week",
    "open_state",
    "validate_hours",
    "validate_timezone",
]

WEEK_MINUTES: Final = 10080
"""Minutes in a week; minute-of-week values are in ``range(WEEK_MINUTES)``."""
DAY_MINUTES: Final = 1440
MAX_EXPRESSION_LENGTH: Final = 1000
"""Longest accepted expression; real OSM values are far shorter, longer is abuse."""
DEFAULT_TIMEZONE: Final = "Asia/Shanghai"
DEFAULT_COUNTRY: Final = "CN"
DEFAULT_HORIZON_DAYS: Final = 400
NEXT_CHANGE_LIMIT: Final = timedelta(days=366)
""":func:`open_state` reports no next change if it is further away than this."""
LOOKBACK: Final = timedelta(days=31)
"""How far before the compile instant ``dated`` periods start: "open last Tuesday" (a
planner's coverage ``open_at``, the app's ``?at=``) is answered from the stored form;
before :attr:`CompiledHours.valid_from` the stored answer is "unknown", never "closed".
A month adds ~8% to a 400-day horizon."""

_MINUTE: Final = timedelta(minutes=1)
# The library needs a ZoneInfo (it reads ``.key``); ``datetime.UTC`` is rejected.
_UTC_ZONE: Final = ZoneInfo("UTC")
_WEEK: Final = timedelta(days=7)

# The stub does not declare the library's exception classes; look them up defensively.
_ParserError: type[Exception] = getattr(opening_hours, "ParserError", SyntaxError)
_UnknownCountryError: type[Exception] = getattr(opening_hours, "UnknownCountryError", KeyError)
_InvalidCoordinatesError: type[Exception] = getattr(
    opening_hours, "InvalidCoordinatesError", ValueError
)

_COMMENT_RE: Final = re.compile(r'"[^"]*"')
# Everything a weekday/wall-clock-only rule can consist of (see module docstring).  Single
# characters for whitespace (no nested quantifier: linear time even on hostile input).
_WEEKLY_ONLY_RE: Final = re.compile(
    r"(?:\s|24/7|\d{1,2}:\d{2}|(?:Mo|Tu|We|Th|Fr|Sa|Su|open|closed|off|unknown)\b"
    r"|\|\||[-,;+])*",
    re.IGNORECASE | re.ASCII,
)
_SUN_EVENT_RE: Final = re.compile(r"sunrise|sunset|dawn|dusk", re.IGNORECASE)
# Reference Mondays for the empirical weekly check: the week of 29 Feb 2024 and ISO week
# 53 of 2026 running into 2027.  Any Monday would do for a rule that passed the syntactic
# test; these two also exercise the calendar corners a date-dependent rule trips over.
_PROBE_MONDAYS: Final = (datetime(2024, 2, 26), datetime(2026, 12, 28))
# Keys zoneinfo can load but that are not portable IANA zone names.
_NON_PORTABLE_ZONES: Final = frozenset({"localtime", "Factory", "posixrules"})

_T = TypeVar("_T", int, datetime)


class HoursError(ValueError):
    """An opening-hours expression (or time zone) that cannot be used.

    The message is meant for a person fixing station data: it says what is wrong and,
    for syntax errors, where.

    Parameters
    ----------
    message
        Human-readable description of the problem.
    expression
        The offending input, unchanged (available as :attr:`expression`).

    Examples
    --------
    >>> try:
    ...     validate_hours("banana")
    ... except HoursError as err:
    ...     print(err.expression)
    banana
    """

    def __init__(self, message: str, expression: str) -> None:
        super().__init__(message)
        self.expression = expression

    def __reduce__(self) -> tuple[type[HoursError], tuple[str, str]]:
        return (type(self), (str(self), self.expression))


@dataclass(frozen=True)
class CompiledHours:
    """An opening-hours rule reduced to what the SQL filter stores.

    Attributes
    ----------
    kind
        ``"weekly"``: use :attr:`weekly`; ``"dated"``: use :attr:`periods` and
        :attr:`valid_until`.
    weekly
        Merged, sorted half-open ``[start, end)`` local minute-of-week ranges
        (``int4multirange``); empty for ``dated`` rules and for never-open rules.
    periods
        Merged, sorted half-open ``[start, end)`` intervals of open time as aware UTC
        datetimes (``tstzmultirange``); empty for ``weekly`` rules.
    valid_until
        End of the horizon :attr:`periods` covers (``dated``), ``None`` for ``weekly``
        rules, which never expire.
    has_unknown
        The rule produced an ``unknown`` state in the evaluated window (e.g. ``Mo-Fr
        08:00-18:00 || unknown``).  Always ``False`` for ``weekly`` because an unknown
        state makes a rule ``dated``.
    unknown
        Merged, sorted half-open intervals of ``unknown`` state as aware UTC datetimes
        (``tstzmultirange``), so "open now" can answer "unknown" there rather than
        "closed"; empty for ``weekly`` rules.
    valid_from
        Start of the window :attr:`periods` and :attr:`unknown` cover (``dated``): before
        it they say nothing, so the stored form marks all earlier time unknown
        (``stations.service.compiled_hours_columns``); ``None`` for ``weekly`` rules,
        which hold at any instant.

    Examples
    --------
    >>> compile_hours("24/7")
    CompiledHours(kind='weekly', weekly=((0, 10080),), periods=(), valid_until=None, \
has_unknown=False, unknown=(), valid_from=None)
    """

    kind: Literal["weekly", "dated"]
    weekly: tuple[tuple[int, int], ...]
    periods: tuple[tuple[datetime, datetime], ...]
    valid_until: datetime | None
    has_unknown: bool
    unknown: tuple[tuple[datetime, datetime], ...] = ()
    valid_from: datetime | None = None


# --------------------------------------------------------------------------- validation


def _shorten(expr: str, limit: int = 60) -> str:
    """``repr`` of *expr*, cut so error messages stay readable for huge inputs."""
    return repr(expr) if len(expr) <= limit else repr(expr[:limit]) + f"... ({len(expr)} chars)"


def _check_text(expr: str) -> None:
    """Reject input the parser should never see.

    The library accepts a blank string and reads it as ``24/7`` - exactly the wrong
    default for a station with unknown hours - so blank input is rejected here, as are
    overlong strings (abuse) and control characters (corrupt imports).
    """
    if not isinstance(expr, str):
        raise HoursError(f"opening hours must be a string, got {type(expr).__name__}", str(expr))
    if not expr.strip():
        raise HoursError("opening hours expression is empty", expr)
    if len(expr) > MAX_EXPRESSION_LENGTH:
        raise HoursError(
            f"opening hours expression is too long ({len(expr)} characters, "
            f"at most {MAX_EXPRESSION_LENGTH})",
            expr,
        )
    for index, char in enumerate(expr):
        if unicodedata.category(char) == "Cc":
            raise HoursError(
                f"opening hours {_shorten(expr)} contains control character "
                f"U+{ord(char):04X} at position {index + 1}; use spaces and ';' to "
                "separate rules",
                expr,
            )


_GRAMMAR_WORDS: Final = {
    "EOI": "the end of the expression",
    "any_rule_separator": "a rule separator (';', ',' or '||')",
    "rules_modifier": "a state such as 'off', 'open' or 'unknown'",
    "timespan": "a time span such as 08:00-18:00",
    "timespan_plus": "the end of a time span, such as '-18:00'",
    "holiday": "a holiday selector (PH or SH)",
    "always_open": "'24/7'",
    "small_range_selectors": "a weekday or time selector such as 'Mo-Fr 08:00-18:00'",
    "week_selector": "a week selector such as 'week 1-26'",
    "monthday_range": "a month or date such as 'Jan-Mar'",
    "year": "a year",
    "comment": "a quoted comment",
    "extended_time": "a time between 00:00 and 48:00",
    "time": "a time such as 08:00",
}


def _describe_parse_error(expr: str, exc: Exception) -> str:
    """Turn the parser's multi-line diagnostic into one readable sentence.

    The library reports grammar rule names (``any_rule_separator``...) and a caret
    diagram; station editors need the position, the text found there and a plain list
    of what would have been valid.
    """
    raw = str(exc)
    parts = [f"invalid opening hours {_shorten(expr)}"]
    where = re.search(r"-->\s*(\d+):(\d+)", raw)
    if where:
        column = int(where.group(2))
        found = expr[column - 1 :].split(" ", 1)[0][:30]
        parts.append(f"problem at character {column}" + (f" ({found!r})" if found else ""))
        bad_time = re.match(r"(\d{1,2}):(\d{2})", expr[column - 1 :])
        if bad_time and (int(bad_time.group(1)) >= 24 or int(bad_time.group(2)) >= 60):
            is_end = expr[: column - 1].rstrip().endswith("-")
            parts.append(
                f"{bad_time.group(0)} is not a valid end time (at most 48:00)"
                if is_end
                else f"{bad_time.group(0)} is not a valid start time (00:00-23:59; only an "
                "end time may run past midnight, up to 48:00)"
            )
    detail = re.search(r"=\s*(.+)$", raw, re.MULTILINE)
    if detail:
        text = detail.group(1).strip()
        if text.startswith("expected "):
            names = re.split(r",\s*(?:or\s+)?|\s+or\s+", text[len("expected ") :])
            words = [_GRAMMAR_WORDS.get(n, n.replace("_", " ")) for n in names if n]
            parts.append("expected " + " or ".join(words))
        elif text == "unexpected EOI":
            parts.append("the expression ends too early (is a rule missing after ';'?)")
        elif text.startswith("unexpected "):
            name = text[len("unexpected ") :]
            parts.append("unexpected " + _GRAMMAR_WORDS.get(name, name.replace("_", " ")))
        else:
            parts.append(text)
    return "; ".join(parts)


@lru_cache(maxsize=4096)
def _parse(
    expr: str,
    tz: str | None,
    country: str | None,
    coords: tuple[float, float] | None,
    max_interval_days: int | None,
) -> OpeningHours:
    """Parse once per distinct argument tuple; results are immutable and reusable.

    ``open_state`` runs per result row on the hot path, and a handful of expressions
    cover most stations, so the parse (and calendar loading) is amortised here.  The
    text checks run here too, so a cache hit skips them.
    """
    _check_text(expr)
    stated = _stated(expr)
    if stated != expr:
        try:
            return _library_parse(stated, tz, country, coords, max_interval_days)
        except HoursError:
            pass  # a comment where a state cannot go: the library's own reading is all we have
    return _library_parse(expr, tz, country, coords, max_interval_days)


def _library_parse(
    expr: str,
    tz: str | None,
    country: str | None,
    coords: tuple[float, float] | None,
    max_interval_days: int | None,
) -> OpeningHours:
    try:
        return OpeningHours(
            expr,
            timezone=ZoneInfo(tz) if tz is not None else None,
            country=country,
            coords=coords,
            # Never guess a holiday calendar from the coordinates: country=None means none.
            auto_country=False,
            # Surprise: with auto_timezone=False the library ignores coords for sun events
            # (fixed 07:00/19:00).  An explicit timezone still wins over the guessed one.
            auto_timezone=True,
            max_interval_days=max_interval_days,
        )
    except _ParserError as exc:
        raise HoursError(_describe_parse_error(expr, exc), expr) from exc
    except _InvalidCoordinatesError as exc:
        raise ValueError(f"invalid coordinates {coords!r}: {exc}") from exc


_STATE_AT_END_RE: Final = re.compile(r"\b(?:open|closed|off|unknown)\s*$", re.IGNORECASE)


@lru_cache(maxsize=4096)
def _stated(expr: str) -> str:
    """*expr* with the state ``unknown`` written before every comment that has no state.

    opening_hours.js, the reference implementation, reads a rule whose only "state" is a
    comment (``24/7 "on request"``, ``Mo-Fr 08:00-18:00 || "by appointment"``) as
    *unknown*; opening-hours-py 2.1.4 reads it as *open*, which would list a
    by-appointment station as open now.  Writing the state word in makes the library
    agree (tests/test_hours_oracle.py checks it).  A comment followed by ``:`` is a
    selector (``"text": off``), not a state, and is left alone.  Only evaluation sees
    this form; :func:`validate_hours` stores what the editor wrote.

    >>> _stated('Mo-Fr 08:00-18:00 || "by appointment"')
    'Mo-Fr 08:00-18:00 || unknown "by appointment"'
    >>> _stated('24/7 open "on request"')
    '24/7 open "on request"'
    """
    out: list[str] = []
    last = 0
    for comment in _COMMENT_RE.finditer(expr):
        before = expr[last : comment.start()]
        last = comment.end()
        is_selector = expr[last:].lstrip().startswith(":")
        if not is_selector and not _STATE_AT_END_RE.search("".join(out) + before):
            # The parser takes exactly one space between tokens: "24/7  unknown" fails.
            before = before.rstrip() + (" " if "".join(out) + before.strip() else "")
            before += "unknown "
        out.append(before)
        out.append(comment.group(0))
    out.append(expr[last:])
    return "".join(out)


def validate_hours(expr: str) -> str:
    """Check an ``opening_hours`` value and return its normalised form.

    Used when a station is written, so bad data is refused with a message a person can
    act on instead of silently compiling to "never open".

    Parameters
    ----------
    expr
        OSM ``opening_hours`` expression.

    Returns
    -------
    str
        The library's normalised expression (canonical case and spacing, merged rules),
        suitable for storing and comparing.

    Raises
    ------
    HoursError
        Empty or blank (the library would read blank as ``24/7``), longer than
        :data:`MAX_EXPRESSION_LENGTH`, containing control characters, or not valid
        syntax.

    Examples
    --------
    >>> validate_hours("mo-fr 8:00-18:00")
    'Mo-Fr 08:00-18:00'
    >>> validate_hours("Mo-Su 00:00-24:00")
    '24/7'
    """
    _check_text(expr)
    _parse(expr, None, None, None, None)  # the checks, the error message, and the cache
    normal = str(_library_parse(expr, None, None, None, None).normalize())
    if len(normal) > MAX_EXPRESSION_LENGTH:
        # Normalising can lengthen a rule ("PH off" -> "PH closed"); what is stored
        # must still compile, so the stored form is held to the same limit.
        raise HoursError(
            f"opening hours expression is too long once normalised ({len(normal)} characters, "
            f"at most {MAX_EXPRESSION_LENGTH})", expr)
    return normal


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NON_PORTABLE_ZONES


@lru_cache(maxsize=1024)
def validate_timezone(tz: str) -> str:
    """Check that *tz* is an IANA time zone name zoneinfo (and PostgreSQL) can use.

    Host-dependent keys such as ``localtime`` are refused: a station's zone must mean
    the same on every machine and in the database.

    Parameters
    ----------
    tz
        IANA name such as ``"Asia/Shanghai"`` (case-sensitive).

    Returns
    -------
    str
        *tz* unchanged.

    Raises
    ------
    HoursError
        Unknown name (``.expression`` is the rejected name).

    Examples
    --------
    >>> validate_timezone("Asia/Urumqi")
    'Asia/Urumqi'
    """
    if not isinstance(tz, str) or tz not in _known_zones():
        raise HoursError(
            f"unknown time zone {_shorten(str(tz))}; use an IANA name such as 'Asia/Shanghai'",
            str(tz),
        )
    return tz


@lru_cache(maxsize=256)
def _validate_country(country: str | None) -> str | None:
    """Upper-case *country* and make sure the library has a holiday calendar for it."""
    if country is None:
        return None
    code = country.strip().upper()
    try:
        OpeningHours("PH", country=code)
    except _UnknownCountryError as exc:
        raise ValueError(
            f"no public-holiday calendar for country {country!r}; pass country=None to "
            "evaluate PH rules without holidays"
        ) from exc
    return code


def _aware(at: datetime, name: str) -> datetime:
    if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {at!r}")
    return at


def _coords_key(expr: str, coords: tuple[float, float] | None) -> tuple[float, float] | None:
    """Coordinates only change sun events; drop them otherwise so the cache is shared."""
    if coords is None or not _SUN_EVENT_RE.search(expr):
        return None
    return (float(coords[0]), float(coords[1]))


# --------------------------------------------------------------------------- compilation


def _merge(ranges: list[tuple[_T, _T]]) -> tuple[tuple[_T, _T], ...]:
    """Sort half-open ranges and fuse overlapping or touching ones; drop empty ones."""
    merged: list[tuple[_T, _T]] = []
    for start, end in sorted(r for r in ranges if r[0] < r[1]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def _without_comments(expr: str) -> str:
    return _COMMENT_RE.sub(" ", expr)


def _is_weekday_time_only(expr: str) -> bool:
    """Syntactic proof that a rule refers to nothing but weekdays and clock times."""
    return _WEEKLY_ONLY_RE.fullmatch(_without_comments(expr)) is not None


@lru_cache(maxsize=4096)
def _has_fallback(expr: str) -> bool:
    """Whether the rule uses the ``||`` fallback separator (outside comments)."""
    return "||" in _without_comments(expr)


@lru_cache(maxsize=4096)
def _has_extended_time(expr: str) -> bool:
    """Whether a time past midnight (``26:00``, ``48:00``) is written (outside comments).

    ``intervals()`` of opening-hours-py 2.1.4 runs ``May 00:30-48:00`` on past the end of
    May for days (found by tests/test_hours_oracle.py), so such rules take the ``state()``
    path of :func:`_timeline`.
    """
    times = re.findall(r"(\d{1,2}):(\d{2})", _without_comments(expr))
    return any(int(h) * 60 + int(m) > DAY_MINUTES for h, m in times)


def _fallback_parts(expr: str) -> list[str]:
    """Split *expr* at top-level ``||`` (never inside a quoted comment)."""
    parts = [""]
    for chunk in re.split(r'("[^"]*")', expr):
        if chunk.startswith('"'):
            parts[-1] += chunk
            continue
        pieces = chunk.split("||")
        parts[-1] += pieces[0]
        parts.extend(pieces[1:])
    return [part.strip() for part in parts if part.strip()]


def _clock_minutes(expr: str) -> frozenset[int]:
    """Midnight plus every ``HH:MM`` written in the rule, as minutes of the day."""
    found = re.findall(r"(\d{1,2}):(\d{2})", _without_comments(expr))
    return frozenset({0} | {(int(h) * 60 + int(m)) % DAY_MINUTES for h, m in found})


_Timeline = list[tuple[datetime, datetime, State]]


def _wall_candidates(start: datetime, end: datetime, minutes: frozenset[int]) -> set[datetime]:
    """Every naive wall-clock instant in ``[start, end)`` showing one of *minutes*."""
    out: set[datetime] = set()
    day = start.date()
    while day <= end.date():
        midnight = datetime.combine(day, time())
        out.update(midnight + timedelta(minutes=m) for m in minutes)
        day += timedelta(days=1)
    return {point for point in out if start <= point < end}


def _wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """First instant at which the wall clock of *zone* reads *wall* or later.

    That is the first occurrence in a repeated (fall-back) hour, and the end of the gap
    for a time skipped by a spring-forward transition.
    """
    first = wall.replace(tzinfo=zone).astimezone(_UTC_ZONE)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # Skipped wall time: fold=1 reads it with the earlier offset, landing before the
    # transition; bisect (minute precision) for the first instant that reads >= wall.
    lo = wall.replace(tzinfo=zone, fold=1).astimezone(_UTC_ZONE)
    lo, hi = min(lo, first), max(lo, first)
    while hi - lo > _MINUTE:
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi


def _timeline(
    expr: str,
    tz: str | None,
    country: str | None,
    coords: tuple[float, float] | None,
    start: datetime,
    end: datetime,
) -> _Timeline:
    """States of *expr* over ``[start, end)`` as consecutive ``(lo, hi, state)`` runs.

    Both bounds are naive wall-clock times (then *tz* must be None) or aware in
    ``_UTC_ZONE`` (results are then in ``_UTC_ZONE`` too).

    Why not just ``OpeningHours.intervals``: in opening-hours-py 2.1.4 ``intervals()``
    and ``next_change()`` are wrong for many rules with a ``||`` fallback (e.g. ``Mo-Fr
    08:00-18:00 || unknown`` is reported closed for weeks on end) while ``state()`` is
    right.  A fuzz of 7,500 random rules without ``||`` found no disagreement, so those
    take the fast path - except rules with times past midnight (``48:00``), which the
    opening_hours.js oracle caught running on past a month's end.  Otherwise the runs
    are rebuilt from ``state()`` sampled, in local wall-clock time, at every instant
    where the state can change: midnights (selectors and fallbacks apply per day), every
    clock time written in the rule (an open end ``10:00+`` closes at midnight), and -
    only for rules with sun events, the one kind of moving time - the change points
    ``intervals()`` reports for the whole rule and for each ``||`` part on its own.
    """
    oh = _parse(expr, tz, country, coords, None)
    runs: _Timeline = []
    if not _has_fallback(expr) and not _has_extended_time(expr):
        for lo, hi, state, _comment in oh.intervals(start, end):
            if start.tzinfo is not None:
                lo, hi = lo.astimezone(_UTC_ZONE), hi.astimezone(_UTC_ZONE)
            runs.append((lo, hi, state))
        return _merge_runs(runs)

    zone = ZoneInfo(tz) if tz is not None else None
    if zone is None:
        wall_start, wall_end = start, end
    else:
        wall_start = start.astimezone(zone).replace(tzinfo=None)
        wall_end = end.astimezone(zone).replace(tzinfo=None)
    points = _wall_candidates(wall_start, wall_end, _clock_minutes(expr)) | {wall_start}
    # Only sun events move during the year; every other change point is a written clock
    # time or a midnight.  For those, borrow the change points of each part.
    parts = [expr, *_fallback_parts(expr)] if _SUN_EVENT_RE.search(expr) else []
    for part in parts:
        try:
            part_oh = _parse(part, tz, country, coords, None)
        except HoursError:
            continue  # a fragment that is not a rule by itself; midnights still cover it
        for lo, _hi, _state, _comment in part_oh.intervals(wall_start, wall_end):
            points.add(lo.replace(tzinfo=None))
    ordered = sorted(p for p in points if wall_start <= p < wall_end)
    for lo, hi in zip(ordered, [*ordered[1:], wall_end], strict=True):
        runs.append((lo, hi, oh.state(lo)[0]))
    runs = _merge_runs(runs)
    if zone is None:
        return runs
    bounds = [start, *(_wall_to_utc(lo, zone) for _lo, lo, _st in runs[:-1]), end]
    return _merge_runs(
        [(bounds[i], bounds[i + 1], state) for i, (_lo, _hi, state) in enumerate(runs)]
    )


def _merge_runs(runs: _Timeline) -> _Timeline:
    """Fuse adjacent runs with the same state (comment changes split the library's)."""
    merged: _Timeline = []
    for lo, hi, state in runs:
        if lo >= hi:
            continue
        if merged and merged[-1][2] == state and merged[-1][1] == lo:
            merged[-1] = (merged[-1][0], hi, state)
        else:
            merged.append((lo, hi, state))
    return merged


def _week_ranges(runs: _Timeline, week_start: datetime) -> list[tuple[int, int]] | None:
    """Open runs clipped to one week, as minute offsets; None if not whole minutes."""
    week_end = week_start + _WEEK
    out: list[tuple[int, int]] = []
    for start, end, state in runs:
        lo, hi = max(start, week_start), min(end, week_end)
        if state != State.OPEN or lo >= hi:
            continue
        if (lo - week_start) % _MINUTE or (hi - week_start) % _MINUTE:
            return None
        out.append(((lo - week_start) // _MINUTE, (hi - week_start) // _MINUTE))
    return out


@lru_cache(maxsize=8192)
def _compile_weekly(expr: str) -> tuple[tuple[int, int], ...] | None:
    """Weekly ranges of *expr*, or None when a weekly answer cannot be proven.

    Evaluated in naive wall-clock time: a weekday/time-only rule does not depend on the
    zone, the country or the date, which is also why the result can be memoised on the
    expression alone.
    """
    if not _is_weekday_time_only(expr):
        return None
    result: tuple[tuple[int, int], ...] | None = None
    for monday in _PROBE_MONDAYS:
        runs = _timeline(expr, None, None, None, monday - _WEEK, monday + 2 * _WEEK)
        if any(state == State.UNKNOWN for _lo, _hi, state in runs):
            return None
        second = _week_ranges(runs, monday)
        third = _week_ranges(runs, monday + _WEEK)
        if second is None or third is None:
            return None
        week = _merge(second)
        if week != _merge(third) or (result is not None and week != result):
            return None
        result = week
    return result


def compile_work(expr: str, horizon_days: int) -> int:
    """A deterministic measure of what compiling *expr* over *horizon_days* costs.

    Compiling is CPU work proportional to the change points it visits: every clock
    time written in the rule (plus midnight) on every day of the horizon, both for
    the library's ``intervals()`` and for the ``||`` slow path, and laying a weekly
    rule out over the horizon makes as many intervals.  Callers that compile many
    rules for one request (a mobile station's schedule) cap the sum, so one request
    cannot occupy a CPU for seconds.

    Examples
    --------
    >>> compile_work("Mo-Fr 10:00-16:00", 400)
    1200
    """
    return len(_clock_minutes(expr)) * max(horizon_days, 1)


def _floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def compile_hours(
    expr: str,
    tz: str = DEFAULT_TIMEZONE,
    *,
    now: datetime | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    country: str | None = DEFAULT_COUNTRY,
    coords: tuple[float, float] | None = None,
) -> CompiledHours:
    """Compile an ``opening_hours`` rule into the shape the "open now" SQL filter stores.

    Weekday/clock-only rules become local minute-of-week ranges that never expire; every
    other rule becomes UTC open periods over ``[now - LOOKBACK, now + horizon_days)``.  See
    the module docstring for why the weekly test is syntactic first and what ``PH`` means
    per country.  DST needs no special care for weekly rules: they are compared against
    the *local* minute of the week, so "08:00" stays 08:00 on the wall clock all year.

    Parameters
    ----------
    expr
        OSM ``opening_hours`` expression.
    tz
        IANA zone of the station (wall clock the rule is written in).
    now
        Aware compile instant; defaults to the current time.  Only used for ``dated``.
    horizon_days
        How far ahead ``dated`` periods are computed (>= 1).
    country
        ISO code of the public-holiday calendar for ``PH``; ``None`` for none (``PH``
        then never matches).
    coords
        ``(latitude, longitude)`` for accurate sunrise/sunset; without it the library
        assumes 07:00/19:00.

    Returns
    -------
    CompiledHours

    Raises
    ------
    HoursError
        Invalid expression or time zone.
    ValueError
        Naive *now*, *horizon_days* < 1, unknown *country* code, invalid *coords*.

    Examples
    --------
    >>> compile_hours("Mo-Sa 09:00-17:00; Su off").weekly[-1]
    (7740, 8220)
    >>> from datetime import UTC, datetime
    >>> c = compile_hours("Jan-Mar 08:00-12:00", now=datetime(2025, 3, 30, tzinfo=UTC))
    >>> c.kind, c.periods[0][0].isoformat(), c.periods[0][1].isoformat()
    ('dated', '2025-02-27T00:00:00+00:00', '2025-02-27T04:00:00+00:00')
    >>> c.valid_until.isoformat()
    '2026-05-04T00:00:00+00:00'
    """
    _check_text(expr)
    validate_timezone(tz)
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be at least 1, got {horizon_days}")
    country_code = _validate_country(country)

    weekly = _compile_weekly(expr)
    if weekly is not None:
        return CompiledHours("weekly", weekly, (), None, False)

    base = _floor_minute(_aware(now, "now") if now is not None else datetime.now(UTC))
    start = (base - LOOKBACK).astimezone(_UTC_ZONE)
    valid_until = (base + timedelta(days=horizon_days)).astimezone(_UTC_ZONE)
    runs = _timeline(expr, tz, country_code, _coords_key(expr, coords), start, valid_until)
    periods = [(lo.astimezone(UTC), hi.astimezone(UTC)) for lo, hi, st in runs if st == State.OPEN]
    unknown = [(lo.astimezone(UTC), hi.astimezone(UTC))
               for lo, hi, st in runs if st == State.UNKNOWN]
    return CompiledHours(
        "dated",
        (),
        _merge(periods),
        valid_until.astimezone(UTC),
        bool(unknown),
        _merge(unknown),
        start.astimezone(UTC),
    )


# --------------------------------------------------------------------------- evaluation


def minute_of_week(at: datetime, tz: str) -> int:
    """Local minute of the week of an instant, Monday 00:00 = 0.

    The Python twin of the SQL ``local_minute_of_week(:at, tz)`` that weekly ranges are
    compared with.  During a DST fall-back hour both occurrences map to the same minute,
    which is what a wall-clock rule means.

    Parameters
    ----------
    at
        Aware instant (any zone).
    tz
        IANA zone to read the wall clock in.

    Returns
    -------
    int
        ``0 <= m < WEEK_MINUTES``.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> minute_of_week(datetime(2025, 1, 5, 16, 30, tzinfo=UTC), "Asia/Shanghai")
    30
    """
    local = _aware(at, "at").astimezone(ZoneInfo(validate_timezone(tz)))
    return local.weekday() * DAY_MINUTES + local.hour * 60 + local.minute


def open_state(
    expr: str,
    tz: str,
    at: datetime,
    *,
    country: str | None = DEFAULT_COUNTRY,
    coords: tuple[float, float] | None = None,
) -> tuple[bool | None, datetime | None]:
    """Whether a station is open at *at*, and when that next changes.

    Runs for every row of a nearest-stations answer, so parsed rules are cached per
    ``(expr, tz, country)``; a cache hit costs a few microseconds.

    Parameters
    ----------
    expr
        OSM ``opening_hours`` expression.
    tz
        IANA zone of the station.
    at
        Aware instant.
    country, coords
        As for :func:`compile_hours`.

    Returns
    -------
    tuple
        ``(state, next_change)``: ``True`` open, ``False`` closed, ``None`` unknown; the
        next change as an aware datetime in *tz*, or ``None`` when the state does not
        change within :data:`NEXT_CHANGE_LIMIT` (e.g. ``24/7``).

    Raises
    ------
    HoursError
        Invalid expression or time zone.
    ValueError
        Naive *at*, unknown *country*.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> open_state("Mo-Fr 08:00-18:00", "Asia/Shanghai", datetime(2025, 1, 6, 9, tzinfo=UTC))
    (True, datetime.datetime(2025, 1, 6, 18, 0, tzinfo=zoneinfo.ZoneInfo(key='Asia/Shanghai')))
    """
    zone = ZoneInfo(validate_timezone(tz))
    local = _aware(at, "at").astimezone(zone)
    country_code = _validate_country(country)
    coords_key = _coords_key(expr, coords)
    # max_interval_days stops next_change() from scanning to year 9999 for rules such as
    # "2099 Mo-Fr" (milliseconds otherwise); it does not change states.
    oh = _parse(expr, tz, country_code, coords_key, NEXT_CHANGE_LIMIT.days)
    state, _comment = oh.state(local)
    next_change: datetime | None
    if _has_fallback(expr) or _has_extended_time(expr):
        next_change = _next_change_slow(expr, tz, country_code, coords_key, local)
    else:
        next_change = oh.next_change(local)
    if next_change is not None:
        next_change = next_change.astimezone(zone)
        if next_change - local > NEXT_CHANGE_LIMIT:
            next_change = None
    if state == State.OPEN:
        return True, next_change
    if state == State.CLOSED:
        return False, next_change
    return None, next_change


def _next_change_slow(
    expr: str,
    tz: str,
    country: str | None,
    coords: tuple[float, float] | None,
    local: datetime,
) -> datetime | None:
    """Next state change from :func:`_timeline`, for rules whose ``next_change()`` lies.

    A week (plus a day of spill-over) settles every weekly rule cheaply; only rules
    still constant after that pay for a year.
    """
    start = local.astimezone(_UTC_ZONE)
    for days in (8, NEXT_CHANGE_LIMIT.days):
        end = start + timedelta(days=days)
        runs = _timeline(expr, tz, country, coords, start, end)
        if runs and runs[0][1] < end:
            return runs[0][1]
    return None
