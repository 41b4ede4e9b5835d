"""The published schema and the behaviour agree (issue 11, hole 13), beside the
schemathesis run in test_openapi_contract: each probe finding as a plain test."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers import insert_stations


@pytest.mark.parametrize(("path", "allow"), [
    ("/v1/stations/X-1", "DELETE, GET, PATCH, PUT"),
    ("/v1/stations/X-1/stops", "GET, PUT"),
    ("/v1/stations/X-1/awards", "GET, POST"),
    ("/v1/stations/X-1/inspections", "GET, POST"),
])
def test_405_allow_names_every_method_of_the_path(client: TestClient, path: str,
                                                  allow: str) -> None:
    r = client.request("OPTIONS", path)
    assert r.status_code == 405
    assert r.headers["Allow"] == allow


def test_schema_valid_requests_are_accepted(client: TestClient, db: object) -> None:
    insert_stations(db, [{"code": "C-1", "name": "c", "lon": 109.5, "lat": 18.25,  # type: ignore[arg-type]
                          "host_type": "volunteer", "opening_hours": "24/7"}])
    r = client.get("/v1/stations", params={"bbox": "", "cursor": "0", "amenities": ""})
    assert r.status_code == 200 and [s["code"] for s in r.json()["items"]] == ["C-1"]
    assert client.get("/v1/feeds/changes", params={"since": "0"}).status_code == 200
    r = client.get("/v1/stations/C-1/inspections", params={"cursor": "0.0"})
    assert r.status_code == 200 and r.json()["inspections"] == []
    assert client.get("/v1/feeds/stations.geojson", params={"bbox": ""}).status_code == 200


def test_schema_states_what_the_handlers_check(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for item in doc["paths"].values():
        for op in item.values():
            for param in op.get("parameters", []):
                if param["in"] in ("header", "query"):  # no JSON null in a header or query
                    assert {"type": "null"} not in param["schema"].get("anyOf", []), param
    feed_schema = doc["paths"]["/v1/feeds/schemas/{name}.json"]["get"]["responses"]["200"]
    assert "application/schema+json" in feed_schema["content"]
    stop = doc["components"]["schemas"]["StopIn"]["properties"]["name"]
    assert "\\x00" in stop["pattern"]
