"""Benchmark ``GET /tiles/{z}/{x}/{y}.mvt`` against the raw ``ST_AsMVT`` SQL it runs.

For each size (a bench database built by ``bench/make_data.py``) and each zoom (12, 13, 14):

- **the tiles**: the tiles of a fixed random sample of published stations (so every tile
  holds stations, and dense areas are asked for more often, as map users do); requests
  draw uniformly from that set;
- (a) **raw SQL baseline**: ``pgbench -M prepared`` runs the very statement the service
  sends (``geo_service.feeds.tile_queries.TILE_MVT`` with the parameters
  ``geo_service.feeds.routes.tiles`` binds), ``x``/``y`` drawn from the tile set with ``\\set``;
- (b) **the API**: ``geo-service serve`` (uvicorn, 1 worker) driven by ``wrk`` (or, when
  wrk is missing, a Python httpx load generator) with the same tile set. Each request
  runs two statements: the feed state (for the ETag) and the tile.

Both sides run 16 clients for ``--seconds`` after a warm-up; the helpers (pgbench and wrk
runners, CPU accounting, the server fixture) are those of ``bench_nearest.py``. The bench
databases are brought to the current migration head first, and the planar index
``ix_station_geom`` is created if a database predates it. Writes ``bench/TILES.md`` and
``bench/out/tiles_results.json``.

Usage::

    .venv/bin/python bench/bench_tiles.py [--sizes 100000,1000000] [--zooms 12,13,14]
                                          [--seconds 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import statistics
import sys
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

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
import psycopg  # noqa: E402
from run_all import machine_info  # noqa: E402

from geo_service.feeds import tile_queries as tq  # noqa: E402
from geo_service.feeds.routes.tiles import tile_params  # noqa: E402

REPORT = BENCH / "TILES.md"
RESULTS = bn.OUT / "tiles_results.json"
GEOM_INDEX = "CREATE INDEX IF NOT EXISTS ix_station_geom ON station USING gist ((geog::geometry))"


# --------------------------------------------------------------------------- data


def prepare(n: int) -> dict[str, Any]:
    """Build or reuse the bench database, migrate it to head, make sure of the tile index.

    Databases built before ``ix_station_geom`` joined the first migration lack it
    (Alembic does not re-run an applied revision), so it is created here from the
    migration's own definition. A migration or a new index is followed by VACUUM ANALYZE.
    """
    try:
        with psycopg.connect(make_data.db_url(n)) as conn:
            before = _head(conn)
    except psycopg.OperationalError:  # no such database yet: make_data creates it
        before = None
    info = make_data.build(n)  # creates/reuses, runs geo_service.infra.db.migrate, ANALYZE
    with psycopg.connect(make_data.db_url(n), autocommit=True) as conn:
        after = _head(conn)
        had = conn.execute("SELECT to_regclass('ix_station_geom') IS NOT NULL").fetchone()
        created = not (had and had[0])
        if created:
            print(f"[tiles] {info['db']}: creating ix_station_geom", flush=True)
            conn.execute("SET maintenance_work_mem = '512MB'")
            conn.execute(GEOM_INDEX)
        if created or before != after:
            print(f"[tiles] {info['db']}: VACUUM ANALYZE (migrated {before} → {after})",
                  flush=True)
            conn.execute("VACUUM (ANALYZE) station")
    return {**info, "migrated_from": before, "head": after, "created_geom_index": created}


def _head(conn: psycopg.Connection[Any]) -> str | None:
    exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile holding a WGS-84 point (the slippy-map formula)."""
    n = 1 << z
    fy = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return min(n - 1, int((lon + 180.0) / 360.0 * n)), min(n - 1, int(fy))


def pick_tiles(url: str, n_stations: int, z: int, count: int, seed: int) -> list[tuple[int, int]]:
    """Distinct tiles of a fixed random sample of published stations, in sample order."""
    rng = random.Random(seed)
    ids = rng.sample(range(1, n_stations + 1), min(n_stations, count * 4))
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT ST_X(geog::geometry), ST_Y(geog::geometry) FROM station "
            "WHERE id = ANY(%s) AND status IN ('open', 'temporarily_closed') "
            "ORDER BY array_position(%s, id)", (ids, ids)).fetchall()
    tiles: dict[tuple[int, int], None] = {}
    for lon, lat in rows:
        tiles.setdefault(tile_of(lon, lat, z))
        if len(tiles) == count:
            break
    return list(tiles)


def tile_sizes(url: str, z: int, tiles: list[tuple[int, int]]) -> dict[str, float]:
    """Bytes and features of every tile in the set (the service's own statement)."""
    sizes, features = [], []
    with psycopg.connect(url) as conn:
        for x, y in tiles:
            row = conn.execute(tq.TILE_MVT, tile_params(z, x, y), prepare=True).fetchone()
            sizes.append(len(row[0]) if row and row[0] else 0)
        for x, y in tiles[:20]:
            cnt = conn.execute(
                "SELECT count(*) FROM station s WHERE s.status IN ('open', 'temporarily_closed')"
                " AND s.geog::geometry && ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326)",
                (z, x, y)).fetchone()
            features.append(int(cnt[0]) if cnt else 0)
    return {"mean_bytes": statistics.fmean(sizes), "median_bytes": statistics.median(sizes),
            "max_bytes": max(sizes), "empty": sum(1 for s in sizes if s == 0),
            "mean_stations_first20": statistics.fmean(features)}


def explain(url: str, z: int, x: int, y: int) -> str:
    with psycopg.connect(url) as conn:
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + tq.TILE_MVT,
                            tile_params(z, x, y)).fetchall()
    return "\n".join(r[0] for r in rows)


# --------------------------------------------------------------------------- scripts


def _case(var: str, values: list[int]) -> str:
    arms = " ".join(f"WHEN :i = {i} THEN {v}" for i, v in enumerate(values[:-1]))
    return f"\\set {var} CASE {arms} ELSE {values[-1]} END"


def pgbench_script(z: int, tiles: list[tuple[int, int]]) -> tuple[str, dict[str, str]]:
    """The service's tile statement as a pgbench script, ``x``/``y`` drawn from ``tiles``."""
    params = tile_params(z, 0, 0)
    defines = {k: bn._pg_text(v) for k, v in params.items() if k not in ("x", "y")}
    sql = bn._PLACEHOLDER.sub(lambda m: f":{m.group(1)}", tq.TILE_MVT)
    sql = " ".join(line.strip() for line in sql.splitlines() if line.strip())
    head = [f"\\set i random(0, {len(tiles) - 1})",
            _case("x", [t[0] for t in tiles]), _case("y", [t[1] for t in tiles])]
    return "\n".join(head) + "\n" + sql + ";\n", defines


def wrk_script(z: int, tiles: list[tuple[int, int]]) -> str:
    """wrk Lua: uniform draw from the tile set; the same WRKJSON summary as bench_nearest."""
    lua_tiles = ",".join(f"{{{x},{y}}}" for x, y in tiles)
    return f"""-- generated by bench/bench_tiles.py; do not edit
local tiles = {{{lua_tiles}}}
{bn.WRK_THREADS_LUA}
function init(args)
  math.randomseed(20261122 + tid * 7919)
  non200 = 0
end

function request()
  local t = tiles[math.random(#tiles)]
  return wrk.format("GET", string.format("/tiles/{z}/%d/%d.mvt", t[1], t[2]))
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

{bn.WRK_REPORT_LUA}"""


def run_py_load(server: bn.ApiServer, z: int, tiles: list[tuple[int, int]], seconds: int,
                clients: int, dbname: str) -> dict[str, Any]:
    """Fallback load (httpx) when wrk is unavailable: uniform draw from the tile set."""
    rng = random.Random(20261122)

    def next_path() -> str:
        x, y = rng.choice(tiles)
        return f"/tiles/{z}/{x}/{y}.mvt"

    return bn.run_py_load_paths(server, next_path, seconds, clients, dbname)


def smoke_check(server: bn.ApiServer, url: str, z: int, x: int, y: int) -> int:
    """One tile through the API: 200, MVT, the same features as the raw statement's tile.

    Bytes may differ (feature order follows the plan's row order), so both are decoded.
    """
    import mapbox_vector_tile

    with urllib.request.urlopen(f"{server.base}/tiles/{z}/{x}/{y}.mvt", timeout=30) as r:
        body = r.read()
        if r.status != 200 or r.headers["Content-Type"] != "application/vnd.mapbox-vector-tile":
            raise RuntimeError(f"smoke check: HTTP {r.status} {r.headers['Content-Type']}")
    with psycopg.connect(url) as conn:
        row = conn.execute(tq.TILE_MVT, tile_params(z, x, y)).fetchone()

    def features(tile: bytes) -> list[tuple[Any, ...]]:
        layer = mapbox_vector_tile.decode(tile)["stations"]["features"]
        return sorted((tuple(f["geometry"]["coordinates"]), sorted(f["properties"].items()))
                      for f in layer)

    if not row or features(bytes(row[0])) != features(body):
        raise RuntimeError("smoke check: the API tile differs from the raw statement's")
    return len(body)


# --------------------------------------------------------------------------- driver


def run_size(n: int, args: argparse.Namespace, wrk: str | None) -> tuple[dict[str, Any],
                                                                        list[dict[str, Any]]]:
    data = prepare(n)
    dbname, url = make_data.db_name(n), make_data.db_url(n)
    work = bn.OUT / dbname
    work.mkdir(parents=True, exist_ok=True)
    results = []
    with bn.ApiServer(url, work, args.pool_min, args.pool_max) as server:
        for z in args.zoom_list:
            tiles = pick_tiles(url, n, z, args.tiles, seed=20261122 + z)
            sizes = tile_sizes(url, z, tiles)
            plan = explain(url, z, *tiles[0])
            if "ix_station_geom" not in plan:
                raise SystemExit(f"the tile statement does not use ix_station_geom:\n{plan}")
            script, defines = pgbench_script(z, tiles)
            sql_path = work / f"tiles_z{z}.pgbench"
            sql_path.write_text(script)
            lua_path = work / f"tiles_z{z}.lua"
            lua_path.write_text(wrk_script(z, tiles))
            print(f"[tiles] {dbname} z{z}: {len(tiles)} tiles, mean {sizes['mean_bytes']:.0f} B",
                  flush=True)

            bn.wait_quiet(args.quiet_wait)
            bn.run_pgbench(dbname, sql_path, defines, args.warmup, args.clients, args.threads,
                           work)
            raw = bn._measured(
                partial(bn.run_pgbench, dbname, sql_path, defines, args.seconds, args.clients,
                        args.threads, work),
                args, f"{dbname} z{z}: pgbench {args.seconds} s")
            print(f"[tiles]   raw SQL: {raw['tps']:.0f} tps, p50 {raw['p50_ms']:.2f} ms, "
                  f"p99 {raw['p99_ms']:.2f} ms, failed {raw['failed']}", flush=True)

            smoke = smoke_check(server, url, z, *tiles[0])
            bn.wait_quiet(args.quiet_wait)
            if wrk:
                bn.run_wrk(wrk, server, lua_path, args.warmup, args.clients, args.threads,
                           dbname)
                api = bn._measured(
                    partial(bn.run_wrk, wrk, server, lua_path, args.seconds, args.clients,
                            args.threads, dbname),
                    args, f"{dbname} z{z}: API {args.seconds} s")
            else:
                run_py_load(server, z, tiles, args.warmup, args.clients, dbname)
                api = bn._measured(
                    partial(run_py_load, server, z, tiles, args.seconds, args.clients, dbname),
                    args, f"{dbname} z{z}: API {args.seconds} s")
            api["server_command"] = " ".join(server.command).replace(
                f"--port {server.port}", "--port PORT")
            print(f"[tiles]   API: {api['rps']:.0f} req/s, p50 {api['p50_ms']:.2f} ms, "
                  f"p99 {api['p99_ms']:.2f} ms, non-200 {api['non200']}, other load "
                  f"{api['foreign_cpu_pct']:.0f}%", flush=True)
            results.append({
                "size": n, "db": dbname, "zoom": z, "tiles": len(tiles), "sizes": sizes,
                "smoke_bytes": smoke, "raw": raw, "api": api,
                "ratio": api["rps"] / raw["tps"] if raw["tps"] else None,
                "plan": plan, "pgbench_defines": defines,
            })
    return data, results


def _kb(b: float) -> str:
    return f"{b / 1024:,.1f}"


def figures_table(results: list[dict[str, Any]]) -> str:
    head = ("| stations | zoom | tiles in set | stations per tile | mean tile KB | max KB "
            "| raw SQL tps | raw p50 ms | raw p99 ms | API req/s | API p50 ms | API p99 ms "
            "| API/raw | API non-200 | API CPU: server / postgres / machine "
            "| other load: raw / API |\n"
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
    rows = []
    for r in results:
        raw, api, s = r["raw"], r["api"], r["sizes"]
        rows.append(
            f"| {r['size']:,} | {r['zoom']} | {r['tiles']} | {s['mean_stations_first20']:,.0f} "
            f"| {_kb(s['mean_bytes'])} | {_kb(s['max_bytes'])} | {raw['tps']:,.0f} "
            f"| {raw['p50_ms']:.2f} | {raw['p99_ms']:.2f} | {api['rps']:,.0f} "
            f"| {api['p50_ms']:.2f} | {api['p99_ms']:.2f} | {r['ratio']:.2f} "
            f"| {api['non200'] + api['socket_errors']} | {api['server_cpu_pct']:.0f}% / "
            f"{api['postgres_cpu_pct']:.0f}% / {api['machine_cpu_pct']:.0f}% "
            f"| {raw.get('foreign_cpu_pct', 0):.0f}% / {api.get('foreign_cpu_pct', 0):.0f}% |")
    return head + "\n".join(rows) + "\n"


def render(doc: dict[str, Any], info: dict[str, str]) -> str:
    results = doc["results"]
    started = dt.datetime.fromisoformat(doc["started_utc"])
    data_lines = "\n".join(
        f"- `{d['db']}`: {d['size']:,} stations, "
        + ("reused" if d["reused"] else f"built in {d['total_s']:.0f} s")
        + (f"; migrated {d['migrated_from']} → {d['head']}"
           if d["migrated_from"] != d["head"] else f"; at migration head {d['head']}")
        + ("; `ix_station_geom` created (the database predated it)"
           if d["created_geom_index"] else "")
        for d in doc["data"])
    first = results[0] if results else None
    commands = "\n".join(
        f"# {r['size']:,} stations, zoom {r['zoom']}\n{r['raw']['command']}\n{r['api']['command']}"
        for r in results)
    plan = first["plan"] if first else ""
    args = doc["args"]
    return f"""# Benchmark: vector tiles (`/tiles/{{z}}/{{x}}/{{y}}.mvt`), raw SQL vs the API

Generated by `bench/bench_tiles.py` on {started:%Y-%m-%d %H:%M} UTC; raw results in
`bench/out/tiles_results.json` (not committed). Every figure below was measured in that run.
**The machine is shared** (2 cores; other sessions run test suites at the same time): see the
"other load" column; a row with more than a few % of other load is depressed.

## Figures

{doc['clients']} concurrent clients, {doc['threads']} load-generator threads, {doc['seconds']} s
measured after a {doc['warmup']} s warm-up, per row and per side. For each zoom the tile set
is the distinct tiles of a fixed random sample of published stations (so every tile holds
stations and dense cities are asked for more often, as map users do); requests draw
uniformly from it. "Stations per tile" is the mean over the first 20 tiles of the set.

- **raw SQL**: pgbench (`-M prepared`) running the service's own statement
  (`tile_queries.TILE_MVT`, one `ST_AsMVT` over `ST_AsMVTGeom`, filtered on
  `geog::geometry && <buffered tile envelope>` so `ix_station_geom` answers it);
- **API**: `GET /tiles/{{z}}/{{x}}/{{y}}.mvt` through `geo-service serve` (uvicorn, 1 worker,
  pool default), load from {doc['load_tool']}. Each request runs two statements: the feed
  state for the ETag (two index probes) and the tile; no request sends `If-None-Match`, so
  no answer is a 304.

API/raw = API req/s ÷ raw tps. CPU columns: the uvicorn process and the pool's backends in
% of one core, the machine in % of all {info['nproc']} cores, during the API run.

{figures_table(results)}
## How it was run

```sh
.venv/bin/python bench/bench_tiles.py --sizes {args['sizes']} --zooms {args['zooms']} \\
    --seconds {doc['seconds']} --tiles {args['tiles']}
```

The exact load commands (`PORT` is a free port chosen per run):

```sh
{commands}
```

Data ({make_data.__name__}.py, SAMPLE stations clustered around 33 cities):

{data_lines}

Plan of the tile statement (first tile of the first row, `EXPLAIN (ANALYZE, BUFFERS)`):

```
{plan}
```

## Machine

- CPU: {info['cpu']} ({info['nproc']} cores); kernel {info['kernel']}
- memory (`free -g`):

```
{info['free_g']}
```

- PostgreSQL: {info['postgres']}
- PostGIS: {info['postgis']}
- settings: {info['pg_settings']}
- Python {info['python']}; {info['packages']}
- {info['pgbench']}; wrk: {info['wrk']}
"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="vector tiles: raw SQL (pgbench) vs the API (wrk)")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--zooms", default="12,13,14")
    ap.add_argument("--tiles", type=int, default=300, help="distinct tiles per zoom")
    ap.add_argument("--seconds", type=int, default=10, help="measured seconds per run")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up seconds before each run")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="pgbench -j / wrk -t")
    ap.add_argument("--pool-min", type=int, default=None)
    ap.add_argument("--pool-max", type=int, default=None)
    ap.add_argument("--quiet-wait", type=float, default=20.0,
                    help="before each run, wait up to this many seconds for an idle machine")
    ap.add_argument("--max-other-load", type=float, default=10.0,
                    help="re-run a measurement during which others used more than this %% "
                         "of a core")
    ap.add_argument("--retries", type=int, default=1)
    ap.add_argument("--no-report", action="store_true", help="do not write bench/TILES.md")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.zoom_list = [int(z) for z in args.zooms.split(",") if z.strip()]
    sizes = make_data.parse_sizes(args.sizes)
    if not bn.PGBENCH.exists():
        raise SystemExit(f"{bn.PGBENCH} not found (Debian package postgresql-15)")
    make_data.ensure_cluster()
    wrk = bn.ensure_wrk()
    if not wrk:
        print("[tiles] wrk unavailable: using the Python httpx load generator (it competes "
              "with the server for the cores, so API figures are pessimistic)", flush=True)
    bn.OUT.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    data, results = [], []
    for n in sizes:
        d, r = run_size(n, args, wrk)
        data.append(d)
        results.extend(r)
    doc = {"started_utc": started.isoformat(timespec="seconds"),
           "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "seconds": args.seconds, "warmup": args.warmup, "clients": args.clients,
           "threads": args.threads, "load_tool": "wrk" if wrk else "python-httpx",
           "args": {"sizes": args.sizes, "zooms": args.zooms, "tiles": args.tiles},
           "data": data, "results": results}
    RESULTS.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str))
    for r in results:
        print(f"{r['size']:>9} z{r['zoom']}: {_kb(r['sizes']['mean_bytes'])} KB/tile, raw "
              f"{r['raw']['tps']:.0f} tps (p99 {r['raw']['p99_ms']:.1f} ms), API "
              f"{r['api']['rps']:.0f} req/s (p50 {r['api']['p50_ms']:.1f}, p99 "
              f"{r['api']['p99_ms']:.1f} ms), non-200 {r['api']['non200']}")
    if not args.no_report:
        REPORT.write_text(relative(render(doc, machine_info(make_data.db_url(sizes[-1])))))
        print(f"[tiles] wrote {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
