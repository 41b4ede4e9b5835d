"""Check-ins: counted once per device per window, rate-limited, and counted up correctly."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, get_args

import psycopg
import pytest
from fastapi.testclient import TestClient
from playwright import sync_api

from geo_service.domain.models import WORKER_TYPES
from geo_service.infra.settings import Settings
from geo_service.operations import visits
from geo_service.operations.schemas import WorkerType
from tests.conftest import station_body
from tests.helpers import chromium, insert_stations, live_server

TIANYA = {"district_code": "460204", "district": "天涯区", "city_code": "460200",
          "province_code": "460000"}
HAITANG = {"district_code": "460202", "district": "海棠区", "city_code": "460200",
           "province_code": "460000"}
RATE = 5
CST = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Overrides conftest's: the client address comes from X-Forwarded-For; a small limit."""
    return Settings(database_url=db_url, trusted_proxies="127.0.0.1", checkin_rate_per_hour=RATE,
                    allowed_hosts=["testserver"])


@pytest.fixture
def stations(areas: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    insert_stations(areas, [
        station_body("A", 109.50, 18.25, name="天涯驿站 <A&B>", **TIANYA),
        station_body("B", 109.51, 18.26, **TIANYA),
        station_body("C", 109.70, 18.35, **HAITANG),
        station_body("X", 116.40, 39.90),  # no district
        station_body("SHUT", 109.52, 18.25, status="closed", **TIANYA),
    ])
    return areas


def who(device: str | None = None, ip: str = "10.0.0.1") -> dict[str, str]:
    headers = {"X-Forwarded-For": ip}
    if device:
        headers["X-Device-Id"] = device
    return headers


def visit_count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM visit").fetchone()
    return int(row[0]) if row else 0


def test_worker_types_match_the_model() -> None:
    assert get_args(WorkerType) == WORKER_TYPES


def test_checkin_counts_once_per_device_per_window(
        client: TestClient, stations: psycopg.Connection[Any]) -> None:
    r = client.post("/v1/stations/A/checkins", json={"worker_type": "courier"},
                    headers=who("phone-1"))
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["counted"] and first["worker_type"] == "courier" and first["at"]
    r = client.post("/v1/stations/A/checkins", json={}, headers=who("phone-1", "10.9.9.9"))
    assert r.status_code == 200 and not r.json()["counted"]
    assert r.json()["duplicate_of"] == first["at"]
    assert visit_count(stations) == 1
    # Another device, or the same device at another station, counts.
    assert client.post("/v1/stations/A/checkins", headers=who("phone-2")).status_code == 201
    assert client.post("/v1/stations/B/checkins", headers=who("phone-1")).status_code == 201
    # After the window the same device counts again (back-date instead of sleeping).
    stations.execute("UPDATE visit SET at = at - interval '31 minutes'")
    assert client.post("/v1/stations/A/checkins", headers=who("phone-1")).status_code == 201
    assert visit_count(stations) == 4


def test_without_device_id_the_client_address_counts_once(
        client: TestClient, stations: psycopg.Connection[Any]) -> None:
    assert client.post("/v1/stations/A/checkins", headers=who(ip="10.0.0.7")).status_code == 201
    assert client.post("/v1/stations/A/checkins", headers=who(ip="10.0.0.7")).status_code == 200
    assert client.post("/v1/stations/A/checkins", headers=who(ip="10.0.0.8")).status_code == 201
    # A device with an id behind the same address is told apart.
    assert client.post("/v1/stations/A/checkins",
                       headers=who("phone-9", "10.0.0.7")).status_code == 201
    assert visit_count(stations) == 3


def test_rate_limit_per_client(client: TestClient, stations: psycopg.Connection[Any]) -> None:
    for i in range(RATE):
        r = client.post("/v1/stations/A/checkins", headers=who(f"script-{i}"))
        assert r.status_code == 201, (i, r.text)
    r = client.post("/v1/stations/B/checkins", headers=who("script-new"))
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 3600
    assert r.json()["error"]["fields"][0]["field"] == "client"
    assert visit_count(stations) == RATE
    # Another address is not affected; an hour later the first one may go on.
    assert client.post("/v1/stations/B/checkins", headers=who("x", "10.0.0.2")).status_code == 201
    stations.execute("UPDATE visit SET at = at - interval '61 minutes'")
    assert client.post("/v1/stations/B/checkins", headers=who("script-new")).status_code == 201


def test_a_forged_forwarded_for_entry_does_not_dodge_the_limit(
        client: TestClient, stations: psycopg.Connection[Any]) -> None:
    """The trusted proxy appends the address it saw; earlier entries are the client's word."""
    for i in range(RATE):
        r = client.post("/v1/stations/A/checkins",
                        headers=who(f"s-{i}", f"203.0.113.{i}, 10.0.0.7"))
        assert r.status_code == 201, (i, r.text)
    r = client.post("/v1/stations/A/checkins", headers=who("s-x", "198.51.100.1, 10.0.0.7"))
    assert r.status_code == 429


def test_refusals_name_the_field_and_store_nothing(
        client: TestClient, stations: psycopg.Connection[Any]) -> None:
    r = client.post("/v1/stations/SHUT/checkins", headers=who("p"))
    assert r.status_code == 409 and r.json()["error"]["fields"][0]["field"] == "code"
    r = client.post("/v1/stations/NOPE/checkins", headers=who("p"))
    assert r.status_code == 404 and r.json()["error"]["fields"][0]["field"] == "code"
    r = client.post("/v1/stations/A/checkins", json={"worker_type": "pilot"}, headers=who("p"))
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "worker_type"
    r = client.post("/v1/stations/A/checkins", json={"name": "张三"}, headers=who("p"))
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "name"
    assert visit_count(stations) == 0


def test_simultaneous_taps_count_once(settings: Settings, db_url: str,
                                      stations: psycopg.Connection[Any],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Three taps at once from one phone: the lock makes the later ones see the first."""
    caller = visits.Caller(device="same-phone", client="same-client")
    lookup = visits.earlier_within

    async def slow_lookup(*args: Any) -> dt.datetime | None:
        found = await lookup(*args)
        await asyncio.sleep(0.05)  # widen the gap between the look and the insert
        return found

    monkeypatch.setattr(visits, "earlier_within", slow_lookup)

    async def taps() -> list[dict[str, Any]]:
        conns = [await psycopg.AsyncConnection.connect(db_url, autocommit=True)
                 for _ in range(3)]
        try:
            return list(await asyncio.gather(
                *(visits.check_in(conn, settings, "A", None, caller) for conn in conns)))
        finally:
            for conn in conns:
                await conn.close()

    results = asyncio.run(taps())
    assert sorted(r["counted"] for r in results) == [False, False, True]
    assert visit_count(stations) == 1


def test_checkin_page_and_link(client: TestClient, stations: psycopg.Connection[Any]) -> None:
    r = client.get("/v1/checkin/A")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "天涯驿站 &lt;A&amp;B&gt;" in r.text and "<A&B>" not in r.text
    assert 'data-type="truck_driver"' in r.text and "跳过，直接签到" in r.text
    assert "http" not in r.text.split("<script>")[1]  # no external assets
    cookie = r.headers["set-cookie"].lower()
    assert "geo_device=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "max-age=31536000" in cookie
    # The page's own POST carries the cookie, so a second tap is a repeat.
    assert client.post("/v1/stations/A/checkins").status_code == 201
    assert client.post("/v1/stations/A/checkins").status_code == 200
    assert "set-cookie" not in client.get("/v1/checkin/A").headers
    # A closed station's page shows no buttons; an unknown code is a 404.
    assert "<button" not in client.get("/v1/checkin/SHUT").text
    assert client.get("/v1/checkin/NOPE").status_code == 404

    link = client.get("/v1/stations/A/checkin-link").json()
    assert link["url"] == "http://testserver/v1/checkin/A"
    # segno is a pinned dependency: the QR is always there, and it is this link's.
    svg = link["qr_svg"]
    assert svg.startswith("<svg") and svg.endswith("</svg>"), svg
    assert svg == visits.qr_svg("http://testserver/v1/checkin/A")
    assert svg != visits.qr_svg("http://testserver/v1/checkin/B")
    assert client.get("/v1/stations/NOPE/checkin-link").status_code == 404


# --- counts ----------------------------------------------------------------------------------

VISITS = [  # (station, local time, worker type)
    ("A", dt.datetime(2024, 5, 31, 0, 0, tzinfo=CST), "courier"),      # first instant of range
    ("A", dt.datetime(2024, 5, 31, 23, 30, tzinfo=CST), "sanitation"),  # UTC 15:30 on the 31st
    ("A", dt.datetime(2024, 6, 1, 0, 10, tzinfo=CST), None),            # UTC 16:10 on the 31st
    ("B", dt.datetime(2024, 6, 2, 23, 59, tzinfo=CST), "courier"),      # Sunday: ISO week 22
    ("C", dt.datetime(2024, 6, 3, 0, 0, tzinfo=CST), "delivery"),       # Monday: week 23
    ("X", dt.datetime(2024, 6, 3, 12, 0, tzinfo=CST), "courier"),
    ("C", dt.datetime(2024, 6, 4, 0, 0, tzinfo=CST), "courier"),        # after the range
    ("B", dt.datetime(2024, 5, 30, 23, 59, tzinfo=CST), "courier"),     # before it
]
RANGE = {"from": "2024-05-31", "to": "2024-06-03"}


@pytest.fixture
def visited(stations: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    with stations.cursor() as cur:
        cur.executemany(
            "INSERT INTO visit (station_id, at, worker_type) "
            "SELECT id, %s, %s FROM station WHERE code = %s",
            [(at, wt, code) for code, at, wt in VISITS])
    return stations


def counts(client: TestClient, group: str, **params: str) -> dict[str, Any]:
    r = client.get("/v1/visits/counts", params={"group": group, **RANGE, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["total"] == sum(row["count"] for row in body["rows"])
    return body


def table(body: dict[str, Any]) -> dict[str | None, int]:
    return {row["key"]: row["count"] for row in body["rows"]}


def test_counts_by_local_day_week_and_month(client: TestClient,
                                            visited: psycopg.Connection[Any]) -> None:
    assert table(counts(client, "day")) == {
        "2024-05-31": 2, "2024-06-01": 1, "2024-06-02": 1, "2024-06-03": 2}
    weeks = counts(client, "week")
    assert table(weeks) == {"2024-W22": 4, "2024-W23": 2}
    assert weeks["rows"][0]["label"] == "2024-05-27"  # the Monday the week starts on
    assert table(counts(client, "month")) == {"2024-05": 2, "2024-06": 4}
    # Days without check-ins are listed with zero.
    assert table(counts(client, "day", to="2024-06-05"))["2024-06-05"] == 0


def test_counts_by_station_district_and_worker_type(
        client: TestClient, visited: psycopg.Connection[Any]) -> None:
    by_station = counts(client, "station")
    assert table(by_station) == {"A": 3, "B": 1, "C": 1, "X": 1}
    assert by_station["rows"][0]["label"] == "天涯驿站 <A&B>"
    by_district = counts(client, "district")
    assert table(by_district) == {"460204": 4, "460202": 1, None: 1}
    assert by_district["total"] == by_station["total"] == 6
    types = counts(client, "worker_type")
    assert table(types) == {"courier": 3, "delivery": 1, "sanitation": 1, None: 1}
    assert {row["key"]: row["label"] for row in types["rows"]}["courier"] == "快递员 / Courier"
    # Filters: an area at any level, one station.
    assert table(counts(client, "station", area="460204")) == {"A": 3, "B": 1}
    assert counts(client, "district", area="460200")["total"] == 5
    assert counts(client, "day", station="A")["total"] == 3


def test_district_sums_equal_station_totals(client: TestClient,
                                            visited: psycopg.Connection[Any]) -> None:
    params = {"from": "2024-01-01", "to": "2024-12-31"}
    stations = counts(client, "station", **params)["rows"]
    codes = dict(visited.execute("SELECT code, district_code FROM station").fetchall())
    per_district: dict[str | None, int] = {}
    for row in stations:
        per_district[codes[row["key"]]] = per_district.get(codes[row["key"]], 0) + row["count"]
    assert table(counts(client, "district", **params)) == per_district
    for area in ("460204", "460202", "460200"):
        total = counts(client, "district", area=area, **params)["total"]
        assert total == counts(client, "station", area=area, **params)["total"]


def test_counts_refuse_bad_input(client: TestClient, visited: psycopg.Connection[Any]) -> None:
    def problem(**params: str) -> tuple[int, str]:
        r = client.get("/v1/visits/counts", params=params)
        return r.status_code, r.json()["error"]["fields"][0]["field"]

    assert problem(area="999999") == (404, "area")
    assert problem(station="NOPE") == (404, "station")
    assert problem(**{"from": "2024-06-03", "to": "2024-05-31"}) == (422, "from")
    assert problem(**{"from": "2020-01-01", "to": "2024-12-31"}) == (422, "to")
    assert problem(group="year") == (422, "group")
    assert problem(**{"from": "0001-01-01", "to": "0001-01-02"}) == (422, "from")
    # The default range is the last 30 local days.
    body = client.get("/v1/visits/counts", params={"group": "day"}).json()
    assert len(body["rows"]) == 30


@pytest.mark.browser  # launches Chromium itself: no browser fixture to mark it by
def test_checkin_page_in_a_browser(db_url: str, stations: psycopg.Connection[Any]) -> None:
    """A tap on the page's button checks in with the worker type; a second tap is a repeat."""
    with live_server(db_url) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(),
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/v1/checkin/A")
        page.click("button[data-type=courier]")
        sync_api.expect(page.locator("#msg")).to_contain_text("Checked in")
        page.reload()
        page.click("button[data-type='']")
        sync_api.expect(page.locator("#msg")).to_contain_text("already checked in")
        browser.close()
    assert errors == []
    rows = stations.execute("SELECT worker_type, device_hash IS NOT NULL FROM visit").fetchall()
    assert rows == [("courier", True)]


def test_dates_at_the_ends_of_the_calendar_are_refused_not_crashed(client: TestClient) -> None:
    """Found by schemathesis: a default 'from' 29 days before 0001-01-01 overflowed."""
    for params in ({"to": "0001-01-01"}, {"from": "9999-12-31"}, {"to": "9999-12-31"}):
        r = client.get("/v1/visits/counts", params={"group": "week", **params})
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["fields"][0]["field"] in ("from", "to")


# --- months are whole calendar months (issue 27) ----------------------------------------------


def test_month_counts_default_to_whole_calendar_months(
        client: TestClient, stations: psycopg.Connection[Any]) -> None:
    """"November" means all of November: without dates, group=month counts the previous
    and the current calendar month, and a month cut short is labelled as partial."""
    today = dt.datetime.now(CST).date()
    first_prev = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    stations.execute(
        "INSERT INTO visit (station_id, at, worker_type) SELECT id, %s, 'courier' "
        "FROM station WHERE code = 'A'",
        (dt.datetime.combine(first_prev, dt.time(0, 5), CST),))
    r = client.get("/v1/visits/counts", params={"group": "month"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["from"] == first_prev.isoformat() and body["to"] == today.isoformat()
    prev, cur = body["rows"]
    assert prev == {"key": f"{first_prev:%Y-%m}", "label": None, "count": 1, "partial": False}
    month_ends = (today + dt.timedelta(days=1)).month != today.month
    assert cur["key"] == f"{today:%Y-%m}" and cur["partial"] is not month_ends
    if not month_ends:
        assert cur["label"] == f"{today:%Y-%m}-01 – {today.isoformat()} (partial month)"


def test_partial_months_and_weeks_are_labelled() -> None:
    first, last = visits.count_range(None, None, "Asia/Shanghai", group="month",
                                     today=dt.date(2026, 12, 7))
    assert (first, last) == (dt.date(2026, 11, 1), dt.date(2026, 12, 7))
    rows = visits._time_rows("month", {}, dt.date(2026, 10, 15), dt.date(2026, 12, 31))
    assert [(r["key"], r["partial"], r["label"]) for r in rows] == [
        ("2026-10", True, "2026-10-15 – 2026-10-31 (partial month)"),
        ("2026-11", False, None), ("2026-12", False, None)]
    # Other groupings keep the last 30 days; an explicit range is honoured as given.
    assert visits.count_range(None, None, "Asia/Shanghai", group="day",
                              today=dt.date(2026, 12, 7))[0] == dt.date(2026, 11, 8)
    weeks = visits._time_rows("week", {}, dt.date(2026, 12, 2), dt.date(2026, 12, 7))
    assert [r["partial"] for r in weeks] == [True, True]
