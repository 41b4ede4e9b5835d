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
