"""The nearest fast path: ``GET /v1/stations/nearest`` answered from the memory index
without FastAPI's routing and dependency resolution, which cost more than the index
itself (profiled: ``bench/README.md``).

It is a plain ASGI middleware, installed innermost (``main.create_app``), so its
answers pass through the same middleware stack as every other response: security
headers, gzip and ``Vary``, body limit, read routing. It parses with the route's own
rules (``stations.router.nearest_query``: the ``NearestQuery`` dataclass validated
by its pydantic fields, then ``NearestQuery.resolve``) and answers with the route's own
function (``stations.router.nearest_answer``). Whatever it does not answer - a refused
parameter, an index not usable, any other path or method - goes on to the route, so
error bodies are the route's. ``tests/test_nearest_fastpath.py`` checks, for random and
malformed queries, that both answer byte for byte the same.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from geo_service.errors import GeoServiceError
from geo_service.stations.nearest_index.state import nearest_keeper
from geo_service.stations.router import (
    min_change_seq_of,
    nearest_answer,
    nearest_query,
)

log = logging.getLogger(__name__)

PATH_NEAREST = "/v1/stations/nearest"


class NearestFastPath:
    """ASGI middleware answering nearest from the memory index when it can."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH_NEAREST \
                and scope["method"] == "GET":
            try:
                response = answer(scope)
            except Exception:  # a bug here must not cost a 500: the route answers instead
                log.exception("nearest fast path failed; the route answers instead")
                response = None
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def answer(scope: Scope) -> Response | None:
    """The route's answer from the memory index, or None where the route must decide
    (a parameter it refuses, an index not loaded or not fresh enough)."""
    state = scope["app"].state
    keeper = nearest_keeper(state)
    if keeper is None:
        return None
    try:
        min_seq = min_change_seq_of(Headers(scope=scope).get("x-min-change-seq"))
        query = nearest_query(QueryParams(scope["query_string"]))
        p = query.resolve(state.settings)
    except (ValidationError, GeoServiceError):
        return None  # the route refuses it, with its own body
    index = keeper.usable(min_seq)
    if index is None:
        return None
    return nearest_answer(keeper, index, query, p, state.settings)
