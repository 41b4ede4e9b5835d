"""JSON responses rendered with orjson.

Hot endpoints build plain dicts and return :class:`JSONResponse` directly; the
pydantic models in :mod:`geo_service.schemas` document the shape in OpenAPI,
and the schemathesis tests check that what is sent matches what is declared.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response

_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

#: gzip for every body a client accepts it for: feeds, exports, maps, the app and
#: its snapshot (the national GeoJSON is ~442 MB raw, ~10x less gzipped). Level 5
#: costs about half of level 9's CPU for ~2 % more bytes, which matters on long
#: streams; bodies under 1 KiB are not worth a header (``main.py`` installs it).
GZIP_LEVEL = 5
GZIP_MIN_BYTES = 1024


def gzip_body(body: bytes) -> bytes:
    """``body`` as one gzip member at :data:`GZIP_LEVEL`, for responses sent past the
    gzip middleware (the memory index's nearest)."""
    c = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return c.compress(body) + c.flush()


def dumps(content: Any) -> bytes:
    """Serialise ``content`` the way every response of the service does."""
    return orjson.dumps(content, option=_OPTS)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


class GeoJSONResponse(JSONResponse):
    """RFC 7946 GeoJSON, with its registered media type."""

    media_type = "application/geo+json"


def etag_matches(header: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §8.8.3.2), as GET conditionals use."""
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in header.split(","))


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
