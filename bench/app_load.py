"""Benchmark the courier app on a slow phone: bytes on first load, time from location to list.

Chromium (Debian's, headless, 360x640 touch phone, location granted) opens the app
with the DevTools protocol's 4x CPU throttling, through a shaping proxy that plays a
slow mobile network for every request the browser makes, the service worker's
included (DevTools' own network emulation does not reach a worker's fetches):

- ``slow-3g``: DevTools' "Slow 3G" preset: 2,000 ms added to each request, 400 kbit/s
  (50,000 B/s) down and up, shared by all connections of the phone;
- ``fast-3g``: DevTools' "Fast 3G" (now "Slow 4G"): 562.5 ms, 1.44 Mbit/s down,
  675 kbit/s up.

Three visits per profile:

1. the app, first visit (empty cache): bytes until the list shows, bytes after it (the
   service worker's copy of the shell and the stations kept for offline use), and the
   time from the location fix (``performance.mark("geo:point")`` in app.js) to the list
   (``geo:list``);
2. the app, next visit (a reload): the shell comes from the phone and, with a recent
   snapshot on it, the list is computed there first (marked "updating") while the
   server's answer travels;
3. the baseline: a bare page that asks the same ``/v1/stations/nearest`` question
   (k = 5, open now) and prints the names: what any page pays for one round trip.

Bytes are counted on the wire by the proxy (HTTP/1.1 headers and bodies, gzip when the
browser accepts it), by request path. The stations are 1,000 SYNTHETIC ones around
Sanya (bench/app_size.py). Runs in its own database; never in ``make test``::

    .venv/bin/python bench/app_load.py
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from app_size import CENTRE, bench_db, load_stations  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from geo_service.infra.db import migrate  # noqa: E402
from geo_service.infra.settings import Settings  # noqa: E402
from tests.helpers import CHROMIUM, live_server  # noqa: E402

REPORT = ROOT / "bench" / "APP_LOAD.md"
CPU_SLOWDOWN = 4
POINT = (CENTRE[0] + 0.011, CENTRE[1] - 0.007)
TARGET_BYTES = 150_000
TARGET_LIST_MS = 1000


@dataclass(frozen=True)
class Profile:
    name: str
    latency_s: float
    down_bps: float  # bytes per second
    up_bps: float


PROFILES = [
    Profile("slow-3g", 2.0, 500_000 / 8 * 0.8, 500_000 / 8 * 0.8),
    Profile("fast-3g", 0.5625, 1_600_000 / 8 * 0.9, 750_000 / 8 * 0.9),
]

#: The baseline page: location, one nearest request, the names as a list.
PLAIN = """<!doctype html><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><title>nearest</title><ol id="list"></ol>
<script>
navigator.geolocation.getCurrentPosition(async (pos) => {
  performance.mark("geo:point");
  const p = new URLSearchParams({lon: pos.coords.longitude.toFixed(6),
    lat: pos.coords.latitude.toFixed(6), k: "5", open_now: "true"});
  const body = await (await fetch("/v1/stations/nearest?" + p)).json();
  for (const s of body.results) {
    const li = document.createElement("li");
    li.textContent = `${s.name} ${Math.round(s.distance_m)} m`;
    document.getElementById("list").append(li);
  }
  performance.mark("geo:list");
  document.body.dataset.state = "ready";
});
</script>"""


# --- the shaping, counting proxy --------------------------------------------------------------


@dataclass
class Link:
    """One phone's radio: a latency per request and a bandwidth shared by its connections."""

    profile: Profile
    free_at: dict[str, float] = field(default_factory=lambda: {"down": 0.0, "up": 0.0})
    bytes_by_path: collections.Counter[str] = field(default_factory=collections.Counter)

    async def send(self, direction: str, n: int) -> None:
        rate = self.profile.down_bps if direction == "down" else self.profile.up_bps
        now = time.monotonic()
        start = max(now, self.free_at[direction])
        self.free_at[direction] = start + n / rate
        await asyncio.sleep(self.free_at[direction] - now)

    def take(self) -> collections.Counter[str]:
        counted, self.bytes_by_path = self.bytes_by_path, collections.Counter()
        return counted


async def _pipe(link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                upstream: tuple[str, int]) -> None:
    server_r, server_w = await asyncio.open_connection(*upstream)
    state: dict[str, Any] = {"path": "?", "asked_at": None}

    async def up() -> None:  # phone -> service: a request line starts a new round trip
        while data := await reader.read(16384):
            line = data.split(b"\r\n", 1)[0].split(b" ")
            if len(line) == 3 and line[2].startswith(b"HTTP/"):
                state["path"] = line[1].decode("latin-1").split("?")[0]
                state["asked_at"] = time.monotonic()
            await link.send("up", len(data))
            server_w.write(data)
            await server_w.drain()
        server_w.close()

    async def down() -> None:  # service -> phone: the answer starts one latency after the ask
        while data := await server_r.read(16384):
            if state["asked_at"] is not None:
                wait = state["asked_at"] + link.profile.latency_s - time.monotonic()
                state["asked_at"] = None
                if wait > 0:
                    await asyncio.sleep(wait)
            await link.send("down", len(data))
            link.bytes_by_path[state["path"]] += len(data)
            writer.write(data)
            await writer.drain()
        writer.close()

    try:
        await asyncio.gather(up(), down())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
        server_w.close()


class Proxy:
    """The proxy on its own event loop thread; ``base`` is the address the browser uses."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.link = Link(PROFILES[0])
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.port = 0

        async def serve() -> None:
            server = await asyncio.start_server(
                lambda r, w: _pipe(self.link, r, w, self.upstream), "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await server.serve_forever()

        threading.Thread(target=self.loop.run_until_complete, args=(serve(),),
                         daemon=True).start()
        ready.wait(10)
        self.base = f"http://127.0.0.1:{self.port}"


# --- one visit ---------------------------------------------------------------------------------


@dataclass
class Visit:
    what: str
    point_to_list_ms: float
    open_to_list_ms: float
    list_from: str
    before_list: collections.Counter[str]
    after_list: collections.Counter[str]


def _settle(proxy: Proxy, quiet_s: float = 3.0, most_s: float = 60.0) -> None:
    """Wait until the phone has sent nothing for ``quiet_s`` (background work done)."""
    seen, quiet_since, deadline = -1, time.monotonic(), time.monotonic() + most_s
    while time.monotonic() < deadline:
        total = sum(proxy.link.bytes_by_path.values())
        if total != seen:
            seen, quiet_since = total, time.monotonic()
        elif time.monotonic() - quiet_since > quiet_s:
            return
        time.sleep(0.2)


def _marks(page: Any) -> tuple[float, float, str]:
    """From the location to the first list after it, from the start to that list, and
    where that list came from (app.js: "server" or "phone"; the baseline: "server")."""
    point, first_list, source = page.evaluate("""() => {
        const p = performance.getEntriesByName("geo:point")[0].startTime;
        const l = performance.getEntriesByName("geo:list").find((e) => e.startTime >= p);
        return [p, l.startTime, l.detail || "server"];
    }""")
    return first_list - point, first_list, source


def _visit(proxy: Proxy, page: Any, what: str, go: Any) -> Visit:
    proxy.link.take()
    go()
    page.wait_for_function("() => performance.getEntriesByName('geo:list').length > 0",
                           timeout=120_000)
    before = proxy.link.take()
    point_to_list, open_to_list, source = _marks(page)
    page.wait_for_function("() => document.body.dataset.state === 'ready'", timeout=120_000)
    _settle(proxy)
    return Visit(what, point_to_list, open_to_list, source, before, proxy.link.take())


def _phone(browser: Any) -> tuple[Any, Any]:
    context = browser.new_context(
        viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True,
        device_scale_factor=2, locale="zh-CN",
        geolocation={"longitude": POINT[0], "latitude": POINT[1]}, permissions=["geolocation"])
    page = context.new_page()
    context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate",
                                       {"rate": CPU_SLOWDOWN})
    return context, page


def run_profile(browser: Any, proxy: Proxy, profile: Profile) -> list[Visit]:
    proxy.link = Link(profile)
    visits = []
    context, page = _phone(browser)
    try:
        visits.append(_visit(proxy, page, "app, first visit",
                             lambda: page.goto(proxy.base + "/app/", timeout=120_000)))
        page.wait_for_function("() => document.body.dataset.snapshot !== undefined",
                               timeout=120_000)
        page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
        visits.append(_visit(proxy, page, "app, next visit",
                             lambda: page.reload(timeout=120_000)))
    finally:
        context.close()
    context, page = _phone(browser)
    try:
        page.route("**/plain.html", lambda route: route.fulfill(
            body=PLAIN, content_type="text/html; charset=utf-8"))
        visits.append(_visit(proxy, page, "baseline: bare page, one nearest request",
                             lambda: page.goto(proxy.base + "/plain.html", timeout=120_000)))
    finally:
        context.close()
    return visits


# --- report ------------------------------------------------------------------------------------


def _kb(n: int) -> str:
    return f"{n / 1000:,.1f} KB"


def _largest(counted: collections.Counter[str], n: int = 6) -> str:
    return ", ".join(f"`{path}` {_kb(b)}" for path, b in counted.most_common(n))


def _machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True,
                              text=True).stdout.strip()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} CPUs, {chromium}, load average at the end {load}"


def _profile(name: str) -> Profile:
    return next(p for p in PROFILES if p.name == name)


def report(results: dict[str, list[Visit]]) -> str:
    lines = [
        "# Courier app on a slow phone: first-load bytes and location-to-list time",
        "",
        f"Command: `.venv/bin/python bench/app_load.py` (in `make bench`) — {dt.date.today()}, "
        f"{_machine()}. 1,000 SYNTHETIC stations around Sanya; Chromium headless, 360x640 "
        f"touch phone, location granted, CPU throttled {CPU_SLOWDOWN}x (DevTools protocol). "
        "Network shaped by a proxy for every request (see the script's docstring): "
        + "; ".join(f"**{p.name}** {p.latency_s * 1000:g} ms per request, "
                    f"{p.down_bps * 8 / 1000:g} kbit/s down" for p in PROFILES) + ".",
        "",
        "Bytes are on the wire (headers included, gzip). *Before the list*: everything the "
        "phone fetched until the list showed; *after*: what it fetched in the background "
        "once the list was up (the service worker's copy of the shell, the stations kept "
        "for offline use). No map tiles: none are configured.",
        "",
        "| profile | visit | first list from | location → list | open → list "
        "| bytes before the list | bytes after |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for name, visits in results.items():
        lines += [f"| {name} | {v.what} | {v.list_from} | {v.point_to_list_ms:,.0f} ms | "
                  f"{v.open_to_list_ms:,.0f} ms | {_kb(sum(v.before_list.values()))} | "
                  f"{_kb(sum(v.after_list.values()))} |" for v in visits]
    lines.append("")
    for v in results[PROFILES[0].name][:2]:
        lines.append(f"Largest parts, {v.what} ({PROFILES[0].name}): before the list "
                     f"{_largest(v.before_list) or 'nothing'}; after it "
                     f"{_largest(v.after_list) or 'nothing'}.")
    lines += [
        "",
        f"Targets of issue 14: at most {_kb(TARGET_BYTES)} on first load without tiles, "
        f"and the list within {TARGET_LIST_MS:,} ms of the location on the throttled "
        "profile. In this run:",
        "",
    ]
    for name, visits in results.items():
        first, _, bare = visits
        total = sum(first.before_list.values()) + sum(first.after_list.values())
        lines.append(f"- {name}, first load: {_kb(total)} in all, background included — "
                     + ("**met**" if total <= TARGET_BYTES else "**missed**") + ".")
        for v in visits[:2]:
            ok = v.point_to_list_ms <= TARGET_LIST_MS
            lines.append(f"- {name}, {v.what}: list {v.point_to_list_ms:,.0f} ms after the "
                         "location — " + ("**met**" if ok else "**missed**") + (
                             "" if ok else f"; the bare page's one request took "
                             f"{bare.point_to_list_ms:,.0f} ms on the same link (the "
                             f"profile adds {_profile(name).latency_s * 1000:,.0f} ms to "
                             "every request): no page that asks the server can list sooner "
                             "on a first visit") + ".")
    return "\n".join(lines) + "\n"


def main() -> int:
    url = bench_db(Settings().resolved_database_url(), "geo_bench_app_load")
    migrate(url)
    load_stations(url, 1000)
    results: dict[str, list[Visit]] = {}
    with live_server(url) as base, sync_playwright() as pw:
        proxy = Proxy(base)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for profile in PROFILES:
                results[profile.name] = run_profile(browser, proxy, profile)
                for v in results[profile.name]:
                    print(f"{profile.name:8} {v.what:45} {v.list_from:6} location->list "
                          f"{v.point_to_list_ms:7.0f} ms  open->list {v.open_to_list_ms:7.0f} ms"
                          f"  bytes {sum(v.before_list.values()):8,} + "
                          f"{sum(v.after_list.values()):8,}")
        finally:
            browser.close()
    REPORT.write_text(report(results), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
