"""Build (or reuse) the benchmark databases: 10k, 100k and 1M synthetic SAMPLE stations.

Each size lives in its own database on the project-local cluster (``geo_bench_10k``,
``geo_bench_100k``, ``geo_bench_1m``); the ``geo`` database used by ``make run`` is never
touched. A database is migrated with the project's own migrations, then filled by COPY
with precompiled opening hours (each distinct rule is compiled once with
``geo_service.hours.compiler.compile_hours``). A database is reused when its station count and its
generator fingerprint (seed, generator version) match.

Every station is labelled sample data: ``sample = true``, names start with ``【示例】`` /
``[SAMPLE]``, codes are ``BENCH-0000001``… Nothing here is a real station.

Usage::

    .venv/bin/python bench/make_data.py [--sizes 10000,100000,1000000] [--force]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from geo_service.domain.catalogue import AMENITIES, HostType  # noqa: E402
from geo_service.hours.compiler import compile_hours, validate_hours  # noqa: E402
from geo_service.infra.localdb import PG_BIN, LocalCluster  # noqa: E402

SEED = 20261122
GENERATOR_VERSION = "1"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)

#: The extent query points are drawn from (and most stations fall in).
LON_MIN, LON_MAX, LAT_MIN, LAT_MAX = 98.0, 122.0, 20.0, 42.0
#: Eastern provinces, which get an extra uniform layer.
EAST = (108.0, 122.0, 22.0, 40.0)
#: Mixture weights of the three layers: uniform over the box, uniform over the east,
#: clusters around city centres.
W_UNIFORM, W_EAST, W_CITY = 0.25, 0.15, 0.60


@dataclass(frozen=True)
class City:
    name: str
    province: str
    province_code: str
    city_code: str
    lon: float
    lat: float
    weight: float  # relative share of the clustered stations
    sigma: float  # spread of the cluster, degrees


#: Approximate centres of 33 large cities inside the extent (public knowledge); the
#: clusters around them are synthetic.
CITIES: tuple[City, ...] = (
    City("北京市", "北京市", "110000", "110100", 116.40, 39.90, 10, 0.35),
    City("上海市", "上海市", "310000", "310100", 121.47, 31.23, 10, 0.30),
    City("广州市", "广东省", "440000", "440100", 113.26, 23.13, 8, 0.30),
    City("深圳市", "广东省", "440000", "440300", 114.06, 22.54, 8, 0.20),
    City("东莞市", "广东省", "440000", "441900", 113.75, 23.02, 4, 0.15),
    City("佛山市", "广东省", "440000", "440600", 113.12, 23.02, 4, 0.15),
    City("成都市", "四川省", "510000", "510100", 104.07, 30.57, 7, 0.30),
    City("重庆市", "重庆市", "500000", "500100", 106.55, 29.56, 7, 0.40),
    City("武汉市", "湖北省", "420000", "420100", 114.31, 30.59, 6, 0.30),
    City("杭州市", "浙江省", "330000", "330100", 120.16, 30.27, 6, 0.25),
    City("宁波市", "浙江省", "330000", "330200", 121.55, 29.87, 3, 0.20),
    City("南京市", "江苏省", "320000", "320100", 118.80, 32.06, 5, 0.25),
    City("苏州市", "江苏省", "320000", "320500", 120.59, 31.30, 5, 0.20),
    City("无锡市", "江苏省", "320000", "320200", 120.31, 31.49, 3, 0.15),
    City("天津市", "天津市", "120000", "120100", 117.20, 39.08, 5, 0.30),
    City("西安市", "陕西省", "610000", "610100", 108.94, 34.34, 5, 0.30),
    City("长沙市", "湖南省", "430000", "430100", 112.94, 28.23, 4, 0.25),
    City("郑州市", "河南省", "410000", "410100", 113.63, 34.75, 5, 0.25),
    City("青岛市", "山东省", "370000", "370200", 120.38, 36.07, 4, 0.25),
    City("济南市", "山东省", "370000", "370100", 117.00, 36.65, 3, 0.25),
    City("大连市", "辽宁省", "210000", "210200", 121.61, 38.91, 3, 0.20),
    City("合肥市", "安徽省", "340000", "340100", 117.23, 31.82, 4, 0.25),
    City("福州市", "福建省", "350000", "350100", 119.30, 26.08, 3, 0.20),
    City("厦门市", "福建省", "350000", "350200", 118.09, 24.48, 2, 0.15),
    City("昆明市", "云南省", "530000", "530100", 102.83, 24.88, 3, 0.25),
    City("南宁市", "广西壮族自治区", "450000", "450100", 108.37, 22.82, 3, 0.25),
    City("贵阳市", "贵州省", "520000", "520100", 106.63, 26.65, 2, 0.20),
    City("南昌市", "江西省", "360000", "360100", 115.86, 28.68, 3, 0.20),
    City("石家庄市", "河北省", "130000", "130100", 114.51, 38.04, 3, 0.25),
    City("太原市", "山西省", "140000", "140100", 112.55, 37.87, 2, 0.20),
    City("兰州市", "甘肃省", "620000", "620100", 103.83, 36.06, 2, 0.20),
    City("海口市", "海南省", "460000", "460100", 110.20, 20.04, 1, 0.15),
    City("呼和浩特市", "内蒙古自治区", "150000", "150100", 111.75, 40.84, 1, 0.20),
)

#: (rule, share). Every rule is weekday/clock only, so it compiles to ``weekly``.
HOURS_RULES: tuple[tuple[str, float], ...] = (
    ("24/7", 0.40),
    ("Mo-Su 07:00-21:00", 0.20),
    ("Mo-Fr 08:00-18:00; Sa,Su 09:00-17:00", 0.15),
    ("Mo-Su 06:00-22:00", 0.10),
    ("Mo-Fr 09:00-17:00", 0.05),
    ("Mo-Sa 08:00-20:00", 0.05),
    ("Mo-Su 05:30-23:30", 0.05),
)

STATUSES: tuple[tuple[str, float], ...] = (
    ("open", 0.90), ("temporarily_closed", 0.04), ("planned", 0.03), ("closed", 0.02),
    ("duplicate", 0.01),
)

HOST_TYPES: tuple[tuple[str, float], ...] = (
    (HostType.UNION_BUILT.value, 0.30), (HostType.PARTY_SERVICE_CENTRE.value, 0.20),
    (HostType.SANITATION_DEPOT.value, 0.15), (HostType.ENTERPRISE.value, 0.15),
    (HostType.BANK_BRANCH.value, 0.12), (HostType.VOLUNTEER.value, 0.05),
    (HostType.MOBILE.value, 0.03),
)

#: Probability that a station has each amenity (ten ones are common, extras rarer).
AMENITY_P: dict[str, float] = {
    "indoor_rest": 0.90, "seating": 0.95, "microwave": 0.60, "water_dispenser": 0.90,
    "restroom": 0.70, "first_aid_kit": 0.80, "book_rack": 0.60, "phone_charging": 0.85,
    "refrigerator": 0.50, "umbrella_stand": 0.60,
}
EXTRA_P = 0.20

COPY_COLUMNS = (
    "code", "name", "name_en", "address", "province", "province_code", "city", "city_code",
    "geog", "host_type", "status", "opening_hours", "hours_kind", "open_minutes",
    "open_periods", "phone", "floor_area_m2", "seats", "opened_on", "amenity_mask",
    "last_verified_on", "sample",
)


def size_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def db_name(n: int) -> str:
    return f"geo_bench_{size_label(n)}"


def db_url(n: int) -> str:
    cluster = LocalCluster.default()
    return f"postgresql://geo@/{db_name(n)}?host={cluster.sockdir}"


def parse_sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        mult = 1
        if part.endswith("k"):
            mult, part = 1000, part[:-1]
        elif part.endswith("m"):
            mult, part = 1_000_000, part[:-1]
        out.append(int(float(part) * mult))
    return out


def fingerprint() -> str:
    return f"seed={SEED};v={GENERATOR_VERSION}"


# --------------------------------------------------------------------------- generation


def _choice(rng: np.random.Generator, n: int, table: tuple[tuple[str, float], ...]) -> np.ndarray:
    p = np.array([w for _, w in table], dtype=float)
    return rng.choice(len(table), size=n, p=p / p.sum())


def generate_points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lon, lat and city index (-1 for the uniform layers) of ``n`` stations."""
    layer = rng.choice(3, size=n, p=[W_UNIFORM, W_EAST, W_CITY])
    lon = np.empty(n)
    lat = np.empty(n)
    city = np.full(n, -1, dtype=np.int64)

    m = layer == 0
    lon[m] = rng.uniform(LON_MIN, LON_MAX, m.sum())
    lat[m] = rng.uniform(LAT_MIN, LAT_MAX, m.sum())
    m = layer == 1
    lon[m] = rng.uniform(EAST[0], EAST[1], m.sum())
    lat[m] = rng.uniform(EAST[2], EAST[3], m.sum())
    m = layer == 2
    k = int(m.sum())
    weights = np.array([c.weight for c in CITIES])
    idx = rng.choice(len(CITIES), size=k, p=weights / weights.sum())
    sig = np.array([c.sigma for c in CITIES])[idx]
    # Clipped normal: clusters thin out smoothly, no far-flung outliers.
    dx = np.clip(rng.standard_normal(k), -3, 3) * sig
    dy = np.clip(rng.standard_normal(k), -3, 3) * sig
    lon[m] = np.array([c.lon for c in CITIES])[idx] + dx
    lat[m] = np.array([c.lat for c in CITIES])[idx] + dy
    city[m] = idx
    return lon, lat, city


def generate_copy_text(n: int, out: io.StringIO) -> None:
    """Write ``n`` stations as COPY text (tab separated, ``\\N`` for NULL)."""
    rng = np.random.default_rng(SEED)
    lon, lat, city = generate_points(rng, n)

    rules = [(validate_hours(r), compile_hours(r)) for r, _ in HOURS_RULES]
    for (rule, _), (_, compiled) in zip(HOURS_RULES, rules, strict=True):
        if compiled.kind != "weekly":
            raise SystemExit(f"bench hours rule {rule!r} did not compile to weekly")
    rule_text = [r for r, _ in rules]
    rule_ranges = ["{" + ",".join(f"[{s},{e})" for s, e in c.weekly) + "}" for _, c in rules]
    rule_idx = _choice(rng, n, HOURS_RULES)
    status_idx = _choice(rng, n, STATUSES)
    host_idx = _choice(rng, n, HOST_TYPES)

    masks = np.zeros(n, dtype=np.int64)
    for a in AMENITIES:
        p = AMENITY_P.get(a.code, EXTRA_P)
        masks |= (rng.random(n) < p).astype(np.int64) << a.bit

    area = np.round(rng.uniform(10, 200, n), 1)
    seats = rng.integers(2, 60, n)
    opened = rng.integers(0, 8 * 365, n)  # days after 2018-01-01
    verified = rng.integers(0, 365, n)  # days after 2025-11-01
    phone = rng.integers(10_000_000, 99_999_999, n)
    house = rng.integers(1, 999, n)
    base_open = np.datetime64("2018-01-01")
    base_ver = np.datetime64("2025-11-01")
    opened_s = (base_open + opened.astype("timedelta64[D]")).astype(str)
    verified_s = (base_ver + verified.astype("timedelta64[D]")).astype(str)

    statuses = [s for s, _ in STATUSES]
    hosts = [h for h, _ in HOST_TYPES]
    nul = "\\N"
    write = out.write
    lon_l, lat_l, city_l = lon.tolist(), lat.tolist(), city.tolist()
    rule_l, status_l, host_l = rule_idx.tolist(), status_idx.tolist(), host_idx.tolist()
    mask_l, area_l, seats_l = masks.tolist(), area.tolist(), seats.tolist()
    phone_l, house_l = phone.tolist(), house.tolist()
    for i in range(n):
        num = i + 1
        c = city_l[i]
        if c >= 0:
            ct = CITIES[c]
            province, pcode, cname, ccode = ct.province, ct.province_code, ct.name, ct.city_code
            address = f"{ct.name}示例路{house_l[i]}号"
        else:
            province = pcode = cname = ccode = nul
            address = f"示例乡道{house_l[i]}号"
        r = rule_l[i]
        write(
            f"BENCH-{num:07d}\t【示例】基准测试站点{num:07d}\t[SAMPLE] Bench station {num:07d}\t"
            f"{address}\t{province}\t{pcode}\t{cname}\t{ccode}\t"
            f"SRID=4326;POINT({lon_l[i]:.6f} {lat_l[i]:.6f})\t"
            f"{hosts[host_l[i]]}\t{statuses[status_l[i]]}\t{rule_text[r]}\tweekly\t"
            f"{rule_ranges[r]}\t{nul}\t0898-{phone_l[i]}\t{area_l[i]}\t{seats_l[i]}\t"
            f"{opened_s[i]}\t{mask_l[i]}\t{verified_s[i]}\tt\n"
        )


# --------------------------------------------------------------------------- databases


def psql(sql: str, db: str = "postgres") -> str:
    return LocalCluster.default().psql(sql, db)


def ensure_cluster() -> None:
    cluster = LocalCluster.default()
    if not cluster.running():
        cluster.start()


def ensure_database(name: str) -> None:
    if name == "geo":
        raise SystemExit("refusing to use the project's own 'geo' database for benchmarks")
    LocalCluster.default().ensure_database(name)


def station_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM station").fetchone()
        return int(row[0]) if row else 0


def stored_fingerprint(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('bench_meta') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("SELECT value FROM bench_meta WHERE key = 'fingerprint'").fetchone()
        return str(row[0]) if row else None


def load(url: str, n: int) -> dict[str, float]:
    """Replace the stations of the bench database at ``url`` with ``n`` generated ones."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    buf = io.StringIO()
    generate_copy_text(n, buf)
    data = buf.getvalue().encode()
    del buf
    timings["generate_s"] = time.perf_counter() - t0

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        # Secondary indexes are dropped during the load and rebuilt from their own
        # definitions afterwards (whatever the migrations created, unchanged); indexes
        # behind constraints (primary key, unique code) stay.
        idx = conn.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            WHERE i.indrelid = 'station'::regclass
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            """
        ).fetchall()
        t = time.perf_counter()
        with conn.transaction():
            conn.execute("TRUNCATE station RESTART IDENTITY CASCADE")
            for name, _ in idx:
                conn.execute(f"DROP INDEX {name}")
            with conn.cursor() as cur, cur.copy(
                f"COPY station ({', '.join(COPY_COLUMNS)}) FROM STDIN"
            ) as copy:
                step = 8 << 20
                for off in range(0, len(data), step):
                    copy.write(data[off : off + step])
        timings["copy_s"] = time.perf_counter() - t
        t = time.perf_counter()
        for _, ddl in idx:
            conn.execute(ddl)
        timings["index_s"] = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) station")
        timings["vacuum_analyze_s"] = time.perf_counter() - t
        conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text)")
        conn.execute(
            "INSERT INTO bench_meta VALUES ('fingerprint', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (fingerprint(),),
        )
    timings["total_s"] = time.perf_counter() - t0
    return timings


def build(n: int, force: bool = False) -> dict[str, object]:
    """Make sure the bench database for ``n`` stations exists and is filled."""
    from geo_service.infra.db import migrate

    ensure_cluster()
    name, url = db_name(n), db_url(n)
    t0 = time.perf_counter()
    ensure_database(name)
    migrate(url)
    have = station_count(url)
    if not force and have == n and stored_fingerprint(url) == fingerprint():
        # Keep the planner statistics fresh even when reusing.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE station")
        took = time.perf_counter() - t0
        print(f"[make_data] {name}: reusing {have} stations ({took:.1f} s)", flush=True)
        return {"size": n, "db": name, "url": url, "reused": True, "seconds": took}
    print(f"[make_data] {name}: building {n} stations (had {have})", flush=True)
    timings = load(n=n, url=url)
    count = station_count(url)
    if count != n:
        raise SystemExit(f"{name}: expected {n} stations, found {count}")
    with psycopg.connect(url) as conn:
        size = conn.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('station'))"
        ).fetchone()
    print(
        f"[make_data] {name}: {count} stations in {timings['total_s']:.1f} s "
        f"(generate {timings['generate_s']:.1f} s, COPY {timings['copy_s']:.1f} s, "
        f"indexes {timings['index_s']:.1f} s, vacuum/analyze "
        f"{timings['vacuum_analyze_s']:.1f} s); table+indexes {size[0] if size else '?'}",
        flush=True,
    )
    return {"size": n, "db": name, "url": url, "reused": False, **timings}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                    help="comma list of station counts (10000, 100k, 1m…)")
    ap.add_argument("--force", action="store_true", help="rebuild even if the data matches")
    args = ap.parse_args(argv)
    if not (PG_BIN / "pgbench").exists():
        print(f"note: {PG_BIN / 'pgbench'} not found", file=sys.stderr)
    for n in parse_sizes(args.sizes):
        build(n, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
