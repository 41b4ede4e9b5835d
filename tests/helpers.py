"""Writing stations straight to the database for tests that need thousands of them."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg

from geo_service.coords import Crs
from geo_service.schemas import StationCreate
from geo_service.stations import queries as q
from geo_service.stations.service import to_record


def insert_stations(conn: psycopg.Connection[Any], bodies: list[dict[str, Any]]) -> None:
    """Validate like the API does, compile hours, insert in one transaction."""
    records = [to_record(StationCreate.model_validate(b).model_dump(), Crs.WGS84) for b in bodies]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(q.INSERT_STATION, records)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(db_url: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``geo-service serve`` in a subprocess on a free port; yields its base URL.

    For clients that need a real socket: schemathesis, GDAL, a browser.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "geo_service", "serve", "--port", str(port),
         "--log-level", "warning"], env={**os.environ, "GEO_DATABASE_URL": db_url, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
