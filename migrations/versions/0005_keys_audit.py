"""Key lifecycle, an append-only audit trail, and street codes checked against the area tree.

**Keys** get an optional expiry, the time they were last used, and the key a
rotation replaced (``replaces_id``), so an operator can see which keys are
alive and retire old ones.

**Audit trail.** Every write appends who, when and what to ``audit_log`` in
the same transaction, from row triggers rather than from each handler: a
write path added later (or an operator's SQL) cannot forget it, and a rolled
back import or a dry run leaves no entry. Who is written is what the
application put in the transaction-local setting ``geo.actor`` (key id and
name, the request, an import's id); without it the entry names the database
role. ``what`` is the changed columns, old → new; columns that are compiled
from others or are bookkeeping (compiled hours, change numbers, timestamps,
secret hashes, last use) are left out, and an update that changes nothing
else writes no entry. UPDATE and DELETE on ``audit_log`` are refused by a
trigger, so an entry cannot be rewritten by the application's own role.

**Street codes** (``geo_street_problem``): a station's street code must be a
street of its district; a code of another area level, a street polygon that
does not cover the point, or an unknown numeric code that does not start with
the district's code is refused, so a station cannot show up in another
area's lists through its street code.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: Columns an entry never shows, per table (compiled, bookkeeping or secret).
_SKIP = {
    "station": ("id", "geog", "change_seq", "updated_at", "created_at", "open_minutes",
                "open_periods", "hours_valid_until", "hours_kind", "last_confirmed_at"),
    "station_stop": ("id", "station_id", "geog", "open_minutes", "open_periods",
                     "hours_valid_until", "hours_kind"),
    "inspection": ("id", "station_id", "created_at", "amenity_mask", "inspector_key_id"),
    "station_award": ("id", "station_id", "created_at"),
    "report_resolution": ("id", "created_at", "editor_key_id"),
    "api_key": ("secret_hash", "last_used_at", "created_at"),
}

_AUDIT_FN = r"""
CREATE FUNCTION geo_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor jsonb := nullif(current_setting('geo.actor', true), '')::jsonb;
    old_j jsonb := CASE WHEN TG_OP = 'INSERT' THEN '{}'::jsonb ELSE to_jsonb(OLD) END;
    new_j jsonb := CASE WHEN TG_OP = 'DELETE' THEN '{}'::jsonb ELSE to_jsonb(NEW) END;
    diff jsonb;
    action text := TG_TABLE_NAME || '.' || lower(TG_OP);
    station_code text;
BEGIN
    IF TG_TABLE_NAME IN ('station', 'station_stop') THEN
        -- Positions as lon/lat, readable and comparable, instead of EWKB.
        IF TG_OP <> 'INSERT' THEN
            old_j := old_j || jsonb_build_object('lon', ST_X(OLD.geog::geometry),
                                                 'lat', ST_Y(OLD.geog::geometry));
        END IF;
        IF TG_OP <> 'DELETE' THEN
            new_j := new_j || jsonb_build_object('lon', ST_X(NEW.geog::geometry),
                                                 'lat', ST_Y(NEW.geog::geometry));
        END IF;
    END IF;
    SELECT coalesce(jsonb_object_agg(k, jsonb_build_array(old_j -> k, new_j -> k)), '{}')
      INTO diff
      FROM (SELECT DISTINCT jsonb_object_keys(old_j || new_j) AS k) keys
     WHERE NOT k = ANY (TG_ARGV)
       AND (old_j -> k) IS DISTINCT FROM (new_j -> k);
    IF TG_OP = 'UPDATE' AND (diff - 'version' - 'scheduled') = '{}'::jsonb THEN
        RETURN NULL;  -- bookkeeping only (e.g. a schedule's version bump: the stops say why)
    END IF;
    IF TG_TABLE_NAME = 'station' THEN
        station_code := coalesce(new_j ->> 'code', old_j ->> 'code');
        IF TG_OP = 'INSERT' THEN
            action := 'station.create';
        ELSIF old_j -> 'deleted_at' = 'null'::jsonb AND new_j -> 'deleted_at' <> 'null'::jsonb
        THEN
            action := 'station.delete';
        END IF;
    ELSIF TG_TABLE_NAME = 'report_resolution' THEN
        SELECT s.code INTO station_code FROM station_report r JOIN station s
            ON s.id = r.station_id WHERE r.id = (new_j ->> 'report_id')::bigint;
    ELSIF TG_TABLE_NAME <> 'api_key' THEN
        SELECT s.code INTO station_code FROM station s
         WHERE s.id = coalesce(new_j ->> 'station_id', old_j ->> 'station_id')::bigint;
    END IF;
    INSERT INTO audit_log (key_id, actor, request, import_id, action, station_code,
                           record_id, changes)
    VALUES ((actor ->> 'key_id')::int,
            coalesce(actor ->> 'name', 'database:' || session_user),
            actor ->> 'request', (actor ->> 'import_id')::uuid, action, station_code,
            coalesce(new_j ->> 'id', old_j ->> 'id'), diff);
    RETURN NULL;
END $$
"""

_APPEND_ONLY_FN = """
CREATE FUNCTION geo_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$
"""

_STREET_FN = r"""
CREATE FUNCTION geo_street_problem(street text, district text, lon float8, lat float8)
RETURNS text LANGUAGE sql STABLE AS $$
SELECT CASE
    WHEN street IS NULL THEN NULL
    WHEN a.code IS NOT NULL AND a.level <> 'street'
        THEN street || ' is a ' || a.level || ' code, not a street'
    WHEN a.geom IS NOT NULL
         AND NOT ST_Covers(a.geom, ST_SetSRID(ST_MakePoint(lon, lat), 4326))
        THEN street || ' does not contain the point'
    WHEN a.code IS NOT NULL AND district IS NOT NULL AND a.parent_code IS DISTINCT FROM district
        THEN street || ' is not a street of ' || district
    WHEN a.code IS NULL AND district ~ '^[0-9]{6}$' AND street ~ '^[0-9]+$'
         AND left(street, 6) <> district
        THEN 'a street code begins with its district code ' || district
    END
FROM (SELECT 1) AS one LEFT JOIN admin_area a ON a.code = street
$$
"""

#: Is ``area`` ``scope`` itself or below it in the area tree? (key scopes: which
#: keys an area's admin manages, which areas its planners may analyse)
_WITHIN_FN = r"""
CREATE FUNCTION geo_area_within(area text, scope text) RETURNS boolean
LANGUAGE sql STABLE AS $$
WITH RECURSIVE up AS (
    SELECT code, parent_code, 0 AS depth FROM admin_area WHERE code = area
    UNION ALL
    SELECT a.code, a.parent_code, up.depth + 1 FROM admin_area a
    JOIN up ON a.code = up.parent_code WHERE up.depth < 10
)
SELECT EXISTS (SELECT 1 FROM up WHERE code = scope)
$$
"""


def upgrade() -> None:
    op.add_column("api_key", sa.Column("expires_at", sa.DateTime(timezone=True)))
    op.add_column("api_key", sa.Column("last_used_at", sa.DateTime(timezone=True)))
    op.add_column("api_key", sa.Column("replaces_id", sa.Integer()))
    op.create_foreign_key("fk_api_key_replaces_id_api_key", "api_key", "api_key",
                          ["replaces_id"], ["id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"),
                  nullable=False),
        sa.Column("key_id", sa.Integer()),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("request", sa.Text()),
        sa.Column("import_id", UUID(as_uuid=True)),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("station_code", sa.Text()),
        sa.Column("record_id", sa.Text()),
        sa.Column("changes", JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_station_code_id", "audit_log", ["station_code", "id"])
    op.create_index("ix_audit_log_import_id", "audit_log", ["import_id"])
    op.execute(_AUDIT_FN)
    op.execute(_APPEND_ONLY_FN)
    op.execute("""CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
                  FOR EACH ROW EXECUTE FUNCTION geo_audit_append_only()""")
    for table, skip in _SKIP.items():
        ops = "INSERT OR UPDATE OR DELETE"
        args = ", ".join(f"'{c}'" for c in skip)
        op.execute(f"""CREATE TRIGGER {table}_audit AFTER {ops} ON {table}
                       FOR EACH ROW EXECUTE FUNCTION geo_audit({args})""")
    op.execute(_STREET_FN)
    op.execute(_WITHIN_FN)


def downgrade() -> None:
    op.execute("DROP FUNCTION geo_area_within(text, text)")
    op.execute("DROP FUNCTION geo_street_problem(text, text, float8, float8)")
    for table in _SKIP:
        op.execute(f"DROP TRIGGER {table}_audit ON {table}")
    op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION geo_audit_append_only()")
    op.execute("DROP FUNCTION geo_audit()")
    op.drop_table("audit_log")
    op.drop_constraint("fk_api_key_replaces_id_api_key", "api_key", type_="foreignkey")
    op.drop_column("api_key", "replaces_id")
    op.drop_column("api_key", "last_used_at")
    op.drop_column("api_key", "expires_at")
