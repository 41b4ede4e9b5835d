"""Input that once answered 500 with a traceback in the log (issue 11, hole 8) and its
neighbours: NUL bytes, far dates, the whole world as a region, deep JSON."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import station_body

TIANYA = (109.50, 18.25)


def _fields(r: Any) -> set[str]:
    return {f["field"] for f in r.json()["error"]["fields"]}


@pytest.fixture
def bus(client: TestClient, keys: dict[str, str]) -> str:
    r = client.post("/v1/stations", headers={"Authorization": keys["editor"]},
                    json=station_body("BUS-N", *TIANYA, host_type="mobile"))
    assert r.status_code == 201, r.text
    return keys["editor"]


def _put_stops(client: TestClient, key: str, **stop: Any) -> Any:
    body = {"name": "站", "lon": 109.51, "lat": 18.25, "opening_hours": "Mo-Fr 10:00-16:00",
            **stop}
    return client.put("/v1/stations/BUS-N/stops", headers={"Authorization": key},
                      json={"stops": [body], "version": 1})


def test_nul_in_a_stop_name_is_422(client: TestClient, bus: str) -> None:
    r = _put_stops(client, bus, name="a\u0000b")
    assert r.status_code == 422, r.text
    assert _fields(r) == {"stops.0.name"}


@pytest.mark.parametrize("day", ["9999-12-31", "2199-12-31"])
def test_a_stop_dated_far_ahead_is_422(client: TestClient, bus: str, day: str) -> None:
    for name in ("valid_to", "valid_from"):
        r = _put_stops(client, bus, **{name: day})
        assert r.status_code == 422, r.text
        assert _fields(r) <= {f"stops.0.{name}", f"stops[0].{name}"}, r.text


@pytest.mark.parametrize("where", [{"worker_types": ["a\u0000"]},
                                   {"stations": {"exclude": ["SY\u00000001"]}}])
def test_nul_in_coverage_lists_is_422(client: TestClient, keys: dict[str, str],
                                      where: dict[str, Any]) -> None:
    r = client.post("/v1/analysis/coverage", headers={"Authorization": keys["editor"]},
                    json={"bbox": [109.4, 18.2, 109.6, 18.4], **where})
    assert r.status_code == 422, r.text
    assert _fields(r) <= {"worker_types.0", "stations.exclude.0"}


@pytest.mark.parametrize("region", [
    {"bbox": [-180, -90, 180, 90]},
    {"bbox": [-170, -10, 170, 10]},
    {"polygon": {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90],
                                                     [-180, 90], [-180, -90]]]}},
    {"polygon": {"type": "Polygon", "coordinates": [[[0, 0], [0, 95], [1, 95], [0, 0]]]}},
    {"polygon": {"type": "Polygon", "coordinates": [[[0, 0], [1, "a"], [1, 1], [0, 0]]]}},
    {"polygon": {"type": "MultiPolygon", "coordinates": 3}},
])
def test_a_region_too_big_or_broken_is_422(client: TestClient, keys: dict[str, str],
                                           db: psycopg.Connection[Any],
                                           region: dict[str, Any]) -> None:
    """A coverage of the world means nothing (and PostGIS refuses its antipodal edges)."""
    db.execute("INSERT INTO demand_point (external_id, geog, weight, worker_type) VALUES "
               "('D-1', ST_SetSRID(ST_MakePoint(0.5, 0.2), 4326)::geography, 5, 'courier')")
    r = client.post("/v1/analysis/coverage", headers={"Authorization": keys["editor"]},
                    json=region)
    assert r.status_code == 422, r.text
    assert _fields(r) & {"bbox", "polygon"}, r.text


def _deep(depth: int) -> bytes:
    return b'{"type": "FeatureCollection", "features": [' + b"[" * depth + b"]" * depth + b"]}"


@pytest.mark.parametrize("path", ["/v1/stations:import", "/v1/demand:import"])
def test_deeply_nested_geojson_import_is_422(client: TestClient, keys: dict[str, str],
                                             path: str) -> None:
    r = client.post(path, files={"file": ("deep.geojson", _deep(100_000))},
                    headers={"Authorization": keys["admin"]})
    assert r.status_code == 422, r.text
    assert _fields(r) == {"file"}


def test_deeply_nested_json_body_is_4xx(client: TestClient, keys: dict[str, str]) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    r = client.post("/v1/stations", content=body, headers={
        "Authorization": keys["editor"], "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert _fields(r) == {"body"}


def test_hours_longer_once_normalised_are_422(client: TestClient,
                                              keys: dict[str, str]) -> None:
    """``8:00`` normalises to ``08:00``: a rule near the length limit grew past it, and
    compiling the stored form then failed with a 500."""
    times = ",".join(f"{h}:{m:02d}-{h}:{m + 1:02d}" for h in range(10) for m in range(0, 58, 2))
    rule = ("Mo-Su " + times)[:1000].rsplit(",", 1)[0]
    r = client.post("/v1/stations", headers={"Authorization": keys["editor"]},
                    json=station_body("LONG-1", *TIANYA, opening_hours=rule))
    assert r.status_code == 422, r.text
    assert _fields(r) == {"opening_hours"}


_PATH_VALUES = {"{code}": "SY-0001", "{run_id}": "1", "{report_id}": "1", "{award_id}": "1",
                "{z}": "1", "{x}": "1", "{y}": "1", "{platform}": "amap", "{fmt}": "csv",
                "{name}": "stations", "{collectionId}": "stations", "{featureId}": "x"}


def test_every_parameter_refuses_nul_and_echoes_little(client: TestClient,
                                                       keys: dict[str, str]) -> None:
    """Each query parameter and header of every operation, sent a NUL or 60,000
    characters: never a 500, and an error body that does not carry the input back."""
    spec = client.get("/openapi.json").json()
    bad = []
    for path, item in spec["paths"].items():
        url = path
        for name, value in _PATH_VALUES.items():
            url = url.replace(name, value)
        for method, op in item.items():
            for p in op.get("parameters", []):
                for value in ("a\x00b", "x" * 60_000):
                    headers = {"Authorization": keys["admin"]}
                    if p["in"] == "query":
                        r = client.request(method, url, params={p["name"]: value},
                                           headers=headers)
                    elif p["in"] == "header" and "\x00" not in value:
                        r = client.request(method, url, headers={**headers, p["name"]: value})
                    else:
                        continue
                    if r.status_code >= 500 or (r.status_code >= 400 and len(r.content) > 5000):
                        bad.append((method, path, p["name"], len(value), r.status_code,
                                    len(r.content)))
    assert not bad, bad
