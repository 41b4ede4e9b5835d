"""``geo-service serve --workers 2`` and its SIGTERM drain, with real processes and sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import station_body
from tests.helpers import free_port, insert_stations, wait_healthy

N_STATIONS = 1500
#: Bound on the drain: the slow streams take ~3 s, the default graceful timeout is 30 s.
EXIT_WITHIN_S = 30.0


def _slow_read(base: str, out: dict[str, Any], started: threading.Event) -> None:
    """Read the GeoJSON feed ~40 kB at a time with pauses: a response in flight for seconds."""
    try:
        with httpx.Client(timeout=60) as c, c.stream("GET", f"{base}/v1/feeds/stations.geojson",
                                                     headers={"Connection": "close",
                                                              "Accept-Encoding": "identity"}) as r:
            out["status"] = r.status_code
            body = bytearray()
            for chunk in r.iter_raw(40_000):
                body += chunk
                started.set()
                time.sleep(0.02)
            out["features"] = len(json.loads(bytes(body))["features"])
    except Exception as exc:  # recorded, asserted on below
        out["error"] = repr(exc)
    finally:
        started.set()


def _short_requests(base: str, stop: threading.Event, log: list[tuple[float, str]]) -> None:
    """Nearest queries back to back, each on a new connection, until told to stop."""
    while not stop.is_set():
        t = time.monotonic()
        try:
            r = httpx.get(f"{base}/v1/stations/nearest",
                          params={"lat": 18.25, "lon": 109.5, "k": 5}, timeout=30)
            outcome = str(r.status_code)
        except httpx.ConnectError as exc:
            # Refused: nobody listens any more (not a request in flight).
            outcome = "refused" if "refused" in str(exc).lower() else f"connect: {exc!r}"
            time.sleep(0.05)
        except httpx.HTTPError as exc:
            outcome = f"error: {exc!r}"
        log.append((t, outcome))


@pytest.mark.slow
def test_sigterm_drains_two_workers(db_url: str, db: psycopg.Connection[Any]) -> None:
    t0 = time.monotonic()
    insert_stations(db, [station_body(f"W-{i:05d}", 109.40 + (i % 50) * 0.004,
                                      18.20 + (i // 50) * 0.003) for i in range(N_STATIONS)])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    output = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "geo_service", "serve", "--port", str(port), "--workers", "2",
         "--log-level", "info"], env={**os.environ, "GEO_DATABASE_URL": db_url},
        stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(proc, base, output, timeout_s=90)
        print(f"inserted and started in {time.monotonic() - t0:.1f} s")
        # Both workers answer (a request per worker pid would need a debug header; the
        # supervisor's children are counted instead).
        children = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "spawn_main"],
                                  capture_output=True, text=True).stdout.split()
        assert len(children) == 2, children

        stop = threading.Event()
        log: list[tuple[float, str]] = []
        shorts = [threading.Thread(target=_short_requests, args=(base, stop, log))
                  for _ in range(4)]
        for t in shorts:
            t.start()
        streams: list[dict[str, Any]] = [{} for _ in range(3)]
        started = [threading.Event() for _ in streams]
        readers = [threading.Thread(target=_slow_read, args=(base, out, ev))
                   for out, ev in zip(streams, started, strict=True)]
        for t in readers:
            t.start()
        for ev in started:
            assert ev.wait(30)
        time.sleep(0.3)

        term_at = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)  # the supervisor only, as docker stop does
        rc = proc.wait(EXIT_WITHIN_S)
        exit_s = time.monotonic() - term_at
        stop.set()
        for t in [*shorts, *readers]:
            t.join(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        output.seek(0)
        sys.stderr.write(output.read().decode("utf-8", "replace"))
        output.close()

    assert rc == 0, f"exit status {rc}"
    assert exit_s < EXIT_WITHIN_S
    for out in streams:  # in flight at SIGTERM: finished, whole
        assert out.get("status") == 200 and out.get("features") == N_STATIONS, out
    # Every request got its answer, or found the port closed (it was never accepted).
    bad = [o for _, o in log if o not in ("200", "refused")]
    assert not bad, f"{bad[:5]} ({len(bad)} of {len(log)})"
    assert sum(o == "200" for t, o in log if t < term_at) > 10
    refused = [t for t, o in log if o == "refused"]
    assert refused, "the port should refuse connections once drained"
    assert min(refused) > term_at - 1.0, "refused before SIGTERM"
    print(f"drain: exit {exit_s:.1f} s after SIGTERM; {len(log)} short requests, "
          f"{sum(o == '200' for _, o in log)} answered, {len(refused)} refused")
