"""Operator-entered holiday arrangements: a year's days off and make-up working days.

``holiday_arrangement`` holds the State Council's notice for a year the installed
``chinese-calendar`` does not cover yet, as ``geo-service calendar enter`` validated it
(``geo_service/hours/arrangements.py``). It lives in the database, not a file, so
every API process and ``geo-service hours refresh`` read the same years.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holiday_arrangement",
        sa.Column("year", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("notice", sa.Text(), nullable=False),
        sa.Column("days_off", postgresql.ARRAY(sa.Date()), nullable=False),
        sa.Column("workdays", postgresql.ARRAY(sa.Date()), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("now()")),
        sa.CheckConstraint("year BETWEEN 2000 AND 2100", name="ck_holiday_arrangement_year"),
        sa.PrimaryKeyConstraint("year", name="pk_holiday_arrangement"),
    )


def downgrade() -> None:
    op.drop_table("holiday_arrangement")
