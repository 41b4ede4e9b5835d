"""Read routing: stale-tolerant reads on streaming replicas, everything else on the primary.

``GEO_DATABASE_URL`` stays the primary; ``GEO_READ_DATABASE_URLS`` names hot
standbys. A background task (:meth:`ReadRouting.monitor`) asks every database,
every ``replica_check_interval_s``, where it is: the primary's WAL position,
each standby's replayed position and its ``max(change_seq)``. A standby is used
while it answers and its lag is at most ``max_replica_lag_s``; otherwise reads
go to another standby or to the primary, and a standby that comes back is used
again at the next check, without a restart.

Lag is measured in time from WAL positions, not from
``now() - pg_last_xact_replay_timestamp()``: that timestamp is the last
*replayed commit's* time, so on a primary that nobody writes to it grows
forever and would call an up-to-date standby hours behind. Instead the monitor
keeps the primary's recent positions with the moment each was seen; a standby's
lag is how long ago the primary first passed the position the standby has
replayed (zero when it has replayed everything the primary had). The
resolution is one check interval, enough against a limit of seconds.

Read-your-writes: writes answer ``X-Change-Seq`` (the station change feed's
position once they committed); a read sent with ``X-Min-Change-Seq: N`` is
served by a standby whose ``max(change_seq)`` is at least N, else by the
primary. Change numbers are drawn in commit order (migration 0003) and a
standby replays commits in that order, so a standby that shows N has every
change up to N.

Framework-free: the HTTP side (``web/deps.py``, the retry middleware in
``web/app.py``) passes a plain dict (the request's ASGI ``state``) in which the
choice is written, so a failure can be retried on the primary and a debug
header can say who served.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool

log = logging.getLogger(__name__)

PRIMARY = "primary"
#: The ASGI scope key of a request's routing notes (a dict), and the notes' keys.
ROUTING_SCOPE_KEY = "geo_db_routing"
SERVED_BY = "db_served_by"
FORCE_PRIMARY = "db_force_primary"

#: The primary's WAL position in bytes, or NULL when it is itself in recovery.
PRIMARY_PROBE = """
SELECT CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') END
"""
#: A standby's state. ``pg_is_wal_replay_paused()`` raises outside recovery, hence the CASE.
REPLICA_PROBE = """
SELECT pg_is_in_recovery(),
       pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'),
       CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,
       (SELECT coalesce(max(change_seq), 0) FROM station),
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())
"""
#: The feed position: the unique index on change_seq makes this one index probe.
MAX_CHANGE_SEQ = "SELECT coalesce(max(change_seq), 0) FROM station"


@dataclass
class DatabaseState:
    """What the monitor last learnt about one database (published by /healthz)."""

    name: str
    role: str
    reachable: bool = False
    in_recovery: bool | None = None
    replay_paused: bool | None = None
    lag_s: float | None = None
    lag_bytes: int | None = None
    change_seq: int | None = None
    error: str | None = None

    def public(self, usable: bool | None = None) -> dict[str, Any]:
        """The /healthz entry: role, reachability, lag; never the URL (it may hold a password)."""
        out: dict[str, Any] = {
            "name": self.name, "role": self.role, "reachable": self.reachable,
        }
        if self.role != PRIMARY:
            out.update({"in_recovery": self.in_recovery, "replay_paused": self.replay_paused,
                        "lag_s": None if self.lag_s is None else round(self.lag_s, 3),
                        "lag_bytes": self.lag_bytes, "change_seq": self.change_seq,
                        "serving_reads": usable})
        return out


@dataclass
class Replica:
    """One standby: its pools (opened lazily by the routing) and its last known state."""

    name: str
    url: str
    pool: AsyncConnectionPool
    sync_pool: ConnectionPool
    state: DatabaseState
    monitor_conn: AsyncConnection[Any] | None = None
    usable: bool = False


@dataclass
class ReadRouting:
    """The primary's pools and the standbys', and the choice between them for each read."""

    primary_pool: AsyncConnectionPool
    primary_sync_pool: ConnectionPool
    primary_url: str
    replicas: list[Replica]
    max_lag_s: float
    interval_s: float
    checkout_timeout_s: float
    primary_state: DatabaseState = field(default_factory=lambda: DatabaseState(PRIMARY, PRIMARY))
    _history: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=4096))
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _task: asyncio.Task[None] | None = None
    _primary_conn: AsyncConnection[Any] | None = None

    # -- choosing ---------------------------------------------------------------------------

    def candidates(self) -> list[Replica]:
        """The usable standbys, starting from the next one in turn (round robin)."""
        usable = [r for r in self.replicas if r.usable]
        if not usable:
            return []
        start = next(self._turn) % len(usable)
        return usable[start:] + usable[:start]

    def mark_down(self, name: str, reason: str) -> None:
        """A request saw this standby fail: skip it until the monitor sees it answer again."""
        for r in self.replicas:
            if r.name == name and r.usable:
                log.warning("replica %s skipped: %s", name, reason)
                r.usable = False
                r.state.reachable = False
                r.state.error = reason

    @contextlib.asynccontextmanager
    async def read_connection(
        self, state: dict[str, Any], min_change_seq: int | None = None,
    ) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection for a stale-tolerant read: a usable standby that has replayed
        ``min_change_seq`` (when given), else the primary. Writes ``state[SERVED_BY]``."""
        if not state.get(FORCE_PRIMARY):
            for replica in self.candidates():
                conn = await self._replica_conn(replica, min_change_seq)
                if conn is None:
                    continue
                state[SERVED_BY] = replica.name
                try:
                    yield conn
                finally:
                    await replica.pool.putconn(conn)
                return
        state[SERVED_BY] = PRIMARY
        async with self.primary_pool.connection() as conn:
            yield conn

    async def _replica_conn(self, replica: Replica,
                            min_change_seq: int | None) -> AsyncConnection[Any] | None:
        try:
            conn = await replica.pool.getconn(timeout=self.checkout_timeout_s)
        except Exception as exc:  # PoolTimeout, or the pool is closing
            self.mark_down(replica.name, f"no connection: {type(exc).__name__}")
            return None
        if min_change_seq is None or (replica.state.change_seq or 0) >= min_change_seq:
            return conn
        try:  # the monitor's figure is old: ask the standby itself (one index probe)
            row = await (await conn.execute(MAX_CHANGE_SEQ)).fetchone()
            seen = int(row[0]) if row else 0
        except psycopg.Error as exc:
            await replica.pool.putconn(conn)
            if isinstance(exc, psycopg.OperationalError):
                self.mark_down(replica.name, f"probe failed: {type(exc).__name__}")
            return None
        if seen >= min_change_seq:
            return conn
        await replica.pool.putconn(conn)
        return None

    @contextlib.contextmanager
    def sync_read_connection(
        self, state: dict[str, Any], min_change_seq: int | None = None,
    ) -> Iterator[Connection[Any]]:
        """:meth:`read_connection` for the sync routes (worker threads, sync pools)."""
        if not state.get(FORCE_PRIMARY):
            for replica in self.candidates():
                conn = self._sync_replica_conn(replica, min_change_seq)
                if conn is None:
                    continue
                state[SERVED_BY] = replica.name
                try:
                    yield conn
                    conn.rollback()  # read only: nothing to keep
                finally:
                    replica.sync_pool.putconn(conn)
                return
        state[SERVED_BY] = PRIMARY
        with self.primary_sync_pool.connection() as conn:
            yield conn

    def _sync_replica_conn(self, replica: Replica,
                           min_change_seq: int | None) -> Connection[Any] | None:
        try:
            conn = replica.sync_pool.getconn(timeout=self.checkout_timeout_s)
        except Exception as exc:
            self.mark_down(replica.name, f"no connection: {type(exc).__name__}")
            return None
        if min_change_seq is None or (replica.state.change_seq or 0) >= min_change_seq:
            return conn
        try:
            row = conn.execute(MAX_CHANGE_SEQ).fetchone()
            conn.rollback()
            seen = int(row[0]) if row else 0
        except psycopg.Error:
            replica.sync_pool.putconn(conn)
            return None
        if seen >= min_change_seq:
            return conn
        replica.sync_pool.putconn(conn)
        return None

    async def change_seq(self) -> int:
        """The feed position on the primary, for a write's ``X-Change-Seq``."""
        async with self.primary_pool.connection() as conn:
            row = await (await conn.execute(MAX_CHANGE_SEQ)).fetchone()
        return int(row[0]) if row else 0

    # -- monitoring -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the standbys' pools (without waiting: a standby may be down at start)
        and start the monitor."""
        for r in self.replicas:
            await r.pool.open(wait=False)
            r.sync_pool.open(wait=False)
        if self.replicas:
            await self.check()
            self._task = asyncio.create_task(self.monitor(), name="replica-monitor")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for conn in [self._primary_conn, *(r.monitor_conn for r in self.replicas)]:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        for r in self.replicas:
            await r.pool.close()
            await asyncio.to_thread(r.sync_pool.close)

    async def monitor(self) -> None:
        """Check every database each interval until cancelled; never dies of a failure."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception:  # pragma: no cover - a bug here must not stop the checks
                log.exception("replica check failed")

    async def _probe(self, conn: AsyncConnection[Any] | None, url: str, sql: str,
                     ) -> tuple[AsyncConnection[Any] | None, tuple[Any, ...] | None, str | None]:
        """Run ``sql`` on the monitor's own connection (reconnecting when it broke)."""
        timeout = max(1.0, self.interval_s * 2)
        try:
            async with asyncio.timeout(timeout):
                if conn is None or conn.closed or conn.broken:
                    conn = await AsyncConnection.connect(
                        url, autocommit=True, connect_timeout=max(1, int(timeout)),
                        application_name="geo_service_monitor")
                row = await (await conn.execute(sql)).fetchone()
            return conn, row, None
        except Exception as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            return None, None, f"{type(exc).__name__}"

    async def check(self) -> None:
        """One round: the primary's position first, then every standby against it."""
        now = time.monotonic()
        self._primary_conn, row, err = await self._probe(
            self._primary_conn, self.primary_url, PRIMARY_PROBE)
        p = self.primary_state
        p.reachable, p.error = err is None, err
        if row is not None and row[0] is not None:
            self._history.append((now, int(row[0])))
        primary_ok = err is None and row is not None and row[0] is not None
        results = await asyncio.gather(*(
            self._probe(r.monitor_conn, r.url, REPLICA_PROBE) for r in self.replicas))
        seen_at = time.monotonic()
        for replica, (conn, rrow, rerr) in zip(self.replicas, results, strict=True):
            replica.monitor_conn = conn
            self._update(replica, rrow, rerr, seen_at, primary_ok)

    def _update(self, replica: Replica, row: tuple[Any, ...] | None, err: str | None,
                seen_at: float, primary_ok: bool) -> None:
        s = replica.state
        was = replica.usable
        s.reachable = err is None and row is not None
        s.error = err
        if not s.reachable or row is None:
            s.lag_s = s.lag_bytes = None
            replica.usable = False
        else:
            in_recovery, replayed, paused, seq, since_commit = row
            s.in_recovery, s.replay_paused, s.change_seq = bool(in_recovery), paused, int(seq)
            if not in_recovery or replayed is None:
                # Promoted, or not a standby at all: its data may have left the
                # primary's timeline, so it serves nothing until reconfigured.
                s.lag_s = s.lag_bytes = None
                s.error = "not in recovery (promoted?)"
                replica.usable = False
            elif primary_ok and self._history:
                s.lag_bytes, s.lag_s = self._lag(
                    int(replayed), seen_at,
                    float(since_commit) if since_commit is not None else None)
                replica.usable = s.lag_s <= self.max_lag_s
            else:
                # The primary is away: nobody writes, so a standby is as fresh as
                # anything there is; reads keep being served from it.
                s.lag_s = s.lag_bytes = None
                replica.usable = True
        if replica.usable != was:
            log.warning("replica %s %s (reachable=%s lag_s=%s error=%s)", replica.name,
                        "serving reads" if replica.usable else "skipped", s.reachable, s.lag_s,
                        s.error)
            if replica.usable:
                # Connections opened before it went away are dead: drop them now,
                # not on the next requests.
                task = asyncio.create_task(replica.pool.check())
                task.add_done_callback(_quiet)
                asyncio.get_running_loop().run_in_executor(
                    None, replica.sync_pool.check).add_done_callback(_quiet)

    def _lag(self, replayed: int, now: float,
             since_commit: float | None) -> tuple[int, float]:
        """Bytes behind the primary's newest position, and for how long the primary has
        been past what the standby replayed (0 when it has replayed everything).

        When the kept positions do not reach back to the standby's (just after start,
        or a standby further behind than the history), the time since the standby's
        last replayed commit stands in: it can only overstate the lag, so such a
        standby is skipped until the history shows it caught up.
        """
        newest = self._history[-1][1]
        behind = max(0, newest - replayed)
        if behind == 0:
            return 0, 0.0
        oldest_t, oldest_lsn = self._history[0]
        if oldest_lsn > replayed:
            return behind, max(now - oldest_t, since_commit or 0.0)
        for t, lsn in self._history:
            if lsn > replayed:
                return behind, max(0.0, now - t)
        return behind, 0.0  # pragma: no cover - newest > replayed guarantees a hit

    def health(self, primary_reachable: bool) -> list[dict[str, Any]]:
        """Every database's role, reachability and lag, for /healthz: the primary as the
        health check just found it, the standbys as the monitor last saw them."""
        primary = DatabaseState(PRIMARY, PRIMARY, reachable=primary_reachable).public()
        return [primary, *(r.state.public(r.usable) for r in self.replicas)]


def _quiet(future: asyncio.Future[Any]) -> None:
    """Done-callback of a background pool check: its failure is the monitor's to see."""
    if not future.cancelled():
        future.exception()


def make_routing(primary_pool: AsyncConnectionPool, primary_sync_pool: ConnectionPool,
                 primary_url: str, replica_urls: list[str], *, max_lag_s: float,
                 interval_s: float, checkout_timeout_s: float,
                 make_pool: Any, make_sync_pool: Any) -> ReadRouting:
    """The routing over ``replica_urls``, named ``replica-1``… in order (names, not URLs,
    appear in /healthz, logs and the debug header)."""
    replicas = []
    for i, url in enumerate(replica_urls, start=1):
        name = f"replica-{i}"
        replicas.append(Replica(name=name, url=url, pool=make_pool(url),
                                sync_pool=make_sync_pool(url),
                                state=DatabaseState(name, "replica")))
    return ReadRouting(primary_pool=primary_pool, primary_sync_pool=primary_sync_pool,
                       primary_url=primary_url, replicas=replicas, max_lag_s=max_lag_s,
                       interval_s=interval_s, checkout_timeout_s=checkout_timeout_s)
