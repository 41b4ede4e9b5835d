"""``geo-service backup`` / ``restore``: a restored database is the same database.

The sample data (stations, mobile stops, a year of inspections and visits,
reports, awards) is dumped with the real command in a subprocess and restored
into a database the restore creates; then every table is compared row by row
(geometry as its binary), every sequence's position, the change feed's pages
and nearest answers. The feed must continue: the next change after a restore
gets a number above every restored one, so consumers' cursors stay valid.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from geo_service.infra.backup import _USER_TABLES
from geo_service.infra.db import alembic_config
from geo_service.infra.settings import Settings
from geo_service.sample.seed import load_seed
from geo_service.web.app import create_app
from tests.conftest import SEED, _with_db


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "geo_service", *args], capture_output=True,
                          text=True, env={**os.environ, "GEO_DATABASE_URL": url}, timeout=300)


def _tables(url: str) -> dict[str, list[str]]:
    """Every user table's rows as text (geometries as hex EWKB), sorted."""
    with psycopg.connect(url) as conn:
        names = [t for t, _ in conn.execute(_USER_TABLES).fetchall()]
        return {t: [r[0] for r in conn.execute(f"SELECT x::text FROM {t} x ORDER BY 1")]
                for t in names}


FACTS = {
    "stations": "SELECT code, version, change_seq, updated_at, status, ST_AsBinary(geog) "
                "FROM station ORDER BY code",
    "stops": "SELECT s.code, t.seq, ST_AsBinary(t.geog), t.opening_hours FROM station_stop t "
             "JOIN station s ON s.id = t.station_id ORDER BY 1, 2",
    "inspections": "SELECT s.code, i.* FROM inspection i JOIN station s ON s.id = i.station_id "
                   "ORDER BY i.id",
    "visits per station": "SELECT s.code, count(*) FROM visit v JOIN station s "
                          "ON s.id = v.station_id GROUP BY 1 ORDER BY 1",
    "feed position": "SELECT (SELECT max(change_seq) FROM station), last_value, is_called "
                     "FROM station_change_seq",
    "sequences": "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1",
    "revision": "SELECT version_num FROM alembic_version",
}


def _facts(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in FACTS.items()}


def _feed_and_nearest(client: TestClient) -> tuple[Any, ...]:
    feed = client.get("/v1/feeds/changes", params={"limit": 5000})
    assert feed.status_code == 200, feed.text
    nearest = client.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5, "k": 10,
                                                       "at": "2026-06-01T10:00:00+08:00"})
    assert nearest.status_code == 200, nearest.text
    return feed.json(), feed.headers["ETag"], nearest.json()


@pytest.fixture
def restored_url(server_url: str) -> Iterator[str]:
    """The name of a database that does not exist yet; dropped afterwards."""
    name = f"geo_restore_{secrets.token_hex(4)}"
    yield _with_db(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow  # ~18 s: pg_dump, a new database, pg_restore
def test_backup_restore_reproduces_everything_and_the_feed_continues(
    db_url: str, keys: dict[str, str], restored_url: str, tmp_path: Path,
) -> None:
    load_seed(db_url, SEED)
    dump = tmp_path / "geo.dump"
    made = _cli("backup", str(dump), url=db_url)
    assert made.returncode == 0, made.stderr
    assert not (tmp_path / "geo.dump.partial").exists()
    done = _cli("restore", str(dump), "--database-url", restored_url, url=db_url)
    assert done.returncode == 0, done.stderr

    source = _facts(db_url)
    assert len(source["stations"]) >= 74 and source["stops"] and source["inspections"]
    assert sum(n for _, n in source["visits per station"]) > 10_000
    assert _facts(restored_url) == source
    tables = _tables(db_url)
    assert {f"public.{t}" for t in ("station", "station_stop", "inspection", "visit",
                                   "api_key")} <= set(tables)
    assert _tables(restored_url) == tables
    head = ScriptDirectory.from_config(alembic_config(restored_url)).get_current_head()
    assert source["revision"] == [(head,)]

    with TestClient(create_app(Settings(database_url=db_url))) as old, \
            TestClient(create_app(Settings(database_url=restored_url))) as new:
        for _ in range(3):  # feed pages carry open_now: compare within one minute
            minute = dt.datetime.now().replace(second=0, microsecond=0)
            pair = _feed_and_nearest(old), _feed_and_nearest(new)
            if dt.datetime.now().replace(second=0, microsecond=0) == minute:
                break
        assert pair[0] == pair[1]
        feed = pair[0][0]
        assert feed["count"] == len(source["stations"]) and not feed["has_more"]

        # The feed continues past every restored number, from the consumer's cursor.
        code = source["stations"][0][0]
        version = source["stations"][0][1]
        r = new.patch(f"/v1/stations/{code}", json={"version": version, "name": "恢复后改名"},
                      headers={"Authorization": keys["editor"]})
        assert r.status_code == 200, r.text
        nxt = new.get("/v1/feeds/changes", params={"since": feed["next_cursor"]}).json()
        assert [(c["code"], c["op"]) for c in nxt["changes"]] == [(code, "upsert")]
        restored_max = source["feed position"][0][0]
        assert nxt["changes"][0]["seq"] > restored_max

    # A database that holds data is not replaced by accident …
    refused = _cli("restore", str(dump), "--database-url", restored_url, url=db_url)
    assert refused.returncode == 2 and "already holds data" in refused.stderr
    assert _facts(restored_url)["stations"] != source["stations"]  # the edit is still there
    # … only when asked, and then it is the backup again.
    forced = _cli("restore", str(dump), "--database-url", restored_url, "--force", url=db_url)
    assert forced.returncode == 0, forced.stderr
    assert _facts(restored_url) == source
    print(f"\n[backup] {len(source['stations'])} stations, {len(source['stops'])} stops, "
          f"{len(source['inspections'])} inspections, "
          f"{sum(n for _, n in source['visits per station'])} visits; "
          f"{dump.stat().st_size / 1e6:.1f} MB dump; feed at {restored_max}, next change "
          f"{nxt['changes'][0]['seq']}")
