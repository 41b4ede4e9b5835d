"""HTTP hardening in one place: the headers every response carries, and whose address
our absolute links use.

Headers
    Every response gets ``X-Content-Type-Options: nosniff``, ``X-Frame-Options:
    DENY`` and ``Referrer-Policy: no-referrer``. An HTML response that sets no
    ``Content-Security-Policy`` of its own gets :data:`STRICT_CSP` (no script at
    all: the root page); pages with scripts set their own, listing each inline
    script by hash (:func:`geo_service.domain.html.page_csp`), the Swagger UI and ReDoc
    pages too (their assets are served by this service: ``web/routes/docs.py``).

Public URLs
    Links that must be absolute (OGC API, TileJSON tile URLs, the feed discovery
    document, JSON Schema ``$id``, the printed QR check-in link) once followed the
    request's ``Host`` header, so ``Host: evil.example`` made the service hand out
    links to evil.example, and shared caches could keep them (the OGC landing page
    was ``public``). :func:`public_base` is the only place such a link starts:

    - ``GEO_PUBLIC_BASE_URL`` set: always that address; responses may then be
      cached by shared caches (:func:`link_cache_control`);
    - unset: the request's own address, but only for a ``Host`` in
      ``GEO_ALLOWED_HOSTS`` (default ``127.0.0.1, localhost, ::1``, plus the host
      ``geo-service serve --host`` names); any other is a 400 naming ``Host``. Such
      responses are ``private``: a link built from a request is for that client.

    Redirects the framework makes (``/ogc/`` → ``/ogc``) carry a relative
    ``Location`` instead of one built from the ``Host`` header.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_service.domain.errors import GeoServiceError
from geo_service.infra.settings import Settings

#: The policy of an HTML page that runs no script (the root page, error pages).
STRICT_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
              "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")
#: Never framed, no plugins, no <base>: added in the header of pages that carry the
#: rest of their policy in a ``<meta>`` (the maps), which cannot say ``frame-ancestors``.
FRAME_CSP = "frame-ancestors 'none'; object-src 'none'; base-uri 'none'"


class UntrustedHost(GeoServiceError):
    """A request whose Host is not ours, where an absolute link must be written."""

    status = 400
    code = "untrusted_host"


def public_base(request: Request) -> str:
    """The address every absolute link starts with, without a final slash.

    Raises :class:`UntrustedHost` (400 naming ``Host``) when no public address
    is configured and the request's ``Host`` is not an allowed one.
    """
    settings: Settings = request.app.state.settings
    if settings.public_base_url:
        return settings.public_base_url
    host = (request.url.hostname or "").lower()
    if host not in settings.allowed_hosts:
        raise UntrustedHost(
            "links cannot be built for this Host: set GEO_PUBLIC_BASE_URL to the service's "
            "public address (or add the host to GEO_ALLOWED_HOSTS)",
            [("Host", "not an allowed host")])  # never echoed: the value is the forgery
    return str(request.base_url).rstrip("/")


def public_url(request: Request, query: str | None = None) -> str:
    """This request's URL on the public address: same path, its query or ``query``."""
    root = request.scope.get("root_path", "")
    path = request.url.path
    if root and path.startswith(root):
        path = path[len(root):]  # public_base already ends with the root path
    q = request.url.query if query is None else query
    return public_base(request) + path + (f"?{q}" if q else "")


def link_cache_control(request: Request, max_age: int) -> str:
    """``Cache-Control`` of a response with absolute links: shared caches only when
    the links come from the configured public address, not from the request."""
    settings: Settings = request.app.state.settings
    return f"{'public' if settings.public_base_url else 'private'}, max-age={max_age}"


def links_shared(request: Request) -> bool:
    """Whether responses with absolute links may be kept by shared caches."""
    settings: Settings = request.app.state.settings
    return settings.public_base_url is not None


#: Sent with every response (the nearest fast path, outside this middleware, adds them too).
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"))


class SecurityHeaders:
    """ASGI middleware adding the security headers (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name.decode(), value.decode())
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", STRICT_CSP)
                location = headers.get("location")
                if location is not None:
                    headers["location"] = _relative(location, scope)
            await send(message)

        await self.app(scope, receive, with_headers)


def _relative(location: str, scope: Scope) -> str:
    """A Location on this request's own (Host-derived) origin, made relative.

    Starlette's trailing-slash redirect writes ``http://<Host>/path``; a relative
    reference means the same to the client and never names a forged host.
    """
    url = Request(scope).url
    origin = f"{url.scheme}://{url.netloc}"
    if location.startswith(origin + "/"):
        return location[len(origin):]
    return location
