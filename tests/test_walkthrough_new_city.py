"""The manual's 新城市上手 walkthrough (docs/src/user_guide/new-city.md), done in Chromium
exactly as the page tells a clerk to do it, and the source of its screenshots.

A city union starts with boundaries and no stations. Its admin (an account made with
``geo-service users create``) signs in, downloads the import template from the console,
fills it in (with openpyxl, as Excel would save it: three stations, GCJ-02 points copied
from Amap, one opening-hours cell written "看情况"), uploads it and sees the problem on
the row Excel shows, fixes it, confirms, finds the stations published (the list, the
station page, the public nearest API) and prints the district's posters (one page each,
the QR code decoded to the check-in page).

Every outside request is blocked. The screenshots are written to
``docs/src/user_guide/img/new-city/`` and committed, so the manual shows what this test
saw; run this test to refresh them after a console change.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pypdf
import pytest
from openpyxl import load_workbook

from geo_service.cli import main
from geo_service.domain.coords import Crs, from_wgs84
from tests.helpers import live_server
from tests.test_console_browser import _serious
from tests.test_posters import _qr

SHOTS = Path(__file__).parents[1] / "docs" / "src" / "user_guide" / "img" / "new-city"
PASSWORD = "correct horse battery"
#: Three stations of Tianya as a clerk types them: WGS-84 points picked on Amap (GCJ-02).
ROWS = (
    ("TY-0101", "三亚湾路环卫驿站", "天涯区", "三亚湾路88号", (109.4700, 18.2900),
     "环卫作息点", "每天 6:00-22:00"),
    ("TY-0102", "河西路爱心驿站", "天涯区", "河西路1号", (109.4800, 18.3000),
     "工会自建", "24小时"),
    ("TY-0103", "凤凰路快递小哥驿站", "天涯区", "凤凰路5号", (109.4700, 18.3100),
     "企业共建", "看情况"),
)
FIXED_HOURS = "周一至周五 9:00-17:00"


def _shot(page: Any, name: str) -> None:
    """A screenshot for the manual, once axe finds nothing serious on the page."""
    assert _serious(page) == [], name
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def _fill(template: Path, out: Path, hours_of_last: str) -> None:
    """The template filled in below its example row, by the header's own words."""
    book = load_workbook(template)
    sheet = book.worksheets[0]
    col = {str(c.value).rstrip("*"): c.column for c in sheet[1] if c.value}
    amenities = ("室内休息场所", "座椅", "微波炉", "饮水机", "卫生间", "应急医药箱", "书报架",
                 "手机充电站", "电冰箱", "雨伞架")
    for n, (code, name, district, address, (lon, lat), host, hours) in enumerate(ROWS, 3):
        gcj_lon, gcj_lat = from_wgs84(lon, lat, Crs.GCJ02)
        values = {"站点编码": code, "站点名称": name, "所属区县": district, "详细地址": address,
                  "经度": round(gcj_lon, 6), "纬度": round(gcj_lat, 6), "坐标系": "GCJ-02",
                  "建设类型": host, "状态": "开放", "联系电话": "0898-88886666",
                  "开放时间": hours_of_last if n == 2 + len(ROWS) else hours,
                  **{a: "是" for a in amenities}}
        for header, value in values.items():
            sheet.cell(row=n, column=col[header], value=value)
    book.save(out)


def test_a_new_citys_clerk_signs_in_imports_fixes_publishes_and_prints(
        browser: Any, areas: psycopg.Connection[Any], db_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "create", "sanya", "--role", "admin", "--area", "460200",
                 "--display-name", "三亚市总工会", "--password-stdin"]) == 0
    outside: list[str] = []
    with live_server(db_url) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 800},
                                      locale="zh-CN", accept_downloads=True)
        context.route("**/*", lambda route: route.continue_()
                      if urlsplit(route.request.url).hostname == "127.0.0.1"
                      else (outside.append(route.request.url), route.abort()))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        # 1. Sign in.
        page.goto(base + "/console/")
        page.fill("#name", "sanya")
        page.fill("#password", PASSWORD)
        _shot(page, "01-sign-in")
        page.click("button:has-text('登录')")
        page.wait_for_selector("text=三亚市总工会")
        _shot(page, "02-home")

        # 2. Download the template and fill it in.
        page.click("nav >> text=批量导入")
        page.wait_for_selector("h1:has-text('批量导入')")
        _shot(page, "03-import")
        with page.expect_download() as download:
            page.click("a:has-text('下载模板')")
        template = tmp_path / download.value.suggested_filename
        download.value.save_as(template)
        assert template.suffix == ".xlsx"
        sheet = tmp_path / "天涯区驿站台账.xlsx"
        _fill(template, sheet, hours_of_last="看情况")

        # 3. Upload: the problem on the row Excel shows (the example is row 2).
        page.select_option("select[name=crs]", "gcj02")
        page.set_input_files("#file", str(sheet))
        page.click("button:has-text('上传并预览')")
        page.wait_for_selector("#h-problems")
        rows = page.locator("section[aria-labelledby=h-problems] tbody tr td:first-child")
        assert rows.all_inner_texts() == ["5"]
        assert "开放时间" in page.inner_text("section[aria-labelledby=h-problems]")
        _shot(page, "04-problems")

        # 4. Fix it in the sheet, upload again, confirm.
        _fill(template, sheet, hours_of_last=FIXED_HOURS)
        page.set_input_files("#file", str(sheet))
        page.click("section[aria-labelledby=h-problems] button:has-text('上传并预览')")
        page.wait_for_selector("button:has-text('确认导入（新增 3 个')")
        _shot(page, "05-preview")
        page.click("button:has-text('确认导入')")
        page.wait_for_selector("text=已导入：新增 3 个")
        _shot(page, "06-done")

        # 5. Published: in the list, on the station's page, and to couriers at once.
        page.click("nav >> text=驿站")
        page.wait_for_selector("text=凤凰路快递小哥驿站")
        _shot(page, "07-stations")
        page.click("text=凤凰路快递小哥驿站")
        page.wait_for_selector("h1:has-text('凤凰路快递小哥驿站')")
        assert "周一至周五" in page.inner_text("main")
        _shot(page, "08-station")
        near = httpx.get(base + "/v1/stations/nearest",
                         params={"lon": 109.47, "lat": 18.31, "k": 1}).json()
        assert near["results"][0]["code"] == "TY-0103"

        # 6. Print the district's posters: one page a station, the QR to its check-in.
        page.click("nav >> text=海报")
        page.wait_for_selector("h1:has-text('海报')")
        page.select_option("#area_code", "460204")
        page.check("#area_test")  # no public address on this test server: a test print
        _shot(page, "09-posters")
        with page.expect_download() as download:
            page.click("form:has(#area_code) button")
        pdf = Path(download.value.path()).read_bytes()
        assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) == 3
        first = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
        code = next(c for c, name, *_ in ROWS if name in first)
        assert _qr(pdf, 0) == [f"{base}/v1/checkin/{code}"]
        context.close()
    assert outside == [] and errors == []
    stored = areas.execute("SELECT code, source_crs, hours_text FROM station ORDER BY code")
    assert [tuple(r) for r in stored] == [
        ("TY-0101", "gcj02", "每天 6:00-22:00"), ("TY-0102", "gcj02", "24小时"),
        ("TY-0103", "gcj02", FIXED_HOURS)]
