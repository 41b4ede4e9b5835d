"""A station's fields are declared once (issue 12): ``schemas._StationBody``.

``floor_area_m2`` was once written in nine places. The patch model, the
service's merge, the import's columns and temporary table and the stored
columns now derive from ``schemas.STATION_FIELDS``; what is still spelled out
for readability (the SELECT list, the public model) is checked against it here.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from geo_service.domain.coords import Crs
from geo_service.domain.schemas import (
    NOT_NULL_STATION_FIELDS,
    REQUIRED_STATION_FIELDS,
    STATION_FIELDS,
    StationCreate,
    StationPatch,
    StationPublic,
    StationReplace,
)
from geo_service.stations import importer
from geo_service.stations import queries as q
from geo_service.stations.service import to_record
from tests.conftest import station_body


def test_models_carry_the_one_list() -> None:
    assert set(StationCreate.model_fields) == {"code", *STATION_FIELDS}
    assert set(StationReplace.model_fields) == {"version", *STATION_FIELDS}
    assert tuple(StationPatch.model_fields) == ("version", *STATION_FIELDS)
    assert all(f.default is None and not f.is_required()
               for f in StationPatch.model_fields.values())
    assert set(StationPublic.model_fields) >= set(STATION_FIELDS)
    # What the router refuses as null in a patch. Not opening_hours: null clears the
    # hours (they become unknown), and a new station may come without them.
    assert NOT_NULL_STATION_FIELDS == ("name", "lon", "lat", "host_type", "status",
                                       "timezone", "amenities", "sample")
    assert REQUIRED_STATION_FIELDS == ("name", "lon", "lat", "host_type")


def test_import_columns_are_the_fields() -> None:
    assert ("code", *STATION_FIELDS) == importer.COLUMNS
    assert ("code", *REQUIRED_STATION_FIELDS) == importer.REQUIRED


def test_stored_columns_are_the_fields_as_stored(db: psycopg.Connection[Any]) -> None:
    body = StationCreate.model_validate(station_body("F-1", 109.5, 18.25)).model_dump()
    record = to_record(body, Crs.WGS84)
    assert set(q.WRITE_COLUMNS) <= set(record)
    assert {"floor_area_m2", "amenity_mask", "hours_kind"} <= set(q.WRITE_COLUMNS)
    table = {r[0] for r in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'station'")}
    assert set(q.WRITE_COLUMNS) <= table
    # The SELECT list is spelled out for readability: it reads every stored field.
    selected = set(re.findall(r"\bs\.([a-z_0-9]+)", q.STATION_COLUMNS))
    assert {c for c in q.WRITE_COLUMNS if c not in q.HOURS_COLUMNS} <= selected


def test_patch_refuses_null_by_name_and_clears_optional_fields(
        client: TestClient, keys: dict[str, str]) -> None:
    key = {"Authorization": keys["editor"]}
    r = client.post("/v1/stations", json=station_body("F-2", 109.5, 18.25, floor_area_m2=20),
                    headers=key)
    assert r.status_code == 201, r.text
    for field in NOT_NULL_STATION_FIELDS:
        body: dict[str, Any] = {"version": 1, field: None}
        if field in ("lon", "lat"):
            body.update(lon=None, lat=None)
        r = client.patch("/v1/stations/F-2", json=body, headers=key)
        assert r.status_code == 422, (field, r.text)
        assert r.json()["error"]["fields"][0]["field"] in (field, "lon"), r.text
    r = client.patch("/v1/stations/F-2", json={"version": 1, "floor_area_m2": None}, headers=key)
    assert r.status_code == 200 and r.json()["floor_area_m2"] is None



def test_a_station_page_has_its_hours_in_plain_chinese(
        client: TestClient, db: psycopg.Connection[Any], keys: dict[str, str]) -> None:
    """The detail carries the hours as people read them; unknown hours say so, never ''."""
    for code, hours, zh in (("ZH-1", "Mo-Fr 08:00-18:00; PH closed", "周一至周五 08:00-18:00；"),
                            ("ZH-2", None, "营业时间未知")):
        body = station_body(code, 109.5, 18.25, opening_hours=hours)
        r = client.post("/v1/stations", json=body, headers={"Authorization": keys["editor"]})
        assert r.status_code == 201, r.text
        got = client.get(f"/v1/stations/{code}").json()
        assert got["opening_hours"] == hours
        assert got["opening_hours_zh"].startswith(zh)
