"""Recording a key's use never holds a lock across a request (issue 24, item 3).

A threaded route ran its whole request in one transaction, and the key's
``last_used_at`` update was part of it: the key's row stayed locked until the
route returned. Every other request with the same key queued on that row while
holding a pooled connection, so a long coverage run plus ten ``GET /v1/reports``
drained the pool: anonymous reads answered 503, then the key's own requests did
(``QueryCanceled … updating tuple in relation "api_key"``).

Against a real ``geo-service serve``: the test makes the coverage run long by
holding a lock on ``demand_point`` (which the run reads right after
authenticating), so no minutes of CPU are needed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import psycopg
import pytest

from geo_service.domain.auth import issue_key
from tests.conftest import station_body
from tests.helpers import insert_stations, live_server

#: What the test waits for a server-side state before failing (a busy 2-core machine).
WAIT_S = 30.0
#: Reads that must still answer while the key is busy: a short client timeout, a status.
CLIENT_TIMEOUT_S = 4.0


def _until(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> Any:
    """Poll ``sql`` until its first column is truthy; the row, or fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        row = conn.execute(sql, params).fetchone()
        if row and row[0]:
            return row
        time.sleep(0.05)
    pytest.fail(f"never true within {WAIT_S} s: {sql}")


_BLOCKED_RUN = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%%demand_point%%'
"""
_WAITING_ON_KEY = """
SELECT count(*) >= %s FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%%api_key%%'
"""


def test_a_key_busy_on_a_long_threaded_route_blocks_nobody(
        db: psycopg.Connection[Any], areas: psycopg.Connection[Any], db_url: str) -> None:
    insert_stations(areas, [station_body("USE-1", 109.50, 18.25)])
    token, key = issue_key(areas, name="busy editor", role="editor")
    auth = {"Authorization": f"Bearer {token}"}
    results: dict[str, Any] = {}

    with live_server(db_url) as base, psycopg.connect(db_url) as holder:
        holder.execute("LOCK TABLE demand_point IN ACCESS EXCLUSIVE MODE")

        def run() -> None:
            with httpx.Client(timeout=120) as http:
                results["run"] = http.post(f"{base}/v1/analysis/coverage",
                                           json={"area": "460200"}, headers=auth).status_code

        runner = threading.Thread(target=run)
        runner.start()
        try:
            # The run authenticated and now waits on the table the test holds.
            (pid,) = _until(db, _BLOCKED_RUN, ())
            # Its use is on record already, and it holds nothing on api_key.
            used = db.execute("SELECT last_used_at FROM api_key WHERE id = %s",
                              (key["id"],)).fetchone()
            assert used is not None and used[0] is not None
            held = db.execute("SELECT count(*) FROM pg_locks WHERE pid = %s "
                              "AND relation = 'api_key'::regclass", (pid,)).fetchone()
            assert held == (0,)

            statuses: list[int | str] = []

            def own_read() -> None:
                try:
                    with httpx.Client(timeout=30) as http:
                        statuses.append(http.get(f"{base}/v1/reports",
                                                 headers=auth).status_code)
                except httpx.HTTPError as exc:
                    statuses.append(repr(exc))

            readers = [threading.Thread(target=own_read) for _ in range(10)]
            for t in readers:
                t.start()
            # Either all ten answered, or eight of them queue on the key's row: the
            # pool is then drained, which is what the reads below would meet.
            deadline = time.monotonic() + WAIT_S
            while len(statuses) < 10 and time.monotonic() < deadline:
                if db.execute(_WAITING_ON_KEY, (8,)).fetchone() == (True,):
                    break
                time.sleep(0.05)
            with httpx.Client(timeout=CLIENT_TIMEOUT_S) as http:
                for _ in range(3):
                    assert http.get(f"{base}/healthz").status_code == 200
                    assert http.get(f"{base}/v1/stations/USE-1").status_code == 200
            for t in readers:
                t.join(60)
            assert statuses == [200] * 10
        finally:
            holder.rollback()
            runner.join(60)
    # Released, the run goes on (no demand here: coverage of area) and ends: never a 503.
    assert results["run"] == 200
