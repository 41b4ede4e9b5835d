"""The road network in process: per mode (walk, e-bike) a directed graph in CSR arrays for
SciPy's Dijkstra, and the usable edges in a shapely STRtree for snapping.

Snapping is to the nearest usable *edge*, not node: the point is projected onto the
edge (in spherical Mercator, EPSG:3857, which is conformal, so the foot of the
perpendicular is the local nearest point at any latitude), the fraction along it splits
the edge's cost into the two partial costs to its ends, and the geodesic distance from
the point to its projection is the snap distance, walked at the walking speed (off the
network one walks) and reported.

A route from a snapped point A to a snapped point B costs the snap at A, the partial
edge from A to an end of A's edge, the shortest path between edge ends, the partial edge
from an end of B's edge to B, and the snap at B; or, when A and B are on one edge and its
direction allows, just the piece between them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Geod
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

Mode = Literal["walk", "ebike"]


class By(StrEnum):
    """Nearest's ``by``: straight line, or by road for a mode."""

    STRAIGHT = "straight"
    WALK = "walk"
    EBIKE = "ebike"


MODES: tuple[Mode, ...] = ("walk", "ebike")
GEOD = Geod(ellps="WGS84")
_R = 6378137.0  # EPSG:3857's sphere
_LAT_MAX = 85.0511287798  # EPSG:3857's edge: the poles are infinitely far
FloatArray = npt.NDArray[np.float64]


def mercator(lon: Any, lat: Any) -> tuple[Any, Any]:
    """EPSG:3857 metres of WGS-84 degrees (arrays or scalars)."""
    x = np.radians(lon) * _R
    y = np.log(np.tan(np.pi / 4 + np.radians(np.clip(lat, -_LAT_MAX, _LAT_MAX)) / 2)) * _R
    return x, y


def unmercator(x: float, y: float) -> tuple[float, float]:
    return math.degrees(x / _R), math.degrees(2 * math.atan(math.exp(y / _R)) - math.pi / 2)


@dataclass(frozen=True)
class Snap:
    """A point on the network: edge index, fraction along it (from its source), the
    projected point and the snap distance in metres."""

    edge: int
    frac: float
    lon: float
    lat: float
    snap_m: float


@dataclass(frozen=True)
class Reach:
    """Shortest paths from one snapped origin: cost in seconds to every vertex (inf
    beyond the limit) by way of the origin edge's two ends, with the predecessors."""

    origin: Snap
    ends: tuple[int, int]
    offsets: tuple[float, float]
    dist: FloatArray  # shape (2, n)
    pred: npt.NDArray[np.int32]
    limit: float


class ModeGraph:
    """One mode's graph over the shared edges."""

    def __init__(self, net: RoadNetwork, mode: Mode, forward: FloatArray,
                 backward: FloatArray, snap_speed: float) -> None:
        self.net, self.mode = net, mode
        self.forward, self.backward = forward, backward  # seconds, <0: not that way
        self.snap_speed = snap_speed
        usable = (forward >= 0) | (backward >= 0)
        self.usable_edges = np.flatnonzero(usable)
        self.tree = shapely.STRtree(net.lines[self.usable_edges]) \
            if self.usable_edges.size else None
        u, v = net.src, net.dst
        tails = np.concatenate((u[forward >= 0], v[backward >= 0]))
        heads = np.concatenate((v[forward >= 0], u[backward >= 0]))
        costs = np.concatenate((forward[forward >= 0], backward[backward >= 0]))
        lengths = np.concatenate((net.length[forward >= 0], net.length[backward >= 0]))
        keep = tails != heads
        tails, heads, costs, lengths = tails[keep], heads[keep], costs[keep], lengths[keep]
        # Parallel edges: the cheapest one (a sparse matrix would add them up).
        order = np.lexsort((costs, heads, tails))
        tails, heads, costs, lengths = tails[order], heads[order], costs[order], lengths[order]
        first = np.ones(tails.size, dtype=bool)
        first[1:] = (tails[1:] != tails[:-1]) | (heads[1:] != heads[:-1])
        tails, heads, costs, lengths = tails[first], heads[first], costs[first], lengths[first]
        # An explicit zero is no edge to csgraph: a zero-length piece costs a nanosecond.
        self.csr = csr_matrix((np.maximum(costs, 1e-9), (tails, heads)),
                              shape=(net.n, net.n))
        self.arc_length = {(int(a), int(b)): float(m) for a, b, m in
                           zip(tails.tolist(), heads.tolist(), lengths.tolist(), strict=True)}
        #: the fastest speed anywhere (metres a second): no route is faster, so a
        #: station ``d`` metres away in a straight line costs at least d / max_speed.
        speeds = lengths / np.maximum(costs, 1e-9)
        self.max_speed = float(max(snap_speed, float(speeds.max()) if speeds.size else 0.0))

    def snap(self, lon: float, lat: float) -> Snap | None:
        """``(lon, lat)`` projected onto its nearest usable edge (ties: the lower edge
        id), or None when the mode has no edge at all."""
        if self.tree is None:
            return None
        x, y = mercator(lon, lat)
        point = shapely.Point(float(x), float(y))
        found = self.tree.query_nearest(point, all_matches=True)
        edge = int(self.usable_edges[int(min(found, key=lambda i: self.net.ids[
            self.usable_edges[int(i)]]))])
        line = self.net.lines[edge]
        frac = float(shapely.line_locate_point(line, point, normalized=True))
        on = shapely.line_interpolate_point(line, frac, normalized=True)
        plon, plat = unmercator(on.x, on.y)
        snap_m = float(GEOD.inv(lon, lat, plon, plat)[2])
        return Snap(edge, frac, plon, plat, snap_m)

    def reach(self, origin: Snap, limit_s: float) -> Reach:
        """Dijkstra from ``origin`` to every vertex within ``limit_s`` seconds."""
        e = origin.edge
        u, v = int(self.net.src[e]), int(self.net.dst[e])
        fw, bw = float(self.forward[e]), float(self.backward[e])
        off_u = bw * origin.frac if bw >= 0 else math.inf  # back along the edge to u
        off_v = fw * (1 - origin.frac) if fw >= 0 else math.inf  # on along it to v
        dist, pred = dijkstra(self.csr, directed=True, indices=[u, v], limit=limit_s,
                              return_predecessors=True)
        dist = dist + np.array([[off_u], [off_v]])
        return Reach(origin, (u, v), (off_u, off_v), dist, pred, limit_s)

    def cost_to(self, reach: Reach, target: Snap) -> tuple[float, int, int]:
        """Network seconds from the reach's origin to ``target`` (snaps not included),
        inf beyond the limit or out of reach, with how: the row (0: by the origin's
        source end, 1: its target end, -1: along the one edge) and the vertex the path
        leaves the network at (-1 along the one edge)."""
        e = target.edge
        u, v = int(self.net.src[e]), int(self.net.dst[e])
        fw, bw = float(self.forward[e]), float(self.backward[e])
        best, how, via = math.inf, -1, -1
        o = reach.origin
        if o.edge == e:
            if target.frac >= o.frac and fw >= 0:
                best = fw * (target.frac - o.frac)
            elif target.frac <= o.frac and bw >= 0:
                best = bw * (o.frac - target.frac)
        for row in (0, 1):
            if fw >= 0:  # reach u, then along the edge
                c = float(reach.dist[row, u]) + fw * target.frac
                if c < best:
                    best, how, via = c, row, u
            if bw >= 0:  # reach v, then back along it
                c = float(reach.dist[row, v]) + bw * (1 - target.frac)
                if c < best:
                    best, how, via = c, row, v
        return best, how, via

    def metres(self, reach: Reach, target: Snap, how: int, via: int) -> float:
        """Network metres of the route :meth:`cost_to` found (snaps not included)."""
        net, o = self.net, reach.origin
        if how < 0:
            return float(net.length[o.edge] * abs(target.frac - o.frac))
        start = reach.ends[how]
        total = net.length[o.edge] * (o.frac if start == int(net.src[o.edge]) else 1 - o.frac)
        node = via
        pred = reach.pred[how]
        while node != start:
            prev = int(pred[node])
            total += self.arc_length[(prev, node)]
            node = prev
        e = target.edge
        total += net.length[e] * (target.frac if via == int(net.src[e]) else 1 - target.frac)
        return float(total)


class RoadNetwork:
    """The loaded edges (dense vertex numbers) and a :class:`ModeGraph` per mode."""

    def __init__(self, rows: Sequence[dict[str, Any]], walk_speed: float,
                 stamp: Any = None) -> None:
        self.stamp = stamp
        ids = np.array([r["id"] for r in rows], dtype=np.int64)
        osm_src = np.array([r["source"] for r in rows], dtype=np.int64)
        osm_dst = np.array([r["target"] for r in rows], dtype=np.int64)
        self.vertex_ids, dense = np.unique(np.concatenate((osm_src, osm_dst)),
                                           return_inverse=True)
        self.n = int(self.vertex_ids.size)
        self.ids = ids
        self.src = dense[: ids.size].astype(np.int32)
        self.dst = dense[ids.size:].astype(np.int32)
        self.length = np.array([r["length_m"] for r in rows], dtype=np.float64)
        lines = shapely.from_wkb([bytes(r["wkb"]) for r in rows]) if rows else \
            np.zeros(0, dtype=object)
        #: WGS-84 extent of the loaded roads (minlon, minlat, maxlon, maxlat); None if none
        self.bbox: tuple[float, float, float, float] | None = None
        if len(rows):
            coords, index = shapely.get_coordinates(lines, return_index=True)
            lo, hi = coords.min(axis=0), coords.max(axis=0)
            self.bbox = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
            x, y = mercator(coords[:, 0], coords[:, 1])
            lines = shapely.linestrings(np.column_stack((x, y)), indices=index)
        self.lines = np.asarray(lines, dtype=object)
        walk = np.array([r["walk_cost"] for r in rows], dtype=np.float64)
        self.modes: dict[Mode, ModeGraph] = {
            "walk": ModeGraph(self, "walk", walk, walk, walk_speed),
            "ebike": ModeGraph(self, "ebike",
                               np.array([r["ebike_cost"] for r in rows], dtype=np.float64),
                               np.array([r["ebike_reverse_cost"] for r in rows],
                                        dtype=np.float64), walk_speed),
        }

    @property
    def edges(self) -> int:
        return int(self.ids.size)
