"""SQL of the vector tiles. Request values are always bound parameters.

A tile is one statement: PostGIS projects, clips and encodes the published
stations of tile ``z/x/y`` into a Mapbox Vector Tile (``ST_AsMVT``), so no row
crosses into Python. Stations are selected with
``s.geog::geometry && <buffered tile envelope in WGS-84>``, which the planar
expression index ``ix_station_geom`` answers; a Web-Mercator tile envelope
maps to an exact longitude/latitude rectangle, so the filter is a superset of
what ``ST_AsMVTGeom`` keeps (it clips points to the same buffered tile).

Attributes are what a map layer styles and filters on. ``open_now`` is not a
tile attribute: tiles are cached, and the status feed says which stations are
open now (join on ``code``).
"""

from __future__ import annotations

import re

from geo_service.domain.catalogue import AMENITIES

#: Tile extent and buffer, in tile units: the Mapbox defaults (a symbol drawn on
#: a point near the edge is not cut off by the neighbouring tile).
EXTENT = 4096
BUFFER = 64
#: The buffer as a fraction of the tile, as ``ST_TileEnvelope(margin => …)`` takes it.
MARGIN = BUFFER / EXTENT

# Published = open or temporarily closed (``queries.PUBLISHED``).
_PUBLISHED_FILTER = "s.status IN ('open', 'temporarily_closed')"


def _amenities() -> str:
    """The ``amenities`` attribute: codes of the set bits, comma-separated, catalogue order.

    Written out from the catalogue, one ``CASE`` per amenity (``concat_ws``
    skips the NULLs): at zoom 12 this makes a dense tile ~35% cheaper than
    unnesting the catalogue for every row. The codes are our own constants,
    checked to be plain identifiers.
    """
    arms = []
    for a in AMENITIES:
        if not re.fullmatch(r"[a-z_]+", a.code):
            raise ValueError(f"amenity code {a.code!r} cannot be written into SQL")
        arms.append(f"CASE WHEN s.amenity_mask & {1 << a.bit} <> 0 THEN '{a.code}' END")
    return "concat_ws(',',\n        " + ",\n        ".join(arms) + ")"


# Tile attributes of one station row ``s``.
_ATTRIBUTES = f"""
    s.code, s.name, s.status, s.host_type,
    bit_count((s.amenity_mask & %(ten_mask)s)::bit(64))::int AS ten_ones_count,
    {_amenities()} AS amenities,
    s.sample, s.version, s.scheduled
"""

# The tile envelope grown by the buffer, as a WGS-84 rectangle for the index.
_SEARCH_BOX = ("ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), "
               "4326)")


def _tile(point: str, source: str, where: str) -> str:
    """An ``ST_AsMVT`` statement over the stations of ``source`` placed at ``point``.

    ``ST_AsMVTGeom`` clips to the tile grown by the buffer, so every tile keeps
    exactly the stations whose projected point lies in that square; ``ST_AsMVT``
    skips the rows it clipped away (NULL geometry).
    """
    return f"""
SELECT ST_AsMVT(t.*, 'stations', {EXTENT}, 'geom')
FROM (
    SELECT ST_AsMVTGeom(ST_Transform({point}, 3857),
                        ST_TileEnvelope(%(z)s, %(x)s, %(y)s), {EXTENT}, {BUFFER}, true) AS geom,
           {_ATTRIBUTES}
    FROM {source}
    WHERE {_PUBLISHED_FILTER} AND {where}
) t
"""


#: One tile as MVT bytes (empty bytes when no station falls in it).
TILE_MVT = _tile("s.geog::geometry", "station s", f"s.geog::geometry && {_SEARCH_BOX}")

# GCJ-02 tiles (for Amap / Tencent basemaps) take two statements, because the
# shift is computed in Python by ``geo_service.domain.coords`` (the one implementation,
# checked against the reference set):

#: 1. The candidates, in WGS-84. The search box is grown by ``pad`` degrees
#: because the GCJ-02 shift moves points by up to ~0.011° (~1.1 km).
TILE_CANDIDATES = f"""
SELECT s.id, ST_X(s.geog::geometry) AS lon, ST_Y(s.geog::geometry) AS lat
FROM station s
WHERE {_PUBLISHED_FILTER}
  AND s.geog::geometry && ST_Expand({_SEARCH_BOX}, %(pad)s)
"""

#: 2. The tile, with each candidate placed at its shifted position; clipping to
#: the buffered tile is the same as for WGS-84 tiles.
TILE_MVT_AT = _tile(
    "ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)",
    "unnest(%(ids)s::bigint[], %(lons)s::float8[], %(lats)s::float8[]) AS p(id, lon, lat) "
    "JOIN station s ON s.id = p.id",
    "true",
)

#: What the TileJSON says about the data: extent, count, whether it is sample data.
#: A full pass over the published stations; the TileJSON is small, rare and cached.
TILESET_SUMMARY = f"""
SELECT ST_XMin(e) AS minlon, ST_YMin(e) AS minlat, ST_XMax(e) AS maxlon, ST_YMax(e) AS maxlat,
       n, all_sample, any_sample
FROM (
    SELECT ST_Extent(s.geog::geometry) AS e, count(*) AS n,
           coalesce(bool_and(s.sample), false) AS all_sample,
           coalesce(bool_or(s.sample), false) AS any_sample
    FROM station s
    WHERE {_PUBLISHED_FILTER}
) x
"""
