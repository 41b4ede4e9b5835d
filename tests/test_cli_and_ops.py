"""The geo-service command, health under a database outage, and location privacy in logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.cli import main
from geo_service.infra.settings import Settings
from geo_service.web.app import create_app


def test_keys_create_and_import_gb18030_via_cli(
    areas: psycopg.Connection[Any], db_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    assert main(["keys", "create", "--name", "ops", "--role", "editor", "--area", "460204"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("gs_")
    stored = areas.execute("SELECT secret_hash, role, area_code FROM api_key").fetchall()
    assert len(stored) == 1 and token.split("_", 2)[2] not in stored[0][0]
    assert stored[0][1:] == ("editor", "460204")
    assert main(["keys", "create", "--name", "x", "--role", "editor", "--area", "999"]) == 2

    csv = ("code,name,lon,lat,host_type,opening_hours\n"
           "C-1,环卫工人爱心驿站,109.5,18.25,sanitation_depot,Mo-Su 06:00-22:00\n")
    path = tmp_path / "gbk.csv"
    path.write_bytes(csv.encode("gb18030"))
    assert main(["import", "stations", str(path)]) == 0
    assert "created 1" in capsys.readouterr().out
    assert areas.execute("SELECT name FROM station").fetchone() == ("环卫工人爱心驿站",)
    assert main(["import", "stations", str(path)]) == 0
    assert "unchanged 1" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,lon,lat,host_type,opening_hours\nC-2,x,500,18,union_built,24/7\n")
    assert main(["import", "stations", str(bad)]) == 1
    assert "row 1 (Excel row 2) [C-2] lon" in capsys.readouterr().out  # header is row 1


def test_healthz_is_503_when_database_is_away_and_recovers(db_url: str) -> None:
    dead = Settings(database_url="postgresql://geo@127.0.0.1:1/none?connect_timeout=1",
                    pool_min=0, pool_timeout_s=1.0)
    with TestClient(create_app(dead), raise_server_exceptions=False) as client:
        r = client.get("/healthz")
        assert r.status_code == 503 and r.json()["database"] == "offline"
        r = client.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5})
        assert r.status_code == 503
        assert "127.0.0.1:1" not in r.text and "psycopg" not in r.text


def test_healthz_recovers_after_connections_are_killed(db_url: str, server_url: str,
                                                        db: psycopg.Connection[Any]) -> None:
    with TestClient(create_app(Settings(database_url=db_url)),
                    raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        dbname = db.execute("SELECT current_database()").fetchone()
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND application_name = 'geo_service'", dbname)
        codes = [client.get("/healthz").status_code for _ in range(3)]
        assert codes[-1] == 200, codes
        r = client.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5})
        assert r.status_code == 200


def test_logs_round_the_courier_location(client: TestClient,
                                         caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="geo_service"):
        client.get("/v1/stations/nearest", params={"lat": 18.2512345, "lon": 109.5098765})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "18.251,109.51" in text
    assert "18.2512345" not in text and "109.5098765" not in text


_SAMPLE_TABLES = ("station_stop", "visit", "inspection", "station_award", "station_report",
                  "confirmation", "demand_point", "analysis_run")


def _sample_rows(db: psycopg.Connection[Any]) -> dict[str, int]:
    """Sample rows left, per table (stops: those of sample stations; stations: those
    still published or scheduled)."""
    out = {}
    for table in _SAMPLE_TABLES:
        where = ("station_id IN (SELECT id FROM station WHERE sample)"
                 if table == "station_stop" else "sample")
        row = db.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()
        out[table] = row[0] if row else -1
    row = db.execute("SELECT count(*) FROM station WHERE sample AND (scheduled OR status "
                     "NOT IN ('closed', 'duplicate') OR deleted_at IS NULL)").fetchone()
    out["station"] = row[0] if row else -1
    return out


def test_sample_remove_takes_the_sample_and_nothing_else(
    db: psycopg.Connection[Any], db_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``geo-service sample remove`` (issue 24, item 13): the sample's stations become
    tombstones, its stops, visits, inspections, reports, awards, confirmations, demand
    and runs go; a real station, its visit, real demand and a real run beside it stay
    exactly as they were, even a real run the old rule had flagged sample."""
    from geo_service.coverage.schemas import CoverageRequest
    from geo_service.coverage.service import run_coverage
    from geo_service.sample.seed import load_seed
    from tests.conftest import SEED, station_body
    from tests.helpers import insert_stations

    load_seed(db_url, SEED)
    # Real data in Haikou, 200 km from the sample city.
    insert_stations(db, [station_body("HK-1", 110.33, 20.03)])
    db.execute("INSERT INTO demand_point (external_id, geog, weight, worker_type) VALUES "
               "('hk-1', ST_SetSRID(ST_MakePoint(110.331, 20.031), 4326)::geography, 7, "
               "'delivery')")
    db.execute("INSERT INTO visit (station_id, worker_type) "
               "SELECT id, 'delivery' FROM station WHERE code = 'HK-1'")
    real_run = run_coverage(db, CoverageRequest(bbox=[110.2, 19.9, 110.5, 20.1]))["run_id"]
    old_rule = run_coverage(db, CoverageRequest(bbox=[110.2, 19.9, 110.5, 20.1]))["run_id"]
    db.execute("UPDATE analysis_run SET sample = true WHERE id = %s", (old_rule,))
    sample_run = run_coverage(db, CoverageRequest(area="460200"))
    assert sample_run["sample_data"] is True
    left = _sample_rows(db)
    assert all(left.values()), left  # the seed wrote every kind
    keep = {t: db.execute(f"SELECT count(*) FROM {t} WHERE NOT sample").fetchone()
            for t in ("visit", "demand_point", "admin_area", "inspection", "station_report")}
    real = db.execute("SELECT version, status, change_seq FROM station WHERE code = 'HK-1'"
                      ).fetchone()
    seq = db.execute("SELECT max(change_seq) FROM station").fetchone()
    assert seq is not None

    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    assert main(["sample", "remove"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stations"] == left["station"] and report["visits"] == left["visit"]
    assert (report["runs"], report["runs_relabelled"]) == (1, 1)
    assert not any(_sample_rows(db).values()), _sample_rows(db)
    # Nothing real changed: the station (not even its version), its visit, the demand,
    # the areas, and both real runs, now flagged real.
    assert db.execute("SELECT version, status, change_seq FROM station WHERE code = 'HK-1'"
                      ).fetchone() == real
    assert keep == {t: db.execute(f"SELECT count(*) FROM {t} WHERE NOT sample").fetchone()
                    for t in keep}
    runs = dict(db.execute("SELECT id, sample FROM analysis_run").fetchall())
    assert runs == {real_run: False, old_rule: False}
    # The tombstones are in the change feed, after everything before: copies drop them.
    changed = db.execute("SELECT count(*), bool_and(status IN ('closed', 'duplicate')) "
                         "FROM station WHERE change_seq > %s", (seq[0],)).fetchone()
    assert changed == (left["station"], True)
    # ...each tombstone in the audit trail, under the command's name.
    named = db.execute("SELECT count(DISTINCT station_code) FROM audit_log "
                       "WHERE actor = 'geo-service sample remove'").fetchone()
    assert named == (left["station"],)
    # A second run finds nothing to remove.
    assert main(["sample", "remove"]) == 0
    assert not any(json.loads(capsys.readouterr().out).values())
