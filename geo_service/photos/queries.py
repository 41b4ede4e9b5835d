"""Every SQL statement of the photos room. Values are always bound parameters."""

from __future__ import annotations

#: A station by code, with what the area check needs (deleted and duplicate ones are
#: not there to carry photos).
STATION = """
SELECT s.id, s.code, s.name, s.sample, ST_X(s.geog::geometry) AS lon, ST_Y(s.geog::geometry) AS lat,
       s.province_code, s.city_code, s.district_code, s.street_code
FROM station s
WHERE s.code = %(code)s AND s.status <> 'duplicate' AND s.deleted_at IS NULL
"""

#: A stored photo, once per hash; staff uploading what a worker sent makes it public.
UPSERT_PHOTO = """
INSERT INTO photo (sha, thumb_sha, width, height, bytes, public, client_hash)
VALUES (%(sha)s, %(thumb_sha)s, %(width)s, %(height)s, %(bytes)s, %(public)s, %(client)s)
ON CONFLICT (sha) DO UPDATE SET public = photo.public OR EXCLUDED.public
RETURNING sha, thumb_sha, width, height, bytes, public, created_at
"""

PHOTO = "SELECT sha, thumb_sha, width, height, bytes, public FROM photo WHERE sha = %(sha)s"

#: Whether a private photo belongs to a worker report on a station within ``scope``
#: (NULL: every area) — the same codes rule as the pending queue.
PRIVATE_IN_SCOPE = """
SELECT EXISTS (
    SELECT FROM report_photo rp
    JOIN station_report r ON r.id = rp.report_id
    JOIN station s ON s.id = r.station_id
    WHERE rp.photo_sha = %(sha)s
      AND (%(scope)s::text IS NULL
           OR %(scope)s IN (s.province_code, s.city_code, s.district_code, s.street_code)))
"""

#: Which of ``shas`` are stored photos (an inspection may name only those).
KNOWN_SHAS = "SELECT sha FROM photo WHERE sha = ANY(%(shas)s)"

_STATION_PHOTO = """
sp.id, sp.kind, sp.position, sp.photo_sha AS sha, p.width, p.height, p.bytes,
sp.uploaded_by, sp.created_at
"""

#: Exterior first (the platforms' 外观图片), then interior, then other; by position.
_ORDER = """
ORDER BY CASE sp.kind WHEN 'exterior' THEN 0 WHEN 'interior' THEN 1 ELSE 2 END,
         sp.position, sp.id
"""

INSERT_STATION_PHOTO = f"""
WITH added AS (
    INSERT INTO station_photo (station_id, photo_sha, kind, position, uploaded_by,
                               uploaded_by_key_id, uploaded_by_user_id)
    SELECT %(station_id)s, %(sha)s, %(kind)s,
           coalesce(max(position) + 1, 0), %(uploaded_by)s, %(key_id)s, %(user_id)s
    FROM station_photo
    WHERE station_id = %(station_id)s AND kind = %(kind)s AND deleted_at IS NULL
    RETURNING *
)
SELECT {_STATION_PHOTO} FROM added sp JOIN photo p ON p.sha = sp.photo_sha
"""

#: A live photo of the station already holding these bytes (uploading it again adds none).
SAME_STATION_PHOTO = f"""
SELECT {_STATION_PHOTO} FROM station_photo sp JOIN photo p ON p.sha = sp.photo_sha
WHERE sp.station_id = %(station_id)s AND sp.photo_sha = %(sha)s AND sp.deleted_at IS NULL
"""

LIST_STATION_PHOTOS = f"""
SELECT {_STATION_PHOTO} FROM station_photo sp JOIN photo p ON p.sha = sp.photo_sha
WHERE sp.station_id = %(station_id)s AND sp.deleted_at IS NULL
{_ORDER}
"""

SOFT_DELETE = """
UPDATE station_photo SET deleted_at = now()
WHERE id = %(id)s AND station_id = %(station_id)s AND deleted_at IS NULL
"""

#: Make photo ``id`` the station's first exterior photo (before any other exterior one).
SET_EXTERIOR = f"""
WITH moved AS (
    UPDATE station_photo SET kind = 'exterior', position = (
        SELECT coalesce(min(position) - 1, 0) FROM station_photo
        WHERE station_id = %(station_id)s AND kind = 'exterior' AND deleted_at IS NULL
          AND id <> %(id)s)
    WHERE id = %(id)s AND station_id = %(station_id)s AND deleted_at IS NULL
    RETURNING *
)
SELECT {_STATION_PHOTO} FROM moved sp JOIN photo p ON p.sha = sp.photo_sha
"""

SET_KIND = f"""
WITH moved AS (
    UPDATE station_photo SET kind = %(kind)s, position = (
        SELECT coalesce(max(position) + 1, 0) FROM station_photo
        WHERE station_id = %(station_id)s AND kind = %(kind)s AND deleted_at IS NULL
          AND id <> %(id)s)
    WHERE id = %(id)s AND station_id = %(station_id)s AND deleted_at IS NULL
    RETURNING *
)
SELECT {_STATION_PHOTO} FROM moved sp JOIN photo p ON p.sha = sp.photo_sha
"""

#: A change of the exterior photo is a change consumers see (the feeds' exterior_photo):
#: a new version, so the change feed and the feeds' ETags move.
BUMP_STATION = "UPDATE station SET version = version + 1 WHERE id = %(station_id)s"

#: The kind of a live station photo (before a change, to tell if the exterior moves).
KIND_OF = """
SELECT kind FROM station_photo
WHERE id = %(id)s AND station_id = %(station_id)s AND deleted_at IS NULL
"""

INSERT_INSPECTION_PHOTOS = """
INSERT INTO inspection_photo (inspection_id, photo_sha, position)
SELECT %(inspection_id)s, sha, ord - 1
FROM unnest(%(shas)s::text[]) WITH ORDINALITY AS u(sha, ord)
"""

INSERT_REPORT_PHOTO = """
INSERT INTO report_photo (report_id, photo_sha) VALUES (%(report_id)s, %(sha)s)
ON CONFLICT (report_id) DO NOTHING
"""

#: Worker-report photos waiting for a clerk, within the clerk's area, oldest first.
PENDING_REPORT_PHOTOS = """
SELECT rp.report_id, rp.photo_sha AS sha, rp.created_at, r.kind, r.comment,
       s.code AS station_code, s.name AS station_name, s.sample
FROM report_photo rp
JOIN station_report r ON r.id = rp.report_id
JOIN station s ON s.id = r.station_id
WHERE rp.approved_at IS NULL AND rp.rejected_at IS NULL
  AND (%(scope)s::text IS NULL
       OR %(scope)s IN (s.province_code, s.city_code, s.district_code, s.street_code))
ORDER BY rp.created_at, rp.report_id
LIMIT %(limit)s
"""

#: Decide a pending report photo within the clerk's area; approving publishes the file.
DECIDE_REPORT_PHOTO = """
WITH decided AS (
    UPDATE report_photo rp
    SET approved_at = CASE WHEN %(approve)s THEN now() END,
        approved_by = CASE WHEN %(approve)s THEN %(by)s END,
        rejected_at = CASE WHEN %(approve)s THEN NULL ELSE now() END
    FROM station_report r JOIN station s ON s.id = r.station_id
    WHERE rp.report_id = %(report_id)s AND r.id = rp.report_id
      AND rp.approved_at IS NULL AND rp.rejected_at IS NULL
      AND (%(scope)s::text IS NULL
           OR %(scope)s IN (s.province_code, s.city_code, s.district_code, s.street_code))
    RETURNING rp.photo_sha
)
UPDATE photo SET public = photo.public OR %(approve)s
FROM decided WHERE photo.sha = decided.photo_sha
RETURNING photo.sha
"""

#: The first exterior photo of each station in ``ids`` (for exports and GeoJSON).
EXTERIOR_OF = """
SELECT DISTINCT ON (sp.station_id) sp.station_id, sp.photo_sha AS sha
FROM station_photo sp
WHERE sp.station_id = ANY(%(ids)s) AND sp.kind = 'exterior' AND sp.deleted_at IS NULL
ORDER BY sp.station_id, sp.position, sp.id
"""
