"""Stations map: time to render and to open it (browser load to idle), beside a raw Leaflet page.

The issue asks ``bench/`` to record how long the stations map takes to render and to open
for 1k, 10k and 100k stations. For each size (a bench database of ``bench/make_data.py``,
migrated as ``bench_tiles.prepare`` does) and each of ``--repeat`` rounds:

- **project render**: ``make_page(conn, MapKind.STATIONS, None, opts)`` (basemap ``none``,
  assets inlined: the page makes no request), and ``load_stations`` alone (its DB read);
- **raw render**: ``SELECT ST_X, ST_Y, code, name`` of the same stations + ``json.dumps``
  into a minimal page: Leaflet + Leaflet.markercluster inlined, one ``L.marker`` per
  point with one shared ``divIcon``, ``L.markerClusterGroup({chunkedLoading: true})``
  (and, opened too, the same page with the options ``maps.js`` gives its cluster group);
- **open** (both pages, from ``file://`` in a fresh context of Debian's Chromium, viewport
  1280x800): from ``page.goto`` until the cluster group reports every marker added and
  then Playwright's ``networkidle``; the marker count must equal the database's.

Medians go to ``bench/MAPS.md`` (with the command and the machine), every run to
``bench/out/maps_results.json``, the pages to ``bench/out/maps/``.

Usage::

    .venv/bin/python bench/bench_maps.py [--sizes 1000,10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from pathlib import Path
from string import Template
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def relative(text: str) -> str:
    """Paths in a report relative to the repository: it reads the same on any checkout."""
    return text.replace(f"{ROOT}/", "")
for p in (str(BENCH), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import bench_nearest as bn  # noqa: E402
import make_data  # noqa: E402
from bench_tiles import prepare  # noqa: E402
from run_all import _sh, machine_info  # noqa: E402

from geo_service.domain.coords import Crs  # noqa: E402
from geo_service.maps.assets import AssetMode, head_html  # noqa: E402
from geo_service.maps.data import load_stations  # noqa: E402
from geo_service.maps.model import BASEMAPS, MapOptions  # noqa: E402
from geo_service.maps.pages import MapKind, make_page  # noqa: E402
from geo_service.maps.queries import MAP_STATUSES  # noqa: E402
from geo_service.maps.render import _COLUMNS as PAGE_COLUMNS  # noqa: E402

OUT = bn.OUT / "maps"
RESULTS = bn.OUT / "maps_results.json"
REPORT = BENCH / "MAPS.md"
MAPS_JS = ROOT / "geo_service" / "maps" / "static" / "maps.js"
PLAIN_OPTIONS = "chunkedLoading: true"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DRAWN = "status IN (" + ", ".join(f"'{s}'" for s in MAP_STATUSES) + ")"
RAW_SQL = ("SELECT ST_X(geog::geometry), ST_Y(geog::geometry), code, name FROM station "
           f"WHERE {DRAWN}")

#: Runs before any page script. ``BENCH.patch()`` makes the first non-empty
#: ``addLayers`` of a cluster group record when it starts and when its last chunk is done
#: (markercluster's ``onAdd`` calls ``addLayers([])`` first, whose ``chunkProgress(0, 0)``
#: must not count). The project page is patched, and its ``GEO.stationsLayer`` call timed,
#: by wrapping that function; the raw page calls ``BENCH.patch()`` itself.
HOOK = """
window.BENCH = {call: null, addStart: null, clustered: null, patch: function () {
  var proto = L.MarkerClusterGroup.prototype, add = proto.addLayers;
  if (add.benchPatched) return;
  proto.addLayers = function (layers) {
    if (layers.length && BENCH.addStart === null) {
      BENCH.addStart = performance.now();
      var own = this.options.chunkProgress;
      this.options.chunkProgress = function (done, total) {
        if (done === total && BENCH.clustered === null) BENCH.clustered = performance.now();
        if (own) own.apply(this, arguments);
      };
    }
    return add.apply(this, arguments);
  };
  proto.addLayers.benchPatched = true;
}};
window.GEO = {maps: {}};
(function () {
  var inner;
  function wrapped(map, P) {
    BENCH.patch();
    BENCH.call = performance.now();
    return inner(map, P);
  }
  Object.defineProperty(GEO, "stationsLayer", {configurable: true,
    get: function () { return inner && wrapped; }, set: function (f) { inner = f; }});
})();
"""

RAW_PAGE = Template("""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>raw baseline: $n stations</title>
<link rel="icon" href="data:,">
$head
<style>html, body, #map { width: 100%; height: 100%; margin: 0; }</style>
</head><body><div id="map"></div>
<script>
(function () {
  var B = window.BENCH || {patch: function () {}};
  B.patch();
  var rows = $rows;
  B.call = performance.now();
  var map = L.map("map", {maxZoom: 19}).fitBounds($bounds, {padding: [20, 20]});
  var icon = L.divIcon({className: "x", iconSize: [8, 8]});
  var markers = new Array(rows.length);
  for (var i = 0; i < rows.length; i++) {
    markers[i] = L.marker([rows[i][1], rows[i][0]], {icon: icon});
  }
  var R = (window.RAW = {loadedMs: null, loaded: function () { return R.loadedMs !== null; }});
  var started = performance.now();
  R.cluster = L.markerClusterGroup({$options,
    chunkProgress: function (done, total) {
      if (total > 0 && done === total && R.loadedMs === null) {
        R.loadedMs = performance.now() - started;
      }
    }});
  R.cluster.addTo(map);
  R.cluster.addLayers(markers);
})();
</script></body></html>
""")

#: What is read from a page once it is idle (``E`` is its cluster entry).
STATS_JS = """E => ({markers: E.cluster.getLayers().length, loadedMs: E.loadedMs,
  call: BENCH.call, addStart: BENCH.addStart, clusteringMs: BENCH.clustered - BENCH.addStart})"""


# --------------------------------------------------------------------------- render


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def render_project(conn: psycopg.Connection[Any], opts: MapOptions) -> tuple[str, dict[str, float]]:
    _, db_s = _timed(lambda: load_stations(conn, None, opts.at, Crs.WGS84))
    page, s = _timed(lambda: make_page(conn, MapKind.STATIONS, None, opts))
    return page, {"render_s": s, "db_read_s": db_s, "html_mb": len(page.encode()) / 1e6}


def project_cluster_options() -> str:
    """The options ``maps.js`` gives ``L.markerClusterGroup``, as written there."""
    m = re.search(r"L\.markerClusterGroup\(\{(.*?)\}\)", MAPS_JS.read_text(), re.S)
    if not m:
        raise SystemExit(f"no L.markerClusterGroup({{…}}) in {MAPS_JS}")
    return " ".join(m.group(1).split())


def raw_page(conn: psycopg.Connection[Any], n: int, options: str = PLAIN_OPTIONS) -> str:
    rows = conn.execute(RAW_SQL).fetchall()
    lon = [r[0] for r in rows]
    lat = [r[1] for r in rows]
    bounds = [[min(lat), min(lon)], [max(lat), max(lon)]]
    data = json.dumps(rows, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return RAW_PAGE.substitute(n=n, head=head_html(AssetMode.INLINE), rows=data,
                               bounds=json.dumps(bounds), options=options)


def render_raw(conn: psycopg.Connection[Any], n: int) -> tuple[str, dict[str, float]]:
    page, s = _timed(lambda: raw_page(conn, n))
    return page, {"render_s": s, "html_mb": len(page.encode()) / 1e6}


# --------------------------------------------------------------------------- open


def open_page(browser: Any, path: Path, entry: str, timeout_s: float) -> dict[str, Any]:
    """Open ``path`` in a fresh context; seconds from ``goto`` to DOMContentLoaded, to every
    marker clustered (``BENCH.clustered``) and to network idle; heap and in-page timings.
    ``entry`` is the page's object holding its cluster group (and its own ``loadedMs``)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        ctx.add_init_script(HOOK)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        t0 = time.perf_counter()

        def left_ms() -> float:
            return max(1.0, (timeout_s - (time.perf_counter() - t0)) * 1000)

        page.goto(path.as_uri(), wait_until="domcontentloaded", timeout=left_ms())
        dcl_s = time.perf_counter() - t0
        page.wait_for_function("BENCH.clustered !== null", timeout=left_ms())
        ready_s = time.perf_counter() - t0
        page.wait_for_load_state("networkidle", timeout=left_ms())
        idle_s = time.perf_counter() - t0
        stats = page.evaluate(STATS_JS, page.evaluate_handle(entry))
        cdp = ctx.new_cdp_session(page)
        heap = cdp.send("Runtime.getHeapUsage")["usedSize"]
        cdp.send("HeapProfiler.collectGarbage")
        heap_gc = cdp.send("Runtime.getHeapUsage")["usedSize"]
        if errors:
            raise RuntimeError(f"{path.name}: page errors: {errors[:3]}")
    finally:
        ctx.close()
    return {"dcl_s": dcl_s, "ready_s": ready_s, "idle_s": idle_s, "markers": stats["markers"],
            "clustering_ms": stats["clusteringMs"], "page_loaded_ms": stats["loadedMs"],
            "before_layer_s": stats["call"] / 1000,
            "markers_s": (stats["addStart"] - stats["call"]) / 1000,
            "heap_mb": heap / 1e6, "heap_after_gc_mb": heap_gc / 1e6}


# --------------------------------------------------------------------------- driver


def our_pids() -> list[int]:
    """This process and its descendants (Playwright's driver, Chromium): not other load."""
    parent = {}
    for e in os.listdir("/proc"):
        try:
            parent[int(e)] = int(Path(f"/proc/{e}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError, IndexError):
            continue
    tree = {os.getpid()}
    while grown := {p for p, pp in parent.items() if pp in tree} - tree:
        tree |= grown
    return sorted(tree)


def metered(fn: Callable[[], dict[str, Any]], dbname: str) -> dict[str, Any]:
    """``fn()`` and the CPU other processes used meanwhile (% of one core)."""
    with bn.CpuMeter({"ours": our_pids()}, dbname) as cpu:
        res = fn()
    res["foreign_cpu_pct"] = cpu.foreign_pct
    res["foreign_top"] = cpu.foreign_top[:3]
    return res


def code_fingerprint() -> str:
    """A hash of the code that makes the page (``geo_service/maps`` but its CLI and HTTP
    router): the page must not change while it is measured."""
    h = hashlib.sha256()
    for f in sorted((ROOT / "geo_service" / "maps").rglob("*")):
        if f.suffix in (".py", ".js", ".css") and f.name not in ("cli.py", "router.py"):
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def measured(fn: Callable[[], dict[str, Any]], dbname: str, args: argparse.Namespace,
             label: str) -> dict[str, Any]:
    """After a bounded wait for quiet; re-run (``--retries``) if others used the machine."""
    return bn._measured(partial(metered, fn, dbname), args, label)


def run_size(browser: Any, n: int, opts: MapOptions, args: argparse.Namespace) -> dict[str, Any]:
    dbname, url = make_data.db_name(n), make_data.db_url(n)
    project_html, raw_html = OUT / f"stations-{n}.html", OUT / f"raw-{n}.html"
    same_html = OUT / f"raw-{n}-project-cluster-options.html"
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in ("render", "raw_render", "open",
                                                            "raw_open", "raw_same_open")}
    failed: dict[str, str] = {}
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM station WHERE {DRAWN}").fetchone()
        drawn = int(row[0]) if row else 0
        same_html.write_text(raw_page(conn, n, project_cluster_options()))
        for i in range(args.repeat):
            def render() -> dict[str, Any]:
                page, res = render_project(conn, opts)
                project_html.write_text(page)
                return res

            def render_baseline() -> dict[str, Any]:
                page, res = render_raw(conn, n)
                raw_html.write_text(page)
                return res

            runs["render"].append(measured(render, dbname, args, f"{n:,} render"))
            runs["raw_render"].append(measured(render_baseline, dbname, args,
                                               f"{n:,} raw render"))
            for key, path, entry in (("open", project_html, "GEO.maps.stations"),
                                     ("raw_open", raw_html, "RAW"),
                                     ("raw_same_open", same_html, "RAW")):
                if key in failed:
                    continue
                try:
                    res = measured(partial(open_page, browser, path, entry, args.timeout),
                                   dbname, args, f"{n:,} {key}")
                except Exception as exc:  # a timeout is a result, reported as such
                    failed[key] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                    print(f"[maps] {n:,} {key} FAILED: {failed[key]}", flush=True)
                    continue
                if res["markers"] != drawn:
                    raise SystemExit(f"{path.name}: {res['markers']} markers, database has "
                                     f"{drawn} stations to draw")
                runs[key].append(res)
            print(f"[maps] {n:,} round {i + 1}: " + ", ".join(
                f"{k} {r[-1].get('render_s', r[-1].get('idle_s')):.2f} s"
                for k, r in runs.items() if len(r) > i), flush=True)
    median = {k: {m: statistics.median(r[m] for r in v) for m, x in v[0].items()
                  if isinstance(x, int | float)} for k, v in runs.items() if v}
    return {"size": n, "db": dbname, "drawn": drawn, "median": median, "failed": failed,
            "timeout_s": args.timeout, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, default, text in (
            ("--sizes", "1000,10000,100000", "comma list of station counts (10k, 1m work)"),
            ("--repeat", 3, "runs of each measurement; the median is reported"),
            ("--timeout", 120.0, "seconds a page may take to open"),
            ("--quiet-wait", 5.0, "seconds to wait for an idle machine before each run"),
            ("--max-other-load", 25.0, "run again if others used more %% of a core than this"),
            ("--retries", 2, "at most this many times")):
        ap.add_argument(flag, type=type(default), default=default, help=text)
    args = ap.parse_args(argv)
    code_before = code_fingerprint()  # the maps modules are imported by now
    from playwright.sync_api import sync_playwright

    sizes = make_data.parse_sizes(args.sizes)
    make_data.ensure_cluster()
    data = [prepare(n) for n in sizes]  # before Playwright: migrations may run an event loop
    OUT.mkdir(parents=True, exist_ok=True)
    head_html(AssetMode.INLINE)  # read the npm files once, outside every timing
    started = dt.datetime.now(dt.UTC)
    opts = MapOptions(basemap=BASEMAPS["none"], assets=AssetMode.INLINE, at=started)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        results = [run_size(browser, n, opts, args) for n in sizes]
        browser.close()
    doc = {"started_utc": started.isoformat(timespec="seconds"),
           "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "command": " ".join([".venv/bin/python bench/bench_maps.py",
                                 *(sys.argv[1:] if argv is None else argv)]),
           "repeat": args.repeat, "timeout_s": args.timeout, "raw_sql": RAW_SQL,
           "project_cluster_options": project_cluster_options(),
           "max_other_load": args.max_other_load, "retries": args.retries,
           "maps_code": [code_before, code_fingerprint()],
           "data": data, "results": results}
    RESULTS.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str))
    info = machine_info(make_data.db_url(sizes[-1]))
    info["chromium"] = _sh([CHROMIUM, "--version"])
    info["packages"] = ", ".join(f"{m} {version(m)}" for m in ("folium", "playwright", "psycopg"))
    REPORT.write_text(relative(render_report(doc, info)))
    print(figures_table(results))
    print(f"[maps] wrote {REPORT.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}")
    if len(set(doc["maps_code"])) > 1:
        print("[maps] WARNING: geo_service/maps changed during the run; run it again")
    return 1 if any(r["failed"] for r in results) else 0


# --------------------------------------------------------------------------- report


def _get(r: dict[str, Any], side: str, key: str, fmt: str = "{:.2f}") -> str:
    if side in r["failed"]:
        timed_out = "Timeout" in r["failed"][side]
        return f"**no** (> {r['timeout_s']:.0f} s)" if timed_out else "**failed**"
    value = r["median"].get(side, {}).get(key)
    return "—" if value is None else fmt.format(value)


def figures_table(results: list[dict[str, Any]]) -> str:
    rows = ["| stations | render s (project) | of which DB read s | HTML MB | raw render s "
            "| raw HTML MB | open to idle s (project) | clustering ms | JS heap MB "
            "| raw open to idle s |", "|---:|" + "---:|" * 9]
    for r in results:
        g = partial(_get, r)
        rows.append(f"| {r['size']:,} | {g('render', 'render_s')} | {g('render', 'db_read_s')} "
                    f"| {g('render', 'html_mb', '{:.1f}')} | {g('raw_render', 'render_s')} "
                    f"| {g('raw_render', 'html_mb', '{:.1f}')} | {g('open', 'idle_s')} "
                    f"| {g('open', 'clustering_ms', '{:,.0f}')} | {g('open', 'heap_mb', '{:.0f}')} "
                    f"| {g('raw_open', 'idle_s')} |")
    return "\n".join(rows) + "\n"


def detail_table(results: list[dict[str, Any]]) -> str:
    rows = ["| stations | page | markers | DOMContentLoaded s | all clustered s "
            "| idle s (min–max) "
            "| before layer call s | marker creation s | clustering ms | heap MB "
            "| heap after GC MB | other load % (max) |", "|---:|---|" + "---:|" * 10]
    for r in results:
        for side, label in (("open", "project"), ("raw_open", "raw"),
                            ("raw_same_open", "raw, project's cluster options")):
            g = partial(_get, r, side)
            load = max((x["foreign_cpu_pct"] for x in r["runs"][side]), default=0.0)
            idle = [x["idle_s"] for x in r["runs"][side]]
            spread = f" ({min(idle):.2f}–{max(idle):.2f})" if idle else ""
            rows.append(f"| {r['size']:,} | {label} | {g('markers', '{:,.0f}')} | {g('dcl_s')} "
                        f"| {g('ready_s')} | {g('idle_s')}{spread} | {g('before_layer_s')} "
                        f"| {g('markers_s')} | {g('clustering_ms', '{:,.0f}')} "
                        f"| {g('heap_mb', '{:.0f}')} | {g('heap_after_gc_mb', '{:.0f}')} "
                        f"| {load:.0f} |")
    return "\n".join(rows) + "\n"


def machine_lines(info: dict[str, str]) -> str:
    mem = info["free_g"].splitlines()
    ram = mem[1].split()[1] if len(mem) > 1 and len(mem[1].split()) > 1 else "?"
    return "\n".join(f"- {line}" for line in (
        f"CPU: {info['cpu']}, {info['nproc']} cores; RAM {ram} GiB (`free -g`); "
        f"kernel {info['kernel']}",
        f"PostgreSQL: {info['postgres']}", f"PostGIS: {info['postgis']}",
        f"{info['chromium']} (`{CHROMIUM} --version`), headless, `{' '.join(CHROMIUM_ARGS)}`",
        f"Python {info['python']}; {info['packages']}"))


def where_note(results: list[dict[str, Any]]) -> str:
    """One sentence on where the largest project page spends its opening time."""
    r = results[-1]
    o = r["median"].get("open")
    if not o:
        return ""
    return (f"At {r['size']:,} stations the project page had every marker clustered "
            f"{o['ready_s']:.2f} s after `goto`: {o['before_layer_s']:.2f} s before its layer "
            f"call (HTML, scripts and the {r['median']['render']['html_mb']:.1f} MB page's "
            f"data literal), {o['markers_s']:.2f} s creating markers, "
            f"{o['clustering_ms'] / 1000:.2f} s clustering.")


def render_report(doc: dict[str, Any], info: dict[str, str]) -> str:
    results = doc["results"]
    started = dt.datetime.fromisoformat(doc["started_utc"])
    local = started.astimezone(ZoneInfo("Asia/Shanghai"))
    failures = "\n".join(f"- {r['size']:,} stations, {side}: {why}"
                         for r in results for side, why in r["failed"].items())
    kept = [x for r in results for v in r["runs"].values() for x in v]
    load = max(x["foreign_cpu_pct"] for x in kept)
    retried, total = sum(x["attempts"] > 1 for x in kept), len(kept)
    before, after = doc["maps_code"]
    code_note = (f"The code that makes the page (`geo_service/maps/` but `cli.py` and "
                 f"`router.py`; hash {before}) did not change during the run." if before == after
                 else f"**The code that makes the page changed during this run** (hash {before} "
                 f"→ {after}): the project figures mix two versions of the page; run it again.")
    own = [f"{r['median']['open']['page_loaded_ms']:.1f}" for r in results
           if "open" in r["median"]]
    loaded_note = (
        f"The page's own `GEO.maps.stations.loadedMs` read {' / '.join(own)} ms: it is set "
        "by the `chunkProgress(0, 0)` of the empty `addLayers([])` that markercluster's "
        "`onAdd` makes when `cluster.addTo(map)` runs, before any marker is added, so "
        "`loaded()` is true from the start; this benchmark therefore waits for, and "
        "reports, the end of the `addLayers` call that carries the markers instead.")
    data = ", ".join(f"`{d['db']}` ({d['size']:,}, " + ("reused" if d["reused"] else "built")
                     + ")" for d in doc["data"])
    return f"""# Benchmark: the stations map, render and open, project vs a raw Leaflet page

Generated by `bench/bench_maps.py` on {started:%Y-%m-%d %H:%M} UTC
({local:%Y-%m-%d %H:%M} Asia/Shanghai); every run in `bench/out/maps_results.json`, the pages
in `bench/out/maps/` (neither committed). Medians of {doc['repeat']} runs per figure, all
measured in that run. {code_note}

## Figures

{figures_table(results)}
{"**Did not open:**" + chr(10) + failures + chr(10) if failures else ""}
- **render**: `make_page(conn, MapKind.STATIONS, None, opts)` (basemap `none`, assets
  inlined, area = everywhere), connection already open; "of which DB read" is
  `load_stations(conn, None, at, Crs.WGS84)` timed alone (`geo_service.maps.queries.STATIONS`
  with open-now at `at`, into columns).
- **raw render**: `{doc['raw_sql']}`, `json.dumps` of the rows into a minimal page.
- **open to idle**: a fresh browser context (Debian Chromium, headless, 1280x800) per
  run; from the start of `page.goto(file://…)` until the cluster group has added every
  marker (the last chunk of markercluster's `addLayers`, see "clustering ms") and then
  Playwright's `networkidle`. The marker count was checked
  against the database (status open, temporarily closed or planned) every run.
  `networkidle` comes 0.5 s after the page's last request (here the HTML file itself), so
  no figure is below ~0.5 s: pages ready sooner measure that wait, not their own work;
  "all clustered s" below has no such floor.
- **clustering ms**: from the start of the `cluster.addLayers` call that carries the
  markers to its last chunk (`chunkProgress` at processed = total), in the page's clock;
  see below for why not `GEO.maps.stations.loadedMs`.
- **JS heap**: `usedSize` of CDP `Runtime.getHeapUsage` once idle (and after a forced
  GC). `performance.memory.usedJSHeapSize` is quantised in this Chromium (it read 10 MB
  for an empty page and for one holding a million objects), so it is not used.

Where the time goes, per page (medians; times from navigation start):

{detail_table(results)}
The first three columns are wall time from the start of `page.goto`; the next three come
from the page's own clock (`performance.now()`, from its navigation start), recorded by an
init script: "before layer call" runs until the page starts drawing its markers (HTML
parsed, scripts compiled, the inline data literal evaluated: the JSON cost); "marker
creation" from there until the markers go to the cluster group (project:
`GEO.stationsLayer` up to `cluster.addLayers`: one `L.marker` with its icon and popup
callback per station; raw: the map, one `L.marker` per point); "clustering" from
`addLayers` to its last chunk (project: `chunkInterval` 100 ms, `chunkDelay` 10 ms; raw:
markercluster's defaults, 200 ms / 50 ms). Other load: CPU used during the measurement
by processes outside this benchmark (other sessions' test runs share the machine), in %
of one core; max over the kept runs {load:.0f}%. A measurement during which it exceeded
{doc['max_other_load']:g}% was run again (at most {doc['retries']} more time(s)) and the
least disturbed attempt kept; {retried} of {total} were repeated in this run. {loaded_note}
{where_note(results)}

"Raw, project's cluster options" is the raw page with the options `maps.js` passes to
`L.markerClusterGroup` (read from it: `{doc['project_cluster_options']}`) instead of the
baseline's `chunkedLoading: true` alone. `disableClusteringAtZoom: 17` makes
markercluster build its cluster tree for zooms up to 16 instead of the map's 19, and
shorter, more frequent chunks leave less idle time between them, so this row shows how
much of the gap between the two pages comes from those options rather than from what
the project page draws.

## What the project page carries that the baseline does not

The baseline draws bare clustered points: four columns per station, one shared
`divIcon`, no popups, no controls. The project page embeds {len(PAGE_COLUMNS)} columns per
station ({', '.join(PAGE_COLUMNS)}) and builds from them: a marker icon per station
coloured by ten-ones completeness and shaped by host type (icons shared per combination),
a popup per marker built on demand with the ten-ones checklist (what the station has and
lacks) and the station's details; per-host-type and per-status filter checkboxes with
counts; the legend; the title box; a layer control and scale; and district outlines with
per-district counts (folium `GeoJson`; the bench databases hold no admin areas, so none
is drawn here and their cost is not in these figures). Its render also computes, in SQL,
open-now and the other per-station values of those columns for every station, and
assembles the page with folium.

## How it was run

```sh
{doc['command']}
```

Data: {data}: synthetic SAMPLE stations of `bench/make_data.py`, brought to the migration
head by `bench_tiles.prepare`. Options: `--sizes` (comma list, `10k` works), `--repeat`,
`--timeout` (seconds a page may take to open, default 120), `--quiet-wait` (seconds to wait
for an idle machine before each measurement), `--max-other-load`, `--retries`.

## Machine

{machine_lines(info)}
"""


if __name__ == "__main__":
    raise SystemExit(main())
