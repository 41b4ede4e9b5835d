"""The service behind a real PgBouncer (Debian's 1.18) in transaction pooling mode.

A pooler of its own per module, in front of the session's cluster, with few
server connections so that the API's client connections share them: what
production does to a connection between two transactions happens here too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
import time
import warnings
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict

from geo_service.infra.localdb import LocalCluster
from geo_service.infra.pgbouncer import PGBOUNCER, LocalPgBouncer
from geo_service.infra.settings import Settings
from geo_service.web.app import create_app, create_served_app
from tests.conftest import station_body
from tests.faults_support import ARTIFACTS, big_import_csv

pytestmark = pytest.mark.skipif(not PGBOUNCER.exists(), reason="Debian's pgbouncer is missing")


@pytest.fixture(scope="module")
def pooler(server_url: str) -> Iterator[LocalPgBouncer]:
    if Settings().database_url:
        pytest.skip("the test pooler fronts the project-local cluster")
    ARTIFACTS.mkdir(exist_ok=True)
    os.chmod(ARTIFACTS, 0o755)  # the pooler's owner must be able to pass through
    # Two server connections for the API's three or more client connections.
    bouncer = LocalPgBouncer(ARTIFACTS / f"pgb-{secrets.token_hex(3)}", LocalCluster.default(),
                             pool_size=2)
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(bouncer.root, ignore_errors=True)


@pytest.fixture(autouse=True)
def _pooler_alive(request: pytest.FixtureRequest) -> None:
    """Each test starts with the module's pooler running. Once in CI (a busy clean-clone
    run, not reproduced alone) it was gone before the last test, its socket removed as a
    clean shutdown does; its log went with its folder. Now its log is kept in
    ``tests/artifacts/pgbouncer-gone.log``, the run is warned, and the pooler started
    again, so the tests below still test the pooler rather than its absence."""
    if "pooler" not in request.fixturenames:
        return
    pooler: LocalPgBouncer = request.getfixturevalue("pooler")
    if pooler.pid() is not None:
        return
    kept = ARTIFACTS / "pgbouncer-gone.log"
    if pooler.logfile.exists():
        shutil.copyfile(pooler.logfile, kept)
    warnings.warn(f"the test pooler had stopped before {request.node.name}; its log is in "
                  f"{kept}; started again", stacklevel=1)
    pooler.start()


def _dbname(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


def _transactions(pooler: LocalPgBouncer, dbname: str) -> int:
    """Transactions the pooler has passed to ``dbname`` (its admin console's SHOW STATS)."""
    with psycopg.connect(pooler.url("pgbouncer"), autocommit=True,
                         cursor_factory=psycopg.ClientCursor) as admin:
        cur = admin.execute("SHOW STATS")
        names = [d.name for d in cur.description or []]
        for row in cur.fetchall():
            stats = dict(zip(names, row, strict=True))
            if stats["database"] == dbname:
                return int(stats["total_xact_count"])
    return 0


def test_prepared_statements_break_through_this_pooler(pooler: LocalPgBouncer,
                                                       db_url: str) -> None:
    """Why the service prepares nothing here: two clients preparing the same query
    through transaction pooling collide on one server connection."""
    url = pooler.url(_dbname(db_url))
    errors = []
    with psycopg.connect(url, autocommit=True, prepare_threshold=0) as a, \
            psycopg.connect(url, autocommit=True, prepare_threshold=0) as b:
        for _ in range(3):
            for conn in (a, b):
                try:
                    conn.execute("SELECT 1 + %s::int", (1,)).fetchone()
                except (psycopg.errors.DuplicatePreparedStatement,
                        psycopg.errors.InvalidSqlStatementName) as exc:
                    errors.append(type(exc).__name__)
    assert errors, "expected prepared statements to collide through transaction pooling"
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as a, \
            psycopg.connect(url, autocommit=True, prepare_threshold=None) as b:
        for _ in range(3):
            for conn in (a, b):
                assert conn.execute("SELECT 1 + %s::int", (1,)).fetchone() == (2,)


@pytest.fixture
def pooled_client(pooler: LocalPgBouncer, db_url: str,
                  db: psycopg.Connection[Any]) -> Iterator[TestClient]:
    settings = Settings(database_url=pooler.url(_dbname(db_url)), db_pgbouncer=True,
                        allowed_hosts=["testserver"], pool_min=3, pool_max=4)
    with TestClient(create_app(settings), raise_server_exceptions=False,
                    client=("127.0.0.1", 50000)) as c:
        yield c


def test_the_api_works_through_pgbouncer(pooler: LocalPgBouncer, pooled_client: TestClient,
                                         keys: dict[str, str], db_url: str) -> None:
    """Write, read, import, change-feed paging and streamed exports, all through the
    pooler; each kind of call repeated past psycopg's prepare threshold (5)."""
    client, admin = pooled_client, {"Authorization": keys["admin"]}
    before = _transactions(pooler, _dbname(db_url))

    for i in range(8):  # writes: advisory xact locks, set_config(..., true), audit
        r = client.post("/v1/stations", json=station_body(f"PB-{i:02d}", 109.50 + i * 0.01,
                                                          18.25), headers=admin)
        assert r.status_code == 201, r.text
    r = client.patch("/v1/stations/PB-00", json={"name": "改名驿站", "version": 1},
                     headers=admin)
    assert r.status_code == 200, r.text
    for _ in range(8):  # reads: the nearest query prepare=True asks for
        r = client.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5, "k": 3})
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["code"] == "PB-00"
    assert client.get("/v1/stations/PB-03").status_code == 200

    for attempt in range(2):  # import: ON COMMIT DROP temp tables, COPY; then idempotent
        r = client.post("/v1/stations:import", headers=admin,
                        files={"file": ("big.csv", big_import_csv(300, prefix="PBI"))})
        assert r.status_code == 200, r.text
        assert r.json()["created"] == (300 if attempt == 0 else 0), r.json()

    seen: list[int] = []  # change feed, paged 50 at a time
    params: dict[str, Any] = {"limit": 50}
    while True:
        page = client.get("/v1/feeds/changes", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [e["seq"] for e in body["changes"]]
        if not body["has_more"]:
            break
        params["since"] = body["next_cursor"]
    assert len(seen) == len(set(seen)) >= 308 and seen == sorted(seen)

    for _ in range(2):  # the GeoJSON feed: keyset batches, one short statement each
        with client.stream("GET", "/v1/feeds/stations.geojson") as r:
            assert r.status_code == 200
            feed = json.loads(b"".join(r.iter_bytes()))
        assert len(feed["features"]) == 308
    r = client.get("/v1/exports/generic.csv")  # the streamed CSV export
    assert r.status_code == 200, r.text
    assert len(list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))) == 1 + 308
    assert client.get("/healthz").status_code == 200

    # It all went through the pooler (not around it), in many short transactions.
    assert _transactions(pooler, _dbname(db_url)) - before > 50


def test_pgbouncer_mode_sends_no_options_and_prepares_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from geo_service.infra.db import connect_kwargs

    direct = connect_kwargs(Settings(database_url="postgresql:///x"))
    assert direct["prepare_threshold"] == 5 and "plan_cache_mode" in str(direct["options"])
    pooled = connect_kwargs(Settings(database_url="postgresql:///x", db_pgbouncer=True,
                                     db_prepare_threshold=0))
    assert pooled["prepare_threshold"] is None and "options" not in pooled
    monkeypatch.setenv("GEO_DB_PREPARE_THRESHOLD", "none")
    assert connect_kwargs(Settings())["prepare_threshold"] is None
    monkeypatch.setenv("GEO_DB_PGBOUNCER", "1")
    monkeypatch.setenv("GEO_DB_PREPARE_THRESHOLD", "3")
    assert Settings().prepare_threshold() is None


def _pooled_settings(pooler: LocalPgBouncer, db_url: str, **over: Any) -> Settings:
    return Settings(database_url=pooler.url(_dbname(db_url)), db_pgbouncer=True,
                    allowed_hosts=["testserver"], pool_min=2, pool_max=4, nearest_index="on",
                    **over)


def _nearest(client: TestClient) -> Any:
    return client.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5, "k": 3})


def test_the_memory_index_follows_edits_behind_pgbouncer(pooler: LocalPgBouncer, db_url: str,
                                                         db: psycopg.Connection[Any],
                                                         keys: dict[str, str]) -> None:
    """Requests go through the transaction pooler; the index listens on its own direct
    connection (GEO_NEAREST_INDEX_DATABASE_URL): nearest is answered from memory, and an
    edit made through the API (so through the pooler) is in its answer soon after."""
    admin = {"Authorization": keys["admin"]}
    # A wide lag bound: a stall of this busy machine must not be what sends nearest to SQL.
    settings = _pooled_settings(pooler, db_url, nearest_index_database_url=db_url,
                                nearest_index_max_lag_s=30)
    with TestClient(create_served_app(settings), client=("127.0.0.1", 50000)) as client:
        r = client.post("/v1/stations", json=station_body("PBM-1", 109.5, 18.25), headers=admin)
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 30  # the index loads in the background
        while (r := _nearest(client)).headers["X-Nearest-Source"] != "memory":
            assert time.monotonic() < deadline, client.get("/healthz").json()
            time.sleep(0.05)
        assert r.json()["results"][0]["code"] == "PBM-1"
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and health["nearest_index"]["state"] == "ready"

        r = client.patch("/v1/stations/PBM-1", json={"name": "改名驿站", "version": 1},
                         headers=admin)
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 2.0
        seen = []
        while True:
            r = _nearest(client)
            seen.append((r.headers["X-Nearest-Source"], r.json()["results"][0]["name"]))
            if seen[-1] == ("memory", "改名驿站"):
                break
            assert time.monotonic() < deadline, seen[-5:]
            time.sleep(0.02)


def test_healthz_is_degraded_while_the_index_cannot_follow(pooler: LocalPgBouncer,
                                                           db_url: str,
                                                           db: psycopg.Connection[Any]) -> None:
    """Behind PgBouncer with no direct connection for the index, or with one that cannot
    connect, nearest still answers (from SQL) and /healthz says so: 200, "degraded"."""
    nowhere = "postgresql://geo@/geo?host=/nonexistent-socket-dir&connect_timeout=2"
    for over, why in (({}, "GEO_NEAREST_INDEX_DATABASE_URL"),
                      ({"nearest_index_database_url": nowhere}, "")):
        with TestClient(create_app(_pooled_settings(pooler, db_url, **over)),
                        client=("127.0.0.1", 50000)) as client:
            deadline = time.monotonic() + 10
            while (r := client.get("/healthz")).json()["nearest_index"]["state"] in (
                    "loading",):
                assert time.monotonic() < deadline, r.json()
                time.sleep(0.05)
            body = r.json()
            assert r.status_code == 200 and body["status"] == "degraded", body
            assert body["database"] == "online"
            assert body["nearest_index"]["state"] not in ("ready", "off"), body
            assert why in (body["nearest_index"]["error"] or ""), body
            r = _nearest(client)
            assert r.status_code == 200 and r.headers["X-Nearest-Source"] == "sql"
