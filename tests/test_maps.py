"""Maps without a browser: the pages' data, options, errors, the CLI and the asset route.

What the pages draw in a real browser is in ``test_maps_browser.py``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.domain.coords import Crs, from_wgs84
from geo_service.maps import assets
from geo_service.maps.assets import AssetMode
from geo_service.maps.data import load_stations, shift_geometry
from geo_service.maps.model import BASEMAPS, MapOptions
from geo_service.maps.options import basemap
from geo_service.maps.pages import MapKind, make_page
from geo_service.maps.render import compliance_flags
from tests.conftest import station_body
from tests.helpers import insert_stations

AT = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)  # 14:00 in Sanya


def asset_refs(page: str) -> list[str]:
    """URLs of the page's ``<script src>`` and ``<link href>`` tags (``data:`` ones aside)."""
    refs = re.findall(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"', page)
    return [r for r in refs if not r.startswith("data:")]


def payload(page: str, fn: str) -> dict[str, Any]:
    """The JSON a page hands to ``GEO.<fn>`` (a ``<script type="application/json">`` block)."""
    call = re.search(rf"GEO\.{fn}\(\w+, JSON\.parse\(document\.getElementById\("
                     rf"'([\w-]+)'\)\.textContent\)\);", page)
    assert call, f"no GEO.{fn} call in the page"
    block = re.search(rf'<script type="application/json" id="{call.group(1)}">(.*?)</script>',
                      page, re.S)
    assert block, "the payload block is missing"
    return dict(json.loads(block.group(1).replace("<\\/", "</")))


def test_stations_payload_is_the_area_s_drawable_stations(seeded: psycopg.Connection[Any]) -> None:
    page = make_page(seeded, MapKind.STATIONS, "460200", MapOptions(at=AT))
    p = payload(page, "stationsLayer")
    want = seeded.execute(
        "SELECT code FROM station WHERE status IN ('open', 'temporarily_closed', 'planned') "
        "AND city_code = '460200' ORDER BY id").fetchall()
    cols = p["columns"]
    assert [r[cols["code"]] for r in p["rows"]] == [c for (c,) in want]
    assert len(want) == 72  # 74 sample stations, one closed and one duplicate
    assert p["sample"] is True and "SAMPLE DATA" in p["sample_note"]
    assert "SAMPLE DATA" in page  # the note is in the page, not only in data
    # Ten-ones counts in the payload match SQL's bit count.
    tens = dict(seeded.execute(
        "SELECT code, bit_count((amenity_mask & 1023)::bit(64))::int FROM station").fetchall())
    assert all(r[cols["ten"]] == tens[r[cols["code"]]] for r in p["rows"])
    # The default page loads Leaflet from this service, never from a CDN (issue 24).
    urls = set(asset_refs(page))
    assert urls and all(u.startswith("/maps/assets/leaflet") for u in urls)
    policy = html.unescape(page.split('http-equiv="Content-Security-Policy" content="')[1]
                           .split('"')[0])
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"].startswith("'self' 'sha256-")
    assert directives["style-src"] == "'self' 'unsafe-inline'"  # the tiles: images only


def test_offline_pages_reference_only_local_or_inline_assets(
        seeded: psycopg.Connection[Any]) -> None:
    local = make_page(seeded, MapKind.STATIONS, "460200",
                      MapOptions(basemap=basemap(None, offline=True), assets=AssetMode.LOCAL,
                                 at=AT))
    refs = asset_refs(local)
    assert refs and all(r.startswith("/maps/assets/") for r in refs)
    assert "tile.openstreetmap.org" not in local
    inline = make_page(seeded, MapKind.STATIONS, "460200",
                       MapOptions(basemap=BASEMAPS["none"], assets=AssetMode.INLINE, at=AT))
    assert not asset_refs(inline)
    assert "L.MarkerClusterGroup" in inline and "sourceMappingURL" not in inline


def test_rendered_files_use_a_cdn_only_when_asked_for(
        seeded: psycopg.Connection[Any], db_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``maps render`` with no option loads Leaflet from this service (as served at
    /maps/files/); ``--cdn BASE`` from the npm CDN named, which the page's policy then
    allows; the project itself names no CDN."""
    from geo_service.cli import main

    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    written = tmp_path / "stations.html"
    assert main(["maps", "render", "--maps", "stations", "--out", str(tmp_path)]) == 0
    refs = asset_refs(written.read_text())
    assert refs and all(r.startswith("/maps/assets/") for r in refs)
    cdn = "https://npm.example.org/npm"
    assert main(["maps", "render", "--maps", "stations", "--out", str(tmp_path),
                 "--cdn", cdn + "/"]) == 0
    page = written.read_text()
    version = assets.version("leaflet")
    assert f"{cdn}/leaflet@{version}/dist/leaflet.js" in asset_refs(page)
    assert all(r.startswith(cdn + "/") for r in asset_refs(page))
    assert "script-src https://npm.example.org &#x27;sha256-" in page
    for bad in ("ftp://x.example/npm", "https://x.example/npm?v=1", "cdn.example.org",
                'https://x.example/"><script>'):
        assert main(["maps", "render", "--maps", "stations", "--out", str(tmp_path),
                     "--cdn", bad]) == 2, bad
        assert "--cdn must be" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # inlined or from a CDN, not both
        main(["maps", "render", "--offline", "--cdn", cdn, "--out", str(tmp_path)])


def test_gcj02_basemap_shifts_points_and_outlines(seeded: psycopg.Connection[Any]) -> None:
    wgs = load_stations(seeded, "460200", AT, Crs.WGS84)
    gcj = load_stations(seeded, "460200", AT, Crs.GCJ02)
    for i in (0, len(wgs) - 1):
        assert (gcj.lon[i], gcj.lat[i]) == pytest.approx(
            from_wgs84(wgs.lon[i], wgs.lat[i], Crs.GCJ02), abs=1e-9)
    page = make_page(seeded, MapKind.STATIONS, "460200",
                     MapOptions(basemap=BASEMAPS["amap"], at=AT))
    p = payload(page, "stationsLayer")
    c = p["columns"]
    row = p["rows"][0]
    assert (row[c["lon"]], row[c["lat"]]) == pytest.approx(
        from_wgs84(wgs.lon[0], wgs.lat[0], Crs.GCJ02), abs=1e-6)
    assert "GCJ-02" in p["subtitle"] and "autonavi" in page
    square = {"type": "Polygon", "coordinates": [[[109.5, 18.2], [109.6, 18.2], [109.6, 18.3],
                                                  [109.5, 18.2]]]}
    moved = shift_geometry(square, Crs.GCJ02)
    for (x, y), (mx, my) in zip(square["coordinates"][0], moved["coordinates"][0], strict=True):
        assert (mx, my) == pytest.approx(from_wgs84(x, y, Crs.GCJ02), abs=1e-9)


def test_compliance_flags_use_the_page_moment(areas: psycopg.Connection[Any]) -> None:
    insert_stations(areas, [
        station_body("C-OK", 109.50, 18.25, amenities=[
            "indoor_rest", "seating", "microwave", "water_dispenser", "restroom",
            "first_aid_kit", "book_rack", "phone_charging", "refrigerator", "umbrella_stand"],
            last_verified_on="2026-06-01"),
        station_body("C-OLD", 109.51, 18.25, amenities=[
            "indoor_rest", "seating", "microwave", "water_dispenser", "restroom",
            "first_aid_kit", "book_rack", "phone_charging", "refrigerator", "umbrella_stand"],
            last_verified_on="2025-11-29"),
        station_body("C-NEVER", 109.52, 18.25),
        station_body("C-SHORT", 109.53, 18.25, last_verified_on="2026-11-01"),
    ])
    st = load_stations(areas, None, AT, Crs.WGS84)
    overdue, short, reason = compliance_flags(st, MapOptions(at=AT, overdue_days=365))
    got = dict(zip(st.code, zip(overdue.tolist(), short.tolist(), reason.tolist(),
                                strict=True), strict=True))
    assert got == {"C-OK": (False, False, -1), "C-OLD": (True, False, 1),
                   "C-NEVER": (True, True, 0), "C-SHORT": (False, True, 2)}
    # 2025-11-30 is exactly 365 days before 2026-11-30: not yet overdue.
    areas.execute("UPDATE station SET last_verified_on = '2025-11-30' WHERE code = 'C-OLD'")
    st = load_stations(areas, None, AT, Crs.WGS84)
    overdue, _, _ = compliance_flags(st, MapOptions(at=AT, overdue_days=365))
    assert not overdue[st.code.index("C-OLD")]


def test_bad_map_requests_name_the_field(client: TestClient, seeded: Any) -> None:
    cases = [
        ("/maps/stations.html?area=999999", 404, "area"),
        ("/maps/stations.html?basemap=bing", 422, "basemap"),
        ("/maps/stations.html?at=1969-12-31T23:00:00", 422, "at"),
        ("/maps/compliance.html?at=0001-01-01T00:01:00Z", 422, "at"),  # schemathesis found it
        ("/maps/compliance.html?min_ten_ones=11", 422, "min_ten_ones"),
        ("/maps/coverage.html?run=424242", 404, "id"),
        ("/maps/coverage.html?area=460202", 404, "run"),  # no run stored for this district
        ("/maps/assets/leaflet/package.json", 404, "key"),
        ("/maps/assets/..%2F..%2Fpyproject.toml", 404, "key"),
        ("/maps/files/secrets.html", 404, "name"),
    ]
    for url, status, field in cases:
        r = client.get(url)
        assert r.status_code == status, (url, r.text)
        body = r.json()
        assert field in {f["field"].split(".")[-1] for f in body["error"]["fields"]}, (url, body)


def test_map_moment_follows_the_one_instant_rule(client: TestClient, seeded: Any, db_url: str,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: a map's ``at`` is read like every instant (``params.instant``): without an
    offset it is China time (it was refused), in the API and the CLI alike."""
    r = client.get("/maps/stations.html", params={"at": "2026-11-30T14:00:00"})
    assert r.status_code == 200, r.text
    assert payload(r.text, "stationsLayer")["at"] == "2026-11-30T06:00:00+00:00"
    from geo_service.cli import main

    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    assert main(["maps", "render", "--maps", "stations", "--out", str(tmp_path),
                 "--at", "2026-11-30T14:00"]) == 0
    page = (tmp_path / "stations.html").read_text()
    assert payload(page, "stationsLayer")["at"] == "2026-11-30T06:00:00+00:00"
    assert main(["maps", "render", "--maps", "stations", "--out", str(tmp_path),
                 "--at", "1969-12-31T23:00"]) == 2


def test_no_stored_run_points_to_the_route_that_makes_one(client: TestClient,
                                                          seeded: Any) -> None:
    """The 404 once sent planners to POST /v1/coverage/recommendations, which does not exist."""
    r = client.get("/maps/coverage.html", params={"area": "460202"})
    assert r.status_code == 404
    message = r.json()["error"]["message"]
    assert "POST /v1/analysis/recommendations" in message
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/v1/analysis/recommendations"]


def test_assets_are_served_from_the_npm_packages(client: TestClient) -> None:
    for a in assets.ASSETS:
        r = client.get(f"/maps/assets/{a.key}")
        assert r.status_code == 200
        assert r.content == (assets.node_modules() / a.key).read_bytes()
    assert assets.version("leaflet") == json.loads(
        (Path(__file__).parents[1] / "package.json").read_text())["dependencies"]["leaflet"]


@pytest.mark.slow  # ~16 s: renders the three maps of the sample city
def test_cli_renders_three_offline_files_and_they_are_served(
        seeded: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    env = {"GEO_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "geo_service", "maps", "render", "--area", "460200",
           "--ensure-run", "--offline", "--out", str(tmp_path), "--at", AT.isoformat()]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "stored recommendations run" in out.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "compliance.html", "coverage.html", "stations.html"]
    runs = seeded.execute("SELECT count(*) FROM analysis_run").fetchone()
    assert runs == (1,)
    # Again: the stored run is reused, the files are replaced whole.
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "stored recommendations run" not in again.stdout
    assert seeded.execute("SELECT count(*) FROM analysis_run").fetchone() == (1,)
    cov = payload((tmp_path / "coverage.html").read_text(), "coverageLayer")
    cells = seeded.execute("SELECT count(*) FROM analysis_cell").fetchone()
    sites = seeded.execute("SELECT count(*) FROM analysis_site").fetchone()
    assert cells and sites and (len(cov["cells"]), len(cov["sites"])) == (cells[0], sites[0])
    assert [s["rank"] for s in cov["sites"]] == list(range(1, 11))
    # The planner reads how the sites were chosen and how close to the best, proven.
    summary = seeded.execute("SELECT summary FROM analysis_run").fetchone()[0]
    share = math.floor(summary["at_least_share_of_best"] * 10_000 + 1e-9) / 100
    assert f"选址方法 贪心+交换 greedy + swaps · 用时 {summary['solver_seconds']:.1f} s" \
        in cov["subtitle"]
    want = f"{share:.2f}%" if share >= 99.9 else f"{math.floor(share * 10) / 10:.1f}%"
    assert f"至少达到最优方案的 {want}" in cov["subtitle"]
    from geo_service.infra.settings import Settings
    from geo_service.web.app import create_app

    app = create_app(Settings(database_url=db_url, maps_dir=str(tmp_path)))
    with TestClient(app) as client:
        r = client.get("/maps/files/stations.html")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.content == (tmp_path / "stations.html").read_bytes()
        root = client.get("/").text
        for name in ("stations", "coverage", "compliance"):
            assert f'href="/maps/files/{name}.html"' in root
    bad = subprocess.run([*cmd[:5], "--area", "999999", "--out", str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "area" in bad.stderr


def test_station_text_is_data_never_template_code(areas: psycopg.Connection[Any]) -> None:
    """Names and addresses go into the page as JSON; a {{ … }} in them is not evaluated."""
    insert_stations(areas, [station_body(
        "T-JINJA", 109.50, 18.25, name="Test {{ 7*7 }} {% if x %}</script><b>",
        address="{{ this.__class__ }}")])
    page = make_page(areas, MapKind.STATIONS, None, MapOptions(at=AT))
    p = payload(page, "stationsLayer")
    (row,) = p["rows"]
    assert row[p["columns"]["name"]] == "Test {{ 7*7 }} {% if x %}</script><b>"
    assert row[p["columns"]["address"]] == "{{ this.__class__ }}"
    assert "Test 49" not in page and "<class" not in page
    assert "</script><b>" not in page  # cannot close the data block early


def test_district_outlines_carry_their_station_counts(seeded: psycopg.Connection[Any]) -> None:
    from geo_service.maps.data import load_districts
    from geo_service.maps.render import _district_counts

    st = load_stations(seeded, "460200", AT, Crs.WGS84)
    labels = _district_counts(st)
    want = dict(seeded.execute(
        "SELECT district_code, count(*) FROM station WHERE status IN ('open', "
        "'temporarily_closed', 'planned') AND city_code = '460200' GROUP BY 1").fetchall())
    assert {k: int(v.split(" ")[0]) for k, v in labels.items()} == want
    outlines = load_districts(seeded, "460200", Crs.WGS84)
    assert sorted(f["id"] for f in outlines) == sorted(want)
    page = make_page(seeded, MapKind.STATIONS, "460200", MapOptions(at=AT))
    for code, label in labels.items():
        assert json.dumps(label)[1:-1] in page or label in page, code


def test_served_maps_draw_the_services_own_streets_when_no_tiles_are_configured(
        client: TestClient, seeded: Any) -> None:
    """Issue 28: with no tile URL and no basemap configured, a map the service serves
    draws its own street basemap (/tiles/base) rather than OpenStreetMap's tiles, which
    an office intranet cannot reach (the map was grey with dots); a named basemap still
    wins."""
    page = client.get("/maps/stations.html", params={"area": "460200"})
    assert page.status_code == 200
    assert "tile.openstreetmap.org" not in page.text
    assert "/tiles/base/{z}/{x}/{y}.mvt" in page.text
    named = client.get("/maps/stations.html", params={"area": "460200", "basemap": "osm"})
    assert "tile.openstreetmap.org" in named.text
    assert "/tiles/base/{z}/{x}/{y}.mvt" not in named.text
