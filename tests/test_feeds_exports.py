"""Platform bulk-upload exports: columns, rows, coordinates per platform, injection, 304, CLI."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import psycopg
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod

from geo_service.domain.coords import Crs, to_wgs84
from geo_service.feeds import export_formats
from geo_service.feeds.export_cli import add_parser
from geo_service.feeds.export_formats import description, hours_zh, neutralise
from geo_service.infra.settings import Settings
from tests.conftest import station_body
from tests.helpers import insert_stations

GEOD = Geod(ellps="WGS84")
CRS = {"amap": Crs.GCJ02, "tencent": Crs.GCJ02, "baidu": Crs.BD09, "generic": Crs.WGS84}
COORD_TYPE = {"amap": "gcj02", "tencent": "gcj02", "baidu": "bd09ll", "generic": "wgs84"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZH = {"name": "名称", "address": "地址", "lon": "经度", "lat": "纬度", "coord": "坐标系",
      "phone": "电话", "hours": "营业时间", "osm": "营业时间(OSM)", "category": "分类",
      "desc": "描述", "province": "省份", "city": "城市", "district": "区县",
      "code": "站点编码", "status": "状态", "sample": "示例数据", "verified": "最近核实日期"}
EN = {"name": "name", "address": "address", "lon": "longitude", "lat": "latitude",
      "coord": "coord_type", "phone": "phone", "hours": "opening_hours_zh",
      "osm": "opening_hours", "category": "category", "desc": "description",
      "province": "province", "city": "city", "district": "district", "code": "station_code",
      "status": "status", "sample": "sample", "verified": "last_verified_on"}


def _published(conn: psycopg.Connection[Any], where: str = "true") -> dict[str, Any]:
    rows = conn.execute(
        "SELECT code, ST_X(geog::geometry), ST_Y(geog::geometry) FROM station s "
        f"WHERE status IN ('open', 'temporarily_closed') AND {where}").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _table(r: httpx.Response, fmt: str) -> list[dict[str, Any]]:
    """The file's rows as dicts by header, after checking the file's envelope."""
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["content-disposition"]
    if fmt == "csv":
        assert r.headers["content-type"].startswith("text/csv")
        assert r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
        text = r.content[3:].decode("utf-8")
        assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
        return list(csv.DictReader(io.StringIO(text, newline="")))
    assert r.headers["content-type"] == XLSX
    assert int(r.headers["content-length"]) == len(r.content)
    return _xlsx_rows(r.content)


def _xlsx_rows(data: bytes) -> list[dict[str, Any]]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    head = [str(h) for h in values[0]]
    return [dict(zip(head, row, strict=True)) for row in values[1:]]


def _readme(data: bytes) -> str:
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames[1] == "说明 README"
    return "\n".join(" ".join(str(v) for v in row if v is not None)
                     for row in book["说明 README"].iter_rows(values_only=True))


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("platform", ["amap", "tencent", "baidu", "generic"])
def test_export_opens_with_columns_rows_and_exact_coordinates(
    client: TestClient, seeded: psycopg.Connection[Any], platform: str, fmt: str
) -> None:
    r = client.get(f"/v1/exports/{platform}.{fmt}")
    rows = _table(r, fmt)
    crs = CRS[platform]
    assert f'filename="stations-{platform}-{crs.value}-' in r.headers["content-disposition"]
    assert r.headers["etag"].startswith('W/"') and "max-age" in r.headers["cache-control"]
    h = EN if platform == "generic" else ZH
    assert set(h.values()) <= set(rows[0])

    # Exactly the published stations: closed, planned and duplicate ones are left out.
    expected = _published(seeded)
    codes = [row[h["code"]] for row in rows]
    assert len(codes) == len(expected) == 69 and set(codes) == set(expected)

    for row in rows:
        assert row[h["coord"]] == COORD_TYPE[platform]
        x, y = float(row[h["lon"]]), float(row[h["lat"]])
        lon, lat = expected[row[h["code"]]]
        back = to_wgs84(x, y, crs)
        assert GEOD.inv(lon, lat, *back)[2] < 0.5  # metres on the ellipsoid
        shift = GEOD.inv(lon, lat, x, y)[2]
        assert shift < 0.01 if crs is Crs.WGS84 else shift > 100  # really converted
    first = next(row for row in rows if row[h["code"]] == "SY-0001")
    assert first[h["name"]].startswith("【示例】") and first[h["address"]]
    stored = seeded.execute("SELECT opening_hours FROM station WHERE code = 'SY-0001'").fetchone()
    assert stored is not None and first[h["osm"]] == stored[0]  # as stored, OSM syntax
    assert first[h["hours"]] == "周一至周五 08:00-18:00；周六至周日 09:00-17:00"
    assert first[h["sample"]] == ("true" if platform == "generic" else "是")
    assert first[h["category"]] and first[h["province"]] == "海南省"
    assert first[h["district"]] == "崖州区"
    if fmt == "xlsx":
        readme = _readme(r.content)
        assert "SAMPLE DATA" in readme and {"gcj02": "GCJ-02", "bd09": "BD-09",
                                            "wgs84": "WGS-84"}[crs.value] in readme


def test_xlsx_header_bold_and_frozen(client: TestClient, db: psycopg.Connection[Any]) -> None:
    insert_stations(db, [station_body("X-1", 109.5, 18.25)])
    r = client.get("/v1/exports/amap.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
    assert sheet.freeze_panes == "A2"
    assert sheet["A1"].value == "名称" and sheet["A1"].font.b
    assert isinstance(sheet["C2"].value, float)  # 经度 as a number, not text
    assert "SAMPLE DATA" not in _readme(r.content)  # no sample station in this file


def test_description_lists_amenity_labels(client: TestClient, db: psycopg.Connection[Any]) -> None:
    amenities = ["indoor_rest", "seating", "air_conditioning", "ebike_charging"]
    insert_stations(db, [station_body("D-1", 109.5, 18.25, amenities=amenities),
                         station_body("D-2", 109.51, 18.25, amenities=[])])
    rows = {r["站点编码"]: r for r in _table(client.get("/v1/exports/baidu.csv"), "csv")}
    assert rows["D-1"]["描述"] == "十个一（2/10）：室内休息场所、座椅；另有：电动车充电、空调"
    assert rows["D-2"]["描述"] == ""
    assert rows["D-1"]["示例数据"] == "否" and rows["D-1"]["状态"] == "营业"
    generic = _table(client.get("/v1/exports/generic.xlsx"), "xlsx")
    d1 = next(r for r in generic if r["station_code"] == "D-1")
    assert d1["description"] == ("Ten ones (2/10): Indoor rest space, Seats; "
                                 "also: E-bike charging, Air conditioning")
    assert d1["sample"] == "false" and d1["status"] == "open"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_formula_injection_is_neutralised(
    client: TestClient, db: psycopg.Connection[Any], fmt: str
) -> None:
    evil = '=HYPERLINK("http://evil.example","点我")'
    insert_stations(db, [station_body("F-1", 109.5, 18.25, name=evil, address="@SUM(1+1)",
                                      phone="+86 898 1234")])
    r = client.get(f"/v1/exports/tencent.{fmt}")
    (row,) = _table(r, fmt)
    assert row["名称"] == "'" + evil
    assert row["地址"] == "'@SUM(1+1)" and row["电话"] == "'+86 898 1234"
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
        assert sheet["A2"].data_type == "s"  # a string, never a formula


def test_area_and_bbox_filters(client: TestClient, seeded: psycopg.Connection[Any]) -> None:
    tianya = _published(seeded, "district_code = '460204'")
    rows = _table(client.get("/v1/exports/amap.csv", params={"area": "460204"}), "csv")
    assert {r["站点编码"] for r in rows} == set(tianya) and 0 < len(tianya) < 69
    assert {r["区县"] for r in rows} == {"天涯区"}
    box = "109.4,18.2,109.6,18.4"
    inside = _published(seeded, "geog::geometry && ST_MakeEnvelope(109.4, 18.2, 109.6, 18.4, 4326)")
    rows = _table(client.get("/v1/exports/generic.xlsx", params={"bbox": box}), "xlsx")
    assert {r["station_code"] for r in rows} == set(inside) and 0 < len(inside) < 69
    assert _table(client.get("/v1/exports/amap.csv", params={"area": "999999"}), "csv") == []


def test_etag_304_and_change(client: TestClient, db: psycopg.Connection[Any]) -> None:
    insert_stations(db, [station_body("E-1", 109.5, 18.25)])
    first = client.get("/v1/exports/amap.xlsx")
    etag = first.headers["etag"]
    again = client.get("/v1/exports/amap.xlsx", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get("/v1/exports/amap.csv").headers["etag"] != etag  # per format
    assert client.get("/v1/exports/amap.xlsx", params={"area": "460204"}).headers["etag"] != etag
    insert_stations(db, [station_body("E-2", 109.51, 18.25)])
    after = client.get("/v1/exports/amap.xlsx", headers={"If-None-Match": etag})
    assert after.status_code == 200 and len(_table(after, "xlsx")) == 2


@pytest.mark.parametrize(("path", "status", "field"), [
    ("/v1/exports/google.csv", 422, "platform"),
    ("/v1/exports/amap.pdf", 422, "fmt"),
    ("/v1/exports/amap", 404, None),
    ("/v1/exports/amap.csv?area=46%3B02", 422, "area"),
    ("/v1/exports/amap.csv?bbox=1,2,3", 422, "bbox"),
])
def test_bad_requests_are_refused_by_name(
    client: TestClient, db: psycopg.Connection[Any], path: str, status: int, field: str | None
) -> None:
    r = client.get(path)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    if field is not None:
        assert field in [f["field"] for f in r.json()["error"]["fields"]]


def test_xlsx_refuses_more_rows_than_a_sheet_holds(
    client: TestClient, db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from openpyxl.worksheet._writer import ALL_TEMP_FILES  # openpyxl's own bookkeeping

    insert_stations(db, [station_body("M-1", 109.5, 18.25), station_body("M-2", 109.6, 18.25)])
    temp_files = len(ALL_TEMP_FILES)
    assert client.get("/v1/exports/amap.xlsx").status_code == 200
    monkeypatch.setattr(export_formats, "XLSX_MAX_ROWS", 1)
    r = client.get("/v1/exports/amap.xlsx")
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "fmt"
    assert "csv" in r.json()["error"]["message"]
    assert len(ALL_TEMP_FILES) == temp_files  # neither export left its sheet file behind
    assert client.get("/v1/exports/amap.csv").status_code == 200


def test_large_export_crosses_batches(client: TestClient, db: psycopg.Connection[Any]) -> None:
    bodies = [station_body(f"B-{i:05d}", 109.0 + i % 100 / 200, 18.0 + i // 100 / 200)
              for i in range(4500)]
    bodies[10]["status"] = "closed"
    insert_stations(db, bodies)
    for fmt in ("csv", "xlsx"):
        rows = _table(client.get(f"/v1/exports/generic.{fmt}"), fmt)
        codes = [r["station_code"] for r in rows]
        assert len(codes) == len(set(codes)) == 4499 and "B-00010" not in codes


def test_cli_writes_the_same_file(
    seeded: psycopg.Connection[Any], settings: Settings, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="cmd", required=True))
    out = tmp_path / "amap.xlsx"
    args = parser.parse_args(["export", "--platform", "baidu", "--out", str(out),
                              "--area", "460204"])
    assert args.func(args, settings) == 0
    assert "SAMPLE DATA" in capsys.readouterr().out
    rows = _xlsx_rows(out.read_bytes())
    tianya = _published(seeded, "district_code = '460204'")
    assert {r["站点编码"] for r in rows} == set(tianya)
    assert {r["坐标系"] for r in rows} == {"bd09ll"}
    args = parser.parse_args(["export", "--platform", "generic", "--format", "csv",
                              "--out", str(tmp_path / "g.csv")])
    assert args.func(args, settings) == 0
    data = (tmp_path / "g.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfname,address,longitude,latitude,")
    assert data.count(b"\r\n") == 70  # header + 69 published stations
    assert list(tmp_path.glob(".*.part")) == []


def test_text_helpers() -> None:
    assert hours_zh("24/7") == "24小时营业"
    assert hours_zh("Mo-Su 00:00-24:00") == "每天 24小时"
    assert hours_zh("Mo-Fr 08:00-12:00,14:00-18:00; Sa 09:00-26:00") == (
        "周一至周五 08:00-12:00、14:00-18:00；周六 09:00-次日02:00")
    assert hours_zh("Mo-Fr 08:00-18:00; PH off") == "周一至周五 08:00-18:00；法定节假日休息"
    assert hours_zh("Jan-Mar Mo-Fr 08:00-18:00") == "Jan-Mar Mo-Fr 08:00-18:00"
    assert hours_zh(None) is None
    assert description(0) is None
    for text in ("=1+1", "+1", "-1", "@A1", "\tx", "\rx"):
        assert neutralise(text) == "'" + text
    assert neutralise("0898-1234") == "0898-1234"
