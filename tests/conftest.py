"""Fixtures: a fresh, migrated PostGIS database for the session; empty tables per test.

The server is the project-local cluster (started on demand) unless
``GEO_DATABASE_URL`` names another; either way the tests make and drop their
own database, so they never touch the data ``make run`` serves.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_service.domain.auth import create_key
from geo_service.infra.db import migrate
from geo_service.infra.paths import PROJECT_ROOT
from geo_service.infra.settings import Settings
from geo_service.sample.seed import load_admin_areas, load_seed
from geo_service.web.app import create_app

SEED = PROJECT_ROOT / "seed"


def _server_url() -> str:
    settings = Settings()
    if settings.database_url:
        return settings.database_url
    from geo_service.infra.localdb import LocalCluster

    cluster = LocalCluster.default()
    cluster.start()
    return cluster.url


def _with_db(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


#: Fixtures that reach PostgreSQL. Every database fixture here and in the test
#: modules depends on one of them, so a test's fixture closure says whether it
#: needs the server.
DB_FIXTURES = frozenset({"server_url", "db_url"})
#: The Chromium fixture of the browser tests (tests/test_maps_browser.py,
#: tests/test_pages_hostile.py); tests that launch it themselves are marked by hand.
BROWSER_FIXTURES = frozenset({"browser"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``db`` and ``browser`` from what a test asks for, so a new test cannot
    forget the marker: ``pytest -m "not db"`` must run on a machine without
    PostgreSQL, and a test that reaches the server without one of the fixtures
    above (a cluster of its own, say) carries ``pytest.mark.db`` by hand."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & DB_FIXTURES:
            item.add_marker(pytest.mark.db)
        if names & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


@pytest.fixture(scope="session")
def db_url(server_url: str) -> Iterator[str]:
    """A brand-new database, migrated to head, dropped at the end of the session."""
    name = f"geo_test_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(server_url, name)
    migrate(url)
    yield url
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


TABLES = ("analysis_run", "api_key", "station", "demand_point", "admin_area", "audit_log",
          "holiday_arrangement", "staff_user", "staff_signin_failure", "photo")

#: Every table ``TRUNCATE TABLES CASCADE`` empties (TABLES and those referencing them,
#: transitively), and the sequences each owns.
_CLOSURE = """
WITH RECURSIVE closure(rel) AS (
    SELECT oid FROM pg_class WHERE oid = ANY(%(tables)s::regclass[])
    UNION
    SELECT c.conrelid FROM pg_constraint c JOIN closure ON c.confrelid = closure.rel
    WHERE c.contype = 'f')
SELECT rel::regclass::text,
       ARRAY(SELECT d.objid::regclass::text FROM pg_depend d
             JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             WHERE d.refobjid = rel AND d.deptype IN ('a', 'i'))
FROM closure
"""


#: Fixtures whose data the next test asking for them gets as it is when nobody wrote
#: to it since it was loaded, and the tables that data lies in (None: all of them).
KEPT: dict[str, frozenset[str] | None] = {
    "seeded": None,
    "areas": frozenset({"admin_area", "admin_area_part"}),
    "memory_city": None,  # tests/test_nearest_memory.py
}


@dataclass(frozen=True)
class Tables:
    """The tables ``TRUNCATE TABLES CASCADE`` empties, with the sequences each owns; the
    queries the ``db`` fixture asks about them; and what each :data:`KEPT` fixture last
    loaded into them.

    Reached through the session fixture ``tables``, never imported: pytest's conftest
    module and ``tests.conftest`` are two modules, so module state would be two states.
    """

    sequences: dict[str, list[str]]
    loaded: dict[str, str] = field(default_factory=dict)

    def dirty_sql(self) -> str:
        """Names of the tables a test left rows in or whose sequence it advanced: only
        those need emptying (each table costs its own ~20 ms truncation, all of them
        ~0.4 s on a busy machine, before every test that asks for ``db``)."""
        checks = []
        for table, sequences in self.sequences.items():
            used = "".join(f" OR pg_sequence_last_value('{s}'::regclass) IS NOT NULL"
                           for s in sequences)
            checks.append(f"SELECT '{table}' WHERE EXISTS (SELECT FROM {table}){used}")
        return " UNION ALL ".join(checks)

    def kept(self, name: str) -> frozenset[str]:
        """The tables of the :data:`KEPT` fixture ``name``."""
        return KEPT[name] or frozenset(self.sequences)

    def fingerprint(self, conn: psycopg.Connection[Any], name: str) -> str:
        """Every row version (``xmin``, ``ctid``) of the tables of ``name`` and the
        position of their sequences: any write to them since changes it."""
        tables = sorted(self.kept(name))
        parts = [f"(SELECT string_agg(xmin::text || ctid::text, ',' ORDER BY ctid) FROM {t})"
                 for t in tables]
        parts += [f"pg_sequence_last_value('{s}'::regclass)::text"
                  for t in tables for s in self.sequences[t]]
        row = conn.execute(f"SELECT concat_ws('/', {', '.join(parts)})").fetchone()
        assert row is not None
        return str(row[0])

    def unchanged(self, conn: psycopg.Connection[Any], name: str) -> bool:
        """Whether the tables of ``name`` hold what it last loaded."""
        return self.loaded.get(name) == self.fingerprint(conn, name)

    def record(self, conn: psycopg.Connection[Any], name: str) -> None:
        """What the tables of ``name`` hold now is what it loads."""
        self.loaded[name] = self.fingerprint(conn, name)


@pytest.fixture(scope="session")
def tables(db_url: str) -> Tables:
    with psycopg.connect(db_url) as conn:
        closure = conn.execute(_CLOSURE, {"tables": list(TABLES)}).fetchall()
    return Tables({table: list(sequences) for table, sequences in closure})


@pytest.fixture
def db(request: pytest.FixtureRequest, db_url: str,
       tables: Tables) -> Iterator[psycopg.Connection[Any]]:
    """A connection to an emptied database (catalogue kept), autocommit: what
    ``TRUNCATE TABLES RESTART IDENTITY CASCADE`` leaves, done on the tables that need it;
    except that a test asking for a :data:`KEPT` fixture gets its tables as that fixture
    last loaded them, when nobody has written to them since."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        dirty = {t for (t,) in conn.execute(tables.dirty_sql()).fetchall()}
        for name in KEPT:
            if name in request.fixturenames and dirty & tables.kept(name) \
                    and tables.unchanged(conn, name):
                dirty -= tables.kept(name)
        if dirty:
            conn.execute(f"TRUNCATE {', '.join(sorted(dirty))} RESTART IDENTITY CASCADE")
        yield conn


@pytest.fixture
def areas(db: psycopg.Connection[Any], tables: Tables) -> psycopg.Connection[Any]:
    """The sample admin areas (Sanya and its four districts); loaded again only when the
    ones an earlier test got were emptied or written to."""
    if not tables.unchanged(db, "areas"):
        load_admin_areas(db, SEED / "admin_areas.geojson")
        tables.record(db, "areas")
    return db


@pytest.fixture
def seeded(db: psycopg.Connection[Any], db_url: str, tables: Tables) -> psycopg.Connection[Any]:
    """The sample city as ``load_seed`` writes it (areas, demand, stations, operations);
    loaded again only when what an earlier test got was emptied or written to."""
    if not tables.unchanged(db, "seeded"):
        # On a thread: the seed loader runs its own event loop (asyncio.run), and the
        # browser tests' Playwright keeps one on this thread.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(load_seed, db_url, SEED).result()
        tables.record(db, "seeded")
        tables.record(db, "areas")  # the seed's areas are the sample ones
    return db


@pytest.fixture
def settings(db_url: str) -> Settings:
    # TestClient sends Host: testserver; links may be built for it (GEO_ALLOWED_HOSTS).
    # Nearest from PostgreSQL: a test that writes and then reads must not depend on how
    # soon the memory index follows (tests/test_nearest_memory.py turns it on).
    return Settings(database_url=db_url, allowed_hosts=["testserver"], nearest_index="off")


@pytest.fixture
def client(settings: Settings, db: psycopg.Connection[Any]) -> Iterator[TestClient]:
    # The peer is the loopback, as behind a local proxy (see settings.trusted_proxies).
    with TestClient(create_app(settings), raise_server_exceptions=False,
                    client=("127.0.0.1", 50000)) as c:
        yield c


@pytest.fixture
def keys(areas: psycopg.Connection[Any]) -> dict[str, str]:
    """Bearer headers for each kind of key."""
    def header(**kw: Any) -> str:
        return f"Bearer {create_key(areas, **kw)}"

    return {
        "admin": header(name="admin", role="admin"),
        "editor": header(name="editor", role="editor"),
        "tianya_editor": header(name="tianya", role="editor", area_code="460204"),
        "tianya_admin": header(name="tianya-admin", role="admin", area_code="460204"),
    }


def station_body(code: str, lon: float, lat: float, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code, "name": f"测试驿站 {code}", "lon": lon, "lat": lat,
        "host_type": "union_built", "status": "open", "opening_hours": "24/7",
        "amenities": ["microwave", "restroom"],
    }
    body.update(over)
    return body


def read_seed(name: str) -> Path:
    return SEED / name


#: Debian's Chromium, headless, as the machines allow it (no sandbox as root, no GPU,
#: no background requests to a network that is closed).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per module (marked ``browser`` by the collection hook)."""
    from playwright import sync_api

    from tests.helpers import chromium

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield b
        b.close()
