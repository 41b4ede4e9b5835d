"""Coverage a planner can act on (issue 27): the scorecard by district name worst first,
sites with district, GCJ-02 / BD-09 and Amap links, planned stations in one step, and
what-if before and after per district equal to two separate runs."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod

from geo_service.coverage.analysis import TOTAL_AREA
from geo_service.coverage.schemas import CoverageRequest, RecommendRequest, StationFilter
from geo_service.coverage.service import run_coverage, run_recommendations
from geo_service.coverage.whatif import WhatIfRequest, run_whatif
from geo_service.domain.coords import bd09_to_wgs84, gcj02_to_wgs84
from tests.helpers import insert_stations

GEOD = Geod(ellps="WGS84")
NAMES = {"460202": "海棠区", "460203": "吉阳区", "460204": "天涯区", "460205": "崖州区"}


@pytest.fixture
def world(areas: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Random demand and 24 stations over sample Sanya's districts (areas loaded)."""
    rng = np.random.default_rng(27)
    n = 1500
    lon, lat = rng.uniform(109.30, 109.75, n), rng.uniform(18.22, 18.42, n)
    w = rng.integers(1, 20, n).astype(float)
    with areas.cursor() as cur:
        cur.executemany(
            "INSERT INTO demand_point (external_id, geog, weight, worker_type) VALUES "
            "(%s, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s, 'delivery')",
            [(f"d{i}", float(lon[i]), float(lat[i]), float(w[i])) for i in range(n)])
    insert_stations(areas, [
        {"code": f"S{i:02d}", "name": f"s{i}", "lon": float(rng.uniform(109.35, 109.70)),
         "lat": float(rng.uniform(18.24, 18.40)), "host_type": "union_built",
         "opening_hours": "24/7"} for i in range(24)])
    return areas


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def test_scorecard_by_district_name_worst_first(world: psycopg.Connection[Any],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from geo_service.coverage.cli import print_scorecard
    from geo_service.maps.model import MapOptions
    from geo_service.maps.pages import MapKind, make_page
    from tests.test_maps import AT, payload

    result = run_coverage(world, CoverageRequest(area="460200", threshold_m=1500))
    rows = result["areas"]
    assert rows[-1]["area"] == TOTAL_AREA and rows[-1]["name"] == "合计 Total"
    body = rows[:-1]
    assert {r["area"]: r["name"] for r in body if r["area"]} == {
        r["area"]: NAMES[r["area"]] for r in body if r["area"]}
    shares = [r["covered_share"] for r in body if r["covered_share"] is not None]
    assert shares == sorted(shares) and len(shares) >= 3
    # The stored run holds the same scorecard; the CLI prints the names in that order.
    stored = world.execute("SELECT summary FROM analysis_run WHERE id = %s",
                           (result["run_id"],)).fetchone()
    assert stored is not None and stored[0]["areas"] == rows
    print_scorecard(result)
    out = capsys.readouterr().out
    printed = [n for n in NAMES.values() if n in out]
    assert sorted(printed, key=out.index) == [r["name"] for r in body if r["area"] in NAMES]
    # The coverage map's table: the same rows, by name, worst first.
    page = make_page(world, MapKind.COVERAGE, "460200", MapOptions(at=AT),
                     run_id=result["run_id"])
    board = payload(page, "coverageLayer")["scorecard"]
    assert [(r["name"], r["covered_share"]) for r in board] == [
        (r["name"], r["covered_share"]) for r in rows]


def test_recommended_sites_carry_district_coordinates_and_amap(
        world: psycopg.Connection[Any]) -> None:
    result = run_recommendations(world, RecommendRequest(area="460200", threshold_m=1000,
                                                         add=5, method="greedy"))
    sites = result["sites"]
    assert len(sites) == 5
    for s in sites:
        where = world.execute(
            "SELECT a.code, a.name FROM admin_area a WHERE a.level = 'district' "
            "AND ST_Covers(a.geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
            (s["lon"], s["lat"])).fetchone()
        assert where is not None and (s["district_code"], s["district"]) == where
        assert s["street"] == "—"  # no street boundaries loaded, no roads table
        assert s["new_workers"] == s["gain"] > 0
        # GCJ-02 and BD-09 convert back to the WGS-84 point within 1 m.
        assert metres(*gcj02_to_wgs84(*s["gcj02"]), s["lon"], s["lat"]) < 1.0
        assert metres(*bd09_to_wgs84(*s["bd09"]), s["lon"], s["lat"]) < 1.0
        m = re.match(r"https://uri\.amap\.com/marker\?position=([\d.]+),([\d.]+)&name=[^&]+"
                     r"&src=[^&]+&coordinate=gaode", s["amap"])
        assert m, s["amap"]
        assert metres(*gcj02_to_wgs84(float(m[1]), float(m[2])), s["lon"], s["lat"]) < 1.0


def test_sites_become_planned_stations_once_audited_and_as_a_sheet(
        client: TestClient, keys: dict[str, str], world: psycopg.Connection[Any]) -> None:
    from openpyxl import load_workbook

    editor = {"Authorization": keys["editor"]}
    r = client.post("/v1/analysis/recommendations", headers=editor,
                    json={"area": "460200", "add": 3, "threshold_m": 1000, "method": "greedy"})
    assert r.status_code == 200, r.text
    run_id = r.json()["run_id"]
    geojson = client.get(f"/v1/analysis/runs/{run_id}/sites").json()["features"]
    assert [f["properties"]["amap"] for f in geojson] == [s["amap"] for s in r.json()["sites"]]
    assert all(f["properties"]["district"] in NAMES.values() for f in geojson)
    url = f"/v1/analysis/runs/{run_id}/sites/plan"
    assert client.post(url).status_code == 401
    # A key limited to one district cannot plan sites outside it: nothing is written.
    outside = [s for s in r.json()["sites"] if s["district_code"] != "460204"]
    if outside:
        refused = client.post(url, headers={"Authorization": keys["tianya_editor"]})
        assert refused.status_code == 403, refused.text
        assert world.execute("SELECT count(*) FROM station WHERE code LIKE 'PLAN-%%'"
                             ).fetchone() == (0,)
    first = client.post(url, headers=editor)
    assert first.status_code == 200, first.text
    codes = [f"PLAN-{run_id}-0{i}" for i in (1, 2, 3)]
    assert first.json()["created"] == codes and first.json()["existing"] == []
    rows = world.execute("SELECT code, status, sample FROM station WHERE code = ANY(%s) "
                         "ORDER BY code", (codes,)).fetchall()
    assert rows == [(c, "planned", False) for c in codes]
    audited = world.execute("SELECT station_code, action, actor FROM audit_log "
                            "WHERE station_code = ANY(%s) ORDER BY station_code",
                            (codes,)).fetchall()
    assert [(c, a) for c, a, _ in audited] == [(c, "station.create") for c in codes]
    assert all(actor == "editor" for _, _, actor in audited)
    # Twice: nothing more.
    again = client.post(url, headers=editor)
    assert again.status_code == 200 and again.json()["created"] == []
    assert again.json()["existing"] == codes
    assert world.execute("SELECT count(*) FROM station WHERE code LIKE 'PLAN-%%'"
                         ).fetchone() == (3,)
    # Planned stations do not serve: nearest never offers one.
    site = first.json()["stations"][0]
    near = client.get("/v1/stations/nearest", params={"lon": site["lon"], "lat": site["lat"],
                                                      "k": 50})
    assert near.status_code == 200
    assert site["code"] not in {s["code"] for s in near.json()["results"]}
    # The union sheet of the same stations.
    sheet = client.get(f"{url}.xlsx")
    assert sheet.status_code == 200, sheet.text
    book = load_workbook(io.BytesIO(sheet.content))
    data = list(book.worksheets[0].iter_rows(values_only=True))
    head = [str(h).rstrip("*") for h in data[0]]
    got = [dict(zip(head, row, strict=True)) for row in data[1:]]
    assert [g["站点编码"] for g in got] == codes
    assert {g["状态"] for g in got} == {"筹建中"} and {g["坐标系"] for g in got} == {"GCJ-02"}
    for g, s in zip(got, first.json()["stations"], strict=True):
        assert metres(*gcj02_to_wgs84(g["经度"], g["纬度"]), s["lon"], s["lat"]) < 1.0
    # The sheet is the union's import template: it reads back as the same stations.
    world.execute("DELETE FROM station WHERE code LIKE 'PLAN-%%'")
    imported = client.post("/v1/stations:import", headers={"Authorization": keys["admin"]},
                           files={"file": ("planned.xlsx", sheet.content)})
    assert imported.status_code == 200, imported.text
    back = world.execute("SELECT code, status, ST_X(geog::geometry), ST_Y(geog::geometry) "
                         "FROM station WHERE code LIKE 'PLAN-%%' ORDER BY code").fetchall()
    assert [(c, st) for c, st, _, _ in back] == [(c, "planned") for c in codes]
    for (_, _, x, y), s in zip(back, first.json()["stations"], strict=True):
        assert metres(x, y, s["lon"], s["lat"]) < 1.0
    assert client.post("/v1/analysis/runs/999999/sites/plan", headers=editor).status_code == 404
    assert client.post(url, headers=editor, json={"ranks": [9]}).status_code == 422
    # A coverage run has no sites: a state of that run (409 naming it), not bad input.
    coverage = client.post("/v1/analysis/coverage", headers=editor, json={"area": "460204"})
    assert coverage.status_code == 200, coverage.text
    no_sites = client.post(f"/v1/analysis/runs/{coverage.json()['run_id']}/sites/plan",
                           headers=editor)
    assert no_sites.status_code == 409, no_sites.text
    assert no_sites.json()["error"]["fields"][0]["field"] == "run"


def test_whatif_per_district_difference_equals_two_runs(world: psycopg.Connection[Any]) -> None:
    base = {"area": "460200", "threshold_m": 1500}
    closed = ["S03", "S11"]
    result = run_whatif(world, WhatIfRequest(**base, close=closed))
    before = {r["area"]: r for r in run_coverage(world, CoverageRequest(**base))["areas"]}
    after = {r["area"]: r for r in run_coverage(world, CoverageRequest(
        **base, stations=StationFilter(exclude=closed)))["areas"]}
    assert {r["area"] for r in result["rows"]} == set(before)
    for row in result["rows"]:
        b, a = before[row["area"]], after[row["area"]]
        for key in ("stations", "covered_share", "doubly_share", "uncovered_demand"):
            assert row[f"{key}_before"] == pytest.approx(b[key])
            assert row[f"{key}_after"] == pytest.approx(a[key])
            if b[key] is not None:
                assert row[f"{key}_change"] == pytest.approx(a[key] - b[key])
    assert result["rows"][-1]["area"] == TOTAL_AREA
    assert result["rows"][-1]["stations_change"] == -2
    # One map of the state tried: the stored after-run, the closed stations not drawn.
    from geo_service.maps.model import MapOptions
    from geo_service.maps.pages import MapKind, make_page
    from tests.test_maps import AT, payload

    world.execute("UPDATE station SET city_code = '460200'")  # the map lists the city's
    drawn = payload(make_page(world, MapKind.COVERAGE, "460200", MapOptions(at=AT),
                              run_id=result["run_id"]), "coverageLayer")
    names = {n for _, _, n in drawn["stations"]}
    assert "s3" not in names and "s11" not in names and "s4" in names
    assert [r["name"] for r in drawn["scorecard"]][-1] == "合计 Total"
    # Adding a recommendations run's sites gives that run's covered share.
    plan = run_recommendations(world, RecommendRequest(**base, add=3, method="greedy"))
    added = run_whatif(world, WhatIfRequest(**base, add_run=plan["run_id"]))
    total = added["rows"][-1]
    assert total["covered_share_after"] == pytest.approx(plan["covered_share_after"])
    assert total["stations_change"] == 3 and len(added["added"]) == 3
    assert added["added"][0]["new_workers"] == pytest.approx(plan["sites"][0]["gain"])
    with pytest.raises(ValueError):
        WhatIfRequest(**base)
    from geo_service.domain.errors import GeoServiceError

    with pytest.raises(GeoServiceError) as exc:
        run_whatif(world, WhatIfRequest(**base, close=["NOPE"]))
    assert exc.value.fields[0][0] == "close"


def test_verified_within_counts_the_later_of_inspection_and_imported_date(
        world: psycopg.Connection[Any]) -> None:
    """Coverage's verified filter follows the one rule overdue follows: an inspection
    later than the imported 最近核实日期 counts (domain.verification)."""
    world.execute("UPDATE station SET last_verified_on = current_date - 400")
    world.execute("INSERT INTO inspection (station_id, inspected_on, inspector, items, "
                  "ten_ones_count, amenity_mask) SELECT id, current_date - 10, 'test', "
                  "'{}'::jsonb, 0, 0 FROM station WHERE code = 'S05'")
    result = run_coverage(world, CoverageRequest(area="460200", stations=StationFilter(
        verified_within_days=100)))
    assert result["areas"][-1]["stations"] == 1
