"""The console's worker-reports queue (issue 26): scope, CSRF, the inspector rule, the audit.

Through the TestClient; the Chromium walk is in tests/test_console_browser.py.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import station_body
from tests.helpers import insert_stations
from tests.test_console import csrf_of, make, sign_in

_REPORT = """
INSERT INTO station_report (station_id, kind, comment, device_hash, client_hash)
SELECT id, %s, %s, %s, %s FROM station WHERE code = %s RETURNING id
"""


def add_report(conn: psycopg.Connection[Any], code: str, kind: str, device: str,
               comment: str | None = None, client: str = "addr-1") -> int:
    row = conn.execute(_REPORT, (kind, comment, device, client, code)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def queue(areas: psycopg.Connection[Any]) -> dict[str, Any]:
    """Sample station T1 in Tianya (460204) with three 'closed' reports from two devices
    and one 'other'; H1 in Haitang (460202) with one report; an editor and an inspector
    of Tianya."""
    insert_stations(areas, [
        station_body("T1", 109.50, 18.25, district_code="460204", city_code="460200",
                     province_code="460000"),
        station_body("H1", 109.70, 18.35, district_code="460202", city_code="460200",
                     province_code="460000")])
    areas.execute("UPDATE station SET sample = true WHERE code = 'T1'")
    closed = [add_report(areas, "T1", "closed", "dev-a", "门锁着 <b>locked</b>"),
              add_report(areas, "T1", "closed", "dev-a", client="addr-2"),
              add_report(areas, "T1", "closed", "dev-b", "没开门", client="addr-3")]
    return {"closed": closed, "other": add_report(areas, "T1", "other", "dev-c"),
            "haitang": add_report(areas, "H1", "closed", "dev-d"),
            "ed": make(areas, "ed", "editor"), "insp": make(areas, "insp", "inspector")}


def decide(client: TestClient, ids: list[int], action: str, note: str = "",
           csrf: str | None = None, versions: int = 1) -> Any:
    page = client.get("/console/reports")
    return client.post("/console/reports/decide", data={
        "report": [f"{i}:{versions}" for i in ids], "action": action, "note": note,
        "status": "open", "kind": "", "csrf_token": csrf_of(page.text) if csrf is None else csrf})


def test_editor_sees_the_area_queue_grouped_and_decides_audited_by_name(
        client: TestClient, areas: psycopg.Connection[Any], queue: dict[str, Any]) -> None:
    assert sign_in(client, "ed").status_code == 303
    page = client.get("/console/reports")
    assert page.status_code == 200, page.text
    text = page.text
    assert "测试驿站 T1 (T1)" in text and '<span class="tag">示例</span>' in text
    # Another district's station is not in the queue (matched as shown, not as a bare "H1",
    # which a random CSRF token or nonce may contain).
    assert "测试驿站 H1" not in text and "(H1)" not in text and "/stations/H1" not in text
    assert "驿站已关闭" in text and "其他" in text
    # One row for the three 'closed' reports: two devices (dev-a twice is one reporter).
    row = re.search(r"驿站已关闭<br><small>3 条</small>.*?</tr>", text, re.S)
    assert row is not None and "<td>2</td>" in row.group(0)
    assert "门锁着 &lt;b&gt;locked&lt;/b&gt;" in text and "<b>locked" not in text
    assert "有工人报告此驿站已关闭" in text
    assert re.search(r"\d{4}-\d\d-\d\d<br>\d\d:\d\d", text)
    assert client.get("/console/").text.count('href="/console/reports"') == 2  # nav, home

    done = decide(client, queue["closed"], "resolved", "已核实，照常开放")
    assert done.status_code == 200 and "已将 3 条报告标为已处理。" in done.text
    assert "有工人报告此驿站已关闭" not in done.text and "驿站已关闭<br>" not in done.text
    rows = areas.execute("SELECT status, version FROM station_report WHERE id = ANY(%s)",
                         (queue["closed"],)).fetchall()
    assert rows == [("resolved", 2)] * 3
    who = areas.execute("SELECT DISTINCT editor, note, editor_key_id FROM report_resolution"
                        ).fetchall()
    assert who == [("ed", "已核实，照常开放", None)]
    audit = areas.execute("SELECT DISTINCT user_id, actor FROM audit_log "
                          "WHERE action LIKE 'report_resolution.%'").fetchall()
    assert audit == [(queue["ed"], "ed")]
    resolved = client.get("/console/reports", params={"status": "resolved"})
    assert "驿站已关闭<br><small>3 条</small>" in resolved.text and "重新打开" in resolved.text
    assert "最近一次：已处理（ed，" in resolved.text and "）：已核实，照常开放" in resolved.text
    # Reopening with a note: back in the open queue, the warning with it.
    again = decide(client, queue["closed"], "reopened", "再看看", versions=2)
    assert again.status_code == 200 and "有工人报告此驿站已关闭" in again.text


def test_scope_csrf_inspector_and_bad_input_change_nothing(
        client: TestClient, areas: psycopg.Connection[Any], queue: dict[str, Any]) -> None:
    assert client.get("/console/reports", follow_redirects=False).status_code == 303
    assert sign_in(client, "ed").status_code == 303
    # Another district's report, alone or with one of ours: 404 as the API says, all or none.
    for ids in ([queue["haitang"]], [queue["other"], queue["haitang"]]):
        r = decide(client, ids, "resolved")
        assert r.status_code == 404 and f"no report {queue['haitang']}" in r.text
    r = decide(client, [queue["other"]], "resolved", csrf="")
    assert r.status_code == 403 and "csrf_token is missing" in r.text
    r = decide(client, [queue["other"]], "resolved", csrf="x" * 43)
    assert r.status_code == 403 and "csrf_token is wrong" in r.text
    r = decide(client, [queue["other"]], "resolved", versions=7)
    assert r.status_code == 409 and "version" in r.text
    r = decide(client, [queue["other"]], "reopened")
    assert r.status_code == 422 and "action" in r.text
    r = decide(client, [queue["other"]], "deleted")
    assert r.status_code == 422 and "action" in r.text
    r = decide(client, [queue["other"]], "rejected", "bad\x01byte")
    assert r.status_code == 422 and "note" in r.text
    r = client.get("/console/reports", params={"status": "done"})
    assert r.status_code == 422 and "status" in r.text
    assert areas.execute("SELECT count(*) FROM report_resolution").fetchone() == (0,)

    # An inspector may neither read nor decide reports (the API's Editor rule).
    client.cookies.clear()
    assert sign_in(client, "insp").status_code == 303
    assert client.get("/console/reports").status_code == 403
    assert 'href="/console/reports"' not in client.get("/console/").text
    csrf = csrf_of(client.get("/console/password").text)
    r = client.post("/console/reports/decide", data={
        "report": f"{queue['other']}:1", "action": "resolved", "csrf_token": csrf})
    assert r.status_code == 403 and "editor" in r.text
    assert areas.execute("SELECT count(*) FROM report_resolution").fetchone() == (0,)
