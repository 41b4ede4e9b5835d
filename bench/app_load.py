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

A change's before and after in one run, on the same machine at the same load: check the
older code out (``git worktree add /tmp/app-before 3adf263``) and name it. Its own
server then runs from its own code on its own database, beside this one, and the
visits alternate between the two, ``--rounds`` times (A B A B…), each row of the
report giving both::

    .venv/bin/python bench/app_load.py --before /tmp/app-before --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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


def _row(visits: list[Visit]) -> list[str]:
    """A visit's figures; with several runs of it (``--rounds``), each run's, in order."""
    def each(f: Any) -> str:
        return " / ".join(f(v) for v in visits)
    return [each(lambda v: v.list_from), each(lambda v: f"{v.point_to_list_ms:,.0f} ms"),
            each(lambda v: f"{v.open_to_list_ms:,.0f} ms"),
            each(lambda v: _kb(sum(v.before_list.values()))),
            each(lambda v: _kb(sum(v.after_list.values())))]


def _commit(tree: Path) -> str:
    """The commit a tree is checked out at (short), to name the code measured."""
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "?"


def report(results: dict[str, dict[str, list[list[Visit]]]], command: str,
           commits: dict[str, str]) -> str:
    """``results[code][profile]``: for each code (``after`` alone, or ``before`` and
    ``after``), each profile's rounds, each round the three visits."""
    codes = list(results)
    lines = [
        "# Courier app on a slow phone: first-load bytes and location-to-list time",
        "",
        f"Command: `{command}` (in `make bench` without options) — {dt.date.today()}, "
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
    ]
    if len(codes) > 1:
        lines += ["", f"*{codes[0]}* (commit {commits[codes[0]]}) and *{codes[1]}* (commit "
                  f"{commits[codes[1]]}): two servers, each on its own code and database, "
                  "visited alternately in this one run (each round: every profile on one, "
                  "then on the other); figures separated by / are the rounds in order."]
    lines += ["", "| profile | visit | code | first list from | location → list | open → list "
              "| bytes before the list | bytes after |", "|---|---|---|---|---:|---:|---:|---:|"]
    for name in (p.name for p in PROFILES):
        for i in range(3):
            for code in codes:
                runs = [r[i] for r in results[code][name]]
                lines.append(f"| {name} | {runs[0].what} | {code} | " + " | ".join(_row(runs))
                             + " |")
    lines.append("")
    for code in codes:
        for v in results[code][PROFILES[0].name][-1][:2]:
            lines.append(f"Largest parts, {code}, {v.what} ({PROFILES[0].name}, last round): "
                         f"before the list {_largest(v.before_list) or 'nothing'}; after it "
                         f"{_largest(v.after_list) or 'nothing'}.")
    lines += [
        "",
        f"Targets of issue 14: at most {_kb(TARGET_BYTES)} on first load without tiles, "
        f"and the list within {TARGET_LIST_MS:,} ms of the location on the throttled "
        f"profile. In this run ({codes[-1]}, last round):",
        "",
    ]
    for name, rounds in results[codes[-1]].items():
        visits = rounds[-1]
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


#: Run in the older checkout, on its own code (PYTHONPATH): its database, its stations,
#: its server; prints the server's address and serves until its stdin closes.
BEFORE_SERVER = """
import sys
sys.path[:0] = [".", "bench"]
from app_size import bench_db, load_stations
from geo_service.infra.db import migrate
from tests.helpers import live_server
url = bench_db(sys.argv[1], "geo_bench_app_load_before")
migrate(url)
load_stations(url, 1000)
with live_server(url) as base:
    print(base, flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def before_server(checkout: Path, server_url: str) -> Iterator[str]:
    """The older code's live server (see ``BEFORE_SERVER``); its base URL."""
    env = {**os.environ, "PYTHONPATH": str(checkout),
           "GEO_ASSETS_DIR": str(ROOT / "node_modules")}
    proc = subprocess.Popen([sys.executable, "-c", BEFORE_SERVER, server_url], cwd=checkout,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        if not base.startswith("http://"):
            raise RuntimeError(f"the older code's server did not start (exit {proc.wait()})")
        yield base
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--before", type=Path, help="a checkout of the older code to "
                        "measure alternately with this one (git worktree add)")
    parser.add_argument("--rounds", type=int, default=1, help="visits of each code per "
                        "profile, alternating (default 1)")
    args = parser.parse_args()
    server = Settings().resolved_database_url()
    url = bench_db(server, "geo_bench_app_load")
    migrate(url)
    load_stations(url, 1000)
    codes = ["before", "after"] if args.before else ["after"]
    results: dict[str, dict[str, list[list[Visit]]]] = {
        c: {p.name: [] for p in PROFILES} for c in codes}
    with contextlib.ExitStack() as stack, sync_playwright() as pw:
        bases = {"after": stack.enter_context(live_server(url))}
        if args.before:
            bases["before"] = stack.enter_context(before_server(args.before.resolve(), server))
        proxies = {c: Proxy(bases[c]) for c in codes}
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for _ in range(args.rounds):
                for code in codes:
                    for profile in PROFILES:
                        visits = run_profile(browser, proxies[code], profile)
                        results[code][profile.name].append(visits)
                        for v in visits:
                            print(f"{code:6} {profile.name:8} {v.what:45} {v.list_from:6} "
                                  f"location->list {v.point_to_list_ms:7.0f} ms  open->list "
                                  f"{v.open_to_list_ms:7.0f} ms  bytes "
                                  f"{sum(v.before_list.values()):8,} + "
                                  f"{sum(v.after_list.values()):8,}", flush=True)
        finally:
            browser.close()
    command = " ".join([".venv/bin/python bench/app_load.py", *sys.argv[1:]])
    commits = {"after": _commit(ROOT)}
    if args.before:
        commits["before"] = _commit(args.before)
    REPORT.write_text(report(results, command, commits), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
