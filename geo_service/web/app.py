"""The FastAPI application, built by :func:`create_app` (never at import time).

The routes come from the one aggregator, :mod:`geo_service.web.api`; this module adds
the lifespan (pools, standbys, the memory index) and the middleware stack.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg import OperationalError
from psycopg.errors import QueryCanceled, SerializationFailure
from psycopg_pool import PoolTimeout
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_service.domain.encoding import GZIP_LEVEL, GZIP_MIN_BYTES, dumps
from geo_service.domain.errors import PayloadTooLarge
from geo_service.hours.arrangements import load_calendar
from geo_service.infra.db import make_pool, make_sync_pool
from geo_service.infra.photo_store import store_for
from geo_service.infra.replicas import (
    FORCE_PRIMARY,
    PRIMARY,
    ROUTING_SCOPE_KEY,
    SERVED_BY,
    ReadRouting,
    make_routing,
)
from geo_service.infra.settings import Settings
from geo_service.photos.service import photo_work
from geo_service.roads.keeper import RoadKeeper
from geo_service.stations.nearest_index.http import NearestFastPath, NoteWrites
from geo_service.stations.nearest_index.keeper import Keeper
from geo_service.stations.nearest_index.state import set_nearest_keeper
from geo_service.web import openapi
from geo_service.web.api import ROUTERS
from geo_service.web.handlers import install_handlers
from geo_service.web.security_headers import SecurityHeaders

log = logging.getLogger(__name__)

#: Already-compressed types (zip, png, an .xlsx, which is a zip) are left alone by
#: gzip (``responses.GZIP_LEVEL``), as are 206 responses.
#: Photo uploads (multipart: the photo, a few form fields) get the photo size limit.
PHOTO_UPLOAD_PATHS = ("/photos", "/report-photos")
#: The multipart framing and form fields around an uploaded photo.
MULTIPART_ALLOWANCE = 64 * 1024
GZIP_EXCLUDED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "image/jpeg",
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


class BodyLimit:
    """Refuse request bodies over the limit with 413 before the app reads them.

    Checks ``Content-Length`` up front and counts chunked bodies as they
    arrive; imports get their own, larger limit.
    """

    def __init__(self, app: ASGIApp, limit: int, import_limit: int,
                 photo_limit: int | None = None) -> None:
        self.app, self.limit, self.import_limit = app, limit, import_limit
        self.photo_limit = photo_limit or limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = (self.import_limit if path.endswith(":import")
                 else self.photo_limit if path.endswith(PHOTO_UPLOAD_PATHS) else self.limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(send, limit)
                    return
        seen = 0
        exceeded = False

        async def counted() -> Message:
            # Past the limit the app is told the client went away, and whatever
            # it answers to that is replaced by a 413 below.
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not exceeded:
                await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = dumps(PayloadTooLarge(f"request body larger than {limit} bytes",
                                     [("body", "too large")]).body())
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


#: Methods that never write: their answers may come from a standby.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class DatabaseRouting:
    """The HTTP side of read routing (``infra/replicas.py``).

    * A read whose standby fails before the answer starts (the standby died
      mid-request: a dead pooled connection, a reset socket; or a recovery
      conflict cancelled the query) is run again on the primary, so a standby's
      death costs latency, never a 5xx. Reads have no body, so running one again
      is safe; a streamed body that already started cannot be taken back and
      fails like any broken download. A statement timeout is not retried.
    * A successful write's answer carries ``X-Change-Seq``, the change feed's
      position once the write committed (at least the largest ``change_seq`` it
      produced; the current position for writes that do not touch stations),
      which a following read sends back as ``X-Min-Change-Seq``.
    * With ``served_by_header`` on, ``X-Served-By`` names the database that served
      the read (``primary`` or ``replica-N``, never a host).
    """

    def __init__(self, app: ASGIApp, served_by_header: bool) -> None:
        self.app, self.served_by_header = app, served_by_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        routing: ReadRouting | None = getattr(scope["app"].state, "routing", None)
        if scope["method"] not in SAFE_METHODS:
            await self._write(routing, scope, receive, send)
            return
        notes: dict[str, object] = {}
        scope[ROUTING_SCOPE_KEY] = notes
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self._served_by(message, notes)
            await send(message)

        try:
            await self.app(scope, receive, tracked)
            return
        except (OperationalError, PoolTimeout) as exc:
            served = notes.get(SERVED_BY)
            # A statement timeout would time out on the primary as well: answered as before.
            if (started or routing is None or served in (None, PRIMARY)
                    or isinstance(exc, QueryCanceled)):
                raise
            # A query cancelled by a recovery conflict (40001) says nothing about the
            # standby's health; anything else (a lost connection) takes it out of turn.
            if not isinstance(exc, SerializationFailure):
                routing.mark_down(str(served), f"failed mid-request: {type(exc).__name__}")
            log.warning("read on %s failed (%s); running it again on the primary", served,
                        type(exc).__name__)
        retry: dict[str, object] = {FORCE_PRIMARY: True}
        scope[ROUTING_SCOPE_KEY] = retry
        replayed = False

        async def again() -> Message:  # the request's (empty) body once more
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return await receive()

        async def retried(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._served_by(message, retry)
            await send(message)

        await self.app(scope, again, retried)

    def _served_by(self, message: Message, notes: dict[str, object]) -> None:
        if self.served_by_header and SERVED_BY in notes:
            message["headers"] = [*message.get("headers", []),
                                  (b"x-served-by", str(notes[SERVED_BY]).encode())]

    async def _write(self, routing: ReadRouting | None, scope: Scope, receive: Receive,
                     send: Send) -> None:
        async def stamped(message: Message) -> None:
            if (message["type"] == "http.response.start" and routing is not None
                    and message["status"] < 400):
                try:
                    seq = await routing.change_seq()
                except (OperationalError, PoolTimeout) as exc:  # the write is done: answer it
                    log.warning("no X-Change-Seq for %s: %s", scope["path"], exc)
                else:
                    message["headers"] = [*message.get("headers", []),
                                          (b"x-change-seq", str(seq).encode())]
            await send(message)

        await self.app(scope, receive, stamped)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the lifespan opens the database pool and closes it."""
    settings = settings or Settings()
    settings.feedback_key()  # a weak key refuses to start; a missing one is made now
    url = settings.resolved_database_url()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = make_pool(settings, url)
        await pool.open(wait=False)
        app.state.pool = pool
        sync_pool = make_sync_pool(settings, url)
        sync_pool.open(wait=False)
        app.state.sync_pool = sync_pool
        routing = make_routing(
            pool, sync_pool, url, settings.read_database_urls,
            max_lag_s=settings.max_replica_lag_s, interval_s=settings.replica_check_interval_s,
            checkout_timeout_s=settings.replica_checkout_timeout_s,
            make_pool=lambda u: make_pool(settings, u),
            make_sync_pool=lambda u: make_sync_pool(settings, u))
        await routing.open()
        app.state.routing = routing
        calendar = asyncio.create_task(load_calendar(pool))
        keeper = None
        if settings.nearest_index == "on":
            keeper = Keeper(settings.nearest_index_url(url),
                            max_lag_s=settings.nearest_index_max_lag_s)
            keeper.start()
        set_nearest_keeper(app.state, keeper)
        roads = RoadKeeper(settings.roads_walk_speed_mps)
        app.state.roads = roads
        roads_loading = asyncio.create_task(roads.preload(pool))
        # Start-up leaves ~100k long-lived objects; without freezing them every
        # full collection walks them all and stalls the event loop ~50 ms (p99).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            calendar.cancel()
            roads_loading.cancel()
            await routing.close()
            if keeper is not None:
                await keeper.stop()
            await pool.close()
            await asyncio.to_thread(sync_pool.close)

    app = FastAPI(
        title="geo_service",
        version="0.1.0",
        summary=(
            "Station locator for trade-union outdoor-worker rest stations (工会户外劳动者服务站点)"
        ),
        lifespan=lifespan,
        # /docs and /redoc are served with their assets from this service (api_docs.py).
        docs_url=None, redoc_url=None,
    )
    app.state.settings = settings
    app.state.database_url = url
    app.state.photos = photo_work(settings, store_for(settings))
    set_nearest_keeper(app.state, None)
    app.state.roads = None
    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    openapi.install(app, settings)
    app.add_middleware(DatabaseRouting, served_by_header=settings.served_by_header)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes,
                       import_limit=settings.max_import_bytes,
                       photo_limit=settings.photo_max_bytes + MULTIPART_ALLOWANCE)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL,
                       exclude_content_types=GZIP_EXCLUDED)
    app.add_middleware(SecurityHeaders)  # 413s and errors get the headers too
    app.add_middleware(NoteWrites)
    return app


def create_served_app(settings: Settings | None = None) -> NearestFastPath:
    """What the server serves: :func:`create_app`'s app behind the nearest fast path.

    The fast path wraps the app instead of joining its middleware so that nearest from
    memory skips FastAPI's own wrappers as well as the stack (``nearest_index/http.py``);
    tests that need the app as served build it here, the others use :func:`create_app`."""
    return NearestFastPath(create_app(settings))

