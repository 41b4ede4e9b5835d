"""Edge inputs that once slipped through: typed-in codes, NUL bytes, odd instants, big boxes."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.stations import service
from tests.conftest import station_body
from tests.helpers import insert_stations

TIANYA = (109.50, 18.25)
HAITANG = (109.70, 18.35)


def _post(client: TestClient, key: str, body: dict[str, Any]) -> Any:
    return client.post("/v1/stations", json=body, headers={"Authorization": key})


def test_scoped_key_cannot_claim_its_area_by_typing_codes(
    client: TestClient, keys: dict[str, str]
) -> None:
    scoped = keys["tianya_editor"]
    r = _post(client, scoped, station_body("X-1", *HAITANG, district_code="460204"))
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "district_code"
    r = _post(client, scoped, station_body("X-2", *HAITANG, street_code="460204"))
    # A district code is no street code at all (checked before the scope).
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "street_code"
    r = _post(client, scoped, station_body("X-2", *HAITANG, street_code="460202001"))
    assert r.status_code == 403
    assert _post(client, scoped, station_body("X-3", *TIANYA)).status_code == 201
    r = client.patch("/v1/stations/X-3", headers={"Authorization": scoped},
                     json={"version": 1, "lon": HAITANG[0], "lat": HAITANG[1],
                           "district_code": "460204"})
    assert r.status_code == 422
    # A hand-given district code still gets its city and province filled.
    r = _post(client, keys["editor"], station_body("X-4", *HAITANG, district_code="460202"))
    assert r.status_code == 201 and r.json()["city_code"] == "460200"


def test_import_refuses_codes_that_contradict_the_point(
    client: TestClient, keys: dict[str, str]
) -> None:
    csv = ("code,name,lon,lat,host_type,opening_hours,district_code\n"
           f"Y-1,y,{HAITANG[0]},{HAITANG[1]},union_built,24/7,460204\n").encode()
    r = client.post("/v1/stations:import", files={"file": ("s.csv", csv)},
                    headers={"Authorization": keys["tianya_admin"]})
    assert r.status_code == 422
    fields = {p["field"] for p in r.json()["report"]["errors"]}
    assert "district_code" in fields


@pytest.mark.parametrize("path", ["/v1/stations/a%00b", "/v1/areas/%00",
                                  "/v1/stations?area=%00"])
def test_nul_in_paths_and_queries_is_422(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 422


def test_nul_in_bodies_and_imports_is_422(client: TestClient, keys: dict[str, str],
                                          db: psycopg.Connection[Any]) -> None:
    r = _post(client, keys["editor"], station_body("N-1", *TIANYA, name="a\u0000b"))
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "name"
    csv = ("code,name,lon,lat,host_type,opening_hours\n"
           "N-2,ok,109.5,18.25,union_built,24/7\n"
           "N-3,bad\u0000name,109.5,18.25,union_built,24/7\n").encode()
    # All or nothing refuses the file; skipping bad rows writes N-2 and names N-3's name.
    for mode, status in (("all_or_nothing", 422), ("skip_bad_rows", 200)):
        r = client.post("/v1/stations:import", files={"file": ("s.csv", csv)},
                        params={"mode": mode}, headers={"Authorization": keys["admin"]})
        assert r.status_code == status, r.text
        report = r.json()["report"] if status == 422 else r.json()
        assert [(e["code"], e["field"]) for e in report["errors"]] == [("N-3", "name")]
    assert [c for (c,) in db.execute("SELECT code FROM station")] == ["N-2"]


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00",
                                "9999-12-31T20:00:00Z", "1900-01-01T00:00:00"])
def test_absurd_instants_are_422(client: TestClient, at: str) -> None:
    r = client.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5, "at": at,
                                                   "open_now": "true"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "at"


def test_bbox_is_exact_and_world_sized_boxes_work(client: TestClient,
                                                  db: psycopg.Connection[Any]) -> None:
    insert_stations(db, [
        {"code": "B-IN", "name": "in", "lon": 109.55, "lat": 18.25, "host_type": "volunteer",
         "opening_hours": "24/7"},
        {"code": "B-NORTH", "name": "north", "lon": 109.55, "lat": 18.31,
         "host_type": "volunteer", "opening_hours": "24/7"},
    ])
    for bbox in ("-180,-90,180,90", "0,0,180,90", "-170,0,170,50"):
        r = client.get("/v1/stations", params={"bbox": bbox})
        assert r.status_code == 200, r.text
        assert {s["code"] for s in r.json()["items"]} == {"B-IN", "B-NORTH"}
    r = client.get("/v1/stations", params={"bbox": "100,10,120,18.3"})
    assert [s["code"] for s in r.json()["items"]] == ["B-IN"]


def test_malformed_geojson_rows_are_reported(client: TestClient, keys: dict[str, str]) -> None:
    point = {"type": "Point", "coordinates": [109.5, 18.25]}
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": point, "properties": [1, 2]},
        {"type": "Feature", "geometry": point,
         "properties": {"code": float("nan"), "name": "n", "host_type": "volunteer",
                        "opening_hours": "24/7"}},
    ]}
    r = client.post("/v1/stations:import",
                    files={"file": ("s.geojson", json.dumps(fc).encode())},
                    headers={"Authorization": keys["admin"]})
    assert r.status_code == 422, r.text
    assert {p["row"] for p in r.json()["report"]["errors"]} == {1, 2}


def test_open_now_never_returns_temporarily_closed(client: TestClient,
                                                   db: psycopg.Connection[Any]) -> None:
    insert_stations(db, [
        {"code": "SHUT", "name": "shut", "lon": 109.5001, "lat": 18.25,
         "host_type": "volunteer", "opening_hours": "24/7", "status": "temporarily_closed"},
        {"code": "OPEN", "name": "open", "lon": 109.51, "lat": 18.25,
         "host_type": "volunteer", "opening_hours": "24/7"},
    ])
    r = client.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5, "k": 1,
                                                   "open_now": "true"})
    assert [s["code"] for s in r.json()["results"]] == ["OPEN"]
    r = client.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5, "k": 1})
    first = r.json()["results"][0]
    assert first["code"] == "SHUT" and first["open_now"] is False


def test_reimport_without_status_keeps_a_deleted_station_closed(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    csv = (b"code,name,lon,lat,host_type,opening_hours,phone\n"
           b"R-1,r,109.5,18.25,volunteer,24/7,0898-1\n")

    def load(data: bytes) -> Any:
        return client.post("/v1/stations:import", files={"file": ("s.csv", data)},
                           headers={"Authorization": keys["admin"]})

    assert load(csv).json()["created"] == 1
    client.patch("/v1/stations/R-1", json={"version": 1, "seats": 12},
                 headers={"Authorization": keys["editor"]})
    client.delete("/v1/stations/R-1", params={"version": 2},
                  headers={"Authorization": keys["editor"]})
    assert load(csv).json()["unchanged"] == 1
    s = client.get("/v1/stations/R-1").json()
    assert (s["status"], s["seats"], s["version"]) == ("closed", 12, 3)
    assert s["deleted_at"] is not None
    reopened = csv.replace(b"phone\n", b"phone,status\n").replace(b"0898-1\n", b"0898-1,open\n")
    assert load(reopened).json()["updated"] == 1
    s = client.get("/v1/stations/R-1").json()
    assert (s["status"], s["deleted_at"], s["seats"]) == ("open", None, 12)


def test_list_hides_planned_unless_asked(client: TestClient, db: psycopg.Connection[Any]) -> None:
    insert_stations(db, [{"code": "PLAN", "name": "p", "lon": 109.5, "lat": 18.25,
                          "host_type": "volunteer", "opening_hours": "24/7",
                          "status": "planned"}])
    assert client.get("/v1/stations").json()["items"] == []
    r = client.get("/v1/stations", params={"status": "planned"})
    assert [s["code"] for s in r.json()["items"]] == ["PLAN"]


def test_zone_unknown_to_the_database_is_refused(
    client: TestClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "_PG_TIMEZONES", {"Asia/Shanghai"})
    r = _post(client, keys["editor"], station_body("Z-1", *TIANYA, timezone="Asia/Urumqi"))
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "timezone"
