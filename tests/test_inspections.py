"""Inspections and awards: the latest inspection drives the station, history stays, keys stay
in their area, and the planners' views (overdue, trend, missing items) add up."""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.domain.auth import create_key
from geo_service.domain.catalogue import TEN_ONES
from geo_service.operations.inspections import china_today
from tests.conftest import station_body

TIANYA = (109.45, 18.28)   # sample district 460204
TIANYA_2 = (109.50, 18.25)
JIYANG = (109.55, 18.27)   # sample district 460203
TODAY = china_today()


def ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


def items(**states: str) -> dict[str, str]:
    """All ten present, except the ones given."""
    return {a.code: states.get(a.code, "present") for a in TEN_ONES}


def inspect(client: TestClient, key: str, code: str, on: str,
            states: dict[str, str] | None = None, **extra: Any) -> Any:
    body = {"inspected_on": on, "items": states or items(), **extra}
    return client.post(f"/v1/stations/{code}/inspections", json=body,
                       headers={"Authorization": key})


@pytest.fixture
def world(client: TestClient, keys: dict[str, str]) -> dict[str, str]:
    """Stations T-1, T-2 (Tianya), J-1 (Jiyang) and X-1 (Tianya, closed); keys incl. inspectors."""
    made: list[tuple[str, tuple[float, float], dict[str, Any]]] = [
        ("T-1", TIANYA, {}), ("T-2", TIANYA_2, {}), ("J-1", JIYANG, {}),
        ("X-1", TIANYA_2, {"status": "closed"})]
    for code, where, over in made:
        body = station_body(code, *where, amenities=["microwave", "restroom", "ebike_charging"],
                            **over)
        r = client.post("/v1/stations", json=body, headers={"Authorization": keys["admin"]})
        assert r.status_code == 201, r.text
    return keys


@pytest.fixture
def inspectors(areas: psycopg.Connection[Any]) -> dict[str, str]:
    tianya = create_key(areas, name="天涯巡查员", role="inspector", area_code="460204")
    anywhere = create_key(areas, name="巡查员", role="inspector")
    return {"tianya": f"Bearer {tianya}", "any": f"Bearer {anywhere}"}


def station(client: TestClient, code: str) -> Any:
    return client.get(f"/v1/stations/{code}").json()


def count(db: psycopg.Connection[Any], table: str) -> int:
    row = db.execute(f"SELECT count(*) FROM {table}").fetchone()  # our own table names
    assert row is not None
    return int(row[0])


def test_latest_inspection_drives_the_station_and_history_stays(
        client: TestClient, world: dict[str, str], inspectors: dict[str, str]) -> None:
    key = inspectors["tianya"]
    r = inspect(client, key, "T-1", ago(10), items(refrigerator="missing", umbrella_stand="broken"),
                extras=["air_conditioning", "air_conditioning"], score=86.5,
                hours_observed="mo-su 8:00-20:00", remarks="冰箱缺失\n雨伞架损坏",
                photos=["https://example.org/t1/front.jpg", "IMG_0001.jpg"])
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["applied"] and made["current"] and made["station_version"] == 2
    assert made["inspector"] == "天涯巡查员" and made["station_code"] == "T-1"
    assert made["ten_ones_count"] == 8 and made["extras"] == ["air_conditioning"]
    assert made["hours_observed"] == "08:00-20:00" and made["score"] == 86.5
    assert list(made["items"]) == [a.code for a in TEN_ONES]
    assert "umbrella_stand" not in made["amenities"]  # broken is not available

    s = station(client, "T-1")
    # Exactly the inspection's amenities: the unverified e-bike charging claim is gone.
    assert set(s["amenities"]) == {a.code for a in TEN_ONES} - {
        "refrigerator", "umbrella_stand"} | {"air_conditioning"}
    assert s["ten_ones"]["count"] == 8
    assert s["ten_ones"]["missing"] == ["refrigerator", "umbrella_stand"]
    assert s["last_verified_on"] == ago(10) and s["version"] == 2

    # A back-dated inspection is history only.
    r = inspect(client, key, "T-1", ago(100), items())
    assert r.status_code == 201
    assert (r.json()["applied"], r.json()["current"], r.json()["station_version"]) == (
        False, False, 2)
    s = station(client, "T-1")
    assert s["ten_ones"]["count"] == 8 and s["last_verified_on"] == ago(10) and s["version"] == 2

    # A newer one applies; a same-day one after it wins the tie (by id).
    r = inspect(client, key, "T-1", ago(1), items())
    assert r.json()["applied"] and r.json()["station_version"] == 3
    assert station(client, "T-1")["ten_ones"]["count"] == 10
    r = inspect(client, key, "T-1", ago(1), items(microwave="broken"))
    assert r.json()["applied"] and r.json()["station_version"] == 4
    assert station(client, "T-1")["ten_ones"]["missing"] == ["microwave"]
    # Applied but nothing visible changed: no new version.
    r = inspect(client, key, "T-1", ago(1), items(microwave="missing"))
    assert r.json()["applied"] and r.json()["station_version"] == 4

    page = client.get("/v1/stations/T-1/inspections", params={"limit": 3}).json()
    assert [i["inspected_on"] for i in page["inspections"]] == [ago(1)] * 3
    assert [i["current"] for i in page["inspections"]] == [True, False, False]
    assert page["inspections"][0]["items"]["microwave"] == "missing"
    rest = client.get("/v1/stations/T-1/inspections",
                      params={"limit": 3, "cursor": page["next_cursor"]}).json()
    assert [i["inspected_on"] for i in rest["inspections"]] == [ago(10), ago(100)]
    assert rest["next_cursor"] is None
    assert rest["inspections"][0]["photos"] == ["https://example.org/t1/front.jpg",
                                                "IMG_0001.jpg"]
    assert client.get("/v1/stations/T-1/inspections",
                      params={"cursor": "bogus"}).status_code == 422
    assert client.get("/v1/stations/NOPE/inspections").status_code == 404


def test_change_feed_shows_an_applied_inspection(
        client: TestClient, world: dict[str, str], inspectors: dict[str, str]) -> None:
    cursor = client.get("/v1/feeds/changes").json()["next_cursor"]
    assert inspect(client, inspectors["tianya"], "T-2", ago(3)).status_code == 201
    changes = client.get("/v1/feeds/changes", params={"since": cursor}).json()["changes"]
    assert [(c["code"], c["version"]) for c in changes] == [("T-2", 2)]


def test_keys_stay_in_their_area(client: TestClient, world: dict[str, str],
                                 inspectors: dict[str, str], db: psycopg.Connection[Any]) -> None:
    assert inspect(client, inspectors["tianya"], "T-1", ago(1)).status_code == 201
    for key in (inspectors["tianya"], world["tianya_editor"], world["tianya_admin"]):
        r = inspect(client, key, "J-1", ago(1))
        assert r.status_code == 403, r.text
        err = r.json()["error"]
        assert err["fields"][0]["field"] == "code" and "460204" in err["message"]
    assert count(db, "inspection") == 1
    assert station(client, "J-1")["version"] == 1
    assert station(client, "J-1")["last_verified_on"] is None
    for key in (inspectors["any"], world["editor"], world["admin"]):
        assert inspect(client, key, "J-1", ago(1)).status_code == 201
    assert count(db, "inspection") == 4
    r = client.post("/v1/stations/T-1/inspections", json={"inspected_on": ago(1),
                                                           "items": items()})
    assert r.status_code == 401
    assert inspect(client, "Bearer gs_abc_def", "T-1", ago(1)).status_code == 401
    assert inspect(client, world["admin"], "NOPE", ago(1)).status_code == 404


@pytest.mark.parametrize(("change", "field"), [
    ({"items": {**items(), "sofa": "present"}}, "items.sofa"),
    ({"items": {k: v for k, v in items().items() if k != "microwave"}}, "items.microwave"),
    ({"items": items(microwave="gone")}, "items.microwave"),
    ({"items": None}, "items"),
    ({"extras": ["jacuzzi"]}, "extras.0"),
    ({"extras": ["microwave"]}, "extras.0"),
    ({"extras": ["heating"] * 31}, "extras"),
    ({"hours_observed": "mo-xx 25:00"}, "hours_observed"),
    ({"inspected_on": ago(-1)}, "inspected_on"),
    ({"inspected_on": "1999-12-31"}, "inspected_on"),
    ({"photos": ["data:image/png;base64,iVBORw0KGgo="]}, "photos.0"),
    ({"photos": ["../../etc/passwd"]}, "photos.0"),
    ({"photos": ["https://"]}, "photos.0"),
    ({"photos": ["a.jpg"] * 21}, "photos"),
    ({"photos": ["https://example.org/" + "x" * 300]}, "photos.0"),
    ({"remarks": "x" * 2001}, "remarks"),
    ({"remarks": "bell\x07"}, "remarks"),
    ({"score": 100.5}, "score"),
    ({"inspector": "someone else"}, "inspector"),
])
def test_bad_inspections_name_the_field(
        client: TestClient, world: dict[str, str], db: psycopg.Connection[Any],
        change: dict[str, Any], field: str) -> None:
    body = {"inspected_on": ago(1), "items": items(), **change}
    r = client.post("/v1/stations/T-1/inspections", json=body,
                    headers={"Authorization": world["admin"]})
    assert r.status_code == 422, r.text
    assert field in [f["field"] for f in r.json()["error"]["fields"]]
    assert count(db, "inspection") == 0


def test_overdue_lists_never_and_long_ago(client: TestClient, world: dict[str, str]) -> None:
    admin = world["admin"]
    for code, where in (("T-3", TIANYA), ("T-4", TIANYA_2)):
        client.post("/v1/stations", json=station_body(code, *where),
                    headers={"Authorization": admin})
    inspect(client, admin, "T-2", ago(400))           # overdue
    inspect(client, admin, "T-3", ago(10))            # recent
    inspect(client, admin, "T-4", ago(400))
    inspect(client, admin, "T-4", ago(5))             # caught up
    inspect(client, admin, "X-1", ago(900))           # closed: not listed
    # T-1 never inspected; J-1 never inspected but in Jiyang.
    r = client.get("/v1/inspections/overdue", params={"area": "460204"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert [(s["code"], s["days_since"]) for s in got["stations"]] == [("T-1", None),
                                                                       ("T-2", 400)]
    assert got["total"] == 2 and got["stations"][1]["last_inspected_on"] == ago(400)
    assert got["stations"][0]["district_code"] == "460204"
    everywhere = client.get("/v1/inspections/overdue", params={"days": 5}).json()
    assert [s["code"] for s in everywhere["stations"]] == ["J-1", "T-1", "T-2", "T-3"]
    one = client.get("/v1/inspections/overdue", params={"days": 5, "limit": 1}).json()
    assert (one["count"], one["total"]) == (1, 4)
    r = client.get("/v1/inspections/overdue", params={"area": "999999"})
    assert r.status_code == 404 and r.json()["error"]["fields"][0]["field"] == "area"


def test_trend_per_district_and_month(client: TestClient, world: dict[str, str]) -> None:
    made = [  # (station, district, date, ten ones present, score)
        ("T-1", "460204", "2024-01-10", 10, 90.0),
        ("T-2", "460204", "2024-01-20", 8, 70.0),
        ("T-1", "460204", "2024-01-25", 10, None),
        ("T-1", "460204", "2024-02-05", 9, 80.0),
        ("J-1", "460203", "2024-01-15", 5, 50.0),
        ("J-1", "460203", "2024-03-31", 10, 100.0),
    ]
    for code, _, on, present, score in made:
        missing = {a.code: "missing" for a in TEN_ONES[present:]}
        extra = {} if score is None else {"score": score}
        assert inspect(client, world["admin"], code, on, items(**missing),
                       **extra).status_code == 201

    def expected(key: Any) -> dict[tuple[str, str], dict[str, Any]]:
        groups: dict[tuple[str, str], list[tuple[int, float | None]]] = {}
        for _, district, on, present, score in made:
            groups.setdefault((district, key(on)), []).append((present, score))
        out = {}
        for k, g in groups.items():
            scores = [s for _, s in g if s is not None]
            out[k] = {"inspections": len(g), "mean_ten_ones": statistics.mean(p for p, _ in g),
                      "all_ten_share": sum(p == 10 for p, _ in g) / len(g),
                      "mean_score": statistics.mean(scores) if scores else None}
        return out

    def got(params: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
        r = client.get("/v1/inspections/trend", params=params)
        assert r.status_code == 200, r.text
        return {(row["district_code"], row["period"]): {
            k: row[k] for k in ("inspections", "mean_ten_ones", "all_ten_share", "mean_score")}
            for row in r.json()["rows"]}

    def same(a: dict[Any, dict[str, Any]], b: dict[Any, dict[str, Any]]) -> None:
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], abs=0.01), k

    same(got({}), expected(lambda on: on[:7]))
    assert got({})[("460204", "2024-01")]["mean_ten_ones"] == pytest.approx(28 / 3, abs=0.01)
    quarter = expected(lambda on: f"{on[:4]}-Q{(int(on[5:7]) - 1) // 3 + 1}")
    same(got({"period": "quarter"}), quarter)
    same(got({"period": "quarter", "area": "460203"}),
         {k: v for k, v in quarter.items() if k[0] == "460203"})
    january = got({"from": "2024-01-01", "to": "2024-01-31"})
    assert set(january) == {("460204", "2024-01"), ("460203", "2024-01")}
    r = client.get("/v1/inspections/trend", params={"from": "2024-02-01", "to": "2024-01-01"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "to"
    r = client.get("/v1/inspections/trend", params={"from": "1999-12-31"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "from"


def test_missing_items_count_latest_inspections_only(
        client: TestClient, world: dict[str, str]) -> None:
    admin = world["admin"]
    inspect(client, admin, "T-1", ago(30), items(microwave="missing", restroom="missing"))
    inspect(client, admin, "T-1", ago(2), items(refrigerator="missing"))
    inspect(client, admin, "T-2", ago(400), items(refrigerator="broken", umbrella_stand="missing"))
    inspect(client, admin, "X-1", ago(1), items(book_rack="missing"))  # closed: not counted
    got = client.get("/v1/inspections/missing-items", params={"area": "460204"}).json()
    assert got["stations"] == 2
    assert got["items"][0] == {"code": "refrigerator", "label_zh": "电冰箱",
                               "label_en": "Refrigerator", "missing": 1, "broken": 1, "total": 2}
    counts = {i["code"]: i["total"] for i in got["items"]}
    assert counts["umbrella_stand"] == 1
    assert counts["microwave"] == counts["restroom"] == counts["book_rack"] == 0
    assert len(got["items"]) == 10
    recent = client.get("/v1/inspections/missing-items", params={"days": 365}).json()
    assert recent["stations"] == 1
    assert [(i["code"], i["missing"]) for i in recent["items"][:2]] == [
        ("refrigerator", 1), ("indoor_rest", 0)]
    assert client.get("/v1/inspections/missing-items",
                      params={"area": "123"}).status_code == 404


def test_awards(client: TestClient, world: dict[str, str], inspectors: dict[str, str]) -> None:
    editor = {"Authorization": world["editor"]}
    body = {"title": "最美户外劳动者服务站点", "level": "city", "year": TODAY.year}
    r = client.post("/v1/stations/T-1/awards", json=body, headers=editor)
    assert r.status_code == 201, r.text
    award = r.json()
    assert award["station_code"] == "T-1" and award["level"] == "city"
    assert client.post("/v1/stations/T-1/awards", json=body, headers=editor).status_code == 409
    older = {**body, "level": "provincial", "year": 2020}
    assert client.post("/v1/stations/T-1/awards", json=older, headers=editor).status_code == 201
    s = station(client, "T-1")
    assert s["awards"] == [{"title": body["title"], "level": "city", "year": TODAY.year},
                           {"title": body["title"], "level": "provincial", "year": 2020}]
    assert s["version"] == 1  # not a station edit
    listed = client.get("/v1/stations/T-1/awards").json()
    assert listed["awards"][0]["id"] == award["id"] and listed["count"] == 2

    for bad, field in (({"level": "county"}, "level"), ({"year": TODAY.year + 2}, "year"),
                       ({"year": 1948}, "year"), ({"title": ""}, "title"),
                       ({"title": "x" * 201}, "title")):
        r = client.post("/v1/stations/T-1/awards", json={**body, **bad}, headers=editor)
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == field
    scoped = {"Authorization": world["tianya_editor"]}
    assert client.post("/v1/stations/J-1/awards", json=body, headers=scoped).status_code == 403
    assert client.post("/v1/stations/T-2/awards", json=body, headers=scoped).status_code == 201
    r = client.post("/v1/stations/T-1/awards", json=older,
                    headers={"Authorization": inspectors["tianya"]})
    assert r.status_code == 403
    assert client.post("/v1/stations/T-1/awards", json=older).status_code == 401

    url = f"/v1/stations/T-1/awards/{award['id']}"
    r = client.delete(f"/v1/stations/J-1/awards/{award['id']}", headers=editor)
    assert r.status_code == 404 and r.json()["error"]["fields"][0]["field"] == "award_id"
    r = client.post("/v1/stations/J-1/awards", json=body, headers=editor)
    assert client.delete(f"/v1/stations/J-1/awards/{r.json()['id']}",
                         headers=scoped).status_code == 403
    assert client.delete(url, headers=scoped).status_code == 204
    assert client.delete(url, headers=scoped).status_code == 404
    assert [a["year"] for a in station(client, "T-1")["awards"]] == [2020]


def test_award_levels_match_the_model() -> None:
    from typing import get_args

    from geo_service.domain.models import AWARD_LEVELS
    from geo_service.domain.schemas import AwardLevel

    assert get_args(AwardLevel) == AWARD_LEVELS


def test_public_history_does_not_name_the_inspector_key(
        client: TestClient, world: dict[str, str], inspectors: dict[str, str]) -> None:
    """Key names are internal (often a person's name); the public history leaves them out."""
    r = inspect(client, inspectors["tianya"], "T-1", ago(3))
    assert r.status_code == 201 and r.json()["inspector"] == "天涯巡查员"  # the key holder's own
    history = client.get("/v1/stations/T-1/inspections")
    assert history.status_code == 200
    assert "天涯巡查员" not in history.text
    (public,) = history.json()["inspections"]  # the one recorded above
    assert "inspector" not in public
