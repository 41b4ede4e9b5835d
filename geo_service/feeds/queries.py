"""All SQL of the feeds room. Values are always bound parameters.

Feeds read published stations (open or temporarily closed) in one of two
orders: by ``id`` for snapshots (GeoJSON, OGC items, exports) and by
``change_seq`` for the change feed. ``change_seq`` is drawn in commit order
(migration 0003), so ``change_seq > cursor`` never skips a committed write.
"""

from __future__ import annotations

from geo_service.stations.queries import OPEN_STATE, STATION_COLUMNS, STOP_ACTIVE

#: Statuses a consumer should show; everything else is a tombstone in the change feed.
PUBLISHED = ("open", "temporarily_closed")

# Open at %(at)s by the compiled hours; NULL where the hours are unknown then (no
# rule, an ``unknown`` stretch, past a dated rule's horizon).
OPEN_AT = f"""
    CASE WHEN s.status <> 'open' THEN false
         ELSE {OPEN_STATE}
    END"""

# A scheduled mobile station's stops (WGS-84) and which is current at %(at)s;
# NULL for every other station (the CASE keeps the subquery off fixed stations).
STOPS = f"""
    CASE WHEN s.host_type = 'mobile' THEN (
        SELECT jsonb_agg(jsonb_build_object(
                   'seq', st.seq, 'name', st.name,
                   'lon', round(ST_X(st.geog::geometry)::numeric, 7),
                   'lat', round(ST_Y(st.geog::geometry)::numeric, 7),
                   'opening_hours', st.opening_hours, 'valid_from', st.valid_from,
                   'valid_to', st.valid_to, 'current', {STOP_ACTIVE}) ORDER BY st.seq)
        FROM station_stop st WHERE st.station_id = s.id)
    END"""

# The absolute URL of the station's first exterior photo (外观图片, what the platforms
# ask for) on the configured public address %(photo_base)s (GEO_PUBLIC_BASE_URL: the
# platforms fetch it from there, and a shared cache may keep the feed for any Host);
# NULL without a photo or without a public address.
EXTERIOR_PHOTO = """
    (SELECT %(photo_base)s::text || '/v1/photos/' || sp.photo_sha || '.jpg'
     FROM station_photo sp
     WHERE sp.station_id = s.id AND sp.kind = 'exterior' AND sp.deleted_at IS NULL
     ORDER BY sp.position, sp.id LIMIT 1)"""

FEED_COLUMNS = (f"{STATION_COLUMNS}, s.change_seq, {OPEN_AT} AS open_now, {STOPS} AS stops, "
                f"{EXTERIOR_PHOTO} AS exterior_photo")

# Area (any admin level) and bbox filters shared by the snapshot feeds. NULL = no filter.
AREA_BBOX_FILTER = """
    (%(area)s::text IS NULL
     OR %(area)s IN (s.province_code, s.city_code, s.district_code, s.street_code))
    AND (%(bbox)s::float8[] IS NULL OR s.geog::geometry && ST_MakeEnvelope(
        (%(bbox)s::float8[])[1], (%(bbox)s::float8[])[2],
        (%(bbox)s::float8[])[3], (%(bbox)s::float8[])[4], 4326))
"""

# One batch of the snapshot feeds, after the last id of the previous one (keyset):
# each batch is a statement of its own, so no connection is held between batches.
# Exports only: ``source_crs`` and ``hours_text`` give the union sheet back as typed.
PUBLISHED_BATCH = f"""
SELECT s.id AS station_id, {FEED_COLUMNS}, s.source_crs, s.hours_text
FROM station s
WHERE s.status IN ('open', 'temporarily_closed')
  AND s.id > %(after)s
  AND {AREA_BBOX_FILTER}
ORDER BY s.id
LIMIT %(limit)s
"""

# One snapshot-consistent read of the change feed: everything after the cursor,
# in change order, closed / planned / duplicate rows included (they are tombstones).
CHANGES = f"""
SELECT {FEED_COLUMNS}
FROM station s
WHERE s.change_seq > %(after)s
ORDER BY s.change_seq
LIMIT %(limit)s
"""

# The validators of every feed: the last change number and when it happened.
# Both come from indexes, so a 304 costs two index probes.
FEED_STATE = """
SELECT coalesce((SELECT max(change_seq) FROM station), 0) AS seq,
       (SELECT max(updated_at) FROM station) AS last_modified
"""

STATION_STATUS = f"""
SELECT s.code, s.status, s.version, s.updated_at, {OPEN_AT} AS open_now
FROM station s
WHERE s.status IN ('open', 'temporarily_closed')
ORDER BY s.id
"""
