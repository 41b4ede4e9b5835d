"""Create / replace / patch / delete: keys, roles, area scope, versions, soft deletes."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from tests.conftest import station_body

TIANYA = (109.50, 18.25)   # inside sample district 460204
HAITANG = (109.70, 18.35)  # inside sample district 460202


def _create(client: TestClient, key: str, code: str, where: tuple[float, float],
            **over: Any) -> Any:
    return client.post("/v1/stations", json=station_body(code, *where, **over),
                       headers={"Authorization": key})


def test_create_fills_admin_codes_and_returns_etag(client: TestClient,
                                                   keys: dict[str, str]) -> None:
    r = _create(client, keys["editor"], "T-1", TIANYA)
    assert r.status_code == 201, r.text
    s = r.json()
    assert (s["district_code"], s["city_code"], s["province_code"]) == (
        "460204", "460200", "460000")
    assert s["version"] == 1 and r.headers["ETag"] == '"1"'
    assert _create(client, keys["editor"], "T-1", TIANYA).status_code == 409


def test_no_key_bad_key_wrong_role(client: TestClient, keys: dict[str, str]) -> None:
    assert _create(client, "", "T-2", TIANYA).status_code == 401
    r = client.post("/v1/stations", json=station_body("T-2", *TIANYA))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert _create(client, "Bearer gs_abc_def", "T-2", TIANYA).status_code == 401
    assert _create(client, "Basic Zm9vOmJhcg==", "T-2", TIANYA).status_code == 401
    # Editors may not bulk import; admins may.
    files = {"file": ("s.csv", b"code,name,lon,lat,host_type,opening_hours\n", "text/csv")}
    r = client.post("/v1/stations:import", files=files, headers={"Authorization": keys["editor"]})
    assert r.status_code == 403
    assert r.json()["error"]["fields"][0]["field"] == "Authorization"


def test_area_scope(client: TestClient, keys: dict[str, str]) -> None:
    scoped = keys["tianya_editor"]
    assert _create(client, scoped, "IN-1", TIANYA).status_code == 201
    r = _create(client, scoped, "OUT-1", HAITANG)
    assert r.status_code == 403
    assert _create(client, keys["editor"], "OUT-1", HAITANG).status_code == 201
    # Cannot edit or delete a station outside the area, nor move one out of it.
    r = client.patch("/v1/stations/OUT-1", json={"version": 1, "name": "x"},
                     headers={"Authorization": scoped})
    assert r.status_code == 403
    r = client.delete("/v1/stations/OUT-1", params={"version": 1},
                      headers={"Authorization": scoped})
    assert r.status_code == 403
    r = client.patch("/v1/stations/IN-1", json={"version": 1, "lon": HAITANG[0],
                                                "lat": HAITANG[1]},
                     headers={"Authorization": scoped})
    assert r.status_code == 403
    assert client.get("/v1/stations/IN-1").json()["version"] == 1


def test_stale_versions_are_refused(client: TestClient, keys: dict[str, str]) -> None:
    key = {"Authorization": keys["editor"]}
    _create(client, keys["editor"], "V-1", TIANYA)
    r = client.patch("/v1/stations/V-1", json={"version": 1, "phone": "0898-1234567"},
                     headers=key)
    assert r.status_code == 200 and r.json()["version"] == 2
    # A second editor still holding version 1 is refused, body version → 409 …
    r = client.patch("/v1/stations/V-1", json={"version": 1, "phone": "0898-7654321"},
                     headers=key)
    assert r.status_code == 409 and r.json()["error"]["current_version"] == 2
    # … If-Match → 412, and no version at all → 428.
    r = client.patch("/v1/stations/V-1", json={"phone": "0898-7654321"},
                     headers={**key, "If-Match": '"1"'})
    assert r.status_code == 412
    r = client.patch("/v1/stations/V-1", json={"phone": "0898-7654321"}, headers=key)
    assert r.status_code == 428
    assert client.get("/v1/stations/V-1").json()["phone"] == "0898-1234567"
    body = station_body("V-1", *TIANYA, name="改名驿站")
    body.pop("code")
    r = client.put("/v1/stations/V-1", json=body, headers={**key, "If-Match": '"2"'})
    assert r.status_code == 200 and r.json()["version"] == 3 and r.json()["name"] == "改名驿站"
    r = client.put("/v1/stations/V-1", json={**body, "version": 2}, headers=key)
    assert r.status_code == 409


def test_patch_changes_only_sent_fields(client: TestClient, keys: dict[str, str]) -> None:
    key = {"Authorization": keys["editor"]}
    _create(client, keys["editor"], "P-1", TIANYA, phone="0898-1111111", seats=6)
    r = client.patch("/v1/stations/P-1", json={"version": 1, "amenities": ["restroom"],
                                               "opening_hours": "Mo-Fr 08:00-18:00"},
                     headers=key)
    s = r.json()
    assert s["amenities"] == ["restroom"] and s["opening_hours"] == "Mo-Fr 08:00-18:00"
    assert s["phone"] == "0898-1111111" and s["seats"] == 6
    assert abs(s["lon"] - TIANYA[0]) < 1e-9
    r = client.patch("/v1/stations/P-1", json={"version": 2, "opening_hours": "Mo-Fr 25:00"},
                     headers=key)
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "opening_hours"
    r = client.patch("/v1/stations/P-1", json={"version": 2, "name": None}, headers=key)
    assert r.status_code == 422


def test_soft_delete_keeps_the_record(client: TestClient, keys: dict[str, str],
                                      db: psycopg.Connection[Any]) -> None:
    key = {"Authorization": keys["editor"]}
    _create(client, keys["editor"], "D-1", TIANYA)
    assert client.delete("/v1/stations/D-1", headers=key).status_code == 428
    r = client.delete("/v1/stations/D-1", headers={**key, "If-Match": '"1"'})
    assert r.status_code == 200
    s = r.json()
    assert s["status"] == "closed" and s["deleted_at"] is not None and s["version"] == 2
    assert db.execute("SELECT count(*) FROM station WHERE code = 'D-1'").fetchone() == (1,)
    near = client.get("/v1/stations/nearest", params={"lat": TIANYA[1], "lon": TIANYA[0]})
    assert "D-1" not in [x["code"] for x in near.json()["results"]]
    assert client.get("/v1/stations/D-1").json()["status"] == "closed"


def test_create_in_gcj02_stores_wgs84(client: TestClient, keys: dict[str, str]) -> None:
    from geo_service.domain.coords import wgs84_to_gcj02

    glon, glat = wgs84_to_gcj02(*TIANYA)
    r = client.post("/v1/stations", params={"crs": "gcj02"},
                    json=station_body("G-1", glon, glat), headers={"Authorization": keys["editor"]})
    assert r.status_code == 201
    s = client.get("/v1/stations/G-1").json()
    assert abs(s["lon"] - TIANYA[0]) < 1e-7 and abs(s["lat"] - TIANYA[1]) < 1e-7


def test_bad_bodies_name_the_field(client: TestClient, keys: dict[str, str]) -> None:
    key = {"Authorization": keys["editor"], "Content-Type": "application/json"}
    cases = [
        ({"lat": 91}, "lat"), ({"host_type": "castle"}, "host_type"),
        ({"amenities": ["sauna"]}, "amenities"), ({"opening_hours": "banana"}, "opening_hours"),
        ({"timezone": "Mars/Olympus"}, "timezone"), ({"code": "bad code!"}, "code"),
        ({"unknown_field": 1}, "unknown_field"), ({"seats": -1}, "seats"),
    ]
    for over, field in cases:
        body = {**station_body("B-1", *TIANYA), **over}
        r = client.post("/v1/stations", content=json.dumps(body), headers=key)
        assert r.status_code == 422, (over, r.text)
        assert field in [f["field"] for f in r.json()["error"]["fields"]], r.json()
    raw = json.dumps(station_body("B-1", *TIANYA)).replace("109.5", "NaN")
    r = client.post("/v1/stations", content=raw, headers=key)
    assert r.status_code == 422 and "lon" in r.text
    r = client.post("/v1/stations", content=b"{not json", headers=key)
    assert r.status_code == 422


def test_list_with_filters_and_cursor(client: TestClient, keys: dict[str, str]) -> None:
    for i in range(7):
        _create(client, keys["editor"], f"L-{i}", (TIANYA[0] + i * 0.001, TIANYA[1]),
                host_type="bank_branch" if i % 2 else "union_built")
    _create(client, keys["editor"], "L-H", HAITANG)
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 3, "area": "460204"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/stations", params=params).json()
        seen += [s["code"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"L-{i}" for i in range(7)]
    banks = client.get("/v1/stations", params={"host_type": "bank_branch"}).json()["items"]
    assert {s["code"] for s in banks} == {"L-1", "L-3", "L-5"}
    box = client.get("/v1/stations", params={"bbox": "109.6,18.3,109.8,18.4"}).json()["items"]
    assert [s["code"] for s in box] == ["L-H"]
    assert client.get("/v1/stations", params={"cursor": "garbage"}).status_code == 422
    assert client.get("/v1/stations", params={"bbox": "1,2,3"}).status_code == 422
