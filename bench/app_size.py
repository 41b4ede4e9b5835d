"""Benchmark the phone app's offline half: snapshot bytes and on-phone nearest time.

What is measured (one run each):

(a) the body of ``GET /v1/app/snapshot?lon&lat&n=N`` for N = 1,000 and 10,000 stations,
    raw JSON and gzip (level 6, what the endpoint sends to a client that accepts gzip);
(b) ``nearestOffline`` of ``geo_service/app/static/offline.js`` in node over the
    1,000-station snapshot: mean time per query over 500 random points near the
    centre, k = 5, open now (the phone's work between the location fix and the list).

The stations are SYNTHETIC: N points in a 0.2 x 0.2 degree box around Sanya, names
drawn from a few district, street and host words plus a number (so the names are
neither unique prose nor one repeated string), hours from seven common rules (weekly,
workday-calendar and unknown), amenities from five sets, about one in ten temporarily
closed. Real names are longer and more varied; expect real gzip sizes above these.

Runs in its own database (``geo_bench_app``) on the project-local cluster; never in
``make test``. Usage::

    .venv/bin/python bench/app_size.py
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import platform
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from geo_service.domain.coords import Crs  # noqa: E402
from geo_service.domain.schemas import StationCreate  # noqa: E402
from geo_service.infra.db import migrate  # noqa: E402
from geo_service.infra.settings import Settings  # noqa: E402
from geo_service.stations import queries as q  # noqa: E402
from geo_service.stations.service import to_record  # noqa: E402
from geo_service.web.app import create_app  # noqa: E402

DB = "geo_bench_app"
REPORT = ROOT / "bench" / "APP.md"
HARNESS = ROOT / "tests" / "app" / "nearest_offline.mjs"
CENTRE = (109.51, 18.25)
HOURS = ["24/7", "Mo-Fr 08:00-18:00", None, "Mo-Su 07:00-21:00",
         "Mo-Fr 08:00-18:00 || unknown", "Sa,Su 09:00-17:00", "Mo-Su 08:00-20:00; PH off"]
AMENITIES = [["microwave", "restroom"], ["restroom"], ["water_dispenser", "phone_charging"],
             ["microwave", "restroom", "water_dispenser", "phone_charging", "seating"], []]
DISTRICTS = ["天涯", "吉阳", "海棠", "崖州", "凤凰", "鹿回头", "河西", "河东"]
STREETS = ["解放路", "新风街", "榆亚路", "迎宾路", "三亚湾路", "胜利路", "凤凰路", "月川"]
HOSTS = ["社区服务中心", "银行网点", "加油站", "工会服务站", "环卫工人休息室", "快递驿站"]


def bench_db(server: str, name: str = DB) -> str:
    """A new, empty database ``name`` on the server; its URL."""
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server)
    params["dbname"] = name
    return make_conninfo("", **params)


def _bodies(n: int, rnd: random.Random) -> list[dict[str, Any]]:
    return [{
        "code": f"460200-{i:06d}",
        "name": f"【示例】{rnd.choice(DISTRICTS)}{rnd.choice(STREETS)}{rnd.choice(HOSTS)}"
                f"{rnd.randrange(1, 300)}号",
        "lon": round(CENTRE[0] + rnd.uniform(-0.1, 0.1), 7),
        "lat": round(CENTRE[1] + rnd.uniform(-0.1, 0.1), 7),
        "host_type": "union_built", "sample": True,
        "status": "temporarily_closed" if rnd.random() < 0.1 else "open",
        "opening_hours": rnd.choice(HOURS), "amenities": rnd.choice(AMENITIES),
    } for i in range(n)]


def load_stations(url: str, n: int) -> None:
    """``n`` SYNTHETIC stations around Sanya (see the module docstring)."""
    records = [to_record(StationCreate.model_validate(b).model_dump(), Crs.WGS84)
               for b in _bodies(n, random.Random(14))]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE station RESTART IDENTITY CASCADE")
        cur.executemany(q.INSERT_STATION, records)


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def main() -> int:
    url = bench_db(Settings().resolved_database_url())
    migrate(url)
    sizes: dict[int, tuple[int, int]] = {}
    snap_1000: dict[str, Any] = {}
    for n in (1000, 10_000):
        load_stations(url, n)
        with TestClient(create_app(Settings(database_url=url))) as client:
            r = client.get("/v1/app/snapshot", headers={"Accept-Encoding": "identity"},
                           params={"lon": CENTRE[0], "lat": CENTRE[1], "n": n})
            assert r.status_code == 200, r.text
            raw = r.content
        sizes[n] = (len(raw), len(gzip.compress(raw, compresslevel=6, mtime=0)))
        if n == 1000:
            snap_1000 = json.loads(raw)
        print(f"snapshot n={n}: {sizes[n][0]:,} B raw, {sizes[n][1]:,} B gzip")
    rnd = random.Random(7)
    at = dt.datetime.now(dt.UTC).isoformat()
    queries = [{"lon": CENTRE[0] + rnd.uniform(-0.1, 0.1),
                "lat": CENTRE[1] + rnd.uniform(-0.1, 0.1),
                "k": 5, "openNow": True, "at": at} for _ in range(500)]
    node = shutil.which("node")
    assert node is not None
    out = subprocess.run([node, "--no-warnings", str(HARNESS)], check=True, capture_output=True,
                         input=json.dumps({"snapshot": snap_1000, "queries": queries}).encode())
    ms = json.loads(out.stdout)["ms_per_query"]
    node_v = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"nearestOffline over 1,000 stations: {ms:.2f} ms per query (node {node_v})")
    lines = [
        "# Phone app, offline half: snapshot size and on-phone nearest",
        "",
        f"Command: `.venv/bin/python bench/app_size.py` — {dt.date.today()}, {_machine()}, "
        f"node {node_v}. SYNTHETIC stations (see the script's docstring): real names vary "
        "more, so real gzip sizes will be larger.",
        "",
        "| stations | snapshot raw | snapshot gzip (level 6) | gzip bytes / station |",
        "|---:|---:|---:|---:|",
        *[f"| {n:,} | {a:,} B | {b:,} B | {b / n:.1f} |" for n, (a, b) in sizes.items()],
        "",
        f"`nearestOffline` (offline.js, Karney geodesics for every station in the snapshot, "
        f"open-now from the compiled hours), 1,000 stations, k = 5, open now: "
        f"**{ms:.2f} ms per query** (mean of 500 random points, node on this machine; a "
        "phone is slower, perhaps 3-10x).",
        "",
        "The target of issue 14 is at most 200 KB for 1,000 stations.",
    ]
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
