"""HTTP pieces every feed router shares: conditional-request headers and 304s, the feed
state read on a connection given back at once, and the connections of large bodies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from psycopg import AsyncConnection

from geo_service.feeds.caching import FeedState, Validators, feed_state, not_modified
from geo_service.feeds.service import Connect
from geo_service.web.deps import MinChangeSeq, read_connection, read_pool

IfNoneMatch = Annotated[
    str | None, Header(alias="If-None-Match", description="ETag of the copy the client has")
]
IfModifiedSince = Annotated[
    str | None,
    Header(alias="If-Modified-Since", description="Last-Modified of the copy the client has"),
]

#: Declared on every feed operation so the OpenAPI document admits the 304.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified: the client's copy (If-None-Match / If-Modified-Since) "
                         "is current; no body"},
}


def cache_headers(v: Validators, ttl_s: int, *, shared: bool = True) -> dict[str, str]:
    """Validators plus a Cache-Control that lets clients keep a feed for its ttl.

    ``shared=False`` for a body with links built from the request (no public
    base URL configured): only the client itself may keep it.
    """
    scope = "public" if shared else "private"
    return {**v.headers(), "Cache-Control": f"{scope}, max-age={ttl_s}"}


def conditional(
    v: Validators, ttl_s: int, if_none_match: str | None, if_modified_since: str | None,
    *, shared: bool = True,
) -> Response | None:
    """The 304 to send when the client's copy is current, else ``None``."""
    if not_modified(v, if_none_match, if_modified_since):
        return Response(status_code=304, headers=cache_headers(v, ttl_s, shared=shared))
    return None


async def read_feed_state(request: Request, min_change_seq: MinChangeSeq = None) -> FeedState:
    """The station table's state for the validators, on a read connection given back at once.

    Feeds with large bodies (the streamed GeoJSON, the exports, OGC items) take
    this instead of a connection for the whole request: their rows are then
    read in short statements of their own, so no pooled connection waits on a
    slow client or on encoding. The database that answered is noted, and
    :func:`geo_service.web.deps.read_pool` gives the body's reads the same one.
    """
    async with read_connection(request, min_change_seq) as conn:
        return await feed_state(conn)


FeedStateDep = Annotated[FeedState, Depends(read_feed_state)]


def batch_connect(request: Request) -> Connect:
    """Connections for the batches of a large body (the GeoJSON feed, exports).

    From the pool of the database that answered the request's read, and at most
    half that pool at once across all such bodies: ten feeds being read with a
    4-connection pool otherwise queued ahead of every short read, which then
    waited seconds for a connection. Short reads always find the other half.
    """
    pool = read_pool(request)
    gates: dict[int, asyncio.Semaphore] | None = getattr(request.app.state, "batch_gates", None)
    if gates is None:
        gates = request.app.state.batch_gates = {}
    gate = gates.setdefault(id(pool), asyncio.Semaphore(max(1, pool.max_size // 2)))

    @asynccontextmanager
    async def connect() -> AsyncIterator[AsyncConnection[Any]]:
        async with gate, pool.connection() as conn:
            yield conn

    return connect
