"""Coverage and recommendations by road (``reach=walk|ebike``, issue 28).

The straight-line analysis (:func:`analysis.analyse`) still runs: its nearest stations
and distances stay on the cells (straight metres, labelled so), and its covered share is
kept beside the road one in the scorecard, so a planner sees where the circle lies about
the real walk. Only ``covered`` and ``doubly`` change: a cell is covered when at least
one qualifying station reaches its centroid by road within the limit, doubly when two
do (:mod:`geo_service.roads.reach`). Recommendations then pick among candidate sites by
the same rule, with the unchanged max-cover solvers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import psycopg
import shapely
from scipy import sparse

from geo_service.coverage import analysis
from geo_service.coverage.analysis import CoverageResult
from geo_service.coverage.schemas import CoverageRequest
from geo_service.domain.errors import StateConflict
from geo_service.roads.graph import Mode, ModeGraph, RoadNetwork
from geo_service.roads.reach import Places, Unit, coverage_counts, reach_graph, reach_matrix


class Inputs(Protocol):
    """What a run loaded of its stations (``service.Inputs``), as far as this needs."""

    codes: np.ndarray
    s_lon: np.ndarray
    s_lat: np.ndarray
    s_label: np.ndarray
    s_ten: np.ndarray
    s_unverified: np.ndarray

Progress = Callable[[str], None]
#: The road network a run by road uses (the serving process's, or read for the CLI).
Roads = Callable[[], RoadNetwork | None]


@dataclass(frozen=True)
class RoadReach:
    """A run's road rule: the reach graph, the limit in its unit, the cells snapped."""

    mode: Mode
    unit: Unit
    limit: float
    graph: ModeGraph
    places: Places
    #: each result row's place (its cell's centroid)
    row_place: np.ndarray

    def summary(self) -> dict[str, Any]:
        """What a run's summary says of its reach."""
        return {"reach": self.mode,
                "reach_limit_s": self.limit if self.unit == "seconds" else None,
                "reach_limit_m": self.limit if self.unit == "metres" else None,
                "snapped_cells": int((self.places.edge >= 0).sum())}


def require_network(network: RoadNetwork | None, req: CoverageRequest) -> RoadNetwork:
    """The loaded network, or a 409 naming ``reach``: never a silent straight answer."""
    if network is None:
        raise StateConflict(f"no road network is loaded: reach={req.reach} needs one "
                            "(geo-service roads load FILE.osm.pbf)",
                            [("reach", "no roads loaded")])
    return network


def prepare(network: RoadNetwork, req: CoverageRequest, res: CoverageResult) -> RoadReach:
    """Snap the run's cell centroids onto the reach graph of ``req``'s mode and unit."""
    rule = req.road_limit()
    assert rule is not None
    limit, unit = rule
    mode = cast(Mode, req.reach)
    graph = reach_graph(network, mode, cast(Unit, unit))
    _, first, row_place = np.unique(res.cell, return_index=True, return_inverse=True)
    places = Places.snap(graph, res.lon[first], res.lat[first])
    return RoadReach(mode, cast(Unit, unit), limit, graph, places, row_place.reshape(-1))


def cover(road: RoadReach, res: CoverageResult, s_lon: np.ndarray, s_lat: np.ndarray,
          codes: np.ndarray) -> tuple[CoverageResult, list[tuple[str, bytes]]]:
    """``res`` with ``covered`` / ``doubly`` by road (stations reaching each cell), and
    the service area (code, WKB MultiPolygon) of each station that reaches a cell."""
    found = coverage_counts(road.graph, s_lon, s_lat, road.places, road.limit,
                            outlines=True)
    rows = found.count[road.row_place]
    areas = []
    for index, shape in sorted(found.outlines.items()):
        if shape.geom_type == "Polygon":
            shape = shapely.MultiPolygon([shape])
        areas.append((str(codes[index]), shapely.to_wkb(shape)))
    return dataclasses.replace(res, covered=rows >= 1, doubly=rows >= 2), areas


def with_straight(areas: list[dict[str, Any]],
                  straight: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Each scorecard row with the straight-line covered share of the same run beside
    (None for a straight run: there is only the one)."""
    shares = {} if straight is None else {r["area"]: r["covered_share"] for r in straight}
    return [{**row, "straight_covered_share": shares.get(row["area"])} for row in areas]


def matrix(road: RoadReach, c_lon: np.ndarray, c_lat: np.ndarray) -> sparse.csr_matrix:
    """Candidates × result rows: which candidate reaches which row's cell by road."""
    by_place = reach_matrix(road.graph, c_lon, c_lat, road.places, road.limit)
    return cast(sparse.csr_matrix, by_place[:, road.row_place].tocsr())


@dataclass
class Analysed:
    """A run's coverage (by road when asked) and what the road rule adds to it."""

    res: analysis.CoverageResult
    road: RoadReach | None = None
    straight: analysis.CoverageResult | None = None
    service_areas: list[tuple[str, bytes]] | None = None


def analyse(conn: psycopg.Connection[Any], req: CoverageRequest, inputs: Inputs,
            res: analysis.CoverageResult, roads: Roads | None, say: Progress) -> Analysed:
    """The straight-line coverage ``res``; with ``reach=walk|ebike`` covered again by
    road, the straight result kept beside for the scorecard's comparison."""
    if req.reach == "straight":
        return Analysed(res)
    network = require_network(roads() if roads is not None else read_network(conn), req)
    say(f"by road ({req.reach}): snapping {len(np.unique(res.cell))} cells")
    road = prepare(network, req, res)
    say(f"by road: a bounded Dijkstra from each of {len(inputs.codes)} stations")
    covered, areas = cover(road, res, inputs.s_lon, inputs.s_lat, inputs.codes)
    return Analysed(covered, road, res, areas)


def read_network(conn: psycopg.Connection[Any]) -> RoadNetwork | None:
    """The loaded roads read into a graph (the CLI's way; a server keeps its own)."""
    from psycopg.rows import dict_row

    from geo_service.infra.settings import Settings
    from geo_service.roads.store import EDGES, STAMP

    stamp = conn.execute(STAMP).fetchone()
    if stamp is None:
        return None
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(EDGES).fetchall()
    return RoadNetwork(rows, Settings().roads_walk_speed_mps, stamp[0])


def area_rows(inputs: Inputs, done: Analysed) -> list[dict[str, Any]]:
    """The run's per-area rows, with the straight share beside a road run's."""
    areas = analysis.summarise(done.res, inputs.s_label, inputs.s_ten, inputs.s_unverified)
    straight = None if done.straight is None else analysis.summarise(
        done.straight, inputs.s_label, inputs.s_ten, inputs.s_unverified)
    return with_straight(areas, straight)


def reach_summary(done: Analysed) -> dict[str, Any]:
    """How the run decided covered, for its summary (straight: no road limit)."""
    if done.road is None:
        return {"reach": "straight", "reach_limit_s": None, "reach_limit_m": None}
    return done.road.summary()
