"""The manual at ``/guide/``: the MkDocs site ``make guide`` builds, served as files.

The site is built, never committed (``build/guide/``, or ``GEO_GUIDE_DIR``), so a
checkout that has not run ``make guide`` has no manual: ``/guide/`` then answers 503
with the command that builds it, never a 500 or a bare 404.

Every page of the built site is served with a Content-Security-Policy made from that
page: Material's few inline start-up scripts are allowed by their SHA-256 hashes
(they differ from page to page: each names its own path to the site's root), scripts,
styles, images and fetches (the search index) from this service only, and the
search worker from this service. No page asks another host for anything: the theme
is built with ``font: false`` and no analytics, and the test loads the manual in
Chromium with every outside request aborted (``tests/test_guide.py``).

Not in the OpenAPI document: the manual is pages for people, not an API.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from geo_service.domain.errors import NotFound, ServiceUnavailable
from geo_service.domain.html import page_csp
from geo_service.infra.paths import PROJECT_ROOT
from geo_service.infra.settings import Settings
from geo_service.web.responses import file_response

router = APIRouter(include_in_schema=False)

BUILD_COMMAND = "make guide (or: .venv/bin/mkdocs build --strict -f docs/mkdocs.yml)"
#: Types of the files a Material site holds, so none is left to guessing.
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".json": "application/json",
         ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
         ".xml": "application/xml", ".gz": "application/gzip", ".map": "application/json",
         ".txt": "text/plain; charset=utf-8"}


def guide_dir(settings: Settings) -> Path:
    """Where the built manual is: ``GEO_GUIDE_DIR``, else ``build/guide`` in the project."""
    return Path(settings.guide_dir) if settings.guide_dir else PROJECT_ROOT / "build" / "guide"


@lru_cache(maxsize=256)
def _policy(path: Path, mtime_ns: int) -> str:
    """A page's policy, from its own inline scripts (cached per file version)."""
    page = path.read_text(encoding="utf-8")
    return page_csp(page, scripts=["'self'"], styles=["'self'"], images=["'self'"],
                    connect=["'self'"]) + "; worker-src 'self'"


def _prefix(request: Request) -> str:
    """The path the app is mounted under (behind a proxy with a prefix)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.api_route("/guide", methods=["GET", "HEAD"])
def guide_root(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{_prefix(request)}/guide/", status_code=308)


@router.api_route("/guide/{name:path}", methods=["GET", "HEAD"])
def guide_file(request: Request, name: str) -> Response:
    """A file of the built manual; a folder's ``index.html`` for a path ending in ``/``."""
    root = guide_dir(request.app.state.settings).resolve()
    if not (root / "index.html").is_file():
        raise ServiceUnavailable(f"the manual is not built here: run {BUILD_COMMAND}",
                                 [("guide", "not built")])
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise NotFound(f"no page {name!r} in the manual", [("path", "not in the manual")])
    if path.is_dir():
        if name and not name.endswith("/"):  # relative links need the folder's slash
            return RedirectResponse(f"{_prefix(request)}/guide/{name}/", status_code=308)
        path = path / "index.html"
    if not path.is_file():
        raise NotFound(f"no page {name!r} in the manual", [("path", "not in the manual")])
    headers = {"Cache-Control": "no-cache"}
    media = TYPES.get(path.suffix.lower(), "application/octet-stream")
    if path.suffix.lower() == ".html":
        headers["Content-Security-Policy"] = _policy(path, path.stat().st_mtime_ns)
    return file_response(request, path, headers, media_type=media)
