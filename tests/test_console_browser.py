"""The console as a person uses it (issue 26), in Chromium with every outside request
blocked: an admin of the sample district signs in, creates an editor, issues a key and
signs out; the editor signs in, downloads the sample district's posters (one page per
printable station, page 1's QR code decoded to the station's check-in URL; another
district is neither offered nor printed), changes the password, switches to English and
signs out everywhere.
axe-core finds no serious or critical problem on any page at 1280×800 or 768 wide;
screenshots go to ``tests/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pypdf

from geo_service.domain import accounts
from geo_service.domain.coords import gcj02_to_wgs84
from geo_service.maps.assets import node_modules
from geo_service.web.security_headers import STRICT_CSP
from tests.conftest import station_body
from tests.helpers import insert_stations, live_server
from tests.test_posters import _qr

ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "correct horse battery"
WIDTHS = ((1280, 800), (768, 1024))


def _serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations (axe goes in through the DevTools
    protocol, which the page's policy does not govern)."""
    page.evaluate((node_modules() / "axe-core" / "axe.min.js").read_text() + "\n;0")
    found: list[str] = page.evaluate("""() => axe.run(document, {
        resultTypes: ['violations']}).then(r => r.violations
        .filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => `${v.id}: ${v.nodes.map(n => n.html).join(' | ')}`))""")
    return found


def _check(page: Any, name: str) -> None:
    """At each width: no serious axe finding, nothing wider than the screen, a screenshot."""
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        assert _serious(page) == [], (name, width)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
        page.screenshot(path=str(ARTIFACTS / f"console-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def test_admin_creates_an_editor_who_changes_password_and_signs_out_everywhere(
        browser: Any, seeded: psycopg.Connection[Any], db_url: str) -> None:
    areas = seeded
    accounts.create_user(areas, name="boss", display_name="天涯区管理员", role="admin",
                         area_code="460204", password=PASSWORD)
    outside: list[str] = []
    policies: dict[str, str | None] = {}
    with live_server(db_url) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 800},
                                      locale="zh-CN")
        context.route("**/*", lambda route: route.continue_()
                      if urlsplit(route.request.url).hostname == "127.0.0.1"
                      else (outside.append(route.request.url), route.abort()))
        page = context.new_page()
        page.on("response", lambda r: policies.__setitem__(
            urlsplit(r.url).path, r.headers.get("content-security-policy"))
            if r.headers.get("content-type", "").startswith("text/html") else None)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(base + "/console/")
        _check(page, "sign-in")
        page.fill("#name", "boss")
        page.fill("#password", PASSWORD)
        page.click("button:has-text('登录')")
        page.wait_for_selector("text=您好，天涯区管理员")
        _check(page, "home")

        page.click("nav >> text=账号管理")
        page.fill("#new_name", "newed")
        page.fill("#new_display", "新编辑")
        page.select_option("#new_role", "editor")
        page.select_option("#new_area", "460204")
        page.fill("#new_password", "first password 1")
        page.click("button:has-text('创建账号')")
        page.wait_for_selector("text=已创建账号 newed。")
        assert page.locator("td", has_text="新编辑").count() == 1
        _check(page, "accounts")
        page.click("nav >> text=API 密钥")
        page.fill("#key_name", "tianya-import")
        page.select_option("#key_role", "editor")
        page.select_option("#key_expires", "90d")
        page.click("button:has-text('签发密钥')")
        assert page.locator("code.secret").inner_text().startswith("gs_")
        _check(page, "keys")
        page.click("header >> text=退出登录")
        page.wait_for_selector("text=您已退出登录。")

        page.fill("#name", "newed")
        page.fill("#password", "first password 1")
        page.click("button:has-text('登录')")
        page.wait_for_selector("text=您好，新编辑")
        assert page.locator("text=账号管理").count() == 0  # an editor manages no accounts

        printable = [c for (c,) in areas.execute(
            "SELECT code FROM station WHERE district_code = '460204' AND deleted_at IS NULL "
            "AND status IN ('open', 'temporarily_closed') ORDER BY name, code")]
        page.click("nav >> text=海报")
        page.wait_for_selector("h1:has-text('海报')")
        offered = page.eval_on_selector_all("#area_code option", "os => os.map(o => o.value)")
        assert offered == ["460204"]  # the editor's district (it has no streets) only
        assert page.inner_text("#area_code option").endswith(f"· {len(printable)} 张")
        _check(page, "posters")
        page.check("#area_test")  # no public address on this server: a test print
        with page.expect_download() as download:
            page.click("form:has(#area_code) button")
        assert download.value.suggested_filename == "posters-area-460204-A4.pdf"
        pdf = Path(download.value.path()).read_bytes()
        assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) == len(printable) > 1
        assert _qr(pdf, 0) == [f"{base}/v1/checkin/{printable[0]}"]
        # Another district, forged into the form: refused with the 403 page.
        page.eval_on_selector("#area_code option", "o => { o.value = '460203'; }")
        with page.expect_response(lambda r: r.request.method == "POST") as refused:
            page.click("form:has(#area_code) button")
        assert refused.value.status == 403
        page.wait_for_selector("text=您只能打印本人管辖区域")
        _check(page, "posters-refused")

        page.click("nav >> text=修改密码")
        _check(page, "password")
        page.fill("#current_password", "first password 1")
        page.fill("#new_password", "second password 2")
        page.click("form.card button")
        page.wait_for_selector("text=密码已修改")

        page.click("header >> text=English")
        page.wait_for_selector("h1:has-text('Change password')")
        page.click("nav >> text=Home")
        page.wait_for_selector("text=Signed in as 新编辑")
        _check(page, "home-en")
        page.click("text=Sign out everywhere")
        page.wait_for_selector("text=You are signed out.")
        context.close()

    assert outside == [] and errors == []
    assert {"/console/", "/console/accounts", "/console/keys", "/console/password",
            "/console/posters"} <= set(
        policies)
    assert all(v == STRICT_CSP for v in policies.values()), policies
    assert areas.execute("SELECT count(*) FROM staff_session s JOIN staff_user u "
                         "ON u.id = s.user_id WHERE u.name = 'newed'").fetchone() == (0,)
    assert accounts.sign_in(areas, name="newed", password="second password 2", client="t",
                            policy=accounts.Policy())


def test_district_editor_resolves_a_report_and_it_leaves_the_open_queue(
        browser: Any, areas: psycopg.Connection[Any], db_url: str) -> None:
    """Issue 26: an editor of Tianya sees the sample station's 'closed' report (with its
    warning), resolves it with a note, and the open queue is empty; Haitang's is never
    shown."""
    insert_stations(areas, [
        station_body("T1", 109.50, 18.25, district_code="460204", city_code="460200",
                     province_code="460000"),
        station_body("H1", 109.70, 18.35, district_code="460202", city_code="460200",
                     province_code="460000")])
    areas.execute("UPDATE station SET sample = true")
    for code, device in (("T1", "a"), ("T1", "b"), ("H1", "c")):
        areas.execute("INSERT INTO station_report (station_id, kind, comment, device_hash) "
                      "SELECT id, 'closed', '早上没开门', %s FROM station WHERE code = %s",
                      (device, code))
    accounts.create_user(areas, name="ed", display_name="天涯区编辑", role="editor",
                         area_code="460204", password=PASSWORD)
    outside: list[str] = []
    with live_server(db_url) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 800},
                                      locale="zh-CN")
        context.route("**/*", lambda route: route.continue_()
                      if urlsplit(route.request.url).hostname == "127.0.0.1"
                      else (outside.append(route.request.url), route.abort()))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/console/")
        page.fill("#name", "ed")
        page.fill("#password", PASSWORD)
        page.click("button:has-text('登录')")
        page.click("nav >> text=工人报告")
        page.wait_for_selector("h2:has-text('测试驿站 T1')")
        assert page.locator("h2:has-text('H1')").count() == 0
        assert page.locator("text=有工人报告此驿站已关闭").count() == 1
        row = page.locator("tr", has_text="驿站已关闭")
        assert row.locator("td").nth(5).inner_text() == "2"  # two devices
        _check(page, "reports")
        row.locator("textarea").fill("已电话核实：照常开放")
        row.locator("button:has-text('标为已处理')").click()
        page.wait_for_selector("text=已将 2 条报告标为已处理。")
        assert page.locator("text=没有符合条件的报告。").count() == 1
        _check(page, "reports-done")
        page.select_option("#f_status", "resolved")
        page.click("form.filters button")
        page.wait_for_selector("td:has-text('已处理')")
        page.click("header >> text=English")
        page.wait_for_selector("h1:has-text('Worker reports')")
        assert page.locator("button:has-text('Reopen')").count() == 1
        assert page.locator("text=Latest: resolved (ed, ").count() == 1
        _check(page, "reports-en")
        context.close()
    assert outside == [] and errors == []
    assert areas.execute("SELECT editor, note FROM report_resolution").fetchall() == [
        ("ed", "已电话核实：照常开放")] * 2


def test_district_editor_changes_hours_and_drags_the_pin_on_the_station_form(
        browser: Any, areas: psycopg.Connection[Any], db_url: str) -> None:
    """Issue 26: an editor of Tianya opens T1's form, types new hours in Chinese (a bad
    value first: refused beside the field, kept as typed) and drags the pin (the map:
    Leaflet from this service, the district outline and the stations around, no tiles),
    then switches the coordinates to WGS-84 (the same point, converted by the server);
    the API shows both changes, the change feed has them, the audit names the person.
    Haitang's station is refused."""
    tianya = {"district_code": "460204", "city_code": "460200", "province_code": "460000"}
    insert_stations(areas, [
        station_body("T1", 109.50, 18.25, **tianya),
        station_body("T2", 109.505, 18.255, **tianya),
        station_body("H1", 109.70, 18.35, district_code="460202", city_code="460200",
                     province_code="460000")])
    uid = accounts.create_user(areas, name="ed", display_name="天涯区编辑", role="editor",
                               area_code="460204", password=PASSWORD)["id"]
    outside: list[str] = []
    policies: dict[str, str | None] = {}
    with live_server(db_url) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 800},
                                      locale="zh-CN")
        context.route("**/*", lambda route: route.continue_()
                      if urlsplit(route.request.url).hostname == "127.0.0.1"
                      else (outside.append(route.request.url), route.abort()))
        page = context.new_page()
        page.on("response", lambda r: policies.__setitem__(
            urlsplit(r.url).path, r.headers.get("content-security-policy"))
            if r.headers.get("content-type", "").startswith("text/html") else None)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/console/")
        page.fill("#name", "ed")
        page.fill("#password", PASSWORD)
        page.click("button:has-text('登录')")
        page.wait_for_selector("text=您好，天涯区编辑")
        page.goto(base + "/console/stations/H1/edit")
        page.wait_for_selector("text=不在您的管辖区域")

        page.goto(base + "/console/stations/T1/edit")
        marker = page.locator(".leaflet-marker-icon")
        marker.wait_for()
        assert page.locator(".leaflet-overlay-pane path").count() == 2  # the outline, T2
        _check(page, "station-form")
        before = (page.input_value("#f-lon"), page.input_value("#f-lat"))
        page.fill("#f-opening_hours", "上午九点开门")  # refused, beside the field, unsaved
        page.click("form.station button[type=submit]")
        page.wait_for_selector("#err-opening_hours:has-text('无法识别这个营业时间')")
        assert page.input_value("#f-opening_hours") == "上午九点开门"
        _check(page, "station-form-error")
        marker.wait_for()
        page.fill("#f-opening_hours", "周一至周六 8:00-19:00")
        marker.scroll_into_view_if_needed()
        box = marker.bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] - 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 30, y - 50, steps=10)
        page.mouse.up()
        page.wait_for_selector("#map[data-located='1']", state="attached")
        after = (page.input_value("#f-lon"), page.input_value("#f-lat"))
        assert after != before and float(after[0]) > float(before[0])
        assert page.input_value("#f-district_code") == "460204"
        assert "天涯区" in page.inner_text("#map-status")
        # The clerk's GPS reading is WGS-84: the same point, written in that system.
        page.check("input[name=crs][value=wgs84]")
        page.wait_for_selector("#map[data-located='2']", state="attached")
        wgs = (float(page.input_value("#f-lon")), float(page.input_value("#f-lat")))
        shifted = gcj02_to_wgs84(float(after[0]), float(after[1]))
        assert abs(wgs[0] - shifted[0]) < 2e-6 and abs(wgs[1] - shifted[1]) < 2e-6
        with page.expect_response(lambda r: r.request.method == "POST") as saved:
            page.click("form.station button[type=submit]")
        assert saved.value.status == 303
        assert saved.value.headers["location"] == "/console/stations/T1"
        page.goto(base + "/console/stations/T1/close")
        page.wait_for_selector("text=原因（必填，记入审计记录）")
        _check(page, "station-close")
        context.close()

        api = httpx.get(f"{base}/v1/stations/T1").json()
        changes = httpx.get(f"{base}/v1/feeds/changes").json()["changes"]
    assert outside == [] and errors == []
    assert api["opening_hours"] == "Mo-Sa 08:00-19:00" and api["version"] == 2
    assert abs(api["lon"] - wgs[0]) < 1e-6 and abs(api["lat"] - wgs[1]) < 1e-6
    assert [c["version"] for c in changes if c["code"] == "T1"][-1] == 2
    assert areas.execute("SELECT actor, user_id FROM audit_log WHERE station_code = 'T1' "
                         "AND action = 'station.update'").fetchall() == [("ed", uid)]
    form_policy = policies["/console/stations/T1/edit"]
    assert form_policy is not None and "script-src 'self'" in form_policy
    assert policies["/console/stations/H1/edit"] == STRICT_CSP


def test_district_editor_finds_a_station_and_reads_its_history(
        browser: Any, areas: psycopg.Connection[Any], db_url: str) -> None:
    """Issue 26: an editor of Tianya searches the stations list, filters it, opens a
    station and reads its history naming the person who edited it; Haitang's station
    is never listed, and its page is refused."""
    from geo_service.domain.audit import actor_json
    from geo_service.domain.principal import Principal

    codes = {"city_code": "460200", "province_code": "460000"}
    insert_stations(areas, [
        station_body("T1", 109.50, 18.25, name="解放路环卫驿站", district_code="460204",
                     district="天涯区", address="三亚市天涯区解放路1号", phone="0898-1",
                     **codes),
        station_body("T2", 109.48, 18.27, name="榆亚路驿站", district_code="460204",
                     district="天涯区", status="planned", **codes),
        station_body("H1", 109.70, 18.35, name="海棠解放驿站", district_code="460202",
                     district="海棠区", **codes)])
    areas.execute("UPDATE station SET sample = true")
    user = accounts.create_user(areas, name="ed", display_name="天涯区编辑", role="editor",
                                area_code="460204", password=PASSWORD)
    who = Principal(key_id=None, name="ed", role="editor", area_code="460204",
                    user_id=user["id"])
    with areas.transaction():
        areas.execute("SELECT set_config('geo.actor', %s, true)", (actor_json(who),))
        areas.execute("UPDATE station SET opening_hours = 'Mo-Fr 08:00-18:00', "
                      "version = version + 1 WHERE code = 'T1'")
    outside: list[str] = []
    with live_server(db_url) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 800},
                                      locale="zh-CN")
        context.route("**/*", lambda route: route.continue_()
                      if urlsplit(route.request.url).hostname == "127.0.0.1"
                      else (outside.append(route.request.url), route.abort()))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/console/")
        page.fill("#name", "ed")
        page.fill("#password", PASSWORD)
        page.click("button:has-text('登录')")
        page.click("nav >> text=驿站")
        page.wait_for_selector("h1:has-text('驿站')")
        assert page.locator("table.stations tbody tr").count() == 2
        _check(page, "stations")
        page.fill("#f_q", "解放")
        page.click("form.filters button")
        page.wait_for_selector("text=共 1 座驿站")
        assert page.locator("table.stations tbody tr").count() == 1  # not Haitang's
        page.fill("#f_q", "")
        page.select_option("#f_status", "planned")
        page.click("form.filters button")
        page.wait_for_selector("td:has-text('榆亚路驿站')")
        assert page.locator("table.stations tbody tr").count() == 1
        assert "status=planned" in page.url  # a list anyone can be sent
        page.click("text=清除筛选")
        page.click("th >> text=名称")
        page.wait_for_selector("th[aria-sort='ascending'] >> text=名称")
        page.click("td >> text=解放路环卫驿站")
        page.wait_for_selector("h1:has-text('解放路环卫驿站')")
        history = page.locator("#h-history").locator("xpath=..")
        assert history.locator("td", has_text="天涯区编辑（ed）").count() == 1
        assert history.locator("li", has_text="开放时间").count() == 1
        assert page.locator("ul.ten li").count() == 10
        assert page.locator("a:has-text('编辑')").count() == 1
        _check(page, "station")
        page.goto(base + "/console/stations/H1")
        page.wait_for_selector("text=不在您管辖的区域")
        page.goto(base + "/console/stations/T1?lang=en")
        page.wait_for_selector("h2:has-text('The ten ones')")
        _check(page, "station-en")
        context.close()
    assert outside == [] and errors == []


def test_planner_reads_coverage_by_name_plans_sites_and_compares_a_closure(
        browser: Any, seeded: psycopg.Connection[Any], db_url: str) -> None:
    """Issue 27: a planner of Tianya runs coverage on the sample city, sees the scorecard
    by district name, gets five sites whose GCJ-02 converts back within 1 m and whose
    Amap links open that point, adds them as planned stations, closes one station in a
    what-if and sees the same difference two separate runs give; the run's map opens
    with its district table and no outside request."""
    from pyproj import Geod

    from geo_service.coverage.schemas import CoverageRequest, StationFilter
    from geo_service.coverage.service import run_coverage
    from geo_service.domain.coords import gcj02_to_wgs84

    geod = Geod(ellps="WGS84")
    accounts.create_user(seeded, name="plan", display_name="天涯区规划员", role="editor",
                         area_code="460204", password=PASSWORD)
    closing = seeded.execute(
        "SELECT code FROM station WHERE district_code = '460204' AND status = 'open' "
        "ORDER BY code LIMIT 1").fetchone()
    assert closing is not None
    outside: list[str] = []
    with live_server(db_url) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 800},
                                      locale="zh-CN")
        context.route("**/*", lambda route: route.continue_()
                      if urlsplit(route.request.url).hostname == "127.0.0.1"
                      else (outside.append(route.request.url), route.abort()))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/console/")
        page.fill("#name", "plan")
        page.fill("#password", PASSWORD)
        page.click("button:has-text('登录')")
        page.click("nav >> text=覆盖规划")
        page.wait_for_selector("h1:has-text('覆盖规划')")
        page.select_option("#area", "460204")
        page.fill("#add", "5")
        page.click("button:has-text('计算覆盖与选址')")
        page.wait_for_selector("#scorecard")
        assert page.locator("#scorecard th[scope=row]").first.inner_text() == "天涯区"
        rows = page.locator("#sites tbody tr")
        assert rows.count() == 5
        for i in range(5):
            cells = rows.nth(i).locator("td")
            g = [float(v) for v in cells.nth(4).inner_text().split(",")]
            w = [float(v) for v in cells.nth(6).inner_text().split(",")]
            assert cells.nth(1).inner_text().startswith("天涯区")
            assert geod.inv(*gcj02_to_wgs84(*g), *w)[2] < 1.0
            amap = urlsplit(cells.nth(7).locator("a").get_attribute("href") or "")
            query = dict(p.split("=", 1) for p in amap.query.split("&"))
            assert (amap.netloc, amap.path, query["coordinate"]) == (
                "uri.amap.com", "/marker", "gaode")
            opened = [float(v) for v in query["position"].split(",")]
            assert geod.inv(*gcj02_to_wgs84(*opened), *w)[2] < 1.0
        _check(page, "planning")
        page.click("button:has-text('加入为筹建驿站')")
        page.wait_for_selector("text=已加入 5 座筹建驿站；0 座此前已加入")
        assert seeded.execute("SELECT count(*) FROM station WHERE status = 'planned' "
                              "AND code LIKE 'PLAN-%%' AND district_code = '460204'"
                              ).fetchone() == (5,)
        page.fill("#close", closing[0])
        page.click("button:has-text('比较前后')")
        page.wait_for_selector("#whatif")
        cells = page.locator("#whatif tbody tr", has_text="天涯区").first.locator("td")
        shown = [cells.nth(i).inner_text() for i in range(9)]
        _check(page, "planning-whatif")
        map_href = page.locator("#whatif-result a").get_attribute("href")
        assert map_href is not None
        page.goto(base + map_href)
        page.wait_for_selector(".geo-scorecard table")
        assert "天涯区" in page.inner_text(".geo-scorecard")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console-planning-map-1280.png"))
        context.close()
    assert outside == [] and errors == []
    # Two separate runs give the same before and after (the table rounds shares to 0.1 %).
    base_req = {"area": "460204", "threshold_m": 1000}
    before = run_coverage(seeded, CoverageRequest(**base_req))["areas"]
    after = run_coverage(seeded, CoverageRequest(**base_req, stations=StationFilter(
        exclude=[closing[0]])))["areas"]
    b = next(r for r in before if r["area"] == "460204")
    a = next(r for r in after if r["area"] == "460204")
    assert shown[:3] == [str(b["stations"]), str(a["stations"]), "-1"]
    assert shown[3:6] == [f"{100 * b['covered_share']:.1f}%", f"{100 * a['covered_share']:.1f}%",
                          f"{100 * (a['covered_share'] - b['covered_share']):+.1f} pt"]
    assert shown[6:9] == [f"{b['uncovered_demand']:,.0f}", f"{a['uncovered_demand']:,.0f}",
                          f"{a['uncovered_demand'] - b['uncovered_demand']:+,.0f}"]


def test_district_editor_imports_a_ledger_fixes_it_and_confirms(
        browser: Any, areas: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    """Issue 26: Tianya's editor uploads a real-style ledger (title row, 序号, 备注, merged
    header, 有/无/√, GCJ-02 points, 高新区, a bad hours value, a row of another district):
    the first preview lists every problem on Excel's rows 7 and 8; the fixed ledger's
    preview is confirmed and exactly its four stations are written. The screenshots
    ``console-import-{1-upload,2-preview,3-done}.png`` illustrate the manual."""
    from tests.test_console_import import ledger, ledger_rows

    insert_stations(areas, [station_body("TY-0001", 109.47, 18.29, district_code="460204")])
    accounts.create_user(areas, name="ed", display_name="天涯区编辑", role="editor",
                         area_code="460204", password=PASSWORD)
    bad, fixed = tmp_path / "天涯区驿站台账.xlsx", tmp_path / "天涯区驿站台账-改.xlsx"
    bad.write_bytes(ledger(ledger_rows(fixed=False)))
    fixed.write_bytes(ledger(ledger_rows(fixed=True)))
    outside: list[str] = []
    with live_server(db_url) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 800},
                                      locale="zh-CN")
        context.route("**/*", lambda route: route.continue_()
                      if urlsplit(route.request.url).hostname == "127.0.0.1"
                      else (outside.append(route.request.url), route.abort()))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/console/")
        page.fill("#name", "ed")
        page.fill("#password", PASSWORD)
        page.click("button:has-text('登录')")
        page.click("nav >> text=批量导入")
        page.wait_for_selector("h1:has-text('批量导入')")
        _check(page, "import-upload")
        page.screenshot(path=str(ARTIFACTS / "console-import-1-upload.png"))
        page.set_input_files("#file", str(bad))
        page.click("button:has-text('上传并预览')")
        page.wait_for_selector("#h-problems")
        cells = page.locator("section[aria-labelledby=h-problems] tbody tr td:first-child")
        assert sorted(cells.all_inner_texts()) == ["7", "8", "8"]
        assert page.locator("text=高新区 → 按坐标归入 天涯区").count() == 1
        _check(page, "import-problems")
        page.set_input_files("#file", str(fixed))
        page.click("section[aria-labelledby=h-problems] button:has-text('上传并预览')")
        page.wait_for_selector("button:has-text('确认导入（新增 3 个，更新 1 个）')")
        _check(page, "import-preview")
        page.screenshot(path=str(ARTIFACTS / "console-import-2-preview.png"), full_page=True)
        page.click("button:has-text('确认导入')")
        page.wait_for_selector("text=已导入：新增 3 个，更新 1 个，不变 0 个。")
        _check(page, "import-done")
        page.screenshot(path=str(ARTIFACTS / "console-import-3-done.png"))
        context.close()
    assert outside == [] and errors == []
    assert [r[0] for r in areas.execute("SELECT code FROM station ORDER BY code")] == [
        "TY-0001", "TY-0002", "TY-0003", "TY-0004"]


def test_city_editor_reads_a_district_bulletin_and_downloads_it(
        browser: Any, seeded: psycopg.Connection[Any], db_url: str) -> None:
    """Issue 27: an editor of the sample city opens 每月通报 from the navigation, picks
    Tianya and last month (the form's default), sees the figures (person-times equal to
    the check-ins SQL counts in that calendar month), and downloads the PDF and the XLSX;
    a district outside the city is not offered, and one forged into the form is refused."""
    import datetime as dt

    import openpyxl

    accounts.create_user(seeded, name="cityed", display_name="三亚市编辑", role="editor",
                         area_code="460200", password=PASSWORD)
    today = dt.date.today()
    first = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    month = f"{first:%Y-%m}"
    (visits,) = seeded.execute(
        "SELECT count(*) FROM visit v JOIN station s ON s.id = v.station_id "
        "WHERE s.district_code = '460204' AND to_char(v.at AT TIME ZONE 'Asia/Shanghai', "
        "'YYYY-MM') = %s", (month,)).fetchone() or (0,)
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
        page.goto(base + "/console/")
        page.fill("#name", "cityed")
        page.fill("#password", PASSWORD)
        page.click("button:has-text('登录')")
        page.click("nav >> text=每月通报")
        page.wait_for_selector("h1:has-text('每月通报')")
        offered = page.eval_on_selector_all("#area option", "os => os.map(o => o.value)")
        assert offered[0] == "460200" and "460204" in offered and "460000" not in offered
        assert page.input_value("#month") == month
        page.select_option("#area", "460204")
        page.click("button:has-text('查看')")
        page.wait_for_selector("table.bulletin")
        total = page.locator("table.bulletin tbody tr").last
        assert total.locator("th").inner_text().startswith("合计：天涯区")
        assert total.locator("td").nth(8).inner_text() == str(visits)
        assert page.locator("text=示例数据").count() >= 1
        _check(page, "bulletin")
        with page.expect_download() as pdf:
            page.click("button:has-text('下载 PDF')")
        assert pdf.value.suggested_filename == f"bulletin-460204-{month}.pdf"
        assert len(pypdf.PdfReader(pdf.value.path()).pages) >= 1
        with page.expect_download() as xlsx:
            page.click("button:has-text('下载 Excel')")
        book = openpyxl.load_workbook(io.BytesIO(Path(xlsx.value.path()).read_bytes()))
        assert book["分区统计"]["K2"].value == visits
        # Hainan (the province) forged into the form: refused, the page says why.
        page.eval_on_selector("form.filters", "f => f.noValidate = true")
        page.eval_on_selector("#area option:checked", "o => { o.value = '460000'; }")
        with page.expect_response(lambda r: "/console/bulletin?" in r.url) as refused:
            page.click("button:has-text('查看')")
        assert refused.value.status == 422
        page.wait_for_selector("text=请选择您管辖范围内的区域")
        page.click("header >> text=English")
        page.wait_for_selector("h1:has-text('Monthly bulletin')")
        context.close()
    assert outside == [] and errors == []


def test_editor_adds_an_exterior_photo_from_a_phone_and_approves_a_report_photo(
        browser: Any, areas: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    """Issue 27: at 360×640 an editor opens a station's photos, takes (uploads) a photo,
    sees its thumbnail first as the exterior photo; the stored file has no GPS; a
    worker's report photo is private until the editor approves it on the pending page."""
    from PIL import Image

    from tests.test_photos import gps_of, photo_bytes

    insert_stations(areas, [station_body("T1", 109.50, 18.25, district_code="460204",
                                         city_code="460200", province_code="460000")])
    accounts.create_user(areas, name="ed", display_name="天涯区编辑", role="editor",
                         area_code="460204", password=PASSWORD)
    shot = tmp_path / "IMG_0042.jpg"
    shot.write_bytes(photo_bytes(orientation=6))
    outside: list[str] = []
    with live_server(db_url, env={"GEO_PHOTO_DIR": str(tmp_path / "store")}) as base:
        sent = httpx.post(f"{base}/v1/report-photos",
                          files={"file": ("r.jpg", photo_bytes(color=(9, 99, 9)), "image/jpeg")})
        assert sent.status_code == 201, sent.text
        report_sha = sent.json()["sha"]
        assert httpx.post(f"{base}/v1/stations/T1/reports", json={
            "kind": "other", "comment": "门口有积水", "photo": report_sha}).status_code == 201
        assert httpx.get(f"{base}/v1/photos/{report_sha}.jpg").status_code == 404

        context = browser.new_context(viewport={"width": 360, "height": 640}, locale="zh-CN",
                                      is_mobile=True, has_touch=True)
        context.route("**/*", lambda route: route.continue_()
                      if urlsplit(route.request.url).hostname == "127.0.0.1"
                      else (outside.append(route.request.url), route.abort()))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/console/")
        page.fill("#name", "ed")
        page.fill("#password", PASSWORD)
        page.click("button:has-text('登录')")
        page.click("nav >> text=照片")
        page.fill("#photo_station", "T1")
        page.click("button:has-text('打开')")
        page.wait_for_selector("text=还没有外观照片")
        assert page.get_attribute("#photo_file", "accept") == "image/*"
        page.set_input_files("#photo_file", str(shot))
        page.select_option("#photo_kind", "exterior")
        page.click("button:has-text('上传')")
        page.wait_for_selector("text=照片已上传。")
        thumb = page.locator("ul.photos img").first
        thumb.wait_for()
        assert page.evaluate("i => i.complete && i.naturalWidth > 0", thumb.element_handle())
        assert page.locator("ul.photos strong").first.inner_text() == "外观"
        assert _serious(page) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console-photos-360.png"), full_page=True)
        _check(page, "photos")

        page.goto(base + "/console/photos/pending")
        card = page.locator("li.photo", has_text="门口有积水")
        assert page.evaluate("i => i.complete && i.naturalWidth > 0",
                             card.locator("img").element_handle())
        _check(page, "photos-pending")
        card.locator("button:has-text('通过')").click()
        page.wait_for_selector("text=已通过，照片现已公开。")
        assert page.locator("text=没有待审核的照片。").count() == 1
        context.close()
        assert httpx.get(f"{base}/v1/photos/{report_sha}.jpg").status_code == 200
        listed = httpx.get(f"{base}/v1/stations/T1/photos").json()["photos"]
        stored = httpx.get(base + listed[0]["url"]).content
    assert outside == [] and errors == []
    assert listed[0]["kind"] == "exterior" and gps_of(stored) == {}
    assert Image.open(io.BytesIO(stored)).size == (100, 200)  # turned upright
