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
from typing import Any

import h3
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod

from geo_service.coverage.cli import print_scorecard
from geo_service.coverage.schemas import CoverageRequest
from geo_service.coverage.service import run_coverage
from tests import test_roads as oracle
from tests.conftest import station_body
from tests.helpers import insert_stations, load_test_roads

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
