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


def _sheet(rows: list[tuple[Any, ...]], header: tuple[str, ...] | None = None) -> bytes:
    """The downloaded template (header, example row) with ``rows`` under it, or a
    workbook of ``header`` and ``rows`` (a clerk's own sheet, aliases in its header)."""
    import io

    from openpyxl import Workbook, load_workbook

    if header is None:
        book = load_workbook(io.BytesIO(demand_template_bytes()))
    else:
        book = Workbook()
        assert book.active is not None
        book.active.append(list(header))
    sheet = book.worksheets[0]
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def demand_template_bytes() -> bytes:
    from geo_service.coverage.demand_sheet import template_xlsx

    return template_xlsx()


def test_chinese_template_and_sheet_with_aliases_and_gcj02(
        client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]) -> None:
    """Issue 27: the template downloads with its 说明 sheet; a Chinese sheet (aliases,
    工种 in Chinese, GCJ-02 by the 坐标系 column or the file's crs) imports, the example
    row is skipped, and the stored points are WGS-84."""
    import io

    from coord_convert.transform import bd2wgs, gcj2wgs
    from openpyxl import load_workbook

    r = client.get("/v1/demand:template.xlsx")
    assert r.status_code == 200, r.text
    book = load_workbook(io.BytesIO(r.content))
    assert [c.value for c in book.worksheets[0][1]][:6] == [
        "编号*", "经度*", "纬度*", "人数*", "工种*", "坐标系"]
    readme = "\n".join(str(c.value) for row in book.worksheets[1].iter_rows() for c in row)
    assert "外卖员" in readme and "劳动者人数" in readme  # aliases documented for the clerk
    data = _sheet([("CD-1", 109.5166, 18.2501, 12, "外卖骑手", "高德"),
                   ("CD-2", 109.5, 18.25, 3, "环卫工", "WGS-84"),
                   ("CD-3", 109.52, 18.26, 7.0, "快递小哥", None)])
    r = client.post("/v1/demand:import", files={"file": ("需求.xlsx", data)},
                    params={"crs": "bd09"}, headers={"Authorization": keys["admin"]})
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 3 and r.json()["skipped"][0]["code"] == "示例-0001"
    got = {row[0]: row for row in db.execute(
        "SELECT external_id, ST_X(geog::geometry), ST_Y(geog::geometry), weight, worker_type "
        "FROM demand_point").fetchall()}
    assert set(got) == {"CD-1", "CD-2", "CD-3"}
    for ident, (lon, lat), kind in (("CD-1", gcj2wgs(109.5166, 18.2501), "delivery"),
                                    ("CD-2", (109.5, 18.25), "sanitation"),
                                    ("CD-3", bd2wgs(109.52, 18.26), "courier")):
        assert got[ident][1:3] == pytest.approx((lon, lat), abs=2e-6)
        assert got[ident][4] == kind
    # aliases a clerk's own sheet may carry; CSV too; the same file again changes nothing
    csv = ("点位编号,经度（°）,纬度,劳动者人数,人员类型,坐标类型\n"
           "CD-1,109.5166,18.2501,12,外卖员,火星坐标\n").encode("gb18030")
    r = client.post("/v1/demand:import", files={"file": ("d.csv", csv)},
                    headers={"Authorization": keys["admin"]})
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 1)


def test_chinese_sheet_errors_name_excel_rows_and_chinese_columns(
        client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]) -> None:
    """A bad sheet writes nothing; each problem carries the row Excel shows and the
    column as the sheet heads it."""
    data = _sheet([("CD-1", 109.5, 18.25, 12, "外卖骑手", "WGS-84"),
                   ("CD-2", 109.5, 95, 3, "环卫工人", None),
                   ("CD-3", 109.5, 18.25, -1, "宇航员", "火星"),
                   ("CD-1", 109.5, 18.25, 2, "快递员", None)],
                  header=("编号", "经度", "纬度", "人数(人)", "工种", "坐标系"))
    r = client.post("/v1/demand:import", files={"file": ("d.xlsx", data)},
                    headers={"Authorization": keys["admin"]})
    assert r.status_code == 422, r.text
    problems = {(p["sheet_row"], p["field"]) for p in r.json()["report"]["errors"]}
    assert problems == {(3, "纬度"), (4, "人数(人)"), (4, "工种"), (4, "坐标系"), (5, "编号")}
    assert _rows(db) == []


def test_cli_demand_template_and_chinese_import(db: psycopg.Connection[Any], db_url: str,
                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """``geo-service demand template`` writes the sheet; ``demand import`` reads it back,
    naming a bad row by the row Excel shows."""
    from openpyxl import load_workbook

    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    path = tmp_path / "t.xlsx"
    assert main(["demand", "template", "-o", str(path)]) == 0
    book = load_workbook(path)
    book.worksheets[0].append(["CD-9", 109.5, 18.25, 4, "货车司机", "WGS-84"])
    book.worksheets[0].append(["CD-10", 109.5, 18.25, "很多", "货车司机", "WGS-84"])
    book.save(path)
    capsys.readouterr()
    assert main(["demand", "import", str(path)]) == 1
    assert "Excel row 4 [CD-10] 人数*: " in capsys.readouterr().out
    book.worksheets[0].delete_rows(4)
    book.save(path)
    assert main(["demand", "import", str(path)]) == 0
    assert _rows(db)[0][:3] == ("CD-9", 4.0, "truck_driver")
