"""The geo-service command, health under a database outage, and location privacy in logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.cli import main
from geo_service.main import create_app
from geo_service.settings import Settings


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
    assert "row 1 [C-2] lon" in capsys.readouterr().out


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
