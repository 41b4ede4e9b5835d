"""HTTP pieces every feed router shares: conditional-request headers and 304s."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Response

from geo_service.feeds.caching import Validators, not_modified

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
