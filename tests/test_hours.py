"""Opening-hours compilation: exact shapes, agreement with the library, errors.

No database: these pin down what ``geo_service.hours.compiler`` hands to the SQL filter, and
check it against ``opening_hours.OpeningHours.state`` (the reference) at random instants.
"""

from __future__ import annotations

import itertools
import pickle
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opening_hours import OpeningHours, State

from geo_service.hours import compiler as hours
from geo_service.hours.compiler import (
    LOOKBACK,
    WEEK_MINUTES,
    CompiledHours,
    HoursError,
    compile_hours,
    minute_of_week,
    open_state,
    validate_hours,
    validate_timezone,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 6, 15, 12, 34, tzinfo=UTC)


def weekday_ranges(days: range, start: str, end: str) -> tuple[tuple[int, int], ...]:
    """Same clock span on each day in *days* (0 = Monday), as minute-of-week ranges."""
    h1, m1 = map(int, start.split(":"))
    h2, m2 = map(int, end.split(":"))
    return tuple((d * 1440 + h1 * 60 + m1, d * 1440 + h2 * 60 + m2) for d in days)


# --------------------------------------------------------------------------- weekly shapes


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("24/7", ((0, WEEK_MINUTES),)),
        ("Mo-Su 00:00-24:00", ((0, WEEK_MINUTES),)),
        ("Mo-Fr 08:00-18:00", weekday_ranges(range(5), "08:00", "18:00")),
        ("Mo-Sa 09:00-17:00; Su off", weekday_ranges(range(6), "09:00", "17:00")),
        ("10:00-15:00", weekday_ranges(range(7), "10:00", "15:00")),  # cooling-bus style
        ("Mo-Su 10:00-16:00", weekday_ranges(range(7), "10:00", "16:00")),
        # Across midnight: one range per night, and Sunday's night wraps to Monday.
        (
            "Mo-Su 22:00-06:00",
            ((0, 360), *((d * 1440 + 1320, d * 1440 + 1800) for d in range(6)), (9960, 10080)),
        ),
        ("Fr 22:00-02:00", ((4 * 1440 + 1320, 5 * 1440 + 120),)),
        ("Su 22:00-02:00", ((0, 120), (6 * 1440 + 1320, WEEK_MINUTES))),
        ("Fr 22:00-48:00", ((4 * 1440 + 1320, 6 * 1440),)),
        ("Mo 08:00-08:00", ((480, 1440 + 480),)),  # a start equal to the end means 24 h
        ("Mo 10:00+", ((600, 1440),)),  # the library closes an open end at midnight
        ("Mo-Fr 08:00-12:00,12:00-18:00", weekday_ranges(range(5), "08:00", "18:00")),
        ("off", ()),
        ("24/7 closed", ()),
        ('Mo-Fr 08:00-18:00 open "closed in Jan"', weekday_ranges(range(5), "08:00", "18:00")),
        ("mo-fr 08:00-18:00", weekday_ranges(range(5), "08:00", "18:00")),
    ],
)
def test_weekly_shapes(expr: str, expected: tuple[tuple[int, int], ...]) -> None:
    compiled = compile_hours(expr, now=NOW)
    assert compiled == CompiledHours("weekly", expected, (), None, False)


def test_weekly_ranges_are_sorted_merged_and_inside_the_week() -> None:
    for expr in [
        "Mo-Su 22:00-06:00",
        "Mo-Fr 08:00-12:00, 11:00-18:00; Sa 00:00-24:00",
        "Su 20:00-30:00",
    ]:
        ranges = compile_hours(expr).weekly
        assert all(0 <= s < e <= WEEK_MINUTES for s, e in ranges)
        assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))


def test_weekly_ignores_now_tz_and_country() -> None:
    a = compile_hours("Mo-Fr 08:00-18:00", "Asia/Shanghai", now=NOW)
    b = compile_hours(
        "Mo-Fr 08:00-18:00", "America/New_York", now=NOW + timedelta(days=300), country=None
    )
    assert a == b


def test_fallback_to_closed_is_still_weekly() -> None:
    assert compile_hours("Mo-Fr 08:00-18:00 || closed").weekly == weekday_ranges(
        range(5), "08:00", "18:00"
    )


@pytest.mark.parametrize(
    ("expr", "at", "expected"),
    [
        # A comment without a state is "unknown", as in opening_hours.js (the reference):
        # opening-hours-py alone reads these as OPEN.
        ('24/7 "on request"', datetime(2025, 1, 6, 4, tzinfo=UTC), None),
        ('"on request"', datetime(2025, 1, 6, 4, tzinfo=UTC), None),
        ('Mo-Fr 08:00-18:00 "closed in Jan"', datetime(2025, 1, 6, 4, tzinfo=UTC), None),
        ('Mo-Fr 08:00-18:00 "closed in Jan"', datetime(2025, 1, 6, 12, tzinfo=UTC), False),
        ('Mo-Fr 08:00-18:00 || "by appointment"', datetime(2025, 1, 11, 4, tzinfo=UTC), None),
        ('Mo-Fr 08:00-18:00 || "by appointment"', datetime(2025, 1, 6, 4, tzinfo=UTC), True),
        # An explicit state keeps its meaning; the comment is only a remark.
        ('24/7 open "on request"', datetime(2025, 1, 6, 4, tzinfo=UTC), True),
        ('closed "renovation"', datetime(2025, 1, 6, 4, tzinfo=UTC), False),
        ('Mo-Fr 08:00-18:00 OFF "lunch"', datetime(2025, 1, 6, 4, tzinfo=UTC), False),
    ],
)
def test_comment_without_state_is_unknown(expr: str, at: datetime, expected: bool | None) -> None:
    assert open_state(expr, "Asia/Shanghai", at)[0] is expected


def test_comment_without_state_compiles_as_unknown_and_keeps_the_text() -> None:
    on_request = compile_hours('24/7 "on request"', now=NOW)
    assert (on_request.kind, on_request.periods, on_request.has_unknown) == ("dated", (), True)
    by_appointment = compile_hours('Mo-Fr 08:00-18:00 || "by appointment"', now=NOW)
    assert by_appointment.kind == "dated" and by_appointment.has_unknown
    # Stored text is what the editor wrote (the library's normal form), not the rewrite.
    assert validate_hours('24/7 "on request"') == '24/7 "on request"'


@pytest.mark.parametrize("expr", ['Mo-Fr 08:00-18:00 || "by appointment"',
                                  'Mo-Fr 08:00-18:00 || 24/7 "by appointment"'])
def test_comment_only_fallback_is_unknown_not_open(expr: str) -> None:
    """The library reads a comment-only fallback as OPEN (all weekend, "by appointment");
    a remark is not an opening time, so that time is unknown (bare and as normalised)."""
    compiled = compile_hours(expr, now=NOW, horizon_days=14)
    assert compiled.kind == "dated" and compiled.has_unknown
    saturday_noon = datetime(2025, 6, 21, 4, tzinfo=UTC)  # 12:00 in Shanghai
    monday_9 = datetime(2025, 6, 23, 1, tzinfo=UTC)
    monday_20 = datetime(2025, 6, 23, 12, tzinfo=UTC)
    assert any(s <= saturday_noon < e for s, e in compiled.unknown)
    assert not any(s <= saturday_noon < e for s, e in compiled.periods)
    assert any(s <= monday_9 < e for s, e in compiled.periods)
    assert not any(s <= monday_20 < e for s, e in compiled.unknown + compiled.periods)
    assert open_state(expr, "Asia/Shanghai", saturday_noon)[0] is None
    assert open_state(expr, "Asia/Shanghai", monday_9)[0] is True


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    "expr",
    [
        "Jan-Mar Mo-Fr 08:00-12:00",
        "Mo-Fr 09:00-17:00; PH off",
        # No CN holiday falls on a Saturday in some years: only the syntax can tell.
        "Sa 10:00-12:00; PH off",
        "week 1-26 Mo 10:00-12:00",
        "sunrise-sunset",
        "Mo-Fr 08:00-18:00 || unknown",
        "Mo-Fr 08:00-18:00; Sa 10:00-12:00 unknown",
        "Mo[1] 10:00-12:00",
        "easter off; Mo-Fr 08:00-18:00",
        "Mo-Fr 08:00-18:00; Dec 24-Jan 02 off",
        "2030 Mo-Fr 08:00-10:00",
        "Jan-Dec Mo-Fr 08:00-18:00",  # weekly in fact; 'dated' is the safe mistake
    ],
)
def test_date_dependent_rules_are_dated(expr: str) -> None:
    compiled = compile_hours(expr, now=NOW)
    assert compiled.kind == "dated"
    assert compiled.weekly == ()
    assert compiled.valid_until == NOW.replace(second=0) + timedelta(days=400)


def test_dated_periods_shape() -> None:
    compiled = compile_hours("Mo-Fr 09:00-17:00; PH off", now=NOW, horizon_days=30)
    assert compiled.valid_until == datetime(2025, 7, 15, 12, 34, tzinfo=UTC)
    assert compiled.valid_from == NOW - LOOKBACK  # "open last Tuesday" is stored too
    assert compiled.periods, "a month of weekdays has open time"
    for start, end in compiled.periods:
        assert start.utcoffset() == timedelta(0) and end.utcoffset() == timedelta(0)
        assert compiled.valid_from <= start < end <= compiled.valid_until
    flat = [t for period in compiled.periods for t in period]
    assert flat == sorted(flat) and len(set(flat)) == len(flat)  # sorted, merged
    # 09:00-17:00 Shanghai is 01:00-09:00 UTC.
    assert (datetime(2025, 6, 16, 1, tzinfo=UTC), datetime(2025, 6, 16, 9, tzinfo=UTC)) in (
        compiled.periods
    )


def test_future_year_rule_is_never_open_within_horizon() -> None:
    compiled = compile_hours("2030 Mo-Fr 08:00-10:00", now=NOW)
    assert compiled.periods == ()
    assert compiled.has_unknown is False


def test_unknown_states_are_flagged_and_not_open() -> None:
    compiled = compile_hours("Mo-Fr 08:00-18:00; Sa 10:00-12:00 unknown", now=NOW)
    assert compiled.has_unknown is True
    saturday_11 = datetime(2025, 6, 21, 3, tzinfo=UTC)  # 11:00 in Shanghai
    assert not any(s <= saturday_11 < e for s, e in compiled.periods)


def test_extended_time_at_the_end_of_a_date_range_works_around_library_intervals_bug() -> None:
    # Found by the opening_hours.js oracle: intervals() of opening-hours-py 2.1.4 runs a
    # 00:30-48:00 day on past the end of May (open for days), while state() is right.
    expr = "May 00:30-48:00"
    start = datetime(2025, 5, 29, tzinfo=SHANGHAI)
    library = OpeningHours(expr, timezone=SHANGHAI)
    june_3 = datetime(2025, 6, 3, 12, tzinfo=SHANGHAI)
    assert library.state(june_3)[0] == State.CLOSED
    runs = library.intervals(start, start + timedelta(days=6))
    assert any(s <= june_3 < e for s, e, st, _ in runs if st == State.OPEN), (
        "library fixed? then the slow path for 48:00 can go"
    )

    compiled = compile_hours(expr, now=start.astimezone(UTC), horizon_days=6)
    opens = [(s.astimezone(SHANGHAI), e.astimezone(SHANGHAI)) for s, e in compiled.periods]
    # Open from 1 May 00:30 (the window reaches a month back) until 1 June 24:00 (31
    # May's day runs to 48:00).
    june_2 = datetime(2025, 6, 2, tzinfo=SHANGHAI)
    assert opens == [(datetime(2025, 5, 1, 0, 30, tzinfo=SHANGHAI), june_2)]
    assert open_state(expr, "Asia/Shanghai", june_3)[0] is False
    # next_change() has the same fault (it answered 1 May 2026).
    may_31 = datetime(2025, 5, 31, 12, tzinfo=SHANGHAI)
    assert open_state(expr, "Asia/Shanghai", may_31) == (True, june_2)


def test_fallback_unknown_works_around_library_intervals_bug() -> None:
    # opening-hours-py 2.1.4 intervals() reports this rule closed for weeks on end.
    expr = "Mo-Fr 08:00-18:00 || unknown"
    start = datetime(2025, 2, 19, tzinfo=SHANGHAI)
    library = list(
        OpeningHours(expr, timezone=SHANGHAI).intervals(start, start + timedelta(days=21))
    )
    assert len(library) < 10, "library fixed? then the slow path in hours._timeline can go"

    compiled = compile_hours(expr, now=start.astimezone(UTC), horizon_days=21)
    assert compiled.has_unknown is True
    opens = [s.astimezone(SHANGHAI) for s, _ in compiled.periods]
    # From a month before (Su 19 Jan, hours.LOOKBACK) to 12 Mar: 37 weekdays.
    assert len(opens) == 37
    assert all(t.hour == 8 and t.weekday() < 5 for t in opens)


def test_public_holidays_cn_calendar() -> None:
    expr = "Mo-Fr 09:00-17:00; PH off"
    national_day = datetime(2025, 10, 1, 2, tzinfo=UTC)  # Wed 10:00 in Shanghai
    second_of_october = national_day + timedelta(days=1)
    with_cn = compile_hours(expr, now=NOW)
    without = compile_hours(expr, now=NOW, country=None)
    assert not any(s <= national_day < e for s, e in with_cn.periods)
    assert any(s <= national_day < e for s, e in without.periods)  # no calendar: PH never
    # The library's CN calendar has only the first day of each holiday (documented in
    # the module): 2 October is an ordinary weekday to it.
    assert any(s <= second_of_october < e for s, e in with_cn.periods)
    assert without.kind == "dated"  # still a calendar rule, not provably weekly


def test_country_codes() -> None:
    assert compile_hours("PH off; 24/7", now=NOW, country="cn") == compile_hours(
        "PH off; 24/7", now=NOW, country="CN"
    )
    with pytest.raises(ValueError, match="no public-holiday calendar for country 'XX'"):
        compile_hours("Mo-Fr 09:00-17:00; PH off", now=NOW, country="XX")
    with pytest.raises(ValueError, match="calendar"):
        open_state("24/7", "Asia/Shanghai", NOW, country="XX")


def test_sun_events_use_coordinates_when_given() -> None:
    beijing = (39.9, 116.4)
    fixed = compile_hours("sunrise-sunset", now=NOW, horizon_days=3)
    real = compile_hours("sunrise-sunset", now=NOW, horizon_days=3, coords=beijing)
    assert fixed.kind == real.kind == "dated"
    # Without coordinates the library assumes 07:00-19:00; June in Beijing is longer.
    day = (datetime(2025, 6, 14, 23, tzinfo=UTC), datetime(2025, 6, 15, 11, tzinfo=UTC))
    assert day in fixed.periods
    same = [p for p in real.periods if p[0] < day[1] and day[0] < p[1]]
    assert len(same) == 1 and same[0][0] < day[0] and same[0][1] > day[1]


def test_compile_hours_argument_checks() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compile_hours("Jan-Mar 10:00-12:00", now=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="horizon_days"):
        compile_hours("Jan-Mar 10:00-12:00", now=NOW, horizon_days=0)
    with pytest.raises(HoursError, match="unknown time zone"):
        compile_hours("24/7", "Mars/Olympus")


# --------------------------------------------------------------------------- properties

WEEKLY_EXPRS = [
    "24/7",
    "Mo-Fr 08:00-18:00",
    "Mo-Su 22:00-06:00",
    "Fr 22:00-02:00",
    "Su 22:00-02:00",
    "Mo-Sa 09:00-17:00; Su off",
    "10:00-15:00",
    "Mo-Su 10:00-16:00",
    "Mo-Fr 07:30-11:45,13:15-19:00; Sa 08:00-12:00",
    "Tu,Th 06:00-30:00",
    "Mo-Fr 08:00-18:00 || closed",
    "Mo-Fr 10:00-20:00; We 12:00-14:00 off",
]
DATED_EXPRS = [
    "Jan-Mar Mo-Fr 08:00-12:00",
    "Mo-Fr 09:00-17:00; PH off",
    "week 1-26 Mo 10:00-12:00",
    "sunrise-sunset",
    "Mo-Fr 08:00-18:00 || unknown",
    "Mo-Fr 08:00-18:00; Dec 24-Jan 02 off",
    "Jun-Aug Mo-Su 06:00-10:00,16:00-20:00; Mo-Fr 09:00-17:00",
    "Mo-Fr 08:00-18:00; PH 10:00-12:00 || Sa 09:00-12:00",
    "Mo[1] 10:00-12:00; Dec 25 off",
]
ZONES = ["Asia/Shanghai", "Asia/Urumqi", "Europe/Berlin", "America/New_York"]
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@cache
def library(expr: str, tz: str, country: str | None = "CN") -> OpeningHours:
    return OpeningHours(expr, timezone=ZoneInfo(tz), country=country)


def library_open(expr: str, tz: str, at: datetime) -> bool:
    return library(expr, tz).state(at.astimezone(ZoneInfo(tz)))[0] == State.OPEN


@settings(max_examples=400, deadline=None)
@given(expr=st.sampled_from(WEEKLY_EXPRS), tz=st.sampled_from(ZONES), at=instants)
def test_weekly_agrees_with_library(expr: str, tz: str, at: datetime) -> None:
    compiled = compile_hours(expr, tz, now=NOW)
    assert compiled.kind == "weekly"
    minute = minute_of_week(at, tz)
    assert any(s <= minute < e for s, e in compiled.weekly) == library_open(expr, tz, at)


@cache
def compiled_dated(expr: str, tz: str) -> CompiledHours:
    return compile_hours(expr, tz, now=NOW)


@settings(max_examples=400, deadline=None)
@given(
    expr=st.sampled_from(DATED_EXPRS),
    tz=st.sampled_from(["Asia/Shanghai", "Asia/Urumqi"]),
    offset=st.integers(min_value=0, max_value=401 * 1440 - 1),
)
def test_dated_agrees_with_library(expr: str, tz: str, offset: int) -> None:
    compiled = compiled_dated(expr, tz)
    assert compiled.kind == "dated" and compiled.valid_until is not None
    at = NOW.replace(second=0) - timedelta(days=1) + timedelta(minutes=offset)
    assert at < compiled.valid_until
    inside = any(s <= at < e for s, e in compiled.periods)
    assert inside == library_open(expr, tz, at)


@settings(max_examples=300, deadline=None)
@given(at=instants, tz=st.sampled_from(ZONES))
def test_minute_of_week_matches_wall_clock(at: datetime, tz: str) -> None:
    local = at.astimezone(ZoneInfo(tz))
    minute = minute_of_week(at, tz)
    assert 0 <= minute < WEEK_MINUTES
    assert divmod(minute, 1440) == (local.weekday(), local.hour * 60 + local.minute)


@settings(max_examples=200, deadline=None)
@given(expr=st.sampled_from(WEEKLY_EXPRS + DATED_EXPRS), at=instants)
def test_open_state_agrees_with_library(expr: str, at: datetime) -> None:
    is_open, next_change = open_state(expr, "Asia/Shanghai", at)
    state = library(expr, "Asia/Shanghai").state(at.astimezone(SHANGHAI))[0]
    assert is_open == {State.OPEN: True, State.CLOSED: False, State.UNKNOWN: None}[state]
    if next_change is not None:
        assert next_change > at
        assert library(expr, "Asia/Shanghai").state(next_change)[0] != state
        just_before = next_change - timedelta(minutes=1)
        if just_before > at:
            assert library(expr, "Asia/Shanghai").state(just_before)[0] == state


# --------------------------------------------------------------------------- open_state


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("expr", "at", "expected"),
    [
        # Night shift: open until 06:00 the next morning, closed until 22:00.
        ("Mo-Su 22:00-06:00", local(2025, 1, 6, 23, 0), (True, local(2025, 1, 7, 6, 0))),
        ("Mo-Su 22:00-06:00", local(2025, 1, 7, 5, 59), (True, local(2025, 1, 7, 6, 0))),
        ("Mo-Su 22:00-06:00", local(2025, 1, 7, 6, 0), (False, local(2025, 1, 7, 22, 0))),
        ("Fr 22:00-02:00", local(2025, 1, 10, 23, 30), (True, local(2025, 1, 11, 2, 0))),
        ("Fr 22:00-02:00", local(2025, 1, 11, 3, 0), (False, local(2025, 1, 17, 22, 0))),
        # Sunday night into Monday, across the week wrap.
        ("Su 22:00-02:00", local(2025, 1, 12, 23, 30), (True, local(2025, 1, 13, 2, 0))),
        ("Mo-Fr 08:00-18:00", local(2025, 1, 10, 18, 0), (False, local(2025, 1, 13, 8, 0))),
        ("24/7", local(2025, 1, 6, 12, 0), (True, None)),
        ("off", local(2025, 1, 6, 12, 0), (False, None)),
        ("2099 Mo-Fr 08:00-10:00", local(2025, 1, 6, 12, 0), (False, None)),  # > a year
        # Fallback rules: the library's own next_change() is wrong for these.
        (
            "Mo-Fr 08:00-18:00 || unknown",
            local(2025, 1, 11, 12, 0),
            (None, local(2025, 1, 13, 0, 0)),
        ),
        (
            "Mo-Fr 08:00-18:00 || unknown",
            local(2025, 1, 13, 9, 0),
            (True, local(2025, 1, 13, 18, 0)),
        ),
    ],
)
def test_open_state_next_change(
    expr: str, at: datetime, expected: tuple[bool | None, datetime | None]
) -> None:
    result = open_state(expr, "Asia/Shanghai", at)
    assert result == expected
    if result[1] is not None:
        assert result[1].tzinfo == SHANGHAI


def test_open_state_accepts_any_aware_tzinfo() -> None:
    fixed_plus_8 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    assert open_state("Mo-Fr 08:00-18:00", "Asia/Shanghai", fixed_plus_8)[0] is True
    with pytest.raises(ValueError, match="timezone-aware"):
        open_state("24/7", "Asia/Shanghai", datetime(2025, 1, 6, 9))


def test_same_instant_different_zone_different_answer() -> None:
    at = datetime(2025, 1, 6, 2, 0, tzinfo=UTC)  # 10:00 Monday in Shanghai, 03:00 in Berlin
    assert open_state("Mo-Fr 08:00-18:00", "Asia/Shanghai", at)[0] is True
    assert open_state("Mo-Fr 08:00-18:00", "Europe/Berlin", at)[0] is False
    assert minute_of_week(at, "Asia/Shanghai") == 600
    assert minute_of_week(at, "Europe/Berlin") == 180
    assert minute_of_week(at, "America/New_York") == 6 * 1440 + 21 * 60  # Sunday 21:00
    # Urumqi shares China's legal time but stations there often post local-sun hours.
    assert minute_of_week(at, "Asia/Urumqi") == 480


def test_minute_of_week_dst_zone_uses_wall_clock() -> None:
    # 30 March 2025, Berlin springs forward 02:00 -> 03:00 (01:00 UTC).
    before = datetime(2025, 3, 30, 0, 59, tzinfo=UTC)
    after = datetime(2025, 3, 30, 1, 0, tzinfo=UTC)
    assert minute_of_week(before, "Europe/Berlin") == 6 * 1440 + 119
    assert minute_of_week(after, "Europe/Berlin") == 6 * 1440 + 180
    with pytest.raises(ValueError, match="timezone-aware"):
        minute_of_week(datetime(2025, 1, 1), "Asia/Shanghai")


def test_open_state_parses_each_rule_once() -> None:
    expr = "Mo-Fr 08:00-18:00; Sa 09:30-12:15"
    open_state(expr, "Asia/Shanghai", NOW)
    before = hours._parse.cache_info()
    for i in range(50):
        open_state(expr, "Asia/Shanghai", NOW + timedelta(minutes=37 * i))
    after = hours._parse.cache_info()
    assert after.misses == before.misses
    assert after.hits >= before.hits + 50


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("Mo-Fr 25:00-26:00", "25:00 is not a valid start time"),
        ("Mo-Fr 08:00-49:00", "49:00 is not a valid end time (at most 48:00)"),
        ("banana", "problem at character 1 ('banana')"),
        ("Mo-Fr 08:00-18:00;", "ends too early"),
        ("Mo 10:00", "expected the end of a time span"),
        ("Mo–Fr 08:00–18:00", "problem at character 3"),  # en dashes
        ("", "empty"),
        ("   ", "empty"),  # the library would read this as 24/7
        ("Mo-Fr 08:00-18:00; " * 60, "too long"),
        ("Mo-Fr\n08:00-18:00", "control character U+000A"),
        ("Mo-Fr\x0008:00-18:00", "control character U+0000"),
    ],
)
def test_malformed_expressions(expr: str, fragment: str) -> None:
    for call in (validate_hours, compile_hours, lambda e: open_state(e, "Asia/Shanghai", NOW)):
        with pytest.raises(HoursError) as info:
            call(expr)
        message = str(info.value)
        assert fragment in message
        assert "\n" not in message and len(message) < 600
        assert info.value.expression == expr
        assert isinstance(info.value, ValueError)


def test_error_message_is_readable() -> None:
    with pytest.raises(HoursError) as info:
        validate_hours("Mo-Fr 25:00-26:00")
    assert str(info.value).startswith("invalid opening hours 'Mo-Fr 25:00-26:00'; problem at")
    assert "_" not in str(info.value)  # no raw grammar rule names


def test_hours_error_pickles() -> None:
    err = HoursError("bad", "banana")
    copy = pickle.loads(pickle.dumps(err))
    assert (str(copy), copy.expression) == ("bad", "banana")


def test_validate_hours_normalises() -> None:
    assert validate_hours("mo-fr 8:00-18:00") == "Mo-Fr 08:00-18:00"
    assert validate_hours("Mo-Su 00:00-24:00") == "24/7"
    assert validate_hours("24/7 ; Su closed") == "Mo-Sa"
    assert validate_hours("Mo-Fr 09:00-17:00; PH off") == "Mo-Fr 09:00-17:00; PH closed"


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "Asia/Urumqi", "UTC", "Europe/Berlin"])
def test_validate_timezone_accepts(tz: str) -> None:
    assert validate_timezone(tz) == tz


@pytest.mark.parametrize(
    "tz",
    [
        "",
        "Asia",
        "asia/shanghai",
        " Asia/Shanghai",
        "Mars/Olympus",
        "localtime",
        "../etc/passwd",
        "+08:00",
    ],
)
def test_validate_timezone_rejects(tz: str) -> None:
    with pytest.raises(HoursError, match="unknown time zone") as info:
        validate_timezone(tz)
    assert info.value.expression == tz
