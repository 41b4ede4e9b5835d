"""The GeoJSON station feed, status and discovery feeds, JSON Schemas, ETag/304, deep links."""

from __future__ import annotations

import datetime as dt
import json
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
from fastapi.testclient import TestClient
from geojson_pydantic import FeatureCollection
from pyproj import Geod

from geo_service.domain.coords import Crs, to_wgs84
from geo_service.feeds.caching import FeedState, not_modified, validators
from geo_service.infra.paths import PROJECT_ROOT

GEOD = Geod(ellps="WGS84")
GEOJSON_SCHEMA = PROJECT_ROOT / "node_modules" / "geojson-schema" / "FeatureCollection.json"


def _published(
    conn: psycopg.Connection[Any], where: str = "true"
) -> dict[str, tuple[float, float]]:
    rows = conn.execute(
        "SELECT code, ST_X(geog::geometry), ST_Y(geog::geometry) FROM station s "
        f"WHERE status IN ('open', 'temporarily_closed') AND {where}").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _our_schema(client: TestClient, name: str) -> dict[str, Any]:
    r = client.get(f"/v1/feeds/schemas/{name}.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/schema+json")
    schema: dict[str, Any] = r.json()
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _validate(instance: Any, schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(instance)


def test_geojson_feed_validates_and_holds_every_published_station(
    client: TestClient, seeded: psycopg.Connection[Any]
) -> None:
    r = client.get("/v1/feeds/stations.geojson")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geo+json"
    doc = r.json()
    # 1. The official GeoJSON JSON Schema (geojson/schema, from npm at setup).
    jsonschema.Draft7Validator(json.loads(Path(GEOJSON_SCHEMA).read_text())).validate(doc)
    # 2. An independent validator.
    FeatureCollection.model_validate(doc)
    # 3. Our own published schema, with the consumer properties.
    _validate(doc, _our_schema(client, "stations"))

    expected = _published(seeded)
    got = {f["id"]: f for f in doc["features"]}
    assert set(got) == set(expected) and len(doc["features"]) == len(expected)
    assert "temporarily_closed" in {f["properties"]["status"] for f in doc["features"]}
    for code, (lon, lat) in expected.items():
        flon, flat = got[code]["geometry"]["coordinates"]  # RFC 7946: lon, lat
        assert abs(flon - lon) < 1e-6 and abs(flat - lat) < 1e-6
    props = got["SY-0001"]["properties"]
    assert props["sample"] is True and "SAMPLE" in doc["note"]
    assert {"code", "label_zh", "label_en"} <= set(props["amenities"][0])
    assert props["ten_ones_count"] == sum(a["ten_ones"] for a in props["amenities"])
    assert isinstance(props["open_now"], bool)


def test_geojson_feed_area_and_bbox(client: TestClient, seeded: psycopg.Connection[Any]) -> None:
    doc = client.get("/v1/feeds/stations.geojson", params={"area": "460204"}).json()
    assert {f["id"] for f in doc["features"]} == set(
        _published(seeded, "district_code = '460204'"))
    box = (109.45, 18.20, 109.55, 18.30)
    doc = client.get("/v1/feeds/stations.geojson",
                     params={"bbox": ",".join(map(str, box))}).json()
    inside = _published(seeded, "geog::geometry && ST_MakeEnvelope(109.45, 18.20, 109.55, "
                                "18.30, 4326)")
    assert inside and {f["id"] for f in doc["features"]} == set(inside)
    r = client.get("/v1/feeds/stations.geojson", params={"bbox": "1,2,3"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "bbox"


def test_feed_with_no_stations_is_an_empty_collection(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    doc = client.get("/v1/feeds/stations.geojson").json()
    assert doc["type"] == "FeatureCollection" and doc["features"] == []
    FeatureCollection.model_validate(doc)


def test_etag_304_and_change_invalidates(
    client: TestClient, seeded: psycopg.Connection[Any], keys: dict[str, str]
) -> None:
    for path in ("/v1/feeds/stations.geojson", "/v1/feeds/station_status", "/v1/feeds",
                 "/v1/feeds/changes"):
        first = client.get(path)
        etag = first.headers["ETag"]
        assert etag.startswith('W/"') and "max-age" in first.headers["Cache-Control"]
        again = client.get(path, headers={"If-None-Match": etag})
        if again.status_code == 200:  # the open-now minute turned between the two calls
            again = client.get(path, headers={"If-None-Match": again.headers["ETag"]})
        assert again.status_code == 304, path
        assert again.content == b"" and again.headers["ETag"]
    before = client.get("/v1/feeds/stations.geojson").headers["ETag"]
    r = client.patch("/v1/stations/SY-0001", json={"version": 1, "phone": "0898-1"},
                     headers={"Authorization": keys["admin"]})
    assert r.status_code == 200, r.text
    r = client.get("/v1/feeds/stations.geojson", headers={"If-None-Match": before})
    assert r.status_code == 200 and r.headers["ETag"] != before
    phone = {f["id"]: f["properties"]["phone"] for f in r.json()["features"]}["SY-0001"]
    assert phone == "0898-1"


def test_if_modified_since(client: TestClient, seeded: psycopg.Connection[Any]) -> None:
    # Stations last changed when the seed was loaded; a date after that is current...
    seeded.execute("UPDATE station SET updated_at = now() - interval '1 hour'")
    later = format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5), usegmt=True)
    earlier = format_datetime(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), usegmt=True)
    r = client.get("/v1/feeds", headers={"If-Modified-Since": later})
    assert r.status_code == 304
    r = client.get("/v1/feeds", headers={"If-Modified-Since": earlier})
    assert r.status_code == 200 and "Last-Modified" in r.headers
    # ...a garbled date is ignored, and If-None-Match wins over If-Modified-Since.
    assert client.get("/v1/feeds", headers={"If-Modified-Since": "yesterday"}).status_code == 200
    r = client.get("/v1/feeds", headers={"If-Modified-Since": later, "If-None-Match": '"x"'})
    assert r.status_code == 200


def test_validators_rules() -> None:
    t = dt.datetime(2026, 11, 22, 8, 0, 0, 400_000, tzinfo=dt.UTC)
    state = FeedState(seq=7, last_modified=t)
    v = validators(state, "f", {"a": 1}, now=t + dt.timedelta(seconds=5))
    assert v.etag != validators(state, "f", {"a": 2}).etag
    assert v.etag != validators(FeedState(8, t), "f", {"a": 1}).etag
    assert v.last_modified == t.replace(microsecond=0)
    # Inside the second of the last change Last-Modified is withheld: a second
    # change in that same second could not be told apart.
    assert validators(state, "f", now=t + dt.timedelta(milliseconds=100)).last_modified is None
    assert not_modified(v, f"W/{v.etag[2:]}, \"zzz\"", None)
    assert not_modified(v, v.etag.removeprefix("W/"), None)  # weak comparison
    assert not_modified(v, "*", None)
    assert not not_modified(v, '"other"', None)


def test_station_status_and_discovery(
    client: TestClient, seeded: psycopg.Connection[Any]
) -> None:
    status = client.get("/v1/feeds/station_status").json()
    _validate(status, _our_schema(client, "station_status"))
    assert {s["code"] for s in status["data"]["stations"]} == set(_published(seeded))
    closed = [s for s in status["data"]["stations"] if s["temporarily_closed"]]
    assert closed and all(s["open_now"] is False for s in closed)
    assert status["ttl"] > 0 and status["last_updated"].endswith("Z")

    disc = client.get("/v1/feeds").json()
    _validate(disc, _our_schema(client, "discovery"))
    names = {f["name"] for f in disc["data"]["feeds"]}
    assert {"stations", "station_status", "changes", "ogc_features", "vector_tiles",
            "export_amap_csv", "export_baidu_xlsx"} <= names
    for feed in disc["data"]["feeds"]:
        assert client.get(feed["url"]).status_code == 200, feed["url"]
        if "schema" in feed:
            assert client.get(feed["schema"]).status_code == 200
    # The JSON feeds of our own making publish a schema (the branch above runs).
    assert {f["name"] for f in disc["data"]["feeds"] if "schema" in f} == {
        "stations", "station_status", "changes"}
    r = client.get("/v1/feeds/schemas/nope.json")
    assert r.status_code == 404 and r.json()["error"]["fields"][0]["field"] == "name"


def test_deep_links_land_on_the_stored_point(
    client: TestClient, seeded: psycopg.Connection[Any]
) -> None:
    """Each platform's link, converted back from its system, is the stored WGS-84 point."""
    station = client.get("/v1/stations/SY-0012").json()
    assert station["status"] == "open"
    stored = _published(seeded, "code = 'SY-0012'")["SY-0012"]
    links = station["links"]

    def after(url: str, key: str) -> str:
        return url.split(f"{key}", 1)[1].split("&", 1)[0].split(";", 1)[0]

    amap = after(links["amap"], "position=").split(",")
    amap_ride = after(links["amap_ride"], "to=").split(",")[:2]
    tencent = after(links["tencent"], "coord:").split(",")[::-1]
    tencent_ride = after(links["tencent_ride"], "tocoord=").split(",")[::-1]
    baidu = after(links["baidu"], "location=").split(",")[::-1]
    baidu_ride = after(links["baidu_ride"], "latlng:").split(",")[::-1]
    geo = links["geo"].removeprefix("geo:").split("?")[0].split(",")[::-1]
    for (lon, lat), crs in ((amap, Crs.GCJ02), (amap_ride, Crs.GCJ02), (tencent, Crs.GCJ02),
                            (tencent_ride, Crs.GCJ02), (baidu, Crs.BD09),
                            (baidu_ride, Crs.BD09), (geo, Crs.WGS84)):
        wlon, wlat = to_wgs84(float(lon), float(lat), crs)
        assert GEOD.inv(wlon, wlat, *stored)[2] < 0.5, (crs, lon, lat)
    # The GCJ-02 links are really shifted (~500 m in Sanya), not WGS-84 relabelled.
    assert GEOD.inv(float(amap[0]), float(amap[1]), *stored)[2] > 100
    assert "mode=ride" in links["amap_ride"] and "mode=riding" in links["baidu_ride"]
    assert "type=bike" in links["tencent_ride"]
    # Nearest answers and feeds carry the same links.
    near = client.get("/v1/stations/nearest", params={"lon": stored[0], "lat": stored[1],
                                                      "k": 1}).json()
    assert near["results"][0]["links"] == links
    feed = client.get("/v1/feeds/stations.geojson").json()
    assert {f["id"]: f for f in feed["features"]}["SY-0012"]["properties"]["links"] == links
