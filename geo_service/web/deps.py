"""What every router shares: the connection, the settings, the caller, common parameters.

Routers import from here, never from each other. Services and command-line
tools import nothing of FastAPI: they take plain values, parsed by the
framework-free rules in :mod:`geo_service.domain.params` that the declarations below
also publish (patterns), so the API and the CLI accept the same values.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, File, Header, Path, Query, Request, UploadFile
from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool

from geo_service.domain.auth import authenticate, authenticate_sync, require_role
from geo_service.domain.coords import Crs
from geo_service.domain.errors import UnsupportedMediaType
from geo_service.domain.params import AREA_PATTERN, CODE_PATTERN
from geo_service.domain.principal import Principal
from geo_service.imports.readers import Format
from geo_service.infra.replicas import ROUTING_SCOPE_KEY, SERVED_BY, ReadRouting
from geo_service.infra.settings import Settings

T = TypeVar("T")


async def get_conn(request: Request) -> AsyncIterator[AsyncConnection[Any]]:
    """A pooled connection for the length of one request."""
    async with request.app.state.pool.connection() as conn:
        yield conn


async def get_settings(request: Request) -> Settings:  # async: no thread-pool hop
    settings: Settings = request.app.state.settings
    return settings


def get_sync_conn(request: Request) -> Iterator[Connection[Any]]:
    """A connection of the sync pool, for routes that run in a worker thread; one
    transaction, committed when the route returns."""
    with request.app.state.sync_pool.connection() as conn:
        yield conn


def routing_state(request: Request) -> dict[str, Any]:
    """The request's routing notes (who served it, whether to skip the standbys), shared
    with the retry middleware in ``web/app.py`` through the ASGI scope."""
    state: dict[str, Any] = request.scope.setdefault(ROUTING_SCOPE_KEY, {})
    return state


#: Declared as digits, not as an integer: a header reaches the app as text, and a
#: schema of type integer would call every well-formed value a violation (schemathesis).
MinChangeSeq = Annotated[str | None, Header(
    alias="X-Min-Change-Seq", pattern=r"^[0-9]{1,18}$",
    description="read your writes: the `X-Change-Seq` a write answered (an integer ≥ 0); "
                "the read is served by a database that has replayed at least that change "
                "(a standby that has, else the primary)")]


def read_connection(request: Request, min_change_seq: str | None = None,
                    ) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
    """:func:`get_read_conn` as a context manager, for a route that must give the
    connection back before it returns (one that then builds or streams a large body)."""
    routing = request.app.state.routing
    seq = int(min_change_seq) if min_change_seq is not None else None
    cm: AbstractAsyncContextManager[AsyncConnection[Any]] = routing.read_connection(
        routing_state(request), seq)
    return cm


async def get_read_conn(request: Request, min_change_seq: MinChangeSeq = None,
                        ) -> AsyncIterator[AsyncConnection[Any]]:
    """A connection for a read that may be a little stale: a healthy standby when one
    is configured (``GEO_READ_DATABASE_URLS``), else the primary."""
    async with read_connection(request, min_change_seq) as conn:
        yield conn


def get_sync_read_conn(request: Request, min_change_seq: MinChangeSeq = None,
                       ) -> Iterator[Connection[Any]]:
    """:func:`get_read_conn` for sync routes (worker threads)."""
    routing = request.app.state.routing
    seq = int(min_change_seq) if min_change_seq is not None else None
    with routing.sync_read_connection(routing_state(request), seq) as conn:
        yield conn


def read_pool(request: Request) -> AsyncConnectionPool:
    """The pool of the database that served this request's read connection, for bodies
    streamed after the endpoint returns (they take their own connection from it)."""
    routing: ReadRouting = request.app.state.routing
    served = routing_state(request).get(SERVED_BY)
    for replica in routing.replicas:
        if replica.name == served:
            return replica.pool
    return routing.primary_pool


#: ``scope="function"``: the connection's transaction commits (and the connection goes back
#: to the pool) when the route returns, *before* the answer is sent. FastAPI's default ends a
#: ``yield`` dependency after the response has gone, so a client could hold a 200 or follow
#: a 303 to a row not yet committed, or be told of a write whose commit then failed
#: (``tests/test_commit_before_answer.py``). Streamed bodies take their own connections.
ConnDep = Annotated[AsyncConnection[Any], Depends(get_conn, scope="function")]
SyncConnDep = Annotated[Connection[Any], Depends(get_sync_conn, scope="function")]
#: Reads that may be served by a standby (see ``infra/replicas.py``); writes, reads inside a
#: write and anything authenticated keep ``ConnDep`` (the primary).
ReadConnDep = Annotated[AsyncConnection[Any], Depends(get_read_conn, scope="function")]
SyncReadConnDep = Annotated[Connection[Any], Depends(get_sync_read_conn, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AuthHeader = Annotated[
    str | None, Header(alias="Authorization", description="Bearer API key (gs_…)")
]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", pattern=r'^(W/)?"?[0-9]{1,9}"?$',
           description="the version edited, as an ETag: \"3\""),
]
CodePath = Annotated[str, Path(pattern=CODE_PATTERN, description="station code")]
AreaQ = Annotated[str | None, Query(pattern=AREA_PATTERN, description="admin area code")]
CrsQ = Annotated[Crs, Query(description="coordinate system of the query and the answer")]
LatQ = Annotated[float, Query(description="latitude in `crs`", json_schema_extra={
    "minimum": -90, "maximum": 90})]
LonQ = Annotated[float, Query(description="longitude in `crs`", json_schema_extra={
    "minimum": -180, "maximum": 180})]


def awaited(cls: type[T]) -> Callable[..., Awaitable[T]]:
    """A parameter dataclass as a dependency built on the event loop.

    FastAPI calls a class dependency in a worker thread (it cannot tell a class
    is cheap): one thread hop per request, which cost nearest a fifth of its
    throughput at 1M stations. This coroutine takes the same parameters, with
    the class's resolved annotations, and builds the object in place.
    """
    hints = typing.get_type_hints(cls, include_extras=True)
    signature = inspect.signature(cls)

    async def build(**values: Any) -> T:
        return cls(**values)

    build.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(annotation=hints[p.name]) for p in signature.parameters.values()],
        return_annotation=cls)
    return build


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's key, authenticated on the request's own connection,
    with one of ``roles`` (401 without a key, 403 with another role).

    The area scope travels on the principal; the service checks it against
    what the request touches.
    """
    async def caller(conn: ConnDep, authorization: AuthHeader = None) -> Principal:
        principal = await authenticate(conn, authorization)
        require_role(principal, *roles)
        return principal

    return caller


def require_sync(*roles: str) -> Callable[..., Principal]:
    """:func:`require` for sync routes, on the route's own sync connection."""
    def caller(conn: SyncConnDep, authorization: AuthHeader = None) -> Principal:
        principal = authenticate_sync(conn, authorization)
        require_role(principal, *roles)
        return principal

    return caller


def _json(content_type: str) -> bool:
    """``application/json`` or ``application/<anything>+json``, parameters aside: the
    types FastAPI parses as JSON (a body of another type never reaches a model)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


def own_origin(request: Request, settings: Settings, origin: str) -> bool:
    """Whether ``Origin`` is this service as its own pages see it: the public address
    when one is set, else the request's own ``Host``, if it is an allowed host."""
    parts = urlsplit(origin.strip().lower())
    if settings.public_base_url:
        return parts.netloc == urlsplit(settings.public_base_url.lower()).netloc
    host = request.headers.get("host", "").lower()
    return bool(parts.hostname) and parts.netloc == host and \
        parts.hostname in settings.allowed_hosts


async def same_site_write(request: Request, settings: SettingsDep) -> None:
    """A keyless write (check-in, report, confirmation) with a JSON body, or with no body
    from a client that is not a browser, or from this service's own pages; else 415
    naming ``Content-Type``.

    Such a write needs no key, so a page on any site could make its visitors'
    browsers send it, spending their addresses' budgets and votes (issue 24,
    item 10). A browser sends a cross-site request without asking first only
    when it is "simple": a form or ``text/plain`` body, or none; always with
    an ``Origin`` header. A JSON body needs a CORS preflight this service never
    answers. Reports were already safe by accident (FastAPI parses only a JSON
    body into their model); this makes the rule explicit, for all three.
    """
    content_type = request.headers.get("content-type")
    if content_type is not None and _json(content_type):
        return
    origin = request.headers.get("origin")
    if origin is None and content_type is None:
        return  # no body and no Origin: a script or the command line, not a browser
    if origin is not None and own_origin(request, settings, origin):
        return
    raise UnsupportedMediaType(
        "send the body as JSON (Content-Type: application/json), or no body at all: a "
        "form or text body is what any web page can make a browser send",
        [("Content-Type", "must be application/json")])


#: The dependency list of a keyless write route (``dependencies=SameSiteWrite``).
SameSiteWrite = [Depends(same_site_write)]

Editor = Annotated[Principal, Depends(require("admin", "editor"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Inspector = Annotated[Principal, Depends(require("inspector", "editor", "admin"))]
SyncEditor = Annotated[Principal, Depends(require_sync("admin", "editor"))]
SyncAdmin = Annotated[Principal, Depends(require_sync("admin"))]

#: The file of an import (stations, demand); read through ``imports.run.import_upload``.
ImportFile = Annotated[UploadFile, File(description="CSV, XLSX or GeoJSON file")]
ImportFormatQ = Annotated[Format | None, Query(description="default: from the file name")]
