"""Public holidays and make-up working days from the official calendars (issue 13).

The dates come from the calendar packages (checked here against each other and
against the 2026 State Council notice as ``chinese-calendar`` transcribes it), the
evaluation from :mod:`geo_service.hours.calendar_hours`; the database tests check that the
SQL answer (stored periods) agrees with the per-row ``calendar_open_state``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays
import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opening_hours import OpeningHours, State

from geo_service.domain.coords import Crs
from geo_service.domain.schemas import StationCreate
from geo_service.hours import calendar_hours
from geo_service.hours.calendar_hours import (
    NO_CALENDAR,
    calendar_open_state,
    compile_station_hours,
    follows_workdays,
)
from geo_service.hours.calendars import calendar_for, country_for_timezone
from geo_service.stations import queries as q
from geo_service.stations.maintenance import refresh_hours
from geo_service.stations.service import to_record
from tests.conftest import station_body

SH = "Asia/Shanghai"
SHANGHAI = ZoneInfo(SH)
HELSINKI = ZoneInfo("Europe/Helsinki")
#: Compile instant of the tests: the whole of 2026 is inside the horizon.
NOW = dt.datetime(2025, 12, 31, 16, tzinfo=dt.UTC)  # 2026-01-01 00:00 in China
P = (109.50, 18.25)


def at(month: int, day: int, hour: int, minute: int = 0, year: int = 2026,
       zone: ZoneInfo = SHANGHAI) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=zone)


def state(expr: str, when: dt.datetime, *, workdays: bool = False,
          tz: str = SH) -> bool | None:
    return calendar_open_state(expr, tz, when, workdays=workdays)[0]


def stored_open(expr: str, when: dt.datetime, *, workdays: bool = False,
                tz: str = SH) -> bool | None:
    """What the SQL filter would answer from the compiled, stored form."""
    compiled = compile_station_hours(expr, tz, workdays=workdays, now=NOW).compiled
    if compiled.kind == "weekly":
        local = when.astimezone(ZoneInfo(tz))
        minute = local.weekday() * 1440 + local.hour * 60 + local.minute
        return any(s <= minute < e for s, e in compiled.weekly)
    assert compiled.valid_until is not None
    if when >= compiled.valid_until:
        return None
    return any(s <= when < e for s, e in compiled.periods)


# --------------------------------------------------------------------------- calendars


def test_china_2026_as_the_state_council_published_it() -> None:
    """国办发明电〔2025〕7号 as chinese-calendar 1.11.0 transcribes it (and python-holidays
    cites the same notice): Spring Festival 15-23 Feb with make-up Saturdays 14 and 28
    Feb, National Day + Mid-Autumn 1-7 Oct with make-up Sunday 20 Sep and Saturday 10
    Oct."""
    cn = calendar_for("CN")
    day = dt.date
    spring = {day(2026, 2, 15) + dt.timedelta(days=i) for i in range(9)}
    golden = {day(2026, 10, 1) + dt.timedelta(days=i) for i in range(7)}
    assert spring <= cn.days_off and golden <= cn.days_off
    assert day(2026, 2, 14) not in cn.days_off and day(2026, 2, 24) not in cn.days_off
    assert {day(2026, 2, 14), day(2026, 2, 28), day(2026, 9, 20), day(2026, 10, 10)} <= (
        cn.workdays)
    assert {d for d in cn.workdays if d.year == 2026} == {
        day(2026, 1, 4), day(2026, 2, 14), day(2026, 2, 28), day(2026, 5, 9),
        day(2026, 9, 20), day(2026, 10, 10)}
    assert all(d.weekday() >= 5 for d in cn.workdays)
    # The package's last notice; later years are provisional (test_holiday_years.py).
    assert cn.official_until == day(2027, 1, 1) and cn.covers(day(2027, 1, 1))
    assert cn.label.startswith(f"CN chinese-calendar {chinese_calendar.__version__}; "
                               "provisional from 2027")


def test_the_two_packages_agree_on_china() -> None:
    """chinese-calendar is authoritative; python-holidays models the same swaps.  Over
    every year both cover, the working days agree except one day of the 2006 New Year
    swap, which the packages read differently."""
    cn = calendar_for("CN")
    other = holidays.country_holidays("CN", years=range(cn.first.year, cn.until.year))
    disagree = set()
    day = cn.first
    while day < cn.until:
        ours = (day.weekday() < 5 and day not in cn.days_off) or day in cn.workdays
        theirs = (day.weekday() < 5 and day not in other) or day in other.weekend_workdays
        if ours != theirs:
            disagree.add(day)
        day += dt.timedelta(days=1)
    assert disagree == {dt.date(2005, 12, 31)}


def test_countries_follow_the_time_zone() -> None:
    assert country_for_timezone("Asia/Shanghai") == "CN"
    assert country_for_timezone("Asia/Urumqi") == "CN"
    assert country_for_timezone("Europe/Helsinki") == "FI"
    assert country_for_timezone("Asia/Hong_Kong") == "HK"
    assert country_for_timezone("UTC") == "CN"  # no country: the service's default
    with pytest.raises(ValueError, match="XX"):
        calendar_for("XX")


def test_host_type_defaults() -> None:
    for host in ("bank_branch", "party_service_centre", "union_built"):
        assert follows_workdays(host, None) is True
        assert follows_workdays(host, False) is False
    for host in ("sanitation_depot", "enterprise", "volunteer", "mobile"):
        assert follows_workdays(host, None) is False
        assert follows_workdays(host, True) is True


# --------------------------------------------------------------------------- evaluation


def test_make_up_days_and_days_off_for_office_hours() -> None:
    rule = "Mo-Fr 09:00-17:00"
    # Union-built (follows the arrangement): the make-up Saturday is a working day...
    assert state(rule, at(10, 10, 9), workdays=True) is True
    assert state(rule, at(10, 10, 16, 59), workdays=True) is True
    assert state(rule, at(10, 10, 17), workdays=True) is False
    assert state(rule, at(2, 14, 10), workdays=True) is True
    assert state(rule, at(2, 28, 10), workdays=True) is True
    # ...and the Golden Week weekdays are days off.
    assert state(rule, at(10, 1, 10), workdays=True) is False
    assert state(rule, at(2, 16, 10), workdays=True) is False
    assert calendar_open_state(rule, SH, at(10, 1, 10), workdays=True)[1] == at(10, 8, 9)
    # An enterprise station with the same hours runs its own roster (OSM semantics:
    # a rule without PH says nothing about holidays).
    assert state(rule, at(10, 10, 10)) is False
    assert state(rule, at(10, 1, 10)) is True
    assert compile_station_hours(rule, SH, workdays=False, now=NOW).compiled.kind == "weekly"


def test_ph_off_closes_every_day_of_the_break() -> None:
    rule = "Mo-Fr 09:00-17:00; PH off"
    library = OpeningHours(rule, timezone=SHANGHAI, country="CN")
    # The library's own calendar knows only 1 October: this is what was wrong.
    assert library.state(at(10, 2, 10))[0] == State.OPEN
    for day in range(1, 8):
        assert state(rule, at(10, day, 10)) is False
    assert state(rule, at(10, 8, 10)) is True
    assert state(rule, at(4, 6, 10)) is False  # Qingming (Monday)
    assert state(rule, at(10, 10, 10)) is False  # enterprise: make-up day not worked


def test_ph_in_a_weekday_list() -> None:
    rule = "Mo-Fr,PH 10:00-12:00"
    assert state(rule, at(10, 3, 11)) is True  # Saturday, but a public holiday
    assert state(rule, at(10, 10, 11)) is False  # ordinary Saturday for this station
    assert state(rule, at(10, 10, 11), workdays=True) is True  # worked as a weekday
    assert state(rule, at(10, 3, 12)) is False


def test_holiday_hours_spill_past_midnight() -> None:
    rule = "PH 22:00-02:00"
    assert state(rule, at(9, 30, 23)) is False  # the eve is no holiday
    assert state(rule, at(10, 1, 1)) is False
    assert state(rule, at(10, 1, 23)) is True
    assert state(rule, at(10, 7, 23)) is True
    assert state(rule, at(10, 8, 1)) is True  # from the last holiday into an ordinary day
    assert state(rule, at(10, 8, 2)) is False
    assert state(rule, at(10, 8, 23)) is False
    assert calendar_open_state(rule, SH, at(10, 7, 23), workdays=False)[1] == at(10, 8, 2)


def test_helsinki_independence_day() -> None:
    rule = "Mo-Su 10:00-18:00; PH closed"
    tz = "Europe/Helsinki"
    assert state(rule, at(12, 6, 12, zone=HELSINKI), tz=tz) is False
    assert state(rule, at(12, 5, 12, zone=HELSINKI), tz=tz) is True
    assert state(rule, at(12, 7, 12, zone=HELSINKI), tz=tz) is True
    assert stored_open(rule, at(12, 6, 12, zone=HELSINKI), tz=tz) is False
    assert compile_station_hours(rule, tz, workdays=False, now=NOW).label.startswith(
        "FI holidays ")


def test_provisional_beyond_the_package() -> None:
    """chinese-calendar 1.11.0 has no 2027: rules that depend on it are answered there
    with the statutory days (provisional, see tests/test_holiday_years.py) instead of
    unknown, and their compiled hours run on past the package's last day."""
    end = dt.datetime(2026, 12, 31, 16, tzinfo=dt.UTC)  # 2027-01-01 00:00 in China
    for rule, workdays in (("Mo-Fr 09:00-17:00; PH off", False),
                           ("Mo-Fr 09:00-17:00", True)):
        compiled = compile_station_hours(rule, SH, workdays=workdays, now=NOW).compiled
        assert compiled.kind == "dated" and compiled.valid_until is not None
        assert compiled.valid_until > end
        assert state(rule, at(1, 4, 10, year=2027), workdays=workdays) is True
        assert stored_open(rule, at(1, 4, 10, year=2027), workdays=workdays) is True
        assert state(rule, at(1, 1, 10, year=2027), workdays=workdays) is False
        assert state(rule, at(12, 31, 10), workdays=workdays) is True
        # New Year's Day 2027 is a statutory holiday: the next change is at 17:00 today.
        assert calendar_open_state(rule, SH, at(12, 31, 16), workdays=workdays)[1] == (
            at(12, 31, 17))
    assert state("Mo-Fr 09:00-17:00", at(3, 1, 10, year=2027)) is True
    always = compile_station_hours("24/7", SH, workdays=True, now=NOW)
    assert always.label == NO_CALENDAR and always.compiled.kind == "weekly"


def test_rules_the_rewrite_cannot_carry_fall_back_to_the_library() -> None:
    for rule in ("Mo[1] 10:00-12:00; PH off", "PH +1 day 10:00-12:00", "SH,PH off"):
        compiled = compile_station_hours(rule, SH, workdays=False, now=NOW)
        assert compiled.label == "CN opening-hours-py", rule
    rule = "Mo[1] 10:00-12:00; PH off"
    library = OpeningHours(rule, timezone=SHANGHAI, country="CN")
    when = at(11, 2, 11)
    assert state(rule, when) == (library.state(when)[0] == State.OPEN)


RULES = [
    "Mo-Fr 09:00-17:00; PH off",
    "Mo-Fr,PH 10:00-12:00",
    "PH 22:00-02:00",
    "Mo-Sa 08:00-20:00; Su,PH 10:00-14:00",
    "Fr 22:00-02:00; Sa 10:00-12:00; PH off",
    "Mo-Fr 08:00-18:00 || unknown; PH off",
    "Mo-Fr 09:00-12:00,14:00-18:00",
    "Su-Tu 20:00-26:00",
]


@settings(max_examples=300, deadline=None)
@given(rule=st.sampled_from(RULES), workdays=st.booleans(),
       minute=st.integers(min_value=0, max_value=365 * 1440 - 1))
def test_stored_periods_agree_with_open_state(rule: str, workdays: bool, minute: int) -> None:
    """The SQL answer (compiled once with NOW) and the per-row answer agree everywhere
    in the covered year, whatever month's window the row's answer comes from.  (The
    nearest query takes the state from SQL and only the next change from the row.)"""
    when = at(1, 1, 0) + dt.timedelta(minutes=minute)
    # Unknown time (``|| unknown``) is stored as not open, as for every rule.
    assert stored_open(rule, when, workdays=workdays) == (
        state(rule, when, workdays=workdays) is True)


@settings(max_examples=200, deadline=None)
@given(rule=st.sampled_from(RULES), minute=st.integers(min_value=0, max_value=365 * 1440 - 1))
def test_ordinary_days_are_the_library_without_holidays(rule: str, minute: int) -> None:
    """Away from holidays and make-up days (and their next days) the calendar changes
    nothing: the library with no country answers."""
    when = at(1, 1, 0) + dt.timedelta(minutes=minute)
    cn = calendar_for("CN")
    local = when.date()
    special = cn.days_off | cn.workdays
    if local in special or local - dt.timedelta(days=1) in special:
        return
    library = OpeningHours(rule, timezone=SHANGHAI, country=None).state(when)[0]
    expected = {State.OPEN: True, State.CLOSED: False, State.UNKNOWN: None}[library]
    assert state(rule, when, workdays=True) == expected


@cache
def _library_ph(day: dt.date) -> bool:
    """Whether opening-hours-py's own (reduced) CN calendar has *day* as a holiday."""
    noon = dt.datetime.combine(day, dt.time(12), SHANGHAI)
    return OpeningHours("PH", timezone=SHANGHAI, country="CN").state(noon)[0] == State.OPEN


def _minute_2025(month: int, day: int, hour: int) -> int:
    return int((at(month, day, hour, year=2025) - at(1, 1, 0, year=2025)).total_seconds() // 60)


@settings(max_examples=300, deadline=None)
@given(rule=st.sampled_from(RULES), minute=st.integers(min_value=0, max_value=730 * 1440 - 1))
# New Year's Day 2025 is the one-day holiday both calendars know: the holiday itself
# and its spill into 2 January are always checked.
@example(rule="Mo-Fr 09:00-17:00; PH off", minute=_minute_2025(1, 1, 10))
@example(rule="Mo-Fr,PH 10:00-12:00", minute=_minute_2025(1, 1, 11))
@example(rule="PH 22:00-02:00", minute=_minute_2025(1, 2, 1))
@example(rule="PH 22:00-02:00", minute=_minute_2025(1, 1, 23))
def test_rewrite_matches_the_library_where_the_calendars_agree(rule: str, minute: int) -> None:
    """An independent oracle for the per-day rewrite: on days where the library's own CN
    calendar and chinese-calendar agree (this day and the day before: both holidays, or
    both not), the library evaluating ``PH`` itself must give our answer."""
    when = at(1, 1, 0, year=2025) + dt.timedelta(minutes=minute)
    cn = calendar_for("CN")
    local = when.date()
    for day in (local, local - dt.timedelta(days=1)):
        if _library_ph(day) != (day in cn.days_off):
            return
    library = OpeningHours(rule, timezone=SHANGHAI, country="CN").state(when)[0]
    expected = {State.OPEN: True, State.CLOSED: False, State.UNKNOWN: None}[library]
    assert state(rule, when) == expected


def test_same_hours_every_day_need_no_calendar() -> None:
    for rule in ("24/7", "Mo-Su 08:00-20:00", "Mo-Su 22:00-06:00", "10:00-15:00"):
        compiled = compile_station_hours(rule, SH, workdays=True, now=NOW)
        assert (compiled.compiled.kind, compiled.label) == ("weekly", NO_CALENDAR), rule
    for rule in ("Mo-Sa 22:00-06:00", "Mo-Fr 08:00-18:00; Sa,Su 09:00-17:00"):
        assert compile_station_hours(rule, SH, workdays=True, now=NOW).label != NO_CALENDAR


# --------------------------------------------------------------------------- database


def _insert(db: psycopg.Connection[Any], bodies: list[dict[str, Any]],
            now: dt.datetime = NOW) -> None:
    records = [to_record(StationCreate.model_validate(b).model_dump(), Crs.WGS84, now=now)
               for b in bodies]
    with db.transaction(), db.cursor() as cur:
        cur.executemany(q.INSERT_STATION, records)


def _station(code: str, rule: str, host: str, dx: float, **over: Any) -> dict[str, Any]:
    return {"code": code, "name": code, "lon": P[0] + dx, "lat": P[1], "host_type": host,
            "opening_hours": rule, **over}


STATIONS = [
    _station("UNION", "Mo-Fr 09:00-17:00", "union_built", 0.001),
    _station("FIRM", "Mo-Fr 09:00-17:00", "enterprise", 0.002),
    _station("FIRM-OPTIN", "Mo-Fr 09:00-17:00", "enterprise", 0.003, official_workdays=True),
    _station("UNION-OPTOUT", "Mo-Fr 09:00-17:00", "union_built", 0.004,
             official_workdays=False),
    _station("PHOFF", "Mo-Fr 09:00-17:00; PH off", "sanitation_depot", 0.005),
    _station("PHNIGHT", "PH 22:00-02:00", "volunteer", 0.006),
]


def _nearest(client: TestClient, when: dt.datetime, open_now: bool = False) -> dict[str, Any]:
    r = client.get("/v1/stations/nearest", params={
        "lat": P[1], "lon": P[0], "k": 20, "at": when.isoformat(),
        "open_now": str(open_now).lower()})
    assert r.status_code == 200, r.text
    return {s["code"]: s for s in r.json()["results"]}


@pytest.mark.parametrize(("when", "expected"), [
    (at(10, 10, 10), {"UNION": True, "FIRM": False, "FIRM-OPTIN": True,
                      "UNION-OPTOUT": False, "PHOFF": False, "PHNIGHT": False}),
    (at(10, 1, 10), {"UNION": False, "FIRM": True, "FIRM-OPTIN": False,
                     "UNION-OPTOUT": True, "PHOFF": False, "PHNIGHT": False}),
    (at(10, 2, 10), {"UNION": False, "FIRM": True, "FIRM-OPTIN": False,
                     "UNION-OPTOUT": True, "PHOFF": False, "PHNIGHT": False}),
    (at(10, 8, 1), {"UNION": False, "FIRM": False, "FIRM-OPTIN": False,
                    "UNION-OPTOUT": False, "PHOFF": False, "PHNIGHT": True}),
    (at(10, 12, 10), {"UNION": True, "FIRM": True, "FIRM-OPTIN": True,
                      "UNION-OPTOUT": True, "PHOFF": True, "PHNIGHT": False}),
    # Past the package's calendar: the statutory days (provisional), not unknown.
    (at(1, 4, 10, year=2027), {"UNION": True, "FIRM": True, "FIRM-OPTIN": True,
                               "UNION-OPTOUT": True, "PHOFF": True, "PHNIGHT": False}),
    (at(1, 1, 10, year=2027), {"UNION": False, "FIRM": True, "FIRM-OPTIN": False,
                               "UNION-OPTOUT": True, "PHOFF": False, "PHNIGHT": False}),
])
def test_sql_answer_agrees_with_open_state(
        client: TestClient, db: psycopg.Connection[Any], when: dt.datetime,
        expected: dict[str, bool | None]) -> None:
    _insert(db, STATIONS)
    rows = _nearest(client, when)
    assert {code: r["open_now"] for code, r in rows.items()} == expected
    for body in STATIONS:
        workdays = follows_workdays(body["host_type"], body.get("official_workdays"))
        is_open, next_change = calendar_open_state(body["opening_hours"], SH, when,
                                                   workdays=workdays)
        assert is_open == expected[body["code"]], body["code"]
        if is_open is not None:
            shown = rows[body["code"]]["next_change"]
            assert shown == (next_change.isoformat() if next_change else None), body["code"]
    assert set(_nearest(client, when, open_now=True)) == {c for c, v in expected.items() if v}


def test_the_choice_is_a_station_field(client: TestClient, keys: dict[str, str],
                                       db: psycopg.Connection[Any]) -> None:
    key = {"Authorization": keys["editor"]}
    body = station_body("WD-1", *P, opening_hours="Mo-Fr 09:00-17:00", host_type="enterprise")
    r = client.post("/v1/stations", json=body, headers=key)
    assert r.status_code == 201, r.text
    assert r.json()["official_workdays"] is None
    kind = "SELECT hours_kind, hours_calendar FROM station WHERE code = 'WD-1'"
    assert db.execute(kind).fetchone() == ("weekly", NO_CALENDAR)
    r = client.patch("/v1/stations/WD-1", json={"version": 1, "official_workdays": True},
                     headers=key)
    assert r.status_code == 200, r.text
    assert r.json()["official_workdays"] is True
    assert db.execute(kind).fetchone() == ("dated", calendar_for("CN").label)
    assert client.get("/v1/stations/WD-1").json()["official_workdays"] is True
    r = client.patch("/v1/stations/WD-1", json={"version": 2, "official_workdays": "maybe"},
                     headers=key)
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "official_workdays"


def test_refresh_after_a_new_calendar(db: psycopg.Connection[Any],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A package upgrade (simulated: an extra day off on Friday 2026-12-18 and a new
    label) recompiles the calendar-dependent stations, reports whose answer changed,
    and a second run finds nothing to do."""
    _insert(db, STATIONS)
    # Rows compiled before calendars were recorded are stale too.
    db.execute("UPDATE station SET hours_calendar = NULL WHERE code = 'FIRM'")
    first = refresh_hours(db, now=NOW)
    assert first.recompiled == 1 and first.changed == []
    assert refresh_hours(db, now=NOW).recompiled == 0

    real = calendar_for("CN")
    newer = replace(real, days_off=real.days_off | {dt.date(2026, 12, 18)},
                    label="CN chinese-calendar 99.0")
    monkeypatch.setattr(calendar_hours, "calendar_for",
                        lambda country: newer if country == "CN" else calendar_for(country))
    done = refresh_hours(db, now=NOW)
    # Every row compiled with the old calendar, not the rules that need none.
    assert done.recompiled == 4
    assert sorted(done.changed) == ["FIRM-OPTIN", "PHNIGHT", "PHOFF", "UNION"]
    assert db.execute("SELECT DISTINCT hours_calendar FROM station WHERE code <> 'FIRM' "
                      "AND code <> 'UNION-OPTOUT'").fetchall() == [("CN chinese-calendar 99.0",)]
    assert refresh_hours(db, now=NOW).recompiled == 0
    friday = at(12, 18, 10)
    assert calendar_open_state("Mo-Fr 09:00-17:00", SH, friday, workdays=True)[0] is False
    assert db.execute(
        "SELECT geo_is_open(hours_kind, open_minutes, open_periods, %s, timezone) "
        "FROM station WHERE code = 'UNION'", (friday,)).fetchone() == (False,)


def test_import_reads_the_choice(client: TestClient, keys: dict[str, str],
                                 db: psycopg.Connection[Any]) -> None:
    header = "code,name,lon,lat,host_type,opening_hours,official_workdays"
    rows = ["W-1,甲,109.5,18.25,enterprise,Mo-Fr 09:00-17:00,是",
            "W-2,乙,109.5,18.26,union_built,Mo-Fr 09:00-17:00,",
            "W-3,丙,109.5,18.27,union_built,Mo-Fr 09:00-17:00,false"]

    def post(lines: list[str]) -> Any:
        data = ("\n".join([header, *lines]) + "\n").encode()
        return client.post("/v1/stations:import", files={"file": ("s.csv", data)},
                           headers={"Authorization": keys["admin"]})

    bad = post([*rows, "W-4,丁,109.5,18.28,enterprise,24/7,maybe"])
    assert bad.status_code == 422
    assert [(e["row"], e["field"]) for e in bad.json()["report"]["errors"]] == [
        (4, "official_workdays")]
    assert post(rows).status_code == 200
    assert db.execute("SELECT code, official_workdays, hours_kind FROM station ORDER BY code"
                      ).fetchall() == [("W-1", True, "dated"), ("W-2", None, "dated"),
                                       ("W-3", False, "weekly")]
    assert post(rows).json()["unchanged"] == 3


def test_mobile_stops_overlap_by_the_real_calendar() -> None:
    """A mobile station at a weekday stop on a make-up Saturday cannot also be at a
    stop scheduled for that date, if it follows the arrangement."""
    from geo_service.operations.stops import StopIn, first_overlap

    weekdays = StopIn(name="A", lon=109.5, lat=18.2, opening_hours="Mo-Fr 08:00-12:00")
    that_day = StopIn(name="B", lon=109.6, lat=18.3, opening_hours="Oct 10 10:00-11:00")
    today = dt.date(2026, 9, 1)
    assert first_overlap([weekdays, that_day], SH, today) is None
    found = first_overlap([weekdays, that_day], SH, today, workdays=True)
    assert found is not None and found[2] == dt.datetime(2026, 10, 10, 10)


def test_hours_refresh_command_after_the_migration(
        db: psycopg.Connection[Any], db_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Rows compiled before migration 0008 (no label; a union-built ``Mo-Fr`` rule was
    weekly then) are recompiled with the calendar once, and say so; then nothing."""
    from geo_service.cli import main
    from geo_service.stations.service import compiled_hours_columns

    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    _insert(db, STATIONS, now=dt.datetime.now(dt.UTC))
    old = compiled_hours_columns("Mo-Fr 09:00-17:00", SH, workdays=False)
    db.execute("UPDATE station SET hours_kind = %(hours_kind)s, "
               "open_minutes = %(open_minutes)s::int4multirange, open_periods = NULL, "
               "unknown_periods = NULL, hours_valid_until = NULL, hours_calendar = NULL "
               "WHERE code IN ('UNION', 'FIRM')", old)
    assert main(["hours", "refresh"]) == 0
    out = capsys.readouterr().out
    assert f"calendar: {calendar_for('CN').label}" in out
    assert "recompiled opening hours of 2 station(s)" in out
    assert "answer changed: UNION\n" in out
    assert main(["hours", "refresh"]) == 0
    out = capsys.readouterr().out
    assert "recompiled opening hours of 0 station(s)" in out and "changed" not in out
    assert db.execute("SELECT hours_kind FROM station WHERE code = 'UNION'").fetchone() == (
        "dated",)
