"""Every opening_hours value the API accepts renders wherever hours are shown.

One imported station with ``closed`` hours once broke every platform export for
everyone (the Chinese hours text raised). Here generated values (a grammar of
OSM syntax pieces, kept when :func:`validate_hours` accepts them) and a corpus
of real-looking values (``tests/data/opening_hours_cn.txt``) go through every
renderer that shows hours: the export rows (CSV, XLSX) of each platform, the
feed feature, the map payload and page, the nearest decoration (open now, next
change) and the CLI tables. The pure functions are tested directly (fast); one
test goes through the API end to end.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from geo_service.domain.coords import Crs
from geo_service.domain.encoding import dumps
from geo_service.feeds.export_formats import (
    PLATFORMS,
    Platform,
    XlsxExport,
    build_rows,
    csv_rows,
    headers,
    hours_zh,
)
from geo_service.feeds.features import station_feature
from geo_service.hours.compiler import HoursError, validate_hours
from geo_service.maps import render
from geo_service.maps.model import BASEMAPS, Area, MapOptions, Stations
from geo_service.operations.cli import _STOP_COLUMNS, print_table, write_csv
from geo_service.stations.service import decorate_nearest
from tests.conftest import station_body

CORPUS = [line for line in (Path(__file__).parent / "data" / "opening_hours_cn.txt")
          .read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
AT = (dt.datetime(2026, 7, 1, 4, 0, tzinfo=dt.UTC), dt.datetime(2026, 10, 1, 15, 59, tzinfo=dt.UTC))

# --- a grammar of OSM opening_hours pieces ---------------------------------------------------

_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_day = st.sampled_from(_DAYS)
_day_sel = st.lists(st.one_of(_day, st.tuples(_day, _day).map("-".join),
                              st.sampled_from(["PH", "SH"])),
                    min_size=1, max_size=3).map(",".join)
_clock = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23),
                   st.sampled_from([0, 15, 30, 45]))
_end = st.one_of(_clock, st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(24, 47),
                                   st.sampled_from([0, 30])), st.just("24:00"), st.just("48:00"))
_sun = st.sampled_from(["sunrise", "sunset", "dawn", "dusk", "(sunrise+01:00)",
                        "(sunset-00:30)"])
_span = st.one_of(
    st.tuples(st.one_of(_clock, _sun), st.one_of(_end, _sun)).map("-".join),
    _clock.map(lambda c: c + "+"),
    st.tuples(_clock, _end).map(lambda t: f"{t[0]}-{t[1]}"),  # the common case, weighted up
)
_spans = st.lists(_span, min_size=1, max_size=3).map(",".join)
_month = st.sampled_from(_MONTHS)
_month_sel = st.one_of(
    _month, st.tuples(_month, _month).map("-".join),
    st.builds(lambda m, d: f"{m} {d:02d}", _month, st.integers(1, 28)),
    st.builds(lambda a, d, b, e: f"{a} {d:02d}-{b} {e:02d}", _month, st.integers(1, 28),
              _month, st.integers(1, 28)),
)
_week = st.one_of(st.builds(lambda a, b: f"week {a:02d}-{b:02d}", st.integers(1, 26),
                            st.integers(27, 53)),
                  st.builds(lambda a: f"week {a:02d}", st.integers(1, 53)),
                  st.just("week 1-53/2"))
_year = st.sampled_from(["2025", "2026", "2024-2030", "2030"])
_state = st.sampled_from(["open", "closed", "off", "unknown"])
# Comments carry whatever people type, markup included (the maps embed them in a page).
_comment = st.text(st.characters(exclude_characters='"', exclude_categories=("Cc", "Cs")),
                   max_size=12).map(lambda s: f'"{s}"') | st.sampled_from(
    ['"预约"', '"by appointment"', '"</script><b>x</b>"', '"<!--<script>"', '"a & b"'])


@st.composite
def _rule(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["24/7", "closed", "off", "open", "unknown", "24/7 closed",
                                     "PH off", "sunrise-sunset"]))
    pieces = [draw(p) if not draw(st.integers(0, 3)) else "" for p in (_year, _month_sel, _week)]
    pieces += [draw(_day_sel) if draw(st.integers(0, 3)) else "",
               draw(_spans) if draw(st.integers(0, 3)) else "",
               draw(_state) if not draw(st.integers(0, 3)) else "",
               draw(_comment) if not draw(st.integers(0, 4)) else ""]
    return " ".join(p for p in pieces if p)


@st.composite
def opening_hours(draw: st.DrawFn) -> str:
    rules = draw(st.lists(_rule(), min_size=1, max_size=4))
    text = rules[0]
    for rule in rules[1:]:
        text += draw(st.sampled_from(["; ", ";", ", ", " || "])) + rule
    return text


def accepted(expr: str) -> str | None:
    """The stored (normalised) form, or None when the API would refuse it."""
    try:
        return validate_hours(expr)
    except HoursError:
        return None


# --- every renderer --------------------------------------------------------------------------


def feed_row(hours: str, **over: Any) -> dict[str, Any]:
    """A feed/export row as ``feeds.queries`` selects it."""
    row: dict[str, Any] = {
        "code": "H-1", "name": "测试驿站", "name_en": None, "address": "三亚市天涯区",
        "province": "海南省", "province_code": "460000", "city": "三亚市", "city_code": "460200",
        "district": "天涯区", "district_code": "460204", "phone": "0898-1234567",
        "host_type": "union_built", "status": "open", "opening_hours": hours,
        "timezone": "Asia/Shanghai", "official_workdays": None, "open_now": None,
        "amenity_mask": 0b1011,
        "last_verified_on": dt.date(2026, 5, 1), "updated_at": AT[0], "version": 1,
        "sample": False, "lon": 109.5, "lat": 18.25, "stops": None,
    }
    row.update(over)
    return row


def stations(hours: list[str]) -> Stations:
    n = len(hours)
    return Stations(
        code=[f"H-{i}" for i in range(n)], name=[f"站 {i}" for i in range(n)],
        address=[None] * n, lon=np.full(n, 109.5) + np.arange(n) * 1e-3,
        lat=np.full(n, 18.25), host_type=["union_built"] * n, status=["open"] * n,
        opening_hours=hours, phone=[None] * n, amenity_mask=[3] * n,
        last_verified_on=[None] * n, district_code=[None] * n, sample=[False] * n,
        open_now=[None] * n,
        stops=[[{"seq": 1, "name": "站点", "lon": 109.5, "lat": 18.25, "opening_hours": h,
                 "current": True}] for h in hours],
        awards=[None] * n, reported_closed_at=[None] * n, last_confirmed_at=[None] * n)


def nearest_row(hours: str, stop_hours: str | None) -> dict[str, Any]:
    stop = None if stop_hours is None else {"seq": 1, "name": "站点", "opening_hours": stop_hours,
                                            "valid_from": None, "valid_to": None}
    return {**feed_row(hours), "id": 1, "sphere_m": 10.0, "distance_m": 10.0,
            "bearing_deg": 90.0, "open_sql": True, "current_stop": stop}


def osm_column(platform: Platform) -> int:
    """Where a platform's file holds the OSM text: 营业时间(OSM) / opening_hours, or the
    union sheet's 开放时间 (it re-imports, so it keeps OSM)."""
    names = headers(platform)
    return next(i for i, h in enumerate(names)
                if h in ("营业时间(OSM)", "opening_hours", "开放时间*", "开放时间"))


def render_pure(hours: str, tmp: Path) -> None:
    """Every pure renderer of hours, on one value; any exception fails the test."""
    text = hours_zh(hours)
    assert isinstance(text, str) and text.strip()
    for platform in PLATFORMS.values():
        cells = build_rows([feed_row(hours)], platform)
        assert cells[0][osm_column(platform)] in (hours, "'" + hours)
        assert csv_rows([feed_row(hours)], platform).endswith(b"\r\n")
    dumps(station_feature(feed_row(hours, stops=[
        {"seq": 1, "name": "站点", "opening_hours": hours, "current": True}])))
    dumps(render._station_payload(stations([hours])))
    for at in AT:
        row = decorate_nearest(nearest_row(hours, None), at, Crs.GCJ02)
        assert row["open_now"] is True
        dumps(row)
        dumps(decorate_nearest(nearest_row("24/7", hours), at, Crs.WGS84))
    stop = {"now": "*", "seq": 1, "name": "站点", "lon": 109.5, "lat": 18.25,
            "opening_hours": hours, "valid_from": None, "valid_to": None}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        print_table([stop], _STOP_COLUMNS, render.LOCAL_TZ)
    assert "站点" in out.getvalue()
    write_csv(tmp / "stops.csv", [stop], _STOP_COLUMNS)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hours")


def test_corpus_is_accepted() -> None:
    assert len(CORPUS) >= 40
    assert [e for e in CORPUS if accepted(e) is None] == []


@pytest.mark.parametrize("expr", CORPUS)
def test_corpus_renders_everywhere(expr: str, tmp: Path) -> None:
    stored = accepted(expr)
    assert stored is not None
    for value in {expr, stored}:
        render_pure(value, tmp)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(expr=opening_hours())
def test_generated_hours_render_everywhere(expr: str, tmp: Path) -> None:
    stored = accepted(expr)
    assume(stored is not None)
    assert stored is not None
    for value in {expr, stored}:
        render_pure(value, tmp)


def test_corpus_in_one_xlsx_and_map_page() -> None:
    """The whole corpus in one workbook per platform (saved, reopened) and one map page."""
    values = sorted({v for e in CORPUS for v in (e, accepted(e)) if v})
    for platform in PLATFORMS.values():
        export = XlsxExport(platform, AT[0])
        export.append([feed_row(v, code=f"H-{i}") for i, v in enumerate(values)])
        buf = io.BytesIO()
        export.save(buf)
        sheet = openpyxl.load_workbook(buf).worksheets[0]
        osm = [r[osm_column(platform)] for r in sheet.iter_rows(min_row=2, values_only=True)]
        assert osm == values
    page = render.stations_map(stations(values), [], Area(None, "全部地区"),
                               MapOptions(basemap=BASEMAPS["none"], at=AT[0]))
    assert page.count("<script") >= 3


@pytest.mark.parametrize("hours, zh", [
    ("closed", "不开放"),
    ("off", "不开放"),
    ("Mo-Fr off", "周一至周五休息"),
    ("24/7", "24小时营业"),
    ("24/7 unknown", "营业时间不确定"),
    ("Mo-Fr 09:00-12:00,14:00-18:00; PH closed",
     "周一至周五 09:00-12:00、14:00-18:00；法定节假日休息"),
    ("Mo-Fr 08:30-17:30; Sa-Su 09:00-17:00 \"weekend by appointment\"",
     "周一至周五 08:30-17:30；周六至周日 09:00-17:00（weekend by appointment）"),
    ("Mo-Su 22:00-06:00", "每天 22:00-次日06:00"),
    ("sunrise-sunset", "每天 日出-日落"),
    ("10:00+", "每天 10:00起"),
    ("Mo-Fr 08:00-18:00 || 24/7 \"预约\"", "Mo-Fr 08:00-18:00 || 24/7 \"预约\""),
    ("Jan 1 closed; Mo-Fr 08:00-18:00", "Jan 1 closed; Mo-Fr 08:00-18:00"),
])
def test_hours_zh_readings(hours: str, zh: str) -> None:
    assert hours_zh(hours) == zh


def test_closed_station_appears_in_every_export(
        client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]) -> None:
    """An imported station with ``closed`` hours: every export, feed and map still answers."""
    body = station_body("CLOSED-1", 109.5, 18.25, opening_hours="closed")
    head = list(body)
    data = ",".join(head) + "\n" + ",".join(
        ";".join(v) if isinstance(v, list) else str(v) for v in body.values()) + "\n"
    r = client.post("/v1/stations:import", files={"file": ("s.csv", data.encode())},
                    headers={"Authorization": keys["admin"]})
    assert r.status_code == 200, r.text
    for platform in PLATFORMS:
        r = client.get(f"/v1/exports/{platform}.csv")
        assert r.status_code == 200, r.text
        rows = list(csv.reader(io.StringIO(r.content[3:].decode())))
        assert len(rows) == 2 and "closed" in rows[1], rows
        r = client.get(f"/v1/exports/{platform}.xlsx")
        assert r.status_code == 200, r.text
        sheet = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
        assert len(list(sheet.iter_rows())) == 2
    for path in ("/v1/feeds/stations.geojson", "/ogc/collections/stations/items",
                 "/v1/stations/CLOSED-1", "/v1/feeds/changes", "/maps/stations.html",
                 "/v1/stations/nearest?lat=18.25&lon=109.5"):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
        assert "CLOSED-1" in r.text, path
