"""Open now, answered inside SQL: across midnight, 24/7, closed days, time zones."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.helpers import insert_stations

P = (109.50, 18.25)


@pytest.fixture
def stations(db: psycopg.Connection[Any]) -> None:
    def s(code: str, hours: str, dx: float, tz: str = "Asia/Shanghai") -> dict[str, Any]:
        # Weekly patterns: the official calendar (make-up days) is tests/test_holidays.py's.
        return {"code": code, "name": code, "lon": P[0] + dx, "lat": P[1],
                "host_type": "union_built", "official_workdays": False,
                "opening_hours": hours, "timezone": tz}

    insert_stations(db, [
        s("ALWAYS", "24/7", 0.001),
        s("NIGHT", "Mo-Su 18:00-02:00", 0.002),
        s("WEEKDAY", "Mo-Sa 09:00-17:00; Su off", 0.003),
        s("SUNWRAP", "Su 22:00-02:00", 0.004),
        s("BUS", "Mo-Su 10:00-16:00", 0.005),
        s("UTCSITE", "Mo-Su 09:00-17:00", 0.006, tz="UTC"),
    ])


def _open(client: TestClient, at: str) -> set[str]:
    r = client.get("/v1/stations/nearest", params={"lat": P[1], "lon": P[0], "k": 20,
                                                   "open_now": "true", "at": at})
    assert r.status_code == 200, r.text
    return {s["code"] for s in r.json()["results"]}


@pytest.mark.parametrize(("at", "expected"), [
    # 2026-11-23 is a Monday.
    ("2026-11-23T12:00:00+08:00", {"ALWAYS", "WEEKDAY", "BUS"}),
    ("2026-11-23T01:30:00+08:00", {"ALWAYS", "NIGHT", "SUNWRAP"}),  # across midnight
    ("2026-11-23T02:00:00+08:00", {"ALWAYS"}),  # the closing minute is closed
    ("2026-11-22T23:00:00+08:00", {"ALWAYS", "NIGHT", "SUNWRAP", "UTCSITE"}),  # Sunday night
    ("2026-11-23T17:30:00+08:00", {"ALWAYS", "UTCSITE"}),  # 09:30 in UTC
    ("2026-11-22T12:00:00+08:00", {"ALWAYS", "BUS"}),  # Sunday noon: WEEKDAY is off
    ("2026-11-23T16:00:00+08:00", {"ALWAYS", "WEEKDAY"}),  # the bus leaves at 16:00
    ("2026-11-23T15:59:00+08:00", {"ALWAYS", "WEEKDAY", "BUS"}),
    ("2026-11-23T04:00:00", {"ALWAYS"}),  # naive = China time
])
def test_open_now_cases(client: TestClient, stations: None, at: str, expected: set[str]) -> None:
    assert _open(client, at) == expected


def test_next_change_and_open_flag(client: TestClient, stations: None) -> None:
    r = client.get("/v1/stations/nearest", params={"lat": P[1], "lon": P[0], "k": 20,
                                                   "at": "2026-11-23T23:30:00+08:00"})
    rows = {s["code"]: s for s in r.json()["results"]}
    assert rows["NIGHT"]["open_now"] is True
    assert rows["NIGHT"]["next_change"].startswith("2026-11-24T02:00:00")
    assert rows["BUS"]["open_now"] is False
    assert rows["BUS"]["next_change"].startswith("2026-11-24T10:00:00")
    assert rows["ALWAYS"]["open_now"] is True and rows["ALWAYS"]["next_change"] is None


def test_station_page_answers_the_open_state_as_nearest_does(
        client: TestClient, stations: None) -> None:
    """Issue 29, item 5: the station page says open or closed and until when, the same
    answer a nearest result gives at the same instant (one query, one next change)."""
    for at in ("2026-11-23T23:30:00+08:00", "2026-11-23T12:00:00", "2026-11-22T12:00:00"):
        near = {s["code"]: s for s in client.get("/v1/stations/nearest", params={
            "lat": P[1], "lon": P[0], "k": 20, "at": at}).json()["results"]}
        for code, row in near.items():
            page = client.get(f"/v1/stations/{code}", params={"at": at})
            assert page.status_code == 200, page.text
            fields = ("open_now", "next_change", "hours_provisional")
            assert {f: page.json()[f] for f in fields} == {f: row[f] for f in fields}, code
    assert client.get("/v1/stations/NIGHT").json()["open_now"] in (True, False)  # now
    bad = client.get("/v1/stations/NIGHT", params={"at": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "at"


@pytest.mark.parametrize("include_unknown", [False, True])
def test_open_now_uses_the_index_walk(
        db: psycopg.Connection[Any], stations: None, include_unknown: bool) -> None:
    """The plan is a KNN index scan with the open-now test as its filter, not a full scan
    (with or without stations of unknown hours let through)."""
    from geo_service.domain.catalogue import TEN_ONES_MASK
    from geo_service.stations import queries as q

    # The table is tiny (and its statistics depend on earlier tests): show what the
    # plan can do, which is what it does at scale (bench/README.md has the plans).
    for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
        db.execute(f"SET {setting} = off")
    params = {"lon": P[0], "lat": P[1], "radius_m": 50_000.0, "at": "2026-11-23T12:00:00+08",
              "want": 0, "open_now": True, "include_unknown": include_unknown,
              "host_types": None, "statuses": ["open"],
              "min_ten_ones": 0, "ten_mask": TEN_ONES_MASK, "limit": 10}
    plan = "\n".join(r[0] for r in db.execute("EXPLAIN " + q.NEAREST_CANDIDATES, params))
    assert "Index Scan using ix_station_geog" in plan, plan
    assert "Order By: (geog <-> " in plan
    assert "open_minutes @>" in plan  # the open-now test runs inside the walk


def test_dated_hours_answered_in_sql_and_refreshed(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    import datetime as dt

    from geo_service.hours.compiler import open_state
    from geo_service.stations.maintenance import refresh_dated_hours

    # A date rule cannot be held by a weekly pattern, so it is stored as absolute
    # periods; the instants are relative to today so the test never ages (a rule that
    # needs the holiday calendar would: it is unknown past the calendar's last year,
    # see tests/test_holidays.py).
    rule = "Mo-Fr 08:00-12:00; Dec 25 off"
    insert_stations(db, [{"code": "WEEKS", "name": "weeks", "lon": P[0], "lat": P[1],
                          "host_type": "enterprise", "opening_hours": rule}])
    assert db.execute("SELECT hours_kind FROM station").fetchone() == ("dated",)
    china = dt.timezone(dt.timedelta(hours=8))
    day = dt.datetime.now(china).date() + dt.timedelta(days=3)
    monday = day + dt.timedelta(days=(7 - day.weekday()) % 7)
    at = dt.datetime.combine(monday, dt.time(9, 0), china)
    while not open_state(rule, "Asia/Shanghai", at)[0]:  # that Monday is Christmas
        at += dt.timedelta(days=7)
    assert _open(client, at.isoformat()) == {"WEEKS"}
    assert _open(client, (at + dt.timedelta(hours=4)).isoformat()) == set()
    assert _open(client, (at + dt.timedelta(days=5)).isoformat()) == set()  # Saturday
    # Past the horizon the answer is "not open" until the hours are refreshed.
    db.execute("UPDATE station SET hours_valid_until = now() - interval '1 day', "
               "open_periods = '{}'")
    assert _open(client, at.isoformat()) == set()
    version = db.execute("SELECT version FROM station").fetchone()
    assert refresh_dated_hours(db) == 1
    assert _open(client, at.isoformat()) == {"WEEKS"}
    assert db.execute("SELECT version FROM station").fetchone() == version
    assert db.execute("SELECT hours_valid_until > now() + interval '300 days' FROM station"
                      ).fetchone() == (True,)


def test_the_hot_statement_fits_psycopg_parse_cache() -> None:
    """Longer statements are re-parsed on every request (measured: ~8% of the API's CPU)."""
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

    from geo_service.stations import queries as q

    assert len(q.NEAREST_CANDIDATES.encode()) <= MAX_CACHED_STATEMENT_LENGTH
