"""OGC API - Features under /ogc: the documents the standard requires, paging, filters, 304s.

Every expectation is computed independently of the endpoint: from the station
rows read back with plain SQL, or from the bodies the test wrote.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jsonschema
import psycopg
import pytest
from fastapi.testclient import TestClient
from geojson_pydantic import Feature, FeatureCollection

from geo_service.domain.catalogue import AMENITIES, TEN_ONES, HostType
from geo_service.domain.coords import CHINA_BBOX
from geo_service.feeds import ogc_service
from geo_service.infra.settings import Settings
from geo_service.web.app import create_app
from tests.conftest import station_body
from tests.helpers import insert_stations
from tests.helpers import live_server as serve

ITEMS = "/ogc/collections/stations/items"
CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf"
PART3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf"
STATUSES = ["open", "open", "temporarily_closed", "planned", "closed", "duplicate"]
DISTRICTS = [("460202", "460200"), ("460203", "460200"), ("460204", "460200"),
             ("440303", "440300")]


@pytest.fixture
def mixed(db: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """300 stations spread over Sanya with every status, host type and amenity mix."""
    rng = random.Random(20261122)
    bodies = []
    for i in range(300):
        district, city = rng.choice(DISTRICTS)
        amenities = [a.code for a in AMENITIES if rng.random() < 0.5]
        bodies.append(station_body(
            f"T-{i:04d}", round(rng.uniform(109.0, 110.0), 6), round(rng.uniform(18.0, 18.8), 6),
            status=rng.choice(STATUSES), host_type=rng.choice(list(HostType)).value,
            district_code=district, city_code=city, amenities=amenities))
    insert_stations(db, bodies)
    return bodies


def _published(conn: psycopg.Connection[Any], where: str = "true") -> list[str]:
    """Codes of the published stations matching ``where``, in id order."""
    rows = conn.execute(
        "SELECT code FROM station s WHERE status IN ('open', 'temporarily_closed') "
        f"AND {where} ORDER BY id").fetchall()
    return [r[0] for r in rows]


def _codes(client: TestClient, **params: Any) -> list[str]:
    r = client.get(ITEMS, params={"limit": 10_000, **params})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["numberMatched"] == doc["numberReturned"] == len(doc["features"])
    return [f["id"] for f in doc["features"]]


def _error_field(r: httpx.Response) -> str:
    return str(r.json()["error"]["fields"][0]["field"])


def _rels(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {link["rel"]: link for link in doc["links"]}


def test_landing_page_and_conformance(client: TestClient, db: psycopg.Connection[Any]) -> None:
    r = client.get("/ogc")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["title"] and "SAMPLE" in doc["description"]
    links = _rels(doc)
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(links)
    assert links["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.1"
    assert links["service-doc"]["type"] == "text/html"
    for link in doc["links"]:
        assert link["href"].startswith("http://testserver/"), link  # absolute
        assert client.get(link["href"]).status_code == 200, link
    assert links["data"]["href"] == "http://testserver/ogc/collections"
    assert "/ogc/collections/{collectionId}/items" in client.get(
        links["service-desc"]["href"]).json()["paths"]

    conf = client.get(links["conformance"]["href"]).json()["conformsTo"]
    assert {f"{CORE}/core", f"{CORE}/geojson", f"{PART3}/queryables",
            f"{PART3}/queryables-query-parameters"} <= set(conf)


def test_collection_metadata_and_extent(
    client: TestClient, seeded: psycopg.Connection[Any]
) -> None:
    seeded.execute("UPDATE station SET updated_at = '2025-03-01T00:00:00Z' WHERE code = 'SY-0002'")
    listing = client.get("/ogc/collections").json()
    assert _rels(listing)["self"]["href"] == "http://testserver/ogc/collections"
    assert [c["id"] for c in listing["collections"]] == ["stations"]
    coll = client.get("/ogc/collections/stations").json()
    assert coll == listing["collections"][0]
    assert coll["itemType"] == "feature" and "SAMPLE" in coll["description"]
    assert coll["crs"] == ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]
    links = _rels(coll)
    assert links["items"]["type"] == "application/geo+json"
    assert links["items"]["href"] == "http://testserver/ogc/collections/stations/items"
    assert links[ogc_service.QUERYABLES_REL]["type"] == "application/schema+json"
    row = seeded.execute(
        "SELECT min(ST_X(geog::geometry)), min(ST_Y(geog::geometry)), "
        "max(ST_X(geog::geometry)), max(ST_Y(geog::geometry)), min(updated_at), max(updated_at) "
        "FROM station WHERE status IN ('open', 'temporarily_closed')").fetchone()
    assert row is not None
    assert coll["extent"]["spatial"]["bbox"] == [list(row[:4])]
    first, last = (dt.datetime.fromisoformat(t)
                   for t in coll["extent"]["temporal"]["interval"][0])
    assert (first, last) == (row[4], row[5]) and first.year == 2025


def test_empty_collection_extent_falls_back_to_china(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    coll = client.get("/ogc/collections/stations").json()
    assert coll["extent"]["spatial"]["bbox"] == [list(CHINA_BBOX)]
    assert coll["extent"]["temporal"]["interval"] == [[None, None]]
    doc = client.get(ITEMS).json()
    assert doc["numberMatched"] == doc["numberReturned"] == 0 and doc["features"] == []
    FeatureCollection.model_validate(doc)


def test_items_page_is_valid_geojson_with_counts(
    client: TestClient, seeded: psycopg.Connection[Any]
) -> None:
    r = client.get(ITEMS)
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    doc = r.json()
    FeatureCollection.model_validate(doc)
    published = _published(seeded)
    assert doc["numberMatched"] == len(published) > 10
    assert doc["numberReturned"] == 10 == len(doc["features"])  # the standard's default
    assert [f["id"] for f in doc["features"]] == published[:10]  # by id
    assert dt.datetime.fromisoformat(doc["timeStamp"]).tzinfo is not None
    links = _rels(doc)
    assert set(links) == {"self", "next", "collection"}  # no prev on the first page
    assert links["collection"]["href"] == "http://testserver/ogc/collections/stations"
    props = doc["features"][0]["properties"]
    assert {"code", "status", "open_now", "amenities", "ten_ones_count", "sample"} <= set(props)


def test_next_and_prev_links_page_through_every_station_once(
    client: TestClient, seeded: psycopg.Connection[Any]
) -> None:
    url: str | None = f"http://testserver{ITEMS}?limit=7"
    pages: list[list[str]] = []
    last = ""
    while url:
        doc = client.get(url).json()
        pages.append([f["id"] for f in doc["features"]])
        last, url = url, _rels(doc).get("next", {}).get("href")
        assert len(pages) < 50
    seen = [code for page in pages for code in page]
    assert seen == _published(seeded) and len(seen) == len(set(seen))
    assert all(len(p) == 7 for p in pages[:-1]) and 0 < len(pages[-1]) <= 7
    # And back again with prev, from the last page to the first.
    back: list[list[str]] = []
    url = last
    while url:
        doc = client.get(url).json()
        back.append([f["id"] for f in doc["features"]])
        url = _rels(doc).get("prev", {}).get("href")
    assert back == pages[::-1]


def test_pages_stop_at_the_byte_cap_and_next_goes_on_from_there(
    settings: Settings, seeded: psycopg.Connection[Any]
) -> None:
    """Issue 24, item 2: a page holds fewer features than its limit rather than pass
    ogc_max_page_bytes, and the next links still give every station once, in order."""
    cap = 16_384
    capped = settings.model_copy(update={"ogc_max_page_bytes": cap})
    with TestClient(create_app(capped)) as http:
        url: str | None = f"http://testserver{ITEMS}?limit=10000"
        seen: list[str] = []
        sizes = []
        while url:
            r = http.get(url, headers={"Accept-Encoding": "identity"})
            assert r.status_code == 200, r.text
            doc = r.json()
            FeatureCollection.model_validate(doc)
            assert doc["numberReturned"] == len(doc["features"]) > 0
            sizes.append(len(r.content))
            seen += [f["id"] for f in doc["features"]]
            url = _rels(doc).get("next", {}).get("href")
            assert len(sizes) < 200
    assert seen == _published(seeded)
    assert len(sizes) > 2 and max(sizes) <= cap, sizes


def test_offset_past_the_end_and_capped_limit(
    client: TestClient, seeded: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    n = len(_published(seeded))
    doc = client.get(ITEMS, params={"offset": n + 5, "limit": 10}).json()
    assert doc["numberMatched"] == n and doc["numberReturned"] == 0
    prev = _rels(doc)["prev"]["href"]
    assert parse_qs(urlsplit(prev).query)["offset"] == [str(n - 10)]
    assert "next" not in _rels(doc)
    # Above the maximum, limit is capped, not refused, and the next link says so.
    monkeypatch.setattr(ogc_service, "MAX_LIMIT", 5)
    doc = client.get(ITEMS, params={"limit": 50}).json()
    assert doc["numberReturned"] == 5
    assert parse_qs(urlsplit(_rels(doc)["next"]["href"]).query)["limit"] == ["5"]
    for bad in ("0", "-1", "x"):
        r = client.get(ITEMS, params={"limit": bad})
        assert r.status_code == 422 and _error_field(r) == "limit"
    r = client.get(ITEMS, params={"offset": "-1"})
    assert r.status_code == 422 and _error_field(r) == "offset"


def test_bbox_returns_exactly_the_stations_inside(
    client: TestClient, mixed: list[dict[str, Any]], db: psycopg.Connection[Any]
) -> None:
    rows = db.execute("SELECT code, ST_X(geog::geometry), ST_Y(geog::geometry) FROM station "
                      "WHERE status IN ('open', 'temporarily_closed') ORDER BY id").fetchall()
    rng = random.Random(7)
    for _ in range(25):
        # Edges on stations' own coordinates: a point on the edge is inside.
        xs = sorted(rng.sample([r[1] for r in rows], 2))
        ys = sorted(rng.sample([r[2] for r in rows], 2))
        expected = [c for c, x, y in rows if xs[0] <= x <= xs[1] and ys[0] <= y <= ys[1]]
        box = f"{xs[0]!r},{ys[0]!r},{xs[1]!r},{ys[1]!r}"
        assert _codes(client, bbox=box) == expected
    box3d = f"{xs[0]!r},{ys[0]!r},-10,{xs[1]!r},{ys[1]!r},100"
    assert _codes(client, bbox=box3d) == expected
    for bad in ("1,2,3", "a,b,c,d", "110,18,109,19", "109,18,110,NaN", "109,18,0,110,19,x",
                "109,18,200,110,19,100", "0,0,0,0,0"):
        r = client.get(ITEMS, params={"bbox": bad})
        assert r.status_code == 422 and _error_field(r) == "bbox", bad


def test_datetime_filters_on_updated_at(
    client: TestClient, mixed: list[dict[str, Any]], db: psycopg.Connection[Any]
) -> None:
    db.execute("UPDATE station SET updated_at = timestamptz '2025-01-01T00:00:00Z' "
               "+ (id * interval '1 hour')")
    at = db.execute("SELECT updated_at FROM station WHERE code = 'T-0010'").fetchone()
    assert at is not None
    t = at[0].astimezone(dt.UTC)
    z = "%Y-%m-%dT%H:%M:%SZ"

    def where(sql: str) -> list[str]:
        return _published(db, sql)

    assert _codes(client, datetime=t.strftime(z)) == where(f"updated_at = '{t.isoformat()}'")
    same_instant_in_beijing = t.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    assert _codes(client, datetime=same_instant_in_beijing) == where(
        f"updated_at = '{t.isoformat()}'")
    a, b = t.strftime(z), (t + dt.timedelta(hours=30)).strftime(z)
    assert _codes(client, datetime=f"{a}/{b}") == where(
        f"updated_at BETWEEN '{a}' AND '{b}'")
    assert len(where(f"updated_at BETWEEN '{a}' AND '{b}'")) >= 5
    assert _codes(client, datetime=f"../{b}") == where(f"updated_at <= '{b}'")
    assert _codes(client, datetime=f"{a}/..") == where(f"updated_at >= '{a}'")
    assert _codes(client, datetime=f"{a}/") == where(f"updated_at >= '{a}'")
    assert _codes(client, datetime="2025-01-02") == where(
        "updated_at >= '2025-01-02T00:00:00Z' AND updated_at < '2025-01-03T00:00:00Z'")
    assert _codes(client, datetime="2030-01-01T00:00:00Z/..") == []
    for bad in ("yesterday", "2025-01-01T00:00:00", "2025-13-01T00:00:00Z", "../..",
                f"{b}/{a}", "2025-01-01/2025-01-02/2025-01-03", "9999-12-31T23:00:00-23:59x"):
        r = client.get(ITEMS, params={"datetime": bad})
        assert r.status_code == 422 and _error_field(r) == "datetime", bad


def test_property_filters_match_the_database(
    client: TestClient, mixed: list[dict[str, Any]], db: psycopg.Connection[Any]
) -> None:
    ten = sum(1 << a.bit for a in TEN_ONES)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"status": "temporarily_closed"}, "status = 'temporarily_closed'"),
        ({"status": "open"}, "status = 'open'"),
        ({"host_type": "bank_branch"}, "host_type = 'bank_branch'"),
        ({"district_code": "460204"}, "district_code = '460204'"),
        ({"city_code": "440300"}, "city_code = '440300'"),
        ({"code": "T-0003"}, "code = 'T-0003'"),
        ({"ten_ones_count": 5}, f"bit_count((amenity_mask & {ten})::bit(64)) = 5"),
        ({"amenity": "canteen"}, "amenity_mask & (1 << 22) <> 0"),
        ({"amenity": "microwave", "district_code": "460202", "status": "open"},
         "amenity_mask & 4 <> 0 AND district_code = '460202' AND status = 'open'"),
    ]
    for params, sql in cases:
        expected = _published(db, sql)
        assert _codes(client, **params) == expected, params
        assert expected or params == {"code": "T-0003"}
    # Queryables count as the stored values say, independently of SQL:
    by_code = {b["code"]: b for b in mixed}
    matched = _codes(client, ten_ones_count=5, amenity="restroom")
    assert matched  # the loop below checks something
    for code in matched:
        have = set(by_code[code]["amenities"])
        assert "restroom" in have and sum(a.code in have for a in TEN_ONES) == 5
    for params in ({"status": "closed"}, {"host_type": "castle"}, {"amenity": "jacuzzi"},
                   {"ten_ones_count": 11}, {"district_code": "46 02"}, {"code": "x\x00"}):
        r = client.get(ITEMS, params=params)
        assert r.status_code == 422 and _error_field(r) == next(iter(params)), params


def test_queryables_schema_and_every_queryable_is_a_parameter(
    client: TestClient, mixed: list[dict[str, Any]]
) -> None:
    r = client.get("/ogc/collections/stations/queryables")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/schema+json")
    schema = r.json()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == "http://testserver/ogc/collections/stations/queryables"
    props = schema["properties"]
    assert {"status", "host_type", "district_code", "city_code", "code", "ten_ones_count",
            "amenity"} <= set(props)
    example = {"string": "460204", "integer": 3}
    for name, spec in props.items():
        if name == "geometry":
            continue
        value = spec.get("enum", [example[spec["type"]]])[0]
        jsonschema.validate(value, spec)
        r = client.get(ITEMS, params={name: value})
        assert r.status_code == 200, (name, r.text)


def test_single_item_and_not_found(client: TestClient, mixed: list[dict[str, Any]]) -> None:
    code = next(b["code"] for b in mixed if b["status"] == "temporarily_closed")
    r = client.get(f"{ITEMS}/{code}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    doc = r.json()
    Feature.model_validate(doc)
    assert doc["id"] == code and doc["properties"]["open_now"] is False
    links = _rels(doc)
    assert links["self"]["href"] == f"http://testserver{ITEMS}/{code}"
    assert links["collection"]["href"] == "http://testserver/ogc/collections/stations"
    assert client.get(links["self"]["href"]).json()["id"] == code

    hidden = next(b["code"] for b in mixed if b["status"] in ("planned", "closed"))
    for path in (f"{ITEMS}/{hidden}", f"{ITEMS}/NOPE-1", f"{ITEMS}/a%20b"):
        r = client.get(path)
        assert r.status_code == 404 and _error_field(r) == "featureId", path
    for path in ("/ogc/collections/roads", "/ogc/collections/roads/items",
                 "/ogc/collections/roads/queryables", f"/ogc/collections/roads/items/{code}"):
        r = client.get(path)
        assert r.status_code == 404 and _error_field(r) == "collectionId", path
        assert r.headers["content-type"] == "application/json"


def test_unknown_parameters_refused_and_format_accepted(
    client: TestClient, seeded: psycopg.Connection[Any]
) -> None:
    for path in (ITEMS, f"{ITEMS}/SY-0001", "/ogc", "/ogc/collections/stations"):
        r = client.get(path, params={"filter": "status='open'"})
        assert r.status_code == 400 and _error_field(r) == "filter", path
    r = client.get(ITEMS, params={"bbox-crs": "EPSG:4326", "limit": 2})
    assert r.status_code == 400 and _error_field(r) == "bbox-crs"
    for f in ("json", "geojson"):
        assert client.get(ITEMS, params={"f": f}).status_code == 200
        assert client.get(f"{ITEMS}/SY-0001", params={"f": f}).status_code == 200
    assert client.get("/ogc", params={"f": "json"}).status_code == 200
    r = client.get(ITEMS, params={"f": "html"})
    assert r.status_code == 422 and _error_field(r) == "f"
    # Other parameters survive into the paging links.
    doc = client.get(ITEMS, params={"f": "json", "status": "open", "limit": 3}).json()
    query = parse_qs(urlsplit(_rels(doc)["next"]["href"]).query)
    assert query == {"f": ["json"], "status": ["open"], "limit": ["3"], "offset": ["3"]}


def test_etag_and_304(client: TestClient, seeded: psycopg.Connection[Any]) -> None:
    for path in (f"{ITEMS}?limit=5", f"{ITEMS}/SY-0001", "/ogc/collections"):
        first = client.get(path)
        etag = first.headers["ETag"]
        again = client.get(path, headers={"If-None-Match": etag})
        if again.status_code == 200:  # the open-now minute turned between the two calls
            again = client.get(path, headers={"If-None-Match": again.headers["ETag"]})
        assert again.status_code == 304 and again.content == b"", path
    before = client.get(ITEMS).headers["ETag"]
    assert client.get(f"{ITEMS}?limit=11").headers["ETag"] != before
    insert_stations(seeded, [station_body("NEW-1", 109.5, 18.3)])
    r = client.get(ITEMS, headers={"If-None-Match": before})
    assert r.status_code == 200 and r.json()["numberMatched"] == len(_published(seeded))
    assert client.get(f"{ITEMS}/NOPE", headers={"If-None-Match": "*"}).status_code == 404


@pytest.fixture
def live_server(seeded: psycopg.Connection[Any], db_url: str) -> Iterator[str]:
    with serve(db_url) as base:
        yield base


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL (ogrinfo) is not installed")
def test_gdal_opens_the_service(live_server: str, seeded: psycopg.Connection[Any]) -> None:
    """GDAL's OAPIF driver finds the layer and reads every published station."""
    source = f"OAPIF:{live_server}/ogc"
    listing = subprocess.run(["ogrinfo", "-ro", source], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    assert re.search(r"^1: stations\b", listing, re.MULTILINE), listing
    features = subprocess.run(["ogrinfo", "-ro", "-al", "-q", source, "stations"],
                              capture_output=True, text=True, timeout=120, check=True).stdout
    codes = set(re.findall(r"^\s+code \(String\) = (\S+)$", features, re.MULTILINE))
    assert codes == set(_published(seeded))
