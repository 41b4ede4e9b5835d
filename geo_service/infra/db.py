"""Database plumbing: migrations, the async pool the API uses, sync connections for the CLI."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import AsyncCursor
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from geo_service.infra.paths import PROJECT_ROOT
from geo_service.infra.settings import Settings, sqlalchemy_url

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

# Alembic is imported where it is used: the API never migrates (the CLI does), and the
# import costs each API process ~20 MB of resident memory.


def alembic_config(url: str) -> Config:
    """Alembic configuration bound to ``url`` (libpq form)."""
    from alembic.config import Config

    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(Path(PROJECT_ROOT / "migrations")))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema up to ``revision``; a no-op when it is already there."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Take the schema down to ``revision`` (``base`` drops everything we created)."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """A plain synchronous connection for the CLI, importers and tests."""
    return psycopg.connect(url)


async def _configure(conn: psycopg.AsyncConnection[object]) -> None:
    await conn.set_autocommit(True)


def session_options(settings: Settings) -> str:
    """The server settings every connection of the service needs, as ``-c`` options.

    Generic plans for prepared statements: the custom plans PostgreSQL tries
    first misjudge the KNN filters in dense areas and scan everything within
    the radius (~100 ms instead of ~2 ms). Behind PgBouncer the same two
    settings go into its ``connect_query`` (:mod:`geo_service.infra.pgbouncer`).
    """
    return (f"-c statement_timeout={settings.statement_timeout_ms} "
            "-c plan_cache_mode=force_generic_plan")


def connect_kwargs(settings: Settings) -> dict[str, object]:
    """Keyword arguments of every connection the service opens, pooled or not.

    Behind PgBouncer in transaction pooling mode two things break that work
    on a direct connection: the ``options`` startup parameter (PgBouncer
    refuses unknown startup parameters) and prepared statements (a statement
    prepared in one transaction is on a server connection the next
    transaction may not get: "prepared statement _pg3_0 does not exist").
    Everything else the service keeps on a connection is transaction-scoped
    (advisory xact locks, ``set_config(..., true)``, ``ON COMMIT DROP`` temp
    tables; the feeds read in keyset batches, one statement each).
    """
    kwargs: dict[str, object] = {"application_name": "geo_service",
                                 "prepare_threshold": settings.prepare_threshold()}
    if not settings.db_pgbouncer:
        kwargs["options"] = session_options(settings)
    return kwargs


def _pool_kwargs(settings: Settings) -> dict[str, object]:
    """Session settings every pooled connection gets, async or sync."""
    return connect_kwargs(settings)


def make_pool(settings: Settings, url: str) -> AsyncConnectionPool:
    """The API's pool for async routes. Opened and closed by the app lifespan, never at import.

    No per-checkout health query (it costs a round trip per request): a
    connection that broke is discarded when returned, and the pool refills.

    Refilling retries with exponential backoff (1, 2, 4 … s), and a request
    cannot start another attempt while one is waiting. Left at psycopg's
    5 minutes, an attempt chain that began when the database went away waits
    ~30 s after a 35 s outage before trying again, so the API stays 503 long
    after the database is back (tests/test_faults.py). Chains that give up
    after ``pool_reconnect_timeout_s`` let the next request try at once.
    """
    return AsyncConnectionPool(
        url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        timeout=settings.pool_timeout_s,
        reconnect_timeout=settings.pool_reconnect_timeout_s,
        open=False,
        configure=_configure,
        kwargs=_pool_kwargs(settings),
    )


def make_sync_pool(settings: Settings, url: str) -> ConnectionPool:
    """The pool of the sync routes (coverage runs, map pages, key management), which run
    in worker threads: the same session settings and caps as the async pool.

    Its connections are not autocommit: a request's work is one transaction,
    committed when the route returns and rolled back when it raises.
    """
    return ConnectionPool(
        url,
        min_size=1,
        max_size=settings.pool_max,
        timeout=settings.pool_timeout_s,
        reconnect_timeout=settings.pool_reconnect_timeout_s,
        open=False,
        kwargs=_pool_kwargs(settings),
    )


#: PostgreSQL's complaint when a KNN index walk (``ORDER BY geog <-> point``) meets a
#: row whose exact distance is below the bound the index reported for it. PostGIS's
#: geography index does that on the antimeridian, at the poles and around (0, 0)
#: (tests/test_nearest_exact.py); the statement fails, it is not answered wrongly.
KNN_ORDER_ERROR = "index returned tuples in wrong order"


async def execute_knn(cur: AsyncCursor[Any], sql: str, params: dict[str, Any], *,
                      prepare: bool | None = None) -> None:
    """Run a statement that walks a KNN index; where PostGIS's index gets its own order
    wrong, run it again without index scans (the same order by the exact operator,
    from a sort: slower, and only there).

    Outside a transaction only (the API's autocommit connections): inside one, the
    failed statement has already aborted it and the error goes up as it is.
    """
    try:
        await cur.execute(sql, params, prepare=prepare)
    except psycopg.errors.InternalError_ as exc:
        conn = cur.connection
        if KNN_ORDER_ERROR not in str(exc) or \
                conn.info.transaction_status != TransactionStatus.IDLE:
            raise
        log.warning("KNN index order failed (%s); answering without index scans", exc)
        async with conn.transaction():
            await cur.execute("SET LOCAL enable_indexscan = off")
            await cur.execute(sql, params, prepare=False)
