"""The keeper: loads the nearest index in the background and keeps it fresh by
following the database (LISTEN/NOTIFY); tells requests whether they may use it.

Freshness: migration 0009 notifies ``geo_station`` on every write that can change
an answer. One listening connection, straight to the primary
(``Settings.nearest_index_url``: a transaction pooler keeps no session to listen on),
reloads the notified stations by id; every ``ping_interval_s`` it notifies itself a
ping. Notifications arrive in commit order, so once a ping has come back and
everything before it is applied, the index holds every commit made before the ping
was sent: its lag is at most the age of that ping. Requests use the index only while
that age is within ``max_lag_s`` and, with ``X-Min-Change-Seq``, only once that change
is applied. Otherwise (loading, lagging, database lost) they go to SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import math
import os
import time
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from geo_service.stations import queries as q
from geo_service.stations.nearest_index.blobs import Packer, public_json
from geo_service.stations.nearest_index.index import (
    Entry,
    Index,
    compacted,
    entries_of,
    stops_by_station,
)
from geo_service.stations.nearest_index.open_state import Stop, hours_of

log = logging.getLogger(__name__)

def load(url: str, spare: int | None = None) -> tuple[Index, int]:
    """Read every station and stop in one snapshot; the index and its change number.

    Rows stream from a server-side cursor into entries, so the load never holds more
    than a batch of psycopg rows; the compiled hours come first, once per distinct one."""
    with psycopg.connect(url, options="-c statement_timeout=0",
                         application_name="geo_service index") as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        with conn.cursor() as cur:
            seq = int(cur.execute(q.INDEX_MAX_SEQ).fetchone()[0])  # type: ignore[index]
            n = int(cur.execute("SELECT count(*) FROM station").fetchone()[0])  # type: ignore[index]
        with conn.cursor(row_factory=dict_row) as dcur:
            stop_rows = dcur.execute(q.INDEX_STOPS).fetchall()
            hours = {r["hours_key"]: hours_of(r) for r in dcur.execute(q.INDEX_HOURS)}
            samples = [public_json(r) for r in dcur.execute(q.INDEX_STATIONS + " LIMIT 64")]
        packer = Packer(samples)
        zones: dict[int, str] = {}

        def entries() -> Iterable[Entry]:
            with conn.cursor("index_load", row_factory=dict_row) as cur:
                cur.itersize = 2_000
                cur.execute(q.INDEX_STATIONS)
                for row in cur:
                    zones[int(row["id"])] = row["timezone"]
                    yield Entry.of(row, hours[row["hours_key"]], packer)

        index = Index(entries(), n, [], packer, spare)
        conn.rollback()
    index.apply([], [], stops_by_station(stop_rows, zones))
    return index, seq



@dataclass
class IndexStatus:
    """What /healthz shows of the index."""

    state: str
    stations: int = 0
    applied_seq: int = 0
    lag_s: float | None = None
    load_s: float | None = None
    bytes: int | None = None
    error: str | None = None
    #: nearest requests answered from memory and from SQL since start
    answers: dict[str, int] = dataclasses.field(default_factory=dict)
    #: the API process that answered (each ``serve --workers`` process has its own index)
    process: int = 0


#: Why an index behind a transaction pooler, without a direct URL, does not follow.
NO_DIRECT_URL = ("GEO_DB_PGBOUNCER=1 and no GEO_NEAREST_INDEX_DATABASE_URL: the index "
                 "needs a direct connection to the primary (LISTEN does not work through "
                 "transaction pooling)")


class Keeper:
    """Loads the index in the background and keeps it fresh; tells requests whether
    they may use it (:meth:`usable`)."""

    def __init__(self, url: str | None, *, max_lag_s: float = 1.0,
                 ping_interval_s: float = 0.1, spare: int | None = None) -> None:
        """``url`` connects directly to the primary (``Settings.nearest_index_url``);
        None when there is no such connection: the keeper never starts, says why, and
        every nearest goes to SQL."""
        self.url, self.max_lag_s, self.ping_interval_s = url, max_lag_s, ping_interval_s
        self.spare = spare
        self.index: Index | None = None
        self.applied_seq = 0
        #: monotonic time the newest returned ping was sent: every commit before it is applied
        self.fresh_as_of = -math.inf
        self.state = "loading"
        self.load_s: float | None = None
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._ping = 0
        self._sent: dict[int, float] = {}
        self.answers = {"memory": 0, "sql": 0}
        #: full loads so far (1 unless the connection was lost or a table truncated)
        self.loads = 0
        #: the connection that re-reads notified stations (in a worker thread)
        self._reader: psycopg.Connection[Any] | None = None
        #: monotonic time this process last finished answering a write: its own writes
        #: are read back from the index only once a ping sent after it has returned
        self.wrote_at = -math.inf

    def start(self) -> None:
        if self.url is None:
            self.state, self.error = "unconfigured", NO_DIRECT_URL
            log.error("nearest index off: %s", NO_DIRECT_URL)
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._reader is not None:
            await asyncio.to_thread(self._reader.close)

    def lag_s(self) -> float | None:
        return None if self.index is None else max(0.0, time.monotonic() - self.fresh_as_of)

    def usable(self, min_seq: int | None = None) -> Index | None:
        """The index, when it is loaded, fresh within the bound and has applied ``min_seq``."""
        index = self.index
        if index is None or time.monotonic() - self.fresh_as_of > self.max_lag_s \
                or self.fresh_as_of < self.wrote_at:
            return None
        if min_seq is not None and self.applied_seq < min_seq:
            return None
        return index

    def status(self) -> IndexStatus:
        index = self.index
        lag = self.lag_s()
        state = self.state
        if state == "ready" and (lag is None or lag > self.max_lag_s):
            state = "lagging"
        return IndexStatus(state=state, stations=0 if index is None else index.live_rows(),
                       applied_seq=self.applied_seq,
                       lag_s=None if lag is None or math.isinf(lag) else round(lag, 3),
                       load_s=None if self.load_s is None else round(self.load_s, 3),
                       bytes=None if index is None else index.nbytes(), error=self.error,
                       answers=dict(self.answers), process=os.getpid())

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except _Reset:
                self.fresh_as_of = -math.inf
                self.state = "loading"
            except Exception as exc:  # the database went away: SQL answers until reloaded
                log.warning("nearest index lost the database: %s", exc)
                self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.state = "reconnecting"
                self.fresh_as_of = -math.inf
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _follow(self) -> None:
        url = self.url
        assert url is not None  # start() runs nothing without one
        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=True, application_name="geo_service index")
        async with conn:
            await conn.execute(q.INDEX_LISTEN)
            # Listening before the snapshot: what commits during the load is re-read after.
            started = time.perf_counter()
            sent = time.monotonic()
            index, seq = await asyncio.to_thread(load, url, self.spare)
            release_free_memory()
            self.load_s = time.perf_counter() - started
            self.loads += 1
            self.index, self.applied_seq, self.error = index, seq, None
            self.state = "ready"
            # Everything committed before the snapshot began is in it.
            self.fresh_as_of = sent
            log.info("nearest index loaded: %d stations in %.1f s", index.live_rows(),
                     self.load_s)
            await self._listen(conn)

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        next_ping = 0.0
        while True:
            now = time.monotonic()
            if now >= next_ping:
                self._ping += 1
                self._sent[self._ping] = now
                await conn.execute(q.INDEX_PING, {"channel": q.INDEX_CHANNEL,
                                                  "payload": f"ping:{self._ping}"})
                next_ping = now + self.ping_interval_s
            await self._consume(conn.notifies(timeout=max(0.0, next_ping - time.monotonic()),
                                              stop_after=10_000), conn.info.backend_pid)

    async def _consume(self, notes: AsyncGenerator[psycopg.Notify], own_pid: int) -> None:
        """Apply one stretch of notifications, to its end.

        psycopg reads notifications a network packet at a time and yields them one by one,
        so the keeper's own ping can come in the middle of a batch with other commits'
        notes after it. What came before the ping is applied when it arrives, and the index
        is then fresh as of the ping's sending; the stream is read on, never left at the
        ping: leaving psycopg's generator there drops the rest of its batch, edits the
        index would never see (``applied_seq`` short while it called itself fresh). The
        generator is closed on the way out whatever happens: it holds the connection's
        lock while suspended, and closing the connection after a reset waits for it.
        """
        ids: set[int] = set()
        seqs: list[int] = []
        async with contextlib.aclosing(notes) as stream:
            async for n in stream:
                payload = n.payload
                if payload.startswith("s:"):
                    _, sid, sseq = payload.split(":")
                    ids.add(int(sid))
                    seqs.append(int(sseq))
                elif payload.startswith("ping:") and n.pid == own_pid:
                    sent = self._sent.pop(int(payload[5:]), None)
                    if sent is not None:
                        await self._apply(ids, seqs)
                        ids, seqs = set(), []
                        # Old pings that never came back are dropped with the next one.
                        self._sent = {k: v for k, v in self._sent.items() if v > sent}
                        self.fresh_as_of = max(self.fresh_as_of, sent)
                elif payload == "reset":
                    raise _Reset()  # everything is reloaded: what is pending goes with it
        await self._apply(ids, seqs)

    async def _apply(self, ids: set[int], seqs: list[int]) -> None:
        """Re-read the notified stations, then count their changes as applied."""
        if ids:
            await self._reload(ids)
        if seqs:
            self.applied_seq = max(self.applied_seq, *seqs)

    def _fetch(self, ids: list[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self._reader is None or self._reader.closed:
            assert self.url is not None
            self._reader = psycopg.connect(self.url, autocommit=True,
                                           application_name="geo_service index")
        with self._reader.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(q.INDEX_STATIONS_BY_ID, {"ids": ids}).fetchall()
            stop_rows = cur.execute(q.INDEX_STOPS_BY_STATION, {"ids": ids}).fetchall()
        return rows, stop_rows

    async def _reload(self, ids: set[int]) -> None:
        """Re-read the notified stations and their stops, and put them in the index."""
        idlist = sorted(ids)
        # Read and parsed in a thread: a dated rule's periods (years of ranges) take
        # psycopg ~0.1 s to parse, which on the event loop would stall every request.
        rows, stop_rows = await asyncio.to_thread(self._fetch, idlist)
        index = self.index
        assert index is not None
        zones = {int(r["id"]): r["timezone"] for r in rows}
        found = set(zones)
        stops: dict[int, list[Stop]] = {sid: [] for sid in ids if sid in index.stops
                                         or sid in found}
        stops.update(stops_by_station(stop_rows, zones))
        if len(rows) > 200:  # a bulk import: packing is CPU work, off the event loop
            entries = await asyncio.to_thread(entries_of, rows, index.packer)
        else:
            entries = entries_of(rows, index.packer)
        if index.n + len(entries) > index.cap:
            # Out of spare slots: rebuild from the live slots plus the new ones, in a
            # thread; requests keep reading the old index meanwhile.
            self.index = await asyncio.to_thread(compacted, index, entries, ids - found,
                                                 stops, self.spare)
            del index
            release_free_memory()
        else:
            index.apply(entries, ids - found, stops)


def release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc's ``malloc_trim``): a load leaves
    ~25 MB of freed rows and entries in the heap at 1M stations, which would otherwise
    count in the process's resident memory for as long as it runs."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)



class _Reset(Exception):
    """A table was truncated: reload everything."""

