"""The manual at /guide/ (issue 25): built strictly from docs/, served with no outside request.

The site is built once for the module with the same command ``make guide`` runs
(``mkdocs build --strict``, here into a temporary folder), so the tests read what a
person gets: Material's pages, its search, and the tables the build writes from the
code (``docs/hooks.py``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from geo_service.infra.settings import Settings
from geo_service.web.app import create_app
from tests.helpers import live_server

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manual as ``make guide`` builds it (strict: a warning fails the build)."""
    out = tmp_path_factory.mktemp("guide")
    done = subprocess.run(
        [str(Path(sys.executable).with_name("mkdocs")), "build", "--strict",
         "-f", str(ROOT / "docs" / "mkdocs.yml"), "-d", str(out)],
        capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def guide_client(settings: Settings, site: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"guide_dir": str(site)})),
                    follow_redirects=False) as c:
        yield c


def test_guide_pages_are_served_with_their_own_policy(guide_client: TestClient,
                                                      site: Path) -> None:
    """Pages, folders without their slash, assets and the search index; each HTML page
    allows its own inline scripts by hash and nothing from another host."""
    assert guide_client.get("/guide").headers["location"] == "/guide/"
    r = guide_client.get("/guide/user_guide/getting-started")
    assert r.status_code == 308 and r.headers["location"] == "/guide/user_guide/getting-started/"
    page = guide_client.get("/guide/user_guide/getting-started/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "安装与上线" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self' 'sha256-" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp
    index = guide_client.get("/guide/search/search_index.json")
    assert index.status_code == 200 and index.json()["docs"]
    again = guide_client.get("/guide/search/search_index.json",
                             headers={"If-None-Match": index.headers["etag"]})
    assert again.status_code == 304
    assert "/guide/" in guide_client.get("/").text  # linked from the root page
    # The manual is not part of the API: the OpenAPI document does not change.
    assert not [p for p in guide_client.get("/openapi.json").json()["paths"]
                if p.startswith("/guide")]


def test_guide_refuses_paths_outside_the_site(guide_client: TestClient) -> None:
    for path in ("/guide/..%2F..%2Fpyproject.toml", "/guide/%2E%2E/%2E%2E/pyproject.toml",
                 "/guide/no-such-page/"):
        r = guide_client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["fields"][0]["field"] == "path"


def test_guide_not_built_is_a_503_naming_the_command(settings: Settings,
                                                     tmp_path: Path) -> None:
    app = create_app(settings.model_copy(update={"guide_dir": str(tmp_path / "none")}))
    with TestClient(app) as c:
        r = c.get("/guide/")
    assert r.status_code == 503
    body = r.json()["error"]
    assert "make guide" in body["message"] and body["fields"][0]["field"] == "guide"


def test_import_formats_come_from_the_code(guide_client: TestClient) -> None:
    """Every column of the union sheet and of the demand file is in the manual, with its
    Chinese header and aliases as the importer reads them (written at build time)."""
    from geo_service.coverage.demand import COLUMNS as DEMAND
    from geo_service.domain.sheet import OTHER_HEADERS, SHEET_COLUMNS

    text = guide_client.get("/guide/user_guide/import-formats/").text
    for column in SHEET_COLUMNS:
        assert column.header in text, column.header
        assert all(alias in text for alias in column.aliases), column.aliases
    for names in OTHER_HEADERS.values():
        assert all(name in text for name in names), names
    for name in DEMAND:
        assert f"<code>{name}</code>" in text, name
    api = guide_client.get("/guide/reference/operations/").text
    for path in guide_client.get("/openapi.json").json()["paths"]:
        assert f"<code>{path}</code>" in api, path


@pytest.mark.slow  # a server and one browser page through three pages and a search
def test_guide_in_chromium_with_outside_requests_blocked(browser: Any, site: Path,
                                                         db_url: str) -> None:
    """A person reads the manual offline: home, 新城市上手 (with its screenshots), 安装与
    上线, import formats, a search."""
    outside: list[str] = []
    failed: list[str] = []
    errors: list[str] = []
    with live_server(db_url, env={"GEO_GUIDE_DIR": str(site)}) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      locale="zh-CN")

        def route(r: Any) -> None:
            if urlsplit(r.request.url).hostname == "127.0.0.1":
                r.continue_()
            else:
                outside.append(r.request.url)
                r.abort("internetdisconnected")

        context.route("**/*", route)
        page = context.new_page()
        page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(base + "/guide/")
            page.wait_for_load_state("networkidle")
            assert page.locator("html").get_attribute("lang") == "zh"
            # The clerk's walkthrough: its screenshots (made by the walkthrough test) draw.
            page.get_by_role("link", name="新城市上手：工作人员").first.click()
            page.wait_for_url("**/user_guide/new-city/")
            assert page.locator("h1").first.inner_text().startswith("新城市上手")
            shots = page.locator("article img[src*='new-city/']")
            assert shots.count() == 9
            for i in range(shots.count()):
                shots.nth(i).scroll_into_view_if_needed()
                assert shots.nth(i).evaluate("i => i.decode().then(() => i.naturalWidth)") > 0
            page.get_by_role("link", name="安装与上线 Getting started").first.click()
            page.wait_for_url("**/user_guide/getting-started/")
            assert page.locator("h1").first.inner_text().startswith("安装与上线")
            english = page.locator("article h2", has_text="From an empty database to published")
            assert page.locator("article h2", has_text="从空数据库到正式发布").is_visible()
            assert not english.is_visible()  # Chinese first; English one tap away
            page.locator(".tabbed-labels label", has_text="English").first.click()
            english.wait_for(state="visible", timeout=10_000)
            # Search runs in the page (lunr; Chinese words split by jieba at build time),
            # and its answer takes the reader to the import formats.
            page.locator(".md-search__input").click()
            page.locator(".md-search__input").fill("需求点")
            page.keyboard.press("End")  # Material reads the query on key events
            page.wait_for_selector(".md-search-result__item", timeout=20_000)
            found = page.locator(".md-search-result__item a[href*='import-formats']")
            assert found.count() > 0, page.locator(".md-search-result__list").inner_text()
            found.first.click()
            page.wait_for_url("**/user_guide/import-formats/**")
            assert page.locator("td", has_text="站点编码").first.is_visible()
            page.wait_for_load_state("networkidle")
        finally:
            context.close()
    assert (outside, failed, errors) == ([], [], [])


def test_every_command_in_the_manual_exists() -> None:
    """Each ``geo-service …`` the manual (and the README) tells a reader to type is a
    command the parser has, subcommand included: a renamed command fails here."""
    import argparse

    from geo_service.cli import build_parser

    def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(subs[0].choices) if subs else {}

    top = commands(build_parser())
    pages = [*sorted((ROOT / "docs" / "src").rglob("*.md")), ROOT / "README.md"]
    wrong: list[str] = []
    for page in pages:
        for first, second in re.findall(r"geo-service ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?",
                                        page.read_text(encoding="utf-8")):
            if first not in top:
                wrong.append(f"{page.name}: geo-service {first}")
            elif (subs := commands(top[first])) and second and second not in subs:
                wrong.append(f"{page.name}: geo-service {first} {second}")
    assert wrong == []
