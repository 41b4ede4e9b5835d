"""Demand import: same rules as stations (row report, atomic, idempotent, GB18030)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.cli import main

HEADER = "id,lon,lat,weight,worker_type,source,observed_on"
GOOD = ["D-1,109.50,18.25,12,sanitation,环卫路线,2026-10-01",
        "D-2,109.51,18.26,30,delivery,配送站,",
        "D-3,109.60,18.28,5,truck_driver,,"]


def _post(client: TestClient, key: str, rows: list[str], **params: Any) -> Any:
    data = ("\n".join([HEADER, *rows]) + "\n").encode(params.pop("encoding", "utf-8"))
    return client.post("/v1/demand:import", files={"file": ("d.csv", data)}, params=params,
                       headers={"Authorization": key})


def _rows(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute("SELECT external_id, weight, worker_type, ST_AsText(geog) "
                      "FROM demand_point ORDER BY external_id").fetchall()


def test_idempotent_and_gb18030(client: TestClient, keys: dict[str, str],
                                db: psycopg.Connection[Any]) -> None:
    r = _post(client, keys["admin"], GOOD, encoding="gb18030")
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["unchanged"]) == (3, 0)
    first = _rows(db)
    r = _post(client, keys["admin"], GOOD)
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 3)
    assert _rows(db) == first
    assert db.execute("SELECT source FROM demand_point WHERE external_id = 'D-1'"
                      ).fetchone() == ("环卫路线",)


def test_bad_rows_write_nothing(client: TestClient, keys: dict[str, str],
                                db: psycopg.Connection[Any]) -> None:
    rows = [*GOOD, "D-4,109.5,95,3,delivery,,", "D-5,109.5,18.2,-1,delivery,,",
            "D-6,109.5,18.2,2,astronaut,,", "D-1,109.5,18.2,2,delivery,,"]
    r = _post(client, keys["admin"], rows)
    assert r.status_code == 422
    problems = {(p["row"], p["field"]) for p in r.json()["report"]["errors"]}
    assert problems == {(4, "lat"), (5, "weight"), (6, "worker_type"), (7, "id")}
    assert _rows(db) == []
    r = _post(client, keys["admin"], rows, mode="skip_bad_rows")
    assert r.status_code == 200 and r.json()["created"] == 3
    assert _post(client, keys["editor"], GOOD).status_code == 403


def test_cli_demand_import(db: psycopg.Connection[Any], db_url: str, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    path = tmp_path / "d.csv"
    path.write_text("\n".join([HEADER, *GOOD]) + "\n", encoding="utf-8")
    assert main(["import", "demand", str(path), "--dry-run"]) == 0
    assert _rows(db) == []
    assert main(["import", "demand", str(path)]) == 0
    assert len(_rows(db)) == 3


def test_blank_cells_read_as_stations_read_them(client: TestClient, keys: dict[str, str],
                                                db: psycopg.Connection[Any]) -> None:
    """Issue 12: one cell rule for both imports (imports.readers.clean_row). A cell of
    spaces is empty, so ``source`` stays NULL (it was stored as ""), and 是 is yes."""
    r = client.post("/v1/demand:import", headers={"Authorization": keys["admin"]}, files={
        "file": ("d.csv", "id,lon,lat,weight,worker_type,source,sample\n"
                          "D-1,109.5,18.25,3,courier,   ,是\n".encode())})
    assert r.status_code == 200, r.text
    assert db.execute("SELECT source, sample FROM demand_point").fetchall() == [(None, True)]
