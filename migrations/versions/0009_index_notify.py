"""Notify the API processes' in-memory nearest index of every station write.

The change feed's ``change_seq`` moves only when a station's version does; the
memory index also needs the writes that leave the version alone but change a
nearest answer (awards, check-ins' ``last_confirmed_at``, reports'
``reported_closed_at``, recompiled hours, mobile stops). Row triggers on
``station``, ``station_stop`` and ``station_award`` send ``NOTIFY geo_station``
with ``s:<station id>:<change_seq or 0>``; a ``TRUNCATE`` sends ``reset``.
PostgreSQL delivers notifications at commit, in commit order, so a listener that
has applied every message before one it sent itself (a "ping") is fresh as of
that ping (``geo_service/stations/nearest_index/keeper.py``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_FUNCTIONS = """
CREATE FUNCTION geo_index_notify_station() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('geo_station', 's:' || OLD.id || ':' || 0);
    ELSE
        PERFORM pg_notify('geo_station', 's:' || NEW.id || ':' || coalesce(NEW.change_seq, 0));
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION geo_index_notify_child() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('geo_station', 's:' || OLD.station_id || ':' || 0);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('geo_station', 's:' || NEW.station_id || ':' || 0);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION geo_index_notify_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('geo_station', 'reset');
    RETURN NULL;
END $$;
"""

_TABLES = {"station": "geo_index_notify_station", "station_stop": "geo_index_notify_child",
           "station_award": "geo_index_notify_child"}


def upgrade() -> None:
    op.execute(_FUNCTIONS)
    for table, fn in _TABLES.items():
        op.execute(f"""CREATE TRIGGER {table}_index_notify
                       AFTER INSERT OR UPDATE OR DELETE ON {table}
                       FOR EACH ROW EXECUTE FUNCTION {fn}()""")
        op.execute(f"""CREATE TRIGGER {table}_index_reset AFTER TRUNCATE ON {table}
                       FOR EACH STATEMENT EXECUTE FUNCTION geo_index_notify_reset()""")


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TRIGGER {table}_index_reset ON {table}")
        op.execute(f"DROP TRIGGER {table}_index_notify ON {table}")
    for fn in ("geo_index_notify_reset", "geo_index_notify_child", "geo_index_notify_station"):
        op.execute(f"DROP FUNCTION {fn}()")
