"""Opening hours may be unknown: no rule at all, or a rule that says "unknown" for a while.

A thousand real OpenStreetMap points imported as a test: 68% had no
``opening_hours`` and were refused. Refusing them hides real stations from the
couriers who need them; inventing hours ("24/7") lies to them. So:

* ``station.opening_hours`` may be NULL, compiled as ``hours_kind = 'unknown'``
  (empty ``open_minutes``, no periods, no horizon). The two always go together
  (``ck_station_hours_unknown``), so "no rule" and "a rule" cannot be confused.
* A ``dated`` rule also stores when it is *unknown* (``unknown_periods``: the
  ``unknown`` state of ``Mo-Fr 08:00-18:00 || unknown``, a comment-only
  fallback), so "open now" can answer NULL there instead of "closed".
* ``geo_open_state(...)`` is the one three-valued answer: true open, false
  closed, NULL unknown (no rule, an unknown period, or past a dated rule's
  horizon). Like ``geo_is_open`` it is a plain SQL function the planner
  inlines into the KNN walk; ``coalesce(geo_open_state(...), include_unknown)``
  is the nearest filter.

Rules stored before this revision that may hold unknown time (a ``||``
fallback or the word ``unknown``) are marked for recompilation: their horizon
is set to now, so they read "unknown" until ``geo-service hours refresh``
recompiles them (it runs daily; run it once after upgrading).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSTZMULTIRANGE

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: The audit trigger's skipped columns for ``station`` (migration 0005), plus the new one.
_STATION_SKIP = ("id", "geog", "change_seq", "updated_at", "created_at", "open_minutes",
                 "open_periods", "hours_valid_until", "hours_kind", "last_confirmed_at",
                 "unknown_periods")

_OPEN_STATE_FN = """
CREATE FUNCTION geo_open_state(kind text, minutes int4multirange, periods tstzmultirange,
                               unknown tstzmultirange, valid_until timestamptz,
                               at timestamptz, tz text)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN kind = 'weekly' THEN minutes @> geo_minute_of_week(at, tz)
              WHEN kind = 'dated' AND valid_until > at
                   AND NOT coalesce(unknown @> at, false)
                THEN coalesce(periods @> at, false)
         END
$$
"""


def _audit_trigger(skip: tuple[str, ...]) -> None:
    op.execute("DROP TRIGGER station_audit ON station")
    args = ", ".join(f"'{c}'" for c in skip)
    op.execute(f"""CREATE TRIGGER station_audit AFTER INSERT OR UPDATE OR DELETE ON station
                   FOR EACH ROW EXECUTE FUNCTION geo_audit({args})""")


def upgrade() -> None:
    op.add_column("station", sa.Column("unknown_periods", TSTZMULTIRANGE()))
    op.alter_column("station", "opening_hours", nullable=True)
    op.drop_constraint("ck_station_hours_kind", "station", type_="check")
    op.create_check_constraint("ck_station_hours_kind", "station",
                               "hours_kind IN ('weekly', 'dated', 'unknown')")
    op.create_check_constraint("ck_station_hours_unknown", "station",
                               "(opening_hours IS NULL) = (hours_kind = 'unknown')")
    op.create_check_constraint("ck_station_unknown_periods", "station",
                               "unknown_periods IS NULL OR hours_kind = 'dated'")
    op.execute(_OPEN_STATE_FN)
    _audit_trigger(_STATION_SKIP)
    # Rules that may hold unknown time were compiled without it: recompile them
    # (the refresh job picks up dated rules whose horizon has passed).
    op.execute("""
        UPDATE station SET hours_kind = 'dated', open_periods = coalesce(open_periods, '{}'),
                           hours_valid_until = least(hours_valid_until, now())
        WHERE opening_hours LIKE '%||%' OR opening_hours ~* '\\munknown\\M'
    """)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS geo_open_state(text, int4multirange, tstzmultirange, "
               "tstzmultirange, timestamptz, timestamptz, text)")
    _audit_trigger(_STATION_SKIP[:-1])
    op.drop_constraint("ck_station_unknown_periods", "station", type_="check")
    op.drop_constraint("ck_station_hours_unknown", "station", type_="check")
    op.drop_constraint("ck_station_hours_kind", "station", type_="check")
    # A station without hours has no rule to go back to: it becomes "never open"
    # ('closed'), which is what the old schema can hold, rather than a made-up rule.
    op.execute("""UPDATE station SET opening_hours = 'closed', hours_kind = 'weekly',
                  open_minutes = '{}' WHERE opening_hours IS NULL""")
    op.execute("UPDATE station SET hours_valid_until = least(hours_valid_until, now()) "
               "WHERE unknown_periods IS NOT NULL")
    op.create_check_constraint("ck_station_hours_kind", "station",
                               "hours_kind IN ('weekly', 'dated')")
    op.alter_column("station", "opening_hours", nullable=False)
    op.drop_column("station", "unknown_periods")
