"""The console's inspection form (issue 27): an inspector records an inspection with
photos from a phone; a repeat of the same submission (the offline queue's retry after a
lost response) is recorded once; the area, the CSRF token and the API's rules hold, and
refusals speak Chinese; stored photos carry no GPS; the station stops being overdue.
The phone itself (offline queue, 360×640) is in tests/test_console_browser.py."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.domain.catalogue import TEN_ONES
from geo_service.infra.settings import Settings
from tests.conftest import station_body
from tests.helpers import insert_stations
from tests.test_console import TIANYA, csrf_of, make, sign_in
from tests.test_console_stations import HAITANG, TODAY, codes
from tests.test_photos import gps_of, photo_bytes, png_bomb

_IN = {"city_code": "460200", "province_code": "460000"}
JSON = {"Accept": "application/json"}


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """The conftest settings with a photo store of the test's own."""
    return Settings(database_url=db_url, allowed_hosts=["testserver"], nearest_index="off",
                    photo_dir=str(tmp_path / "photos"))


@pytest.fixture
def insp(client: TestClient, areas: psycopg.Connection[Any]) -> TestClient:
    """A Tianya inspector, signed in; T1 in Tianya (verified 200 days ago, so overdue),
    H1 in Haitang."""
    insert_stations(areas, [
        station_body("T1", 109.50, 18.25, name="天涯海角驿站", district_code=TIANYA,
                     district="天涯区", last_verified_on="2020-01-01", **_IN),
        station_body("H1", 109.70, 18.35, name="海棠驿站", district_code=HAITANG,
                     district="海棠区", **_IN)])
    make(areas, "insp", "inspector")
    assert sign_in(client, "insp").status_code == 303
    return client


def form_fields(client: TestClient, code: str = "T1") -> dict[str, str]:
    """What the form page gives: its CSRF token and its idempotency key; all ten present."""
    page = client.get(f"/console/stations/{code}/inspect")
    assert page.status_code == 200, page.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert key
    return {"csrf_token": csrf_of(page.text), "idempotency_key": key.group(1),
            "inspected_on": TODAY.isoformat(), "remarks": "饮水机需要换滤芯",
            **{f"item_{a.code}": "present" for a in TEN_ONES}}


def two_photos() -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("photos", ("IMG_1.jpg", photo_bytes(color=(10, 120, 200)), "image/jpeg")),
            ("photos", ("IMG_2.jpg", photo_bytes(color=(200, 120, 10)), "image/jpeg"))]


def counts(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    row = conn.execute("SELECT (SELECT count(*) FROM inspection), "
                       "(SELECT count(*) FROM inspection_photo)").fetchone()
    assert row
    return int(row[0]), int(row[1])


def test_two_photos_recorded_once_though_sent_twice_and_the_station_is_verified(
        insp: TestClient, areas: psycopg.Connection[Any]) -> None:
    assert "T1" in codes(insp.get("/console/stations?unverified=1").text)
    data = form_fields(insp)
    first = insp.post("/console/stations/T1/inspect", data=data, files=two_photos(),
                      headers=JSON)
    assert first.status_code == 201, first.text
    assert first.json()["repeat"] is False and "已提交" in first.json()["message"]
    again = insp.post("/console/stations/T1/inspect", data=data, files=two_photos(),
                      headers=JSON)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"] and again.json()["repeat"] is True
    assert counts(areas) == (1, 2)
    row = areas.execute("SELECT i.inspector, i.photos, i.remarks, i.idempotency_key, "
                        "s.last_verified_on FROM inspection i JOIN station s "
                        "ON s.id = i.station_id").fetchone()
    assert row and row[0] == "insp" and row[2] == "饮水机需要换滤芯"
    assert row[3] == uuid.UUID(data["idempotency_key"]) and row[4] == TODAY
    for sha in row[1]:  # as stored: no GPS, no device
        stored = insp.get(f"/v1/photos/{sha}.jpg")
        assert stored.status_code == 200 and gps_of(stored.content) == {}
        assert b"PhoneMaker" not in stored.content
    # The one overdue rule: verified today, T1 leaves the console's "not verified" list.
    assert "T1" not in codes(insp.get("/console/stations?unverified=1").text)
    assert "记录巡查" in insp.get("/console/stations/T1").text
    # Without script: a plain form post, answered with a fresh form saying so.
    plain = insp.post("/console/stations/T1/inspect",
                      data={**form_fields(insp), "inspected_on": "2024-05-01"},
                      follow_redirects=False)
    assert plain.status_code == 303
    assert plain.headers["location"] == "/console/stations/T1/inspect?done=recorded"
    assert "已提交：巡查记录已保存。" in insp.get(plain.headers["location"]).text
    assert counts(areas) == (2, 2)


def test_another_district_and_a_missing_token_are_refused(
        insp: TestClient, areas: psycopg.Connection[Any]) -> None:
    data = form_fields(insp)
    assert insp.get("/console/stations/H1/inspect").status_code == 403
    other = insp.post("/console/stations/H1/inspect", data=data, files=two_photos())
    assert other.status_code == 403 and "460204" in other.text
    no_token = {k: v for k, v in data.items() if k != "csrf_token"}
    refused = insp.post("/console/stations/T1/inspect", data=no_token, files=two_photos())
    assert refused.status_code == 403 and "csrf_token" in refused.text
    assert counts(areas) == (0, 0)


def test_bad_input_is_named_in_chinese_and_the_form_kept(
        insp: TestClient, areas: psycopg.Connection[Any]) -> None:
    data = form_fields(insp)
    del data["item_microwave"]
    data.update({"inspected_on": "2999-01-01", "score": "150", "hours_observed": "每天早上"})
    r = insp.post("/console/stations/T1/inspect", data=data)
    assert r.status_code == 422
    text = r.text
    assert "十有设施 · 微波炉：请选择：有、缺或坏" in text
    assert "巡查日期：不能晚于今天（北京时间）" in text
    assert "评分：应在 0 到 100 之间" in text
    assert "开放时间：写法不对（OSM 语法）" in text
    assert "饮水机需要换滤芯" in text and 'value="150"' in text  # kept for correcting
    as_json = insp.post("/console/stations/T1/inspect", data=data, headers=JSON)
    assert as_json.status_code == 422
    assert {"field": "score", "label": "评分", "problem": "应在 0 到 100 之间"} in (
        as_json.json()["fields"])
    assert counts(areas) == (0, 0)


@pytest.mark.parametrize(("name", "data", "status", "words"), [
    ("bomb.jpg", png_bomb(), 413, "图片像素过多"),
    ("report.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n" * 20, 415,
     "不是图片文件"),
])
def test_a_bomb_and_a_renamed_non_image_are_refused_in_chinese(
        insp: TestClient, areas: psycopg.Connection[Any], name: str, data: bytes,
        status: int, words: str) -> None:
    files = [two_photos()[0], ("photos", (name, data, "image/jpeg"))]
    r = insp.post("/console/stations/T1/inspect", data=form_fields(insp), files=files)
    assert r.status_code == status
    assert f"照片：第 2 张（{name}）：{words}" in r.text
    assert counts(areas) == (0, 0)


def test_the_api_answers_a_repeated_idempotency_key_with_the_first_inspection(
        client: TestClient, keys: dict[str, str], areas: psycopg.Connection[Any]) -> None:
    insert_stations(areas, [station_body("T1", 109.50, 18.25, district_code=TIANYA, **_IN)])
    body = {"inspected_on": TODAY.isoformat(),
            "items": {a.code: "present" for a in TEN_ONES}}
    headers = {"Authorization": keys["tianya_editor"], "Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/v1/stations/T1/inspections", json=body, headers=headers)
    again = client.post("/v1/stations/T1/inspections", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"] and again.json()["repeat"] is True
    assert counts(areas)[0] == 1

