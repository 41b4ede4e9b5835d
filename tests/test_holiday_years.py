"""Years after the calendar package's last notice (issue 24, item 17).

``chinese-calendar`` 1.11.0 ends on 2026-12-31.  From 2027-01-01 the service falls
back to the statutory holidays (provisional) instead of answering ``open_now: null``,
an operator can enter the year's notice (``geo-service calendar enter``), and
``/healthz`` warns before the official calendar runs out.  "The clock set to
2027-01-04" is the compile instant (``now``) and the query's ``at``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.cli import main
from geo_service.domain.coords import Crs
from geo_service.domain.schemas import StationCreate
from geo_service.hours.calendar_hours import calendar_open_state, provisional_at
from geo_service.hours.calendars import (
    WARN_DAYS,
    calendar_for,
    calendar_health,
    package_last_year,
    use_arrangements,
)
from geo_service.infra.settings import Settings
from geo_service.stations import queries as q
from geo_service.stations.maintenance import refresh_hours
from geo_service.stations.service import to_record
from geo_service.web.app import create_served_app

SH = ZoneInfo("Asia/Shanghai")
P = (109.50, 18.25)
#: The clock: Monday 2027-01-04, 10:00 in China.
MONDAY = dt.datetime(2027, 1, 4, 10, tzinfo=SH)
OFFICE = "Mo-Fr 09:00-17:00"
PH_OFF = "Mo-Fr 09:00-17:00; PH off"

ARRANGEMENT_2027 = """\
year = 2027
notice = "国办发明电〔2026〕99号 (test)"
days_off = ["2027-01-01", "2027-02-05..2027-02-11", "2027-10-01..2027-10-07"]
workdays = ["2027-02-20", 2027-10-09]
"""


@pytest.fixture(autouse=True)
def _package_calendar() -> Iterator[None]:
    """Entered years are process state: leave none behind for other tests."""
    use_arrangements([])
    yield
    use_arrangements([])


def at(month: int, day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2027, month, day, hour, tzinfo=SH)


def _insert(db: psycopg.Connection[Any], now: dt.datetime = MONDAY) -> None:
    bodies = [
        {"code": "BANK", "host_type": "bank_branch", "opening_hours": OFFICE},
        {"code": "PHOFF", "host_type": "sanitation_depot", "opening_hours": PH_OFF},
        {"code": "ALWAYS", "host_type": "enterprise", "opening_hours": OFFICE},
    ]
    records = [to_record(StationCreate.model_validate(
        {"name": b["code"], "lon": P[0] + 0.001 * i, "lat": P[1], **b}).model_dump(),
        Crs.WGS84, now=now) for i, b in enumerate(bodies)]
    with db.transaction(), db.cursor() as cur:
        cur.executemany(q.INSERT_STATION, records)


def _nearest(client: TestClient, when: dt.datetime, open_now: bool = False
             ) -> dict[str, dict[str, Any]]:
    r = client.get("/v1/stations/nearest", params={
        "lat": P[1], "lon": P[0], "k": 10, "at": when.isoformat(),
        "open_now": str(open_now).lower()})
    assert r.status_code == 200, r.text
    return {s["code"]: s for s in r.json()["results"]}


def _answers(client: TestClient, when: dt.datetime) -> dict[str, tuple[bool | None, bool]]:
    return {code: (s["open_now"], s["hours_provisional"])
            for code, s in _nearest(client, when).items()}


# --------------------------------------------------------------------------- pure


def test_statutory_days_after_the_package() -> None:
    """2027 has the days the law fixes (lunar Spring Festival included), no make-up
    days, and is marked provisional; 2026 is the package's, not provisional."""
    assert package_last_year() == 2026
    cal = calendar_for("CN")
    assert 2027 in cal.provisional and 2026 not in cal.provisional
    assert cal.official_until == dt.date(2027, 1, 1)
    # 除夕 to 初三 (Fri 5 - Mon 8 Feb 2027), New Year, 1-3 October, 1-2 May.
    for day in (dt.date(2027, 1, 1), *(dt.date(2027, 2, d) for d in (5, 6, 7, 8)),
                dt.date(2027, 5, 1), dt.date(2027, 5, 2), dt.date(2027, 10, 1),
                dt.date(2027, 10, 3)):
        assert day in cal.days_off, day
    assert not [d for d in cal.workdays if d.year == 2027]
    assert "provisional from 2027" in cal.label
    for workdays, rule in ((True, OFFICE), (False, PH_OFF)):
        assert calendar_open_state(rule, "Asia/Shanghai", MONDAY, workdays=workdays)[0] is True
        assert provisional_at(rule, "Asia/Shanghai", MONDAY, workdays=workdays)
        assert calendar_open_state(rule, "Asia/Shanghai", at(2, 8), workdays=workdays)[0] is False
    # Rules that need no calendar are not provisional.
    assert not provisional_at(OFFICE, "Asia/Shanghai", MONDAY, workdays=False)
    assert not provisional_at(PH_OFF, "Asia/Shanghai", at(12, 7, 10).replace(year=2026),
                              workdays=False)


def test_health_warns_sixty_days_before_the_last_official_day() -> None:
    quiet = calendar_health(dt.date(2026, 12, 31) - dt.timedelta(days=WARN_DAYS + 1))
    assert quiet["warning"] is None and quiet["official_until"] == "2026-12-31"
    loud = calendar_health(dt.date(2026, 12, 31) - dt.timedelta(days=WARN_DAYS))
    assert "2026-12-31" in str(loud["warning"]) and "calendar enter" in str(loud["warning"])
    assert loud["provisional_from"] == "2027-01-01"
    assert calendar_health(dt.date(2027, 1, 4))["warning"] is not None


# --------------------------------------------------------------------------- database


def test_open_on_monday_2027_provisionally(client: TestClient,
                                           db: psycopg.Connection[Any]) -> None:
    """Compiled with the clock at 2027-01-04: the bank branch (official calendar) and
    the ``PH off`` station are open at 10:00, provisionally, and found by
    ``open_now=true``; the Spring Festival days the law fixes are closed."""
    _insert(db)
    assert _answers(client, MONDAY) == {
        "BANK": (True, True), "PHOFF": (True, True), "ALWAYS": (True, False)}
    assert set(_nearest(client, MONDAY, open_now=True)) == {"BANK", "PHOFF", "ALWAYS"}
    for festival in (at(2, 5), at(2, 8)):
        assert _answers(client, festival) == {
            "BANK": (False, True), "PHOFF": (False, True), "ALWAYS": (True, False)}
    labels = dict(db.execute("SELECT code, hours_calendar FROM station").fetchall())
    assert "provisional from 2027" in labels["BANK"] and labels["ALWAYS"] == "none"


def test_memory_index_says_provisional_too(client: TestClient, db: psycopg.Connection[Any],
                                           settings: Settings) -> None:
    """The nearest index's fast path answers the same, ``hours_provisional`` included."""
    from tests.test_nearest_memory import _wait_fresh

    _insert(db)
    on = settings.model_copy(update={"nearest_index": "on"})
    with TestClient(create_served_app(on), client=("127.0.0.1", 50000)) as mem:
        _wait_fresh(mem, since=time.monotonic())
        for when in (MONDAY, at(2, 8)):
            params = {"lat": P[1], "lon": P[0], "k": 10, "at": when.isoformat()}
            fast = mem.get("/v1/stations/nearest", params=params)
            assert fast.headers["X-Nearest-Source"] == "memory"
            assert fast.json()["results"] == client.get(
                "/v1/stations/nearest", params=params).json()["results"]
        assert {s["code"]: s["hours_provisional"] for s in fast.json()["results"]} == {
            "BANK": True, "PHOFF": True, "ALWAYS": False}


def test_entered_year_applies_with_hours_refresh(
        client: TestClient, db: psycopg.Connection[Any], db_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Entering 2027 with a make-up Saturday (20 Feb) and refreshing: the bank branch
    opens that Saturday, closes on the notice's extra day off (Thu 11 Feb), and the
    answers are no longer provisional."""
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    _insert(db)
    saturday, thursday = at(2, 20), at(2, 11)
    assert _answers(client, saturday)["BANK"] == (False, True)
    assert _answers(client, thursday)["BANK"] == (True, True)
    friday_evening = at(2, 19, 18)
    assert _nearest(client, friday_evening)["BANK"]["next_change"] == (
        at(2, 22, 9).isoformat())
    path = tmp_path / "2027.toml"
    path.write_text(ARRANGEMENT_2027, encoding="utf-8")
    assert main(["calendar", "enter", str(path)]) == 0
    assert "entered 2027" in capsys.readouterr().out
    done = refresh_hours(db, now=MONDAY)
    assert sorted(done.changed) == ["BANK", "PHOFF"]
    assert refresh_hours(db, now=MONDAY).recompiled == 0
    label = db.execute("SELECT hours_calendar FROM station WHERE code = 'BANK'").fetchone()
    assert label is not None and "2027 entered (国办发明电〔2026〕99号 (test)" in label[0]
    assert "provisional from 2028" in label[0]
    assert _answers(client, saturday) == {
        "BANK": (True, False), "PHOFF": (False, False), "ALWAYS": (False, False)}
    assert _answers(client, thursday) == {
        "BANK": (False, False), "PHOFF": (False, False), "ALWAYS": (True, False)}
    assert set(_nearest(client, saturday, open_now=True)) == {"BANK"}
    # The next change follows the entered year too (not a cached answer).
    assert _nearest(client, friday_evening)["BANK"]["next_change"] == (
        at(2, 20, 9).isoformat())
    health = client.get("/healthz").json()["calendar"]
    assert health["official_until"] == "2027-12-31" and "2027 entered" in health["label"]
    assert main(["calendar", "show"]) == 0
    assert "2027: 国办发明电〔2026〕99号 (test)" in capsys.readouterr().out


BAD = [
    ('year = 2027\nnotice = "N"\ndays_off = ["2028-01-01"]\n',
     "days_off: 2028-01-01 is outside the year 2027"),
    ('year = 2027\nnotice = "N"\ndays_off = ["2027-02-05..2027-02-11"]\n'
     'workdays = ["2027-02-06"]\n',
     "2027-02-06 is both a day off and a make-up working day"),
    ('year = 2027\nnotice = "N"\ndays_off = ["2027-02-30"]\n',
     "days_off: '2027-02-30' is not a date"),
    ('year = 2027\nnotice = "N"\ndays_off = ["5 Feb"]\n', "days_off: '5 Feb' is not a date"),
    ('year = 2027\nnotice = "N"\ndays_off = ["2027-01-01"]\nmakeup = ["2027-02-20"]\n',
     "unknown key 'makeup'"),
    ('year = 2027\nnotice = "N"\ndays_off = ["2027-01-01"]\nworkdays = ["2027-02-22"]\n',
     "workdays: 2027-02-22 is a Monday"),
    ('year = 2026\nnotice = "N"\ndays_off = ["2026-01-01"]\n', "year: must be a whole year"),
    ('notice = "N"\ndays_off = ["2027-01-01"]\n', "year: missing"),
    ('year = 2027\nnotice = "N"\ndays_off = ["2027-02-11..2027-02-05"]\n',
     "ends before it starts"),
    ("year = 2027\nnotice = \n", "is not valid TOML"),
]


@pytest.mark.parametrize(("text", "problem"), BAD, ids=[p for _t, p in BAD])
def test_bad_arrangements_change_nothing(
        db: psycopg.Connection[Any], db_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str,
        problem: str) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["calendar", "enter", str(path)]) == 2
    err = capsys.readouterr().err
    assert "nothing entered" in err and problem in err, err
    assert db.execute("SELECT count(*) FROM holiday_arrangement").fetchone() == (0,)


def test_remove_makes_a_year_provisional_again(
        db: psycopg.Connection[Any], db_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    path = tmp_path / "2027.toml"
    path.write_text(ARRANGEMENT_2027, encoding="utf-8")
    assert main(["calendar", "enter", str(path)]) == 0
    assert main(["calendar", "enter", str(path)]) == 0
    assert "replaced 2027" in capsys.readouterr().out
    refresh_hours(db, now=MONDAY)
    assert 2027 not in calendar_for("CN").provisional
    assert main(["calendar", "remove", "2027"]) == 0
    assert main(["calendar", "remove", "2027"]) == 2
    assert "no arrangement entered for 2027" in capsys.readouterr().err
    refresh_hours(db, now=MONDAY)
    assert 2027 in calendar_for("CN").provisional
