"""Change feed: every station write takes a number in commit order.

A feed paged by ``updated_at`` or by a plain sequence skips rows, because
transactions commit out of the order in which they took their numbers. Here
each station write first takes one transaction-scoped advisory lock, and only
then draws its ``change_seq``; the lock is held to commit, so numbers are
handed out in commit order and what any reader sees is always a prefix of the
sequence. A reader that pages by ``change_seq > cursor`` cannot miss a write.

Station writes are rare (editors, imports), so serialising them costs little;
reads never take the lock.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: The advisory lock key; also in ``geo_service.stations.queries.LOCK_CHANGES``.
CHANGE_LOCK_KEY = 73050001


def upgrade() -> None:
    op.execute("CREATE SEQUENCE station_change_seq AS bigint")
    op.execute("ALTER TABLE station ADD COLUMN change_seq bigint")
    op.execute("""
        UPDATE station s SET change_seq = o.n
        FROM (SELECT id, row_number() OVER (ORDER BY updated_at, id) AS n FROM station) o
        WHERE o.id = s.id
    """)
    op.execute("""
        SELECT setval('station_change_seq', coalesce((SELECT max(change_seq) FROM station), 0) + 1,
                      false)
    """)
    op.execute("ALTER TABLE station ALTER COLUMN change_seq SET NOT NULL")
    op.execute("CREATE UNIQUE INDEX ix_station_change_seq ON station (change_seq)")
    op.execute(f"""
        CREATE FUNCTION geo_station_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- The lock first, then the number: numbers follow commit order.
            PERFORM pg_advisory_xact_lock({CHANGE_LOCK_KEY});
            NEW.change_seq := nextval('station_change_seq');
            -- Taken under the lock, so updated_at also follows commit order
            -- (now() is the transaction's start) and Last-Modified never goes back.
            NEW.updated_at := clock_timestamp();
            RETURN NEW;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER station_change_insert BEFORE INSERT ON station
        FOR EACH ROW EXECUTE FUNCTION geo_station_change()
    """)
    op.execute("""
        CREATE TRIGGER station_change_update BEFORE UPDATE ON station
        FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
        EXECUTE FUNCTION geo_station_change()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER station_change_update ON station")
    op.execute("DROP TRIGGER station_change_insert ON station")
    op.execute("DROP FUNCTION geo_station_change()")
    op.execute("DROP INDEX ix_station_change_seq")
    op.execute("ALTER TABLE station DROP COLUMN change_seq")
    op.execute("DROP SEQUENCE station_change_seq")
