"""Official holiday calendars: a station's choice to follow make-up working days, and
the calendar each compiled rule was compiled with.

``station.official_workdays`` (nullable boolean): whether the station follows the
State Council's working-day arrangement - open with weekday hours on make-up working
days (调休上班), resting (Sunday's hours) on official days off. NULL means the default
of its host type: on for bank branches, Party service centres and union-built
stations (staffed on office schedules), off for the rest (own rosters).

``hours_calendar`` on ``station`` and ``station_stop``: the calendar label the compiled
hours came from (``"CN chinese-calendar 1.11.0"``), ``"none"`` when the rule does not
depend on a calendar, NULL for rows compiled before calendars were recorded. ``geo-service
hours refresh`` recompiles rows whose label is NULL or no longer the installed
calendar's, so upgrading the calendar package (a newly published notice) reaches
every station. The column is derived, so the audit trail skips it like the other
compiled columns (the audit triggers are re-created with it in their skip lists).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: The audit triggers' skip lists as 0005 and 0007 left them, and with the new derived
#: column.
_SKIP_0005 = {
    "station": ("id", "geog", "change_seq", "updated_at", "created_at", "open_minutes",
                "open_periods", "hours_valid_until", "hours_kind", "last_confirmed_at",
                "unknown_periods"),
    "station_stop": ("id", "station_id", "geog", "open_minutes", "open_periods",
                     "hours_valid_until", "hours_kind"),
}
_SKIP = {table: (*skip, "hours_calendar") for table, skip in _SKIP_0005.items()}


def _triggers(skips: dict[str, tuple[str, ...]]) -> None:
    for table, skip in skips.items():
        args = ", ".join(f"'{c}'" for c in skip)
        op.execute(f"DROP TRIGGER {table}_audit ON {table}")
        op.execute(f"""CREATE TRIGGER {table}_audit AFTER INSERT OR UPDATE OR DELETE ON {table}
                       FOR EACH ROW EXECUTE FUNCTION geo_audit({args})""")


def upgrade() -> None:
    op.add_column("station", sa.Column("official_workdays", sa.Boolean()))
    op.add_column("station", sa.Column("hours_calendar", sa.Text()))
    op.add_column("station_stop", sa.Column("hours_calendar", sa.Text()))
    _triggers(_SKIP)


def downgrade() -> None:
    _triggers(_SKIP_0005)
    op.drop_column("station_stop", "hours_calendar")
    op.drop_column("station", "hours_calendar")
    op.drop_column("station", "official_workdays")
