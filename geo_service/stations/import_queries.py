"""SQL of the station import: a temporary table of the file's rows, checked and
placed in bulk, then one upsert. Values are always bound parameters.

The rows are copied into ``_imp`` and every check runs as one statement over
all of them (a 200,000-row file is a handful of queries, not a million). The
upsert leaves unchanged rows untouched (same version, same ``updated_at``), so
importing a file twice changes nothing. Kept apart from ``queries.py``, which
holds the one-station statements, as ``feeds`` keeps its OGC and tile SQL.
"""

from __future__ import annotations

from geo_service.stations.queries import HOURS_COLUMNS, WRITE_COLUMNS

# The file's rows, typed as the station table types them (so a new field needs no
# edit here), plus each row's number and its point.
# ``source_crs`` and ``hours_text`` are what the clerk typed (the coordinate system of
# the row, Chinese hours before conversion), kept for the union export's round trip.
TABLE = f"""
CREATE TEMP TABLE _imp ON COMMIT DROP AS
SELECT 0 AS rownum, {", ".join(WRITE_COLUMNS)}, 0::float8 AS lon, 0::float8 AS lat,
       source_crs, hours_text
FROM station WITH NO DATA
"""
COLUMNS = ("rownum", *(c for c in WRITE_COLUMNS), "lon", "lat", "source_crs", "hours_text")

UNKNOWN_TZ = """
SELECT i.rownum, i.code, i.timezone FROM _imp i
WHERE i.timezone NOT IN (SELECT name FROM pg_timezone_names)
ORDER BY i.rownum
"""

# The districts a sheet's 所属区县 (name or code) may mean, within the key's area, and
# whether each covers the row's point; the importer picks one or refuses the row.
DISTRICT_CANDIDATES = """
SELECT r.rownum, i.code AS station, r.ref, i.district_code AS given, a.code, a.name,
       coalesce(ST_Covers(a.geom, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326)), false)
FROM unnest(%(rows)s::int[], %(refs)s::text[]) AS r(rownum, ref)
JOIN _imp i ON i.rownum = r.rownum
LEFT JOIN admin_area a ON a.level = 'district'
     AND (a.code = r.ref OR a.name = r.ref
          OR a.name IN (r.ref || '区', r.ref || '县', r.ref || '市', r.ref || '自治县'))
     AND (%(area)s::text IS NULL OR geo_area_within(a.code, %(area)s))
ORDER BY r.rownum, a.code
"""

# One statement for all rows (one UPDATE per row would scan _imp once per row).
SET_DISTRICT = """
UPDATE _imp i SET district_code = u.code, district = u.name
FROM unnest(%(codes)s::text[], %(names)s::text[], %(rows)s::int[]) AS u(code, name, rownum)
WHERE i.rownum = u.rownum
"""

PLACE = """
CREATE TEMP TABLE _adm ON COMMIT DROP AS
SELECT i.rownum, f.district_code AS dc, f.district AS dn, f.city_code AS cc, f.city AS cn,
       f.province_code AS pc, f.province AS pn
FROM _imp i CROSS JOIN LATERAL geo_admin_for_point(i.lon, i.lat) f
"""

# Codes given in the file that contradict the polygon covering the point.
MISPLACED = """
SELECT i.rownum, i.code, f.field, f.given, f.actual
FROM _imp i JOIN _adm a USING (rownum)
CROSS JOIN LATERAL (VALUES ('district_code', i.district_code, a.dc),
                           ('city_code', i.city_code, a.cc),
                           ('province_code', i.province_code, a.pc)) f(field, given, actual)
WHERE f.given IS NOT NULL AND f.actual IS NOT NULL AND f.given <> f.actual
ORDER BY i.rownum
"""

FILL_ADMIN = """
UPDATE _imp i SET
    district_code = coalesce(a.dc, i.district_code), district = coalesce(i.district, a.dn),
    city_code = coalesce(a.cc, i.city_code), city = coalesce(i.city, a.cn),
    province_code = coalesce(a.pc, i.province_code), province = coalesce(i.province, a.pn)
FROM _adm a WHERE i.rownum = a.rownum
"""

# Street codes that are not a street of the row's district (see geo_street_problem).
BAD_STREET = """
SELECT rownum, code, problem FROM (
    SELECT i.rownum, i.code, geo_street_problem(i.street_code, i.district_code, i.lon, i.lat)
           AS problem
    FROM _imp i WHERE i.street_code IS NOT NULL) p
WHERE problem IS NOT NULL ORDER BY rownum
"""

# Rows a scoped key may not write: the new point, or the stored station it
# replaces, lies outside the key's area (by polygon where the area has one).
OUT_OF_SCOPE = """
SELECT i.rownum, i.code
FROM _imp i
JOIN admin_area a ON a.code = %(area)s
LEFT JOIN station s ON s.code = i.code
WHERE NOT CASE
    WHEN a.geom IS NOT NULL THEN
        ST_Covers(a.geom, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326))
        AND (s.code IS NULL OR ST_Covers(a.geom, s.geog::geometry))
    ELSE
        %(area)s IN (coalesce(i.province_code, ''), coalesce(i.city_code, ''),
                     coalesce(i.district_code, ''), coalesce(i.street_code, ''))
        AND (s.code IS NULL OR %(area)s IN (
            coalesce(s.province_code, ''), coalesce(s.city_code, ''),
            coalesce(s.district_code, ''), coalesce(s.street_code, '')))
    END
ORDER BY i.rownum
"""

# Which stored columns a file column drives. Columns a file does not have keep
# their stored values when a station is updated (a file without ``status``
# must not reopen a closed station); new stations get the defaults.
_DERIVED = {
    "opening_hours": ("opening_hours", "timezone", *HOURS_COLUMNS),
    "amenities": ("amenity_mask",),
}
# ``opening_hours`` is not among them: a file without the column (most OSM extracts)
# says nothing about hours, so an update keeps the stored ones; a new station gets
# none (unknown).
_ALWAYS = ("name", "province", "province_code", "city", "city_code", "district",
           "district_code", "street", "street_code", "host_type")
_NOT_COMPARED = HOURS_COLUMNS
# A point is unchanged within 1e-9 degrees (0.1 mm): a spreadsheet writes a double in
# 15-16 significant digits, which may miss the stored one by its last bit, and an export
# in GCJ-02 converts back within ~1e-11 degrees; a re-imported export must not count
# every station as moved. A distance, not a snap to a grid, which a value 1e-11 off
# would cross now and then.
_MOVED = "NOT ST_DWithin({}.geog::geometry, {}::geometry, 1e-9)"


def _plan(present: set[str], amenity_bits: int | None,
          src: str) -> tuple[list[str], list[str], dict[str, str], dict[str, str]]:
    """The columns a file with these columns writes, those compared to tell a change,
    and each one's new (from ``src``: ``EXCLUDED`` or the ``_imp`` alias) and old value."""
    sources = present | set(_ALWAYS)
    updated: list[str] = []
    for col in sources:
        updated.extend(_DERIVED.get(col, (col,) if col in WRITE_COLUMNS else ()))
    cols = [c for c in WRITE_COLUMNS if c in updated and c != "code"]
    compared = [c for c in cols if c not in _NOT_COMPARED]
    new = {c: f"{src}.{c}" for c in cols}
    old = {c: f"s.{c}" for c in cols}
    if amenity_bits is not None and "amenity_mask" in cols:
        new["amenity_mask"] = (f"(s.amenity_mask & ~%(amenity_bits)s::bigint)"
                               f" | {src}.amenity_mask")
    return cols, compared, new, old


def upsert(present: set[str], amenity_bits: int | None = None) -> str:
    """The upsert for a file with these columns; unchanged rows are left alone.

    ``amenity_bits``: the amenities the file decides when it is not all of them (a
    union sheet's yes/no columns); the others keep their stored bits. It is bound as
    ``%(amenity_bits)s``, so pass it as a parameter when given.
    """
    cols, compared, new, old = _plan(present, amenity_bits, "EXCLUDED")
    select = ", ".join(f"i.{c}" for c in WRITE_COLUMNS)
    deleted = ("deleted_at = CASE WHEN EXCLUDED.status = 'closed' THEN s.deleted_at END,"
               if "status" in cols else "")
    if "timezone" in cols and "hours_valid_until" not in cols:
        # A new zone for kept hours: a dated rule's periods were compiled in the old
        # one, so it reads "unknown" until the refresh job recompiles it.
        deleted += ("hours_valid_until = CASE WHEN s.hours_kind = 'dated' AND s.timezone "
                    "IS DISTINCT FROM EXCLUDED.timezone THEN least(s.hours_valid_until, now()) "
                    "ELSE s.hours_valid_until END,")
    # What the clerk typed rides along with a written row; it is no change on its own.
    typed = "source_crs = EXCLUDED.source_crs," + (
        " hours_text = EXCLUDED.hours_text," if "opening_hours" in cols else "")
    return f"""
INSERT INTO station AS s ({", ".join(WRITE_COLUMNS)}, geog, source_crs, hours_text)
SELECT {select}, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326)::geography, i.source_crs,
       i.hours_text
FROM _imp i
ORDER BY i.rownum
ON CONFLICT (code) DO UPDATE SET
    {", ".join(f"{c} = {new[c]}" for c in cols)},
    geog = EXCLUDED.geog,
    {typed}
    {deleted}
    version = s.version + 1,
    updated_at = now()
WHERE ({", ".join(old[c] for c in compared)}, {_MOVED.format("s", "EXCLUDED.geog")})
      IS DISTINCT FROM
      ({", ".join(new[c] for c in compared)}, false)
RETURNING (xmax = 0) AS inserted
"""


DUPLICATES = """
SELECT i.code, o.code AS other_code, i.name, o.name AS other_name,
       ST_Distance(o.geog, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326)::geography) AS d
FROM _imp i
JOIN station o ON o.code <> i.code AND o.status <> 'duplicate'
 AND ST_DWithin(o.geog, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326)::geography, %(within)s)
ORDER BY i.rownum, d
"""

DROP_ROWS = "DELETE FROM _imp WHERE rownum = ANY(%s)"


def changes(present: set[str], amenity_bits: int | None = None) -> str:
    """Each row of ``_imp`` beside the station it would update: the stored version, the
    compared fields that differ as ``{column: [old, new]}``, and how far the point moves
    (metres on the spheroid; NULL when it stays within :data:`_MOVED`'s 1e-9 degrees).

    The same columns and expressions as :func:`upsert`, so the preview shows exactly
    what the upsert would write (bind ``%(amenity_bits)s`` likewise).
    """
    _, compared, new, old = _plan(present, amenity_bits, "i")
    pairs = [f"'{c}', CASE WHEN {old[c]} IS DISTINCT FROM {new[c]} THEN "
             f"jsonb_build_array(to_jsonb({old[c]}), to_jsonb({new[c]})) END" for c in compared]
    # jsonb_build_object takes at most 100 arguments: 40 pairs at a time.
    objects = " || ".join(f"jsonb_build_object({', '.join(pairs[k:k + 40])})"
                          for k in range(0, len(pairs), 40)) or "'{}'::jsonb"
    point = "ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326)"
    return f"""
SELECT i.rownum, i.code, s.version, s.code IS NULL AS new,
       CASE WHEN s.code IS NULL THEN '{{}}'::jsonb ELSE jsonb_strip_nulls({objects}) END
           AS changes,
       CASE WHEN s.code IS NOT NULL AND {_MOVED.format("s", point)}
            THEN ST_Distance(s.geog, {point}::geography) END AS moved_m,
       ST_X(s.geog::geometry) AS old_lon, ST_Y(s.geog::geometry) AS old_lat,
       i.lon, i.lat, i.name, i.district, i.hours_text
FROM _imp i LEFT JOIN station s ON s.code = i.code
ORDER BY i.rownum
"""

# The district under each point, for the rows whose 所属区县 names a functional zone
# (高新区 …), which is no district: the point decides, and the preview says which.
ZONE_DISTRICTS = """
SELECT i.rownum, a.dc, a.dn FROM _imp i JOIN _adm a USING (rownum)
WHERE i.rownum = ANY(%(rows)s) ORDER BY i.rownum
"""
