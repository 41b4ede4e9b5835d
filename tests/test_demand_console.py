"""The console's demand page as a clerk uses it (issue 27), in Chromium with every outside
request blocked: a city editor of a city with stations and no demand runs coverage on the
planning page and reads it labelled as coverage of area; sees on the demand page that
the city has no demand data, downloads the template, uploads a Chinese sheet with a
mistake (the page names the Excel row and the column), fixes it, checks it, imports it,
sees it counted, and runs coverage again: now of workers, the scorecard by district name.
axe-core finds nothing serious at 1280×800 and 768 wide; screenshots in
``tests/artifacts/``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from openpyxl import Workbook, load_workbook

from geo_service.domain import accounts
from geo_service.web.security_headers import STRICT_CSP
from tests.conftest import station_body
from tests.helpers import insert_stations, live_server
from tests.test_console_browser import PASSWORD, _check


def _sheet(path: Path, rows: list[tuple[Any, ...]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["编号", "经度（°）", "纬度", "劳动者人数", "工种", "坐标系"])
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


def test_editor_uploads_a_chinese_demand_sheet_and_sees_it_counted(
        browser: Any, areas: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    accounts.create_user(areas, name="planner", display_name="三亚市规划员", role="editor",
                         area_code="460200", password=PASSWORD)
    insert_stations(areas, [  # stations and no demand: a city as the union starts it
        station_body("TY-1", 109.50, 18.25, district_code="460204", city_code="460200"),
        station_body("JY-1", 109.53, 18.27, district_code="460203", city_code="460200")])
    good = [("SY-1", 109.51, 18.25, 12, "外卖骑手", "高德"),
            ("SY-2", 109.52, 18.26, 30, "环卫工人", "GCJ-02"),
            ("SY-3", 109.53, 18.27, 8, "快递员", "WGS-84")]
    bad = _sheet(tmp_path / "需求-错.xlsx", [good[0], (*good[1][:4], "宇航员", "GCJ-02")])
    fixed = _sheet(tmp_path / "需求.xlsx", good)
    outside: list[str] = []
    policies: list[str | None] = []
    with live_server(db_url) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 800},
                                      locale="zh-CN", accept_downloads=True)
        context.route("**/*", lambda route: route.continue_()
                      if urlsplit(route.request.url).hostname == "127.0.0.1"
                      else (outside.append(route.request.url), route.abort()))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("response", lambda r: policies.append(r.headers.get("content-security-policy"))
                if urlsplit(r.url).path.startswith("/console/demand") else None)
        page.goto(base + "/console/")
        page.fill("#name", "planner")
        page.fill("#password", PASSWORD)
        page.click("button:has-text('登录')")

        def run_coverage() -> None:
            page.click("nav >> text=覆盖规划")
            page.wait_for_selector("h1:has-text('覆盖规划')")
            page.select_option("#area", "460200")
            page.fill("#add", "1")
            page.click("button:has-text('计算覆盖与选址')")
            # A run is CPU work: on a busy 2-core machine it may take longer than
            # Playwright's 30 s default (once in CI). A refusal shows in the message.
            page.wait_for_selector("#scorecard, [role=alert]", timeout=120_000)
            assert page.locator("#scorecard").count() == 1, page.inner_text("main")

        run_coverage()  # no demand: coverage of area, and it says so
        label = page.locator("p.msg", has_text="本区域没有需求数据，覆盖率是面积")
        assert label.count() == 1 and label.inner_text().startswith("按面积覆盖（无需求数据）")
        # Its columns count cells, not workers: the headers say so, not only the note.
        heads = page.locator("#scorecard thead th").all_inner_texts()
        assert "未覆盖六边形数" in heads and "未覆盖人数" not in heads, heads
        assert "新增覆盖六边形数" in page.locator("#sites thead th").all_inner_texts()
        _check(page, "planning-by-area")
        page.click("nav >> text=需求数据")
        page.wait_for_selector("h1:has-text('需求数据')")
        assert page.locator("text=该区域没有需求数据：覆盖分析将按面积计算"
                            "（按面积覆盖（无需求数据））").count() == 1
        _check(page, "demand")
        with page.expect_download() as download:
            page.click("text=下载需求点导入模板（XLSX）")
        book = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
        assert book.sheetnames == ["需求点 demand", "说明 README"]

        page.set_input_files("#sheet_file", str(bad))
        page.click("button:has-text('预检（不写入）')")
        page.wait_for_selector("text=发现 1 处问题，未写入任何数据。")
        row = page.locator("table tr", has_text="宇航员")
        assert [row.locator("td").nth(i).inner_text() for i in range(3)] == ["3", "SY-2", "工种"]
        _check(page, "demand-problems")

        page.set_input_files("#sheet_file", str(fixed))
        page.select_option("#sheet_crs", "gcj02")
        page.click("button:has-text('预检（不写入）')")
        page.wait_for_selector("text=预检通过，尚未写入")
        assert areas.execute("SELECT count(*) FROM demand_point").fetchone() == (0,)
        page.set_input_files("#sheet_file", str(fixed))
        page.click("form:has(#sheet_file) button:has-text('导入')")
        page.wait_for_selector("text=已导入。")
        total = page.locator("#stock tr", has_text="合计")
        assert total.locator("td").nth(0).inner_text() == "3"
        assert total.locator("td").nth(1).inner_text() == "50.0"
        assert page.locator("#stock td", has_text="外卖骑手").count() == 1
        _check(page, "demand-imported")
        run_coverage()  # with demand: shares of workers, districts by name
        assert page.locator("text=本区域没有需求数据").count() == 0
        assert "未覆盖人数" in page.locator("#scorecard thead th").all_inner_texts()
        named = page.locator("#scorecard tbody th[scope=row]").all_inner_texts()
        assert {"天涯区", "吉阳区"} <= set(named) and named[-1].startswith("合计"), named
        page.click("nav >> text=需求数据")
        page.click("header >> text=English")
        page.wait_for_selector("h1:has-text('Demand data')")
        assert page.locator("#stock td", has_text="Food delivery rider").count() == 1
        context.close()
    assert outside == [] and errors == []
    assert policies and all(p == STRICT_CSP for p in policies), policies
    assert areas.execute("SELECT count(*), sum(weight) FROM demand_point").fetchone() == (3, 50)
