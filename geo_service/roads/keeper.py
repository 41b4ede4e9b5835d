"""The in-process road network of a serving process: loaded from the tables at start-up,
loaded again when another extract has been loaded (``road_extract.loaded_at`` changed,
looked at no more than every ``CHECK_S`` seconds, on the request that finds it due)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from psycopg.rows import dict_row

from geo_service.roads.graph import Mode, RoadNetwork
from geo_service.roads.nearest import SnapCache
from geo_service.roads.store import EDGES, STAMP

log = logging.getLogger(__name__)
CHECK_S = 10.0


class RoadKeeper:
    """Holds the current :class:`RoadNetwork` (None: no roads loaded) and its snaps."""

    def __init__(self, walk_speed: float) -> None:
        self.walk_speed = walk_speed
        self.network: RoadNetwork | None = None
        self.snaps: dict[Mode, SnapCache] = {}
        self.checked_at = -float("inf")
        #: the loaded extract's date (ISO), for the feeds' metadata
        self.extract_date: str | None = None
        self._lock = asyncio.Lock()

    async def current(self, pool: Any) -> RoadNetwork | None:
        """The network, reloaded first when the loaded extract has changed."""
        if time.monotonic() - self.checked_at < CHECK_S:
            return self.network
        async with self._lock:
            if time.monotonic() - self.checked_at >= CHECK_S:
                await self._refresh(pool)
        return self.network

    async def preload(self, pool: Any) -> None:
        """Start-up: load the network now rather than on the first request by road; a
        failure (database away, not migrated) is logged and the first request retries."""
        try:
            await self.current(pool)
        except Exception as exc:
            log.warning("road network not loaded at start-up: %s", exc)

    async def _refresh(self, pool: Any) -> None:
        async with pool.connection() as conn:
            row = await (await conn.execute(STAMP)).fetchone()
            stamp = None if row is None else row[0]
            self.extract_date = None if row is None or row[1] is None else row[1].isoformat()
            if stamp is None:
                self.network, self.snaps = None, {}
            elif self.network is None or self.network.stamp != stamp:
                async with conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(EDGES)
                    rows = await cur.fetchall()
                started = time.perf_counter()
                network = await asyncio.to_thread(RoadNetwork, rows, self.walk_speed, stamp)
                self.network = network
                self.snaps = {m: SnapCache(g) for m, g in network.modes.items()}
                log.info("road network loaded: %d edges, %d vertices in %.2f s",
                         network.edges, network.n, time.perf_counter() - started)
        self.checked_at = time.monotonic()

    def status(self) -> dict[str, Any]:
        """What ``/healthz`` shows of the in-process graph."""
        net = self.network
        return {"graph": "off" if net is None else "loaded",
                "edges": 0 if net is None else net.edges,
                "vertices": 0 if net is None else net.n}


def road_keeper(state: object) -> RoadKeeper | None:
    keeper: RoadKeeper | None = getattr(state, "roads", None)
    return keeper
