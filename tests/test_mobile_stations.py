"""Mobile stations: schedules of stops, the overlap check, and where nearest places them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.operations.stops import StopIn, first_overlap
from tests.conftest import station_body

BASE = (109.500, 18.250)     # the bus depot, Tianya district
P1 = (109.5300, 18.2600)     # truck drivers' gathering point, 10:00-16:00 every day
P2 = (109.5600, 18.2900)     # evening stop, 17:00-20:00 weekdays
P3 = (109.4800, 18.3000)     # weekend mornings, December 2026 only
JIYANG = (109.55, 18.27)
TZ8 = "+08:00"


def at(day: str, hm: str) -> str:
    return f"{day}T{hm}:00{TZ8}"


def schedule() -> list[dict[str, Any]]:
    return [
        {"name": "货车司机集散点", "lon": P1[0], "lat": P1[1],
         "opening_hours": "Mo-Su 10:00-16:00"},
        {"name": "夜间停靠点", "lon": P2[0], "lat": P2[1], "opening_hours": "Mo-Fr 17:00-20:00"},
        {"name": "周末早市", "lon": P3[0], "lat": P3[1], "opening_hours": "Sa,Su 07:00-09:00",
         "valid_from": "2026-12-01", "valid_to": "2026-12-31"},
    ]


@pytest.fixture
def bus(client: TestClient, keys: dict[str, str]) -> dict[str, Any]:
    """A cooling bus with the three-stop schedule; its code is BUS-1."""
    r = client.post("/v1/stations", headers={"Authorization": keys["editor"]},
                    json=station_body("BUS-1", *BASE, host_type="mobile",
                                      name="【示例】防暑降温流动服务车",
                                      opening_hours="Mo-Su 07:00-20:00"))
    assert r.status_code == 201, r.text
    r = client.put("/v1/stations/BUS-1/stops", headers={"Authorization": keys["editor"]},
                   json={"stops": schedule(), "version": 1})
    assert r.status_code == 200, r.text
    return dict(r.json())


def near(client: TestClient, where: tuple[float, float], when: str,
         **extra: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/stations/nearest", params={
        "lon": where[0], "lat": where[1], "k": 5, "radius_m": 5000, "at": when, **extra})
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


def codes(rows: list[dict[str, Any]]) -> list[str]:
    return [r["code"] for r in rows]


def test_bus_is_at_its_stop_inside_the_window_and_nowhere_outside(
        client: TestClient, bus: dict[str, Any]) -> None:
    assert bus["version"] == 2 and [s["seq"] for s in bus["stops"]] == [1, 2, 3]
    day = "2026-12-01"  # a Tuesday
    inside = near(client, P1, at(day, "12:00"))
    assert codes(inside) == ["BUS-1"]
    b = inside[0]
    assert (b["lon"], b["lat"]) == pytest.approx(P1, abs=1e-7)
    assert b["distance_m"] == pytest.approx(0, abs=0.01)
    assert b["open_now"] is True and b["current_stop"]["seq"] == 1
    assert b["next_change"].startswith(f"{day}T16:00")  # when it leaves the stop
    assert codes(near(client, P1, at(day, "15:59"))) == ["BUS-1"]
    # The window ends at 16:00: at 16:00 exactly it has left, and is at no other stop.
    assert near(client, P1, at(day, "16:00")) == []
    assert near(client, P2, at(day, "16:00")) == []
    assert near(client, P1, at(day, "09:59")) == []
    # Not at its depot either, even with open_now off and a wide radius.
    assert near(client, BASE, at(day, "12:00"), radius_m=1000) == []
    evening = near(client, P2, at(day, "18:30"), open_now="true")
    assert codes(evening) == ["BUS-1"] and evening[0]["current_stop"]["seq"] == 2
    # A future instant answers where it will be: Saturday 2026-12-05 08:00 at stop 3
    # (inside its December range), but not on a Saturday in January.
    assert codes(near(client, P3, at("2026-12-05", "08:00"))) == ["BUS-1"]
    assert near(client, P3, at("2027-01-02", "08:00")) == []


def test_fixed_stations_and_buses_share_one_distance_order(
        client: TestClient, keys: dict[str, str], bus: dict[str, Any]) -> None:
    for code, dx in (("FIX-NEAR", 0.001), ("FIX-FAR", 0.02)):
        r = client.post("/v1/stations", headers={"Authorization": keys["editor"]},
                        json=station_body(code, P1[0] + dx, P1[1]))
        assert r.status_code == 201
    probe = (P1[0] + 0.004, P1[1])  # ~420 m east of the stop; FIX-NEAR is ~320 m
    rows = near(client, probe, at("2026-12-01", "12:00"))
    assert codes(rows) == ["FIX-NEAR", "BUS-1", "FIX-FAR"]
    assert [r["distance_m"] for r in rows] == sorted(r["distance_m"] for r in rows)
    assert rows[0]["current_stop"] is None


def test_schedule_reads_with_the_current_stop(client: TestClient, bus: dict[str, Any]) -> None:
    r = client.get("/v1/stations/BUS-1/stops", params={"at": at("2026-12-02", "11:00")})
    assert r.status_code == 200
    assert r.json()["current_stop"]["name"] == "货车司机集散点"
    r = client.get("/v1/stations/BUS-1/stops", params={"at": at("2026-12-02", "16:30")})
    assert r.json()["current_stop"] is None
    assert client.get("/v1/stations/NOPE/stops").status_code == 404
    # Issue 12's one rule for instants: a time without an offset is China time (it was a 422).
    r = client.get("/v1/stations/BUS-1/stops", params={"at": "2026-12-02T11:00:00"})
    assert r.status_code == 200, r.text
    assert r.json()["at"] == "2026-12-02T11:00:00+08:00"
    assert r.json()["current_stop"]["name"] == "货车司机集散点"
    for bad in ("0001-01-01T00:00:00", "2200-01-01T00:00:00+08:00"):
        r = client.get("/v1/stations/BUS-1/stops", params={"at": bad})
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "at", r.text


def test_overlapping_stops_are_refused_and_nothing_changes(
        client: TestClient, keys: dict[str, str], bus: dict[str, Any],
        db: psycopg.Connection[Any]) -> None:
    bad = schedule()
    bad[1]["opening_hours"] = "Mo-Fr 15:00-20:00"  # overlaps stop 0's 10:00-16:00
    r = client.put("/v1/stations/BUS-1/stops", headers={"Authorization": keys["editor"]},
                   json={"stops": bad, "version": 2})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["fields"][0]["field"] == "stops[1].opening_hours"
    assert "overlaps stop 0" in err["fields"][0]["problem"]
    assert "15:00–16:00" in err["fields"][0]["problem"]
    rows = db.execute("SELECT seq, opening_hours FROM station_stop ORDER BY seq").fetchall()
    assert rows == [(s["seq"], s["opening_hours"]) for s in bus["stops"]]
    assert rows[1] == (2, "Mo-Fr 17:00-20:00")
    assert client.get("/v1/stations/BUS-1").json()["version"] == 2
    # Back to back is not an overlap: one stop ends at 16:00, the next starts at 16:00.
    ok = schedule()
    ok[1]["opening_hours"] = "Mo-Fr 16:00-20:00"
    r = client.put("/v1/stations/BUS-1/stops", headers={"Authorization": keys["editor"]},
                   json={"stops": ok, "version": 2})
    assert r.status_code == 200 and r.json()["version"] == 3
    assert codes(near(client, P2, at("2026-12-01", "16:00"))) == ["BUS-1"]


def test_overlap_check_across_date_ranges_and_dated_rules() -> None:
    today = dt.date(2026, 11, 30)
    weekly = StopIn(name="A", lon=109.5, lat=18.2, opening_hours="Mo-Su 11:00-13:00",
                    valid_from=dt.date(2027, 1, 1))
    december = StopIn(name="B", lon=109.6, lat=18.3, opening_hours="Dec 24 10:00-12:00")
    # B is only on 24 December; A starts in January: no overlap…
    assert first_overlap([weekly, december], "Asia/Shanghai", today) is None
    # …until A's range reaches back into December.
    early = weekly.model_copy(update={"valid_from": dt.date(2026, 12, 20)})
    found = first_overlap([early, december], "Asia/Shanghai", today)
    assert found is not None
    a, b, start, end = found
    assert (a, b) == (0, 1)
    assert (start, end) == (dt.datetime(2026, 12, 24, 11, 0), dt.datetime(2026, 12, 24, 12, 0))


def test_schedule_writes_need_a_mobile_station_a_version_and_the_area(
        client: TestClient, keys: dict[str, str], bus: dict[str, Any]) -> None:
    put = "/v1/stations/BUS-1/stops"
    assert client.put(put, json={"stops": [], "version": 2}).status_code == 401
    r = client.put(put, headers={"Authorization": keys["editor"]}, json={"stops": []})
    assert r.status_code == 428
    r = client.put(put, headers={"Authorization": keys["editor"]},
                   json={"stops": [], "version": 1})
    assert r.status_code == 409 and r.json()["error"]["current_version"] == 2
    r = client.post("/v1/stations", headers={"Authorization": keys["editor"]},
                    json=station_body("FIX-1", *BASE))
    r = client.put("/v1/stations/FIX-1/stops", headers={"Authorization": keys["editor"]},
                   json={"stops": schedule(), "version": 1})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "stops"
    # A bus based in Jiyang cannot be scheduled by a Tianya editor.
    client.post("/v1/stations", headers={"Authorization": keys["editor"]},
                json=station_body("BUS-J", *JIYANG, host_type="mobile"))
    r = client.put("/v1/stations/BUS-J/stops", headers={"Authorization": keys["tianya_editor"]},
                   json={"stops": schedule(), "version": 1})
    assert r.status_code == 403
    bad_hours = schedule()
    bad_hours[0]["opening_hours"] = "Mo-Xx 10:00"
    r = client.put(put, headers={"Authorization": keys["editor"]},
                   json={"stops": bad_hours, "version": 2})
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "stops.0.opening_hours"
    # Clearing the schedule makes it a fixed station again, at its depot.
    r = client.put(put, headers={"Authorization": keys["editor"]},
                   json={"stops": [], "version": 2})
    assert r.status_code == 200 and r.json()["stops"] == []
    assert sorted(codes(near(client, BASE, at("2026-12-01", "12:00")))) == ["BUS-1", "FIX-1"]


def test_schedule_changes_reach_the_change_feed(client: TestClient,
                                                bus: dict[str, Any]) -> None:
    entries = client.get("/v1/feeds/changes").json()["changes"]
    mine = [e for e in entries if e["code"] == "BUS-1"]
    assert [e["version"] for e in mine] == [2]


def test_feeds_show_the_stops_and_the_current_one(client: TestClient,
                                                  bus: dict[str, Any]) -> None:
    import jsonschema

    feed = client.get("/v1/feeds/stations.geojson").json()
    schema = client.get("/v1/feeds/schemas/stations.json").json()
    jsonschema.Draft202012Validator(schema).validate(feed)
    (props,) = [f["properties"] for f in feed["features"] if f["id"] == "BUS-1"]
    assert [(s["seq"], s["lon"], s["lat"]) for s in props["stops"]] == [
        (1, *P1), (2, *P2), (3, *P3)]
    # The feed's current stop is the schedule's at the feed's own instant.
    then = client.get("/v1/stations/BUS-1/stops", params={"at": feed["open_now_at"]}).json()
    assert props["current_stop"] == (then["current_stop"] or {}).get("seq")
    item = client.get("/ogc/collections/stations/items/BUS-1").json()
    assert len(item["properties"]["stops"]) == 3


def test_dated_stop_hours_are_refreshed_with_the_stations(
        client: TestClient, keys: dict[str, str], bus: dict[str, Any],
        db: psycopg.Connection[Any]) -> None:
    from geo_service.stations.maintenance import refresh_dated_hours

    stops = schedule()
    stops[2]["opening_hours"] = "Dec 24 07:00-09:00"  # a dated rule: compiled to a horizon
    r = client.put("/v1/stations/BUS-1/stops", headers={"Authorization": keys["editor"]},
                   json={"stops": stops, "version": 2})
    assert r.status_code == 200, r.text
    db.execute("UPDATE station_stop SET hours_valid_until = now() - interval '1 day', "
               "open_periods = '{}' WHERE hours_kind = 'dated'")
    assert refresh_dated_hours(db, within_days=60) == 1
    row = db.execute("SELECT hours_valid_until > now() + interval '300 days', "
                     "open_periods <> '{}' FROM station_stop WHERE seq = 3").fetchone()
    assert row == (True, True)
