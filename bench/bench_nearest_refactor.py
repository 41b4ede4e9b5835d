"""Nearest from memory before and after a change, in one run (issue 25).

The memory path's rate depends on the machine's other load as much as on the code, so
figures from two different runs cannot say whether a change cost anything. This bench
serves the same bench database with two checkouts of the service - a reference commit
(``--ref``: a directory with its source, e.g. ``git worktree add /tmp/nearest-before
3adf263``) and this one - one after the other, alternating (A B A B ...), each server with
the memory index on and loaded, under the same wrk load, and records every run with the
machine's load average and the CPU other processes used meanwhile.

The reference runs with this checkout's virtualenv and ``PYTHONPATH`` pointing at its
source (which comes before the editable install), so only the service's own code differs;
the module each server imports is printed and recorded.

Writes ``bench/out/nearest_refactor.json`` and ``bench/NEAREST_REFACTOR.md``.

Usage::

    .venv/bin/python bench/bench_nearest_refactor.py --ref /tmp/nearest-before \\
        [--size 100000] [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import bench_nearest as bn
import make_data
from bench_memory_nearest import wait_loaded

OUT = bn.OUT
REPORT = bn.BENCH / "NEAREST_REFACTOR.md"


def imported_from(pythonpath: str | None) -> str:
    """Where ``geo_service`` comes from for a server started with ``pythonpath``."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run([sys.executable, "-c", "import geo_service; print(geo_service.__file__)"],
                         env=env, capture_output=True, text=True, check=True, cwd="/")
    return out.stdout.strip()


def one_server(label: str, pythonpath: str | None, url: str, work: Path, wrk: str,
               variants: list[bn.Variant], args: argparse.Namespace,
               dbname: str) -> list[dict[str, Any]]:
    server = bn.ApiServer(url, work, None, None, args.workers)
    server.env["GEO_NEAREST_INDEX"] = "on"
    if pythonpath:
        server.env["PYTHONPATH"] = pythonpath
    out = []
    with server:
        status = wait_loaded(server, args.load_timeout)
        for variant in variants:
            bn.smoke_check(server, variant)
            lua = work / f"refactor_{variant.name}.lua"
            lua.write_text(bn.wrk_script(variant))
            bn.run_wrk(wrk, server, lua, args.warmup, args.clients, args.threads, dbname)
            load1 = os.getloadavg()[0]
            res = bn.run_wrk(wrk, server, lua, args.seconds, args.clients, args.threads, dbname)
            res.update(code=label, variant=variant.name, loadavg_1m_before=round(load1, 2),
                       index_stations=status["stations"])
            print(f"[refactor] {label} {variant.name}: {res['rps']:.0f} req/s, p50 "
                  f"{res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, non-200 "
                  f"{res['non200']}, load {load1:.1f}, other CPU {res['foreign_cpu_pct']:.0f}%",
                  flush=True)
            out.append(res)
    return out


def render(doc: dict[str, Any]) -> str:
    rows = [f"| {r['round']} | {r['code']} | {r['variant']} | **{r['rps']:,.0f}** | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['non200']} | "
            f"{r['loadavg_1m_before']:.1f} | {r['foreign_cpu_pct']:.0f}% |"
            for r in doc["runs"]]
    summary = []
    for v in doc["variants"]:
        by = {c: [r["rps"] for r in doc["runs"] if r["variant"] == v and r["code"] == c]
              for c in ("before", "after")}
        b, a = statistics.median(by["before"]), statistics.median(by["after"])
        summary.append(f"| {v} | {b:,.0f} | {a:,.0f} | {a / b:.2f}× |")
    return f"""# Nearest from memory: before and after the issue-25 refactor

Measured {doc['started_utc']} – {doc['finished_utc']} on {doc['machine']} with
`{doc['command']}`: {doc['size']:,} stations (`bench/make_data.py`), `geo-service serve
--workers {doc['workers']}` with `GEO_NEAREST_INDEX=on`, index loaded; wrk, {doc['clients']}
clients, {doc['threads']} threads, {doc['seconds']} s per run after a {doc['warmup']} s
warm-up, the query points of `bench_nearest` (filtered: k=10, `open_now=true`,
`amenities=microwave`; unfiltered: k=10). Before: `{doc['ref_commit']}`, imported from
`{doc['ref_module']}`; after: `{doc['commit']}`, imported from `{doc['module']}`. The two
alternate in each round (before, then after), against the same database.

The machine is shared (2 cores; other sessions ran test suites meanwhile): the load average
before each run and the CPU other processes used during it (% of one core) are listed; read
the rates next to them.

| round | code | variant | req/s | p50 ms | p99 ms | non-200 | load (1 min) | other CPU |
|---:|---|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Median over the rounds:

| variant | before req/s | after req/s | after ÷ before |
|---|---:|---:|---:|
{chr(10).join(summary)}

Raw results: `bench/out/nearest_refactor.json`.
"""


def git_commit(cwd: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True,
                          text=True, check=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", required=True, help="source directory of the reference commit")
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--variants", default="unfiltered,filtered")
    ap.add_argument("--load-timeout", type=float, default=300.0)
    args = ap.parse_args(argv)
    wrk = bn.ensure_wrk()
    if not wrk:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    variants = [bn.VARIANTS[v.strip()] for v in args.variants.split(",") if v.strip()]
    make_data.build(args.size)
    dbname, url = make_data.db_name(args.size), make_data.db_url(args.size)
    work = OUT / dbname
    work.mkdir(parents=True, exist_ok=True)
    ref = str(Path(args.ref).resolve())
    codes = {"before": ref, "after": None}
    modules = {label: imported_from(path) for label, path in codes.items()}
    print(f"[refactor] before imports {modules['before']}; after imports {modules['after']}",
          flush=True)
    if modules["before"] == modules["after"]:
        raise SystemExit("both servers would run the same code")
    started = dt.datetime.now(dt.UTC)
    runs = []
    for round_ in range(1, args.rounds + 1):
        for label, path in codes.items():
            for res in one_server(label, path, url, work, wrk, variants, args, dbname):
                res["round"] = round_
                runs.append(res)
    doc = {
        "started_utc": started.strftime("%Y-%m-%d %H:%M UTC"),
        "finished_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node() or 'host'} ({os.cpu_count()} cores, "
                   f"{platform.machine()}, Python {platform.python_version()})",
        "command": "python bench/bench_nearest_refactor.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "size": args.size, "rounds": args.rounds, "seconds": args.seconds,
        "warmup": args.warmup, "clients": args.clients, "threads": args.threads,
        "workers": args.workers, "variants": [v.name for v in variants],
        "ref_commit": git_commit(ref), "commit": git_commit(str(bn.BENCH.parent)),
        "ref_module": modules["before"], "module": modules["after"], "runs": runs,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "nearest_refactor.json").write_text(json.dumps(doc, indent=2))
    REPORT.write_text(render(doc))
    print(f"[refactor] wrote {REPORT}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
