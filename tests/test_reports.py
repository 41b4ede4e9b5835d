"""Worker reports, the "reported closed" mark, editors' resolutions and confirmations."""

from __future__ import annotations

import asyncio
from typing import Any, get_args

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.domain.auth import create_key
from geo_service.domain.models import REPORT_KINDS
from geo_service.infra.settings import Settings
from geo_service.operations import reports, visits
from geo_service.operations.schemas import ReportKind
from tests.conftest import station_body
from tests.helpers import insert_stations

RATE = 4
THRESHOLD = 3


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Overrides conftest's: the client address comes from X-Forwarded-For; a small limit."""
    return Settings(database_url=db_url, trusted_proxies="127.0.0.1", report_rate_per_hour=RATE,
                    reported_closed_threshold=THRESHOLD, reported_closed_window_h=24,
                    allowed_hosts=["testserver"])


@pytest.fixture
def stations(keys: dict[str, str], areas: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    insert_stations(areas, [
        station_body("T1", 109.50, 18.25, district_code="460204", city_code="460200",
                     province_code="460000"),
        station_body("H1", 109.70, 18.35, district_code="460202", city_code="460200",
                     province_code="460000"),
    ])
    return areas


def who(n: int, device: str | None = None) -> dict[str, str]:
    """Reporter ``n``: its own address and, unless told otherwise, its own device."""
    return {"X-Forwarded-For": f"10.0.0.{n}", "X-Device-Id": device or f"phone-{n}"}


def report(client: TestClient, code: str, headers: dict[str, str], kind: str = "closed",
           **body: Any) -> Any:
    r = client.post(f"/v1/stations/{code}/reports", json={"kind": kind, **body}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def station(client: TestClient, code: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/v1/stations/{code}").json()
    return body


def nearest_mark(client: TestClient, code: str) -> bool:
    found = client.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.50, "k": 5})
    marks = {s["code"]: s["reported_closed"] for s in found.json()["results"]}
    return marks[code]  # listed either way: shown, not hidden


def mark_closed(client: TestClient, code: str = "T1") -> list[int]:
    return [report(client, code, who(n))["id"] for n in range(1, THRESHOLD + 1)]


def test_report_kinds_match_the_model() -> None:
    assert get_args(ReportKind) == REPORT_KINDS


def test_independent_reporters() -> None:
    count = reports.independent_reporters
    assert count([]) == 0
    assert count([("p1", "ip1"), ("p2", "ip2"), ("p3", "ip3")]) == 3
    assert count([("p1", "ip1"), ("p1", "ip2"), ("p2", "ip1")]) == 1  # one phone, one address
    assert count([("p1", "ip1"), ("p1", "ip9"), ("p9", "ip9"), ("p2", "ip2")]) == 2  # a chain
    assert count([("ip1", "ip1"), ("ip1", "ip1"), ("p1", "ip1")]) == 1  # no device id: address


def test_closed_only_at_the_threshold_of_independent_reporters(
        client: TestClient, stations: psycopg.Connection[Any]) -> None:
    for n in range(1, THRESHOLD):
        assert report(client, "T1", who(n))["station_reported_closed"] is False
    # The same phone from another address, or another phone from an address already seen
    # (even through a chain), adds nothing; nor does a report without a device id.
    report(client, "T1", who(9, device="phone-1"))
    report(client, "T1", who(9, device="phone-9"))
    report(client, "T1", who(2, device="phone-10"))
    r = client.post("/v1/stations/T1/reports", json={"kind": "closed"},
                    headers={"X-Forwarded-For": "10.0.0.2"})
    assert r.status_code == 201
    # Other kinds and other stations do not count either.
    report(client, "T1", who(8), kind="moved")
    report(client, "H1", who(7))
    assert station(client, "T1")["reported_closed"] is False
    assert nearest_mark(client, "T1") is False

    r = report(client, "T1", who(THRESHOLD))
    assert r["station_reported_closed"] is True and r["status"] == "open" and r["version"] == 1
    s = station(client, "T1")
    assert s["reported_closed"] is True and s["reported_closed_at"] is not None
    assert s["version"] == 1  # worker feedback is not an edit
    assert nearest_mark(client, "T1") is True
    assert station(client, "H1")["reported_closed"] is False


def test_reports_outside_the_window_do_not_count(
        client: TestClient, stations: psycopg.Connection[Any]) -> None:
    for n in range(1, THRESHOLD):
        report(client, "T1", who(n))
    stations.execute("UPDATE station_report SET created_at = created_at - interval '25 hours'")
    report(client, "T1", who(THRESHOLD))
    assert station(client, "T1")["reported_closed"] is False


def test_simultaneous_reports_reach_the_threshold(
        settings: Settings, db_url: str, stations: psycopg.Connection[Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two reports at once that together make the threshold: the later one sees the first."""
    sync = reports._sync_mark

    async def slow_sync(*args: Any, **kw: Any) -> None:
        await sync(*args, **kw)
        await asyncio.sleep(0.05)  # hold the transaction open after the count

    monkeypatch.setattr(reports, "_sync_mark", slow_sync)

    async def send() -> None:
        conns = [await psycopg.AsyncConnection.connect(db_url, autocommit=True)
                 for _ in range(THRESHOLD)]
        try:
            await reports.create_report(conns[0], settings, "T1", {"kind": "closed"},
                                        visits.Caller("d0", "c0"))
            await asyncio.gather(*(
                reports.create_report(conn, settings, "T1", {"kind": "closed"},
                                      visits.Caller(f"d{i}", f"c{i}"))
                for i, conn in enumerate(conns[1:], start=1)))
        finally:
            for conn in conns:
                await conn.close()

    asyncio.run(send())
    row = stations.execute("SELECT reported_closed_at FROM station WHERE code = 'T1'").fetchone()
    assert row is not None and row[0] is not None


def test_editor_resolution_clears_and_history_is_kept(
        client: TestClient, keys: dict[str, str], stations: psycopg.Connection[Any]) -> None:
    editor = {"Authorization": keys["editor"]}
    ids = mark_closed(client)
    listed = client.get("/v1/reports", params={"station": "T1"}, headers=editor).json()
    assert [r["id"] for r in listed["items"]] == ids

    def decide(report_id: int, action: str, version: int, **extra: Any) -> Any:
        return client.post(f"/v1/reports/{report_id}/resolution",
                           json={"action": action, "version": version, **extra}, headers=editor)

    r = decide(ids[0], "resolved", 1, note="换了新锁，已开门 reopened after a lock change")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["version"]) == ("resolved", 2)
    assert station(client, "T1")["reported_closed"] is False
    assert nearest_mark(client, "T1") is False
    # A stale version is refused with the current one; a wrong transition names the action.
    r = decide(ids[0], "rejected", 1)
    assert r.status_code == 409 and r.json()["error"]["current_version"] == 2
    assert decide(ids[0], "resolved", 2).json()["error"]["fields"][0]["field"] == "action"
    # Reopening puts the report back: the mark returns, and both decisions are kept.
    r = decide(ids[0], "reopened", 2)
    assert r.status_code == 200 and r.json()["status"] == "open"
    assert [d["action"] for d in r.json()["resolutions"]] == ["resolved", "reopened"]
    assert r.json()["resolutions"][0]["editor"] == "editor"
    assert station(client, "T1")["reported_closed"] is True
    # Rejecting (the report was wrong) clears it too.
    assert decide(ids[1], "rejected", 1).status_code == 200
    assert station(client, "T1")["reported_closed"] is False
    detail = client.get(f"/v1/reports/{ids[0]}", headers=editor).json()
    assert detail["version"] == 3 and len(detail["resolutions"]) == 2
    listed = client.get("/v1/reports", params={"status": "all"}, headers=editor).json()
    assert {r["status"] for r in listed["items"]} == {"open", "rejected"}
    # A confirmation refreshes last_confirmed_at but does not clear a mark.
    decide(ids[1], "reopened", 2)
    assert client.post("/v1/stations/T1/confirmations", headers=who(20)).status_code == 201
    assert station(client, "T1")["reported_closed"] is True


def test_keys_roles_and_areas(client: TestClient, keys: dict[str, str],
                              stations: psycopg.Connection[Any]) -> None:
    t1 = report(client, "T1", who(1))["id"]
    h1 = report(client, "H1", who(2), kind="other", comment="门口积水")["id"]
    assert client.get("/v1/reports").status_code == 401
    inspector = f"Bearer {create_key(stations, name='i', role='inspector')}"
    assert client.get("/v1/reports", headers={"Authorization": inspector}).status_code == 403
    scoped = {"Authorization": keys["tianya_editor"]}
    assert [r["id"] for r in client.get("/v1/reports", headers=scoped).json()["items"]] == [t1]
    # Another area's report is answered like an unknown one: ids cannot be probed.
    unknown = client.get("/v1/reports/999999", headers=scoped)
    assert unknown.status_code == 404
    other = client.get(f"/v1/reports/{h1}", headers=scoped)
    assert other.status_code == 404
    assert other.json() == {**unknown.json(), "error": {
        **unknown.json()["error"], "message": f"no report {h1}"}}
    r = client.post(f"/v1/reports/{h1}/resolution", json={"action": "resolved", "version": 1},
                    headers=scoped)
    assert r.status_code == 404 and r.json() == other.json()
    assert client.get(f"/v1/reports/{t1}", headers=scoped).status_code == 200
    admin = {"Authorization": keys["admin"]}
    assert len(client.get("/v1/reports", headers=admin).json()["items"]) == 2
    r = client.get("/v1/reports", params={"area": "460202"}, headers=admin)
    assert [x["id"] for x in r.json()["items"]] == [h1]
    assert client.get("/v1/reports", params={"area": "999"}, headers=admin).status_code == 404
    assert client.get("/v1/reports/999999", headers=admin).status_code == 404
    # Paging: one at a time, then the end.
    page = client.get("/v1/reports", params={"limit": 1}, headers=admin).json()
    rest = client.get("/v1/reports", params={"cursor": page["next_cursor"]},
                      headers=admin).json()
    assert [x["id"] for x in page["items"] + rest["items"]] == [t1, h1]
    assert rest["next_cursor"] is None


def test_report_body_rules(client: TestClient, stations: psycopg.Connection[Any]) -> None:
    def refused(body: dict[str, Any]) -> str:
        r = client.post("/v1/stations/T1/reports", json=body, headers=who(1))
        assert r.status_code == 422, r.text
        field: str = r.json()["error"]["fields"][0]["field"]
        return field

    assert refused({"kind": "amenity_missing"}) == "amenity"
    assert refused({"kind": "amenity_broken", "amenity": "jacuzzi"}) == "amenity"
    assert refused({"kind": "closed", "amenity": "microwave"}) == "amenity"
    assert refused({"kind": "shut"}) == "kind"
    assert refused({"kind": "other", "comment": "x" * 1001}) == "comment"
    assert refused({"kind": "other", "comment": "bad\x00byte"}) == "comment"
    r = report(client, "T1", who(1), kind="amenity_broken", amenity="microwave",
               comment="微波炉坏了\nmicrowave broken")
    assert (r["amenity"], r["comment"]) == ("microwave", "微波炉坏了\nmicrowave broken")
    r = client.post("/v1/stations/NOPE/reports", json={"kind": "closed"}, headers=who(1))
    assert r.status_code == 404
    assert stations.execute("SELECT count(*) FROM station_report").fetchone() == (1,)


def test_a_repeat_from_one_device_is_already_reported_and_stores_nothing(
        client: TestClient, stations: psycopg.Connection[Any]) -> None:
    """Issue 26: the same device, station and kind (and amenity) within the window count
    once; the answer names the earlier report, as the app's "already reported" expects."""
    first = report(client, "T1", who(1), kind="amenity_broken", amenity="microwave")
    assert first["counted"] is True and first["duplicate_of"] is None
    r = client.post("/v1/stations/T1/reports", headers=who(1, device="phone-1"),
                    json={"kind": "amenity_broken", "amenity": "microwave", "comment": "again"})
    assert r.status_code == 200, r.text
    assert (r.json()["counted"], r.json()["id"]) == (False, first["id"])
    assert r.json()["duplicate_of"] == first["created_at"]
    # Another amenity, another kind, another phone, or after the window: new reports.
    report(client, "T1", who(1), kind="amenity_broken", amenity="water_dispenser")
    report(client, "T1", who(1), kind="other")
    report(client, "T1", who(2, device="phone-2"), kind="amenity_broken", amenity="microwave")
    assert stations.execute("SELECT count(*) FROM station_report").fetchone() == (4,)
    stations.execute("UPDATE station_report SET created_at = created_at - interval '31 minutes'")
    assert report(client, "T1", who(3, device="phone-1"), kind="other")["counted"] is True
    assert stations.execute("SELECT count(*) FROM station_report").fetchone() == (5,)


def test_confirmations(client: TestClient, stations: psycopg.Connection[Any]) -> None:
    assert station(client, "T1")["last_confirmed_at"] is None
    r = client.post("/v1/stations/T1/confirmations", headers=who(1))
    assert r.status_code == 201 and r.json()["counted"]
    confirmed = station(client, "T1")["last_confirmed_at"]
    assert confirmed is not None and station(client, "T1")["version"] == 1
    r = client.post("/v1/stations/T1/confirmations", headers=who(1))
    assert r.status_code == 200 and not r.json()["counted"]
    assert station(client, "T1")["last_confirmed_at"] == confirmed
    stations.execute("UPDATE confirmation SET at = at - interval '31 minutes'")
    assert client.post("/v1/stations/T1/confirmations", headers=who(1)).status_code == 201
    assert station(client, "T1")["last_confirmed_at"] > confirmed


def test_a_later_word_from_one_device_replaces_its_earlier_one(
        client: TestClient, stations: psycopg.Connection[Any], keys: dict[str, str]) -> None:
    """Issue 29, item 9: "open" then "closed" from one phone within the window leaves one
    standing word, the later; the earlier row is kept (superseded), not counted."""
    other = client.post("/v1/stations/T1/confirmations", headers=who(5))
    assert other.status_code == 201  # another phone's word stands throughout
    confirmed = client.post("/v1/stations/T1/confirmations", headers=who(1))
    assert confirmed.status_code == 201 and confirmed.json()["replaces"] is None
    assert station(client, "T1")["last_confirmed_at"] == confirmed.json()["at"]

    closed = report(client, "T1", who(1))
    assert closed["replaces"] == confirmed.json()["at"]
    rows = stations.execute("SELECT at, superseded_at IS NOT NULL FROM confirmation "
                            "ORDER BY id").fetchall()
    assert [r[1] for r in rows] == [False, True]  # kept, marked replaced
    # The station's last confirmation is the other phone's, the replaced one no longer counts.
    assert station(client, "T1")["last_confirmed_at"] == other.json()["at"]

    # Closed again: still one standing word (the newer report); the older one leaves the queue.
    again = report(client, "T1", who(1))
    assert again["replaces"] == closed["created_at"]
    editor = {"Authorization": keys["editor"]}
    queue = client.get("/v1/reports", params={"station": "T1"}, headers=editor).json()
    assert [r["id"] for r in queue["items"]] == [again["id"]]
    every = client.get("/v1/reports", params={"station": "T1", "status": "all"},
                       headers=editor).json()["items"]
    assert [(r["id"], r["superseded_at"] is not None) for r in every] == [
        (closed["id"], True), (again["id"], False)]

    # And "open" once more: the report is replaced, the confirmation counted.
    back = client.post("/v1/stations/T1/confirmations", headers=who(1))
    assert back.status_code == 201 and back.json()["replaces"] == again["created_at"]
    assert station(client, "T1")["last_confirmed_at"] == back.json()["at"]
    assert client.get("/v1/reports", params={"station": "T1"}, headers=editor).json()[
        "items"] == []
    standing = stations.execute(
        "SELECT (SELECT count(*) FROM confirmation WHERE superseded_at IS NULL), "
        "(SELECT count(*) FROM station_report WHERE superseded_at IS NULL), "
        "(SELECT count(*) FROM confirmation) + (SELECT count(*) FROM station_report)"
    ).fetchone()
    assert standing == (2, 0, 5)  # two phones' standing words; all five rows kept


def test_a_reporter_taking_back_closed_is_not_counted_toward_the_mark(
        client: TestClient, stations: psycopg.Connection[Any]) -> None:
    mark_closed(client)
    assert station(client, "T1")["reported_closed"] is True
    # Reporter 1 changes its word: two independent reporters remain, short of three.
    assert client.post("/v1/stations/T1/confirmations", headers=who(1)).status_code == 201
    assert station(client, "T1")["reported_closed"] is False
    assert nearest_mark(client, "T1") is False
    # A word without a device id replaces nothing (one address stands for many phones).
    report(client, "T1", who(1))
    r = client.post("/v1/stations/T1/confirmations", headers={"X-Forwarded-For": "10.0.0.1"})
    assert r.status_code == 201 and r.json()["replaces"] is None
    assert station(client, "T1")["reported_closed"] is True


def test_a_malformed_device_id_is_refused_naming_it(
        client: TestClient, stations: psycopg.Connection[Any]) -> None:
    for bad in ("two words", "ü-phone".encode(), "x" * 201, "a/b", ""):
        r = client.post("/v1/stations/T1/confirmations", headers={"X-Device-Id": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["fields"][0]["field"] == "X-Device-Id"
    assert stations.execute("SELECT count(*) FROM confirmation").fetchone() == (0,)


def test_reports_and_confirmations_share_one_rate_limit(
        client: TestClient, stations: psycopg.Connection[Any]) -> None:
    for n in range(RATE - 1):
        report(client, "T1", who(1, device=f"d{n}"), kind="other")
    assert client.post("/v1/stations/T1/confirmations", headers=who(1)).status_code == 201
    for refused in (client.post("/v1/stations/H1/reports", json={"kind": "closed"},
                                headers=who(1, device="new")),
                    client.post("/v1/stations/H1/confirmations", headers=who(1, "new"))):
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["fields"][0]["field"] == "client"
    assert stations.execute("SELECT count(*) FROM station_report").fetchone() == (RATE - 1,)
    assert stations.execute("SELECT count(*) FROM confirmation").fetchone() == (1,)
    assert client.post("/v1/stations/H1/confirmations", headers=who(2)).status_code == 201


EVIL = "https://evil.example"


def test_cross_site_simple_requests_are_refused(client: TestClient,
                                                stations: psycopg.Connection[Any]) -> None:
    """Issue 24, item 10: a page on any site could make its visitors' browsers confirm
    and check in (a form or ``text/plain`` POST needs no CORS preflight). The three
    keyless writes take a JSON body, or none from a client that is not a browser."""
    simple = [
        {"headers": {"Content-Type": "application/x-www-form-urlencoded"}, "content": b""},
        {"headers": {"Content-Type": "application/x-www-form-urlencoded"},
         "content": b"worker_type=courier"},
        {"headers": {"Content-Type": "multipart/form-data; boundary=x"},
         "content": b"--x--\r\n"},
        {"headers": {"Content-Type": "text/plain"}, "content": b'{"kind": "closed"}'},
        {"headers": {}, "content": b""},  # fetch(url, {method: "POST", mode: "no-cors"})
    ]
    n = 0
    for path in ("confirmations", "checkins", "reports"):
        for kw in simple:
            n += 1
            headers = {**who(n), **kw["headers"], "Origin": EVIL}
            r = client.post(f"/v1/stations/T1/{path}", headers=headers, content=kw["content"])
            assert r.status_code == 415, (path, kw, r.text)
            assert r.json()["error"]["fields"][0]["field"] == "Content-Type"
    # A form from a browser that sends no Origin is refused all the same.
    r = client.post("/v1/stations/T1/confirmations", content=b"",
                    headers={**who(90), "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    for table in ("confirmation", "visit", "station_report"):
        assert stations.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    # What the app and the check-in page send (JSON), a script's bodyless call (no Origin),
    # and this service's own pages are taken.
    json_header = {"Content-Type": "application/json"}
    assert client.post("/v1/stations/T1/confirmations",
                       headers={**who(91), **json_header}).status_code == 201
    assert client.post("/v1/stations/T1/checkins", json={"worker_type": "courier"},
                       headers=who(92)).status_code == 201
    assert client.post("/v1/stations/T1/confirmations", headers=who(93)).status_code == 201
    assert client.post("/v1/stations/T1/checkins",
                       headers={**who(94), "Origin": "http://testserver"}).status_code == 201
    assert client.post("/v1/stations/T1/reports", json={"kind": "other"},
                       headers={**who(95), "Origin": EVIL}).status_code == 201
