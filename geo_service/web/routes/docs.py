"""The API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served
with their assets from this service.

FastAPI's own pages load Swagger UI, ReDoc, a favicon and (ReDoc) Google Fonts from
CDNs: on an intranet or with no internet they were blank pages. Here the pages are
FastAPI's (``get_swagger_ui_html``, ``get_redoc_html``), pointed at the files of the
npm packages ``swagger-ui-dist`` and ``redoc`` installed at setup (``package.json``,
pinned), which ``/docs/assets/{name}`` serves from ``node_modules`` (an allow-list,
as the maps' Leaflet). ReDoc gets no web fonts (the system's sans-serif), and Swagger
UI no online validator badge (``validatorUrl: null``), which would be one more
outside request.

With every file from this service the pages get a real policy instead of the bare
framing rules they had: scripts from this service and their own inline script (by
hash), styles from this service (and inline: both UIs set ``style`` attributes and
ReDoc injects its styles), images from this service and ``data:``, requests to this
service only (the OpenAPI document, "Try it out"); ReDoc's search index runs in a
worker it builds from a ``blob:`` URL.

ReDoc's sidebar footer always shows Redocly's logo from ``cdn.redoc.ly`` (no option
turns it off). The bundle is served with that one address replaced by an empty
``data:`` image, whose error makes ReDoc drop the logo (:data:`PATCHES`;
``tests/test_no_outside_requests.py`` fails if a new version fetches anything else).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response

from geo_service.domain.encoding import etag_matches
from geo_service.domain.errors import NotFound
from geo_service.domain.html import page_csp
from geo_service.maps.assets import node_modules
from geo_service.web.responses import file_response

router = APIRouter(include_in_schema=False)

#: ``/docs/assets/{name}`` → (npm package, file inside it): nothing else is served.
ASSETS: dict[str, tuple[str, str]] = {
    "swagger-ui-bundle.js": ("swagger-ui-dist", "swagger-ui-bundle.js"),
    "swagger-ui.css": ("swagger-ui-dist", "swagger-ui.css"),
    "favicon-32x32.png": ("swagger-ui-dist", "favicon-32x32.png"),
    "redoc.standalone.js": ("redoc", "bundles/redoc.standalone.js"),
}
#: Outside addresses a bundle would fetch on its own, replaced when it is served.
PATCHES: dict[str, tuple[tuple[bytes, bytes], ...]] = {
    "redoc.standalone.js": ((b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"data:,"),),
}
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".png": "image/png"}
TITLE = "geo_service"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def _root(request: Request) -> str:
    """The path the app is mounted under (behind a proxy with a prefix), as FastAPI's
    own docs pages use it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _page(html: str, *, workers: bool = False) -> HTMLResponse:
    policy = page_csp(html, scripts=["'self'"], styles=["'self'"], images=["'self'"],
                      connect=["'self'"])
    if workers:
        policy += "; worker-src blob:"
    return HTMLResponse(html, headers={"Content-Security-Policy": policy,
                                       "Cache-Control": "no-cache"})


def _text(response: HTMLResponse) -> str:
    return bytes(response.body).decode()


@cache
def _swagger_html(root: str) -> str:
    return _text(get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json", title=f"{TITLE} - Swagger UI",
        swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
        swagger_ui_parameters={"validatorUrl": None},
    ))


@cache
def _redoc_html(root: str) -> str:
    return _text(get_redoc_html(
        openapi_url=f"{root}/openapi.json", title=f"{TITLE} - ReDoc",
        redoc_js_url=f"{root}/docs/assets/redoc.standalone.js",
        redoc_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
        with_google_fonts=False,
    ))


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return _page(_swagger_html(_root(request)))


@router.get(OAUTH2_REDIRECT)
def swagger_ui_redirect() -> HTMLResponse:
    return _page(_text(get_swagger_ui_oauth2_redirect_html()))


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return _page(_redoc_html(_root(request)), workers=True)


@cache
def _patched(path: Path, name: str) -> tuple[bytes, str]:
    """A bundle with its outside addresses replaced, and its ETag (read once)."""
    body = path.read_bytes()
    for old, new in PATCHES[name]:
        body = body.replace(old, new)
    return body, f'"{hashlib.sha256(body).hexdigest()[:20]}"'


@router.get("/docs/assets/{name}")
def asset(request: Request, name: str) -> Response:
    """A file of Swagger UI or ReDoc from the npm packages installed at setup."""
    where = ASSETS.get(name)
    path = node_modules().joinpath(*where) if where else None
    if path is None or not path.is_file():
        raise NotFound(f"no documentation asset {name!r} (is npm ci done?)",
                       [("name", "not a documentation asset")])
    media = TYPES[path.suffix]
    if name not in PATCHES:
        return file_response(request, path, {"Cache-Control": "no-cache"}, media_type=media)
    body, etag = _patched(path, name)
    headers = {"Cache-Control": "no-cache", "ETag": etag}
    if etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media, headers=headers)
