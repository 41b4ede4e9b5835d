"""The monthly bulletin (issue 27): for the sample city and November 2026, the PDF's and
the workbook's figures equal what SQL written here counts, month boundaries included.

The test adds, on top of the sample city, rows on both sides of the month's edges in
China's time (the last second of October, the first instant of December: neither
counted): stations created, check-ins, inspections, worker reports and their decisions,
and two stored coverage runs (one per month end). The PDF is read back as a person's
tools would: pdftotext (the figures and the Chinese headings), pdffonts (the font is
embedded) and pdftoppm (page 1 rasterised, not blank); the XLSX with openpyxl.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
from pathlib import Path
from typing import Any

import openpyxl
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from geo_service.bulletin.model import COLUMNS
from geo_service.cli import main
from tests.conftest import station_body
from tests.helpers import insert_stations

MONTH = "2026-11"
END = "2026-12-01 00:00:00+08"
CITY = "460200"
DISTRICTS = ("460202", "460203", "460204", "460205")
TIANYA = "460204"
ARTIFACTS = Path(__file__).parent / "artifacts"

#: The figures as this test counts them, per area: the city or one of its districts
#: (a station lies in one by its district code; the city holds them all).
EXPECTED = f"""
WITH s AS (SELECT s.*, coalesce(s.district_code, '') AS d,
                  coalesce(s.opened_on, (s.created_at AT TIME ZONE 'Asia/Shanghai')::date)
                  AS began FROM station s
           WHERE s.deleted_at IS NULL AND s.status <> 'duplicate' AND s.city_code = '{CITY}'),
a AS (SELECT unnest(ARRAY['{CITY}', {", ".join(f"'{d}'" for d in DISTRICTS)}]) AS code),
sa AS (SELECT a.code AS unit, s.* FROM a JOIN s ON a.code IN ('{CITY}', s.d) ),
last_check AS (
  SELECT s.id, greatest(
      (SELECT max(i.inspected_on) FROM inspection i WHERE i.station_id = s.id
       AND i.inspected_on < DATE '2026-12-01'),
      CASE WHEN s.last_verified_on < DATE '2026-12-01' THEN s.last_verified_on END) AS on
  FROM s)
SELECT a.code,
  (SELECT count(*) FROM sa WHERE sa.unit = a.code AND sa.status <> 'planned'
     AND to_char(sa.began, 'YYYY-MM') = '{MONTH}') AS built,
  (SELECT count(*) FROM sa WHERE sa.unit = a.code AND sa.began < DATE '2026-12-01'
     AND sa.status IN ('open', 'temporarily_closed')) AS serving,
  (SELECT count(*) FROM sa WHERE sa.unit = a.code AND sa.began < DATE '2026-12-01'
     AND (to_char(sa.last_verified_on, 'YYYY-MM') = '{MONTH}' OR sa.id IN (
       SELECT station_id FROM inspection
       WHERE to_char(inspected_on, 'YYYY-MM') = '{MONTH}'))) AS verified,
  (SELECT count(*) FROM sa WHERE sa.unit = a.code AND sa.began < DATE '2026-12-01'
     AND sa.status IN ('open', 'temporarily_closed') AND sa.amenity_mask <> 0
     AND sa.district_code IS NOT NULL AND sa.opening_hours IS NOT NULL
     AND trim(coalesce(sa.address, '')) <> '' AND trim(coalesce(sa.phone, '')) <> ''
  ) AS on_map,
  (SELECT count(*) FROM inspection i JOIN sa ON sa.id = i.station_id
     WHERE sa.unit = a.code AND to_char(i.inspected_on, 'YYYY-MM') = '{MONTH}') AS inspections,
  (SELECT count(*) FROM sa JOIN last_check l ON l.id = sa.id
     WHERE sa.unit = a.code AND sa.began < DATE '2026-12-01'
     AND sa.status IN ('open', 'temporarily_closed')
     AND (l.on IS NULL OR l.on < DATE '2026-11-30' - 365)) AS overdue,
  (SELECT count(*) FROM station_report r JOIN sa ON sa.id = r.station_id
     WHERE sa.unit = a.code AND to_char(r.created_at AT TIME ZONE 'Asia/Shanghai',
                                        'YYYY-MM') = '{MONTH}') AS reports_received,
  (SELECT count(DISTINCT r.id) FROM station_report r JOIN sa ON sa.id = r.station_id
     JOIN report_resolution x ON x.report_id = r.id AND x.action = 'resolved'
     WHERE sa.unit = a.code AND to_char(x.created_at AT TIME ZONE 'Asia/Shanghai',
                                        'YYYY-MM') = '{MONTH}') AS reports_resolved,
  (SELECT count(*) FROM visit v JOIN sa ON sa.id = v.station_id
     WHERE sa.unit = a.code AND to_char(v.at AT TIME ZONE 'Asia/Shanghai',
                                        'YYYY-MM') = '{MONTH}') AS person_times
FROM a ORDER BY a.code
"""


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.fixture
def november(seeded: psycopg.Connection[Any]) -> dict[str, dict[str, int]]:
    """The sample city plus rows on November 2026's edges; the figures SQL counts here."""
    conn = seeded
    insert_stations(conn, [
        station_body("BUL-1", 109.50, 18.25, address="三亚市天涯区示例路 1 号",
                     phone="0898-12351", amenities=["microwave", "restroom"]),
        station_body("BUL-2", 109.49, 18.26),  # no address, no phone: not on the map
        station_body("BUL-3", 109.51, 18.24),  # created on the first instant of December
        # entered today, opened on November's last day: built in November
        station_body("BUL-4", 109.505, 18.245, opened_on="2026-11-30")])
    conn.execute(
        "UPDATE station s SET last_verified_on = NULL, "
        "(district_code, district, city_code, city, province_code, province) = "
        "(SELECT * FROM geo_admin_for_point(ST_X(s.geog::geometry), ST_Y(s.geog::geometry)))"
        " WHERE code LIKE 'BUL-%'")
    ids = dict(conn.execute("SELECT code, id FROM station WHERE code LIKE 'BUL-%'").fetchall())
    created = {"BUL-1": "2026-11-01 00:00:00+08", "BUL-2": "2026-10-31 23:59:59+08",
               "BUL-3": END}
    for code, at in created.items():
        conn.execute("UPDATE station SET created_at = %s WHERE code = %s", (_ts(at), code))
    one, two = ids["BUL-1"], ids["BUL-2"]
    visits = [(one, "2026-10-31 23:59:59+08", "courier"),  # October: not counted
              (one, "2026-11-01 00:00:00+08", "courier"),
              (one, "2026-11-15 12:00:00+08", None),
              (two, "2026-11-30 23:59:59+08", "sanitation"),
              (two, "2026-12-01 00:00:00+08", "sanitation")]  # December: not counted
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO visit (station_id, at, worker_type) VALUES (%s, %s, %s)",
                        [(s, _ts(at), w) for s, at, w in visits])
        cur.executemany(
            "INSERT INTO inspection (station_id, inspected_on, inspector, items, "
            "ten_ones_count, amenity_mask) VALUES (%s, %s, 'test', '{}', 2, 3)",
            [(one, dt.date(2026, 11, 30)), (two, dt.date(2026, 12, 1)),
             (two, dt.date(2026, 10, 31))])
        for at, decided in (("2026-10-31 23:59:59+08", "2026-11-01 00:00:00+08"),
                            ("2026-11-15 09:00:00+08", "2026-12-01 00:00:00+08"),
                            ("2026-11-20 09:00:00+08", "2026-11-30 23:59:59+08")):
            cur.execute("INSERT INTO station_report (station_id, kind, created_at) "
                        "VALUES (%s, 'other', %s) RETURNING id", (one, _ts(at)))
            (report,) = cur.fetchone() or (0,)
            cur.execute("INSERT INTO report_resolution (report_id, action, editor, created_at) "
                        "VALUES (%s, 'resolved', 'test', %s)", (report, _ts(decided)))
        # Coverage runs of the city: by the end of October 50% of Tianya's demand, by the
        # end of November 70%; one made on December's first instant is not November's.
        for made, covered in (("2026-10-20 10:00:00+08", 5), ("2026-11-20 10:00:00+08", 7),
                              (END, 1)):
            cur.execute("INSERT INTO analysis_run (kind, params, inputs, summary, created_at) "
                        "VALUES ('coverage', %s, '{}', '{}', %s) RETURNING id",
                        (Jsonb({"area": CITY}), _ts(made)))
            (run,) = cur.fetchone() or (0,)
            cur.executemany(
                "INSERT INTO analysis_cell (run_id, cell, area_code, demand, points, covered, "
                "doubly) VALUES (%s, %s, %s, 1, 1, %s, false)",
                [(run, f"c{i}", TIANYA, i < covered) for i in range(10)])
    rows = conn.execute(EXPECTED).fetchall()
    names = ["code", *(a for a, _zh, _en in COLUMNS)]
    return {r[0]: dict(zip(names[1:], r[1:], strict=True)) for r in rows}


def _pdf_rows(text: str, names: dict[str, str]) -> dict[str, list[str]]:
    """The main table's rows in pdftotext's layout: the area's name, then its figures."""
    found = {}
    for line in text.splitlines():
        for code, name in names.items():
            m = re.match(rf"\s*(合计：)?{name}\s+((?:\d+\s+){{9}})(\S+)\s+(.+?)\s*$", line)
            if m and code not in found:
                found[code] = [*m.group(2).split(), m.group(3), m.group(4)]
    return found


def test_bulletin_pdf_and_xlsx_hold_the_figures_sql_counts(
        november: dict[str, dict[str, int]], seeded: psycopg.Connection[Any], db_url: str,
        client: TestClient, keys: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    expected = november
    # The boundary rows really are on the edges: October's and December's are left out.
    assert expected[TIANYA]["person_times"] >= 3 and expected[TIANYA]["built"] >= 2

    r = client.get(f"/v1/bulletins/{CITY}/{MONTH}.pdf", headers={"Authorization": keys["admin"]})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / f"bulletin-{CITY}-{MONTH}.pdf"
    pdf.write_bytes(r.content)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    for heading in ("三亚市", "2026年11月驿站工作通报", "分区统计", "按工种服务人次", "示例数据"):
        assert heading in text, heading
    names = dict(seeded.execute("SELECT code, name FROM admin_area WHERE code = ANY(%s)",
                                ([CITY, *DISTRICTS],)).fetchall())
    rows = _pdf_rows(text, names)
    assert set(rows) == {CITY, *DISTRICTS}, text
    for code, figures in expected.items():
        assert [int(v) for v in rows[code][:9]] == list(figures.values()), (code, rows[code])
    # Coverage: Tianya 50% → 70% between the runs of the two month ends.
    assert rows[TIANYA][9:] == ["70.0%", "+20.0 pp"]
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True,
                           text=True).stdout
    embedded = [line for line in fonts.splitlines()[2:] if line.strip()]
    assert embedded and all(" yes " in line for line in embedded), fonts
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf),
                    str(ARTIFACTS / "bulletin-page")], check=True)
    page = next(ARTIFACTS.glob("bulletin-page*1.png"))
    assert page.stat().st_size > 20_000  # text, tables and charts, not a blank page

    # The command line writes the same figures into the workbook.
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    assert main(["bulletin", "--area", CITY, "--month", MONTH, "--out", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    wb = openpyxl.load_workbook(tmp_path / f"bulletin-{CITY}-{MONTH}.xlsx")
    assert wb.sheetnames == ["说明", "分区统计", "按工种", "每日人次", "驿站月末数"]
    sheet = {row[0]: row for row in wb["分区统计"].iter_rows(min_row=2, values_only=True)}
    for code, figures in expected.items():
        assert list(sheet[code][2:11]) == list(figures.values()), code
    assert sheet[TIANYA][11:13] == (0.5, 0.7)
    days = list(wb["每日人次"].iter_rows(min_row=2, values_only=True))
    assert len(days) == 30 and sum(n for _d, n in days) == expected[CITY]["person_times"]
    workers = dict(wb["按工种"].iter_rows(min_row=2, values_only=True))
    assert sum(workers.values()) == expected[CITY]["person_times"]
    assert (tmp_path / f"bulletin-{CITY}-{MONTH}.pdf").stat().st_size > 10_000


@pytest.mark.parametrize(("path", "status", "field"), [
    (f"/v1/bulletins/{CITY}/2026-13.pdf", 422, "month"),
    (f"/v1/bulletins/{CITY}/1999-12.xlsx", 422, "month"),
    ("/v1/bulletins/469999/2026-11.pdf", 404, "area"),
    ("/v1/bulletins/460202/2026-11.xlsx", 403, "area"),
])
def test_bad_month_or_area_is_a_4xx_naming_the_field(
        client: TestClient, keys: dict[str, str], path: str, status: int,
        field: str) -> None:
    r = client.get(path, headers={"Authorization": keys["tianya_editor"]})
    assert r.status_code == status, r.text
    assert field in r.text


def test_only_admins_and_editors_within_their_area_get_a_bulletin(
        client: TestClient, keys: dict[str, str], areas: psycopg.Connection[Any]) -> None:
    from geo_service.domain.auth import create_key

    inspector = f"Bearer {create_key(areas, name='insp', role='inspector')}"
    assert client.get(f"/v1/bulletins/{TIANYA}/{MONTH}.xlsx").status_code == 401
    r = client.get(f"/v1/bulletins/{TIANYA}/{MONTH}.xlsx", headers={"Authorization": inspector})
    assert r.status_code == 403
    r = client.get(f"/v1/bulletins/{TIANYA}/{MONTH}.xlsx",
                   headers={"Authorization": keys["tianya_editor"]})
    assert r.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert [row[0] for row in wb["分区统计"].iter_rows(min_row=2, values_only=True)] == [TIANYA]


def test_console_bulletin_is_for_editors_within_their_area(
        client: TestClient, areas: psycopg.Connection[Any]) -> None:
    """An inspector is refused the page; a Tianya editor is offered Tianya only, sees its
    figures, gets 422 for another district or a bad month, and downloads with the form's
    CSRF token only."""
    from tests.test_console import csrf_of, make, sign_in

    make(areas, "insp", "inspector")
    make(areas, "ed", "editor")
    sign_in(client, "insp")
    assert client.get("/console/bulletin").status_code == 403
    client.cookies.clear()
    sign_in(client, "ed")
    page = client.get("/console/bulletin")
    assert page.status_code == 200
    assert re.findall(r'<option value="(\d+)"', page.text) == [TIANYA]
    shown = client.get("/console/bulletin", params={"area": TIANYA, "month": MONTH})
    assert shown.status_code == 200 and "天涯区 2026-11 分区统计" in shown.text
    assert client.get("/console/bulletin", params={"area": "460202",
                                                   "month": MONTH}).status_code == 422
    bad = client.get("/console/bulletin", params={"area": TIANYA, "month": "2026-13"})
    assert bad.status_code == 422 and "2026-11" in bad.text
    form = {"area": TIANYA, "month": MONTH, "format": "xlsx"}
    assert client.post("/console/bulletin", data=form).status_code == 403
    r = client.post("/console/bulletin", data={**form, "csrf_token": csrf_of(shown.text)})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == (
        f'attachment; filename="bulletin-{TIANYA}-{MONTH}.xlsx"')
    assert openpyxl.load_workbook(io.BytesIO(r.content)).sheetnames[1] == "分区统计"


def test_a_month_is_the_calendar_month_in_the_service_time_zone() -> None:
    """December runs to January's first instant in China's time (16:00 UTC the day
    before); February 2028 has 29 days; anything but YYYY-MM of 2000-2100 names month."""
    from geo_service.bulletin.model import Month
    from geo_service.domain.errors import GeoServiceError

    december = Month.parse("2026-12", "Asia/Shanghai")
    assert december.start().astimezone(dt.UTC) == dt.datetime(2026, 11, 30, 16, tzinfo=dt.UTC)
    assert december.end().astimezone(dt.UTC) == dt.datetime(2026, 12, 31, 16, tzinfo=dt.UTC)
    assert (december.first_day, december.last_day) == (dt.date(2026, 12, 1),
                                                      dt.date(2026, 12, 31))
    assert len(Month.parse("2028-02", "Asia/Shanghai").days()) == 29
    for bad in ("2026-13", "2026-1", "1999-12", "2101-01", "2026-11-01"):
        with pytest.raises(GeoServiceError) as refused:
            Month.parse(bad, "Asia/Shanghai")
        assert refused.value.fields[0][0] == "month"
