"""Real processes for the fault tests: a throwaway cluster, a killable API, a big import.

Nothing here is mocked. The cluster is a second PostgreSQL server with its
own data directory, so killing it never disturbs the shared test cluster;
it lives under ``tests/artifacts/`` because the unprivileged user that owns
it (we run as root in CI) cannot enter pytest's private ``/tmp`` folders.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from geo_service.infra.localdb import LocalCluster
from tests.helpers import spawn_server, stop_server, wait_healthy

ARTIFACTS = Path(__file__).parent / "artifacts"
IMPORT_HEADER = "code,name,lon,lat,host_type,opening_hours,amenities,status"


def big_import_csv(n: int, prefix: str = "F") -> bytes:
    """``n`` valid stations on a grid over the sample city, ~270 m apart.

    Far enough apart that none is a likely duplicate of another, so the
    import's cost is the write itself.
    """
    lines = [IMPORT_HEADER]
    hours = ("24/7", "Mo-Fr 08:00-18:00", "Mo-Su 06:00-22:00")
    for i in range(n):
        lon = 109.30 + (i % 250) * 0.0025
        lat = 18.20 + (i // 250) * 0.0015
        lines.append(f"{prefix}-{i:06d},压测驿站 {i},{lon:.6f},{lat:.6f},union_built,"
                     f"{hours[i % 3]},microwave;restroom,open")
    return ("\n".join(lines) + "\n").encode()


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[LocalCluster]:
    """A fresh cluster of its own, stopped and deleted afterwards."""
    ARTIFACTS.mkdir(exist_ok=True)
    os.chmod(ARTIFACTS, 0o755)  # the cluster's owner must be able to pass through
    # Short name: the socket path must stay under the 107-byte Unix limit.
    cluster = LocalCluster(ARTIFACTS / f"pgf-{secrets.token_hex(3)}")
    try:
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.stop()
        pid = postmaster_pid(cluster)
        if pid is not None:
            kill_group(pid)
        shutil.rmtree(cluster.root, ignore_errors=True)


def postmaster_pid(cluster: LocalCluster) -> int | None:
    """The pid the running postmaster wrote on the first line of ``postmaster.pid``."""
    try:
        pid = int((cluster.data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (pg_ctl starts the postmaster as a group leader)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.05,
               what: str = "condition") -> float:
    """Poll ``predicate``; returns the seconds it took, fails the test after ``timeout_s``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(step_s)
    return time.monotonic() - start


@contextlib.contextmanager
def api_process(db_url: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``geo-service serve`` in a subprocess; yields its base URL and the process to kill."""
    proc, base, output = spawn_server(db_url)
    try:
        wait_healthy(proc, base, output)
        yield base, proc
    finally:
        stop_server(proc, output)


@dataclass
class Call:
    """An HTTP call made on a thread; ``response`` or ``error`` once it is over."""

    started: float = field(default_factory=time.monotonic)
    response: httpx.Response | None = None
    error: BaseException | None = None
    ended: float | None = None
    done: threading.Event = field(default_factory=threading.Event)


def post_import(base: str, key: str, data: bytes) -> Call:
    """Start ``POST /v1/stations:import`` on a thread and return at once."""
    call = Call()

    def run() -> None:
        try:
            call.response = httpx.post(
                f"{base}/v1/stations:import", files={"file": ("big.csv", data, "text/csv")},
                headers={"Authorization": key}, timeout=300)
        except BaseException as exc:  # the test inspects what happened
            call.error = exc
        finally:
            call.ended = time.monotonic()
            call.done.set()

    threading.Thread(target=run, daemon=True).start()
    return call


UPSERT_RUNNING = """
SELECT a.pid FROM pg_stat_activity a
WHERE a.application_name = 'geo_service' AND a.state = 'active'
  AND position('INSERT INTO station AS s' IN a.query) > 0
"""


def wait_for_upsert(url: str, call: Call, written: int = 1 << 20,
                    timeout_s: float = 120) -> tuple[int, int]:
    """Block until the import has written ``written`` bytes of rows into ``station``.

    The rows are uncommitted, so invisible to others, but the table's file
    grows as they are written. Returns the backend's pid and the bytes on disk.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        pid = 0

        def writing() -> bool:
            nonlocal pid
            assert not call.done.is_set(), f"import ended before it could be interrupted: " \
                f"{call.response.status_code if call.response else call.error}"
            if not pid:
                row = conn.execute(UPSERT_RUNNING).fetchone()
                pid = int(row[0]) if row else 0
            return bool(pid) and size(conn) >= written

        wait_until(writing, timeout_s, 0.01, "the import's upsert")
        return pid, size(conn)


def size(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_relation_size('station')").fetchone()
    assert row is not None
    return int(row[0])


def count_stations(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM station").fetchone()
    assert row is not None
    return int(row[0])
