"""Opening hours may be unknown, and every answer says so instead of guessing.

A thousand real OpenStreetMap points: 68% had no ``opening_hours`` and were refused.
Now a station may have none (``opening_hours`` null), and a rule may be unknown for a
while (``|| unknown``, ``unknown``, a comment-only fallback, a dated rule past its
horizon). ``open_now`` is then null everywhere, the open-now filter leaves such
stations out unless ``include_unknown=true``, and people read "营业时间未知".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import openpyxl
import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.feeds.export_formats import PLATFORMS
from geo_service.hours.text import HOURS_UNKNOWN_EN, HOURS_UNKNOWN_ZH, hours_label
from geo_service.maps.assets import AssetMode
from geo_service.maps.model import BASEMAPS, MapOptions
from geo_service.maps.pages import MapKind, make_page
from tests.conftest import station_body
from tests.helpers import insert_stations

P = (109.50, 18.25)
CHINA = dt.timezone(dt.timedelta(hours=8))


def _saturday_noon() -> dt.datetime:
    """Next Saturday 12:00 China time: inside every dated rule's compiled horizon."""
    today = dt.datetime.now(CHINA).date() + dt.timedelta(days=1)
    saturday = today + dt.timedelta(days=(5 - today.weekday()) % 7)
    return dt.datetime.combine(saturday, dt.time(12, 0), CHINA)


def _import(client: TestClient, key: str, data: bytes, name: str = "s.csv") -> Any:
    return client.post("/v1/stations:import", files={"file": (name, data)},
                       headers={"Authorization": key})


def _nearest(client: TestClient, at: dt.datetime, **params: Any) -> dict[str, Any]:
    r = client.get("/v1/stations/nearest", params={
        "lat": P[1], "lon": P[0], "k": 20, "at": at.isoformat(), **params})
    assert r.status_code == 200, r.text
    return {s["code"]: s for s in r.json()["results"]}


def test_hours_label_never_empty() -> None:
    assert hours_label(None) == HOURS_UNKNOWN_ZH == "营业时间未知"
    assert hours_label(None, english=True) == HOURS_UNKNOWN_EN == "hours unknown"
    assert hours_label("24/7") == "24小时营业"


def test_database_keeps_no_hours_and_unknown_kind_together(db: psycopg.Connection[Any]) -> None:
    """The CHECK constraints: NULL hours are exactly kind 'unknown'; only dated rules
    carry unknown periods."""
    insert_stations(db, [station_body("N-1", *P, opening_hours=None),
                         station_body("H-1", P[0] + 0.01, P[1])])
    assert db.execute("SELECT opening_hours, hours_kind, open_minutes::text, open_periods, "
                      "unknown_periods, hours_valid_until FROM station WHERE code = 'N-1'"
                      ).fetchone() == (None, "unknown", "{}", None, None, None)
    for code, change in (("N-1", "hours_kind = 'weekly'"),
                         ("H-1", "opening_hours = NULL"),
                         ("H-1", "hours_kind = 'unknown'"),
                         ("H-1", "unknown_periods = '{}'")):
        with pytest.raises(psycopg.errors.CheckViolation):
            db.execute(f"UPDATE station SET {change} WHERE code = %s", (code,))


def test_nearest_open_now_and_include_unknown(client: TestClient,
                                              db: psycopg.Connection[Any]) -> None:
    """Unknown hours answer open_now null, and the open-now filter takes them only with
    include_unknown=true: no rule, an ``unknown`` fallback, a bare ``unknown``, a
    comment-only fallback and a dated rule past its horizon alike."""
    def s(code: str, hours: str | None, dlon: float) -> dict[str, Any]:
        return station_body(code, P[0] + dlon, P[1], opening_hours=hours)

    insert_stations(db, [
        s("ALWAYS", "24/7", 0.001),
        s("WEEKDAYS", "Mo-Fr 08:00-18:00", 0.002),
        s("NOHOURS", None, 0.003),
        s("FALLBACK", "Mo-Fr 08:00-18:00 || unknown", 0.004),
        s("UNKNOWN", "unknown", 0.005),
        s("APPOINTMENT", 'Mo-Fr 08:00-18:00 || "by appointment"', 0.006),
        s("HOLIDAYS", "Mo-Su 08:00-20:00; PH off", 0.007),
    ])
    at = _saturday_noon()
    unknown = {"NOHOURS", "FALLBACK", "UNKNOWN", "APPOINTMENT"}
    rows = _nearest(client, at)
    assert {c for c, r in rows.items() if r["open_now"] is None} == unknown
    assert rows["WEEKDAYS"]["open_now"] is False and rows["ALWAYS"]["open_now"] is True
    assert rows["NOHOURS"]["opening_hours"] is None and rows["NOHOURS"]["next_change"] is None
    opened = set(_nearest(client, at, open_now="true"))
    assert opened == {"ALWAYS"} | ({"HOLIDAYS"} if rows["HOLIDAYS"]["open_now"] else set())
    with_unknown = _nearest(client, at, open_now="true", include_unknown="true")
    assert set(with_unknown) == opened | unknown
    r = client.get("/v1/stations/nearest", params={"lat": P[1], "lon": P[0],
                                                   "open_now": "true", "include_unknown": "true"})
    assert r.json()["query"]["include_unknown"] is True

    # A dated rule beyond its compiled horizon is unknown too, until recompiled.
    db.execute("UPDATE station SET hours_valid_until = %s WHERE code = 'HOLIDAYS'",
               (at - dt.timedelta(days=1),))
    assert _nearest(client, at)["HOLIDAYS"]["open_now"] is None
    assert "HOLIDAYS" not in _nearest(client, at, open_now="true")
    assert "HOLIDAYS" in _nearest(client, at, open_now="true", include_unknown="true")
    # On a weekday morning the known part of the fallback rules answers again.
    monday_9 = at + dt.timedelta(days=2, hours=-3)
    rows = _nearest(client, monday_9)
    assert {c for c, r in rows.items() if r["open_now"] is None} == {"NOHOURS", "UNKNOWN",
                                                                     "HOLIDAYS"}
    assert rows["FALLBACK"]["open_now"] is True and rows["APPOINTMENT"]["open_now"] is True


def test_refresh_skips_no_hours_and_fills_unknown_periods(db: psycopg.Connection[Any]) -> None:
    from geo_service.stations.maintenance import refresh_dated_hours

    insert_stations(db, [station_body("NOHOURS", *P, opening_hours=None),
                         station_body("FALLBACK", P[0] + 0.01, P[1],
                                      opening_hours="Mo-Fr 08:00-18:00 || unknown",
                                      # Not on the official calendar: a full-year horizon
                                      # (with it, hours stop where the calendar does).
                                      official_workdays=False)])
    # What migration 0007 does to rules stored before it: horizon set to now, no periods.
    db.execute("UPDATE station SET hours_valid_until = now(), unknown_periods = NULL "
               "WHERE code = 'FALLBACK'")
    assert refresh_dated_hours(db) == 1
    kinds = dict(db.execute("SELECT code, hours_kind FROM station").fetchall())
    assert kinds == {"NOHOURS": "unknown", "FALLBACK": "dated"}
    assert db.execute("SELECT NOT isempty(unknown_periods), hours_valid_until > now() + "
                      "interval '300 days' FROM station WHERE code = 'FALLBACK'"
                      ).fetchone() == (True, True)


def test_patch_hours_to_null_and_back(client: TestClient, keys: dict[str, str],
                                      db: psycopg.Connection[Any]) -> None:
    """Null clears the hours (with the version check, like any edit); the change feed
    carries the change; a rule brings open-now back."""
    admin = {"Authorization": keys["admin"]}
    # Off the official calendar, so Mo-Fr hours below stay a weekly pattern.
    r = client.post("/v1/stations", json=station_body("P-1", *P, official_workdays=False),
                    headers=admin)
    assert r.status_code == 201, r.text
    cursor = client.get("/v1/feeds/changes").json()["next_cursor"]
    r = client.patch("/v1/stations/P-1", json={"opening_hours": None}, headers=admin)
    assert r.status_code == 428, r.text  # no version: refused, nothing written
    r = client.patch("/v1/stations/P-1", json={"version": 1, "opening_hours": None},
                     headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["opening_hours"] is None and r.json()["version"] == 2
    assert db.execute("SELECT hours_kind FROM station").fetchone() == ("unknown",)
    entries = client.get("/v1/feeds/changes", params={"since": cursor}).json()["changes"]
    assert [(e["code"], e["version"]) for e in entries] == [("P-1", 2)]
    props = entries[0]["feature"]["properties"]
    assert props["opening_hours"] is None and props["open_now"] is None
    history = client.get("/v1/stations/P-1/history", headers=admin)
    assert history.status_code == 200, history.text
    changes = [e["changes"] for e in history.json()["entries"]]
    assert changes[-1]["opening_hours"] == {"old": "24/7", "new": None}
    # Blank means unknown as well; a rule brings the hours back.
    r = client.patch("/v1/stations/P-1", json={"version": 2, "opening_hours": "  "},
                     headers=admin)
    assert r.status_code == 200 and r.json()["opening_hours"] is None
    r = client.patch("/v1/stations/P-1", json={"version": 3, "opening_hours": "mo-fr 8:00-18:00"},
                     headers=admin)
    assert r.status_code == 200 and r.json()["opening_hours"] == "Mo-Fr 08:00-18:00"
    assert db.execute("SELECT hours_kind FROM station").fetchone() == ("weekly",)
    r = client.patch("/v1/stations/P-1", json={"version": 4, "opening_hours": "banana"},
                     headers=admin)
    assert r.status_code == 422 and "opening_hours" in r.text
    # The nearest answer knows again.
    monday_9 = _saturday_noon() + dt.timedelta(days=2, hours=-3)
    assert _nearest(client, monday_9, open_now="true")["P-1"]["open_now"] is True


def test_import_rows_without_hours(client: TestClient, keys: dict[str, str],
                                   db: psycopg.Connection[Any]) -> None:
    """A CSV without the column, a CSV with an empty cell, a GeoJSON feature without the
    property: all import, with unknown hours. A file without the column leaves the
    hours of stations it updates alone; an empty cell clears them."""
    admin = keys["admin"]
    r = _import(client, admin, "code,name,lon,lat,host_type\n"
                "A-1,无时间驿站,109.50,18.25,union_built\n".encode())
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    r = _import(client, admin, "code,name,lon,lat,host_type,opening_hours\n"
                "A-2,空单元格驿站,109.51,18.25,union_built,\n"
                "A-3,有时间驿站,109.52,18.25,union_built,24/7\n".encode())
    assert r.status_code == 200 and r.json()["created"] == 2, r.text
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [109.53, 18.25]},
         "properties": {"code": "A-4", "name": "OSM点", "host_type": "volunteer"}}]}
    r = _import(client, admin, json.dumps(fc).encode(), "s.geojson")
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    hours = dict(db.execute("SELECT code, opening_hours FROM station").fetchall())
    assert hours == {"A-1": None, "A-2": None, "A-3": "24/7", "A-4": None}
    # Without the column: A-3 keeps its hours (unchanged), A-1 stays unknown.
    r = _import(client, admin, "code,name,lon,lat,host_type\n"
                "A-1,无时间驿站,109.50,18.25,union_built\n"
                "A-3,有时间驿站,109.52,18.25,union_built\n".encode())
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 2)
    # An empty cell in the column clears them; importing it again changes nothing.
    again = ("code,name,lon,lat,host_type,opening_hours\n"
             "A-3,有时间驿站,109.52,18.25,union_built,\n").encode()
    r = _import(client, admin, again)
    assert r.json()["updated"] == 1, r.text
    assert _import(client, admin, again).json()["unchanged"] == 1
    assert db.execute("SELECT opening_hours, hours_kind, version FROM station "
                      "WHERE code = 'A-3'").fetchone() == (None, "unknown", 2)


def test_no_hours_station_appears_in_every_export(
        client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]) -> None:
    """A station imported with an empty hours cell: every export, feed and map answers,
    and says "hours unknown" in its language (the OSM column stays empty: no rule)."""
    body = station_body("NOHOURS-1", 109.5, 18.25, opening_hours="")
    head = list(body)
    data = ",".join(head) + "\n" + ",".join(
        ";".join(v) if isinstance(v, list) else str(v) for v in body.values()) + "\n"
    r = _import(client, keys["admin"], data.encode())
    assert r.status_code == 200, r.text
    for name, platform in PLATFORMS.items():
        label = HOURS_UNKNOWN_EN if platform.english else HOURS_UNKNOWN_ZH
        r = client.get(f"/v1/exports/{name}.csv")
        assert r.status_code == 200, r.text
        rows = list(csv.reader(io.StringIO(r.content[3:].decode())))
        if name == "union":
            # The ledger holds the stored rule for re-import: an empty 开放时间 cell,
            # which imports back as "no hours".
            hours_at = [h.rstrip("*") for h in rows[0]].index("开放时间")
            assert len(rows) == 2 and rows[1][hours_at] == "", rows
            continue
        assert len(rows) == 2 and rows[1][6:8] == [label, ""], rows
        r = client.get(f"/v1/exports/{name}.xlsx")
        assert r.status_code == 200, r.text
        book = openpyxl.load_workbook(io.BytesIO(r.content))
        cells = list(book.worksheets[0].iter_rows(values_only=True))
        assert len(cells) == 2 and cells[1][6] == label and cells[1][7] in (None, "")
        assert "营业时间未知" in str(list(book.worksheets[1].iter_rows(values_only=True)))
    feature = client.get("/v1/feeds/stations.geojson").json()["features"][0]
    assert feature["properties"]["opening_hours"] is None
    assert feature["properties"]["open_now"] is None
    item = client.get("/ogc/collections/stations/items").json()["features"][0]
    assert item["properties"]["opening_hours"] is None and item["properties"]["open_now"] is None
    assert client.get("/v1/stations/NOHOURS-1").json()["opening_hours"] is None
    change = client.get("/v1/feeds/changes").json()["changes"][0]
    assert change["feature"]["properties"]["open_now"] is None
    near = client.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5}).json()
    assert near["results"][0]["open_now"] is None
    status = client.get("/v1/feeds/station_status").json()["data"]["stations"]
    assert [(s["code"], s["open_now"]) for s in status] == [("NOHOURS-1", None)]
    r = client.get("/maps/stations.html")
    assert r.status_code == 200 and "NOHOURS-1" in r.text


def test_coverage_counts_unknown_hours_stations(areas: psycopg.Connection[Any]) -> None:
    """A station with unknown hours still covers: it is there, and workers can knock.
    Asked "covered at this instant" (open_at), it counts only with include_unknown, as
    in the nearest filter."""
    from geo_service.coverage.schemas import CoverageRequest
    from geo_service.coverage.service import run_coverage

    areas.execute("INSERT INTO demand_point (external_id, geog, weight, worker_type) VALUES "
                  "('d1', ST_SetSRID(ST_MakePoint(109.50, 18.25), 4326)::geography, 5, "
                  "'delivery')")
    insert_stations(areas, [station_body("C-ALWAYS", 109.501, 18.25),
                            station_body("C-NOHOURS", 109.502, 18.25, opening_hours=None),
                            station_body("C-WEEKDAYS", 109.503, 18.25,
                                         opening_hours="Mo-Fr 08:00-18:00")])

    def used(**flt: Any) -> int:
        run = run_coverage(areas, CoverageRequest(area="460200", stations=flt))
        row = areas.execute("SELECT inputs FROM analysis_run WHERE id = %s",
                            (run["run_id"],)).fetchone()
        assert row is not None
        return int(row[0]["stations"])

    at = _saturday_noon().isoformat()
    assert used() == 3
    assert used(open_at=at) == 1
    assert used(open_at=at, include_unknown=True) == 2


def test_map_popup_and_legend_say_hours_unknown(browser: Any, areas: psycopg.Connection[Any],
                                                tmp_path: Path) -> None:
    """In Chromium: the popup of a station without hours reads 营业时间未知 and its
    open-now state unknown; the legend explains it; the page has no console error."""
    from tests.test_maps_browser import Visit, open_popup

    insert_stations(areas, [station_body("M-NOHOURS", 109.50, 18.25, opening_hours=None),
                            station_body("M-ALWAYS", 109.52, 18.26)])
    opts = MapOptions(basemap=BASEMAPS["none"], assets=AssetMode.INLINE,
                      at=dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC))
    path = tmp_path / "stations.html"
    path.write_text(make_page(areas, MapKind.STATIONS, None, opts), encoding="utf-8")
    v = Visit(browser, path.as_uri())
    try:
        assert v.wait_markers("stations") == 2
        assert "营业时间未知 hours unknown" in v.page.inner_text(".geo-legend")
        popup = open_popup(v, "stations", "M-NOHOURS")
        assert "营业时间未知 hours unknown" in popup and "营业状态未知" in popup
        assert "<code>null</code>" not in popup and "<code></code>" not in popup
        v.page.keyboard.press("Escape")
        popup = open_popup(v, "stations", "M-ALWAYS")
        assert "<code>24/7</code>" in popup and "现在营业 open now" in popup
        assert v.errors == []
    finally:
        v.close()


def test_json_booleans_are_strict_but_spreadsheet_flags_import(
        client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]) -> None:
    """With hours optional, the contract fuzzer can now create stations, and then found
    ``"sample": 0`` and ``"last_verified_on": 0`` accepted where the schema says boolean
    and date. JSON bodies take the schema's types; an import still reads its cells
    (1/0 and yes/no flags, numbers and dates as text)."""
    admin = {"Authorization": keys["admin"]}
    for field, bad in (("sample", 0), ("sample", 1), ("sample", "true"),
                       ("last_verified_on", 0), ("lon", "109.5"), ("seats", True),
                       ("floor_area_m2", "80")):
        r = client.post("/v1/stations", json={**station_body("B-1", *P), field: bad},
                        headers=admin)
        assert r.status_code == 422, r.text
        assert [f["field"] for f in r.json()["error"]["fields"]] == [field], r.text
    r = client.post("/v1/stations", json=station_body("B-1", *P, sample=True), headers=admin)
    assert r.status_code == 201 and r.json()["sample"] is True
    r = client.post("/v1/stations/B-1/awards", headers=admin,
                    json={"title": "最美驿站", "level": "city", "year": 2025, "sample": 0})
    assert r.status_code == 422 and "sample" in r.text, r.text
    r = _import(client, keys["admin"], "code,name,lon,lat,host_type,sample,seats,opened_on\n"
                "B-2,表格驿站,109.51,18.25,union_built,1,4,2019-09-01\n"
                "B-3,表格驿站二,109.52,18.25,union_built,是,,\n".encode())
    assert r.status_code == 200, r.text
    assert db.execute("SELECT bool_and(sample) FROM station WHERE code IN ('B-2', 'B-3')"
                      ).fetchone() == (True,)


def test_migration_marks_old_rules_for_recompilation_and_downgrades(server_url: str) -> None:
    """Rules stored before 0007 that may hold unknown time read "unknown" until the
    refresh job recompiles them; a downgrade turns "no hours" into ``closed``, never
    into made-up hours."""
    from geo_service.infra.db import downgrade, migrate
    from geo_service.stations.maintenance import refresh_dated_hours
    from tests.test_migrations import _scratch

    scratch = _scratch(server_url)
    url = next(scratch)
    try:
        migrate(url, "0005")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("""
                INSERT INTO station (code, name, geog, host_type, status, opening_hours,
                                     hours_kind, open_minutes, open_periods, hours_valid_until)
                VALUES ('OLD-A', 'a', 'SRID=4326;POINT(109.5 18.25)', 'union_built', 'open',
                        'Mo-Fr 08:00-18:00 || 24/7 "by appointment"', 'weekly',
                        '{[480,1080),[7200,10080)}', NULL, NULL),
                       ('OLD-B', 'b', 'SRID=4326;POINT(109.6 18.25)', 'union_built', 'open',
                        'Mo-Fr 08:00-18:00', 'weekly', '{[480,1080)}', NULL, NULL)""")
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute("SELECT code, hours_kind, hours_valid_until <= now() "
                                "FROM station ORDER BY code").fetchall()
            assert rows == [("OLD-A", "dated", True), ("OLD-B", "weekly", None)]
            # Both: 0008 records the calendar each row is compiled with, so every row
            # stored before it is compiled again once.
            assert refresh_dated_hours(conn) == 2
            assert conn.execute("SELECT hours_kind, NOT isempty(unknown_periods) FROM station "
                                "WHERE code = 'OLD-A'").fetchone() == ("dated", True)
            conn.execute("UPDATE station SET opening_hours = NULL, hours_kind = 'unknown', "
                         "open_minutes = '{}', open_periods = NULL, unknown_periods = NULL, "
                         "hours_valid_until = NULL WHERE code = 'OLD-B'")
        downgrade(url, "0005")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT opening_hours, hours_kind FROM station "
                                "WHERE code = 'OLD-B'").fetchone() == ("closed", "weekly")
    finally:
        next(scratch, None)
