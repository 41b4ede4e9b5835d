"""A few cheap anonymous requests must not drain the database pool (issue 24, item 2).

Against a real ``geo-service serve`` on the loopback, with the pool shrunk to 4
connections and the limits shrunk by settings (so a few thousand stations
show what a national table would): while each abusive pattern runs,
``/healthz`` and a station read by code must answer 200 within a client
timeout of a few seconds. Statuses are asserted, never latencies.

* concurrent XLSX exports: at most ``export_xlsx_concurrency`` are built at
  once, the others get 429 with ``Retry-After`` and a JSON body;
* clients of the streamed GeoJSON feed that never read: no connection is left
  idle in transaction waiting on their socket (``pg_stat_activity``), and after
  ``client_send_timeout_s`` the server gives up on them;
* clients of OGC items pages that never read: a page is at most
  ``ogc_max_page_bytes``, so twenty of them cost the process little memory.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from openpyxl import load_workbook

from tests.conftest import TABLES, station_body
from tests.helpers import clone_station, insert_stations, spawn_server, stop_server, wait_healthy

pytestmark = pytest.mark.slow

#: More than two of the old 2,000-row batches, so an unread feed stalls mid-stream.
N_CLONES = 5000
CODE = "P-00000"
POOL_MAX = 4
XLSX_CONCURRENCY = 2
SEND_TIMEOUT_S = 2
PAGE_BYTES = 256 * 1024
ENV = {"GEO_POOL_MAX": str(POOL_MAX), "GEO_POOL_MIN": "1",
       "GEO_EXPORT_XLSX_CONCURRENCY": str(XLSX_CONCURRENCY),
       "GEO_CLIENT_SEND_TIMEOUT_S": str(SEND_TIMEOUT_S),
       "GEO_OGC_MAX_PAGE_BYTES": str(PAGE_BYTES), "GEO_NEAREST_INDEX": "off"}
#: The first 20 rows of the clone grid (~1,000 stations): an export of a second or so.
XLSX_BBOX = "109.39,18.19,109.61,18.2585"
#: "A couple of seconds": /healthz itself waits 2 s for a pooled connection.
PROBE_TIMEOUT_S = 3.0
#: Twenty unread ~10 MB pages held whole grew the process by ~70 MB; capped, a few.
MAX_GROWTH_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Served:
    base: str
    port: int
    pid: int
    db_url: str


@pytest.fixture(scope="module")
def served(db_url: str) -> Iterator[Served]:
    """5,001 published stations and a server with a 4-connection pool and small limits."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        insert_stations(conn, [station_body(CODE, 109.40, 18.20)])
        clone_station(conn, CODE, N_CLONES, "Q-")
    proc, base, output = spawn_server(db_url, ENV)
    try:
        wait_healthy(proc, base, output)
        yield Served(base, int(urlsplit(base).port or 0), proc.pid, db_url)
    finally:
        stop_server(proc, output)


def _status(http: httpx.Client, url: str) -> str:
    try:
        return str(http.get(url).status_code)
    except httpx.HTTPError as exc:
        return repr(exc)


def _still_serving(served: Served, rounds: int = 3) -> None:
    """/healthz and a station read (SQL: the memory index is off) answer 200."""
    with httpx.Client(timeout=PROBE_TIMEOUT_S) as http:
        for _ in range(rounds):
            assert _status(http, f"{served.base}/healthz") == "200"
            assert _status(http, f"{served.base}/v1/stations/{CODE}") == "200"
            time.sleep(0.2)


def _stalled(served: Served, path: str) -> socket.socket:
    """A client that sends its request and never reads (a small receive window, so the
    server's buffers fill after a few hundred kB)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect(("127.0.0.1", served.port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n"
              "Connection: close\r\n\r\n".encode())
    return s


def _read_to_end(s: socket.socket) -> bytes:
    out = bytearray()
    while chunk := s.recv(1 << 16):
        out += chunk
    return bytes(out)


def _idle_in_transaction(served: Served) -> list[tuple[Any, ...]]:
    with psycopg.connect(served.db_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, left(query, 60) FROM pg_stat_activity WHERE datname = "
            "current_database() AND application_name = 'geo_service' "
            "AND state LIKE 'idle in transaction%'").fetchall()


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_concurrent_xlsx_exports_are_limited_and_the_pool_stays_free(served: Served) -> None:
    n = 8
    start = threading.Barrier(n + 1)
    results: list[httpx.Response | Exception] = []

    def export() -> None:
        start.wait(30)
        try:
            results.append(httpx.get(f"{served.base}/v1/exports/union.xlsx",
                                     params={"bbox": XLSX_BBOX}, timeout=120))
        except httpx.HTTPError as exc:
            results.append(exc)

    threads = [threading.Thread(target=export) for _ in range(n)]
    for t in threads:
        t.start()
    try:
        start.wait(30)
        time.sleep(0.5)  # the admitted exports are being built
        _still_serving(served)
    finally:
        for t in threads:
            t.join(120)
    assert all(isinstance(r, httpx.Response) for r in results), results
    responses = [r for r in results if isinstance(r, httpx.Response)]
    assert {r.status_code for r in responses} <= {200, 429}, [r.status_code for r in responses]
    ok = [r for r in responses if r.status_code == 200]
    busy = [r for r in responses if r.status_code == 429]
    assert len(ok) >= XLSX_CONCURRENCY and busy, (len(ok), len(busy))
    for r in busy:
        assert r.headers["retry-after"].isdigit() and int(r.headers["retry-after"]) > 0
        assert r.headers["content-type"].startswith("application/json")
        error = r.json()["error"]
        assert error["code"] == "busy" and error["fields"][0]["field"] == "fmt", error
    sheet = load_workbook(io.BytesIO(ok[0].content), read_only=True).worksheets[0]
    assert sum(1 for _ in sheet.iter_rows()) > 900  # the header and the stations in the box


def test_feed_clients_that_never_read_hold_no_connection(served: Served) -> None:
    socks: list[socket.socket] = []
    try:
        for _ in range(10):
            socks.append(_stalled(served, "/v1/feeds/stations.geojson"))
            time.sleep(0.1)
        time.sleep(1.0)  # the streams fill the sockets and wait on them
        for _ in range(3):
            assert _idle_in_transaction(served) == []
            _still_serving(served, rounds=1)
        # Past client_send_timeout_s the server gives up: what a client reads now ends
        # before the body does (no final chunk), and the connection is closed.
        time.sleep(SEND_TIMEOUT_S + 3.0)
        got = _read_to_end(socks[0])
        assert got.startswith(b"HTTP/1.1 200")
        assert not got.endswith(b"0\r\n\r\n"), "the stalled stream ran to its end"
    finally:
        for s in socks:
            s.close()


def test_items_pages_are_capped_in_bytes_and_unread_ones_cost_little(served: Served) -> None:
    items = f"{served.base}/ogc/collections/stations/items"
    with httpx.Client(timeout=30, headers={"Accept-Encoding": "identity"}) as http:
        r = http.get(items, params={"limit": 10_000})
        assert r.status_code == 200 and len(r.content) <= PAGE_BYTES, len(r.content)
        doc = r.json()
        returned = doc["numberReturned"]
        assert 0 < returned == len(doc["features"]) < doc["numberMatched"] == N_CLONES + 1
        nxt = next(link["href"] for link in doc["links"] if link["rel"] == "next")
        assert parse_qs(urlsplit(nxt).query)["offset"] == [str(returned)]
        following = http.get(nxt).json()["features"][0]["id"]
        assert following == f"Q-{returned - 1:05d}"  # the next station by id, none skipped
    before = _rss(served.pid)
    socks: list[socket.socket] = []
    try:
        for i in range(20):
            socks.append(_stalled(served, f"/ogc/collections/stations/items?limit=10000"
                                          f"&offset={i}"))
        time.sleep(1.5)
        _still_serving(served)
        grown = _rss(served.pid) - before
    finally:
        for s in socks:
            s.close()
    assert grown < MAX_GROWTH_BYTES, f"{grown / 2**20:.0f} MiB for 20 unread pages"
