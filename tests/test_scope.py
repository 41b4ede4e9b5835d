"""Area-scoped keys stay inside their area on every write path (issue 11, holes 2 and 9).

The sample areas: Tianya (460204) holds the bus depot, Jiyang (460203) lies
east of it, Beijing is outside every sample polygon.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import station_body

TIANYA = (109.500, 18.250)
TIANYA_2 = (109.490, 18.260)
JIYANG = (109.55, 18.27)
BEIJING = (116.397, 39.909)


def _stop(name: str, where: tuple[float, float], hours: str) -> dict[str, Any]:
    return {"name": name, "lon": where[0], "lat": where[1], "opening_hours": hours}


@pytest.fixture
def bus(client: TestClient, keys: dict[str, str]) -> str:
    r = client.post("/v1/stations", headers={"Authorization": keys["tianya_editor"]},
                    json=station_body("BUS-T", *TIANYA, host_type="mobile"))
    assert r.status_code == 201, r.text
    return "BUS-T"


@pytest.mark.parametrize("where", [JIYANG, BEIJING], ids=["other-district", "beijing"])
def test_stops_outside_the_keys_area_are_refused(
        client: TestClient, keys: dict[str, str], bus: str,
        where: tuple[float, float]) -> None:
    stops = [_stop("depot", TIANYA_2, "Mo-Su 08:00-10:00"),
             _stop("elsewhere", where, "Mo-Su 10:00-16:00")]
    r = client.put(f"/v1/stations/{bus}/stops", headers={"Authorization": keys["tianya_editor"]},
                   json={"stops": stops, "version": 1})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["fields"][0]["field"] == "stops[1]"
    # Nothing was written: the station is still at version 1 with no stops,
    # and nearest does not find it at the refused stop.
    got = client.get(f"/v1/stations/{bus}/stops").json()
    assert got["version"] == 1 and got["stops"] == []
    near = client.get("/v1/stations/nearest", params={
        "lon": where[0], "lat": where[1], "k": 5, "radius_m": 1000,
        "at": "2026-12-01T12:00:00+08:00"}).json()["results"]
    assert near == []
    # The same schedule inside the area is fine, and an unscoped editor may
    # schedule stops anywhere.
    inside = [_stop("depot", TIANYA_2, "Mo-Su 08:00-10:00")]
    r = client.put(f"/v1/stations/{bus}/stops", headers={"Authorization": keys["tianya_editor"]},
                   json={"stops": inside, "version": 1})
    assert r.status_code == 200, r.text
    r = client.put(f"/v1/stations/{bus}/stops", headers={"Authorization": keys["editor"]},
                   json={"stops": stops, "version": 2})
    assert r.status_code == 200, r.text


def _demand(client: TestClient, key: str, rows: list[str], **params: Any) -> Any:
    data = ("id,lon,lat,weight,worker_type\n" + "\n".join(rows) + "\n").encode()
    return client.post("/v1/demand:import", files={"file": ("d.csv", data)}, params=params,
                       headers={"Authorization": key})


def test_demand_import_keeps_to_the_keys_area(
        client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]) -> None:
    r = _demand(client, keys["admin"], [f"D-J,{JIYANG[0]},{JIYANG[1]},5,delivery"])
    assert r.status_code == 200, r.text
    # A Tianya admin can neither add a point in Jiyang nor move Jiyang's point,
    # not even in a dry run's counts.
    for rows in ([f"D-T,{TIANYA[0]},{TIANYA[1]},5,delivery", f"D-X,{BEIJING[0]},{BEIJING[1]},1,"
                  "delivery"], [f"D-J,{TIANYA[0]},{TIANYA[1]},9,delivery"]):
        for dry_run in (True, False):
            r = _demand(client, keys["tianya_admin"], rows, dry_run=dry_run)
            report = r.json().get("report") or r.json()
            assert report["written"] is False and report["updated"] == 0, report
            assert {e["problem"] for e in report["errors"]} == {
                "outside the key's area 460204"}, report
    assert db.execute("SELECT external_id, weight FROM demand_point").fetchall() == [("D-J", 5)]
    # Skipping bad rows writes only the point inside the area.
    r = _demand(client, keys["tianya_admin"], [f"D-T,{TIANYA[0]},{TIANYA[1]},5,delivery",
                                               f"D-J,{TIANYA[0]},{TIANYA[1]},9,delivery"],
                mode="skip_bad_rows")
    assert r.status_code == 200 and r.json()["created"] == 1 and r.json()["updated"] == 0
    assert sorted(db.execute("SELECT external_id FROM demand_point").fetchall()) == [
        ("D-J",), ("D-T",)]


@pytest.mark.parametrize("region", [
    {"area": "460203"}, {"area": "460200"},
    {"bbox": [109.52, 18.2, 109.6, 18.3]},
    {"polygon": {"type": "Polygon", "coordinates": [[[116.3, 39.8], [116.5, 39.8],
                                                     [116.5, 40.0], [116.3, 39.8]]]}},
], ids=["other-district", "whole-city", "bbox-across-border", "polygon-in-beijing"])
def test_analysis_runs_keep_to_the_keys_area(
        client: TestClient, keys: dict[str, str], region: dict[str, Any]) -> None:
    for path, extra in (("coverage", {}), ("recommendations", {"add": 2})):
        r = client.post(f"/v1/analysis/{path}", headers={"Authorization": keys["tianya_editor"]},
                        json={**region, **extra})
        assert r.status_code == 403, r.text
        field = next(iter(region))
        assert r.json()["error"]["fields"][0]["field"] == field


def test_analysis_inside_the_keys_area_runs(
        client: TestClient, keys: dict[str, str]) -> None:
    _demand(client, keys["admin"], [f"D-T,{TIANYA[0]},{TIANYA[1]},5,delivery"])
    for region in ({"area": "460204"}, {"bbox": [109.485, 18.24, 109.502, 18.262]}):
        r = client.post("/v1/analysis/coverage",
                        headers={"Authorization": keys["tianya_editor"]}, json=region)
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("street, problem", [
    ("460203", "460203 is a district code, not a street"),
    ("460203001", "a street code begins with its district code 460204"),
])
def test_street_codes_must_belong_to_the_district(
        client: TestClient, keys: dict[str, str], street: str, problem: str) -> None:
    body = station_body("ST-1", *TIANYA, street_code=street)
    r = client.post("/v1/stations", headers={"Authorization": keys["tianya_editor"]}, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["fields"] == [{"field": "street_code", "problem": problem}]
    # Through the import too, and a good street code of the district is kept.
    header = "code,name,lon,lat,host_type,opening_hours,street_code"
    rows = [f"ST-1,站,{TIANYA[0]},{TIANYA[1]},union_built,24/7,{street}",
            f"ST-2,站,{TIANYA[0]},{TIANYA[1] + 0.01},union_built,24/7,460204001"]
    r = client.post("/v1/stations:import", headers={"Authorization": keys["admin"]},
                    files={"file": ("s.csv", "\n".join([header, *rows]).encode())},
                    params={"mode": "skip_bad_rows"})
    assert r.status_code == 200, r.text
    assert [(e["row"], e["field"], e["problem"]) for e in r.json()["errors"]] == [
        (1, "street_code", problem)]
    assert client.get("/v1/stations", params={"area": "460203"}).json()["items"] == []
    assert client.get("/v1/stations/ST-2").json()["street_code"] == "460204001"
