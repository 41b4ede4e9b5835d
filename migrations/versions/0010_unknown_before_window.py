"""Dated hours stored earlier say "unknown" before their compiled window, not "closed".

A ``dated`` rule's periods cover a window from its compile instant (one day back,
before this revision; a month back now, ``hours.LOOKBACK``) to its horizon.
``geo_open_state`` read any instant before the window as "in no open period", that
is closed: ``Mo-Fr 08:00-16:00; PH closed`` was closed at every past instant. The
code now stores all time before the window in ``unknown_periods`` as well, so SQL, the
memory index and the phone answer NULL there; no SQL function changes.

Rows stored before this revision did not record where their window starts. Marked
here as unknown: everything before the earliest stored open or unknown period (or the
horizon, for a row with none). That is the window's start or later, so at worst a
stretch that was known to be closed reads unknown - never the reverse - until
``geo-service hours refresh`` recompiles the row. Rows already marked (a range
unbounded below) are left alone, so running this twice changes nothing.

The downgrade keeps the marks: the previous code reads an unknown range unbounded
below as it reads any other unknown stretch (NULL there), which is still the truth.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        WITH stored AS (
            SELECT id, least(lower(coalesce(open_periods, '{}')
                                   + coalesce(unknown_periods, '{}')),
                             hours_valid_until) AS known_from
            FROM station
            WHERE hours_kind = 'dated'
              AND NOT coalesce(lower_inf(unknown_periods), false)
        )
        UPDATE station s
        SET unknown_periods = coalesce(s.unknown_periods, '{}')
                              + tstzmultirange(tstzrange(NULL, stored.known_from))
        FROM stored
        WHERE s.id = stored.id AND stored.known_from IS NOT NULL
    """)


def downgrade() -> None:
    """Nothing to undo (see the module docstring)."""
