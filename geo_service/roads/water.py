"""Water areas of an OpenStreetMap extract, for the street basemap (issue 28).

A river or a lake in OSM is a closed way or a multipolygon relation (the Yangtze's
banks are thousands of ways joined by one relation), so the polygons are assembled by
libosmium's area assembler, through pyosmium's ``area`` callback, not rebuilt here.
What counts as water is :data:`KINDS` (the tags OSM Carto draws blue). The loader calls
:func:`read_water` beside the roads and :func:`replace_water` in the roads' own
transaction, so a re-load replaces both or neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import osmium
import psycopg
import shapely

#: Tag and values that make an area water; ``None``: any value.
KINDS: dict[str, frozenset[str] | None] = {
    "natural": frozenset({"water"}),
    "waterway": frozenset({"riverbank", "dock", "canal"}),
    "landuse": frozenset({"reservoir", "basin"}),
    "water": None,
}


@dataclass(frozen=True)
class WaterArea:
    """One water polygon: its OSM object (``w`` way, ``r`` relation), kind and name."""

    osm_type: str
    osm_id: int
    kind: str
    name: str | None
    wkb: bytes


def water_kind(tags: Mapping[str, str]) -> str | None:
    """The kind of water the tags describe (``natural=water`` → ``water``), or None.

    >>> water_kind({"natural": "water", "water": "lake"})
    'water'
    >>> water_kind({"waterway": "riverbank"})
    'riverbank'
    >>> water_kind({"natural": "wood"}) is None
    True
    """
    for key, values in KINDS.items():
        value = tags.get(key)
        if value is not None and (values is None or value in values):
            return "water" if key == "water" else value
    return None


class _Water(osmium.SimpleHandler):
    def __init__(self, clip: Any | None) -> None:
        super().__init__()
        self.clip = clip
        self.factory = osmium.geom.WKBFactory()
        self.found: list[WaterArea] = []

    def area(self, a: Any) -> None:
        tags = {t.k: t.v for t in a.tags}
        kind = water_kind(tags)
        if kind is None:
            return
        try:
            geom = shapely.from_wkb(self.factory.create_multipolygon(a))
        except RuntimeError:  # a broken ring the assembler could not close
            return
        if self.clip is not None:
            geom = shapely.intersection(geom, self.clip)
        polygons = shapely.get_parts(geom)
        polygons = polygons[(shapely.get_type_id(polygons) == 3) & ~shapely.is_empty(polygons)]
        if len(polygons) == 0:
            return
        osm_type = "w" if a.from_way() else "r"
        name = tags.get("name:zh") or tags.get("name")
        self.found.append(WaterArea(osm_type, int(a.orig_id()), kind, name,
                                    shapely.to_wkb(shapely.multipolygons(polygons))))


def read_water(path: str, area: Any | None = None) -> list[WaterArea]:
    """The water areas of the PBF at ``path``, cut to the shapely ``area`` when given."""
    handler = _Water(area)
    handler.apply_file(path, locations=True)
    return handler.found


def replace_water(conn: psycopg.Connection[Any], water: list[WaterArea]) -> None:
    """Replace the loaded water areas (the caller holds the transaction)."""
    conn.execute("DELETE FROM water_area")
    with conn.cursor() as cur, cur.copy(
            "COPY water_area (osm_type, osm_id, kind, name, geom) FROM STDIN") as copy:
        for w in water:
            copy.write_row((w.osm_type, w.osm_id, w.kind, w.name,
                            shapely.to_wkb(shapely.set_srid(shapely.from_wkb(w.wkb), 4326),
                                           hex=True, include_srid=True)))
