"""JSON responses rendered with orjson, and streamed bodies that give up on stalled clients.

The encoding itself (``dumps``, the gzip level) is :mod:`geo_service.domain.encoding`,
which code outside the HTTP layer uses without importing Starlette.

Hot endpoints build plain dicts and return :class:`JSONResponse` directly; the
pydantic models in :mod:`geo_service.domain.schemas` document the shape in OpenAPI,
and the schemathesis tests check that what is sent matches what is declared.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.types import Message, Send

from geo_service.domain.encoding import dumps, etag_matches

log = logging.getLogger(__name__)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


class GeoJSONResponse(JSONResponse):
    """RFC 7946 GeoJSON, with its registered media type."""

    media_type = "application/geo+json"


def file_response(request: Request, path: Path, headers: dict[str, str],
                  media_type: str | None = None) -> Response:
    """A file, or 304 when the client's copy has its ETag.

    Starlette's :class:`FileResponse` sends an ``ETag`` but never reads
    ``If-None-Match``, so a revalidation (``no-cache``, or an expired
    ``max-age``) paid for the whole file again: 20 KB of geodesics on each app
    open over a slow link (bench/APP_LOAD.md).
    """
    response = FileResponse(path, media_type=media_type, headers=headers,
                            stat_result=os.stat(path))
    asked = request.headers.get("if-none-match")
    if asked is not None and etag_matches(asked, response.headers["etag"]):
        kept = {k: v for k, v in response.headers.items()
                if k in ("etag", "cache-control", "last-modified", "content-security-policy")}
        return Response(status_code=304, headers=kept)
    return response


class StalledClient(Exception):
    """The client took no part of a streamed body for the send timeout."""


class PacedStreamingResponse(StreamingResponse):
    """A streamed body that gives up on a client that stops reading.

    The server hands over a chunk only once the client has taken most of the
    previous ones (uvicorn's flow control), so a client that never reads would
    keep the body's generator, and whatever it holds, waiting for ever. Each
    chunk must be taken within ``send_timeout_s`` (``client_send_timeout_s``);
    past it the stream ends there, the generator is closed and the server
    closes the connection: the client sees a body without its last chunk.
    Bodies built on this must hold no database connection across a ``yield``.
    """

    def __init__(self, content: AsyncIterable[bytes], *, send_timeout_s: float,
                 **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.send_timeout_s = send_timeout_s

    async def stream_response(self, send: Send) -> None:
        async def paced(message: Message) -> None:
            try:
                async with asyncio.timeout(self.send_timeout_s):
                    await send(message)
            except TimeoutError:
                raise StalledClient from None

        try:
            await super().stream_response(paced)
        except StalledClient:
            # Returning without the last message makes the server close the connection.
            log.warning("a client took nothing for %s s: its streamed body was abandoned",
                        self.send_timeout_s)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True):  # also when the client went away
                    await close()
