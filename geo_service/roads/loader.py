"""Read an OpenStreetMap PBF extract into road edges: ``geo-service roads load``.

Why pyosmium and not osm2pgsql's flex output: the graph needs OSM's own topology (a way
split wherever a node is shared by two or more ways, node ids kept as vertex ids), which
osm2pgsql does not make (its output is one row per way, and a second pass in SQL would
have to rebuild the node sharing it threw away). pyosmium reads the same PBF with
libosmium, gives each way its node ids *and* locations in one pass, and is a wheel on
PyPI (no system package, no Lua). Two passes here: the ways that are roads for someone
(:mod:`rules`), then their pieces between shared nodes.

Clipping to an area keeps the runs of a way's nodes that lie inside the area's polygon;
a run's ends become edge ends (the edge stops at the last node inside, never at an
interpolated point on the boundary).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import osmium
import shapely
from pyproj import Geod

from geo_service.roads.rules import Passage, passage
from geo_service.roads.water import WaterArea, read_water

GEOD = Geod(ellps="WGS84")


@dataclass
class Way:
    """A kept way: its id, class, name, passage and nodes (ids, lon, lat)."""

    id: int
    highway: str
    name: str | None
    passage: Passage
    refs: list[int]
    lons: list[float]
    lats: list[float]


@dataclass(frozen=True)
class Edge:
    """A piece of a way between two vertices, with its length and costs in seconds
    (-1: not passable that way)."""

    way_id: int
    source: int
    target: int
    highway: str
    name: str | None
    length_m: float
    walk_cost: float
    ebike_cost: float
    ebike_reverse_cost: float
    coords: list[tuple[float, float]]


@dataclass
class Extract:
    """What :func:`read_extract` found: the edges, their vertices and the header's date."""

    edges: list[Edge]
    vertices: dict[int, tuple[float, float]]
    ways: int
    replication_at: dt.datetime | None
    speeds: dict[str, Any] = field(default_factory=dict)
    #: The extract's water areas, for the basemap (:mod:`geo_service.roads.water`).
    water: list[WaterArea] = field(default_factory=list)


class _Ways(osmium.SimpleHandler):
    def __init__(self, walk_speed: float, ebike_speeds: Mapping[str, float]) -> None:
        super().__init__()
        self.walk_speed, self.ebike_speeds = walk_speed, ebike_speeds
        self.ways: list[Way] = []

    def way(self, w: Any) -> None:
        tags = {t.k: t.v for t in w.tags}
        found = passage(tags, self.walk_speed, self.ebike_speeds)
        if found is None:
            return
        refs, lons, lats = [], [], []
        for n in w.nodes:
            if n.location.valid():
                refs.append(int(n.ref))
                lons.append(float(n.location.lon))
                lats.append(float(n.location.lat))
        if len(refs) >= 2:
            name = tags.get("name:zh") or tags.get("name")
            self.ways.append(Way(int(w.id), tags["highway"], name, found, refs, lons, lats))


def replication_time(path: Path) -> dt.datetime | None:
    """The extract's date from its PBF header: ``osmosis_replication_timestamp`` (what
    Geofabrik writes), else the header's ``timestamp``; None when neither is there."""
    reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
    try:
        header = reader.header()
        for key in ("osmosis_replication_timestamp", "timestamp"):
            value = header.get(key)
            if value:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    finally:
        reader.close()
    return None


def _runs(way: Way, inside: np.ndarray[Any, np.dtype[np.bool_]] | None) -> Iterator[Way]:
    """The way, or its runs of nodes inside the area (two nodes at least)."""
    if inside is None:
        yield way
        return
    start = None
    for i, ok in enumerate([*inside.tolist(), False]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start >= 2:
                yield Way(way.id, way.highway, way.name, way.passage, way.refs[start:i],
                          way.lons[start:i], way.lats[start:i])
            start = None


def _cost(length: float, speed: float) -> float:
    return length / speed if speed > 0 else -1.0


def read_extract(path: Path, *, walk_speed: float, ebike_speeds: Mapping[str, float],
                 area: Any | None = None) -> Extract:
    """The road edges of the PBF at ``path``, clipped to the shapely (multi)polygon
    ``area`` (WGS-84) when given."""
    handler = _Ways(walk_speed, ebike_speeds)
    handler.apply_file(str(path), locations=True)
    ways: list[Way] = []
    for way in handler.ways:
        inside = None
        if area is not None:
            inside = shapely.contains_xy(area, np.array(way.lons), np.array(way.lats))
        ways.extend(_runs(way, inside))
    # A vertex is a way's end, or a node that appears twice or more among the kept ways
    # (two ways meeting, or one way crossing itself).
    uses: Counter[int] = Counter()
    for way in ways:
        uses.update(way.refs)
        uses[way.refs[0]] += 1
        uses[way.refs[-1]] += 1
    edges: list[Edge] = []
    vertices: dict[int, tuple[float, float]] = {}
    for way in ways:
        start = 0
        for i in range(1, len(way.refs)):
            if uses[way.refs[i]] < 2 and i < len(way.refs) - 1:
                continue
            lons, lats = way.lons[start:i + 1], way.lats[start:i + 1]
            length = float(GEOD.line_length(lons, lats))
            p = way.passage
            s, t = way.refs[start], way.refs[i]
            vertices[s] = (lons[0], lats[0])
            vertices[t] = (lons[-1], lats[-1])
            edges.append(Edge(way.id, s, t, way.highway, way.name, length,
                              _cost(length, p.walk), _cost(length, p.ebike_forward),
                              _cost(length, p.ebike_backward), list(zip(lons, lats, strict=True))))
            start = i
    return Extract(edges, vertices, len({w.id for w in ways}), replication_time(path),
                   {"walk_mps": walk_speed, "ebike_mps": dict(ebike_speeds)},
                   read_water(str(path), area))
