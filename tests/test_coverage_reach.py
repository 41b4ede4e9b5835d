"""Coverage by reach (issue 28) on the real Helsinki extract: the cells a walk reaches
equal pgRouting's (pgr_withPointsDD from each station, snaps added), a cell inside the
straight circle but across a barrier is not covered on foot, the scorecard carries both
shares, each station's service area holds what it covers; the API's answers (409 with no
roads, 422 for a bad reach). The roads are loaded once (tests.helpers.load_test_roads),
as tests/test_roads.py loads them, and its PostGIS snap oracle is reused."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import h3
import numpy as np
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod

from geo_service.coverage.by_road import read_network
from geo_service.coverage.cli import print_scorecard
from geo_service.coverage.schemas import CoverageRequest
from geo_service.coverage.service import run_coverage
from geo_service.maps.assets import AssetMode
from geo_service.maps.model import BASEMAPS, MapOptions
from geo_service.maps.pages import MapKind, make_page
from geo_service.maps.render import _share_words
from geo_service.roads.reach import Places, Unit, origins, place_costs, reach_graph
from tests import test_roads as oracle
from tests.conftest import station_body
from tests.helpers import insert_stations, load_test_roads
from tests.test_maps import payload
from tests.test_maps_browser import Visit

MINUTES = 6.0  # 360 s on foot by road; 400 m straight (4 km/h, the straight rule's walk)
LIMIT_S = MINUTES * 60
GEOD = Geod(ellps="WGS84")


@pytest.fixture
def helsinki(db: psycopg.Connection[Any], db_url: str) -> dict[str, Any]:
    """The roads, 12 stations at random points of the network's box, the request."""
    load_test_roads(db_url)
    row = db.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                     "(SELECT ST_Extent(geom) e FROM road_edge) s").fetchone()
    assert row is not None
    rnd = random.Random(28)
    minx, miny, maxx, maxy = row
    placed = [(f"HR-{i:02d}", rnd.uniform(minx, maxx), rnd.uniform(miny, maxy))
              for i in range(12)]
    insert_stations(db, [station_body(c, x, y) for c, x, y in placed])
    return {"stations": placed, "bbox": [minx, miny, maxx, maxy]}


def _dd_seconds(conn: psycopg.Connection[Any], origin: dict[str, Any],
                targets: list[dict[str, Any]], distance: float) -> dict[int, float]:
    """Network seconds from the snapped origin to each snapped target that pgRouting's
    driving distance with points reaches within ``distance`` (target index -> s)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS dd_point "
                 "(pid bigint, edge_id bigint, fraction float8, side char)")
    conn.execute("TRUNCATE dd_point")
    with conn.cursor() as cur:
        # as tests/test_roads: pgRouting answers nothing for a point at an edge's very end
        cur.executemany("INSERT INTO dd_point VALUES (%s, %s, "
                        "least(greatest(%s, 1e-12), 1 - 1e-12), 'b')",
                        [(i + 1, s["edge"], s["fraction"])
                         for i, s in enumerate([origin, *targets])])
    rows = conn.execute(
        "SELECT node, agg_cost FROM pgr_withPointsDD(%s, 'SELECT pid, edge_id, fraction, "
        "side FROM dd_point', -1, %s, directed := true, details := true) WHERE node < -1",
        (oracle.EDGE_SQL["walk"], distance)).fetchall()
    return {int(-node) - 2: float(cost) for node, cost in rows}


def test_walk_coverage_is_pgroutings_and_not_the_circle(
        helsinki: dict[str, Any], db: psycopg.Connection[Any],
        capsys: pytest.CaptureFixture[str]) -> None:
    req = CoverageRequest(bbox=helsinki["bbox"], resolution=9, reach="walk",
                          threshold_minutes=MINUTES)
    result = run_coverage(db, req)
    assert result["reach"] == "walk" and result["reach_limit_s"] == LIMIT_S
    assert result["threshold_m"] == pytest.approx(400.0)
    rows = db.execute("SELECT cell, bool_and(covered), bool_and(doubly), min(nearest_m) "
                      "FROM analysis_cell WHERE run_id = %s GROUP BY cell ORDER BY cell",
                      (result["run_id"],)).fetchall()
    cells = [r[0] for r in rows]
    centroids = [h3.cell_to_latlng(c)[::-1] for c in cells]
    stations = helsinki["stations"]
    reached: dict[str, set[int]] = {}
    seconds: dict[tuple[str, int], float] = {}
    cell_snaps = oracle._snaps(db, "walk", centroids)
    station_snaps = oracle._snaps(db, "walk", [(x, y) for _, x, y in stations])
    for (code, _, _), s_snap in zip(stations, station_snaps, strict=True):
        s_cost = s_snap["snap_m"] / oracle.WALK
        if s_cost > LIMIT_S:
            continue
        for i, net in _dd_seconds(db, s_snap, cell_snaps, LIMIT_S - s_cost).items():
            total = s_cost + net + cell_snaps[i]["snap_m"] / oracle.WALK
            seconds[code, i] = total
            if total <= LIMIT_S:
                reached.setdefault(code, set()).add(i)
    count = [sum(i in got for got in reached.values()) for i in range(len(cells))]
    assert [r[1] for r in rows] == [n >= 1 for n in count]
    assert [r[2] for r in rows] == [n >= 2 for n in count]
    assert 0 < sum(n >= 1 for n in count) < len(cells)

    # The circle lies: cells inside the straight 400 m of a station that the walk to it
    # takes more than twice as long as the straight line would (a barrier between),
    # and no station reaches on foot.
    barrier = []
    for i, (cell, covered, _doubly, _nearest) in enumerate(rows):
        lon, lat = centroids[i]
        for code, x, y in stations:
            straight = GEOD.inv(lon, lat, x, y)[2]
            walked = seconds.get((code, i), math.inf)
            if straight <= 400 and walked > 2 * straight / oracle.WALK and not covered:
                barrier.append(cell)
    assert barrier, "no cell inside the straight circle yet out of reach on foot"

    # The scorecard shows both shares, from the same run, and says which is which.
    total = next(a for a in result["areas"] if a["area"] == "total")
    assert total["straight_covered_share"] is not None
    assert total["straight_covered_share"] > total["covered_share"]
    print_scorecard(result)
    out = capsys.readouterr().out
    assert "by road (walk) within 6 min (straight: 400 m)" in out
    assert "straight" in out.splitlines()[2] and f"{100 * total['covered_share']:5.1f}%" in out

    # Each station's service area holds the snapped points of the cells it reaches.
    areas = dict(db.execute("SELECT station_code, ST_AsBinary(geom) FROM "
                            "analysis_service_area WHERE run_id = %s",
                            (result["run_id"],)).fetchall())
    assert set(areas) == set(reached)
    for code, got in reached.items():
        shape = shapely.from_wkb(bytes(areas[code]))
        for i in got:
            point = _snapped_point(db, cell_snaps[i])
            assert shape.buffer(1e-6).contains(point), (code, cells[i])


def _snapped_point(db: psycopg.Connection[Any], snap: dict[str, Any]) -> shapely.Point:
    row = db.execute("SELECT ST_AsBinary(ST_Transform(ST_LineInterpolatePoint(ST_Transform("
                     "geom, 3857), %s), 4326)) FROM road_edge WHERE id = %s",
                     (snap["fraction"], snap["edge"])).fetchone()
    assert row is not None
    return shapely.from_wkb(bytes(row[0]))


def test_district_tooltip_puts_the_circle_beside_the_walk() -> None:
    assert _share_words(0.42, 0.61, "walk") == (
        "直线覆盖 61.0% / 步行实际覆盖 42.0% (straight-line 61.0% / on foot by road 42.0%)")
    assert _share_words(0.42, None, "straight") == "42.0% 覆盖 covered"


def test_reach_over_http(helsinki: dict[str, Any], client: TestClient,
                         keys: dict[str, str], db_url: str) -> None:
    """By road over the API: fields, service areas as GeoJSON, recommendations by road;
    a bad reach is 422 naming it; no roads, 409 naming reach, never a straight answer."""
    auth = {"Authorization": keys["editor"]}
    body = {"bbox": helsinki["bbox"], "resolution": 9, "reach": "walk",
            "threshold_minutes": MINUTES, "gaps": 3}
    r = client.post("/v1/analysis/coverage", json=body, headers=auth)
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["reach"] == "walk" and run["reach_limit_s"] == LIMIT_S
    assert all("straight_covered_share" in a for a in run["areas"])
    fc = client.get(f"/v1/analysis/runs/{run['run_id']}/service-areas")
    assert fc.status_code == 200 and fc.headers["content-type"].startswith(
        "application/geo+json")
    features = fc.json()["features"]
    assert features and {f["geometry"]["type"] for f in features} == {"MultiPolygon"}
    assert {f["properties"]["station_code"] for f in features} <= {
        c for c, _, _ in helsinki["stations"]}
    page = client.get("/maps/coverage.html", params={"run": run["run_id"]})
    assert page.status_code == 200
    drawn = payload(page.text, "coverageLayer")
    assert sorted(a[0] for a in drawn["service_areas"]) == sorted(
        f["properties"]["station_code"] for f in features)
    first = drawn["service_areas"][0][1][0][0][0]  # [lat, lon] of an outline's vertex
    assert 59 < first[0] < 61 and 24 < first[1] < 26
    assert "步行按路网 6 分钟 min on foot by road" in drawn["subtitle"]
    assert drawn["nearest_label"] == "最近站点（直线距离） nearest station (straight line)"
    straight = client.post("/v1/analysis/coverage", json={**body, "reach": "straight"},
                           headers=auth).json()
    assert straight["reach"] == "straight"
    assert {a["straight_covered_share"] for a in straight["areas"]} == {None}
    assert client.get(f"/v1/analysis/runs/{straight['run_id']}/service-areas"
                      ).json()["features"] == []

    plan = client.post("/v1/analysis/recommendations", headers=auth, json={
        **body, "add": 2, "method": "greedy"})
    assert plan.status_code == 200, plan.text
    p = plan.json()
    assert p["reach"] == "walk" and p["covered_share_before"] == pytest.approx(
        next(a for a in run["areas"] if a["area"] == "total")["covered_share"])
    assert p["covered_after"] > p["covered_before"]

    for bad in ({"reach": "car"}, {"reach": "ebike", "mode": "walk"}):
        r = client.post("/v1/analysis/coverage", json={**body, **bad}, headers=auth)
        assert r.status_code == 422, r.text
        assert "reach" in json.dumps(r.json()["error"])

    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM road_edge")
        conn.execute("DELETE FROM road_vertex")
        conn.execute("DELETE FROM road_extract")
    try:
        keeper = client.app.state.roads  # type: ignore[attr-defined]
        keeper.checked_at = -math.inf  # look again now, not in 10 s
        r = client.post("/v1/analysis/coverage", json=body, headers=auth)
        assert r.status_code == 409, r.text
        assert [f["field"] for f in r.json()["error"]["fields"]] == ["reach"]
        r = client.post("/v1/analysis/recommendations", json={**body, "add": 1},
                        headers=auth)
        assert r.status_code == 409
    finally:
        load_test_roads(db_url)


@pytest.mark.parametrize("unit", ["seconds", "metres"])
def test_ebike_reach_is_the_ride_to_the_station(helsinki: dict[str, Any],
                                                db: psycopg.Connection[Any], unit: Unit) -> None:
    """One-way streets: a cell is reached when the ride *from* it to the station is within
    the limit. The swapped graph's cost from each station equals the forward graph's
    cost from the cell (graph.cost_to, checked against pgRouting in test_roads), in
    seconds; and in metres, the metres of that route when it is also the fastest."""
    network = read_network(db)
    assert network is not None
    forward = network.modes["ebike"]
    swapped = reach_graph(network, "ebike", unit)
    rnd = random.Random(5)
    box = helsinki["bbox"]
    lon = np.array([rnd.uniform(box[0], box[2]) for _ in range(40)])
    lat = np.array([rnd.uniform(box[1], box[3]) for _ in range(40)])
    places = Places.snap(swapped, lon, lat)
    limit = 300.0 if unit == "seconds" else 1500.0
    checked = 0
    for code, x, y in helsinki["stations"][:4]:
        [origin] = origins(swapped, np.array([x]), np.array([y]), limit)
        idx, cost = place_costs(swapped, origin, places, limit)
        got = dict(zip(idx.tolist(), cost.tolist(), strict=True))
        target = forward.snap(x, y)
        assert target is not None
        for i in range(lon.size):
            start = forward.snap(float(lon[i]), float(lat[i]))
            assert start is not None
            net, how, via = forward.cost_to(forward.reach(start, 1e12), target)
            if unit == "seconds":
                want = (start.snap_m + target.snap_m) / forward.snap_speed + net
            else:  # the shortest ride, not the fastest: bounded by the fastest's metres
                want = -1.0 if math.isinf(net) else start.snap_m + target.snap_m + \
                    forward.metres(forward.reach(start, 1e12), target, how, via)
            if unit == "seconds" and want <= limit - 1e-6:
                assert got[i] == pytest.approx(want, abs=1e-6), (code, i)
                checked += 1
            elif unit == "seconds" and want > limit + 1e-6:
                assert i not in got
            elif unit == "metres" and 0 <= want <= limit and i in got:
                assert got[i] <= want + 1e-3
                checked += 1
    assert checked > 3


def test_coverage_map_draws_service_areas_in_chromium(
        browser: Any, helsinki: dict[str, Any], db: psycopg.Connection[Any],
        tmp_path: Path) -> None:
    """A planner opens the by-road run's map offline: each station's service area is a
    polygon under the stations, and the district table has the straight column beside
    the walk's; nothing is fetched from outside."""
    run = run_coverage(db, CoverageRequest(bbox=helsinki["bbox"], resolution=9,
                                           reach="walk", threshold_minutes=MINUTES))
    outlines = db.execute("SELECT count(*) FROM analysis_service_area WHERE run_id = %s",
                          (run["run_id"],)).fetchone()
    assert outlines is not None and outlines[0] > 0
    opts = MapOptions(basemap=BASEMAPS["none"], assets=AssetMode.INLINE)
    path = tmp_path / "coverage-reach.html"
    path.write_text(make_page(db, MapKind.COVERAGE, None, opts, run_id=run["run_id"]),
                    encoding="utf-8")
    v = Visit(browser, path.as_uri())
    try:
        v.page.wait_for_function("window.GEO && GEO.maps.coverage")
        assert v.page.evaluate("GEO.maps.coverage.areas.getLayers().length") == outlines[0]
        head = v.page.locator(".geo-scorecard thead").inner_text()
        assert "直线覆盖" in head and "步行实际覆盖" in head
        assert v.page.locator("path.leaflet-interactive").count() > 0 or \
            v.page.locator("canvas").count() > 0
        assert v.outside() == [] and v.errors == []
        v.screenshot("maps-coverage-reach.png")
    finally:
        v.close()
