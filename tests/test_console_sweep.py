"""Every console route, swept (issue 26: "every console page sends the CSP", "CSRF token
missing → refused"), so a page added later is held to the rules without its author
remembering them.

The routes come from the app's own router list (``web.api.ROUTERS``), not from a list
kept here: a new ``GET /console/...`` page is visited signed out (it must not answer
with data) and signed in as a city admin (its policy must forbid inline script and
every outside origin, it must not be cached, and nothing in it may load from outside);
a new ``POST`` is sent signed in without a CSRF token and must be refused with nothing
written. A path parameter this file does not know fails the test, so that the next
route's author decides what to visit it with.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from geo_service.domain import accounts
from geo_service.web.api import ROUTERS
from tests.test_console import PASSWORD, sign_in

#: What each path parameter is visited with: a serving sample station of Tianya, the
#: admin's own account and a key id that does not exist (refused, never a 5xx).
PARAMS = {"code": "SY-0010", "user_id": "1", "key_id": "999999",
          "token": "sweep-token-of-no-upload-0000", "sha": "0" * 64, "photo_id": "999999",
          "report_id": "999999", "action": "delete"}
#: Where one route needs its own value (an action another route does not have).
PATH_PARAMS = {"/console/photos/pending/{report_id}/{action}": {"action": "reject"}}
#: Not pages: the form's script (public, like every static asset), JSON and downloads
#: (their own tests check them); each must still refuse a visitor who is signed out.
NOT_HTML = ("/console/assets/",)
#: The tables a console form writes (directly or through the services).
WRITTEN = ("station", "staff_user", "api_key", "report_resolution", "audit_log",
           "demand_point", "import_upload")
#: Query strings that make a page whose parameters are required answer its real page.
QUERIES = {"/console/locate": "?lon=109.51&lat=18.25"}


def _console_routes() -> list[tuple[str, str]]:
    """(method, path) of every console route, as the app serves them."""
    found = []
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.path.startswith("/console"):
                found += [(m, route.path) for m in sorted(route.methods or ())]
    return found


def _fill(path: str) -> str:
    names = re.findall(r"{(\w+)(?::\w+)?}", path)
    unknown = [n for n in names if n not in PARAMS]
    assert not unknown, f"{path}: say in PARAMS what to visit {unknown} with"
    values = {**PARAMS, **PATH_PARAMS.get(path, {})}
    for name in names:
        path = re.sub(r"{" + name + r"(?::\w+)?}", values[name], path)
    return path + QUERIES.get(path, "")


ROUTES = _console_routes()
PAGES = [p for m, p in ROUTES if m == "GET"]
POSTS = [p for m, p in ROUTES if m == "POST"]


@pytest.fixture
def admin_client(client: TestClient, seeded: psycopg.Connection[Any]) -> Iterator[TestClient]:
    """A client signed in as an admin of the whole sample city."""
    accounts.create_user(seeded, name="sweep", display_name="巡检管理员", role="admin",
                         area_code="460200", password=PASSWORD)
    assert sign_in(client, "sweep").status_code == 303
    yield client


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    counts = {}
    for table in WRITTEN:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        counts[table] = row[0] if row else 0
    return counts


def test_the_sweep_sees_the_console() -> None:
    """The sweep is not empty by accident (a router renamed away from /console)."""
    assert "/console/stations" in PAGES and "/console/stations/{code}/edit" in PAGES
    assert len(POSTS) >= 10


def test_signed_out_nobody_gets_a_console_page(client: TestClient,
                                                seeded: psycopg.Connection[Any]) -> None:
    for path in PAGES:
        if path == "/console/" or path.startswith("/console/assets/"):
            continue
        r = client.get(_fill(path), follow_redirects=False)
        assert r.status_code in (303, 401), (path, r.status_code)
        if r.status_code == 303:
            assert r.headers["location"].startswith("/console/"), path
        assert "SY-0010" not in r.text, path


def test_every_page_has_the_policy_no_cache_and_nothing_from_outside(
        admin_client: TestClient) -> None:
    for path in PAGES:
        r = admin_client.get(_fill(path), follow_redirects=False)
        assert r.status_code < 500, (path, r.status_code)
        if path.startswith(NOT_HTML) or "text/html" not in r.headers.get("content-type", ""):
            continue
        csp = r.headers.get("content-security-policy", "")
        directives = dict([*d.strip().split(" ", 1), ""][:2] for d in csp.split(";") if d)
        assert directives.get("default-src") == "'none'", (path, csp)
        assert directives.get("frame-ancestors") == "'none'", (path, csp)
        assert "unsafe-inline" not in directives.get("script-src", ""), (path, csp)
        assert "unsafe-eval" not in csp and "http:" not in csp and "https:" not in csp, (
            path, csp)
        assert "no-store" in r.headers.get("cache-control", ""), path
        loads = re.findall(r'<(?:script|img|link|iframe|source)\b[^>]*\b(?:src|href)="([^"]*)"',
                           r.text)
        assert all(not re.match(r"(?i)(https?:)?//", u) for u in loads), (path, loads)
        # No inline script body (JSON data blocks are data, not script).
        assert not re.search(r'<script\b(?![^>]*\b(?:src=|type="application/json"))[^>]*>'
                             r"\s*[^<\s]", r.text), path


def test_every_form_post_without_its_csrf_token_is_refused_and_writes_nothing(
        admin_client: TestClient, seeded: psycopg.Connection[Any]) -> None:
    before = _counts(seeded)
    for path in POSTS:
        if path == "/console/sign-in":
            continue  # signed in already; its own CSRF test is in test_console.py
        r = admin_client.post(_fill(path), data={"reason": "x", "name": "x"},
                              follow_redirects=False)
        if r.status_code == 422:  # an upload form: give it its file, so the token decides
            r = admin_client.post(_fill(path), data={"reason": "x", "name": "x"},
                                  files={"file": ("x.csv", b"id\n", "text/csv")},
                                  follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
    assert _counts(seeded) == before
