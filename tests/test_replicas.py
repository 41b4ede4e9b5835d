"""Read replicas against real processes: a throwaway primary and a hot standby of it
(``LocalCluster.make_standby``: ``pg_basebackup -R``, streaming replication), never the
shared test cluster, because these tests pause, kill -9 and promote.

Which database answered is read from ``X-Served-By`` (``served_by_header`` on) and, once,
from the standby's own ``pg_stat_activity``.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.domain.auth import create_key
from geo_service.infra.db import migrate
from geo_service.infra.localdb import LocalCluster, LocalDbError
from geo_service.infra.settings import Settings
from geo_service.sample.seed import load_admin_areas
from geo_service.web.app import create_app
from tests.conftest import SEED, station_body
from tests.helpers import insert_stations, random_station_write
from tests.test_feeds_changes import Replica as FeedConsumer

pytestmark = [pytest.mark.db, pytest.mark.slow]

TIANYA = (109.50, 18.25)
NEAREST = {"lat": TIANYA[1], "lon": TIANYA[0], "k": 3}


@dataclass
class Pair:
    """A primary and its streaming standby, each with its own folder and socket."""

    primary: LocalCluster
    standby: LocalCluster
    editor: str

    def primary_conn(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.primary.url, autocommit=True)

    def standby_conn(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.standby.url, autocommit=True)


def _kill9(cluster: LocalCluster) -> None:
    pid = cluster.postmaster_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # gone once the pid cannot be signalled
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("postmaster survived kill -9")


def _restart(cluster: LocalCluster) -> None:
    """Start after a kill -9: its orphaned backends may hold the old shared memory for a
    moment, and the start is refused until they have exited."""
    deadline = time.monotonic() + 30
    while True:
        try:
            cluster.start()
            return
        except LocalDbError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _wait(what: str, check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _caught_up(pair: Pair) -> bool:
    with pair.primary_conn() as p, pair.standby_conn() as s:
        (lsn,) = p.execute("SELECT pg_current_wal_lsn()::text").fetchone()  # type: ignore[misc]
        row = s.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()
        return bool(row and row[0])


@contextlib.contextmanager
def _pair(name: str) -> Iterator[Pair]:
    """A migrated primary with admin areas and an editor key, and a running standby."""
    root = Path(tempfile.mkdtemp(prefix=f"geo-{name}-"))
    root.chmod(0o755)  # the clusters' unprivileged owner must reach its folders inside
    primary = LocalCluster(root / "primary", shared_buffers="64MB")
    standby: LocalCluster | None = None
    try:
        primary.start()
        migrate(primary.url)
        with psycopg.connect(primary.url, autocommit=True) as conn:
            load_admin_areas(conn, SEED / "admin_areas.geojson")
            editor = f"Bearer {create_key(conn, name='editor', role='editor')}"
        standby = primary.make_standby(root / "standby", name="standby1")
        standby.start()
        pair = Pair(primary, standby, editor)
        _wait("the standby to catch up", lambda: _caught_up(pair))
        yield pair
    finally:
        for cluster in (standby, primary):
            if cluster is not None:
                pid = cluster.postmaster_pid()
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGQUIT)  # immediate shutdown
        time.sleep(0.5)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with _pair("replicas") as p:
        yield p


def _client(pair: Pair, **over: Any) -> TestClient:
    values: dict[str, Any] = {"database_url": pair.primary.url,
                              "read_database_urls": [pair.standby.url],
                              "served_by_header": True, "replica_check_interval_s": 0.2,
                              # Which database answers is the question here: nearest
                              # from the process's own index would answer from neither.
                              "nearest_index": "off",
                              "allowed_hosts": ["testserver"], **over}
    settings = Settings(**values)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _served(r: Any) -> str:
    assert r.status_code < 500, r.text
    return str(r.headers.get("x-served-by"))


def _create(client: TestClient, pair: Pair, code: str) -> int:
    r = client.post("/v1/stations", json=station_body(code, *TIANYA),
                    headers={"Authorization": pair.editor})
    assert r.status_code == 201, r.text
    return int(r.headers["x-change-seq"])


def test_reads_land_on_the_standby_and_writes_on_the_primary(pair: Pair) -> None:
    with _client(pair) as client:
        seq = _create(client, pair, "R-0001")
        _wait("the write to reach the standby", lambda: _caught_up(pair))
        with pair.primary_conn() as p:
            assert p.execute("SELECT max(change_seq) FROM station").fetchone() == (seq,)
        for path, params in [("/v1/stations/nearest", NEAREST), ("/v1/stations", {}),
                             ("/v1/stations/R-0001", {}), ("/v1/feeds/changes", {}),
                             ("/v1/feeds/stations.geojson", {}), ("/v1/amenities", {})]:
            r = client.get(path, params=params)
            assert r.status_code == 200, (path, r.text)
            assert r.headers["x-served-by"] == "replica-1", path
        assert client.get("/v1/stations/nearest", params=NEAREST).json()["count"] == 1
        # The standby's own view: the app's pooled sessions are connected to it.
        with pair.standby_conn() as s:
            (n,) = s.execute("SELECT count(*) FROM pg_stat_activity WHERE "  # type: ignore[misc]
                             "application_name = 'geo_service'").fetchone()
        assert n >= 1
        health = client.get("/healthz").json()
        by_name = {d["name"]: d for d in health["databases"]}
        assert by_name["primary"]["role"] == "primary" and by_name["primary"]["reachable"]
        rep = by_name["replica-1"]
        assert rep["role"] == "replica" and rep["reachable"] and rep["serving_reads"]
        assert rep["in_recovery"] is True and rep["lag_s"] is not None
        assert pair.standby.url not in str(health) and "host" not in str(health)
        # Every station write says where the feed stands after it; a refused one does not.
        r = client.patch("/v1/stations/R-0001", json={"name": "改名"},
                         headers={"Authorization": pair.editor, "If-Match": '"1"'})
        assert r.status_code == 200, r.text
        assert int(r.headers["x-change-seq"]) == seq + 1
        r = client.patch("/v1/stations/R-0001", json={"name": "再改"},
                         headers={"Authorization": pair.editor, "If-Match": '"1"'})
        assert r.status_code == 412 and "x-change-seq" not in r.headers


def test_min_change_seq_is_validated(pair: Pair) -> None:
    with _client(pair) as client:
        for bad in ("-1", "x", "1.5", "", "1" * 19):
            r = client.get("/v1/stations/nearest", params=NEAREST,
                           headers={"X-Min-Change-Seq": bad})
            assert r.status_code == 422, r.text
            assert "X-Min-Change-Seq" in r.text
    schema = create_app(Settings(database_url=pair.primary.url)).openapi()
    params = schema["paths"]["/v1/stations/nearest"]["get"]["parameters"]
    header = next(p for p in params if p["name"] == "X-Min-Change-Seq")
    assert header["in"] == "header" and header["schema"]["pattern"] == "^[0-9]{1,18}$"
    post_params = schema["paths"]["/v1/stations"]["post"].get("parameters", [])
    assert all(p["name"] != "X-Min-Change-Seq" for p in post_params)


def test_read_your_writes_while_replay_is_paused(pair: Pair) -> None:
    with _client(pair, max_replica_lag_s=60) as client, pair.standby_conn() as s:
        s.execute("SELECT pg_wal_replay_pause()")
        try:
            seq = _create(client, pair, "R-0002")
            # Without the token the (paused, but within the lag limit) standby answers:
            # it has not seen the station yet.
            r = client.get("/v1/stations/R-0002")
            assert (r.status_code, _served(r)) == (404, "replica-1")
            # With it, the primary answers, and the station is there.
            token = {"X-Min-Change-Seq": str(seq)}
            r = client.get("/v1/stations/R-0002", headers=token)
            assert (r.status_code, _served(r)) == (200, "primary")
            r = client.get("/v1/stations/nearest", params=NEAREST, headers=token)
            assert _served(r) == "primary"
            assert "R-0002" in [x["code"] for x in r.json()["results"]]
            # An older token is satisfied by the standby.
            r = client.get("/v1/stations/nearest", params=NEAREST,
                           headers={"X-Min-Change-Seq": str(seq - 1)})
            assert _served(r) == "replica-1"
        finally:
            s.execute("SELECT pg_wal_replay_resume()")
        _wait("the standby to replay the write", lambda: _served(
            client.get("/v1/stations/R-0002", headers={"X-Min-Change-Seq": str(seq)}))
            == "replica-1")
        assert client.get("/v1/stations/R-0002").status_code == 200


def test_a_standby_behind_the_limit_is_skipped_until_it_catches_up(pair: Pair) -> None:
    with _client(pair, max_replica_lag_s=1.0) as client, pair.standby_conn() as s:
        assert _served(client.get("/v1/stations/nearest", params=NEAREST)) == "replica-1"
        s.execute("SELECT pg_wal_replay_pause()")
        try:
            _create(client, pair, "R-0003")
            written = time.monotonic()
            _wait("the lag to pass the limit", lambda: _served(
                client.get("/v1/stations/nearest", params=NEAREST)) == "primary", 10)
            moved_s = time.monotonic() - written
            health = {d["name"]: d for d in client.get("/healthz").json()["databases"]}
            rep = health["replica-1"]
            assert rep["replay_paused"] is True and rep["serving_reads"] is False
            assert rep["lag_s"] > 1.0 and rep["lag_bytes"] > 0
            codes = [x["code"] for x in
                     client.get("/v1/stations/nearest", params=NEAREST).json()["results"]]
            assert "R-0003" in codes
        finally:
            s.execute("SELECT pg_wal_replay_resume()")
        resumed = time.monotonic()
        _wait("the standby to serve again", lambda: _served(
            client.get("/v1/stations/nearest", params=NEAREST)) == "replica-1", 10)
    print(f"\n[replicas] limit 1 s: reads left the paused standby {moved_s:.2f} s after the "
          f"write, came back {time.monotonic() - resumed:.2f} s after replay resumed")


def test_kill_9_of_the_standby_falls_back_then_returns(pair: Pair) -> None:
    # One app whose monitor will not notice in time (a read meets the dead standby
    # mid-request and is run again on the primary), one that checks every 0.2 s.
    with _client(pair, replica_check_interval_s=3600) as blind, _client(pair) as watching:
        for c in (blind, watching):
            assert _served(c.get("/v1/stations/nearest", params=NEAREST)) == "replica-1"
        _kill9(pair.standby)
        try:
            r = blind.get("/v1/stations/nearest", params=NEAREST)
            assert (r.status_code, _served(r)) == (200, "primary")
            statuses, served = [], set()
            until = time.monotonic() + 1.5
            while time.monotonic() < until:
                for path, params in [("/v1/stations/nearest", NEAREST), ("/v1/stations", {}),
                                     ("/v1/feeds/changes", {}), ("/maps/stations.html", {})]:
                    r = watching.get(path, params=params)
                    statuses.append(r.status_code)
                    served.add(_served(r))
            assert set(statuses) == {200} and served == {"primary"}, (statuses, served)
            health = {d["name"]: d for d in watching.get("/healthz").json()["databases"]}
            assert health["replica-1"]["reachable"] is False
        finally:
            _restart(pair.standby)
        restarted = time.monotonic()
        _wait("reads to return to the standby", lambda: _served(
            watching.get("/v1/stations/nearest", params=NEAREST)) == "replica-1")
        print(f"\n[replicas] standby kill -9: {len(statuses)} reads in 1.5 s, all 200 from the "
              f"primary; back on the standby {time.monotonic() - restarted:.2f} s after its "
              "restart")
        r = watching.get("/maps/stations.html")
        assert (r.status_code, _served(r)) == (200, "replica-1")


def _bodies(n: int) -> list[dict[str, Any]]:
    rnd = random.Random(n)
    return [station_body(f"C-{i:04d}", 109.4 + rnd.random() * 0.2, 18.2 + rnd.random() * 0.1)
            for i in range(n)]


def test_change_feed_paged_from_the_standby_is_lossless(pair: Pair) -> None:
    """tests/test_feeds_changes.py's racing writers, with the consumer on the standby."""
    with pair.primary_conn() as p:
        insert_stations(p, _bodies(40))
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            with psycopg.connect(pair.primary.url) as conn:
                for i in range(80):
                    random_station_write(conn, rnd, f"w{seed}-{i}", 40,
                                         station_body(f"N-{seed}-{i}", *TIANYA))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    served: list[str] = []
    with _client(pair, max_replica_lag_s=30) as client:
        real_get = client.get

        def get(*a: Any, **kw: Any) -> Any:
            r = real_get(*a, **kw)
            served.append(_served(r))
            return r

        client.get = get
        consumer = FeedConsumer()
        threads = [threading.Thread(target=writer, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        pulls = 0
        while any(t.is_alive() for t in threads):
            consumer.pull(client, limit=5)
            pulls += 1
        for t in threads:
            t.join()
        assert not errors, errors
        _wait("the standby to catch up", lambda: _caught_up(pair))
        consumer.pull(client, limit=5)
    assert pulls > 3 and set(served) == {"replica-1"}, (pulls, set(served))
    with pair.primary_conn() as p:
        published = {r[0]: (r[1], r[2]) for r in p.execute(
            "SELECT code, version, name FROM station "
            "WHERE status IN ('open', 'temporarily_closed')").fetchall()}
    expected = {c: v for c, v in published.items() if c.startswith(("C-", "N-"))}
    assert {c: v for c, v in consumer.rows.items() if c.startswith(("C-", "N-"))} == expected
    assert all(a < b for a, b in zip(consumer.seqs, consumer.seqs[1:], strict=False))
    print(f"\n[replicas] change feed from the standby: {pulls} pulls, {len(served)} pages, "
          f"{len(consumer.seqs)} entries, 240 racing writes, every page from replica-1")


def test_acknowledged_write_survives_kill_9_of_the_primary_and_promotion() -> None:
    """Synchronous replication with remote_apply: once the API answered 201, the standby
    has applied the write, so promoting it after the primary's kill -9 loses nothing."""
    with _pair("failover") as pair:
        with pair.primary_conn() as p:
            p.execute("ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
            p.execute("ALTER SYSTEM SET synchronous_commit = 'remote_apply'")
            p.execute("SELECT pg_reload_conf()")
            _wait("the standby to be synchronous", lambda: p.execute(
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = "
                "'standby1'").fetchone() == ("sync",))
        codes = [f"F-{i:03d}" for i in range(20)]
        with _client(pair) as client:
            # remote_apply at work: with the standby's replay paused, a write is not
            # acknowledged; it is the moment replay resumes.
            done: list[int] = []
            with pair.standby_conn() as s:
                s.execute("SELECT pg_wal_replay_pause()")
                held = threading.Thread(target=lambda: done.append(_create(client, pair, "F-held")))
                held.start()
                held.join(1.0)
                assert held.is_alive() and not done
                s.execute("SELECT pg_wal_replay_resume()")
            held.join(10)
            assert len(done) == 1
            codes.append("F-held")
            for code in codes[:-1]:
                _create(client, pair, code)
            _kill9(pair.primary)  # at once: no time for anything to trickle over
        promoting = time.monotonic()
        pair.standby.promote()
        promote_s = time.monotonic() - promoting
        with pair.standby_conn() as s:
            assert s.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            got = {r[0] for r in s.execute("SELECT code FROM station").fetchall()}
        assert set(codes) <= got
        # The failover procedure: the promoted standby becomes GEO_DATABASE_URL.
        settings = Settings(database_url=pair.standby.url, allowed_hosts=["testserver"])
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            assert client.get(f"/v1/stations/{codes[-1]}").status_code == 200
            seq = _create(client, pair, "F-after")
            assert seq > 0
    print(f"\n[replicas] remote_apply: {len(codes)} acknowledged writes, primary kill -9, "
          f"promote took {promote_s:.2f} s, all {len(codes)} on the promoted standby")
