"""Every HTML page the service serves works with no internet (issue 24, item 14).

On an intranet, or a laptop with no network, a page that loads Leaflet, Swagger UI,
ReDoc or a font from a CDN is a blank page ("L is not defined"). Here Debian's Chromium
gets no outside request at all: every request to a host other than 127.0.0.1 is
aborted, and each page the service serves by default (the root page, the maps as
``geo-service maps render`` writes them with no option and as ``/maps/...`` draws them,
``/docs``, ``/redoc``, ``/app/``) must load with no failed request and no console error,
and really draw: Leaflet's ``L`` and the markers, Swagger UI's operations, ReDoc's
operations, the app's list.

The one outside request a default map makes on purpose is its basemap's tiles (data
the user asked for, not an asset of the page): those answer an empty 204 here, as in
the other browser tests, and are the only outside requests allowed.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from geo_service.maps.assets import node_modules
from geo_service.maps.model import BASEMAPS
from geo_service.sample.seed import load_seed
from tests.conftest import SEED
from tests.helpers import live_server

ROOT = Path(__file__).parents[1]
AREA = "460200"
POINT = (109.5, 18.25)
#: The default basemap's tile host: tiles are data, fulfilled empty, never fetched.
TILES = urlsplit(BASEMAPS["osm"].url or "").hostname

#: What each page must show once it has drawn (a JavaScript condition), by path.
DRAWN = {
    "/": "document.querySelector('a[href=\"/docs\"]') !== null",
    "/maps/files/stations.html": "typeof L === 'object' && window.GEO && GEO.maps.stations "
                                 "&& GEO.maps.stations.loaded() && document.querySelector("
                                 "'.leaflet-tile-pane') && document.querySelector("
                                 "'.leaflet-marker-pane .marker-cluster, "
                                 ".leaflet-marker-pane .geo-pin')",
    f"/maps/compliance.html?area={AREA}": "typeof L === 'object' && window.GEO && "
                                          "GEO.maps.compliance && GEO.maps.compliance.loaded()"
                                          " && document.querySelector('.leaflet-tile-pane')",
    "/docs": "document.querySelectorAll('.opblock').length > 10",
    "/redoc": "document.querySelectorAll('[data-section-id^=\"operation/\"]').length > 10",
    "/app/": "document.querySelectorAll('#list li').length > 0",
}


@pytest.fixture
def rendered(db: psycopg.Connection[Any], db_url: str, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample city, and its stations map written by ``geo-service maps render`` with
    no option."""
    from geo_service.cli import main

    with ThreadPoolExecutor(1) as pool:  # Playwright keeps an event loop on this thread
        pool.submit(load_seed, db_url, SEED).result()
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    assert main(["maps", "render", "--area", AREA, "--maps", "stations",
                 "--out", str(tmp_path)]) == 0
    return tmp_path


@pytest.mark.slow  # ~30 s: a server, a rendered map, six pages (two on the full schema)
def test_every_page_renders_with_outside_requests_blocked(
        browser: Any, rendered: Path, db_url: str) -> None:
    problems: dict[str, list[str]] = {}
    with live_server(db_url, env={"GEO_MAPS_DIR": str(rendered)}) as base:
        for path, drawn in DRAWN.items():
            context = browser.new_context(
                viewport={"width": 1024, "height": 800}, locale="zh-CN",
                geolocation={"longitude": POINT[0], "latitude": POINT[1]},
                permissions=["geolocation"])
            failed: list[str] = []
            errors: list[str] = []
            outside: list[str] = []

            def route(r: Any) -> None:
                host = urlsplit(r.request.url).hostname
                if host == "127.0.0.1":
                    r.continue_()
                elif host == TILES:
                    r.fulfill(status=204)
                else:
                    outside.append(r.request.url)  # noqa: B023 - this page's list
                    r.abort("internetdisconnected")

            context.route("**/*", route)
            page = context.new_page()
            page.on("requestfailed", lambda r: failed.append(  # noqa: B023
                f"{r.url} {r.failure}"))
            page.on("console", lambda m: errors.append(m.text)  # noqa: B023
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))  # noqa: B023
            try:
                page.goto(base + path)
                try:
                    page.wait_for_function(f"() => ({drawn})", timeout=20_000)
                    page.wait_for_load_state("networkidle")
                except PlaywrightTimeout:
                    errors.append(f"not drawn: {drawn}")
            finally:
                context.close()
            if outside or failed or errors:
                problems[path] = [*outside, *failed, *errors]
    assert problems == {}


def test_docs_pages_load_their_assets_from_this_service(client: TestClient) -> None:
    """/docs and /redoc name no other host, their policy says so, and the assets are the
    files of the pinned npm packages (ReDoc's with Redocly's logo address taken out)."""
    for path, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        refs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert f"/docs/assets/{asset}" in refs and all(u.startswith("/") for u in refs), refs
        assert "googleapis" not in r.text and "validator.swagger.io" not in r.text
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self' 'sha256-" in client.get("/docs").headers[
        "content-security-policy"]  # Swagger UI's own inline start-up script, by hash
    modules = node_modules()
    swagger = client.get("/docs/assets/swagger-ui-bundle.js")
    assert swagger.content == (modules / "swagger-ui-dist" / "swagger-ui-bundle.js").read_bytes()
    again = client.get("/docs/assets/swagger-ui-bundle.js",
                       headers={"If-None-Match": swagger.headers["etag"]})
    assert again.status_code == 304
    redoc = client.get("/docs/assets/redoc.standalone.js")
    original = (modules / "redoc" / "bundles" / "redoc.standalone.js").read_bytes()
    assert b"cdn.redoc.ly" in original and b"cdn.redoc.ly" not in redoc.content
    assert len(redoc.content) == len(original) - len(b"https://cdn.redoc.ly/redoc/logo-mini.svg"
                                                     ) + len(b"data:,")
    assert client.get("/docs/assets/redoc.standalone.js", headers={
        "If-None-Match": redoc.headers["etag"]}).status_code == 304
    for bad in ("package.json", "swagger-ui.js.map", "index.html"):
        r = client.get(f"/docs/assets/{bad}")
        assert r.status_code == 404 and r.json()["error"]["fields"][0]["field"] == "name"
    assert client.get("/docs/assets/..%2F..%2Fpackage.json").status_code == 404
    versions = json.loads((ROOT / "package.json").read_text())["dependencies"]
    for package in ("swagger-ui-dist", "redoc"):  # pinned exactly
        assert re.fullmatch(r"\d+\.\d+\.\d+", versions[package]), package
