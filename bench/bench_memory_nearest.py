"""Nearest from memory (issue 16): bare PostGIS KNN vs the SQL path vs the memory path.

For each size (a bench database of ``bench/make_data.py``), in one run, 16 clients:

1. **bare PostGIS KNN**: pgbench ``-M prepared`` on a table of only ids and points
   (``bench_bare``, GiST index): ``ORDER BY geog <-> q LIMIT 10``, query points drawn
   from the stations' own mixture (``bench_nearest.point_sets_pgbench``);
2. **the SQL path**: ``geo-service serve --workers N`` (``--workers``, default one per
   core, as the bare KNN's PostgreSQL uses every core) with ``GEO_NEAREST_INDEX=off``, wrk, each
   variant of ``bench_nearest`` (filtered: k=10, open now, microwave; unfiltered: k=10);
3. **the memory path**: the same server with ``GEO_NEAREST_INDEX=on``, after the index
   has loaded (its load time from ``/healthz``); the same wrk runs. Then one more run of
   the first variant, during which a
   writer commits a steady stream of edits (``--edits-per-s``) and a watcher polls
   ``/healthz`` every 10 ms: the freshness lag of an edit is the time from its commit to
   the first poll by which every API process has shown its change number applied (so it
   includes polling and the /healthz round trip under load);
4. memory, per process: bytes per station, as the largest process's resident memory with
   the index loaded minus the same with the index off, over the station count (and the
   index's own count of the bytes it holds).

Writes ``bench/out/memory_results.json`` and the "Nearest from memory" section of
``bench/README.md`` (between markers; ``run_all.py`` keeps it when it re-renders).

Usage::

    .venv/bin/python bench/bench_memory_nearest.py [--sizes 10000,100000,1000000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import sys
import threading
import time
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

import bench_nearest as bn
import make_data
import psycopg

OUT = bn.OUT
README = bn.BENCH / "README.md"
START, END = "<!-- memory-index:start -->", "<!-- memory-index:end -->"

BARE_SETUP = """
CREATE TABLE IF NOT EXISTS bench_bare AS SELECT id, geog FROM station;
CREATE INDEX IF NOT EXISTS bench_bare_geog ON bench_bare USING gist (geog);
ANALYZE bench_bare;
"""


def ensure_bare(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in filter(str.strip, BARE_SETUP.split(";")):
            conn.execute(stmt)


def bare_script() -> str:
    return bn.point_sets_pgbench() + (
        "SELECT id FROM bench_bare ORDER BY geog <-> "
        "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography LIMIT 10;\n")


def healthz(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + "/healthz", timeout=10) as r:
        return dict(json.loads(r.read()))


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def wait_loaded(server: bn.ApiServer, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = healthz(server.base)["nearest_index"]
        if status["state"] == "ready":
            return dict(status)
        if time.monotonic() > deadline:
            raise RuntimeError(f"index not loaded after {timeout_s} s: {status}")
        time.sleep(0.2)


class EditStream:
    """A writer committing ``rate`` station edits a second (each bumps the version, so
    the change feed), and a watcher of ``/healthz`` noting when each is applied."""

    def __init__(self, url: str, base: str, rate: float, n: int) -> None:
        self.url, self.base, self.rate, self.n = url, base, rate, n
        self.committed: dict[int, float] = {}
        self.applied: dict[int, float] = {}
        self.seen: dict[int, dict[int, float]] = {}  # process -> seq -> first seen applied
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.errors = 0

    def _write(self) -> None:
        rng = random.Random(16)
        with psycopg.connect(self.url, autocommit=True) as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM station TABLESAMPLE SYSTEM (5) "
                                              "LIMIT 5000")]
            next_t = time.monotonic()
            while not self.stop.is_set():
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(73050001)")
                    row = conn.execute(
                        "UPDATE station SET last_verified_on = current_date - %s, "
                        "version = version + 1 WHERE id = %s RETURNING change_seq",
                        (rng.randint(0, 999), rng.choice(ids))).fetchone()
                t = time.monotonic()
                if row:
                    with self.lock:
                        self.committed[int(row[0])] = t
                next_t += 1.0 / self.rate
                time.sleep(max(0.0, next_t - time.monotonic()))

    def _watch(self) -> None:
        """Each poll reaches one API process (a new connection each time); an edit counts
        as applied when every process seen has shown it applied: the slowest one's lag."""
        while not self.stop.is_set():
            try:
                status = healthz(self.base)["nearest_index"]
                seq, process = int(status["applied_seq"]), int(status["process"])
            except (OSError, ValueError, KeyError):
                self.errors += 1
                continue
            t = time.monotonic()
            with self.lock:
                seen = self.seen.setdefault(process, {})
                for s in self.committed:
                    if s <= seq and s not in seen:
                        seen[s] = t
                for s in self.committed:
                    if s not in self.applied and all(s in by for by in self.seen.values()):
                        self.applied[s] = max(by[s] for by in self.seen.values())
            time.sleep(0.01)

    def __enter__(self) -> EditStream:
        self.threads = [threading.Thread(target=self._write), threading.Thread(target=self._watch)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(1.5)  # the last edits get time to show up (or count as unapplied)
        self.stop.set()
        for t in self.threads:
            t.join()

    def summary(self) -> dict[str, Any]:
        lags = sorted((self.applied[s] - t) * 1000 for s, t in self.committed.items()
                      if s in self.applied)
        return {
            "edits": len(self.committed), "applied": len(lags), "rate_per_s": self.rate,
            "p50_ms": bn._percentile([round(x) for x in lags], 50) if lags else None,
            "p99_ms": bn._percentile([round(x) for x in lags], 99) if lags else None,
            "max_ms": round(lags[-1], 1) if lags else None,
            "watch_errors": self.errors, "processes_seen": len(self.seen),
        }


def run_api(server: bn.ApiServer, wrk: str | None, variant: bn.Variant, args: argparse.Namespace,
            dbname: str, work: Path) -> dict[str, Any]:
    lua = work / f"nearest_{variant.name}.lua"
    lua.write_text(bn.wrk_script(variant))
    if wrk:
        bn.run_wrk(wrk, server, lua, args.warmup, args.clients, args.threads, dbname)
        return bn._measured(partial(bn.run_wrk, wrk, server, lua, args.seconds, args.clients,
                                    args.threads, dbname), args, f"{dbname} {variant.name}")
    bn.run_py_load(server, variant, args.warmup, args.clients, dbname)
    return bn._measured(partial(bn.run_py_load, server, variant, args.seconds, args.clients,
                                dbname), args, f"{dbname} {variant.name}")


def run_size(n: int, args: argparse.Namespace, wrk: str | None) -> dict[str, Any]:
    data = make_data.build(n)
    dbname, url = make_data.db_name(n), make_data.db_url(n)
    work = OUT / dbname
    work.mkdir(parents=True, exist_ok=True)
    ensure_bare(url)
    script = work / "bare_knn.pgbench"
    script.write_text(bare_script())
    bn.wait_quiet(args.quiet_wait)
    bn.run_pgbench(dbname, script, {}, args.warmup, args.clients, args.threads, work)
    bare = bn._measured(partial(bn.run_pgbench, dbname, script, {}, args.seconds, args.clients,
                                args.threads, work), args, f"{dbname} bare KNN")
    print(f"[memory] {dbname} bare KNN: {bare['tps']:.0f} tps, p99 {bare['p99_ms']:.1f} ms",
          flush=True)
    variants = [bn.VARIANTS[v.strip()] for v in args.variants.split(",") if v.strip()]
    out: dict[str, Any] = {"size": n, "db": dbname, "data": data, "bare": bare,
                           "sql": {}, "memory": {}}
    for path in ("sql", "memory"):
        server = bn.ApiServer(url, work, args.pool_min, args.pool_max, args.workers)
        server.env["GEO_NEAREST_INDEX"] = "off" if path == "sql" else "on"
        with server:
            if path == "memory":
                status = wait_loaded(server, args.load_timeout)
                out["index"] = status
                print(f"[memory] {dbname} index loaded: {status['stations']} stations in "
                      f"{status['load_s']} s, {status['bytes'] / status['stations']:.0f} B "
                      "per station (own count)", flush=True)
            for variant in variants:
                bn.smoke_check(server, variant)
                res = run_api(server, wrk, variant, args, dbname, work)
                out[path][variant.name] = res
                print(f"[memory] {dbname} {path} {variant.name}: {res['rps']:.0f} req/s, "
                      f"p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, non-200 "
                      f"{res['non200']}", flush=True)
            if path == "memory":
                # Freshness in a run of its own (the first variant's load, plus the edits
                # and the watcher's /healthz polls), so that neither disturbs the rates above.
                with EditStream(url, server.base, args.edits_per_s, n) as edits:
                    res = run_api(server, wrk, variants[0], args, dbname, work)
                res["freshness"] = edits.summary()
                out["under_edits"] = res
                print(f"[memory] {dbname} memory {variants[0].name} under edits: "
                      f"{res['rps']:.0f} req/s, p99 {res['p99_ms']:.1f} ms, lag "
                      f"{res['freshness']}", flush=True)
            # Per process: the largest (each worker holds its own index).
            out[f"{path}_rss_bytes"] = max(rss_bytes([pid]) for pid in server.pids())
            if path == "memory":
                out["index_after"] = healthz(server.base)["nearest_index"]
    out["bytes_per_station_rss"] = (out["memory_rss_bytes"] - out["sql_rss_bytes"]) / n
    return out


HEAD_PATHS = ("| stations | variant | bare KNN tps | SQL req/s | p50 ms | p99 ms | memory req/s "
              "| p50 ms | p99 ms | ratio | other load |\n"
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
HEAD_INDEX = ("| stations | load | B/station (RSS) | B/station (own count) | RSS | edits "
              "| lag p50 / p99 / max | req/s, p99 meanwhile | answers |\n"
              "|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def _f(x: float | None, d: int = 1) -> str:
    return "–" if x is None else f"{x:,.{d}f}"


def render(doc: dict[str, Any]) -> str:
    rows = []
    for r in doc["results"]:
        bare = r["bare"]
        for v in doc["variants"]:
            s, m = r["sql"][v], r["memory"][v]
            rows.append(
                f"| {r['size']:,} | {v} | {bare['tps']:,.0f} | {s['rps']:,.0f} | "
                f"{_f(s['p50_ms'])} | {_f(s['p99_ms'])} | **{m['rps']:,.0f}** | "
                f"{_f(m['p50_ms'])} | **{_f(m['p99_ms'])}** | {m['rps'] / bare['tps']:.2f}× | "
                f"{_f(max(s['foreign_cpu_pct'], m['foreign_cpu_pct']), 0)}% |")
    mem_rows = []
    for r in doc["results"]:
        idx, during = r["index"], r.get("under_edits", {})
        fr = during.get("freshness", {})
        mem_rows.append(
            f"| {r['size']:,} | {_f(idx['load_s'], 2)} s | {r['bytes_per_station_rss']:,.0f} | "
            f"{idx['bytes'] / max(1, idx['stations']):,.0f} | "
            f"{r['memory_rss_bytes'] / 2**20:,.0f} MB | {fr.get('edits', 0)} at "
            f"{fr.get('rate_per_s', 0):g}/s | {_f(fr.get('p50_ms'), 0)} / "
            f"{_f(fr.get('p99_ms'), 0)} / {_f(fr.get('max_ms'), 0)} ms | "
            f"{_f(during.get('rps'), 0)}, {_f(during.get('p99_ms'))} ms | "
            f"{r['index_after'].get('answers', {})} |")
    return f"""{START}
## Nearest from memory (issue 16)

Measured {doc['started_utc']} – {doc['finished_utc']} on {doc['machine']} with
`{doc['command']}` ({doc['clients']} clients, closed loop, {doc['seconds']} s per run after a
{doc['warmup']} s warm-up, load tool {doc['load_tool']}). The last column is the CPU (% of
one core) that processes other than the bench's used during the noisier of the two API runs;
the bench re-runs a disturbed measurement up to {doc['retries']} times and keeps the least
disturbed one.

Bare KNN: pgbench `-M prepared`, `SELECT id FROM bench_bare ORDER BY geog <-> q LIMIT 10` on a
table of only ids and points (PostgreSQL uses every core). SQL path: `geo-service serve
--workers {doc.get('workers', 1)}` with `GEO_NEAREST_INDEX=off`. Memory path: the same server
with the index on, loaded in each of its {doc.get('workers', 1)} processes. Variants as in the
figures above (filtered:
k=10, `open_now=true`, `amenities=microwave`; unfiltered: k=10). Ratio: memory path ÷ bare KNN.

{HEAD_PATHS}
{chr(10).join(rows)}

Index, per API process (each holds its own): load time (server start to ready, from
`/healthz`), bytes per station (resident memory of the largest process with the index loaded
minus the same with it off, over the stations; and the index's own count of its arrays, tree
and blobs), the largest process's resident size, and freshness lag under a steady stream of
edits committed during an extra memory-path run of the first variant after the measured ones
(commit → the change number shown applied by `/healthz` in every process, polled every 10 ms,
each poll reaching one process: the slowest process's lag, p50 / p99 / max), with that run's
rate and p99 (it also serves the watcher, ~100 `/healthz` requests a second, and the index
applies the edits, so they are not in the table above).
Answers: how many nearest requests the memory server answered from memory and from SQL
(warm-ups and smoke checks included).

{HEAD_INDEX}
{chr(10).join(mem_rows)}

Targets at 1M (issue 16): memory path ≥ 1.0× the bare KNN rate and p99 ≤ 25 ms; under 500 MB
per process. Raw results: `bench/out/memory_results.json`.
{END}"""


def write_readme(section: str) -> None:
    text = README.read_text() if README.exists() else ""
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = bn.build_parser()
    ap.description = "nearest: bare KNN vs SQL path vs memory path"
    ap.set_defaults(quiet_wait=20.0)
    ap.add_argument("--edits-per-s", type=float, default=20.0)
    ap.add_argument("--load-timeout", type=float, default=900.0)
    ap.set_defaults(workers=os.cpu_count() or 1)  # both servers: one process per core
    args = ap.parse_args(argv)
    make_data.ensure_cluster()
    wrk = bn.ensure_wrk()
    started = dt.datetime.now(dt.UTC)
    results: list[dict[str, Any]] = []
    for n in make_data.parse_sizes(args.sizes):
        results.append(run_size(n, args, wrk))
        write(args, argv, wrk, started, results)  # each size as soon as it is measured
    return 0


def write(args: argparse.Namespace, argv: list[str] | None, wrk: str | None,
          started: dt.datetime, results: list[dict[str, Any]]) -> None:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    doc = {
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores ({cpu}), {platform.platform()}",
        "command": "bench/bench_memory_nearest.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "clients": args.clients, "seconds": args.seconds, "warmup": args.warmup,
        "workers": args.workers,
        "retries": args.retries, "load_tool": "wrk" if wrk else "python-httpx",
        "variants": [v.strip() for v in args.variants.split(",") if v.strip()],
        "results": results,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "memory_results.json").write_text(json.dumps(doc, indent=2, default=str))
    write_readme(bn_relative(render(doc)))
    print(f"[memory] wrote {README} and {OUT / 'memory_results.json'}", flush=True)


def bn_relative(text: str) -> str:
    return re.sub(re.escape(str(bn.ROOT)) + "/", "", text)


if __name__ == "__main__":
    raise SystemExit(main())
