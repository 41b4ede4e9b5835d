"""Spreadsheet import the way a clerk works (issue 26): a real-style ledger, one pass that
names every problem with Excel's row numbers, preview → confirm that applies exactly the
preview (and refuses a stale one), the sheet handed back with a 错误说明 column, and the
"did you mean GCJ-02?" question.

The ledger is written here with openpyxl as a district union keeps it: a merged title row,
a two-row header (十个一 merged over its ten columns, the others merged down), 序号 and
备注 columns, 有/无/√ cells, the app's amenity words (手机充电), GCJ-02 points, a
district without 区, a functional zone (高新区) and a bad hours value.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook

from geo_service.domain import accounts
from geo_service.domain.catalogue import TEN_ONES, amenity_mask
from geo_service.domain.coords import Crs, from_wgs84, gcj02_to_wgs84
from geo_service.stations.import_preview import crs_hint
from tests.conftest import station_body
from tests.helpers import insert_stations
from tests.test_console import csrf_of, sign_in

PASSWORD = "correct horse battery"
TIANYA = "460204"
#: The ten ones as the ledger heads them: the app's words where they differ (手机充电).
TEN_HEADS = ["室内休息场所", "座椅", "微波炉", "饮水机", "卫生间", "医药箱", "书报架", "手机充电",
             "电冰箱", "雨伞架"]
HEAD = ["序号", "站点编码", "站点名称", "所属区县", "详细地址", "经度", "纬度", "坐标系",
        "建设类型", "开放时间"]
#: Stored WGS-84 point of the station the ledger updates; the ledger gives it in GCJ-02,
#: moved about 40 m east.
OLD = (109.47, 18.29)
MOVED = (109.4704, 18.29)


def ledger(rows: list[list[Any]]) -> bytes:
    """A district's ledger: title row 1, header rows 2–3, data from row 4 (as Excel
    numbers them), 备注 last."""
    book = Workbook()
    ws = book.active
    assert ws is not None
    width = len(HEAD) + len(TEN_HEADS) + 1
    ws.cell(row=1, column=1, value="三亚市天涯区户外劳动者服务站点台账（2026 年 12 月）")
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    for i, head in enumerate(HEAD, start=1):
        ws.cell(row=2, column=i, value=head)
        ws.merge_cells(start_row=2, start_column=i, end_row=3, end_column=i)
    ten_at = len(HEAD) + 1
    ws.cell(row=2, column=ten_at, value="十个一")
    ws.merge_cells(start_row=2, start_column=ten_at, end_row=2, end_column=ten_at + 9)
    for j, head in enumerate(TEN_HEADS):
        ws.cell(row=3, column=ten_at + j, value=head)
    ws.cell(row=2, column=width, value="备注")
    ws.merge_cells(start_row=2, start_column=width, end_row=3, end_column=width)
    for n, row in enumerate(rows, start=4):
        for i, value in enumerate([n - 3, *row], start=1):
            ws.cell(row=n, column=i, value=value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _gcj(lon: float, lat: float) -> tuple[float, float]:
    return from_wgs84(lon, lat, Crs.GCJ02)


def ledger_rows(*, fixed: bool) -> list[list[Any]]:
    """Sheet rows 4–8: an update in GCJ-02 (hours and point), a new station in 天涯 (no
    区), one in 高新区 (a functional zone), one with bad hours (row 7) and, before the
    fix, one outside the editor's district (row 8: two problems only the database sees)."""
    yes10 = ["有"] * 10
    mixed = ["√", "√", "×", "有", "无", "是", "否", "√", "", "有"]
    rows = [
        ["TY-0001", "三亚湾路环卫驿站", "天涯区", "三亚湾路88号", *_gcj(*MOVED), "GCJ-02",
         "环卫作息点", "周一至周日 6:00-22:00", *yes10, "已核实"],
        ["TY-0002", "河西路爱心驿站", "天涯", "河西路1号", *_gcj(109.48, 18.30), "高德",
         "工会自建", "全天24小时", *mixed, ""],
        ["TY-0003", "高新区快递驿站", "高新区", "创意产业园2号", *_gcj(109.46, 18.30),
         "GCJ-02", "企业共建", "周一至周五 9:00-17:00", *yes10, "新建"],
        ["TY-0004", "凤凰路驿站", "天涯区", "凤凰路5号", *_gcj(109.47, 18.31), "GCJ-02",
         "工会自建", "周一至周五 9:00-17:00" if fixed else "上午9点到下午5点看情况", *yes10,
         ""],
    ]
    if not fixed:
        rows.append(["HT-0001", "海棠湾驿站", "海棠", "海棠北路5号", *_gcj(109.70, 18.35),
                     "GCJ-02", "工会自建", "24小时", *yes10, "不是本区的"])
    return rows


@pytest.fixture
def editor(areas: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Tianya's editor and one stored station of Tianya (the one the ledger updates)."""
    insert_stations(areas, [station_body("TY-0001", *OLD, opening_hours="24/7",
                                         district_code=TIANYA)])
    accounts.create_user(areas, name="ed", display_name="天涯区编辑", role="editor",
                         area_code=TIANYA, password=PASSWORD)
    return areas


def _stations(db: psycopg.Connection[Any]) -> dict[str, tuple[Any, ...]]:
    rows = db.execute(
        "SELECT code, name, district_code, opening_hours, amenity_mask, host_type, "
        "round(ST_X(geog::geometry)::numeric, 7), round(ST_Y(geog::geometry)::numeric, 7), "
        "version FROM station ORDER BY code")
    return {r[0]: r[1:] for r in rows}


def _upload(c: TestClient, data: bytes, name: str = "台账.xlsx", crs: str = "wgs84") -> Any:
    form = c.get("/console/import")
    assert form.status_code == 200
    return c.post("/console/import", data={"csrf_token": csrf_of(form.text), "crs": crs},
                  files={"file": (name, data)})


def _token(url: str) -> str:
    m = re.search(r"/console/import/([A-Za-z0-9_-]+)", url)
    assert m, url
    return m.group(1)


def _problems(page: str) -> list[tuple[int, str]]:
    """(Excel row, column) of each problem the preview page lists."""
    table = page.split('id="h-problems"', 1)[1].split("</table>", 1)[0]
    return [(int(r), col) for r, col in
            re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td>", table)]


def test_first_preview_names_every_problem_then_confirm_applies_exactly_it(
        client: TestClient, editor: psycopg.Connection[Any]) -> None:
    db = editor
    assert sign_in(client, "ed").status_code == 303
    before = _stations(db)
    # The first preview: every problem at once, on the rows Excel shows.
    r = _upload(client, ledger(ledger_rows(fixed=False)))
    assert r.status_code == 200, r.text
    token = _token(str(r.url))
    assert sorted(_problems(r.text)) == [(7, "开放时间"), (8, "所属区县"),
                                         (8, "所属区县（代码）")]
    page = r.text
    assert "开放时间的写法无法识别" in page and "示例：" in page
    assert "不在您的管理区域内" in page  # the database's check, in the same first pass
    assert "序号 (A)" in page and "备注 (U)" in page  # kept aside, not refused
    assert "高新区 → 按坐标归入 天涯区" in page
    assert "确认导入" not in page  # nothing to confirm while there are problems
    assert _stations(db) == before
    # The sheet handed back: same layout, title row kept, a 错误说明 column.
    sheet = client.get(f"/console/import/{token}/errors")
    assert sheet.status_code == 200
    ws = load_workbook(io.BytesIO(sheet.content)).worksheets[0]
    assert str(ws["A1"].value).startswith("三亚市天涯区")
    col = next(c.column for c in ws[3] if c.value == "错误说明")
    assert "开放时间" in str(ws.cell(row=7, column=col).value)
    assert "所属区县" in str(ws.cell(row=8, column=col).value)
    assert ws.cell(row=4, column=col).value is None
    # Fixed and uploaded again: the preview lists what confirm will do.
    r = _upload(client, ledger(ledger_rows(fixed=True)))
    token = _token(str(r.url))
    assert r.status_code == 200 and 'id="h-problems"' not in r.text
    assert "新增 3 个" in r.text and "更新 1 个" in r.text
    assert "开放时间：24/7 → 周一至周日 6:00-22:00（06:00-22:00）" in r.text
    assert re.search(r"位置移动约 4\d 米", r.text)
    assert _stations(db) == before  # a preview writes nothing
    done = client.post(f"/console/import/{token}/confirm", data={"csrf_token": csrf_of(r.text)})
    assert done.status_code == 200 and "已导入：新增 3 个，更新 1 个，不变 0 个。" in done.text
    after = _stations(db)
    assert set(after) == {"TY-0001", "TY-0002", "TY-0003", "TY-0004"}
    updated = after["TY-0001"]
    assert updated[2] == "06:00-22:00" and updated[-1] == before["TY-0001"][-1] + 1
    assert (float(updated[5]), float(updated[6])) == pytest.approx(MOVED, abs=2e-6)
    assert updated[3] == before["TY-0001"][3] | amenity_mask([a.code for a in TEN_ONES])
    assert after["TY-0002"][1] == TIANYA and after["TY-0003"][1] == TIANYA  # 天涯, 高新区
    mixed = [a.code for a, v in zip(TEN_ONES, ["√", "√", "×", "有", "无", "是", "否", "√", "",
                                               "有"], strict=True) if v in ("√", "有", "是")]
    assert after["TY-0002"][3] == amenity_mask(mixed)
    audit = db.execute("SELECT DISTINCT user_id FROM audit_log WHERE import_id IS NOT NULL")
    assert [row[0] for row in audit] == [db.execute(
        "SELECT id FROM staff_user WHERE name = 'ed'").fetchone()[0]]  # type: ignore[index]
    # A second click shows the first one's result and writes nothing more.
    again = client.post(f"/console/import/{token}/confirm", data={"csrf_token": csrf_of(r.text)})
    assert "已导入：新增 3 个" in again.text and _stations(db) == after


def test_a_stale_confirm_is_refused_and_previewed_again(
        client: TestClient, editor: psycopg.Connection[Any]) -> None:
    db = editor
    sign_in(client, "ed")
    r = _upload(client, ledger(ledger_rows(fixed=True)))
    token = _token(str(r.url))
    assert "更新 1 个" in r.text
    # Someone edits the station the preview read, after the preview.
    db.execute("UPDATE station SET name = '别人改过的名字', version = version + 1 "
               "WHERE code = 'TY-0001'")
    before = _stations(db)
    stale = client.post(f"/console/import/{token}/confirm",
                        data={"csrf_token": csrf_of(r.text)})
    assert stale.status_code == 409
    assert "有人修改了这些站点" in stale.text and "别人改过的名字 → 三亚湾路环卫驿站" in stale.text
    assert _stations(db) == before  # nothing applied that the clerk did not see
    done = client.post(f"/console/import/{token}/confirm",
                       data={"csrf_token": csrf_of(stale.text)})
    assert "已导入：新增 3 个，更新 1 个" in done.text
    # No CSRF token, no import; another person's token shows nothing.
    assert client.post(f"/console/import/{token}/confirm").status_code == 403


def test_inspectors_cannot_import_and_other_people_cannot_see_an_upload(
        client: TestClient, editor: psycopg.Connection[Any]) -> None:
    accounts.create_user(editor, name="insp", role="inspector", area_code=TIANYA,
                         password=PASSWORD)
    accounts.create_user(editor, name="ed2", role="editor", area_code=TIANYA,
                         password=PASSWORD)
    sign_in(client, "ed")
    token = _token(str(_upload(client, ledger(ledger_rows(fixed=True))).url))
    client.post("/console/sign-out", data={"csrf_token": csrf_of(client.get("/console/").text)})
    sign_in(client, "ed2")
    assert client.get(f"/console/import/{token}").status_code == 404
    client.post("/console/sign-out", data={"csrf_token": csrf_of(client.get("/console/").text)})
    sign_in(client, "insp")
    assert client.get("/console/import").status_code == 403
    assert "批量导入" not in client.get("/console/").text  # not offered either
    client.post("/console/sign-out", data={"csrf_token": csrf_of(client.get("/console/").text)})
    sign_in(client, "ed")
    assert "Upload and preview" in client.get("/console/import?lang=en").text


def test_one_pass_over_the_api_and_gcj02_question(
        client: TestClient, keys: dict[str, str], areas: psycopg.Connection[Any]) -> None:
    """The API's dry run names a row's own problem and the database's in one pass, with
    the spreadsheet row; a file read as WGS-84 whose points sit where GCJ-02 would put
    the stored ones asks "did you mean GCJ-02?"."""
    insert_stations(areas, [station_body("A1", 109.47, 18.29), station_body("A2", 109.48, 18.30)])
    head = "台账标题\n站点编码,站点名称,经度,纬度,建设类型,开放时间,序号\n"
    bad = head + ("B1,站,109.47,18.29,工会自建,上午看情况,1\n"
                  "B2,站,109.70,18.35,工会自建,24小时,2\n")
    r = client.post("/v1/stations:import", params={"dry_run": "true"},
                    files={"file": ("s.csv", bad.encode())},
                    headers={"Authorization": keys["tianya_admin"]})
    report = r.json()
    assert {(p["sheet_row"], p["field"]) for p in report["errors"]} == {
        (3, "开放时间"), (4, "district_code")}
    assert report["ignored_columns"] == ["序号 (G)"] and report["header_row"] == 2
    shifted = "站点编码,站点名称,经度,纬度,建设类型\n" + "".join(
        f"{code},测试驿站 {code},{lon:.7f},{lat:.7f},工会自建\n" for code, (lon, lat) in
        (("A1", _gcj(109.47, 18.29)), ("A2", _gcj(109.48, 18.30))))
    r = client.post("/v1/stations:import", params={"dry_run": "true"},
                    files={"file": ("s.csv", shifted.encode())},
                    headers={"Authorization": keys["admin"]})
    preview = r.json()["preview"]
    assert preview["update_count"] == 2 and preview["crs_hint"]["suggest"] == "gcj02"
    r = client.post("/v1/stations:import", params={"dry_run": "true", "crs": "gcj02"},
                    files={"file": ("s.csv", shifted.encode())},
                    headers={"Authorization": keys["admin"]})
    preview = r.json()["preview"]
    assert preview["crs_hint"] is None
    assert all((u["moved_m"] or 0) < 1 for u in preview["update"])  # 7 decimals: ~1 cm


def test_crs_hint_needs_most_moved_points_to_fit() -> None:
    stored = [(109.47, 18.29), (109.48, 18.30), (109.49, 18.31)]
    as_gcj = [(*_gcj(*p), *p, Crs.WGS84) for p in stored]
    assert crs_hint(as_gcj) is not None
    elsewhere = [(p[0] + 0.01, p[1], *p, Crs.WGS84) for p in stored]
    assert crs_hint(as_gcj[:1] + elsewhere) is None
    assert gcj02_to_wgs84(*_gcj(109.47, 18.29)) == pytest.approx((109.47, 18.29), abs=1e-6)


def test_union_export_gives_back_the_coordinate_system_and_hours_as_typed(
        client: TestClient, keys: dict[str, str], areas: psycopg.Connection[Any]) -> None:
    """Round trip: a row typed in GCJ-02 with Chinese hours comes back in GCJ-02 (坐标系
    says so) with the hours as typed; a WGS-84 row with OSM hours stays so; hours edited
    through the API since come back in OSM; re-importing the export changes nothing."""
    lon, lat = _gcj(109.47, 18.29)
    sheet = ("站点编码,站点名称,经度,纬度,坐标系,建设类型,开放时间\n"
             f"RT-1,驿站一,{lon!r},{lat!r},高德,工会自建,周一至周五 9:00-17:00\n"
             "RT-2,驿站二,109.48,18.3,,工会自建,Mo-Fr 08:00-18:00\n"
             "RT-3,驿站三,109.49,18.31,,工会自建,全天24小时\n")
    admin = {"Authorization": keys["admin"]}
    r = client.post("/v1/stations:import", files={"file": ("s.csv", sheet.encode())},
                    headers=admin)
    assert r.status_code == 200 and r.json()["created"] == 3, r.text
    r = client.patch("/v1/stations/RT-3", json={"opening_hours": "Mo-Su 06:00-20:00"},
                     headers={**admin, "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    export = client.get("/v1/exports/union.csv")
    assert export.status_code == 200
    rows = {r[0]: r for r in csv_rows(export.content)}
    head = csv_rows(export.content)[0]
    at = {h.rstrip("*"): i for i, h in enumerate(head)}
    rt1, rt2, rt3 = rows["RT-1"], rows["RT-2"], rows["RT-3"]
    assert rt1[at["坐标系"]] == "GCJ-02" and rt1[at["开放时间"]] == "周一至周五 9:00-17:00"
    assert (float(rt1[at["经度"]]), float(rt1[at["纬度"]])) == pytest.approx((lon, lat),
                                                                          abs=1e-9)
    assert rt2[at["坐标系"]] == "WGS-84" and rt2[at["开放时间"]] == "Mo-Fr 08:00-18:00"
    assert rt3[at["开放时间"]] == "06:00-20:00"  # edited since: OSM, not the stale text
    again = client.post("/v1/stations:import", files={"file": ("u.csv", export.content)},
                        headers=admin)
    assert again.status_code == 200, again.text
    assert (again.json()["updated"], again.json()["unchanged"]) == (0, 3)


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_csv_comes_back_with_the_error_column_and_reads_again() -> None:
    """A CSV ledger (title row, header on row 2) gets 错误说明 on the refused rows only;
    uploaded again, the column is set aside like any unknown one."""
    from geo_service.domain.sheet import header_aliases
    from geo_service.imports.readers import Format, read_table
    from geo_service.stations.error_sheet import with_error_column
    from geo_service.stations.importer import _READ, REQUIRED

    data = ("天涯区台账\n站点编码,站点名称,经度,纬度,建设类型,开放时间\n"
            "A-1,站一,109.47,18.29,工会自建,24/7\nA-2,站二,109.47,18.29,工会自建,看情况\n"
            ).encode("gb18030")
    errors = [{"sheet_row": 4, "field": "开放时间", "column": "开放时间",
               "reason_zh": "开放时间的写法无法识别", "hint": "示例：周一至周五 9:00-17:00",
               "problem": "cannot convert"}]
    back = with_error_column(data, Format.CSV, errors, header_row=2)
    rows = csv_rows(back)
    assert rows[0][0] == "天涯区台账" and rows[1][-1] == "错误说明"
    assert rows[2][-1] == "" and rows[3][-1].startswith("开放时间：开放时间的写法无法识别（示例")
    table = read_table(back, Format.CSV, 10, _READ, REQUIRED, aliases=header_aliases(), ledger=True)
    assert table.header_row == 2 and table.ignored == ["错误说明 (G)"]
    assert [r["_line"] for r in table.rows] == [3, 4]


def test_the_gcj02_question_offers_a_second_preview_in_gcj02(
        client: TestClient, editor: psycopg.Connection[Any]) -> None:
    insert_stations(editor, [station_body("TY-0002", 109.46, 18.30, district_code=TIANYA)])
    sign_in(client, "ed")
    sheet = "站点编码,站点名称,经度,纬度,建设类型\n" + "".join(
        f"{code},测试驿站 {code},{lon!r},{lat!r},工会自建\n" for code, (lon, lat) in
        (("TY-0001", _gcj(*OLD)), ("TY-0002", _gcj(109.46, 18.30))))
    r = _upload(client, sheet.encode(), "points.csv")
    assert "是否应选择 GCJ-02 坐标系？" in r.text and "位置移动约" in r.text
    token = _token(str(r.url))
    again = client.post(f"/console/import/{token}/recheck",
                        data={"csrf_token": csrf_of(r.text), "crs": "gcj02"})
    assert again.status_code == 200 and "坐标系 GCJ-02" in again.text
    assert "是否应选择 GCJ-02" not in again.text and "位置移动" not in again.text


def test_a_district_merged_down_its_stations_reads_on_every_row() -> None:
    """Ledgers merge 所属区县 down the rows of its stations: each row reads the value of
    the merged range's top cell (openpyxl's read-only mode leaves them empty)."""
    from geo_service.domain.sheet import header_aliases
    from geo_service.imports.readers import Format, read_table
    from geo_service.stations.importer import _READ, REQUIRED

    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["天涯区台账"])
    ws.append(["站点编码", "站点名称", "所属区县", "经度", "纬度", "建设类型"])
    ws.append(["A-1", "一", "天涯区", 109.47, 18.29, "工会自建"])
    ws.append(["A-2", "二", None, 109.46, 18.30, "工会自建"])
    ws.merge_cells("C3:C4")
    out = io.BytesIO()
    book.save(out)
    table = read_table(out.getvalue(), Format.XLSX, 10, _READ, REQUIRED,
                       aliases=header_aliases(), ledger=True)
    assert [(r["district_ref"], r["_line"]) for r in table.rows] == [("天涯区", 3),
                                                                      ("天涯区", 4)]
