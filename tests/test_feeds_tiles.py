"""Vector tiles of the stations and their TileJSON, against the real PostGIS.

Expected tile contents are computed here, independently of PostGIS: WGS-84 →
fractional slippy-map tile coordinates with the standard formula, then tile
units (extent 4096, buffer 64). A station belongs to a tile when it is
published and its point lies in the tile grown by the buffer.
"""

from __future__ import annotations

import math
from typing import Any

import jsonschema
import mapbox_vector_tile
import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.domain.catalogue import AMENITY_BY_CODE
from geo_service.domain.coords import from_wgs84
from geo_service.feeds import tile_queries as tq
from geo_service.feeds.routes.tiles import tile_params
from tests.conftest import station_body
from tests.helpers import insert_stations

EXTENT, BUFFER = 4096, 64
MVT = "application/vnd.mapbox-vector-tile"
# A zoom-14 tile in Sanya (Tianya district), picked by the formula below.
Z, TX, TY = 14, 13175, 7343


def fractional_tile(lon: float, lat: float, z: int) -> tuple[float, float]:
    """WGS-84 → fractional XYZ tile coordinates (the OSM slippy-map formula)."""
    n = 2 ** z
    rad = math.radians(lat)
    return (lon + 180.0) / 360.0 * n, (1.0 - math.asinh(math.tan(rad)) / math.pi) / 2.0 * n


def lonlat_at(z: int, fx: float, fy: float) -> tuple[float, float]:
    """Inverse of :func:`fractional_tile`: the point at fractional tile coords."""
    n = 2 ** z
    return fx / n * 360.0 - 180.0, math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * fy / n))))


def tile_units(lon: float, lat: float, z: int, x: int, y: int) -> tuple[float, float]:
    fx, fy = fractional_tile(lon, lat, z)
    return (fx - x) * EXTENT, (fy - y) * EXTENT


def in_buffered_tile(px: float, py: float) -> bool:
    return -BUFFER <= px <= EXTENT + BUFFER and -BUFFER <= py <= EXTENT + BUFFER


def decode(body: bytes) -> dict[str, dict[str, Any]]:
    """The ``stations`` layer's features by code (positions in tile units, y down)."""
    tile = mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})
    assert set(tile) == {"stations"}
    layer = tile["stations"]
    assert layer["extent"] == EXTENT
    out = {}
    for f in layer["features"]:
        assert f["geometry"]["type"] == "Point"
        out[f["properties"]["code"]] = {**f["properties"], "xy": f["geometry"]["coordinates"]}
    assert len(out) == len(layer["features"]), "a station appears twice"
    return out


def fetch(client: TestClient, z: int, x: int, y: int) -> dict[str, dict[str, Any]]:
    """GET one WGS-84 tile that must hold stations, decoded."""
    r = client.get(f"/tiles/{z}/{x}/{y}.mvt")
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    return decode(r.content)


# Stations placed at fractional positions in tile (Z, TX, TY): (code, fx, fy, overrides).
# Offsets of -0.01 tile = -41 units (inside the buffer), -0.03 = -123 (outside).
LAYOUT: list[tuple[str, float, float, dict[str, Any]]] = [
    ("T-CENTRE", 0.5, 0.5, {"amenities": ["microwave", "restroom", "ebike_charging"]}),
    ("T-NW", 0.1, 0.12, {"amenities": [a for a in AMENITY_BY_CODE], "host_type": "enterprise"}),
    ("T-SE", 0.93, 0.88, {"amenities": [], "status": "temporarily_closed"}),
    ("T-BUF-W", -0.01, 0.4, {}),
    ("T-BUF-S", 0.6, 1.012, {}),
    ("T-OUT-W", -0.03, 0.4, {}),
    ("T-OUT-N", 0.5, -0.05, {}),
    ("T-CLOSED", 0.3, 0.7, {"status": "closed"}),
    ("T-PLANNED", 0.7, 0.3, {"status": "planned"}),
    ("T-DUP", 0.45, 0.55, {"status": "duplicate"}),
    ("T-FAR", 3.0, 3.0, {}),
]


@pytest.fixture
def stations(db: psycopg.Connection[Any]) -> dict[str, dict[str, Any]]:
    bodies = {}
    for code, fx, fy, over in LAYOUT:
        lon, lat = lonlat_at(Z, TX + fx, TY + fy)
        bodies[code] = station_body(code, lon, lat, **over)
    bodies["T-NW"]["sample"] = True
    insert_stations(db, list(bodies.values()))
    rows = db.execute("SELECT code, ST_X(geog::geometry), ST_Y(geog::geometry) FROM station")
    for code, lon, lat in rows:
        bodies[code].update(lon=lon, lat=lat)  # as stored
    return bodies


def expected(stations: dict[str, dict[str, Any]], z: int, x: int, y: int,
             crs: str = "wgs84") -> dict[str, tuple[float, float]]:
    """Published stations in the buffered tile, with their expected tile-unit position."""
    out = {}
    for code, b in stations.items():
        if b["status"] not in ("open", "temporarily_closed"):
            continue
        lon, lat = from_wgs84(b["lon"], b["lat"], crs) if crs != "wgs84" else (b["lon"], b["lat"])
        px, py = tile_units(lon, lat, z, x, y)
        if in_buffered_tile(px, py):
            out[code] = (px, py)
    return out


def test_the_test_layout_is_what_it_says() -> None:
    lon, lat = lonlat_at(Z, TX + 0.5, TY + 0.5)
    assert 109.3 < lon < 109.6 and 18.2 < lat < 18.4  # Sanya
    fx, fy = fractional_tile(lon, lat, Z)
    assert (math.floor(fx), math.floor(fy)) == (TX, TY)


@pytest.mark.parametrize(("z", "dx", "dy"), [(14, 0, 0), (12, 0, 0), (17, 1, 2), (16, 0, 1)])
def test_tile_holds_exactly_the_published_stations_in_it(
    client: TestClient, stations: dict[str, dict[str, Any]], z: int, dx: int, dy: int
) -> None:
    lon, lat = stations["T-CENTRE"]["lon"], stations["T-CENTRE"]["lat"]
    fx, fy = fractional_tile(lon, lat, z)
    x, y = math.floor(fx) + dx, math.floor(fy) + dy
    want = expected(stations, z, x, y)
    r = client.get(f"/tiles/{z}/{x}/{y}.mvt")
    if not want:
        assert r.status_code == 204 and r.content == b""
        return
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MVT
    got = decode(r.content)
    assert set(got) == set(want)
    for code, (px, py) in want.items():
        gx, gy = got[code]["xy"]
        assert abs(gx - px) <= 1 and abs(gy - py) <= 1, (code, (gx, gy), (px, py))


def test_zoom_14_tile_contents_buffer_and_attributes(
    client: TestClient, stations: dict[str, dict[str, Any]]
) -> None:
    got = fetch(client, Z, TX, TY)
    # Written out, not only computed: inside + inside the buffer; never outside,
    # never closed / planned / duplicate.
    assert set(got) == {"T-CENTRE", "T-NW", "T-SE", "T-BUF-W", "T-BUF-S"}
    assert got["T-BUF-W"]["xy"][0] < 0 and got["T-BUF-S"]["xy"][1] > EXTENT
    assert set(got) == set(expected(stations, Z, TX, TY))

    c = got["T-CENTRE"]
    assert c == {"code": "T-CENTRE", "name": "测试驿站 T-CENTRE", "status": "open",
                 "host_type": "union_built", "ten_ones_count": 2,
                 "amenities": "microwave,restroom,ebike_charging", "sample": False,
                 "version": 1, "scheduled": False, "xy": c["xy"]}
    nw = got["T-NW"]
    assert nw["ten_ones_count"] == 10 and nw["host_type"] == "enterprise" and nw["sample"] is True
    assert nw["amenities"].split(",") == list(AMENITY_BY_CODE)  # catalogue order
    se = got["T-SE"]
    assert se["status"] == "temporarily_closed" and se["amenities"] == ""
    assert se["ten_ones_count"] == 0
    assert "open_now" not in c  # tiles are cached; open-now comes from the status feed


def test_the_neighbour_tile_shares_only_buffered_stations(
    client: TestClient, stations: dict[str, dict[str, Any]]
) -> None:
    got = fetch(client, Z, TX - 1, TY)
    assert set(got) == set(expected(stations, Z, TX - 1, TY))
    assert {"T-BUF-W", "T-OUT-W"} <= set(got) and "T-CENTRE" not in got
    assert got["T-BUF-W"]["xy"][0] > EXTENT - BUFFER  # its east edge, near 4096 + 41 - 4096


def test_gcj02_tiles_place_points_where_amap_draws_them(
    client: TestClient, stations: dict[str, dict[str, Any]]
) -> None:
    for dx in (-1, 0, 1):
        x = TX + dx
        want = expected(stations, Z, x, TY, crs="gcj02")
        r = client.get(f"/tiles/{Z}/{x}/{TY}.mvt?crs=gcj02")
        if not want:
            assert r.status_code == 204
            continue
        got = decode(r.content)
        assert set(got) == set(want), x
        for code, (px, py) in want.items():
            gx, gy = got[code]["xy"]
            assert abs(gx - px) <= 1 and abs(gy - py) <= 1, (code, (gx, gy), (px, py))
    # The shift in Sanya is hundreds of metres: the GCJ-02 tile differs from the WGS-84 one.
    a = decode(client.get(f"/tiles/{Z}/{TX}/{TY}.mvt").content)
    b = decode(client.get(f"/tiles/{Z}/{TX}/{TY}.mvt?crs=gcj02").content)
    assert set(a) != set(b) or a["T-CENTRE"]["xy"] != b["T-CENTRE"]["xy"]
    assert client.get(f"/tiles/{Z}/{TX}/{TY}.mvt?crs=bd09").status_code == 422


def test_empty_tiles_are_204(client: TestClient, stations: dict[str, dict[str, Any]]) -> None:
    ocean = client.get("/tiles/14/0/0.mvt")
    assert ocean.status_code == 204 and ocean.content == b""
    assert ocean.headers["etag"] and "max-age" in ocean.headers["cache-control"]
    # A tile with only a closed station in it is empty too.
    lon, lat = stations["T-CLOSED"]["lon"], stations["T-CLOSED"]["lat"]
    fx, fy = fractional_tile(lon, lat, 20)
    r = client.get(f"/tiles/20/{math.floor(fx)}/{math.floor(fy)}.mvt")
    assert r.status_code == 204


@pytest.mark.parametrize(("path", "field"), [
    ("/tiles/23/0/0.mvt", "z"),
    ("/tiles/-1/0/0.mvt", "z"),
    ("/tiles/8/256/0.mvt", "x"),
    ("/tiles/8/0/256.mvt", "y"),
    ("/tiles/9/512/0.mvt", "x"),
    ("/tiles/9/0/512.mvt", "y"),
    ("/tiles/8/-1/0.mvt", "x"),
    ("/tiles/8/0/-3.mvt", "y"),
    ("/tiles/8/a/0.mvt", "x"),
    ("/tiles/22/4194304/0.mvt", "x"),
    ("/tiles/22/0/99999999999999999999999.mvt", "y"),
    ("/tiles/8/0/0.mvt?crs=bd09", "crs"),
])
def test_out_of_range_tiles_are_refused_naming_the_field(
    client: TestClient, path: str, field: str
) -> None:
    r = client.get(path)
    assert r.status_code == 422, (path, r.status_code, r.text)
    error = r.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in {f["field"] for f in error["fields"]}, error


@pytest.mark.parametrize("z", [0, 4, 7])
def test_tiles_below_the_tilejson_minzoom_are_refused(
        client: TestClient, stations: dict[str, dict[str, Any]], z: int) -> None:
    """A zoom-0 tile holds every station: only the zooms the TileJSON advertises are served."""
    doc = client.get("/tiles/stations.json").json()
    assert doc["minzoom"] == doc["vector_layers"][0]["minzoom"] == 8 > z
    lon, lat = stations["T-CENTRE"]["lon"], stations["T-CENTRE"]["lat"]
    fx, fy = fractional_tile(lon, lat, z)
    r = client.get(f"/tiles/{z}/{math.floor(fx)}/{math.floor(fy)}.mvt")
    assert r.status_code == 422, r.text
    assert {f["field"] for f in r.json()["error"]["fields"]} == {"z"}
    fx, fy = fractional_tile(lon, lat, doc["minzoom"])
    assert client.get(f"/tiles/{doc['minzoom']}/{math.floor(fx)}/{math.floor(fy)}.mvt"
                      ).status_code == 200


def test_tile_etag_304_and_change(client: TestClient, stations: dict[str, dict[str, Any]],
                                  db: psycopg.Connection[Any]) -> None:
    url = f"/tiles/{Z}/{TX}/{TY}.mvt"
    first = client.get(url)
    etag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("public, max-age=")
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    # Another tile, or the GCJ-02 version of this one, has another ETag.
    assert client.get(f"/tiles/{Z}/{TX - 1}/{TY}.mvt").headers["etag"] != etag
    assert client.get(url + "?crs=gcj02").headers["etag"] != etag
    # A station write changes the tile: the old ETag no longer matches.
    db.execute("UPDATE station SET status = 'closed', version = version + 1 "
               "WHERE code = 'T-CENTRE'")
    after = client.get(url, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    assert "T-CENTRE" not in decode(after.content)


def test_tile_query_uses_the_planar_index(db: psycopg.Connection[Any],
                                          stations: dict[str, dict[str, Any]]) -> None:
    with db.transaction():
        db.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in db.execute(
            "EXPLAIN " + tq.TILE_MVT, tile_params(Z, TX, TY)).fetchall())
    assert "ix_station_geom" in plan, plan


# The TileJSON 3.0.0 schema (github.com/mapbox/tilejson-spec, 3.0.0/schema.json), abridged.
TILEJSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["tilejson", "tiles", "vector_layers"],
    "properties": {
        "tilejson": {"type": "string", "pattern": r"\d+\.\d+\.\d+\w?[\w\d]*"},
        "tiles": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "vector_layers": {"type": "array", "items": {
            "type": "object", "required": ["id", "fields"],
            "properties": {"id": {"type": "string"},
                           "fields": {"type": "object",
                                      "additionalProperties": {"type": "string"}},
                           "description": {"type": "string"},
                           "minzoom": {"type": "integer"}, "maxzoom": {"type": "integer"}}}},
        "attribution": {"type": "string"},
        "bounds": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        "center": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
        "description": {"type": "string"},
        "maxzoom": {"type": "integer", "minimum": 0, "maximum": 30},
        "minzoom": {"type": "integer", "minimum": 0, "maximum": 30},
        "name": {"type": "string"},
        "scheme": {"enum": ["xyz", "tms"]},
        "version": {"type": "string", "pattern": r"\d+\.\d+\.\d+\w?[\w\d]*"},
    },
}


def test_tilejson_is_valid_and_its_template_works(
    client: TestClient, stations: dict[str, dict[str, Any]]
) -> None:
    r = client.get("/tiles/stations.json")
    assert r.status_code == 200
    doc = r.json()
    jsonschema.Draft7Validator(TILEJSON_SCHEMA).validate(doc)
    assert doc["tilejson"] == "3.0.0" and doc["scheme"] == "xyz"
    template = doc["tiles"][0]
    assert template == "http://testserver/tiles/{z}/{x}/{y}.mvt"
    assert 0 <= doc["minzoom"] <= doc["maxzoom"] <= 22
    # Bounds cover every published station; the centre lies inside them at a served zoom.
    w, s, e, n = doc["bounds"]
    for b in stations.values():
        if b["status"] in ("open", "temporarily_closed"):
            assert w <= b["lon"] <= e and s <= b["lat"] <= n
    assert not (w <= stations["T-CLOSED"]["lon"] - 1)  # bounds are tight, not the world
    clon, clat, cz = doc["center"]
    assert w <= clon <= e and s <= clat <= n and doc["minzoom"] <= cz <= doc["maxzoom"]
    # One layer, whose fields are exactly the attributes the tiles carry.
    (layer,) = doc["vector_layers"]
    assert layer["id"] == "stations"
    url = template.format(z=Z, x=TX, y=TY).removeprefix("http://testserver")
    tile = client.get(url)
    assert tile.status_code == 200
    props = {k for f in decode(tile.content).values() for k in f if k != "xy"}
    assert set(layer["fields"]) == props
    assert all(v.split(":")[0] in ("String", "Number", "Boolean") for v in layer["fields"].values())
    assert "SAMPLE" in doc["description"]  # one station is sample data
    assert doc["attribution"] and doc["name"]
    # The GCJ-02 TileJSON points at GCJ-02 tiles.
    gcj = client.get("/tiles/stations.json?crs=gcj02").json()
    assert gcj["tiles"] == ["http://testserver/tiles/{z}/{x}/{y}.mvt?crs=gcj02"]
    w, s, e, n = gcj["bounds"]
    for b in stations.values():
        if b["status"] in ("open", "temporarily_closed"):
            glon, glat = from_wgs84(b["lon"], b["lat"], "gcj02")
            assert w <= glon <= e and s <= glat <= n


def test_tilejson_without_sample_data_and_without_stations(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    empty = client.get("/tiles/stations.json").json()
    jsonschema.Draft7Validator(TILEJSON_SCHEMA).validate(empty)
    assert empty["bounds"] == [-180.0, -85.051129, 180.0, 85.051129]
    insert_stations(db, [station_body("REAL-1", 110.0, 20.0)])
    doc = client.get("/tiles/stations.json").json()
    assert doc["bounds"][0] <= 110.0 <= doc["bounds"][2]
    assert "All stations are SAMPLE" not in doc["description"]


def test_tilejson_etag_304(client: TestClient, stations: dict[str, dict[str, Any]]) -> None:
    r = client.get("/tiles/stations.json")
    etag = r.headers["etag"]
    again = client.get("/tiles/stations.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/tiles/stations.json?crs=gcj02",
                      headers={"If-None-Match": etag}).status_code == 200
