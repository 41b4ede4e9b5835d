"""Station import: formats, encodings, atomicity, idempotence, the error report, duplicates."""

from __future__ import annotations

import io
import json
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from openpyxl import Workbook

HEADER = "code,name,lon,lat,host_type,opening_hours,amenities,status,phone"
GOOD = [
    "I-1,三亚湾驿站,109.50,18.25,union_built,24/7,microwave;restroom,open,0898-1111111",
    "I-2,解放路驿站,109.502,18.258,bank_branch,Mo-Fr 08:00-18:00,restroom,open,",
    "I-3,吉阳驿站,109.60,18.28,sanitation_depot,Mo-Su 06:00-22:00,,planned,",
]


def _csv(rows: list[str], encoding: str = "utf-8") -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode(encoding)


def _post(client: TestClient, key: str, data: bytes, name: str = "s.csv",
          **params: Any) -> Any:
    return client.post("/v1/stations:import", files={"file": (name, data)},
                       params=params, headers={"Authorization": key})


def _snapshot(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute("SELECT code, name, version, updated_at, ST_AsText(geog) FROM station "
                      "ORDER BY code").fetchall()


def test_import_is_idempotent(client: TestClient, keys: dict[str, str],
                              db: psycopg.Connection[Any]) -> None:
    r = _post(client, keys["admin"], _csv(GOOD))
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (3, 0, 0)
    first = _snapshot(db)
    r = _post(client, keys["admin"], _csv(GOOD))
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 3)
    assert _snapshot(db) == first
    changed = [GOOD[0].replace("三亚湾驿站", "三亚湾驿站（新）"), *GOOD[1:]]
    r = _post(client, keys["admin"], _csv(changed))
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 1, 2)
    assert db.execute("SELECT version FROM station WHERE code='I-1'").fetchone() == (2,)
    # the admin codes are filled from the sample polygons
    assert db.execute("SELECT district_code FROM station WHERE code='I-3'").fetchone() == (
        "460203",)


def test_one_bad_row_writes_nothing_and_names_every_problem(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    rows = [
        *GOOD,
        "I-4,坏坐标,209.5,18.25,union_built,24/7,,open,",
        "I-5,坏时间,109.5,18.25,union_built,Mo-Fr 25:00-26:00,,open,",
        "I-6,坏设施,109.5,18.25,castle,24/7,sauna,open,",
        "I-1,重复编号,109.5,18.25,union_built,24/7,,open,",
    ]
    r = _post(client, keys["admin"], _csv(rows))
    assert r.status_code == 422
    body = r.json()
    report = body["report"]
    assert report["written"] is False and report["created"] == 0
    problems = {(p["row"], p["field"]) for p in report["errors"]}
    assert {(4, "lon"), (5, "opening_hours"), (6, "host_type"), (6, "amenities"),
            (7, "code")} <= problems
    assert db.execute("SELECT count(*) FROM station").fetchone() == (0,)
    r = _post(client, keys["admin"], _csv(rows), mode="skip_bad_rows")
    assert r.status_code == 200
    assert r.json()["created"] == 3 and r.json()["written"] is True
    assert len(r.json()["errors"]) >= 5


def test_gb18030_and_bom_csv(client: TestClient, keys: dict[str, str],
                             db: psycopg.Connection[Any]) -> None:
    r = _post(client, keys["admin"], _csv(GOOD, "gb18030"))
    assert r.status_code == 200, r.text
    names = [n for (n,) in db.execute("SELECT name FROM station ORDER BY code")]
    assert names == ["三亚湾驿站", "解放路驿站", "吉阳驿站"]
    r = _post(client, keys["admin"], b"\xef\xbb\xbf" + _csv(GOOD))
    assert r.json()["unchanged"] == 3
    r = _post(client, keys["admin"], b"code,name\n\xff\xfe\xfa,\x81\n")
    assert r.status_code == 422


def test_xlsx_and_geojson(client: TestClient, keys: dict[str, str],
                          db: psycopg.Connection[Any]) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER.split(","))
    for row in GOOD:
        values: list[Any] = row.split(",")
        values[2], values[3] = float(values[2]), float(values[3])
        ws.append(values)
    buf = io.BytesIO()
    wb.save(buf)
    r = _post(client, keys["admin"], buf.getvalue(), "s.xlsx")
    assert r.status_code == 200 and r.json()["created"] == 3, r.text
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [109.52, 18.27]},
         "properties": {"code": "G-1", "name": "地理驿站", "host_type": "volunteer",
                        "opening_hours": "24/7", "amenities": ["restroom"]}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
         "properties": {"code": "G-2", "name": "线", "host_type": "volunteer",
                        "opening_hours": "24/7"}},
    ]}
    r = _post(client, keys["admin"], json.dumps(fc).encode(), "s.geojson")
    assert r.status_code == 422
    assert [(p["row"], p["field"]) for p in r.json()["report"]["errors"]] == [(2, "geometry")]
    fc["features"].pop()
    r = _post(client, keys["admin"], json.dumps(fc).encode(), "s.geojson")
    assert r.status_code == 200 and r.json()["created"] == 1
    assert _post(client, keys["admin"], b"PK\x03\x04garbage", "x.xlsx").status_code == 422
    assert _post(client, keys["admin"], b"{\"type\": 1", "x.geojson").status_code == 422


def test_likely_duplicates_reported(client: TestClient, keys: dict[str, str]) -> None:
    rows = [*GOOD, "I-9,三亚湾驿站,109.50015,18.25010,union_built,24/7,,open,"]
    r = _post(client, keys["admin"], _csv(rows))
    dups = r.json()["likely_duplicates"]
    assert [(d["code"], d["other_code"]) for d in dups] in ([("I-1", "I-9")], [("I-9", "I-1")])
    assert dups[0]["distance_m"] < 30


def test_header_problems_and_dry_run(client: TestClient, keys: dict[str, str],
                                     db: psycopg.Connection[Any]) -> None:
    r = _post(client, keys["admin"], b"code,naam,lon,lat\nX,y,1,2\n")
    assert r.status_code == 422
    fields = {f["field"] for f in r.json()["error"]["fields"]}
    assert {"naam", "name", "host_type"} <= fields
    assert "opening_hours" not in fields  # optional: a file without it has unknown hours
    r = _post(client, keys["admin"], _csv(GOOD), dry_run="true")
    assert r.status_code == 200 and r.json()["created"] == 3 and r.json()["written"] is False
    assert db.execute("SELECT count(*) FROM station").fetchone() == (0,)
    assert _post(client, keys["admin"], b"").status_code == 422


def test_scoped_admin_import_refuses_rows_outside_area(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    r = _post(client, keys["tianya_admin"], _csv(GOOD))  # I-3 lies in Jiyang
    assert r.status_code == 422
    assert [p["code"] for p in r.json()["report"]["errors"]] == ["I-3"]
    assert db.execute("SELECT count(*) FROM station").fetchone() == (0,)


def test_oversize_import_is_413(client: TestClient, keys: dict[str, str]) -> None:
    big = _csv(GOOD) + b"#" * 21_000_000
    r = _post(client, keys["admin"], big)
    assert r.status_code == 413
