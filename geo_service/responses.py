"""JSON responses rendered with orjson.

Hot endpoints build plain dicts and return :class:`JSONResponse` directly; the
pydantic models in :mod:`geo_service.schemas` document the shape in OpenAPI,
and the schemathesis tests check that what is sent matches what is declared.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


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
