"""The spreadsheets unions keep: Chinese headers, GB18030, a LibreOffice XLSX, the template,
and the round trip export → edit one cell → import.

Fixtures in ``tests/data``: ``union_sheet_gb18030.csv`` (an all-Chinese sheet in GB18030,
CRLF, as Chinese Excel saves CSV) and ``union_sheet_libreoffice.xlsx``, the same rows
converted by LibreOffice Calc 7.4 (``soffice --headless --convert-to xlsx
--infilter=CSV:44,34,76,1`` on its UTF-8 copy), so a workbook not written by openpyxl is
read: LibreOffice stores ``1``/``0`` and ``460204`` as numbers.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from geo_service.cli import main as cli_main
from geo_service.domain.catalogue import TEN_ONES, amenity_codes
from geo_service.domain.coords import Crs, from_wgs84
from geo_service.domain.sheet import header_aliases, parse_crs, yes_no
from geo_service.imports.readers import normalise_header
from geo_service.sample.seed import load_seed
from geo_service.stations import importer
from tests.conftest import SEED

DATA = Path(__file__).parent / "data"
TEN = [a.label_zh for a in TEN_ONES]
HEADER = ["*站点编码", "站点名称", "所属区县", "详细地址", "经度（°）", "纬度(°)", "坐标系",
          "建设类型", "状态", "开放时间", "联系电话", *TEN, "其他设施"]
FIXTURE_CODES = ["SY-Z001", "SY-Z002", "SY-Z003", "SY-Z004", "SY-Z005"]


def _post(client: TestClient, key: str, data: bytes, name: str, **params: Any) -> Any:
    return client.post("/v1/stations:import", files={"file": (name, data)}, params=params,
                       headers={"Authorization": key})


def _district(db: psycopg.Connection[Any], lon: float, lat: float) -> tuple[str, str]:
    """The (code, name) of the sample district covering a WGS-84 point."""
    row = db.execute("SELECT code, name FROM admin_area WHERE level = 'district' AND "
                     "ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
                     (lon, lat)).fetchone()
    assert row is not None
    return row[0], row[1]


def _stations(db: psycopg.Connection[Any]) -> dict[str, tuple[Any, ...]]:
    rows = db.execute(
        "SELECT code, name, address, district_code, host_type, status, opening_hours, phone, "
        "amenity_mask, round(ST_X(geog::geometry)::numeric, 9), "
        "round(ST_Y(geog::geometry)::numeric, 9), version FROM station ORDER BY code")
    return {r[0]: r[1:] for r in rows}


def _gb18030_sheet(db: psycopg.Connection[Any]) -> bytes:
    """An all-Chinese sheet written here in GB18030, district names from the database."""
    gcj = from_wgs84(109.58, 18.29, Crs.GCJ02)
    _, tianya = _district(db, 109.47, 18.29)
    _, jiyang = _district(db, 109.58, 18.29)
    rows = [
        HEADER,
        ["ZH-1", "三亚湾环卫工人驿站", tianya, "三亚湾路1号", "109.47", "18.29", "WGS-84",
         "环卫作息点", "开放", "周一至周五 9:00-17:00；周末休息", "0898-1111111",
         "是", "有", "√", "✓", "1", "Y", "yes", "true", "否", "", "空调、电动车充电"],
        ["ZH-2", "迎宾路工行驿站", jiyang, "迎宾路2号", f"{gcj[0]:.7f}", f"{gcj[1]:.7f}",
         "火星坐标", "银行网点", "暂停开放", "全天24小时", "",
         "否", "无", "×", "✗", "0", "N", "no", "false", "✘", "是", ""],
    ]
    text = "\r\n".join(",".join(r) for r in rows) + "\r\n"
    return text.encode("gb18030")


def test_all_chinese_gb18030_sheet(client: TestClient, keys: dict[str, str],
                                   db: psycopg.Connection[Any]) -> None:
    data = _gb18030_sheet(db)
    data.decode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # really GB18030, not UTF-8 that happens to decode
    r = _post(client, keys["admin"], data, "台账.csv")
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["created"], report["written"]) == (2, True)
    assert report["converted_hours"] == [
        {"row": 1, "code": "ZH-1", "given": "周一至周五 9:00-17:00；周末休息",
         "opening_hours": "Mo-Fr 09:00-17:00"},  # the parser drops the redundant Sa,Su off
        {"row": 2, "code": "ZH-2", "given": "全天24小时", "opening_hours": "24/7"}]
    stored = _stations(db)
    one, two = stored["ZH-1"], stored["ZH-2"]
    assert one[2:7] == (_district(db, 109.47, 18.29)[0], "sanitation_depot", "open",
                        "Mo-Fr 09:00-17:00", "0898-1111111")
    assert amenity_codes(one[7]) == [a.code for a in TEN_ONES[:8]] + [
        "ebike_charging", "air_conditioning"]
    assert two[3:6] == ("bank_branch", "temporarily_closed", "24/7")
    assert amenity_codes(two[7]) == ["umbrella_stand"]
    # 火星坐标 in the row: GCJ-02 converted back to the WGS-84 point it came from
    assert abs(float(two[8]) - 109.58) < 1e-6 and abs(float(two[9]) - 18.29) < 1e-6
    assert two[2] == _district(db, 109.58, 18.29)[0]


def test_committed_gb18030_csv_and_libreoffice_xlsx_store_the_same(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    xlsx = (DATA / "union_sheet_libreoffice.xlsx").read_bytes()
    app = zipfile.ZipFile(io.BytesIO(xlsx)).read("docProps/app.xml").decode()
    assert "<Application>LibreOffice" in app  # made by a spreadsheet program, not openpyxl
    r = _post(client, keys["admin"], (DATA / "union_sheet_gb18030.csv").read_bytes(), "a.csv")
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 5 and len(r.json()["converted_hours"]) == 5
    first = _stations(db)
    assert list(first) == FIXTURE_CODES
    assert {c: v[5] for c, v in first.items()} == {
        "SY-Z001": "06:00-22:00", "SY-Z002": "Mo-Fr 09:00-17:00; PH closed",
        "SY-Z003": "24/7", "SY-Z004": "Mo-Fr 08:30-12:00,14:30-18:00",
        "SY-Z005": "10:00-16:00"}
    assert [v[4] for v in first.values()] == ["open", "open", "temporarily_closed", "planned",
                                              "open"]
    assert first["SY-Z004"][7] & 0x3FF == 0x3FF  # 1 in every ten-ones column
    for code, (lon, lat) in {"SY-Z002": (109.58, 18.29), "SY-Z004": (109.72, 18.37)}.items():
        # 高德 = GCJ-02 and BD-09 in their rows, back to WGS-84 within a metre
        assert abs(float(first[code][8]) - lon) < 1e-5 and abs(float(first[code][9]) - lat) < 1e-5
    r = _post(client, keys["admin"], xlsx, "b.xlsx")
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 5)
    assert _stations(db) == first


def test_refused_rows_are_named_by_row_column_and_reason(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    _, tianya = _district(db, 109.47, 18.29)
    good = ["ZH-1", "好站", tianya, "", "109.47", "18.29", "", "工会自建", "开放", "24小时", ""]
    rows = [
        HEADER,
        good + ["是"] * 10 + [""],
        ["ZH-2", "上午站", tianya, "", "109.47", "18.29", "", "工会自建", "开放",
         "上午9:00-12:00", ""] + ["是"] * 10 + [""],
        ["ZH-3", "无名区站", "不存在区", "", "109.47", "18.29", "", "工会自建", "开放", "24小时",
         ""] + ["是"] * 10 + [""],
        ["ZH-4", "怪值站", tianya, "", "109.47", "18.29", "木星", "城堡", "营业中", "24小时",
         ""] + ["也许"] + ["是"] * 9 + ["桑拿"],
    ]
    data = ("\n".join(",".join(r) for r in rows) + "\n").encode("utf-8")
    for params in ({}, {"dry_run": "true"}):
        r = _post(client, keys["admin"], data, "s.csv", **params)
        report = r.json()["report"] if r.status_code == 422 else r.json()
        assert r.status_code == (200 if params else 422), r.text
        assert report["written"] is False
        problems = {(p["row"], p["field"]): p["problem"] for p in report["errors"]}
        assert "上午" in problems[(2, "开放时间")] and "周一至周五" in problems[(2, "开放时间")]
        assert {(4, "坐标系"), (4, "建设类型"), (4, "状态"), (4, "室内休息场所"),
                (4, "其他设施")} <= set(problems), problems
        assert "是/否" in problems[(4, "室内休息场所")]
        assert db.execute("SELECT count(*) FROM station").fetchone() == (0,)
    # the district is checked against the database once the rows are valid: named too
    r = _post(client, keys["admin"], ("\n".join(",".join(r) for r in rows[:2] + rows[3:4])
                                      + "\n").encode(), "s.csv")
    assert r.status_code == 422
    assert [(p["row"], p["field"]) for p in r.json()["report"]["errors"]] == [(2, "所属区县")]
    assert db.execute("SELECT count(*) FROM station").fetchone() == (0,)


def test_district_outside_the_point_and_scoped_keys(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    tianya_code, tianya = _district(db, 109.47, 18.29)
    _, jiyang = _district(db, 109.58, 18.29)
    head = "站点编码,站点名称,所属区县,经度,纬度,建设类型,开放时间\n"
    wrong = head + f"ZH-1,站,{jiyang},109.47,18.29,工会自建,24小时\n"
    r = _post(client, keys["admin"], wrong.encode(), "s.csv")
    assert r.status_code == 422
    (problem,) = r.json()["report"]["errors"]
    assert problem["field"] == "所属区县" and jiyang in problem["problem"]
    # a key scoped to a district resolves names within it only
    assert tianya_code == "460204"  # the fixture's tianya keys are scoped to this code
    r = _post(client, keys["tianya_admin"], wrong.encode(), "s.csv")
    assert r.status_code == 422 and "460204" in r.json()["report"]["errors"][0]["problem"]
    right = head + f"ZH-1,站,{tianya},109.47,18.29,工会自建,24小时\n"
    r = _post(client, keys["tianya_admin"], right.encode(), "s.csv")
    assert r.status_code == 200, r.text
    assert db.execute("SELECT district_code, district FROM station").fetchone() == (
        tianya_code, tianya)


def test_template_endpoint_cli_and_untouched_import(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    r = client.get("/v1/stations:template.xlsx")  # public: no key
    assert r.status_code == 200
    assert r.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert r.headers["content-disposition"] == (
        'attachment; filename="station-import-template.xlsx"')
    book = load_workbook(io.BytesIO(r.content))
    sheet, readme = book.worksheets
    header = [c.value for c in sheet[1]]
    assert header[:2] == ["站点编码*", "站点名称*"] and "所属区县" in header
    assert {"经度*", "纬度*", "建设类型*", "坐标系", "状态", *TEN, "其他设施"} <= set(header)
    example = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert example["站点编码*"] == "示例-0001" and example["站点名称*"].startswith("【示例】")
    lists = {str(v.sqref).split(":")[0].rstrip("0123456789"): v.formula1
             for v in sheet.data_validations.dataValidation}
    letters = {c.value: c.column_letter for c in sheet[1]}
    assert "工会自建" in lists[letters["建设类型*"]]
    assert "暂停开放" in lists[letters["状态"]]
    assert "GCJ-02" in lists[letters["坐标系"]]
    assert all(lists[letters[t]] == '"是,否"' for t in TEN)
    text = " ".join(str(c.value) for row in readme.iter_rows() for c in row if c.value)
    assert "GCJ-02" in text and "Amap" in text and "周一至周五" in text and "Mo-Fr" in text

    # importing the untouched template writes nothing, and says why
    r = _post(client, keys["admin"], r.content, "template.xlsx")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["created"] == 0 and report["errors"] == []
    assert report["skipped"] == [{"row": 1, "code": "示例-0001",
                                  "reason": "the template's example row (code 示例-…)"}]
    assert db.execute("SELECT count(*) FROM station").fetchone() == (0,)

    out = tmp_path / "模板.xlsx"
    assert cli_main(["template", "-o", str(out)]) == 0
    assert [c.value for c in load_workbook(out).worksheets[0][1]] == header


def _all_changes(client: TestClient, since: str | None) -> tuple[list[dict[str, Any]], str]:
    entries: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"since": since} if since else {})}
        page = client.get("/v1/feeds/changes", params=params).json()
        entries += page["changes"]
        since = page["next_cursor"]
        if not page["has_more"]:
            return entries, since


@pytest.mark.slow
def test_round_trip_export_edit_one_cell_import(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any], db_url: str
) -> None:
    """The sample set through the union export (XLSX, then CSV): one edited cell, one change."""
    load_seed(db_url, SEED)
    _, cursor = _all_changes(client, None)
    before = _stations(db)

    r = client.get("/v1/exports/union.xlsx")
    assert r.status_code == 200
    book = load_workbook(io.BytesIO(r.content))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    rows = list(sheet.iter_rows(min_row=2))
    assert len(rows) >= 20
    target = rows[3]
    code = target[0].value
    phone = target[header.index("联系电话")]
    phone.value = "0898-99990000"
    buf = io.BytesIO()
    book.save(buf)
    r = _post(client, keys["admin"], buf.getvalue(), "ledger.xlsx")
    assert r.status_code == 200, r.text
    assert (r.json()["updated"], r.json()["created"], r.json()["unchanged"]) == (
        1, 0, len(rows) - 1)
    after = _stations(db)
    assert after[code][6] == "0898-99990000" and after[code][-1] == before[code][-1] + 1
    assert {c: v for c, v in after.items() if c != code} == {
        c: v for c, v in before.items() if c != code}
    changes, cursor = _all_changes(client, cursor)
    assert [c["code"] for c in changes] == [code]

    # the CSV export too: switch the ten ones' microwave of another station
    r = client.get("/v1/exports/union.csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    col = table[0].index("微波炉")
    other = table[5]
    other[col] = "否" if other[col] == "是" else "是"
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    r = _post(client, keys["admin"], out.getvalue().encode("utf-8-sig"), "ledger.csv")
    assert r.status_code == 200, r.text
    assert (r.json()["updated"], r.json()["unchanged"]) == (1, len(table) - 2)
    changes, _ = _all_changes(client, cursor)
    assert [c["code"] for c in changes] == [other[0]]
    mask_bit = 1 << next(a.bit for a in TEN_ONES if a.label_zh == "微波炉")
    assert (_stations(db)[other[0]][7] ^ after[other[0]][7]) == mask_bit


def test_a_sheet_with_only_some_amenity_columns_keeps_the_others(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    english = ("code,name,lon,lat,host_type,opening_hours,amenities\n"
               "K-1,站,109.47,18.29,union_built,24/7,microwave;restroom;air_conditioning\n")
    assert _post(client, keys["admin"], english.encode(), "e.csv").status_code == 200
    sheet = ("站点编码,站点名称,经度,纬度,建设类型,开放时间,微波炉\n"
             "K-1,站,109.47,18.29,工会自建,24/7,否\n")
    r = _post(client, keys["admin"], sheet.encode(), "z.csv")
    assert r.status_code == 200 and r.json()["updated"] == 1, r.text
    (mask,) = db.execute("SELECT amenity_mask FROM station").fetchone() or (0,)
    assert amenity_codes(mask) == ["restroom", "air_conditioning"]
    r = _post(client, keys["admin"], sheet.encode(), "z.csv")
    assert r.json()["unchanged"] == 1  # the kept amenities are not a change


def test_union_export_of_converted_coordinates_reimports_unchanged(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    """A point stored from GCJ-02 has all 17 digits; XLSX keeps 16, and that is no move.
    A phone the export guards against formulas ('+86 ...) reads back as stored."""
    english = ("code,name,lon,lat,host_type,opening_hours,phone\n"
               "P-1,站,109.4712345,18.2912345,union_built,24/7,+86 898 88881234\n")
    r = _post(client, keys["admin"], english.encode(), "e.csv", crs="gcj02")
    assert r.status_code == 200, r.text
    (lon,) = db.execute("SELECT ST_X(geog::geometry) FROM station").fetchone() or (0,)
    assert len(repr(lon)) >= 18  # more digits than a spreadsheet writes
    for fmt in ("xlsx", "csv"):
        exported = client.get(f"/v1/exports/union.{fmt}").content
        if fmt == "csv":
            assert b"'+86 898 88881234" in exported
        r = _post(client, keys["admin"], exported, f"u.{fmt}")
        assert r.status_code == 200 and r.json()["unchanged"] == 1, (fmt, r.text)


@pytest.mark.parametrize(("given", "key"), [
    ("站点编码", "code"), ("*站点编码", "code"), ("站点编码*", "code"), ("编号", "code"),
    (" 站点 名称 ", "name"), ("经度(°)", "lon"), ("经度（°）", "lon"), ("纬度【度】", "lat"),
    ("＊开放时间", "opening_hours"), ("营业时间", "opening_hours"), ("坐标系", "crs"),
    ("所属区县", "district_ref"), ("建设类型", "host_type"), ("微波炉", "yes:microwave"),
    ("其他设施", "extras"), ("面积(㎡)", "floor_area_m2"), ("ｃｏｄｅ", "code"), ("Code", "code"),
    ("opening_hours", "opening_hours"), ("桑拿", None),
])
def test_header_matching(given: str, key: str | None) -> None:
    norm = normalise_header(given)
    # an alias, else an English column's own name (normalised the same way)
    assert header_aliases().get(norm, norm if norm in importer.COLUMNS else None) == key


@pytest.mark.parametrize(("cell", "value"), [
    ("是", True), ("否", False), ("有", True), ("无", False), ("√", True), ("×", False),
    ("✓", True), ("✗", False), ("✔", True), ("✘", False), ("1", True), ("0", False),
    (1, True), (0, False), (1.0, True), ("Y", True), ("n", False), ("YES", True),
    ("no", False), ("true", True), ("FALSE", False), ("", False), (None, False),
    (" 是 ", True), (True, True),
])
def test_yes_no_cells(cell: Any, value: bool) -> None:
    assert yes_no(cell) is value


@pytest.mark.parametrize("cell", ["也许", "2", "有的", 3])
def test_yes_no_refuses_the_rest(cell: Any) -> None:
    with pytest.raises(ValueError, match="是/否"):
        yes_no(cell)


@pytest.mark.parametrize(("cell", "crs"), [
    ("WGS-84", Crs.WGS84), ("wgs84", Crs.WGS84), ("GPS", Crs.WGS84), ("GCJ-02", Crs.GCJ02),
    ("gcj02", Crs.GCJ02), ("火星坐标", Crs.GCJ02), ("高德", Crs.GCJ02), ("腾讯", Crs.GCJ02),
    ("BD-09", Crs.BD09), ("BD09", Crs.BD09), ("百度", Crs.BD09), ("ＧＣＪ－０２", Crs.GCJ02),
])
def test_coordinate_system_cells(cell: str, crs: Crs) -> None:
    assert parse_crs(cell) is crs


def test_file_level_crs_and_duplicate_headers(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    gcj = from_wgs84(109.47, 18.29, Crs.GCJ02)
    sheet = (f"站点编码,站点名称,经度,纬度,坐标系,建设类型,开放时间\n"
             f"F-1,站一,{gcj[0]!r},{gcj[1]!r},,工会自建,24小时\n"  # blank: the file's choice
             f"F-2,站二,109.47,18.29,WGS-84,工会自建,24小时\n")
    r = _post(client, keys["admin"], sheet.encode(), "s.csv", crs="gcj02")
    assert r.status_code == 200, r.text
    points = db.execute("SELECT ST_X(geog::geometry), ST_Y(geog::geometry) FROM station "
                        "ORDER BY code").fetchall()
    for lon, lat in points:
        assert abs(lon - 109.47) < 1e-6 and abs(lat - 18.29) < 1e-6
    both = "站点编码,站点名称,经度,纬度,建设类型,开放时间,营业时间\n"
    r = _post(client, keys["admin"], both.encode(), "s.csv")
    assert r.status_code == 422
    assert "开放时间 and 营业时间 both give opening_hours" in r.text


def test_blank_hours_and_the_workday_column(client: TestClient, keys: dict[str, str],
                                            db: psycopg.Connection[Any]) -> None:
    """A ledger row with no 开放时间 is a station whose hours are unknown (not a refusal),
    and 按法定调休上班 sets the station's choice: 是/否 stored, blank left to the host type."""
    _, tianya = _district(db, 109.47, 18.29)
    header = ["站点编码", "站点名称", "所属区县", "经度", "纬度", "建设类型", "开放时间",
              "按法定调休上班"]
    rows = [header,
            ["ZH-U1", "无时间驿站", tianya, "109.47", "18.29", "环卫作息点", "", "是"],
            ["ZH-U2", "企业驿站", tianya, "109.471", "18.29", "企业", "周一至周五 9:00-17:00",
             "否"],
            ["ZH-U3", "工会驿站", tianya, "109.472", "18.29", "工会自建", "24/7", ""]]
    data = ("\r\n".join(",".join(r) for r in rows) + "\r\n").encode("gb18030")
    r = _post(client, keys["admin"], data, "台账.csv")
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["written"]) == (3, True)
    stored = {code: rest for code, *rest in db.execute(
        "SELECT code, opening_hours, hours_kind, official_workdays FROM station "
        "WHERE code LIKE 'ZH-U%'").fetchall()}
    assert stored == {"ZH-U1": [None, "unknown", True],
                      "ZH-U2": ["Mo-Fr 09:00-17:00", "weekly", False],
                      "ZH-U3": ["24/7", "weekly", None]}
    near = client.get("/v1/stations/nearest", params={"lon": 109.47, "lat": 18.29, "k": 3})
    assert near.status_code == 200, near.text
    by_code = {f["code"]: f for f in near.json()["results"]}
    assert by_code["ZH-U1"]["open_now"] is None
    # The union export writes the choice back as the ledger had it.
    r = client.get("/v1/exports/union.csv")
    assert r.status_code == 200, r.text
    table = list(csv.reader(io.StringIO(r.content[3:].decode())))
    at = [h.rstrip("*") for h in table[0]].index("按法定调休上班")
    by_row = {line[0]: line[at] for line in table[1:]}
    assert (by_row["ZH-U1"], by_row["ZH-U2"], by_row["ZH-U3"]) == ("是", "否", "")
