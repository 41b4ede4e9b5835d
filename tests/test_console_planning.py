"""The console's planning page (issue 27) through the TestClient: who may run, the run's
scorecard and sites, planned stations once, what-if, the admin's sample removal.

The Chromium walk of the same page is in tests/test_console_browser.py.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from fastapi.testclient import TestClient

from tests.test_console import csrf_of, make, sign_in
from tests.test_coverage_planning import world  # noqa: F401  (the fixture)


def test_planner_runs_reads_by_name_plans_once_and_compares(
        client: TestClient, world: psycopg.Connection[Any]) -> None:  # noqa: F811
    make(world, "insp", "inspector")
    make(world, "ed", "editor")
    assert sign_in(client, "insp").status_code == 303
    page = client.get("/console/planning")
    assert page.status_code == 200 and "需要编辑或管理员角色" in page.text
    refused = client.post("/console/planning/run", data={
        "area": "460204", "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 403
    client.cookies.clear()

    assert sign_in(client, "ed").status_code == 303
    page = client.get("/console/planning")
    token = csrf_of(page.text)
    # Without the token nothing runs; outside the editor's district neither.
    assert client.post("/console/planning/run", data={"area": "460204"}).status_code == 403
    outside = client.post("/console/planning/run", data={
        "area": "460200", "threshold_m": "1000", "add": "3", "csrf_token": token})
    assert outside.status_code == 403 and "460204" in outside.text
    assert world.execute("SELECT count(*) FROM analysis_run").fetchone() == (0,)
    ran = client.post("/console/planning/run", follow_redirects=False, data={
        "area": "460204", "threshold_m": "1000", "add": "3", "csrf_token": token})
    assert ran.status_code == 303, ran.text
    query = parse_qs(urlsplit(ran.headers["location"]).query)
    shown = client.get(ran.headers["location"])
    assert shown.status_code == 200
    assert '<table id="scorecard">' in shown.text and "天涯区" in shown.text
    assert len(re.findall(r'href="https://uri\.amap\.com/marker\?', shown.text)) == 3
    assert f'/maps/coverage.html?run={query["coverage"][0]}&amp;offline=true' in shown.text

    english = client.get(ran.headers["location"] + "&lang=en")
    assert '<html lang="en">' in english.text
    for text in ("Coverage planning", "Districts, worst covered first", "Open in Amap #1",
                 "Add as planned stations"):
        assert text in english.text, text
    assert "SAMPLE DATA" not in english.text  # no sample data in this run

    form = {"run": query["plan"][0], "coverage": query["coverage"][0], "area": "460204",
            "threshold_m": "1000", "add": "3", "csrf_token": token}
    first = client.post("/console/planning/plan", data=form)
    assert first.status_code == 200 and "已加入 3 座筹建驿站；0 座此前已加入" in first.text
    again = client.post("/console/planning/plan", data=form)
    assert "已加入 0 座筹建驿站；3 座此前已加入" in again.text
    rows = world.execute("SELECT status, count(*) FROM station WHERE code LIKE 'PLAN-%%' "
                         "GROUP BY status").fetchall()
    assert rows == [("planned", 3)]
    actors = world.execute("SELECT DISTINCT actor FROM audit_log "
                           "WHERE station_code LIKE 'PLAN-%%'").fetchall()
    assert actors == [("ed",)]

    station = world.execute(
        "SELECT s.code FROM station s, admin_area a WHERE a.code = '460204' "
        "AND ST_Covers(a.geom, s.geog::geometry) AND s.status = 'open' "
        "ORDER BY s.code LIMIT 1").fetchone()
    assert station is not None
    compared = client.post("/console/planning/whatif",
                           data={**form, "close": station[0], "with_sites": "1"})
    assert compared.status_code == 200, compared.text
    table = compared.text.split('<table id="whatif">', 1)[1].split("</table>", 1)[0]
    assert "<td>+2</td>" in table  # one station closed, three sites added
    bad = client.post("/console/planning/whatif", data={**form, "close": "NOPE"})
    assert bad.status_code == 422 and "NOPE" in bad.text


def test_only_an_admin_removes_the_sample_data_after_confirming(
        client: TestClient, seeded: psycopg.Connection[Any]) -> None:
    make(seeded, "ed", "editor", area=None)
    make(seeded, "boss", "admin", area=None)
    assert sign_in(client, "ed").status_code == 303
    assert client.get("/console/planning/sample").status_code == 403
    client.cookies.clear()
    assert sign_in(client, "boss").status_code == 303
    confirm = client.get("/console/planning/sample")
    assert confirm.status_code == 200 and "确认删除示例数据" in confirm.text
    assert client.post("/console/planning/sample", data={}).status_code == 403
    before = seeded.execute("SELECT count(*) FROM station WHERE sample AND status <> 'closed'"
                            ).fetchone()
    assert before is not None and before[0] > 0
    done = client.post("/console/planning/sample", data={"csrf_token": csrf_of(confirm.text)})
    assert done.status_code == 200 and "已删除示例数据" in done.text
    assert seeded.execute("SELECT count(*) FROM station WHERE sample AND status <> 'closed'"
                          ).fetchone() == (0,)
    assert seeded.execute("SELECT count(*) FROM audit_log WHERE actor = 'boss'"
                          ).fetchone() != (0,)


def test_console_overdue_agrees_with_the_api(client: TestClient,
                                             areas: psycopg.Connection[Any]) -> None:
    """Issue 27: a station with only an imported 最近核实日期 is overdue in the console
    exactly when the API (and so the CLI and the compliance map) says so."""
    import datetime as dt

    from geo_service.operations.inspections import china_today
    from tests.conftest import station_body
    from tests.helpers import insert_stations

    tianya = {"district_code": "460204", "district": "天涯区", "city_code": "460200",
              "province_code": "460000"}
    today = china_today()
    insert_stations(areas, [
        station_body("V-RECENT", 109.45, 18.28, **tianya,
                     last_verified_on=(today - dt.timedelta(days=30)).isoformat()),
        station_body("V-OLD", 109.46, 18.28, **tianya,
                     last_verified_on=(today - dt.timedelta(days=400)).isoformat()),
        station_body("V-NEVER", 109.47, 18.28, **tianya)])
    make(areas, "ed", "editor")
    assert sign_in(client, "ed").status_code == 303
    page = client.get("/console/planning")
    assert page.status_code == 200
    section = page.text.split('id="overdue"', 1)[1].split("</section>", 1)[0]
    shown = re.findall(r"<tr><td>(V-[A-Z]+)</td>", section)
    api = client.get("/v1/inspections/overdue", params={"area": "460204", "days": 365})
    assert shown == [s["code"] for s in api.json()["stations"]] == ["V-NEVER", "V-OLD"]
    assert "共 2 座" in section
