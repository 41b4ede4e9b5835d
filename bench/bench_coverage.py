"""Benchmark H3 coverage-gap analysis and site recommendations beside a plain numpy baseline.

Measured, for 1,000,000 synthetic demand points and each station count (10k, 100k), at H3
resolution 9 with a 1000 m threshold:

* **analysis** (project): ``geo_service.coverage.analysis.analyse`` (exact geodesic nearest
  and second-nearest station per (cell, area) row), then ``summarise`` and ``gap_cells``
  as ``run_coverage`` calls them;
* **analysis** (baseline): plain numpy/scipy, no project code: ``h3.latlng_to_cell`` per
  point, ``np.unique`` aggregation, a ``cKDTree`` on the unit sphere, haversine metres on
  the mean-radius sphere, no exactness refinement;
* **recommendations** (project): ``recommend.coverage_matrix`` for 20,000 candidate sites
  against every demand row, then ``recommend.lazy_greedy`` for N = 50 (``plain_greedy``
  timed too, as the project's reference);
* **recommendations** (baseline): coverage matrix from ``cKDTree.query_ball_point`` +
  haversine, plain numpy greedy (one sparse mat-vec per pick);
* **end to end through PostGIS** (project): ``service.run_coverage`` and
  ``service.run_recommendations`` on a database holding the same demand points and
  stations (``geo_bench_cov_10k`` / ``geo_bench_cov_100k`` on the project-local cluster,
  built here by COPY; ``geo`` and ``geo_test_*`` are never touched);
* **agreement**: how often the naive baseline's covered flag / nearest station differs from
  the exact answer, and what the baseline's greedy picks are worth under the exact metric.

Every timed phase runs in a fresh Python subprocess; its peak RSS comes from ``wait4``
(``ru_maxrss`` of that child alone). Results go to ``bench/out/coverage/results.json`` and
``bench/COVERAGE.md``.

Usage::

    .venv/bin/python bench/bench_coverage.py                    # everything (~4 min)
    .venv/bin/python bench/bench_coverage.py --stations 100000 --no-db
    .venv/bin/python bench/bench_coverage.py --md-only          # re-render COVERAGE.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def relative(text: str) -> str:
    """Paths in a report relative to the repository: it reads the same on any checkout."""
    return text.replace(f"{ROOT}/", "")
for _p in (str(BENCH), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import make_data  # noqa: E402

OUT = BENCH / "out" / "coverage"
MD = BENCH / "COVERAGE.md"
#: Markers of the section bench/bench_reco.py writes into COVERAGE.md.
RECO_START, RECO_END = "<!-- bench_reco:start -->", "<!-- bench_reco:end -->"
COMMAND = ".venv/bin/python bench/bench_coverage.py"

DEMAND_SEED = 20261123
CAND_SEED = 20261124
DEMAND_VERSION = "1"
N_DEMAND = 1_000_000
STATION_SIZES = (10_000, 100_000)
#: Share of demand points spread uniformly over the extent; the rest cluster around cities.
W_BACKGROUND = 0.15
#: A point's area label: the code of the nearest city centre within this many degrees.
AREA_REACH_DEG = 1.0
WORKER_TYPES = (("courier", 0.45), ("food_delivery", 0.30), ("sanitation", 0.15),
                ("construction", 0.10))
#: Covers every generated point and station (the service takes a bbox region).
BBOX = (97.0, 19.0, 123.0, 43.0)
EARTH_MEAN_RADIUS_M = 6_371_008.8

TARGET_SIZE = 100_000
TARGET_ANALYSIS_S = 20.0
TARGET_ANALYSIS_RSS_GIB = 4.0
TARGET_RECOMMEND_S = 15.0


# --------------------------------------------------------------------------- data


def _round6(x: np.ndarray) -> np.ndarray:
    """Round through the same ``%.6f`` text the database gets, so both paths agree."""
    return np.fromiter((float(f"{v:.6f}") for v in x.tolist()), dtype=np.float64, count=x.size)


def _area_labels(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    centres = np.array([(c.lon, c.lat) for c in make_data.CITIES])
    dist, idx = cKDTree(centres).query(np.column_stack((lon, lat)))
    codes = np.array([c.city_code for c in make_data.CITIES] + [""], dtype=object)
    return codes[np.where(dist <= AREA_REACH_DEG, idx, len(make_data.CITIES))]


def generate_demand(n: int) -> dict[str, np.ndarray]:
    """``n`` demand points: uniform background plus clipped-normal clusters around cities."""
    rng = np.random.default_rng(DEMAND_SEED)
    background = rng.random(n) < W_BACKGROUND
    lon, lat = np.empty(n), np.empty(n)
    k = int(background.sum())
    lon[background] = rng.uniform(make_data.LON_MIN, make_data.LON_MAX, k)
    lat[background] = rng.uniform(make_data.LAT_MIN, make_data.LAT_MAX, k)
    city = ~background
    k = int(city.sum())
    weights = np.array([c.weight for c in make_data.CITIES])
    idx = rng.choice(len(make_data.CITIES), size=k, p=weights / weights.sum())
    sig = np.array([c.sigma for c in make_data.CITIES])[idx]
    lon[city] = np.array([c.lon for c in make_data.CITIES])[idx] + np.clip(
        rng.standard_normal(k), -3, 3) * sig
    lat[city] = np.array([c.lat for c in make_data.CITIES])[idx] + np.clip(
        rng.standard_normal(k), -3, 3) * sig
    weight = rng.integers(1, 6, n).astype(np.float64)  # workers behind each point
    p = np.array([w for _, w in WORKER_TYPES])
    wtype = rng.choice(len(WORKER_TYPES), size=n, p=p / p.sum())
    lon, lat = _round6(lon), _round6(lat)
    return {"lon": lon, "lat": lat, "weight": weight, "area": _area_labels(lon, lat),
            "worker_type": wtype}


def generate_stations(n: int) -> dict[str, np.ndarray]:
    """The stations ``make_data.load`` puts in the database (same seed), plus attributes."""
    lon, lat, _ = make_data.generate_points(np.random.default_rng(make_data.SEED), n)
    lon, lat = _round6(lon), _round6(lat)
    rng = np.random.default_rng(DEMAND_SEED + n)
    return {"lon": lon, "lat": lat, "area": _area_labels(lon, lat),
            "ten_ones": rng.binomial(10, 0.8, n), "unverified": rng.random(n) < 0.3}


def fingerprint(n: int) -> str:
    return f"demand_seed={DEMAND_SEED};n={n};v={DEMAND_VERSION}"


def write_inputs(sizes: list[int], n_demand: int) -> dict[str, float]:
    t = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    d = generate_demand(n_demand)
    np.savez(OUT / "demand.npz", **{k: v.astype(str) if v.dtype == object else v
                                    for k, v in d.items()})
    for n in sizes:
        s = generate_stations(n)
        np.savez(OUT / f"stations_{n}.npz", **{k: v.astype(str) if v.dtype == object else v
                                               for k, v in s.items()})
    return {"generate_s": time.perf_counter() - t}


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k].astype(object) if z[k].dtype.kind == "U" else z[k] for k in z.files}


# --------------------------------------------------------------------------- database


def db_name(n: int) -> str:
    return f"geo_bench_cov_{make_data.size_label(n)}"


def db_url(n: int) -> str:
    from geo_service.infra.localdb import LocalCluster

    return f"postgresql://geo@/{db_name(n)}?host={LocalCluster.default().sockdir}"


def _meta(conn: Any, key: str) -> str | None:
    conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text)")
    row = conn.execute("SELECT value FROM bench_meta WHERE key = %s", (key,)).fetchone()
    return str(row[0]) if row else None


def _set_meta(conn: Any, key: str, value: str) -> None:
    conn.execute("INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (key) "
                 "DO UPDATE SET value = EXCLUDED.value", (key, value))


def load_demand(url: str, d: dict[str, np.ndarray]) -> dict[str, float]:
    """Replace ``demand_point`` with the generated points (COPY, index rebuilt after)."""
    import psycopg

    t0 = time.perf_counter()
    buf = io.StringIO()
    types = [w for w, _ in WORKER_TYPES]
    for i, (x, y, w, k) in enumerate(zip(d["lon"].tolist(), d["lat"].tolist(),
                                         d["weight"].tolist(), d["worker_type"].tolist(),
                                         strict=True)):
        buf.write(f"BENCH-D{i + 1:07d}\tSRID=4326;POINT({x:.6f} {y:.6f})\t{w!r}\t{types[k]}\t"
                  "bench_coverage\t2026-11-01\tt\n")
    data = buf.getvalue().encode()
    del buf
    out = {"generate_s": time.perf_counter() - t0}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        idx = conn.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = 'demand_point'::regclass AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)").fetchall()
        t = time.perf_counter()
        with conn.transaction():
            conn.execute("TRUNCATE demand_point RESTART IDENTITY")
            for name, _ in idx:
                conn.execute(f"DROP INDEX {name}")
            with conn.cursor() as cur, cur.copy(
                "COPY demand_point (external_id, geog, weight, worker_type, source, "
                "observed_on, sample) FROM STDIN") as copy:
                for off in range(0, len(data), 8 << 20):
                    copy.write(data[off : off + (8 << 20)])
        out["copy_s"] = time.perf_counter() - t
        t = time.perf_counter()
        for _, ddl in idx:
            conn.execute(ddl)
        conn.execute("VACUUM (ANALYZE) demand_point")
        out["index_vacuum_s"] = time.perf_counter() - t
        _set_meta(conn, "coverage_demand", fingerprint(d["lon"].size))
    out["total_s"] = time.perf_counter() - t0
    return out


def ensure_db(n: int, d: dict[str, np.ndarray], force: bool) -> dict[str, Any]:
    """Build (or reuse) ``geo_bench_cov_<n>``: n make_data stations, the demand points."""
    import psycopg

    from geo_service.infra.db import migrate

    name, url = db_name(n), db_url(n)
    if not name.startswith("geo_bench_cov_"):
        raise SystemExit(f"refusing to use database {name!r}")
    make_data.ensure_cluster()
    make_data.ensure_database(name)
    migrate(url)
    info: dict[str, Any] = {"db": name, "stations": n}
    with psycopg.connect(url, autocommit=True) as conn:
        have_s = int(conn.execute("SELECT count(*) FROM station").fetchone()[0])
        have_d = int(conn.execute("SELECT count(*) FROM demand_point").fetchone()[0])
        fp_s, fp_d = _meta(conn, "fingerprint"), _meta(conn, "coverage_demand")
    if force or have_s != n or fp_s != make_data.fingerprint():
        print(f"[coverage] {name}: loading {n:,} stations", flush=True)
        info["station_load"] = make_data.load(url, n)
    if force or have_d != d["lon"].size or fp_d != fingerprint(d["lon"].size):
        print(f"[coverage] {name}: loading {d['lon'].size:,} demand points", flush=True)
        info["demand_load"] = load_demand(url, d)
    info["reused"] = "station_load" not in info and "demand_load" not in info
    return info


# --------------------------------------------------------------------------- phases (children)


def vm_hwm_kib() -> int:
    """This process's peak RSS (``VmHWM``), not carried over from the parent at exec as
    ``ru_maxrss`` is (Linux keeps the larger of the old and new high-water marks)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Clock:
    """Start of the timed part of a phase: RSS high-water mark and time at that point."""

    def __init__(self) -> None:
        self.rss0_kib = 0
        self.t0 = 0.0

    def start(self) -> None:
        self.rss0_kib = vm_hwm_kib()
        self.t0 = time.perf_counter()

    def lap(self) -> float:
        return time.perf_counter() - self.t0


def _xyz(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lo, la = np.radians(lon), np.radians(lat)
    return np.column_stack((np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)))


def haversine_m(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray,
                lat2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = (np.sin((p2 - p1) / 2) ** 2
         + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_MEAN_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def phase_analysis(args: argparse.Namespace, clock: Clock) -> dict[str, Any]:
    from geo_service.coverage import analysis

    d, s = load_npz(OUT / "demand.npz"), load_npz(OUT / f"stations_{args.n}.npz")
    clock.start()
    res = analysis.analyse(d["lon"], d["lat"], d["weight"], d["area"], s["lon"], s["lat"],
                           resolution=args.resolution, threshold_m=args.threshold)
    t_analyse = clock.lap()
    areas = analysis.summarise(res, s["area"], s["ten_ones"], s["unverified"])
    t_summarise = clock.lap()
    gaps = analysis.gap_cells(res, 20)
    wall = clock.lap()
    total = areas[-1]
    np.savez(OUT / f"project_{args.n}.npz", cell=res.cell.astype(str),
             area=res.area.astype(str), lon=res.lon, lat=res.lat, demand=res.demand,
             nearest=res.nearest, nearest_m=res.nearest_m, second_m=res.second_m,
             covered=res.covered, doubly=res.doubly)
    # candidates for both recommenders: distinct uncovered cells, drawn with probability
    # proportional to their demand (planners look where workers are), fixed seed
    ucell, first, inverse = np.unique(res.cell.astype(str), return_index=True,
                                      return_inverse=True)
    cell_demand = np.bincount(inverse.reshape(-1), weights=res.demand, minlength=ucell.size)
    gap = ~res.covered[first] & (cell_demand > 0)
    gap_rows, p = first[gap], cell_demand[gap]
    pick = np.random.default_rng(CAND_SEED).choice(
        gap_rows, size=min(args.candidates, gap_rows.size), replace=False, p=p / p.sum())
    pick.sort()
    np.savez(OUT / f"candidates_{args.n}.npz", lon=res.lon[pick], lat=res.lat[pick],
             cell=res.cell[pick].astype(str))
    return {"wall_s": wall, "parts": {"analyse": t_analyse,
                                      "summarise": t_summarise - t_analyse,
                                      "gap_cells": wall - t_summarise},
            "rows": int(res.cell.size), "cells": int(ucell.size),
            "covered_share": total["covered_share"], "doubly_share": total["doubly_share"],
            "gap_cells": len(gaps), "uncovered_cells": int(gap_rows.size),
            "candidates": int(pick.size)}


def baseline_analysis(lon: np.ndarray, lat: np.ndarray, weight: np.ndarray, area: np.ndarray,
                      slon: np.ndarray, slat: np.ndarray, resolution: int,
                      threshold: float) -> dict[str, np.ndarray]:
    """The naive numpy/scipy version: h3 per point, np.unique, KD-tree, haversine."""
    import h3
    from scipy.spatial import cKDTree

    cells = np.array([h3.latlng_to_cell(y, x, resolution)
                      for y, x in zip(lat.tolist(), lon.tolist(), strict=True)])
    labels, acode = np.unique(area.astype(str), return_inverse=True)
    ucell, ccode = np.unique(cells, return_inverse=True)
    ukey, row = np.unique(ccode.astype(np.int64) * labels.size + acode, return_inverse=True)
    demand = np.bincount(row, weights=weight, minlength=ukey.size)
    points = np.bincount(row, minlength=ukey.size)
    cent = np.array([h3.cell_to_latlng(c) for c in ucell.tolist()])
    clat, clon = cent[:, 0], cent[:, 1]
    _, idx = cKDTree(_xyz(slon, slat)).query(_xyz(clon, clat), k=2, workers=-1)
    d1 = haversine_m(clon, clat, slon[idx[:, 0]], slat[idx[:, 0]])
    d2 = haversine_m(clon, clat, slon[idx[:, 1]], slat[idx[:, 1]])
    c = ukey // labels.size
    return {"cell": ucell[c], "area": labels[ukey % labels.size], "lon": clon[c],
            "lat": clat[c], "demand": demand, "points": points, "nearest": idx[c, 0],
            "nearest_m": d1[c], "second_m": d2[c], "covered": d1[c] <= threshold,
            "doubly": d2[c] <= threshold}


def phase_baseline_analysis(args: argparse.Namespace, clock: Clock) -> dict[str, Any]:
    d, s = load_npz(OUT / "demand.npz"), load_npz(OUT / f"stations_{args.n}.npz")
    clock.start()
    b = baseline_analysis(d["lon"], d["lat"], d["weight"], d["area"], s["lon"], s["lat"],
                          args.resolution, args.threshold)
    t_analyse = clock.lap()
    # the scorecard's core figures and the top-20 gaps, as summarise/gap_cells give them
    labels, code = np.unique(b["area"], return_inverse=True)
    per_area_cov = np.bincount(code, np.where(b["covered"], b["demand"], 0.0), labels.size)
    per_area_dem = np.bincount(code, b["demand"], labels.size)
    gap = np.flatnonzero(~b["covered"])
    top = gap[np.argsort(-b["demand"][gap], kind="stable")[:20]]
    wall = clock.lap()
    np.savez(OUT / f"baseline_{args.n}.npz", **b)
    return {"wall_s": wall, "parts": {"analyse": t_analyse, "summarise+gaps": wall - t_analyse},
            "rows": int(b["cell"].size),
            "covered_share": float(per_area_cov.sum() / per_area_dem.sum()),
            "doubly_share": float(b["demand"][b["doubly"]].sum() / b["demand"].sum()),
            "gap_cells": int(top.size)}


def phase_recommend(args: argparse.Namespace, clock: Clock,
                    every_gap: bool = False) -> dict[str, Any]:
    """Project recommendations over the sampled candidates, or (``every_gap``) over every
    uncovered row, which is what ``run_recommendations`` uses when no candidates are given."""
    from geo_service.coverage import recommend

    r = load_npz(OUT / f"project_{args.n}.npz")
    if every_gap:
        gaps = ~r["covered"]
        c = {"lon": r["lon"][gaps], "lat": r["lat"][gaps]}
    else:
        c = load_npz(OUT / f"candidates_{args.n}.npz")
    clock.start()
    matrix = recommend.coverage_matrix(c["lon"], c["lat"], r["lon"], r["lat"], args.threshold)
    t_matrix = clock.lap()
    plan = recommend.lazy_greedy(matrix, r["demand"], r["covered"], args.sites)
    wall = clock.lap()
    picks = [p.candidate for p in plan.picks]
    out = {"wall_s": wall, "parts": {"coverage_matrix": t_matrix,
                                     "lazy_greedy": wall - t_matrix},
           "nnz": int(matrix.nnz), "matrix_shape": list(matrix.shape), "picks": len(picks),
           "added": plan.added, "total_demand": plan.total_demand,
           "covered_before": plan.covered_before, "covered_after": plan.covered_after,
           "gap_bound": plan.gap_bound}
    if every_gap:  # plain_greedy would take N x (all gap cells) gain evaluations: skipped
        return out
    t = time.perf_counter()
    plain = recommend.plain_greedy(matrix, r["demand"], r["covered"], args.sites)
    out["plain_greedy_s"] = time.perf_counter() - t
    out["plain_same_picks"] = picks == [p.candidate for p in plain.picks]
    np.savez(OUT / f"project_plan_{args.n}.npz", picks=np.array(picks, dtype=np.int64))
    return out


def baseline_matrix(clon: np.ndarray, clat: np.ndarray, dlon: np.ndarray, dlat: np.ndarray,
                    threshold: float) -> Any:
    """Candidate x demand coverage on the mean-radius sphere: ball query, then haversine."""
    from scipy import sparse
    from scipy.spatial import cKDTree

    chord = 2 * math.sin(threshold / (2 * EARTH_MEAN_RADIUS_M)) * (1 + 1e-9)
    balls = cKDTree(_xyz(dlon, dlat)).query_ball_point(_xyz(clon, clat), chord, workers=-1)
    lens = np.fromiter(map(len, balls), dtype=np.int64, count=len(balls))
    i = np.repeat(np.arange(len(balls)), lens)
    j = np.concatenate([np.asarray(b, dtype=np.int64) for b in balls]) if lens.sum() else lens
    keep = haversine_m(clon[i], clat[i], dlon[j], dlat[j]) <= threshold
    return sparse.csr_matrix((np.ones(int(keep.sum()), dtype=bool), (i[keep], j[keep])),
                             shape=(clon.size, dlon.size))


def baseline_greedy(matrix: Any, weights: np.ndarray, covered: np.ndarray,
                    n: int) -> tuple[list[int], float]:
    """Plain greedy: every pick recomputes all gains with one sparse mat-vec."""
    residual = np.where(covered, 0.0, weights)
    m = matrix.astype(np.float64)
    picks: list[int] = []
    added = 0.0
    for _ in range(n):
        gains = m @ residual
        j = int(np.argmax(gains))
        if gains[j] <= 0:
            break
        picks.append(j)
        added += float(gains[j])
        residual[matrix.indices[matrix.indptr[j] : matrix.indptr[j + 1]]] = 0.0
    return picks, added


def phase_baseline_recommend(args: argparse.Namespace, clock: Clock) -> dict[str, Any]:
    b, c = load_npz(OUT / f"baseline_{args.n}.npz"), load_npz(OUT / f"candidates_{args.n}.npz")
    clock.start()
    matrix = baseline_matrix(c["lon"], c["lat"], b["lon"], b["lat"], args.threshold)
    t_matrix = clock.lap()
    picks, added = baseline_greedy(matrix, b["demand"], b["covered"], args.sites)
    wall = clock.lap()
    np.savez(OUT / f"baseline_plan_{args.n}.npz", picks=np.array(picks, dtype=np.int64))
    before = float(b["demand"][b["covered"]].sum())
    return {"wall_s": wall, "parts": {"coverage_matrix": t_matrix, "greedy": wall - t_matrix},
            "nnz": int(matrix.nnz), "picks": len(picks), "added": added,
            "covered_before": before, "covered_after": before + added,
            "total_demand": float(b["demand"].sum())}


def phase_compare(args: argparse.Namespace, clock: Clock) -> dict[str, Any]:
    """Agreement figures (not a timed measurement)."""
    from geo_service.coverage import recommend

    p, b = load_npz(OUT / f"project_{args.n}.npz"), load_npz(OUT / f"baseline_{args.n}.npz")
    clock.start()
    same_rows = bool(np.array_equal(p["cell"], b["cell"]) and np.array_equal(p["area"], b["area"]))
    out: dict[str, Any] = {"same_rows": same_rows}
    if same_rows:
        w = p["demand"]
        flag = p["covered"] != b["covered"]
        dflag = p["doubly"] != b["doubly"]
        rel = np.abs(b["nearest_m"] - p["nearest_m"]) / np.maximum(p["nearest_m"], 1e-9)
        out.update({
            "rows": int(flag.size),
            "covered_differs_rows": int(flag.sum()),
            "covered_differs_share": float(flag.mean()),
            "covered_differs_demand_share": float(w[flag].sum() / w.sum()),
            "baseline_covers_but_exact_not": int((b["covered"] & ~p["covered"]).sum()),
            "exact_covers_but_baseline_not": int((p["covered"] & ~b["covered"]).sum()),
            "doubly_differs_share": float(dflag.mean()),
            "nearest_station_differs_share": float((p["nearest"] != b["nearest"]).mean()),
            "nearest_m_rel_diff_p50": float(np.median(rel)),
            "nearest_m_rel_diff_max": float(rel.max()),
            "nearest_m_abs_diff_max_within_2km": float(np.abs(
                b["nearest_m"] - p["nearest_m"])[p["nearest_m"] <= 2000].max(initial=0.0)),
        })
    c = load_npz(OUT / f"candidates_{args.n}.npz")
    pp = load_npz(OUT / f"project_plan_{args.n}.npz")["picks"]
    bp = load_npz(OUT / f"baseline_plan_{args.n}.npz")["picks"]
    exact_m = recommend.coverage_matrix(c["lon"], c["lat"], p["lon"], p["lat"], args.threshold)
    residual = np.where(p["covered"], 0.0, p["demand"])

    def worth(picks: np.ndarray) -> float:
        cols = np.unique(exact_m[picks].indices) if picks.size else np.zeros(0, np.int64)
        return float(residual[cols].sum())

    out.update({"project_added_exact": worth(pp), "baseline_added_exact": worth(bp),
                "pick_overlap": len(set(pp.tolist()) & set(bp.tolist())),
                "picks": int(pp.size)})
    if args.exact_seconds > 0:
        t = time.perf_counter()
        opt = recommend.exact(exact_m, p["demand"], p["covered"], args.sites,
                              time_limit=args.exact_seconds)
        out["exact_s"] = time.perf_counter() - t
        out["exact_added"] = opt.added if opt is not None else None
        out["exact_gap"] = opt.optimal_gap if opt is not None else None
    out["wall_s"] = clock.lap()
    return out


def _db_request(args: argparse.Namespace, extra: dict[str, Any]) -> Any:
    from geo_service.coverage.schemas import CoverageRequest, RecommendRequest, StationFilter
    from geo_service.domain.catalogue import Status

    cls = RecommendRequest if extra else CoverageRequest
    return cls(bbox=list(BBOX), resolution=args.resolution, threshold_m=args.threshold,
               stations=StationFilter(statuses=list(Status)), **extra)


def _db_phase(args: argparse.Namespace, clock: Clock, recommend_too: bool) -> dict[str, Any]:
    import psycopg

    from geo_service.coverage import service
    from geo_service.infra.db import connect

    extra: dict[str, Any] = {}
    if recommend_too:
        c = load_npz(OUT / f"candidates_{args.n}.npz")
        extra = {"add": args.sites,
                 "candidates": list(zip(c["lon"].tolist(), c["lat"].tolist(), strict=True))}
    req = _db_request(args, extra)
    url = db_url(args.n)
    marks: list[tuple[float, str]] = []
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    clock.start()
    if profiler:
        profiler.enable()
    with connect(url) as conn:  # as the CLI does: committed when the block ends
        run = service.run_recommendations if recommend_too else service.run_coverage
        result = run(conn, req, progress=lambda msg: marks.append((clock.lap(), msg)))
    wall = clock.lap()
    if profiler:
        import pstats

        profiler.disable()
        kind = "recommend" if recommend_too else "coverage"
        with open(OUT / f"profile_db_{kind}_{args.n}.txt", "w") as f:
            pstats.Stats(profiler, stream=f).sort_stats("cumulative").print_stats(40)
    with psycopg.connect(url, autocommit=True) as conn:
        inputs = conn.execute("SELECT inputs FROM analysis_run WHERE id = %s",
                              (result["run_id"],)).fetchone()
        conn.execute("DELETE FROM analysis_run WHERE id = %s", (result["run_id"],))
    parts: dict[str, float] = {}
    # each progress message ends the interval named here ("start": nothing before it)
    if recommend_too:  # run_recommendations announces only the matrix and the picking
        names = {"coverage matrix": "load+analyse", "choosing": "coverage_matrix"}
    else:
        names = {"loading": "start", "analysing": "load", "storing": "analyse+summarise+gaps"}
    prev = 0.0
    for at, msg in marks:
        for prefix, name in names.items():
            if msg.startswith(prefix):
                if name != "start":
                    parts[name] = at - prev
                prev = at
    parts["greedy+store+commit" if recommend_too else "store+commit"] = wall - prev
    out: dict[str, Any] = {"wall_s": wall, "parts": parts, "inputs": inputs[0] if inputs else {}}
    if recommend_too:
        out.update({"added": result["covered_after"] - result["covered_before"],
                    "sites": len(result["sites"])})
    else:
        total = result["areas"][-1]
        out.update({"covered_share": total["covered_share"], "stations": total["stations"],
                    "demand": total["demand"]})
    return out


def phase_prepare(args: argparse.Namespace, clock: Clock) -> dict[str, Any]:
    """Inputs and databases, in a child so the parent never holds the data (see run_child)."""
    clock.start()
    sizes = make_data.parse_sizes(args.stations)
    print(f"[coverage] generating {args.demand:,} demand points and stations", flush=True)
    out: dict[str, Any] = {"generate": write_inputs(sizes, args.demand), "databases": []}
    if args.db:
        d = load_npz(OUT / "demand.npz")
        for n in sizes:
            t = time.perf_counter()
            info = ensure_db(n, d, args.force_data)
            info["seconds"] = time.perf_counter() - t
            out["databases"].append(info)
    out["wall_s"] = clock.lap()
    return out


PHASES: dict[str, Callable[[argparse.Namespace, Clock], dict[str, Any]]] = {
    "prepare": phase_prepare,
    "analysis": phase_analysis,
    "baseline_analysis": phase_baseline_analysis,
    "recommend": phase_recommend,
    "recommend_every_gap": lambda a, c: phase_recommend(a, c, every_gap=True),
    "baseline_recommend": phase_baseline_recommend,
    "compare": phase_compare,
    "db_coverage": lambda a, c: _db_phase(a, c, False),
    "db_recommend": lambda a, c: _db_phase(a, c, True),
}


def child_main(args: argparse.Namespace) -> int:
    clock = Clock()
    res = PHASES[args.phase](args, clock)
    res["rss_start_kib"] = clock.rss0_kib
    res["peak_rss_kib"] = vm_hwm_kib()
    Path(args.result).write_text(json.dumps(res, default=float))
    return 0


# --------------------------------------------------------------------------- parent


def run_child(phase: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run one phase in a fresh interpreter, after a bounded wait for a quiet machine.

    Peak RSS is the child's ``VmHWM``; CPU time and ``ru_maxrss`` come from ``wait4`` on
    that child alone. ``ru_maxrss`` survives exec, so a child of a large parent would
    report at least the parent's size: the parent keeps no data (``prepare`` runs as a
    child too) and the child's own ``VmHWM`` is the figure reported.
    """
    import bench_nearest

    result = OUT / f"phase_{phase}_{n}.json"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--n", str(n),
           "--result", str(result), "--threshold", str(args.threshold),
           "--resolution", str(args.resolution), "--candidates", str(args.candidates),
           "--sites", str(args.sites), "--exact-seconds", str(args.exact_seconds),
           "--stations", args.stations, "--demand", str(args.demand),
           "--db" if args.db else "--no-db"]
    cmd += ["--profile"] * args.profile + ["--force-data"] * args.force_data
    db = db_name(n) if phase.startswith("db_") else ""
    best: dict[str, Any] | None = None
    for attempt in range(1, args.retries + 2):
        if phase not in ("compare", "prepare"):
            bench_nearest.wait_quiet(args.quiet_wait)
        t0 = time.perf_counter()
        with bench_nearest.CpuMeter(dbname=db) as cpu:
            proc = subprocess.Popen(cmd, cwd=ROOT)
            deadline = time.monotonic() + args.timeout
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    os.kill(proc.pid, signal.SIGKILL)
                    _, status, ru = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0 or not result.exists():
            raise SystemExit(f"[coverage] phase {phase} ({n}) failed: exit {proc.returncode}")
        res = json.loads(result.read_text())
        res.update({"phase": phase, "stations": n, "attempts": attempt,
                    "process_s": elapsed, "ru_maxrss_kib": ru.ru_maxrss,
                    "cpu_s": ru.ru_utime + ru.ru_stime,
                    "foreign_cpu_pct": round(cpu.foreign_pct, 1),
                    "foreign_top": cpu.foreign_top[:3]})
        if best is None or res["foreign_cpu_pct"] < best["foreign_cpu_pct"]:
            best = {**res, "attempts": attempt}
        if phase in ("compare", "prepare") or res["foreign_cpu_pct"] <= args.max_other_load:
            break
        print(f"[coverage]   disturbed: other processes used {res['foreign_cpu_pct']:.0f}% of "
              "a core; measuring again", flush=True)
    assert best is not None
    print(f"[coverage] {phase:<19} {n:>7,} stations: {best['wall_s']:7.2f} s, peak RSS "
          f"{best['peak_rss_kib'] / 1024:7.0f} MiB, other load {best['foreign_cpu_pct']:.0f}%",
          flush=True)
    return best


def _version(mod: str) -> str:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return "?"


def machine_info(url: str | None) -> dict[str, str]:
    def sh(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    info = {"nproc": sh(["nproc"]), "free_g": sh(["free", "-g"]), "cpu": cpu,
            "kernel": platform.release(), "python": platform.python_version(),
            "packages": ", ".join(f"{m} {_version(m)}" for m in
                                  ("numpy", "scipy", "h3", "pyproj", "psycopg")),
            "postgres": "?", "postgis": "?"}
    if url:
        import psycopg

        with psycopg.connect(url) as conn:
            info["postgres"] = str(conn.execute("SELECT version()").fetchone()[0])
            info["postgis"] = str(conn.execute("SELECT postgis_lib_version()").fetchone()[0])
    return info


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = make_data.parse_sizes(args.stations)
    OUT.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    prep = run_child("prepare", 0, args)
    phases = ["analysis", "baseline_analysis", "recommend", "baseline_recommend",
              "recommend_every_gap", "compare"]
    if args.db:
        phases += ["db_coverage", "db_recommend"]
    results = [run_child(ph, n, args) for n in sizes for ph in phases]
    doc = {"started_utc": started.isoformat(timespec="seconds"),
           "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "args": {k: v for k, v in vars(args).items() if k not in ("phase", "result", "n")},
           "generate": prep["generate"], "databases": prep["databases"], "results": results,
           "machine": machine_info(db_url(sizes[0]) if args.db else None)}
    (OUT / "results.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    return doc


# --------------------------------------------------------------------------- report


def _mib(kib: float) -> str:
    return f"{kib / 1024:,.0f}"


def _parts(r: dict[str, Any]) -> str:
    return "; ".join(f"{k} {v:.2f}" for k, v in r.get("parts", {}).items())


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


LABELS = {
    "analysis": ("analysis", "project: `analyse` + `summarise` + `gap_cells`"),
    "baseline_analysis": ("analysis", "baseline: h3 + `np.unique` + cKDTree + haversine"),
    "recommend": ("recommendations", "project: `coverage_matrix` + `lazy_greedy`"),
    "baseline_recommend": ("recommendations", "baseline: `query_ball_point` + numpy greedy"),
    "recommend_every_gap": ("recommendations, every gap cell a candidate",
                            "project: `coverage_matrix` + `lazy_greedy`"),
    "db_coverage": ("end to end (PostGIS)", "project: `service.run_coverage`"),
    "db_recommend": ("end to end (PostGIS)", "project: `service.run_recommendations`"),
}


def figures_table(results: list[dict[str, Any]]) -> str:
    head = ("| stations | what | implementation | wall s | CPU s | peak RSS MiB "
            "| RSS before timed part MiB | breakdown (s) | other load |\n"
            "|---:|---|---|---:|---:|---:|---:|---|---:|\n")
    rows = []
    for r in results:
        if r["phase"] not in LABELS:
            continue
        what, impl = LABELS[r["phase"]]
        parts = _parts(r)
        if r["phase"] == "recommend":
            parts += f"; (`plain_greedy` reference {r['plain_greedy_s']:.2f})"
        if r["phase"].startswith("recommend"):
            parts += (f"; {r['matrix_shape'][0]:,} candidates × {r['matrix_shape'][1]:,} rows, "
                      f"{r['nnz']:,} nonzeros")
        rows.append(f"| {r['stations']:,} | {what} | {impl} | **{r['wall_s']:.2f}** | "
                    f"{r['cpu_s']:.1f} | **{_mib(r['peak_rss_kib'])}** | "
                    f"{_mib(r['rss_start_kib'])} | {parts} | {r['foreign_cpu_pct']:.0f}% |")
    return head + "\n".join(rows) + "\n"


def _get(results: list[dict[str, Any]], phase: str, n: int) -> dict[str, Any] | None:
    return next((r for r in results if r["phase"] == phase and r["stations"] == n), None)


def agreement_table(results: list[dict[str, Any]], sizes: list[int]) -> str:
    head = ("| stations | (cell, area) rows | covered share: exact / baseline "
            "| rows whose covered flag differs (of demand) | of which baseline says covered "
            "| doubly flag differs | nearest station differs | nearest m, relative diff "
            "p50 / max |\n|---:|---:|---|---|---:|---|---|---|\n")
    rows = []
    for n in sizes:
        a, b, c = (_get(results, ph, n) for ph in ("analysis", "baseline_analysis", "compare"))
        if not (a and b and c):
            continue
        if not c["same_rows"]:
            rows.append(f"| {n:,} | rows differ between project and baseline | | | | | | |")
            continue
        rows.append(
            f"| {n:,} | {c['rows']:,} | {_pct(a['covered_share'], 2)} / "
            f"{_pct(b['covered_share'], 2)} | {c['covered_differs_rows']:,} = "
            f"{_pct(c['covered_differs_share'], 3)} ({_pct(c['covered_differs_demand_share'], 3)})"
            f" | {c['baseline_covers_but_exact_not']:,} | {_pct(c['doubly_differs_share'], 3)} | "
            f"{_pct(c['nearest_station_differs_share'], 3)} | "
            f"{_pct(c['nearest_m_rel_diff_p50'], 3)} / {_pct(c['nearest_m_rel_diff_max'], 2)} |")
    return head + "\n".join(rows) + "\n"


def recommend_table(results: list[dict[str, Any]], sizes: list[int]) -> str:
    head = ("| stations | candidates × rows (nnz) | covered before (exact) | added: project "
            "`lazy_greedy` | added: baseline greedy, own metric | baseline picks under the "
            "exact metric | same picks | optimum (HiGHS) | lazy = plain greedy |\n"
            "|---:|---|---:|---:|---:|---:|---:|---|---|\n")
    rows = []
    for n in sizes:
        p, b, c = (_get(results, ph, n) for ph in ("recommend", "baseline_recommend", "compare"))
        if not (p and b and c):
            continue
        tot = p["total_demand"]
        if c.get("exact_added") is not None:
            opt = (f"{c['exact_added']:,.0f} (greedy = {p['added'] / c['exact_added']:.2%} of it, "
                   f"MIP gap {c['exact_gap']:.1e}, {c['exact_s']:.0f} s)")
        elif "exact_s" in c:
            opt = f"not proven within {c['exact_s']:.0f} s"
        else:
            opt = "not run"
        rows.append(
            f"| {n:,} | {p['matrix_shape'][0]:,} × {p['matrix_shape'][1]:,} ({p['nnz']:,}) | "
            f"{p['covered_before'] / tot:.2%} | {p['added']:,.0f} | {b['added']:,.0f} | "
            f"{c['baseline_added_exact']:,.0f} ({c['baseline_added_exact'] / p['added']:.2%} of "
            f"project) | {c['pick_overlap']}/{c['picks']} | {opt} | "
            f"{'yes' if p['plain_same_picks'] else '**no**'} |")
    return head + "\n".join(rows) + "\n"


def target_verdict(results: list[dict[str, Any]]) -> str:
    a = _get(results, "analysis", TARGET_SIZE)
    r = _get(results, "recommend", TARGET_SIZE)
    if not (a and r):
        return (f"The {TARGET_SIZE:,}-station run was not part of this run, so the targets "
                "were not checked.")
    gib = a["peak_rss_kib"] / 1024**2
    ok_t, ok_m = a["wall_s"] < TARGET_ANALYSIS_S, gib < TARGET_ANALYSIS_RSS_GIB
    ok_r = r["wall_s"] < TARGET_RECOMMEND_S
    lines = [
        f"- analysis, 1M points / {TARGET_SIZE:,} stations: **{a['wall_s']:.1f} s** "
        f"(target < {TARGET_ANALYSIS_S:.0f} s): **{'met' if ok_t else 'NOT met'}**; peak RSS "
        f"**{gib:.2f} GiB** (target < {TARGET_ANALYSIS_RSS_GIB:.0f} GiB): "
        f"**{'met' if ok_m else 'NOT met'}**;",
        f"- recommendations, N = {r['picks']} over {r['matrix_shape'][0]:,} candidates: "
        f"**{r['wall_s']:.1f} s** (target < {TARGET_RECOMMEND_S:.0f} s): "
        f"**{'met' if ok_r else 'NOT met'}**.",
    ]
    dbc, dbr = _get(results, "db_coverage", TARGET_SIZE), _get(results, "db_recommend",
                                                               TARGET_SIZE)
    if dbc:
        lines.append(
            f"- the same through the service and PostGIS (`run_coverage`: read 1M demand "
            f"points and the stations, analyse, store every cell): **{dbc['wall_s']:.1f} s**, "
            f"peak RSS {dbc['peak_rss_kib'] / 1024**2:.2f} GiB (Python process only) — "
            + ("**over**" if dbc["wall_s"] >= TARGET_ANALYSIS_S else
               "just within" if dbc["wall_s"] > 0.85 * TARGET_ANALYSIS_S else "within")
            + f" the {TARGET_ANALYSIS_S:.0f} s analysis target if it is read end to end"
            + (f"; `run_recommendations` (which loads and analyses again, then stores): "
               f"**{dbr['wall_s']:.1f} s**." if dbr else "."))
    return "\n".join(lines)


def findings(res: list[dict[str, Any]], sizes: list[int]) -> str:
    """Where the time goes, from this run's figures (largest station count in the run)."""
    n = max(sizes)
    a, b = _get(res, "analysis", n), _get(res, "baseline_analysis", n)
    rec, allc = _get(res, "recommend", n), _get(res, "recommend_every_gap", n)
    dbc, dbr = _get(res, "db_coverage", n), _get(res, "db_recommend", n)
    out = []
    if dbc:
        p = dbc["parts"]
        store = p.get("store+commit", 0.0)
        out.append(
            f"- **The PostGIS path** `run_coverage` at {n:,} stations: {dbc['wall_s']:.1f} s = "
            f"load {p.get('load', 0):.1f} s + analysis and scorecard "
            f"{p.get('analyse+summarise+gaps', 0):.1f} s + store and commit {store:.1f} s "
            f"({dbc['inputs'].get('cells', 0):,} `analysis_cell` rows by COPY). Cell polygons "
            "are not stored (an earlier version built one EWKT hexagon per row and spent "
            "~12 s there); `run_geojson` builds them from the cell ids when asked.")
    if dbr:
        tail = dbr["parts"].get("greedy+store+commit", 0.0)
        out.append(
            f"- **`run_recommendations` stores every cell again**: after the picks, "
            f"greedy + store + commit take {tail:.1f} s of its {dbr['wall_s']:.1f} s (the "
            f"greedy itself is ~{rec['parts']['lazy_greedy'] if rec else 0:.1f} s), to keep "
            f"{dbr['inputs'].get('cells', 0):,} cell rows that a coverage run over the same "
            f"region already holds, for a result of {dbr.get('sites', 0)} sites. Suggestion: "
            "store only the sites and the run (or point at the coverage run's cells); it "
            "also repeats the load and the analysis "
            f"({dbr['parts'].get('load+analyse', 0):.1f} s), which a planner who just ran "
            "the coverage could reuse.")
    if a and b:
        out.append(
            f"- **The pure analysis runs at the naive baseline's speed**: {a['wall_s']:.1f} s "
            f"vs {b['wall_s']:.1f} s at {n:,} stations, so exactness (geodesic refinement, "
            f"its proof and the ball fallback) costs {a['wall_s'] - b['wall_s']:+.1f} s. "
            "Most of both is per-point and per-cell Python calls into h3 "
            "(`latlng_to_cell` per point, `cell_to_latlng` per cell; h3 v4 has no vectorised "
            "API), plus `Geod.inv` for the exact distances; peak memory is "
            f"{a['peak_rss_kib'] / 1024**2:.2f} GiB. Nothing here is near the targets.")
    if rec:
        text = (
            f"- **Recommendations are cheap**: `coverage_matrix` "
            f"{rec['parts']['coverage_matrix']:.2f} s and `lazy_greedy` "
            f"{rec['parts']['lazy_greedy']:.2f} s for {rec['matrix_shape'][0]:,} candidates "
            f"(`plain_greedy` {rec['plain_greedy_s']:.1f} s, same picks).")
        if allc:
            text += (
                f" With the service's default candidates (every uncovered row, "
                f"{allc['matrix_shape'][0]:,} here) it is still {allc['wall_s']:.1f} s "
                f"(matrix {allc['parts']['coverage_matrix']:.1f} s, greedy "
                f"{allc['parts']['lazy_greedy']:.1f} s, peak RSS "
                f"{allc['peak_rss_kib'] / 1024:.0f} MiB).")
        out.append(text)
    return "\n".join(out) if out else "- nothing measured"


def render_md(doc: dict[str, Any]) -> str:
    started = dt.datetime.fromisoformat(doc["started_utc"])
    local = started.astimezone(ZoneInfo("Asia/Shanghai"))
    res, args, info = doc["results"], doc["args"], doc["machine"]
    sizes = sorted({r["stations"] for r in res})
    dbs = "\n".join(
        f"- `{d['db']}`: {d['stations']:,} stations + {args['demand']:,} demand points, "
        + ("reused (counts and fingerprints matched)" if d["reused"] else
           "built in " + f"{d['seconds']:.0f} s"
           + (f" (stations {d['station_load']['total_s']:.1f} s)" if "station_load" in d else "")
           + (f" (demand: generate {d['demand_load']['generate_s']:.1f} s, COPY "
              f"{d['demand_load']['copy_s']:.1f} s, index + VACUUM ANALYZE "
              f"{d['demand_load']['index_vacuum_s']:.1f} s)" if "demand_load" in d else ""))
        for d in doc["databases"]) or "- no database in this run (`--no-db`)"
    dbc = [r for r in res if r["phase"] == "db_coverage"]
    db_note = ""
    if dbc:
        pure = {r["stations"]: r for r in res if r["phase"] == "analysis"}
        lines = ["End to end vs pure path (same demand points, same stations):", ""]
        for r in dbc:
            inp, n = r["inputs"], r["stations"]
            lines.append(
                f"- {n:,} stations: the service read {inp.get('demand_points', 0):,} demand "
                f"points and {inp.get('stations', 0):,} stations into {inp.get('cells', 0):,} "
                f"cells; covered share {_pct(r['covered_share'], 3)}, pure path "
                f"{_pct(pure[n]['covered_share'], 3)}.")
        lines.append(
            "\nThe pure path splits cells by area label (nearest city centre); the bench "
            "database has no admin areas, so the service's rows are whole cells. Distances "
            "are per cell, so the demand-weighted covered share must agree.")
        db_note = "\n".join(lines) + "\n"
    measured = [r for r in res if r["phase"] in LABELS]
    other = max((r["foreign_cpu_pct"] for r in measured), default=0.0)
    repeated = [f"{r['stations']:,} {r['phase']}" for r in measured if r["attempts"] > 1]
    return f"""# Benchmark: coverage analysis and site recommendations

Generated by `bench/bench_coverage.py` on {started:%Y-%m-%d %H:%M} UTC
({local:%Y-%m-%d %H:%M} Asia/Shanghai); raw results in `bench/out/coverage/results.json`
(not committed). Every figure below was measured in that run:

```sh
{COMMAND}
```

## Result

{target_verdict(res)}

## Figures

{args['demand']:,} demand points, H3 resolution {args['resolution']}, threshold \
{args['threshold']:g} m; recommendations: N = {args['sites']} new sites over \
{args['candidates']:,} candidate sites.

Each row is one fresh Python process: imports and inputs are loaded first, then the timed
part runs. "wall s" is the timed part; "CPU s" the whole process's user + system CPU
(`wait4`; scipy's k-d tree queries use both cores); "peak RSS" the process's own
high-water mark (`VmHWM`; for the PostGIS rows the database server's memory is not
included); "RSS before timed part" the high-water mark when the timed part started
(interpreter, imports, inputs). "Other load" is CPU (% of one core) used during the row
by processes outside the benchmark: the machine is shared with other sessions, so each
row first waits up to {args['quiet_wait']:.0f} s for quiet and is repeated (up to \
{args['retries']}×) when other load exceeds {args['max_other_load']:.0f}%. Worst row: \
{other:.0f}%; repeated: {', '.join(repeated) or 'none'}.

{figures_table(res)}
- project analysis: `analyse` = H3 binning (`latlng_to_cell` per point), centroid per cell,
  exact WGS-84 geodesic nearest and second-nearest station (`nearest_two`); then the
  per-area scorecard and the top-20 gap cells, as `run_coverage` calls them;
- baseline analysis: `h3.latlng_to_cell` (string API) per point, `np.unique` on the cell
  strings and (cell, area) keys, `h3.cell_to_latlng` per cell, `cKDTree.query(k=2)` on the
  unit sphere, haversine metres on the mean-radius sphere; covered = nearest ≤ threshold;
  no exactness refinement; covered demand per area and the top-20 gaps only;
- project recommendations: `coverage_matrix` (exact geodesic) of candidates × every demand
  row, then `lazy_greedy(N)`, from the analysis's covered flags; `plain_greedy` (the
  project's O(N·C) reference) is timed separately and not counted; the "every gap cell"
  row is what `run_recommendations` does when the request gives no candidates;
- baseline recommendations: `cKDTree.query_ball_point` with the threshold as a chord on the
  mean-radius sphere + haversine filter into a CSR matrix, then N rounds of
  `gains = M @ residual; argmax; zero its columns`;
- end to end: `run_coverage(conn, CoverageRequest(bbox={list(BBOX)}, \
resolution={args['resolution']}, threshold_m={args['threshold']:g}, every station status))`
  and `run_recommendations(..., add={args['sites']}, candidates=<the same \
{args['candidates']:,} sites>)` on the bench database, through a plain psycopg connection
  as the CLI does; breakdown from the service's own progress messages
  (`run_recommendations` announces only the matrix and the picking). Each stored run is
  deleted afterwards.

## Where the time goes

{findings(res, sizes)}

## Agreement

Analysis, per (H3 cell, area) row, naive baseline vs the project's exact geodesic answer
(demand share in brackets):

{agreement_table(res, sizes)}
Recommendations (same candidates; each side starts from its own "already covered" flags;
"under the exact metric" scores the baseline's picks with the project's exact coverage
matrix and flags; the optimum is `recommend.exact`, HiGHS, given
{args['exact_seconds']:.0f} s):

{recommend_table(res, sizes)}
{db_note}
## Data

Synthetic, fixed seeds. Demand: seed {DEMAND_SEED}, {args['demand']:,} points,
{W_BACKGROUND:.0%} uniform over lon {make_data.LON_MIN:g}–{make_data.LON_MAX:g}, lat \
{make_data.LAT_MIN:g}–{make_data.LAT_MAX:g}, {1 - W_BACKGROUND:.0%} in clipped normal
clusters around the {len(make_data.CITIES)} city centres of `bench/make_data.py` (weighted by
city size); weight 1–5 workers per point; area label = the nearest city centre within
{AREA_REACH_DEG:g}°, else "". Stations: `make_data.generate_points` with its seed
{make_data.SEED}, i.e. the stations of the nearest benchmark (25% uniform, 15% eastern
provinces, 60% city clusters), coordinates rounded to 6 decimals exactly as stored.
Candidates: {args['candidates']:,} distinct uncovered cells of the project's analysis of that
station set, drawn with probability proportional to their demand (seed {CAND_SEED}); both
recommenders get the same candidate coordinates. Generating the inputs took
{doc['generate']['generate_s']:.1f} s.

Databases on the project-local cluster (`geo` and `geo_test_*` are not touched); stations
loaded by `make_data.load`, demand points by COPY with the GiST index rebuilt afterwards:

{dbs}

## Machine

- CPU: {info['cpu']}, `nproc` = {info['nproc']}; kernel {info['kernel']}
- Memory (`free -g`):

```
{info['free_g']}
```

- Python {info['python']}; {info['packages']}
- {info['postgres']}; PostGIS {info['postgis']}

## How to run

```sh
{COMMAND}                              # everything above (~4 min)
{COMMAND} --stations 100000 --no-db    # pure functions only
{COMMAND} --profile                    # also cProfile the PostGIS runs
{COMMAND} --md-only                    # re-render this file from results.json
.venv/bin/python bench/run_all.py --coverage   # nearest benchmark, then this one
```

Options: `--demand`, `--stations` (comma list), `--candidates`, `--sites`, `--threshold`,
`--resolution`, `--exact-seconds` (time limit for the HiGHS optimum, 0 skips it),
`--quiet-wait`, `--max-other-load`, `--retries`, `--timeout` (per phase), `--force-data`
(reload the bench databases), `--no-db`.
"""


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="coverage analysis + recommendations benchmark")
    ap.add_argument("--stations", default=",".join(str(s) for s in STATION_SIZES),
                    help="comma list of station counts (10000, 100k…)")
    ap.add_argument("--demand", type=int, default=N_DEMAND)
    ap.add_argument("--resolution", type=int, default=9)
    ap.add_argument("--threshold", type=float, default=1000.0, help="metres")
    ap.add_argument("--candidates", type=int, default=20_000)
    ap.add_argument("--sites", type=int, default=50, help="N new sites")
    ap.add_argument("--exact-seconds", type=float, default=60.0,
                    help="time limit of the HiGHS optimum in the agreement step (0: skip)")
    ap.add_argument("--db", action=argparse.BooleanOptionalAction, default=True,
                    help="also run the end-to-end PostGIS path")
    ap.add_argument("--force-data", action="store_true", help="reload the bench databases")
    ap.add_argument("--profile", action="store_true", help="cProfile the PostGIS runs")
    ap.add_argument("--quiet-wait", type=float, default=30.0)
    ap.add_argument("--max-other-load", type=float, default=25.0)
    ap.add_argument("--retries", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds per phase")
    ap.add_argument("--md", default=str(MD))
    ap.add_argument("--md-only", action="store_true")
    # internal: one phase in a child process
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.phase:
        return child_main(args)
    doc = json.loads((OUT / "results.json").read_text()) if args.md_only else run(args)
    md = Path(args.md)
    # bench/bench_reco.py owns the site-selection section: kept as it was written.
    old = md.read_text() if md.exists() else ""
    start, end = old.find(RECO_START), old.find(RECO_END)
    keep = "\n" + old[start : end + len(RECO_END)] + "\n" if 0 <= start < end else ""
    md.write_text(relative(render_md(doc)).rstrip("\n") + "\n" + keep)
    print(f"[coverage] wrote {args.md}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
