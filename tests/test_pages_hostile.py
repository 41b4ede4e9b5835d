"""Pages with hostile station and area names, in headless Chromium.

A station named ``<!--<script>`` once swallowed the rest of every map page: the
JSON payload escaped ``</`` but not ``<!--``, which puts the HTML parser into
its "script data escaped" state, so the payload's ``</script>`` no longer
closed the block. Here stations carry names built to break out of a script
block, a template or an attribute, and every map (all areas, one city,
compliance, coverage) and the check-in page must still start: markers drawn,
names shown literally, no console error, no dialog, no CSP violation.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from geo_service.domain.html import json_for_html
from geo_service.sample.seed import load_seed
from tests.conftest import SEED
from tests.helpers import live_server

HOSTILE = [
    "<!--<script>",
    "</script><script>alert(1)</script>",
    "行\u2028分\u2029隔",
    "]]>",
    "{{ 7*7 }}",
    "<img src=x onerror=alert(2)>",
    "</SCRIPT >",
    "'\"&amp;<b>`${alert(3)}`",
]
AREA = "460200"
# Recorded before any page script runs: CSP violations the page meets.
RECORD_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
    e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def test_json_for_html_escapes_markup_and_line_separators() -> None:
    value = {"names": [*HOSTILE, "a\u2028b"], "n": 1}
    text = json_for_html(value)
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(text) == value


@pytest.fixture
def hostile(db: psycopg.Connection[Any], db_url: str) -> list[str]:
    """The sample data, with hostile names on stations of every district and on a district."""
    with ThreadPoolExecutor(1) as pool:  # Playwright keeps an event loop on this thread
        pool.submit(load_seed, db_url, SEED).result()
    codes = [c for (c,) in db.execute(
        "SELECT code FROM station WHERE status = 'open' AND city_code = %s "
        "ORDER BY code LIMIT %s", (AREA, len(HOSTILE)))]
    for code, name in zip(codes, HOSTILE, strict=True):
        db.execute("UPDATE station SET name = %s, address = %s, last_verified_on = NULL "
                   "WHERE code = %s", (name, name, code))
    db.execute("UPDATE admin_area SET name = %s WHERE code = "
               "(SELECT min(code) FROM admin_area WHERE parent_code = %s)",
               ("<img src=y onerror=alert(4)>", AREA))
    from geo_service.coverage import service
    from geo_service.coverage.schemas import RecommendRequest

    service.run_recommendations(db, RecommendRequest.model_validate({"area": AREA, "add": 3}))
    return codes


class Page:
    """A page in a fresh context; console errors, page errors, dialogs and CSP reports kept."""

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(m.text)
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("dialog", lambda d: (self.problems.append("dialog " + d.message),
                                          d.dismiss()))
        self.page.add_init_script(RECORD_CSP)
        self.response = self.page.goto(url)
        self.page.wait_for_load_state("networkidle")

    def check_clean(self) -> None:
        assert self.page.evaluate("window.__csp") == []
        assert self.problems == []

    def popup_name(self, kind: str, code: str) -> str:
        self.page.evaluate("([k, code]) => GEO.maps[k].openPopup(GEO.maps[k].marker(code))",
                           [kind, code])
        self.page.wait_for_selector(".leaflet-popup .geo-popup h3")
        return str(self.page.evaluate(
            "document.querySelector('.leaflet-popup .geo-popup h3').textContent"))

    def close(self) -> None:
        self.context.close()


@pytest.mark.slow  # ~17 s: every map in Chromium
def test_maps_start_with_hostile_names(browser: Any, hostile: list[str],
                                       db: psycopg.Connection[Any], db_url: str) -> None:
    drawn = "status IN ('open', 'temporarily_closed', 'planned')"
    (everywhere,) = db.execute(f"SELECT count(*) FROM station WHERE {drawn}").fetchone() or (0,)
    with live_server(db_url) as base:
        for query, n in (("", everywhere), (f"&area={AREA}", everywhere)):
            p = Page(browser, f"{base}/maps/stations.html?offline=true{query}")
            try:
                p.page.wait_for_function("window.GEO && GEO.maps.stations "
                                         "&& GEO.maps.stations.loaded()")
                assert p.page.evaluate("GEO.maps.stations.cluster.getLayers().length") == n
                for code, name in zip(hostile, HOSTILE, strict=True):
                    assert p.popup_name("stations", code) == name
                # Even a script that got into the page would not run: the CSP lists the
                # page's own inline scripts by hash.
                assert "frame-ancestors 'none'" in p.response.headers["content-security-policy"]
                assert p.page.evaluate("""() => { const s = document.createElement('script');
                    s.textContent = 'window.__ran = 1'; document.body.appendChild(s);
                    return window.__ran === undefined; }""")
                p.page.wait_for_function("() => window.__csp.length === 1")
                p.page.evaluate("window.__csp = []")
                p.problems.clear()  # the console reports the refused script
                if query:  # district outlines: folium's tooltips show an area name as text
                    tips = p.page.evaluate("""() => { const out = [];
                        GEO.maps.stations.map.eachLayer(g => {
                            if (!(g.getTooltip && g.getTooltip() && g.getLayers)) return;
                            g.getLayers().forEach(l => {
                                l.fire('mouseover', {latlng: l.getBounds().getCenter()}, true);
                                out.push(g.getTooltip().getElement().textContent);
                            }); });
                        return out; }""")
                    assert any("<img src=y onerror=alert(4)>" in t for t in tips), tips
                p.page.wait_for_timeout(300)  # an injected image would fail to load by now
                p.check_clean()
            finally:
                p.close()

        p = Page(browser, f"{base}/maps/compliance.html?offline=true&area={AREA}")
        try:
            p.page.wait_for_function("window.GEO && GEO.maps.compliance "
                                     "&& GEO.maps.compliance.loaded()")
            assert p.popup_name("compliance", hostile[0]) == HOSTILE[0]
            p.check_clean()
        finally:
            p.close()

        p = Page(browser, f"{base}/maps/coverage.html?offline=true&area={AREA}")
        try:
            p.page.wait_for_function("window.GEO && GEO.maps.coverage")
            assert p.page.evaluate("GEO.maps.coverage.sites.getLayers().length") == 3
            p.check_clean()
        finally:
            p.close()


def test_checkin_page_starts_with_hostile_name(browser: Any, hostile: list[str],
                                               db_url: str) -> None:
    with live_server(db_url) as base:
        for code, name in zip(hostile[:3], HOSTILE[:3], strict=True):
            p = Page(browser, f"{base}/v1/checkin/{code}")
            try:
                assert p.page.evaluate("document.querySelector('h1').textContent") == name
                p.page.click("button[data-type=courier]")
                p.page.wait_for_function("() => document.getElementById('msg').textContent")
                assert "谢谢" in p.page.inner_text("#msg")
                p.check_clean()
            finally:
                p.close()
