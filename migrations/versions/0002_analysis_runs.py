"""Analysis runs: coverage and recommendation results kept for comparison, maps and feeds.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_run",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("params", JSONB(), nullable=False),
        sa.Column("inputs", JSONB(), nullable=False),
        sa.Column("summary", JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("sample", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_analysis_run"),
        sa.CheckConstraint("kind IN ('coverage', 'recommendations')",
                           name="ck_analysis_run_kind"),
    )
    op.create_table(
        "analysis_cell",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("cell", sa.Text(), nullable=False),
        sa.Column("area_code", sa.Text(), nullable=False),
        sa.Column("demand", sa.Float(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("nearest_code", sa.Text()),
        sa.Column("nearest_m", sa.Float()),
        sa.Column("second_m", sa.Float()),
        sa.Column("covered", sa.Boolean(), nullable=False),
        sa.Column("doubly", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "cell", "area_code", name="pk_analysis_cell"),
        sa.ForeignKeyConstraint(["run_id"], ["analysis_run.id"], ondelete="CASCADE",
                                name="fk_analysis_cell_run_id_analysis_run"),
    )
    op.create_table(
        "analysis_site",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("geog", Geography("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("gain", sa.Float(), nullable=False),
        sa.Column("covered_after", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "rank", name="pk_analysis_site"),
        sa.ForeignKeyConstraint(["run_id"], ["analysis_run.id"], ondelete="CASCADE",
                                name="fk_analysis_site_run_id_analysis_run"),
    )


def downgrade() -> None:
    op.drop_table("analysis_site")
    op.drop_table("analysis_cell")
    op.drop_table("analysis_run")
