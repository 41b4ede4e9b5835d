"""How every body the service sends is encoded: JSON by orjson, gzip at one level.

Kept apart from :mod:`geo_service.web.responses` (the Starlette response classes) so
the memory index, the feeds' services and the command line serialise exactly as the
HTTP answers do without importing the web framework.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

#: gzip for every body a client accepts it for: feeds, exports, maps, the app and
#: its snapshot (the national GeoJSON is ~442 MB raw, ~10x less gzipped). Level 5
#: costs about half of level 9's CPU for ~2 % more bytes, which matters on long
#: streams; bodies under 1 KiB are not worth a header (``web/app.py`` installs it).
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


def etag_matches(header: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §8.8.3.2), as GET conditionals use."""
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in header.split(","))
