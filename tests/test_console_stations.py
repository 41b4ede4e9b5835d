"""The console's stations list and station page (issue 26): scope, filters, paging, the
export, refusals as pages.

Through the TestClient; the Chromium walk is in tests/test_console_browser.py.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.domain.audit import actor_json
from geo_service.domain.catalogue import TEN_ONES
from geo_service.domain.principal import Principal
from geo_service.web.security_headers import STRICT_CSP
from tests.conftest import station_body
from tests.helpers import clone_station, insert_stations
from tests.test_console import TIANYA, make, sign_in

HAITANG = "460202"
TODAY = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
_IN = {"city_code": "460200", "province_code": "460000"}


def _ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


@pytest.fixture
def city(areas: psycopg.Connection[Any]) -> dict[str, int]:
    """Five Tianya stations and one in Haitang (whose name also matches 解放), and an
    editor, an inspector and an admin of Tianya.

    T1 has everything (ten of ten, verified 10 days ago); T2 lacks a phone and an
    address and was never verified; T3 is planned, at a sanitation depot; T4's imported
    最近核实日期 is 100 days old; T5's is too, but it was inspected 5 days ago."""
    full = dict(address="三亚市天涯区榆亚路1号", phone="0898-1", opening_hours="Mo-Fr 08:00-18:00",
                district_code=TIANYA, district="天涯区", **_IN)
    insert_stations(areas, [
        station_body("T1", 109.50, 18.25, name="天涯海角驿站", last_verified_on=_ago(10),
                     amenities=[a.code for a in TEN_ONES],
                     **{**full, "address": "三亚市天涯区解放路1号"}),
        station_body("T2", 109.48, 18.27, name="解放路环卫驿站", district_code=TIANYA,
                     district="天涯区", **_IN),
        station_body("T3", 109.45, 18.30, name="筹建驿站", status="planned",
                     host_type="sanitation_depot", **full),
        station_body("T4", 109.40, 18.32, name="老核实驿站", last_verified_on=_ago(100),
                     **full),
        station_body("T5", 109.30, 18.35, name="新巡查驿站", last_verified_on=_ago(100),
                     **full),
        station_body("H1", 109.70, 18.35, name="海棠解放驿站", district_code=HAITANG,
                     district="海棠区", **_IN)])
    areas.execute("INSERT INTO inspection (station_id, inspected_on, inspector, items, "
                  "ten_ones_count, amenity_mask) SELECT id, %s, '巡查员', '{}', 2, 20 "
                  "FROM station WHERE code = 'T5'", (_ago(5),))
    return {"ed": make(areas, "ed", "editor"), "insp": make(areas, "insp", "inspector"),
            "boss": make(areas, "boss", "admin")}


def codes(page: str) -> list[str]:
    """The station codes of a list page's rows, in order."""
    return re.findall(r'<tr><td><a href="/console/stations/([^"?]+)">', page)


def listed(client: TestClient, query: str = "") -> list[str]:
    answer = client.get("/console/stations" + query)
    assert answer.status_code == 200, answer.text
    return codes(answer.text)


def test_the_list_is_the_area_searched_filtered_and_sorted(
        client: TestClient, city: dict[str, int]) -> None:
    assert sign_in(client, "ed").status_code == 303
    assert listed(client) == ["T1", "T2", "T3", "T4", "T5"]  # never Haitang's H1
    assert listed(client, "?q=解放") == ["T1", "T2"]  # name or address; not H1
    assert listed(client, "?q=t3") == ["T3"]  # the code, any case
    assert listed(client, "?status=planned") == ["T3"]
    assert listed(client, "?host_type=sanitation_depot") == ["T3"]
    assert listed(client, "?ten=complete") == ["T1"]
    assert listed(client, "?ten=missing") == ["T2", "T3", "T4", "T5"]
    # Serving stations last verified (imported date or inspection, the later) over 90
    # days ago or never; the planned T3 is not due.
    assert listed(client, "?unverified=1") == ["T2", "T4"]
    assert listed(client, "?off_map=1") == ["T2"]
    assert listed(client, "?area=" + TIANYA + "&status=open&sort=-code") == [
        "T5", "T4", "T2", "T1"]
    assert listed(client, "?sort=verified") == ["T2", "T3", "T4", "T1", "T5"]
    page = client.get("/console/stations?off_map=1").text
    assert "缺：地址、电话" in page and "从未核实" in page
    assert 'aria-sort="ascending"' in page  # the code column sorts the list
    english = client.get("/console/stations?lang=en&status=planned").text
    assert "筹建驿站" in english and ">planned<" in english and "Export (union template)" in english


def test_an_inspector_lists_too_and_another_district_is_never_listed(
        client: TestClient, areas: psycopg.Connection[Any], city: dict[str, int]) -> None:
    make(areas, "hai", "editor", area=HAITANG)
    assert sign_in(client, "insp").status_code == 303
    assert listed(client) == ["T1", "T2", "T3", "T4", "T5"]
    client.cookies.clear()
    assert sign_in(client, "hai").status_code == 303
    assert listed(client) == ["H1"]
    assert listed(client, "?q=驿站") == ["H1"]  # in every name: still only Haitang's
    refused = client.get("/console/stations?area=" + TIANYA)
    assert refused.status_code == 422 and "area" in refused.text
    assert codes(refused.text) == []
    make(areas, "sanya", "editor", area="460200")
    client.cookies.clear()
    assert sign_in(client, "sanya").status_code == 303
    page = client.get("/console/stations").text
    assert re.search(r'<optgroup label="区县">.*天涯区 \(460204\).*</optgroup>', page)
    assert codes(page) == ["H1", "T1", "T2", "T3", "T4", "T5"]
    assert listed(client, "?area=" + HAITANG) == ["H1"]


def test_paging_is_stable_and_the_export_holds_exactly_the_listed_rows(
        client: TestClient, areas: psycopg.Connection[Any], city: dict[str, int]) -> None:
    clone_station(areas, "T4", 45, "TC")  # 45 more Tianya stations, like T4
    assert sign_in(client, "ed").status_code == 303
    query = "?ten=missing&sort=-name"
    pages = [listed(client, f"{query}&per=20&page={n}") for n in (1, 2, 3)]
    assert [len(p) for p in pages] == [20, 20, 9]
    rows = [c for p in pages for c in p]
    assert len(set(rows)) == 49 and "T1" not in rows
    assert listed(client, f"{query}&per=20&page=4") == []
    assert "共 49 座驿站，本页之后已没有。" in client.get(f"/console/stations{query}&page=9").text
    text = client.get(f"/console/stations{query}&per=20&page=2").text
    assert "共 49 座驿站，本页第 21–40 座。" in text and "第 2 / 3 页" in text
    assert 'href="/console/stations?ten=missing&amp;sort=-name&amp;page=3&amp;per=20"' in text
    export = re.search(r'<a class="button" href="([^"]+)" download>导出（工会模板）', text)
    assert export is not None
    answer = client.get(export.group(1).replace("&amp;", "&"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(answer.content), read_only=True)
    sheet = list(book.worksheets[0].iter_rows(values_only=True))
    column = next(i for i, h in enumerate(sheet[0]) if str(h).startswith("站点编码"))
    assert [r[column] for r in sheet[1:]] == rows  # every page, in the list's order
    readme = dict(r[:2] for r in book.worksheets[1].iter_rows(values_only=True))
    assert readme["站点数 Stations"].startswith("49 (")
    assert readme["筛选 Filters"] == "account=ed, scope=460204, ten=missing, sort=-name"


#: Bad list parameters and the field each refusal must name.
BAD = (("?page=0", "page"), ("?page=abc", "page"), ("?per=7", "per"), ("?sort=bogus", "sort"),
       ("?status=gone", "status"), ("?host_type=x", "host_type"), ("?ten=some", "ten"),
       ("?unverified=2", "unverified"), ("?q=" + "长" * 101, "q"), ("?area=460202", "area"))


def test_a_bad_filter_is_a_422_page_naming_it_for_the_list_and_the_export(
        client: TestClient, city: dict[str, int]) -> None:
    assert sign_in(client, "ed").status_code == 303
    for query, field in BAD:
        for path in ("/console/stations", "/console/stations.xlsx"):
            answer = client.get(path + query)
            assert answer.status_code == 422, (path, query, answer.text)
            assert answer.headers["content-type"].startswith("text/html")
            assert f"{field}: " in answer.text and "筛选条件有误" in answer.text, query


def test_the_station_page_shows_every_part_and_the_history_names_the_person(
        client: TestClient, areas: psycopg.Connection[Any], city: dict[str, int]) -> None:
    editor = Principal(key_id=None, name="ed", role="editor", area_code=TIANYA,
                       user_id=city["ed"])
    with areas.transaction():
        areas.execute("SELECT set_config('geo.actor', %s, true)", (actor_json(editor),))
        areas.execute("UPDATE station SET phone = '0898-2', version = version + 1 "
                      "WHERE code = 'T1'")
    areas.execute("UPDATE staff_user SET display_name = '天涯区编辑' WHERE name = 'ed'")
    areas.execute("INSERT INTO station_report (station_id, kind, comment, device_hash) "
                  "SELECT id, 'amenity_broken', '微波炉坏了 <b>', 'dev' FROM station "
                  "WHERE code = 'T1'")
    assert sign_in(client, "ed").status_code == 303
    page = client.get("/console/stations/T1")
    assert page.status_code == 200
    text = page.text
    assert "<h1>天涯海角驿站</h1>" in text
    assert text.count("：<strong>有</strong>") == 10 and "共 10/10 项" in text
    assert "Mo-Fr 08:00-18:00" in text and "周一至周五 08:00-18:00" in text
    assert re.search(r"现在(营业|已关门)，将于 \d{4}-\d\d-\d\d \d\d:\d\d (关门|开门)", text)
    assert "天涯区编辑（ed）" in text and "电话：0898-1 → 0898-2" in text
    assert 'href="/console/stations/T1/edit"' in text and "/console/stations/T1/photos" in text
    assert 'href="/console/stations/new"' in client.get("/console/stations").text
    assert 'name="what" value="station"' in text  # the poster, printed by the posters page
    assert 'href="/app/s/T1"' in text and "GCJ-02" in text
    assert "共 1 条，其中待处理 1 条" in text and "微波炉坏了 &lt;b&gt;" in text
    queue = client.get("/console/reports").text  # the queue leads to the station's page
    assert '<a href="/console/stations/T1">天涯海角驿站 (T1)</a>' in queue
    updated = areas.execute("SELECT updated_at FROM station WHERE code = 'T1'").fetchone()
    assert updated is not None  # on the clerk's clock (Beijing), not UTC
    local = updated[0].astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"<th scope=\"row\">更新时间</th><td>{local:%Y-%m-%d %H:%M}</td>" in text
    assert "近 12 个月共 0 人次。" in text
    t2 = client.get("/console/stations/T2?lang=en").text
    assert "Stations" in t2 and "lacks: address, phone" in t2 and "never" in t2
    assert "Refrigerator: <strong>no</strong>" in t2


def test_another_district_is_403_unknown_404_and_an_inspector_sees_no_edit_links(
        client: TestClient, city: dict[str, int]) -> None:
    assert client.get("/console/stations/T1", follow_redirects=False).status_code == 303
    assert sign_in(client, "ed").status_code == 303
    other = client.get("/console/stations/H1")
    assert other.status_code == 403 and "不在您管辖的区域" in other.text
    assert "海棠解放驿站" not in other.text
    assert client.get("/console/stations/NOPE").status_code == 404
    assert "没有编号为 NOPE 的驿站" in client.get("/console/stations/NOPE").text
    assert client.get("/console/stations/T1?before=x").status_code == 422
    client.cookies.clear()
    assert sign_in(client, "insp").status_code == 303
    text = client.get("/console/stations/T1").text
    assert "/console/stations/T1/edit" not in text and "/delete" not in text
    assert 'id="h-history"' not in text and 'id="h-reports"' not in text
    assert "/console/stations/new" not in client.get("/console/stations").text
    assert "仅编辑和管理员可见" in text


def test_home_and_nav_lead_to_the_stations(client: TestClient, city: dict[str, int]) -> None:
    assert sign_in(client, "insp").status_code == 303
    home = client.get("/console/").text
    assert '<a href="/console/stations">驿站</a>' in home
    assert "驿站列表" not in home and "即将推出" not in home  # nothing left to come
    for path in ("/console/stations", "/console/stations/T1", "/console/stations/H1",
                 "/console/stations?page=0"):
        answer = client.get(path)
        assert answer.headers["content-security-policy"] == STRICT_CSP, path
        assert answer.headers["cache-control"] == "no-store", path


def test_an_export_past_the_build_slots_is_a_429_page(
        client: TestClient, city: dict[str, int]) -> None:
    """The console's exports take the XLSX build slots the API's take."""
    from geo_service.feeds.service import BuildSlots

    assert sign_in(client, "ed").status_code == 303
    client.app.state.xlsx_slots = BuildSlots(0)  # type: ignore[attr-defined]
    answer = client.get("/console/stations.xlsx?status=open")
    assert answer.status_code == 429 and answer.headers["retry-after"].isdigit()
    assert "正在生成的表格已达本服务同时生成的上限" in answer.text
