"""The console's station form (issue 26): create and edit through the API's own service,
errors in Chinese next to the field, the stale-version conflict naming the other person,
close / reopen / delete with a reason; scope, role and CSRF refusals, with nothing written.

Through the TestClient; the Chromium walk (drag the pin) is in tests/test_console_browser.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.console.routes.station_form import form_csp
from geo_service.domain import accounts
from geo_service.domain.coords import gcj02_to_wgs84, wgs84_to_gcj02
from geo_service.infra.settings import Settings
from geo_service.web.security_headers import STRICT_CSP
from tests.conftest import station_body
from tests.helpers import insert_stations
from tests.test_console import PASSWORD, csrf_of, make, sign_in

TIANYA = {"district_code": "460204", "city_code": "460200", "province_code": "460000"}


@pytest.fixture
def office(areas: psycopg.Connection[Any]) -> dict[str, int]:
    """Station T1 in Tianya (460204) and H1 in Haitang (460202); an editor, a second
    editor (李四) and an inspector of Tianya."""
    insert_stations(areas, [station_body("T1", 109.50, 18.25, **TIANYA),
                            station_body("H1", 109.70, 18.35, district_code="460202",
                                         city_code="460200", province_code="460000")])
    other = accounts.create_user(areas, name="ed2", display_name="李四", role="editor",
                                 area_code="460204", password=PASSWORD)
    return {"ed": make(areas, "ed", "editor"), "ed2": int(other["id"]),
            "insp": make(areas, "insp", "inspector")}


def _form(page: str) -> dict[str, Any]:
    """The form's fields as the browser would post them unchanged."""
    fields: dict[str, Any] = {"amenities": []}
    for m in re.finditer(r'<input ([^>]*)>', page):
        attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', m.group(1)))
        name, kind = attrs.get("name"), attrs.get("type", "text")
        if not name:
            continue
        if kind in ("checkbox", "radio"):
            if " checked" in m.group(1):
                if name == "amenities":
                    fields["amenities"].append(attrs["value"])
                else:
                    fields[name] = attrs["value"]
        else:
            fields[name] = attrs.get("value", "").replace("&amp;", "&")
    for m in re.finditer(r'<select id="f-(\w+)" name="\w+"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', m.group(2))
        fields[m.group(1)] = chosen.group(1) if chosen else ""
    return fields


def _new(client: TestClient, **over: Any) -> Any:
    page = client.get("/console/stations/new")
    assert page.status_code == 200, page.text
    lon, lat = wgs84_to_gcj02(109.50, 18.25)
    data = {**_form(page.text), "code": "N1", "name": "新驿站", "lon": f"{lon:.6f}",
            "lat": f"{lat:.6f}", "opening_hours": "周一至周五 9:00-17:00；周末休息",
            "amenities": ["microwave", "restroom"], "phone": "0898-88888888", **over}
    return client.post("/console/stations/new", data=data, follow_redirects=False)


def _audit(conn: psycopg.Connection[Any], code: str) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT action, actor, user_id, request FROM audit_log "
                        "WHERE station_code = %s ORDER BY id", (code,)).fetchall()


def test_new_station_typed_in_gcj02_is_stored_in_wgs84_within_a_metre(
        client: TestClient, areas: psycopg.Connection[Any], office: dict[str, int]) -> None:
    assert sign_in(client, "ed").status_code == 303
    page = client.get("/console/stations/new")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split(
        "script-src")[1]
    assert '<input type="radio" name="crs" value="gcj02" checked>' in page.text
    block = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', page.text)
    assert block is not None
    map_data = json.loads(block.group(1))  # Tianya's outline and its station, not Haitang's
    assert map_data["outline"]["type"] in ("Polygon", "MultiPolygon") and map_data["pin"] is None
    assert [s["code"] for s in map_data["stations"]] == ["T1"] and map_data["tiles"] is None
    assert 'href="/console/stations/new"' in client.get("/console/").text
    english = client.get("/console/stations/new?lang=en").text
    assert "<h1>New station</h1>" in english and "Coordinate system" in english

    answer = _new(client)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/stations/N1"
    given = wgs84_to_gcj02(109.50, 18.25)
    expected = gcj02_to_wgs84(float(f"{given[0]:.6f}"), float(f"{given[1]:.6f}"))
    row = areas.execute(
        "SELECT ST_Distance(geog, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography), "
        "opening_hours, district_code, city_code, amenity_mask FROM station WHERE code = 'N1'",
        expected).fetchone()
    assert row is not None and row[0] < 1.0
    assert row[1:4] == ("Mo-Fr 09:00-17:00", "460204", "460200")  # as the API stores it
    assert _audit(areas, "N1") == [("station.create", "ed", office["ed"], None)]


def test_bad_hours_and_coordinates_come_back_in_chinese_beside_the_field_unsaved(
        client: TestClient, areas: psycopg.Connection[Any], office: dict[str, int]) -> None:
    sign_in(client, "ed")
    answer = _new(client, opening_hours="上午九点到下午五点", lon="200", phone="电话")
    assert answer.status_code == 422
    text = answer.text
    assert re.search(r'id="err-opening_hours">无法识别这个营业时间', text)
    assert re.search(r'id="err-lon">不能大于 180<', text)
    assert re.search(r'id="err-phone">电话号码只能有数字', text)
    assert 'aria-describedby="err-lon' in text and 'aria-invalid="true"' in text
    assert 'value="上午九点到下午五点"' in text and 'value="200"' in text  # typed kept
    assert "请修改标出的 3 处后再保存。" in text
    assert areas.execute("SELECT count(*) FROM station WHERE code = 'N1'").fetchone() == (0,)
    assert _audit(areas, "N1") == []

    edit = client.get("/console/stations/T1/edit")
    data = {**_form(edit.text), "opening_hours": "看情况"}
    bad = client.post("/console/stations/T1/edit", data=data, follow_redirects=False)
    assert bad.status_code == 422 and 'id="err-opening_hours"' in bad.text
    assert areas.execute("SELECT version, opening_hours FROM station WHERE code = 'T1'"
                         ).fetchone() == (1, "24/7")


def test_edit_saves_through_the_api_and_shows_in_it_and_the_feed(
        client: TestClient, areas: psycopg.Connection[Any], office: dict[str, int]) -> None:
    sign_in(client, "ed")
    page = client.get("/console/stations/T1/edit")
    assert page.status_code == 200
    data = _form(page.text)
    assert data["version"] == "1" and data["crs"] == "gcj02" and data["district_code"] == "460204"
    assert data["amenities"] == ["microwave", "restroom"]
    before = areas.execute("SELECT max(change_seq) FROM station").fetchone()
    data.update(opening_hours="每天8:00-20:00", amenities=["microwave", "restroom", "seating"])
    answer = client.post("/console/stations/T1/edit", data=data, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/stations/T1"
    api = client.get("/v1/stations/T1").json()
    assert api["opening_hours"] == "08:00-20:00" and api["version"] == 2
    assert set(api["amenities"]) == {"microwave", "restroom", "seating"}
    assert abs(api["lon"] - 109.50) < 1e-6 and abs(api["lat"] - 18.25) < 1e-6  # not moved
    assert api["district_code"] == "460204" and api["city_code"] == "460200"
    assert before is not None
    changes = client.get("/v1/feeds/changes").json()["changes"]
    assert [(c["code"], c["version"]) for c in changes if c["code"] == "T1"][-1] == ("T1", 2)
    assert _audit(areas, "T1")[-1] == ("station.update", "ed", office["ed"], None)


def test_stale_version_shows_who_changed_it_when_and_theirs_beside_yours(
        client: TestClient, areas: psycopg.Connection[Any], office: dict[str, int]) -> None:
    sign_in(client, "ed")
    mine = _form(client.get("/console/stations/T1/edit").text)
    # 李四 (ed2) saves first, from another browser (another cookie jar).
    own = dict(client.cookies)
    client.cookies.clear()
    sign_in(client, "ed2")
    theirs = _form(client.get("/console/stations/T1/edit").text)
    theirs["opening_hours"] = "Mo-Fr 08:00-18:00"
    assert client.post("/console/stations/T1/edit", data=theirs,
                       follow_redirects=False).status_code == 303
    client.cookies.clear()
    for name, value in own.items():
        client.cookies.set(name, value, path="/console")
    mine.update(opening_hours="24小时", name="测试驿站 T1（改）")
    answer = client.post("/console/stations/T1/edit", data=mine, follow_redirects=False)
    assert answer.status_code == 409
    text = answer.text
    assert re.search(r"此驿站已被 李四（ed2） 于 \d{4}-\d\d-\d\d \d\d:\d\d 修改 — 请核对", text)
    hours = re.search(r"<th scope=\"row\">开放时间</th><td>(.*?)</td><td>(.*?)</td>", text)
    assert hours is not None and hours.groups() == ("Mo-Fr 08:00-18:00", "24/7")
    assert "测试驿站 T1（改）" in text  # the clerk's typed values are kept in the form
    assert areas.execute("SELECT version, opening_hours, name FROM station WHERE code = 'T1'"
                         ).fetchone() == (2, "Mo-Fr 08:00-18:00", "测试驿站 T1")
    again = _form(text)
    assert again["version"] == "2"
    unversioned = client.post("/console/stations/T1/edit", data={**again, "version": ""},
                              follow_redirects=False)
    assert unversioned.status_code == 428 and "版本：" in unversioned.text  # told on top
    assert client.post("/console/stations/T1/edit", data=again,
                       follow_redirects=False).status_code == 303
    assert areas.execute("SELECT version, opening_hours FROM station WHERE code = 'T1'"
                         ).fetchone() == (3, "24/7")


def test_another_district_the_inspector_and_a_forged_form_are_refused_unwritten(
        client: TestClient, areas: psycopg.Connection[Any], office: dict[str, int]) -> None:
    sign_in(client, "ed")
    assert client.get("/console/stations/H1/edit").status_code == 403
    assert client.get("/console/stations/H1/close").status_code == 403
    data = _form(client.get("/console/stations/T1/edit").text)
    refused = client.post("/console/stations/H1/edit", data={**data, "version": "1"},
                          follow_redirects=False)
    assert refused.status_code == 403 and "不在您的管辖区域" in refused.text
    # A new station placed in Haitang: the service's scope rule, beside the coordinates.
    hlon, hlat = wgs84_to_gcj02(109.70, 18.35)
    outside = _new(client, lon=f"{hlon:.6f}", lat=f"{hlat:.6f}", district_code="")
    assert outside.status_code == 403 and re.search(r'id="err-district_code">不在您的管辖区域',
                                                    outside.text)
    # The clerk's own area, a district the point is not in: beside the district.
    wrong = _new(client, lon=f"{hlon:.6f}", lat=f"{hlat:.6f}", district_code="460204")
    assert wrong.status_code == 422 and "与坐标不符：该点位于 460202" in wrong.text
    # No CSRF token, or a wrong one.
    for token in (None, "x" * 43):
        form = {**data, "name": "伪造"}
        form.pop("csrf_token")
        if token:
            form["csrf_token"] = token
        forged = client.post("/console/stations/T1/edit", data=form, follow_redirects=False)
        assert forged.status_code == 403 and "csrf_token" in forged.text
    assert areas.execute("SELECT count(*) FROM station WHERE code = 'N1'").fetchone() == (0,)
    client.cookies.clear()
    sign_in(client, "insp")
    assert client.get("/console/stations/new").status_code == 403
    assert client.get("/console/stations/T1/edit").status_code == 403
    token = csrf_of(client.get("/console/").text)
    assert client.post("/console/stations/T1/edit", data={**data, "csrf_token": token},
                       follow_redirects=False).status_code == 403
    assert areas.execute("SELECT version, name FROM station WHERE code = 'T1'"
                         ).fetchone() == (1, "测试驿站 T1")
    assert [a for a, *_ in _audit(areas, "T1")] == ["station.create"]


def test_close_reopen_and_delete_need_a_reason_kept_in_the_audit(
        client: TestClient, areas: psycopg.Connection[Any], office: dict[str, int],
        keys: dict[str, str]) -> None:
    sign_in(client, "ed")

    def act(action: str, **form: str) -> Any:
        page = client.get(f"/console/stations/T1/{action}")
        assert page.status_code == 200
        data = {"csrf_token": csrf_of(page.text),
                "version": re.search(r'name="version" value="(\d+)"', page.text).group(1),
                **form}  # type: ignore[union-attr]
        return client.post(f"/console/stations/T1/{action}", data=data, follow_redirects=False)

    # Literal paths: the other console pages under a station are not caught here.
    assert client.get("/console/stations/T1/no-such-page").status_code == 404
    empty = act("close", reason=" ")
    assert empty.status_code == 422 and 'id="err-reason">请填写原因' in empty.text
    assert act("close", reason="装修一个月", status="temporarily_closed").status_code == 303
    assert act("reopen", reason="装修完毕").status_code == 303
    gone = act("delete", reason="场地收回")
    assert gone.status_code == 303 and gone.headers["location"] == "/console/stations/T1"
    row = areas.execute("SELECT status, deleted_at IS NOT NULL, version FROM station "
                        "WHERE code = 'T1'").fetchone()
    assert row == ("closed", True, 4)
    assert [(a, r) for a, _, _, r in _audit(areas, "T1")][1:] == [
        ("station.update", "装修一个月"), ("station.update", "装修完毕"),
        ("station.delete", "场地收回")]
    history = client.get("/v1/stations/T1/history",
                         headers={"Authorization": keys["tianya_editor"]}).json()["entries"]
    assert [e["reason"] for e in history] == [None, "装修一个月", "装修完毕", "场地收回"]
    tomb = [c for c in client.get("/v1/feeds/changes").json()["changes"] if c["code"] == "T1"]
    assert tomb[-1]["op"] == "delete" and tomb[-1]["deleted_at"]


def test_locate_gives_both_systems_and_the_district_of_the_point(
        client: TestClient, office: dict[str, int]) -> None:
    assert client.get("/console/locate?lon=109.5&lat=18.25").status_code == 401
    sign_in(client, "ed")
    lon, lat = wgs84_to_gcj02(109.50, 18.25)
    found = client.get(f"/console/locate?lon={lon}&lat={lat}&crs=gcj02").json()
    assert abs(found["wgs84"]["lon"] - 109.50) < 1e-6
    assert abs(found["wgs84"]["lat"] - 18.25) < 1e-6
    assert found["district_code"] == "460204" and found["district"] == "天涯区"
    assert client.get("/console/locate?lon=500&lat=18").status_code == 422


def test_a_configured_tile_server_is_the_one_other_host_the_form_may_load_from(
        settings: Settings) -> None:
    """No tiles unless configured (the map draws the outline and the stations); with a
    tile URL (as the maps and the courier app take it), its host's images only."""
    assert form_csp(settings) == STRICT_CSP + "; script-src 'self'; connect-src 'self'"
    tiles = settings.model_copy(update={
        "map_tiles_url": "https://webrd0{s}.tiles.example/{z}/{x}/{y}.png",
        "map_tiles_crs": "gcj02"})
    assert "img-src 'self' data: https://*.tiles.example;" in form_csp(tiles)
    assert "script-src 'self'; connect-src 'self'" in form_csp(tiles)
