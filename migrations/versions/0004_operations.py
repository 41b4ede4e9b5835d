"""Station operations: mobile stops, inspections, visits, reports, confirmations, awards.

Also the ``inspector`` role for API keys, two station columns that worker
feedback maintains without a version change (they are not edits):
``reported_closed_at`` and ``last_confirmed_at``, and ``scheduled``: true when
a mobile station has stops, so the nearest walk skips it with a plain column
test (a per-row ``EXISTS`` made the planner give up the KNN index walk).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography
from sqlalchemy.dialects.postgresql import ARRAY, INT4MULTIRANGE, JSONB, TSTZMULTIRANGE

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The vocabularies of this revision's check constraints, frozen here rather than
# imported from ``geo_service.domain.models``: a later edit of the models' constants
# must come with its own migration, not silently change what this one created
# (tests/test_migrations.py compares the migrated schema with the models).
WORKER_TYPES = ("sanitation", "delivery", "courier", "truck_driver", "traffic", "other")
REPORT_KINDS = ("closed", "amenity_missing", "amenity_broken", "wrong_location", "moved", "other")
AWARD_LEVELS = ("national", "provincial", "city")


def _ts(name: str, **kw: object) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), **kw)  # type: ignore[arg-type]


def _among(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def _sample() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("sample", sa.Boolean(), server_default=sa.text("false"), nullable=False)


def _station_fk(table: str, cascade: bool = False) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["station_id"], ["station.id"],
                                   ondelete="CASCADE" if cascade else None,
                                   name=f"fk_{table}_station_id_station")


def upgrade() -> None:
    op.drop_constraint("ck_api_key_role", "api_key", type_="check")
    op.create_check_constraint("ck_api_key_role", "api_key",
                               "role IN ('admin', 'editor', 'inspector')")
    op.add_column("station", _ts("reported_closed_at"))
    op.add_column("station", _ts("last_confirmed_at"))
    op.add_column("station", sa.Column("scheduled", sa.Boolean(), server_default=sa.text("false"),
                                       nullable=False))

    op.create_table(
        "station_stop",
        _id(),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("geog", Geography("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("opening_hours", sa.Text(), nullable=False),
        sa.Column("hours_kind", sa.Text(), nullable=False),
        sa.Column("open_minutes", INT4MULTIRANGE(), nullable=False),
        sa.Column("open_periods", TSTZMULTIRANGE()),
        _ts("hours_valid_until"),
        sa.Column("valid_from", sa.Date()),
        sa.Column("valid_to", sa.Date()),
        sa.PrimaryKeyConstraint("id", name="pk_station_stop"),
        _station_fk("station_stop", cascade=True),
        sa.CheckConstraint("hours_kind IN ('weekly', 'dated')", name="ck_station_stop_hours_kind"),
        sa.CheckConstraint("valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from",
                           name="ck_station_stop_valid_range"),
    )
    op.create_index("ix_station_stop_geog", "station_stop", ["geog"], postgresql_using="gist")
    op.create_index("ix_station_stop_station_id", "station_stop", ["station_id", "seq"],
                    unique=True)

    op.create_table(
        "inspection",
        _id(),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.Column("inspected_on", sa.Date(), nullable=False),
        sa.Column("inspector_key_id", sa.Integer()),
        sa.Column("inspector", sa.Text(), nullable=False),
        sa.Column("items", JSONB(), nullable=False),
        sa.Column("extras", ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("hours_observed", sa.Text()),
        sa.Column("photos", ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("remarks", sa.Text()),
        sa.Column("score", sa.Numeric(5, 1)),
        sa.Column("ten_ones_count", sa.SmallInteger(), nullable=False),
        sa.Column("amenity_mask", sa.BigInteger(), nullable=False),
        _ts("created_at", server_default=sa.func.now(), nullable=False),
        _sample(),
        sa.PrimaryKeyConstraint("id", name="pk_inspection"),
        _station_fk("inspection"),
        sa.ForeignKeyConstraint(["inspector_key_id"], ["api_key.id"],
                                name="fk_inspection_inspector_key_id_api_key"),
        sa.CheckConstraint("score IS NULL OR (score >= 0 AND score <= 100)",
                           name="ck_inspection_score"),
        sa.CheckConstraint("ten_ones_count BETWEEN 0 AND 10",
                           name="ck_inspection_ten_ones_count"),
    )
    op.create_index("ix_inspection_station_id", "inspection",
                    ["station_id", "inspected_on", "id"])
    op.create_index("ix_inspection_inspected_on", "inspection", ["inspected_on"])

    op.create_table(
        "visit",
        _id(),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        _ts("at", server_default=sa.func.now(), nullable=False),
        sa.Column("worker_type", sa.Text()),
        sa.Column("device_hash", sa.Text()),
        sa.Column("client_hash", sa.Text()),
        _sample(),
        sa.PrimaryKeyConstraint("id", name="pk_visit"),
        _station_fk("visit"),
        sa.CheckConstraint(f"worker_type IS NULL OR {_among('worker_type', WORKER_TYPES)}",
                           name="ck_visit_worker_type"),
    )
    op.create_index("ix_visit_station_id", "visit", ["station_id", "at"])
    op.create_index("ix_visit_device_hash", "visit", ["device_hash", "station_id", "at"])
    op.create_index("ix_visit_client_hash", "visit", ["client_hash", "at"])
    op.create_index("ix_visit_at", "visit", ["at"])

    op.create_table(
        "station_report",
        _id(),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("amenity", sa.Text()),
        sa.Column("comment", sa.Text()),
        _ts("created_at", server_default=sa.func.now(), nullable=False),
        sa.Column("device_hash", sa.Text()),
        sa.Column("client_hash", sa.Text()),
        sa.Column("status", sa.Text(), server_default=sa.text("'open'"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        _sample(),
        sa.PrimaryKeyConstraint("id", name="pk_station_report"),
        _station_fk("station_report"),
        sa.ForeignKeyConstraint(["amenity"], ["amenity.code"],
                                name="fk_station_report_amenity_amenity"),
        sa.CheckConstraint(_among("kind", REPORT_KINDS), name="ck_station_report_kind"),
        sa.CheckConstraint("status IN ('open', 'resolved', 'rejected')",
                           name="ck_station_report_status"),
        sa.CheckConstraint("version >= 1", name="ck_station_report_version"),
    )
    op.create_index("ix_station_report_station_id", "station_report",
                    ["station_id", "status", "created_at"])
    op.create_index("ix_station_report_client_hash", "station_report",
                    ["client_hash", "created_at"])

    op.create_table(
        "report_resolution",
        _id(),
        sa.Column("report_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("editor_key_id", sa.Integer()),
        sa.Column("editor", sa.Text(), nullable=False),
        _ts("created_at", server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_report_resolution"),
        sa.ForeignKeyConstraint(["report_id"], ["station_report.id"],
                                name="fk_report_resolution_report_id_station_report"),
        sa.ForeignKeyConstraint(["editor_key_id"], ["api_key.id"],
                                name="fk_report_resolution_editor_key_id_api_key"),
        sa.CheckConstraint("action IN ('resolved', 'rejected', 'reopened')",
                           name="ck_report_resolution_action"),
    )
    op.create_index("ix_report_resolution_report_id", "report_resolution", ["report_id", "id"])

    op.create_table(
        "confirmation",
        _id(),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        _ts("at", server_default=sa.func.now(), nullable=False),
        sa.Column("device_hash", sa.Text()),
        sa.Column("client_hash", sa.Text()),
        _sample(),
        sa.PrimaryKeyConstraint("id", name="pk_confirmation"),
        _station_fk("confirmation"),
    )
    op.create_index("ix_confirmation_station_id", "confirmation", ["station_id", "at"])
    op.create_index("ix_confirmation_device_hash", "confirmation",
                    ["device_hash", "station_id", "at"])
    op.create_index("ix_confirmation_client_hash", "confirmation", ["client_hash", "at"])

    op.create_table(
        "station_award",
        _id(),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        _ts("created_at", server_default=sa.func.now(), nullable=False),
        _sample(),
        sa.PrimaryKeyConstraint("id", name="pk_station_award"),
        _station_fk("station_award", cascade=True),
        sa.CheckConstraint(_among("level", AWARD_LEVELS), name="ck_station_award_level"),
        sa.CheckConstraint("year BETWEEN 1949 AND 2200", name="ck_station_award_year"),
    )
    op.create_index("ix_station_award_station_id", "station_award", ["station_id", "year"])


def downgrade() -> None:
    for table in ("station_award", "confirmation", "report_resolution", "station_report",
                  "visit", "inspection", "station_stop"):
        op.drop_table(table)
    op.drop_column("station", "scheduled")
    op.drop_column("station", "last_confirmed_at")
    op.drop_column("station", "reported_closed_at")
    op.execute("DELETE FROM api_key WHERE role = 'inspector'")
    op.drop_constraint("ck_api_key_role", "api_key", type_="check")
    op.create_check_constraint("ck_api_key_role", "api_key", "role IN ('admin', 'editor')")
