"""The API end to end against the real database: nearest on the sample, bad input, health."""

from __future__ import annotations

import math
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.sample.seed import load_seed
from tests.conftest import SEED


def test_demo_query_returns_seeded_stations(client: TestClient, seeded: None) -> None:
    r = client.get("/v1/stations/nearest",
                   params={"lat": 18.25, "lon": 109.50, "k": 5, "open_now": "true",
                           "amenities": "microwave"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 5
    dists = [s["distance_m"] for s in body["results"]]
    assert dists == sorted(dists)
    for s in body["results"]:
        assert s["sample"] is True and s["code"].startswith("SY-")
        assert "microwave" in s["amenities"]
        assert s["open_now"] is True and s["status"] == "open"
        assert s["ten_ones"]["count"] + len(s["ten_ones"]["missing"]) == 10


def test_seed_is_idempotent(db: psycopg.Connection[Any], db_url: str) -> None:
    load_seed(db_url, SEED)
    before = db.execute("SELECT code, version, updated_at FROM station ORDER BY code").fetchall()
    summary = load_seed(db_url, SEED)
    after = db.execute("SELECT code, version, updated_at FROM station ORDER BY code").fetchall()
    assert before == after and len(after) == 74
    assert "unchanged 74" in summary


def test_not_operational_never_returned_by_default(client: TestClient, seeded: None,
                                                   db: psycopg.Connection[Any]) -> None:
    hidden = {c for (c,) in db.execute(
        "SELECT code FROM station WHERE status IN ('planned', 'closed', 'duplicate')")}
    assert hidden
    r = client.get("/v1/stations/nearest", params={"lat": 18.3, "lon": 109.4, "k": 100})
    got = {s["code"] for s in r.json()["results"]}
    assert not got & hidden
    r = client.get("/v1/stations/nearest", params={"lat": 18.3, "lon": 109.4, "k": 100,
                                                   "status": "planned,closed,duplicate"})
    assert {s["code"] for s in r.json()["results"]} == hidden


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lat": 95, "lon": 109.5}, "lat"),
        ({"lat": 109.5, "lon": 18.25}, "lat"),
        ({"lat": 18.25, "lon": 200}, "lon"),
        ({"lat": "nan", "lon": 109.5}, "lat"),
        ({"lat": 18.25, "lon": "inf"}, "lon"),
        ({"lat": 18.25, "lon": 109.5, "k": 101}, "k"),
        ({"lat": 18.25, "lon": 109.5, "k": 0}, "k"),
        ({"lat": 18.25, "lon": 109.5, "radius_m": 50001}, "radius_m"),
        ({"lat": 18.25, "lon": 109.5, "radius_m": -1}, "radius_m"),
        ({"lat": 18.25, "lon": 109.5, "amenities": "microwave,jacuzzi"}, "amenities"),
        ({"lat": 18.25, "lon": 109.5, "host_type": "castle"}, "host_type"),
        ({"lat": 18.25, "lon": 109.5, "crs": "epsg3857"}, "crs"),
        ({"lat": 18.25, "lon": 109.5, "at": "yesterday"}, "at"),
        ({"lon": 109.5}, "lat"),
    ],
)
def test_bad_nearest_input_is_422_naming_the_field(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    r = client.get("/v1/stations/nearest", params=params)
    assert r.status_code == 422, r.text
    fields = [f["field"] for f in r.json()["error"]["fields"]]
    assert field in fields, r.json()


def test_swapped_coordinates_hint(client: TestClient) -> None:
    r = client.get("/v1/stations/nearest", params={"lat": 109.5, "lon": 18.25})
    assert "swapped" in r.json()["error"]["message"]


def test_gcj02_query_and_answer(client: TestClient, seeded: None) -> None:
    from geo_service.domain.coords import wgs84_to_gcj02

    wgs = client.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5, "k": 3}).json()
    glon, glat = wgs84_to_gcj02(109.5, 18.25)
    gcj = client.get("/v1/stations/nearest",
                     params={"lat": glat, "lon": glon, "k": 3, "crs": "gcj02"}).json()
    assert [s["code"] for s in gcj["results"]] == [s["code"] for s in wgs["results"]]
    for a, b in zip(wgs["results"], gcj["results"], strict=True):
        assert math.isclose(a["distance_m"], b["distance_m"], abs_tol=0.05)
        elon, elat = wgs84_to_gcj02(a["lon"], a["lat"])
        assert abs(b["lon"] - elon) < 1e-6 and abs(b["lat"] - elat) < 1e-6
        assert b["crs"] == "gcj02"


def test_health_and_root(client: TestClient) -> None:
    health = client.get("/healthz").json()
    calendar = health.pop("calendar")  # tests/test_holiday_years.py
    assert set(health.pop("roads")) == {"loaded", "extract", "graph", "edges", "vertices"}
    assert calendar["label"].startswith("CN chinese-calendar ")
    assert health == {
        "status": "ok", "database": "online",
        "databases": [{"name": "primary", "role": "primary", "reachable": True}],
        "nearest_index": {"state": "off"}, "serving": {"write_coalescing": "on"}}
    page = client.get("/")
    assert page.status_code == 200 and "/docs" in page.text


def test_oversize_body_is_413(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post("/v1/stations", content=b"{" + b" " * 2_000_000 + b"}",
                    headers={"Authorization": keys["admin"], "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["fields"][0]["field"] == "body"


def test_unknown_station_is_404(client: TestClient) -> None:
    r = client.get("/v1/stations/NOPE-1")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_oversize_chunked_body_is_413(client: TestClient, keys: dict[str, str]) -> None:
    def chunks() -> Any:
        for _ in range(40):
            yield b" " * 65536

    r = client.post("/v1/stations", content=chunks(),
                    headers={"Authorization": keys["admin"], "Content-Type": "application/json"})
    assert r.status_code == 413, r.text
