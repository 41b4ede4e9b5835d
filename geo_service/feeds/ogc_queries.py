"""All SQL of the OGC API - Features endpoints. Values are always bound parameters.

The pool runs every statement with ``plan_cache_mode=force_generic_plan``, so
a catch-all ``(%(x)s IS NULL OR ...)`` filter would be planned without
knowing that ``x`` is absent and could not use an index. The items query is
therefore assembled from the fixed fragments of :data:`FILTERS` that a
request actually uses; each fragment still takes its values as parameters.
"""

from __future__ import annotations

from collections.abc import Iterable

from geo_service.feeds.queries import FEED_COLUMNS

_PUBLISHED = "s.status IN ('open', 'temporarily_closed')"

#: One condition per filter name; the service names the ones a request uses.
FILTERS: dict[str, str] = {
    "status": "s.status = %(status)s",
    "host_type": "s.host_type = %(host_type)s",
    "district_code": "s.district_code = %(district_code)s",
    "city_code": "s.city_code = %(city_code)s",
    "code": "s.code = %(code)s",
    "ten_ones_count": "bit_count((s.amenity_mask & %(ten_mask)s)::bit(64)) = %(ten_ones_count)s",
    "amenity": "s.amenity_mask & %(amenity_bit)s <> 0",
    # datetime: a closed interval on updated_at (an instant is both ends).
    "since": "s.updated_at >= %(since)s",
    "until": "s.updated_at <= %(until)s",
    # ST_Intersects is exact (points on an edge are in) and rides on the planar
    # expression index ix_station_geom through its implied ``&&``.
    "bbox": "ST_Intersects(s.geog::geometry, ST_MakeEnvelope("
            "%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 4326))",
}


def _where(active: Iterable[str]) -> str:
    return " AND ".join([_PUBLISHED, *(FILTERS[name] for name in sorted(set(active)))])


def items_query(active: Iterable[str]) -> str:
    """One page of published stations and the number matched, in one snapshot.

    The count sits on the left of the join so an empty page (an offset past
    the end) still reports it: that row comes back with NULL station columns.
    The page is chosen by id first, so the rows an offset skips are never
    given their columns (open-now is a function call per row).
    """
    where = _where(active)
    return f"""
SELECT m.number_matched, p.*
FROM (SELECT count(*) AS number_matched FROM station s WHERE {where}) m
LEFT JOIN LATERAL (
    SELECT s.id AS station_id, {FEED_COLUMNS}
    FROM station s
    WHERE s.id = ANY(ARRAY(SELECT s.id FROM station s
                           WHERE {where}
                           ORDER BY s.id
                           LIMIT %(limit)s OFFSET %(offset)s))
) p ON true
ORDER BY p.station_id
"""


ITEM = f"""
SELECT {FEED_COLUMNS}
FROM station s
WHERE s.code = %(code)s AND {_PUBLISHED}
"""

# The collection's extent. Exact coordinates (not ST_Extent's float boxes).
EXTENT = f"""
SELECT min(ST_X(s.geog::geometry)) AS minx, min(ST_Y(s.geog::geometry)) AS miny,
       max(ST_X(s.geog::geometry)) AS maxx, max(ST_Y(s.geog::geometry)) AS maxy,
       min(s.updated_at) AS first_update, max(s.updated_at) AS last_update
FROM station s
WHERE {_PUBLISHED}
"""
