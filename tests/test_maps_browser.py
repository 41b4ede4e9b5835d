"""The maps in a real headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright).

Offline mode is checked the way an intranet user would meet it: every request
the page makes is recorded and must stay on this machine (``file:``, ``data:``
or the service on 127.0.0.1); the console must stay free of errors. What is
drawn is compared with the database: markers per area, popup checklists,
cells and sites of the stored run, and, on a GCJ-02 basemap, the pixel where
a station's marker sits. Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest

from geo_service.domain.catalogue import AMENITIES, TEN_ONES_MASK
from geo_service.domain.coords import Crs, from_wgs84
from geo_service.maps.assets import AssetMode
from geo_service.maps.model import BASEMAPS, MapOptions
from geo_service.maps.pages import MapKind, make_page
from tests.helpers import live_server

ARTIFACTS = Path(__file__).parent / "artifacts"
AREA = "460200"
AT = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)
DRAWN = "status IN ('open', 'temporarily_closed', 'planned')"
#: Verified on site: the later of the imported 最近核实日期 and the last inspection (issue 27).
VERIFIED = ("greatest(s.last_verified_on, "
            "(SELECT max(i.inspected_on) FROM inspection i WHERE i.station_id = s.id))")


class Visit:
    """One page in a fresh context, with every request and console error recorded."""

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        self.page.wait_for_load_state("networkidle")

    def outside(self) -> list[str]:
        """Requests that left this machine."""
        out = []
        for u in self.requests:
            parsed = urlparse(u)
            if parsed.scheme in ("file", "data"):
                continue
            if parsed.hostname not in ("127.0.0.1", "localhost"):
                out.append(u)
        return out

    def wait_markers(self, kind: str) -> int:
        self.page.wait_for_function(f"window.GEO && GEO.maps['{kind}'] && "
                                    f"GEO.maps['{kind}'].loaded()")
        return int(self.page.evaluate(f"GEO.maps['{kind}'].cluster.getLayers().length"))

    def drawn_total(self) -> int:
        """Stations the user sees: cluster badges summed plus single markers in view."""
        return int(self.page.evaluate("""() => {
            let n = 0;
            document.querySelectorAll('.leaflet-marker-pane .marker-cluster span')
                .forEach(s => { n += parseInt(s.textContent, 10); });
            return n + document.querySelectorAll('.leaflet-marker-pane .geo-pin').length;
        }"""))

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name))

    def close(self) -> None:
        self.context.close()


def count(db: psycopg.Connection[Any], sql: str, *params: Any) -> int:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


def open_popup(v: Visit, kind: str, code: str) -> str:
    """Zoom the cluster open to one station, open its popup, return the popup's HTML."""
    v.page.evaluate("""([kind, code]) => new Promise(done => {
        const m = GEO.maps[kind].marker(code);
        GEO.maps[kind].cluster.zoomToShowLayer(m, () => { m.getElement().click(); done(); });
    })""", [kind, code])
    v.page.wait_for_selector(".leaflet-popup .geo-popup")
    return str(v.page.inner_html(".leaflet-popup .geo-popup"))


def test_rendered_stations_map_offline(browser: Any, seeded: psycopg.Connection[Any],
                                       tmp_path: Path) -> None:
    opts = MapOptions(basemap=BASEMAPS["none"], assets=AssetMode.INLINE, at=AT)
    path = tmp_path / "stations.html"
    path.write_text(make_page(seeded, MapKind.STATIONS, AREA, opts), encoding="utf-8")
    v = Visit(browser, path.as_uri())
    try:
        n_db = count(seeded, f"SELECT count(*) FROM station WHERE {DRAWN} "
                             "AND %s IN (province_code, city_code, district_code)", AREA)
        assert v.wait_markers("stations") == n_db == 72
        assert v.drawn_total() == n_db  # the fitted view shows every station
        assert v.outside() == [] and v.errors == []
        v.screenshot("maps-stations-rendered.png")

        # A station short of the ten ones: its popup ticks what it has, names what it lacks.
        code, mask, name, hours = seeded.execute(
            f"SELECT code, amenity_mask, name, opening_hours FROM station WHERE {DRAWN} "
            "AND status = 'open' AND bit_count((amenity_mask & %s)::bit(64)) BETWEEN 5 AND 9 "
            "ORDER BY code LIMIT 1", (TEN_ONES_MASK,)).fetchone() or (None, 0, "", "")
        assert code is not None
        html = open_popup(v, "stations", code)
        have = [a for a in AMENITIES if a.ten_ones and mask >> a.bit & 1]
        missing = [a for a in AMENITIES if a.ten_ones and not mask >> a.bit & 1]
        ticked = v.page.locator(".leaflet-popup li.ok").all_inner_texts()
        crossed = v.page.locator(".leaflet-popup li.missing").all_inner_texts()
        assert [t.strip() for t in ticked] == [a.label_zh for a in have]
        assert [t.strip() for t in crossed] == [a.label_zh for a in missing]
        assert f"{len(have)}/10" in html and name in html and hours in html
        assert all(a.label_en in html for a in missing)  # "Missing: … (Microwave)"
        v.page.wait_for_timeout(400)  # let the popup fade in
        v.screenshot("maps-stations-popup.png")

        # The cooling buses' stops are drawn; awards and worker reports are in the popups.
        n_stops = count(seeded, "SELECT count(*) FROM station_stop")
        assert n_stops == 6
        assert v.page.evaluate("GEO.maps.stations.stops.getLayers()"
                               ".filter(l => l instanceof L.Marker).length") == n_stops
        title = seeded.execute("SELECT s.code, a.title FROM station_award a JOIN station s "
                               "ON s.id = a.station_id WHERE s.status = 'open' "
                               "ORDER BY s.code LIMIT 1").fetchone()
        assert title is not None and title[1] in open_popup(v, "stations", title[0])
        flagged = seeded.execute("SELECT code FROM station WHERE reported_closed_at IS NOT NULL"
                                 ).fetchall()
        assert [c for (c,) in flagged] == ["SY-0028"]
        assert "reported closed by workers" in open_popup(v, "stations", "SY-0028")

        # The host-type filter hides that type's markers and shows them again.
        n_bank = count(seeded, f"SELECT count(*) FROM station WHERE {DRAWN} "
                               "AND host_type = 'bank_branch'")
        assert n_bank > 0
        v.page.click("input[data-host=bank_branch]")
        assert v.page.evaluate("GEO.maps.stations.cluster.getLayers().length") == n_db - n_bank
        v.page.click("input[data-host=bank_branch]")
        assert v.page.evaluate("GEO.maps.stations.cluster.getLayers().length") == n_db
    finally:
        v.close()


@pytest.mark.slow  # ~8 s: three served maps in Chromium
def test_served_maps_offline_make_no_outside_request(
        browser: Any, seeded: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    from geo_service.coverage import service
    from geo_service.coverage.schemas import RecommendRequest

    run = service.run_recommendations(seeded, RecommendRequest.model_validate(
        {"area": AREA, "add": 5}))
    at = AT.isoformat().replace("+", "%2B")
    with live_server(db_url, env={"GEO_MAPS_DIR": str(tmp_path)}) as base:
        # Stations of one district only: the count follows the area.
        v = Visit(browser, f"{base}/maps/stations.html?offline=true&area=460203&at={at}")
        try:
            n_db = count(seeded, f"SELECT count(*) FROM station WHERE {DRAWN} "
                                 "AND district_code = '460203'")
            assert 0 < v.wait_markers("stations") == n_db
            assert v.outside() == [] and v.errors == []
            assert any("/maps/assets/leaflet/dist/leaflet.js" in u for u in v.requests)
            v.screenshot("maps-stations-served.png")
        finally:
            v.close()

        v = Visit(browser, f"{base}/maps/compliance.html?offline=true&area={AREA}&at={at}"
                           "&overdue_days=180&min_ten_ones=8")
        try:
            n_follow = count(seeded, f"""
                SELECT count(*) FROM station s WHERE {DRAWN} AND city_code = %s
                AND ((status IN ('open', 'temporarily_closed')  -- only these are inspected
                      AND ({VERIFIED} IS NULL OR {VERIFIED} < DATE '2026-11-30' - 180))
                     OR bit_count((amenity_mask & {TEN_ONES_MASK})::bit(64)) < 8)""", AREA)
            assert 0 < v.wait_markers("compliance") == n_follow
            assert v.outside() == [] and v.errors == []
            v.screenshot("maps-compliance-served.png")
        finally:
            v.close()

        v = Visit(browser, f"{base}/maps/coverage.html?offline=true&area={AREA}")
        try:
            v.page.wait_for_function("window.GEO && GEO.maps.coverage")
            drawn = v.page.evaluate("""() => {
                const g = GEO.maps.coverage.groups;
                return [g.gap.getLayers().length, g.covered.getLayers().length,
                        g.doubly.getLayers().length, GEO.maps.coverage.sites.getLayers().length];
            }""")
            gap, covered, doubly = (count(seeded, "SELECT count(*) FROM analysis_cell WHERE "
                                                  f"run_id = %s AND {cond}", run["run_id"])
                                    for cond in ("NOT covered", "covered AND NOT doubly",
                                                 "doubly"))
            assert drawn == [gap, covered, doubly, 5]
            labels = v.page.locator(".leaflet-marker-pane .geo-site").all_inner_texts()
            assert sorted(int(t) for t in labels) == [1, 2, 3, 4, 5]
            assert "至少达到最优方案的" in v.page.locator(".sub").first.inner_text()
            assert v.outside() == [] and v.errors == []
            v.screenshot("maps-coverage-served.png")
        finally:
            v.close()


def test_gcj02_basemap_places_markers_on_transformed_coordinates(
        browser: Any, seeded: psycopg.Connection[Any], tmp_path: Path) -> None:
    code, lon, lat = seeded.execute(
        "SELECT code, ST_X(geog::geometry), ST_Y(geog::geometry) FROM station "
        "WHERE status = 'open' ORDER BY code LIMIT 1").fetchone() or (None, 0.0, 0.0)
    want_lon, want_lat = from_wgs84(lon, lat, Crs.GCJ02)
    opts = MapOptions(basemap=BASEMAPS["amap"], assets=AssetMode.INLINE, at=AT)
    path = tmp_path / "stations-amap.html"
    path.write_text(make_page(seeded, MapKind.STATIONS, AREA, opts), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    # Amap's tile servers are out of reach here: answer tile requests with nothing.
    context.route("**/*", lambda route: route.abort() if urlparse(route.request.url).scheme
                  in ("http", "https") else route.continue_())
    page = context.new_page()
    try:
        page.goto(path.as_uri())
        page.wait_for_function("window.GEO && GEO.maps.stations && GEO.maps.stations.loaded()")
        got = page.evaluate("""(code) => new Promise(done => {
            const s = GEO.maps.stations, m = s.marker(code);
            s.cluster.zoomToShowLayer(m, () => {
                s.map.setView(m.getLatLng(), 17, {animate: false});
                setTimeout(() => {
                    const ll = m.getLatLng();
                    const icon = m.getElement().getBoundingClientRect();
                    const box = s.map.getContainer().getBoundingClientRect();
                    done({lat: ll.lat, lng: ll.lng,
                          x: icon.left + icon.width / 2 - box.left,
                          y: icon.top + icon.height / 2 - box.top});
                }, 300);
            });
        })""", code)
        # The marker's coordinates are the station's GCJ-02 coordinates…
        assert (got["lng"], got["lat"]) == pytest.approx((want_lon, want_lat), abs=1e-6)
        # …and its icon is drawn on the pixel of those coordinates (not the WGS-84 ones,
        # which at zoom 17 are hundreds of pixels away).
        want_px = page.evaluate("([lat, lng]) => { const p = GEO.maps.stations.map"
                                ".latLngToContainerPoint([lat, lng]); return [p.x, p.y]; }",
                                [want_lat, want_lon])
        wgs_px = page.evaluate("([lat, lng]) => { const p = GEO.maps.stations.map"
                               ".latLngToContainerPoint([lat, lng]); return [p.x, p.y]; }",
                               [lat, lon])
        assert abs(got["x"] - want_px[0]) <= 1 and abs(got["y"] - want_px[1]) <= 1
        assert abs(wgs_px[0] - want_px[0]) + abs(wgs_px[1] - want_px[1]) > 200
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "maps-stations-gcj02.png"))
    finally:
        context.close()
