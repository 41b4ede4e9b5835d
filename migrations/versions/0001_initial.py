"""Initial schema: amenity catalogue, admin areas, stations, API keys, demand points.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography, Geometry
from sqlalchemy.dialects.postgresql import INT4MULTIRANGE, TSTZMULTIRANGE

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

HOST_TYPES = (
    "union_built", "party_service_centre", "sanitation_depot", "enterprise",
    "bank_branch", "volunteer", "mobile",
)
STATUSES = ("planned", "open", "temporarily_closed", "closed", "duplicate")

#: The amenity catalogue as this revision published it: (code, bit, label_zh,
#: label_en, ten_ones). Frozen here rather than read from
#: ``geo_service.domain.catalogue``, so that editing the catalogue cannot rewrite what
#: this revision did; a new amenity needs a new migration (a test compares the
#: migrated table with the catalogue).
AMENITIES = (
    ("indoor_rest", 0, "室内休息场所", "Indoor rest space", True),
    ("seating", 1, "座椅", "Seats", True),
    ("microwave", 2, "微波炉", "Microwave", True),
    ("water_dispenser", 3, "饮水机", "Water dispenser", True),
    ("restroom", 4, "卫生间", "Restroom", True),
    ("first_aid_kit", 5, "应急医药箱", "First-aid kit", True),
    ("book_rack", 6, "书报架", "Book and newspaper rack", True),
    ("phone_charging", 7, "手机充电站", "Phone charging", True),
    ("refrigerator", 8, "电冰箱", "Refrigerator", True),
    ("umbrella_stand", 9, "雨伞架", "Umbrella stand", True),
    ("ebike_charging", 16, "电动车充电", "E-bike charging", False),
    ("air_conditioning", 17, "空调", "Air conditioning", False),
    ("heating", 18, "取暖", "Heating", False),
    ("insect_repellent", 19, "驱蚊及消炎药品", "Insect repellent and medicines", False),
    ("mothers_room", 20, "妈咪小屋", "Mothers' room", False),
    ("childcare", 21, "爱心托管", "Childcare", False),
    ("canteen", 22, "爱心食堂", "Canteen with subsidised meals", False),
    ("legal_aid", 23, "法律援助", "Legal aid desk", False),
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _ts(name: str, **kw: object) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), **kw)  # type: ignore[arg-type]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    amenity = op.create_table(
        "amenity",
        sa.Column("code", sa.Text(), primary_key=True),
        sa.Column("bit", sa.SmallInteger(), nullable=False),
        sa.Column("label_zh", sa.Text(), nullable=False),
        sa.Column("label_en", sa.Text(), nullable=False),
        sa.Column("ten_ones", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_amenity"),
        sa.UniqueConstraint("bit", name="uq_amenity_bit"),
    )
    op.bulk_insert(
        amenity,
        [
            {"code": code, "bit": bit, "label_zh": label_zh, "label_en": label_en,
             "ten_ones": ten_ones}
            for code, bit, label_zh, label_en, ten_ones in AMENITIES
        ],
    )

    op.create_table(
        "admin_area",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text()),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("parent_code", sa.Text()),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)),
        sa.Column("sample", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_admin_area"),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["admin_area.code"], name="fk_admin_area_parent_code_admin_area",
            deferrable=True, initially="DEFERRED",
        ),
        sa.CheckConstraint(
            "level IN ('province', 'city', 'district', 'street')", name="ck_admin_area_level"
        ),
    )
    op.create_index("ix_admin_area_parent_code", "admin_area", ["parent_code"])
    op.create_index("ix_admin_area_geom", "admin_area", ["geom"], postgresql_using="gist")

    op.create_table(
        "station",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text()),
        sa.Column("address", sa.Text()),
        *[sa.Column(c, sa.Text()) for c in (
            "province", "province_code", "city", "city_code",
            "district", "district_code", "street", "street_code",
        )],
        sa.Column("geog", Geography("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("host_type", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("opening_hours", sa.Text(), nullable=False),
        sa.Column("timezone", sa.Text(), server_default=sa.text("'Asia/Shanghai'"),
                  nullable=False),
        sa.Column("hours_kind", sa.Text(), nullable=False),
        sa.Column("open_minutes", INT4MULTIRANGE(), nullable=False),
        sa.Column("open_periods", TSTZMULTIRANGE()),
        _ts("hours_valid_until"),
        sa.Column("phone", sa.Text()),
        sa.Column("floor_area_m2", sa.Numeric(8, 1)),
        sa.Column("seats", sa.Integer()),
        sa.Column("opened_on", sa.Date()),
        sa.Column("amenity_mask", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_verified_on", sa.Date()),
        sa.Column("sample", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _ts("created_at", server_default=sa.func.now(), nullable=False),
        _ts("updated_at", server_default=sa.func.now(), nullable=False),
        _ts("deleted_at"),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_station"),
        sa.UniqueConstraint("code", name="uq_station_code"),
        sa.CheckConstraint(_in("host_type", HOST_TYPES), name="ck_station_host_type"),
        sa.CheckConstraint(_in("status", STATUSES), name="ck_station_status"),
        sa.CheckConstraint("hours_kind IN ('weekly', 'dated')", name="ck_station_hours_kind"),
        sa.CheckConstraint("version >= 1", name="ck_station_version"),
    )
    op.create_index("ix_station_geog", "station", ["geog"], postgresql_using="gist")
    # Planar index for bounding boxes in degrees (and, later, tiles): geography
    # boxes break on antipodal edges and wider-than-180° spans.
    op.create_index("ix_station_geom", "station", [sa.text("(geog::geometry)")],
                    postgresql_using="gist")
    op.create_index("ix_station_updated_at", "station", ["updated_at", "id"])
    op.create_index("ix_station_district_code", "station", ["district_code"])
    op.create_index("ix_station_city_code", "station", ["city_code"])

    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("area_code", sa.Text()),
        _ts("created_at", server_default=sa.func.now(), nullable=False),
        _ts("revoked_at"),
        sa.PrimaryKeyConstraint("id", name="pk_api_key"),
        sa.UniqueConstraint("prefix", name="uq_api_key_prefix"),
        sa.ForeignKeyConstraint(["area_code"], ["admin_area.code"],
                                name="fk_api_key_area_code_admin_area"),
        sa.CheckConstraint("role IN ('admin', 'editor')", name="ck_api_key_role"),
    )

    op.create_table(
        "demand_point",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("geog", Geography("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("worker_type", sa.Text(), nullable=False),
        sa.Column("source", sa.Text()),
        sa.Column("observed_on", sa.Date()),
        sa.Column("sample", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_demand_point"),
        sa.UniqueConstraint("external_id", name="uq_demand_point_external_id"),
        sa.CheckConstraint("weight >= 0", name="ck_demand_point_weight"),
    )
    op.create_index("ix_demand_point_geog", "demand_point", ["geog"], postgresql_using="gist")

    # Local minute of the week (Monday 00:00 = 0) of an instant in a time zone, and
    # "is this station open at that instant" from its compiled hours. Plain SQL
    # functions so the planner inlines them into the KNN walk.
    op.execute(
        """
        CREATE FUNCTION geo_minute_of_week(at timestamptz, tz text) RETURNS integer
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
          SELECT ((date_part('isodow', at AT TIME ZONE tz) - 1) * 1440
                  + date_part('hour', at AT TIME ZONE tz) * 60
                  + date_part('minute', at AT TIME ZONE tz))::integer
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION geo_is_open(kind text, minutes int4multirange,
                                    periods tstzmultirange, at timestamptz, tz text)
        RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
          SELECT CASE WHEN kind = 'weekly' THEN minutes @> geo_minute_of_week(at, tz)
                      ELSE coalesce(periods @> at, false) END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS geo_is_open(text, int4multirange, tstzmultirange, "
               "timestamptz, text)")
    op.execute("DROP FUNCTION IF EXISTS geo_minute_of_week(timestamptz, text)")
    op.drop_table("demand_point")
    op.drop_table("api_key")
    op.drop_table("station")
    op.drop_table("admin_area")
    op.drop_table("amenity")
