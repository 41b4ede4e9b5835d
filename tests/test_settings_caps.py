"""Caps live in settings only: raising one raises it in the handler and the schema alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.infra.settings import Settings
from geo_service.web.app import create_app
from tests.conftest import station_body
from tests.helpers import insert_stations


def _param(doc: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    return next(p["schema"] for p in doc["paths"][path]["get"]["parameters"]
                if p["name"] == name)


@pytest.fixture
def raised(db_url: str, areas: psycopg.Connection[Any]) -> Iterator[TestClient]:
    insert_stations(areas, [station_body(f"C-{i}", 109.5 + i / 1000, 18.25)
                            for i in range(150)])
    settings = Settings(database_url=db_url, max_k=200, max_radius_m=80_000,
                        max_page_size=120, allowed_hosts=["testserver"])
    with TestClient(create_app(settings)) as c:
        yield c


def test_raising_a_cap_in_settings_raises_it_everywhere(raised: TestClient,
                                                        client: TestClient) -> None:
    r = raised.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5, "k": 150,
                                                   "radius_m": 70_000})
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 150
    doc = raised.get("/openapi.json").json()
    assert _param(doc, "/v1/stations/nearest", "k")["maximum"] == 200
    assert _param(doc, "/v1/stations/nearest", "radius_m")["maximum"] == 80_000
    assert _param(doc, "/v1/stations", "limit")["maximum"] == 120
    assert _param(doc, "/v1/reports", "limit")["maximum"] == 120
    assert raised.get("/v1/stations", params={"limit": 120}).json()["count"] == 120
    r = raised.get("/v1/stations", params={"limit": 121})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "limit"
    # The default settings keep the default caps, in the schema and the answers.
    doc = client.get("/openapi.json").json()
    assert _param(doc, "/v1/stations/nearest", "k")["maximum"] == 100
    r = client.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5, "k": 101})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "k"
