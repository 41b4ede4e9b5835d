"""A write is committed before its answer leaves: a client that reads right after a 201
(or after following a 303 to the page that shows the result) must find it.

FastAPI ends a dependency with ``yield`` after the response is sent unless it is declared
with ``scope="function"``; the request's connection commits when its dependency ends, so
by default the answer could reach the client before the commit. Here the app is called
as ASGI directly and, at the moment the answer's last byte is sent, another connection
looks for the row. (Found by the planner's walk in Chromium: the redirect after a
coverage run was followed before the run was committed — "no analysis run 1".)
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from tests.conftest import station_body


def _visible_when_answered(client: TestClient, db_url: str, method: str, path: str,
                           headers: dict[str, str], body: dict[str, Any],
                           sql: str) -> tuple[int, bool]:
    """(status, whether ``sql`` found a row when the answer's last byte was sent)."""
    raw = json.dumps(body).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("testserver", 80),
             "client": ("127.0.0.1", 50000),
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(raw)).encode()),
                         *((k.lower().encode(), v.encode()) for k, v in headers.items())]}
    sent = [False]
    seen: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        if sent[0]:
            return {"type": "http.disconnect"}
        sent[0] = True
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            with psycopg.connect(db_url) as other:
                seen["visible"] = other.execute(sql).fetchone() is not None

    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    return seen["status"], seen["visible"]


def test_a_created_station_is_committed_before_the_201(
        client: TestClient, keys: dict[str, str], db_url: str) -> None:
    status, visible = _visible_when_answered(
        client, db_url, "POST", "/v1/stations", {"authorization": keys["editor"]},
        station_body("COMMIT-1", 109.5, 18.25), "SELECT 1 FROM station WHERE code = 'COMMIT-1'")
    assert status == 201 and visible


def test_a_coverage_run_is_committed_before_its_answer(
        client: TestClient, keys: dict[str, str], db_url: str,
        areas: psycopg.Connection[Any]) -> None:
    """A sync route (worker thread, the sync pool's connection)."""
    r = client.post("/v1/stations", headers={"Authorization": keys["editor"]},
                    json=station_body("COMMIT-2", 109.5, 18.25))
    assert r.status_code == 201, r.text
    status, visible = _visible_when_answered(
        client, db_url, "POST", "/v1/analysis/coverage", {"authorization": keys["editor"]},
        {"area": "460204", "threshold_m": 1000}, "SELECT 1 FROM analysis_run")
    assert status == 200 and visible
