"""One standing word per device per station: later feedback supersedes earlier.

A rider who taps "it is open" and then "it is closed" within minutes meant the
second. ``superseded_at`` marks a confirmation or ``closed`` report that a later
word from the same device replaced (``operations.reports``): the row stays, as
the record of what was said, but no count, mark or queue reads it any more.
The device index serves the look-up of a device's standing words at a station.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("confirmation", "station_report"):
        op.add_column(table, sa.Column("superseded_at", sa.DateTime(timezone=True)))
    op.create_index("ix_station_report_device_hash", "station_report",
                    ["device_hash", "station_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_station_report_device_hash", table_name="station_report")
    for table in ("confirmation", "station_report"):
        op.drop_column(table, "superseded_at")
