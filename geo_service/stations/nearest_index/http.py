"""Nearest over HTTP, one definition for the route and the fast path: the query
parameters (:class:`NearestQuery`), the answer (:func:`nearest_response`), the fast
path itself (:class:`NearestFastPath`) and the write notes that keep a process reading
its own writes (:class:`NoteWrites`).

The fast path answers ``GET /v1/stations/nearest`` from the memory index without
FastAPI's routing, dependency resolution and the middleware stack, which cost more than
the index itself (profiled: ``bench/README.md``, ``bench/NEAREST_REFACTOR.md``). It is a
plain ASGI wrapper around the FastAPI app, composed where the app is served
(``web.app.create_served_app``), so it sits in front of FastAPI's own wrappers too; it
shares what decides its answer's bytes: it parses with the route's own
:class:`NearestQuery` fields (pydantic, the same validators) and ``resolve``, reads
``X-Min-Change-Seq`` by the route's declaration, answers with the route's
:func:`nearest_answer`'s body (:func:`memory_body`), and sends it with the route's
response headers and the stack's security headers and gzip, made once from their
sources (:class:`NearestFastPath`; running the answer through those middleware instead
cost a fifth of the rate, measured in ``bench/NEAREST_REFACTOR.md``).
Whatever it does not answer - a refused parameter, an index not usable, any other path
or method - goes on to the route, so error bodies are the route's.
``tests/test_nearest_fastpath.py`` checks, for random and malformed queries, that both
answer byte for byte the same.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI, Query
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_service.domain.catalogue import AMENITY_BY_CODE, HostType, Status
from geo_service.domain.coords import Crs, to_wgs84
from geo_service.domain.encoding import GZIP_MIN_BYTES, dumps, gzip_body
from geo_service.domain.errors import GeoServiceError
from geo_service.domain.params import (
    AT_PATTERN,
    at_most,
    check_point,
    instant,
    list_pattern,
    split_list,
)
from geo_service.domain.schemas import IsoText
from geo_service.infra.settings import Settings
from geo_service.stations import service
from geo_service.stations.nearest_index.index import Index
from geo_service.stations.nearest_index.state import NearestKeeper, nearest_keeper
from geo_service.stations.service import NearestParams
from geo_service.web.deps import CrsQ, LatQ, LonQ, MinChangeSeq
from geo_service.web.responses import JSONResponse
from geo_service.web.security_headers import SECURITY_HEADERS

log = logging.getLogger(__name__)

PATH_NEAREST = "/v1/stations/nearest"

#: The vocabularies of the comma-list parameters (the stations list takes them too).
AMENITY_CODES = set(AMENITY_BY_CODE)
HOST_TYPES = {h.value for h in HostType}
STATUSES = {s.value for s in Status}


def _location_log(lat: float, lon: float, settings: Settings) -> str:
    """Courier location is personal: logs get it rounded (~100 m at 3 decimals)."""
    d = settings.log_location_decimals
    return f"{round(lat, d)},{round(lon, d)}"


@dataclass
class NearestQuery:
    """Nearest's query parameters as one dependency (as titiler-pgstac declares them).

    Caps come from settings only (``GEO_MAX_K``, ``GEO_MAX_RADIUS_M``); the
    published schema states them too (``openapi.py``).
    """

    lat: LatQ
    lon: LonQ
    k: Annotated[int, Query(ge=1, description="how many (at most settings.max_k)")] = 5
    radius_m: Annotated[float | None, Query(
        gt=0, allow_inf_nan=False, description="search radius in metres (at most "
                                                "settings.max_radius_m)")] = None
    amenities: Annotated[str | None, Query(pattern=list_pattern(AMENITY_CODES),
                                           description="comma list of amenity codes")] = None
    open_now: Annotated[bool, Query(
        description="only stations open at `at` (their hours say open; stations whose hours "
                    "are unknown then are left out unless include_unknown)")] = False
    include_unknown: Annotated[bool, Query(
        description="with open_now: also stations whose hours are unknown at `at` (no hours "
                    "on record, an 'unknown' rule, or a dated rule past its horizon); they "
                    "answer open_now null")] = False
    at: Annotated[
        dt.datetime | None, IsoText, Query(description="instant for open_now; naive = China time; "
                                                       "a year from 1970 to 2199",
                                           json_schema_extra={"pattern": AT_PATTERN})
    ] = None
    host_type: Annotated[str | None, Query(pattern=list_pattern(HOST_TYPES),
                                           description="comma list of host types")] = None
    status: Annotated[
        str | None, Query(pattern=list_pattern(STATUSES),
                          description="comma list; default open,temporarily_closed")
    ] = None
    min_ten_ones: Annotated[int, Query(ge=0, le=10)] = 0
    crs: CrsQ = Crs.WGS84

    def resolve(self, settings: Settings) -> NearestParams:
        """Checked, converted to WGS-84 and filled with the defaults: what the service takes."""
        check_point(self.lat, self.lon)
        at_most(self.k, settings.max_k, "k")
        radius = self.radius_m if self.radius_m is not None else settings.default_radius_m
        at_most(radius, settings.max_radius_m, "radius_m")
        wlon, wlat = to_wgs84(self.lon, self.lat, self.crs)
        return NearestParams(
            lon=wlon, lat=wlat, k=self.k, radius_m=radius,
            at=instant(self.at, "at", default_tz=settings.default_timezone),
            want=split_list(self.amenities, "amenities", AMENITY_CODES) or [],
            open_now=self.open_now, include_unknown=self.include_unknown,
            host_types=split_list(self.host_type, "host_type", HOST_TYPES),
            statuses=split_list(self.status, "status", STATUSES) or service.DEFAULT_STATUSES,
            min_ten_ones=self.min_ten_ones)


#: The route's own parameter rules, for callers outside FastAPI's dependency system
#: (the fast path): the same dataclass, validated by the same pydantic fields.
_NEAREST_QUERY = TypeAdapter(NearestQuery)
_NEAREST_FIELDS = frozenset(f.name for f in dataclasses.fields(NearestQuery))
_MIN_CHANGE_SEQ: TypeAdapter[str | None] = TypeAdapter(MinChangeSeq)


def nearest_query(params: Mapping[str, str]) -> NearestQuery:
    """:class:`NearestQuery` from query parameters as FastAPI reads them (Starlette's
    ``QueryParams``: the last of a repeated parameter; unknown ones ignored), by the
    route's own field declarations. Raises ``pydantic.ValidationError`` where the route
    answers 422.

    All of them at once, each time: one ``validate_python`` of the dataclass costs ~2 µs,
    less than the cache of the parameters but the point it replaced (~3.6 µs with its
    ``dataclasses.replace``; ``bench/NEAREST_REFACTOR.md``, "Where the µs went")."""
    return _NEAREST_QUERY.validate_python(
        {name: value for name, value in params.items() if name in _NEAREST_FIELDS})


#: Query strings in which ``parse_qsl`` would unquote nothing: no ``%`` escape, no ``+``
#: (a space), only what an app or wrk writes for plain numbers, names and comma lists.
_PLAIN_QUERY = re.compile(rb"[A-Za-z0-9._,:=&-]*")


def query_params(raw: bytes) -> dict[str, str]:
    """The query string ``raw`` as Starlette's ``QueryParams`` reads it for the route
    (``parse_qsl`` with blank values kept on its latin-1 text; the last of a repeated
    parameter wins), as a plain dict.

    A plain string (:data:`_PLAIN_QUERY`) is split here: with nothing to unquote,
    ``parse_qsl`` comes to splitting on ``&``, skipping empty pieces, and cutting each at
    its first ``=`` (none: an empty value), which this does at a third of its cost. Any
    other string goes to ``parse_qsl`` itself. ``tests/test_nearest_fastpath.py`` holds
    both to the route's answers."""
    if _PLAIN_QUERY.fullmatch(raw):
        return {name: value for name, _, value in
                (piece.partition("=") for piece in raw.decode("ascii").split("&") if piece)}
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


def min_change_seq_of(header: str | None) -> int | None:
    """``X-Min-Change-Seq`` by the route's declaration (:data:`deps.MinChangeSeq`);
    raises ``pydantic.ValidationError`` where the route answers 422."""
    value = _MIN_CHANGE_SEQ.validate_python(header)
    return None if value is None else int(value)


def nearest_answer(keeper: NearestKeeper, index: Index, query: NearestQuery,
                   p: NearestParams, settings: Settings) -> Response:
    """The route's answer from the memory index (the fast path's is :func:`memory_body`)."""
    return nearest_response(keeper, query, p, memory_rows(index, p, query.crs), "memory",
                            settings)


def memory_rows(index: Index, p: NearestParams, crs: Crs) -> list[Any]:
    """The memory index's rows, as JSON fragments the body embeds without decoding."""
    return [orjson.Fragment(row) for row in index.nearest_json(p, crs)]


def nearest_response(keeper: NearestKeeper | None, query: NearestQuery, p: NearestParams,
                      results: list[Any], source: str, settings: Settings) -> Response:
    """The route's answer: :func:`_nearest_body` as a :class:`JSONResponse` that names
    its source."""
    _counted(keeper, query, p, len(results), source, settings)
    return JSONResponse(_nearest_body(query, p, results), headers={"X-Nearest-Source": source})


def memory_body(keeper: NearestKeeper, index: Index, query: NearestQuery, p: NearestParams,
                settings: Settings) -> bytes:
    """The body of :func:`nearest_answer`'s response, without the response: the fast
    path sends it with headers made once (:class:`NearestFastPath`). ``JSONResponse``
    renders its content with ``dumps``, as this does."""
    rows = memory_rows(index, p, query.crs)
    _counted(keeper, query, p, len(rows), "memory", settings)
    return dumps(_nearest_body(query, p, rows))


def _counted(keeper: NearestKeeper | None, query: NearestQuery, p: NearestParams, rows: int,
             source: str, settings: Settings) -> None:
    """An answer counted by source (``/healthz``) and logged, the point rounded."""
    if keeper is not None:
        keeper.answers[source] += 1
    if log.isEnabledFor(logging.DEBUG):
        log.debug("nearest at %s k=%d -> %d (%s)",
                  _location_log(query.lat, query.lon, settings), p.k, rows, source)


def _nearest_body(query: NearestQuery, p: NearestParams,
                  results: list[Any]) -> dict[str, Any]:
    """The answer: the query as resolved and the rows (dicts, or JSON fragments from the
    memory index)."""
    return {
        "query": {
            "lat": query.lat, "lon": query.lon, "crs": query.crs.value, "k": p.k,
            "radius_m": p.radius_m, "at": p.at, "amenities": p.want, "open_now": p.open_now,
            "include_unknown": p.include_unknown,
            "host_types": p.host_types, "statuses": p.statuses,
        },
        "count": len(results),
        "results": results,
    }


class NoteWrites:
    """Marks when this process last answered a successful write, so its memory index
    answers again only once it has provably applied it (this process reads its own
    writes).

    Only a 2xx answer counts: a refused request (unknown path, no key, bad body, rate
    limited) wrote nothing, and anyone can send those as fast as they like - each one
    stamped would send this process's nearest to SQL for a ping's round trip."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        keeper = nearest_keeper(scope["app"].state)
        succeeded = False

        async def noting_writes(message: Message) -> None:
            nonlocal succeeded
            if message["type"] == "http.response.start":
                succeeded = 200 <= message["status"] < 300
            await send(message)
            if succeeded and keeper is not None and message["type"] == "http.response.body" \
                    and not message.get("more_body", False):
                # Committed before it answered: the index answers again once it has
                # provably applied it.
                keeper.wrote_at = time.monotonic()

        await self.app(scope, receive, noting_writes)



class NearestFastPath:
    """The served ASGI callable: nearest from the memory index, else the FastAPI app.

    Not a middleware of the app's stack and not an override of FastAPI's ``__call__``: a
    wrapper composed at the serving boundary (:func:`geo_service.web.app.create_served_app`,
    which ``serving.APP_FACTORY`` and ``geo-service serve`` use), so that the requests it
    answers skip FastAPI's own ``__call__`` and the wrappers Starlette puts around every
    stack (``ServerErrorMiddleware``, ``ExceptionMiddleware``, the dependency exit stack):
    ~30 µs of a ~350 µs request, measured in ``bench/NEAREST_REFACTOR.md``. Everything
    else - lifespan, other paths and methods, whatever :func:`answer` leaves to the route
    - goes to the app unchanged. ``app`` is the app's state's owner too: the keeper and
    the settings are read from ``app.state``, as the route reads them.

    The headers it sends are made here, once, from their sources: the route's own
    response (:func:`nearest_response`'s class and ``X-Nearest-Source``, in Starlette's
    order), then what the middleware stack (``web/app.py``) adds to a 200 JSON answer, in
    its order: Starlette's ``GZipMiddleware`` at :data:`GZIP_MIN_BYTES` (``Vary:
    Accept-Encoding`` from that size on; gzip at ``GZIP_LEVEL`` when the first
    ``Accept-Encoding`` header contains ``gzip``, as it reads it, the length then the
    compressed one) and ``SecurityHeaders``' :data:`SECURITY_HEADERS`. Building a
    ``Response`` per answer and copying its headers cost ~4 µs a request
    (``bench/NEAREST_REFACTOR.md``); ``tests/test_nearest_fastpath.py`` holds the bytes
    to the stack's, headers in order."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        # A response of the route's kind (its body is irrelevant): its headers around
        # the length, which each answer fills in.
        raw = JSONResponse(None, headers={"X-Nearest-Source": "memory"}).raw_headers
        at = next(i for i, (name, _) in enumerate(raw) if name == b"content-length")
        self._before, self._after = tuple(raw[:at]), tuple(raw[at + 1:])
        vary, gzipped = (b"vary", b"Accept-Encoding"), (b"content-encoding", b"gzip")
        self._small: tuple[tuple[bytes, bytes], ...] = SECURITY_HEADERS
        self._large: tuple[tuple[bytes, bytes], ...] = (vary, *SECURITY_HEADERS)
        self._gzipped: tuple[tuple[bytes, bytes], ...] = (vary, gzipped, *SECURITY_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH_NEAREST \
                and scope["method"] == "GET":
            try:
                body = answer(self.app.state, scope)
            except Exception:  # a bug here must not cost a 500: the route answers instead
                log.exception("nearest fast path failed; the route answers instead")
                body = None
            if body is not None:
                await self.send_as_the_stack(scope, send, body)
                return
        await self.app(scope, receive, send)

    async def send_as_the_stack(self, scope: Scope, send: Send, body: bytes) -> None:
        """Send ``body`` as the route's 200 answer after the middleware stack."""
        tail = self._small
        if len(body) >= GZIP_MIN_BYTES:
            tail = self._large
            accept = next((value for name, value in scope["headers"]
                           if name == b"accept-encoding"), b"")
            if b"gzip" in accept:
                body = gzip_body(body)
                tail = self._gzipped
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*self._before, (b"content-length", str(len(body)).encode()),
                                *self._after, *tail]})
        await send({"type": "http.response.body", "body": body})


def answer(state: State, scope: Scope) -> bytes | None:
    """The route's answer's body from the memory index, or None where the route must
    decide (a parameter it refuses, an index not loaded or not fresh enough). ``state``
    is the app's (its keeper and settings)."""
    keeper = nearest_keeper(state)
    if keeper is None:
        return None
    # As Starlette reads them: a header's first value; the query string as the route's
    # ``QueryParams`` (:func:`query_params`).
    header = next((value for name, value in scope["headers"] if name == b"x-min-change-seq"),
                  None)
    try:
        min_seq = None if header is None else min_change_seq_of(header.decode("latin-1"))
        params = query_params(scope["query_string"])
        if params.get("by", "straight") != "straight":
            return None  # by road (or a bad ``by``): the route answers (geo_service/roads)
        query = nearest_query(params)
        settings: Settings = state.settings
        p = query.resolve(settings)
    except (ValidationError, GeoServiceError):
        return None  # the route refuses it, with its own body
    index = keeper.usable(min_seq)
    if index is None:
        return None
    return memory_body(keeper, index, query, p, settings)
