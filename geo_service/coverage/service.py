"""Coverage runs end to end: load from PostGIS, analyse in memory, store the run.

Loading and storing speak SQL through ``queries``; the analysis itself is the
pure array code in ``analysis`` and ``recommend``. Everything here is
synchronous: the API calls it from a worker thread, the CLI directly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from geo_service.coverage import (
    analysis,
    area_cover,
    by_road,
    certified,
    recommend,
    scorecard,
)
from geo_service.coverage import queries as q
from geo_service.coverage.schemas import CoverageRequest, RecommendRequest, check_extent
from geo_service.domain.catalogue import TEN_ONES_MASK, amenity_mask
from geo_service.domain.errors import Forbidden, NotFound, invalid

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

#: Stations are loaded from the region grown by this much (or the threshold, if
#: larger): enough for every covering station and for an honest "nearest
#: station" distance in gap cells; farther than this a cell reports none.
SEARCH_REACH_M = 25_000.0
#: Up to this many candidates the exact MILP (HiGHS) also runs, to report greedy's gap.
SMALL_INSTANCE = 2_000
EXACT_TIME_LIMIT_S = 30.0


@dataclass
class Inputs:
    """What one run reads from the database, as arrays."""

    region: str
    labels: list[str]
    on_record: int
    d_lon: np.ndarray
    d_lat: np.ndarray
    d_weight: np.ndarray
    d_label: np.ndarray
    codes: np.ndarray
    s_lon: np.ndarray
    s_lat: np.ndarray
    s_label: np.ndarray
    s_ten: np.ndarray
    s_unverified: np.ndarray
    sample: bool  # sample stations or demand in this run
    basis: str = "demand"  # "area": no demand data, each H3 cell counts once (area_cover)


def _region(conn: psycopg.Connection[Any], req: CoverageRequest,
            scope: str | None = None) -> tuple[str, list[str]]:
    """The analysed geometry (hex EWKB) and the labels of its parts for the scorecard.

    ``scope`` is the key's area: a scoped planner analyses only inside it (the
    run reads every demand point and station of the region and is stored).
    """
    labels: list[str]
    if req.area is not None:
        row = conn.execute(q.AREA, {"code": req.area}).fetchone()
        if row is None:
            raise NotFound(f"no admin area {req.area!r}", [("area", "unknown area code")])
        if not row[3]:
            raise invalid("area", f"area {req.area} has no boundary to analyse")
        labels = list(row[4]) or [req.area]
    params: dict[str, Any] = {
        "area": req.area, "polygon": json.dumps(req.polygon) if req.polygon else None,
        "minlon": None, "minlat": None, "maxlon": None, "maxlat": None,
    }
    if req.bbox is not None:
        params.update(zip(("minlon", "minlat", "maxlon", "maxlat"), req.bbox, strict=True))
    try:
        region = conn.execute(q.REGION, params).fetchone()
    except (psycopg.errors.DataError, psycopg.errors.InternalError_) as exc:
        # Only a client's polygon can fail here (PostGIS reports bad GeoJSON either way).
        log.info("polygon refused by PostGIS: %s", exc)
        raise invalid("polygon", "not a valid GeoJSON polygon") from None
    assert region is not None
    if req.area is not None:
        _check_area_extent(conn, req.area, region[0])
    if scope is not None:
        inside = conn.execute(q.IN_SCOPE, {"scope": scope, "area": req.area,
                                           "region": region[0]}).fetchone()
        if not (inside and inside[0]):
            field = next(n for n in ("area", "polygon", "bbox") if getattr(req, n) is not None)
            raise Forbidden(f"this key is limited to area {scope}; the {field} is outside it",
                            [(field, f"outside the key's area {scope}")])
    if req.area is None:
        found = conn.execute(
            "SELECT code FROM admin_area WHERE level = 'district' "
            "AND ST_Intersects(geom, %s::geometry) ORDER BY code", (region[0],)).fetchall()
        labels = [c for (c,) in found]
    return str(region[0]), labels


def _check_area_extent(conn: psycopg.Connection[Any], area: str, region: Any) -> None:
    """An area's polygon gets the limit a bbox or polygon gets in the request schema.

    Why: the schema can only check the regions a client draws. An area whose stored
    polygon carries a spike (a zero-area one to latitude -89 passed the boundary import's
    inside-share check before the extent check existed) would otherwise be analysed on a
    ~107°-tall extent: a continent's worth of demand and stations, and H3 cells to match.
    """
    box = conn.execute(q.REGION_EXTENT, {"region": region}).fetchone()
    if box is None or box[0] is None:
        raise invalid("area", f"area {area} has no boundary to analyse")
    try:
        check_extent(*(float(v) for v in box))
    except ValueError as exc:
        raise invalid("area", f"area {area}'s boundary {exc} (a spike or stray vertex in "
                              "it? re-import the boundary)") from None


def load_inputs(conn: psycopg.Connection[Any], req: CoverageRequest,
                scope: str | None = None) -> Inputs:
    region, labels = _region(conn, req, scope)
    f = req.stations
    demand = conn.execute(q.DEMAND, {"region": region, "labels": labels,
                                     "worker_types": req.worker_types}).fetchall()
    basis = "demand"
    if not demand:
        if req.worker_types:  # demand there may be, but none of these workers
            raise invalid("worker_types", "no demand points of these worker types in this "
                                          "region: nothing to analyse")
        demand = area_cover.area_points(conn, region, labels, req.resolution)
        basis = "area"
    if not demand:
        raise invalid("area", "the region holds no H3 cell at this resolution: nothing to "
                              "analyse")
    stations = conn.execute(q.STATIONS, {
        "region": region, "labels": labels, "ten_mask": TEN_ONES_MASK,
        "verified_days": req.verified_days, "statuses": [s.value for s in f.statuses],
        "want": amenity_mask(f.amenities), "min_ten_ones": f.min_ten_ones,
        "open_at": f.open_at, "include_unknown": f.include_unknown,
        "exclude": f.exclude or None,
        "verified_within": f.verified_within_days, "confirmed_within": f.confirmed_within_days,
        "reach_m": max(req.threshold() * 1.01, SEARCH_REACH_M),
    }).fetchall()
    on_record, sample_on_record = conn.execute(q.ON_RECORD, {"region": region}).fetchone() \
        or (0, False)
    d = list(zip(*demand, strict=True))
    s: list[Any] = list(zip(*stations, strict=True)) if stations else [()] * 7
    # Sample only when sample data is in this run: its demand, its stations, or the
    # stations on record it counts (not because a sample city exists somewhere else).
    sample = any(d[4]) or any(s[6]) or bool(sample_on_record)
    return Inputs(
        region=region, labels=labels, on_record=int(on_record),
        d_lon=np.asarray(d[0], float), d_lat=np.asarray(d[1], float),
        d_weight=np.asarray(d[2], float), d_label=np.asarray(d[3], object),
        codes=np.asarray(s[0], object), s_lon=np.asarray(s[1], float),
        s_lat=np.asarray(s[2], float), s_label=np.asarray(s[3], object),
        s_ten=np.asarray(s[4], int), s_unverified=np.asarray(s[5], bool), sample=sample,
        basis=basis,
    )


def finite(value: Any) -> Any:
    """JSON has no Infinity/NaN: "no station" distances become null."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _cell_rows(run_id: int, res: analysis.CoverageResult, codes: np.ndarray) -> Any:
    code_list = codes.tolist()
    near_code = [code_list[i] if i >= 0 else None for i in res.nearest.tolist()]
    near_m = np.where(np.isfinite(res.nearest_m), res.nearest_m, np.nan).tolist()
    second_m = np.where(np.isfinite(res.second_m), res.second_m, np.nan).tolist()
    columns = zip(res.cell.tolist(), res.area.tolist(), res.demand.tolist(),
                  res.points.tolist(), near_code, near_m, second_m,
                  res.covered.tolist(), res.doubly.tolist(), strict=True)
    for cell, area, demand, points, code, d1, d2, covered, doubly in columns:
        yield (run_id, cell, area, demand, points, code, None if d1 != d1 else d1,
               None if d2 != d2 else d2, covered, doubly)


def cell_polygon(cell: str) -> dict[str, Any]:
    """The hexagon of an H3 cell as a GeoJSON Polygon (lon, lat order, ring closed)."""
    ring = [[round(lng, 7), round(lat, 7)] for lat, lng in h3.cell_to_boundary(cell)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def _store(conn: psycopg.Connection[Any], kind: str, req: CoverageRequest, inputs: Inputs,
           summary: dict[str, Any], res: analysis.CoverageResult,
           service_areas: list[tuple[str, bytes]] | None = None) -> tuple[int, str]:
    with conn.transaction():
        row = conn.execute(q.INSERT_RUN, {
            "kind": kind, "params": Jsonb(req.model_dump(mode="json")),
            "inputs": Jsonb({"demand_points": len(inputs.d_lon) if inputs.basis == "demand"
                             else 0, "basis": inputs.basis, "stations": len(inputs.codes),
                             "cells": len(res.cell), "areas": inputs.labels}),
            "summary": Jsonb(summary), "sample": inputs.sample,
        }).fetchone()
        assert row is not None
        run_id = int(row[0])
        with conn.cursor() as cur, cur.copy(q.COPY_CELLS) as copy:
            for values in _cell_rows(run_id, res, inputs.codes):
                copy.write_row(values)
        if service_areas:
            with conn.cursor() as cur:
                cur.executemany(q.INSERT_SERVICE_AREA, [
                    {"run_id": run_id, "code": code, "wkb": wkb} for code, wkb in service_areas])
        return run_id, row[1].isoformat()


def _analyse(req: CoverageRequest, inputs: Inputs) -> analysis.CoverageResult:
    """The straight-line analysis every run starts with (and a what-if runs twice)."""
    return analysis.analyse(inputs.d_lon, inputs.d_lat, inputs.d_weight, inputs.d_label,
                            inputs.s_lon, inputs.s_lat, resolution=req.resolution,
                            threshold_m=req.threshold())


def run_coverage(conn: psycopg.Connection[Any], req: CoverageRequest,
                 progress: Progress | None = None, scope: str | None = None,
                 roads: by_road.Roads | None = None) -> dict[str, Any]:
    """Analyse, store the run and return its summary: the scorecard by district name,
    worst first (:mod:`~geo_service.coverage.scorecard`), and the ranked gaps.

    ``roads`` gives the loaded road network for ``reach=walk|ebike`` (None: read it
    from the database now).
    """
    say = progress or (lambda _msg: None)
    say("loading demand and stations")
    inputs = load_inputs(conn, req, scope)
    what = "demand points" if inputs.basis == "demand" else "H3 cells (no demand data: by area)"
    say(f"analysing {len(inputs.d_lon)} {what} against {len(inputs.codes)} stations")
    done = by_road.analyse(conn, req, inputs, _analyse(req, inputs), roads, say)
    res = done.res
    summary = finite({
        "threshold_m": req.threshold(), "resolution": req.resolution,
        "areas": scorecard.named_scorecard(conn, by_road.area_rows(inputs, done)),
        **by_road.reach_summary(done),
        "gaps": analysis.gap_cells(res, req.gaps),
        "sample_data": inputs.sample, **_basis(inputs),
    })
    say("storing the run")
    run_id, created = _store(conn, "coverage", req, inputs, summary, res, done.service_areas)
    return {"run_id": run_id, "kind": "coverage", "created_at": created, **summary}


def run_recommendations(conn: psycopg.Connection[Any], req: RecommendRequest,
                        progress: Progress | None = None, scope: str | None = None,
                        roads: by_road.Roads | None = None) -> dict[str, Any]:
    """Pick new sites (MCLP) with today's qualifying stations fixed; store the run.
    By road (``reach=walk|ebike``) each candidate's cells are those it reaches."""
    say = progress or (lambda _msg: None)
    inputs = load_inputs(conn, req, scope)
    done = by_road.analyse(conn, req, inputs, _analyse(req, inputs), roads, say)
    res = done.res
    if req.candidates is not None:
        c_lon = np.asarray([c[0] for c in req.candidates], float)
        c_lat = np.asarray([c[1] for c in req.candidates], float)
        labels = [f"candidate {i + 1}" for i in range(len(c_lon))]
    else:
        gaps = ~res.covered
        c_lon, c_lat = res.lon[gaps], res.lat[gaps]
        labels = [f"cell {c}" for c in res.cell[gaps]]
    if len(c_lon) == 0:
        raise invalid("candidates", "no candidate sites: every cell is already covered")
    if req.add is not None and req.add > len(c_lon):
        raise invalid("add", f"{req.add} new sites asked but only {len(c_lon)} candidates")
    say(f"coverage matrix: {len(c_lon)} candidates × {len(res.cell)} cells")
    if done.road is None:
        matrix = recommend.coverage_matrix(c_lon, c_lat, res.lon, res.lat, req.threshold())
    else:
        matrix = by_road.matrix(done.road, c_lon, c_lat)
    started = time.monotonic()
    plan, greedy, note, optimal_gap = _choose(req, matrix, res, len(c_lon), say)
    solver_seconds = time.monotonic() - started
    total = float(res.demand.sum())
    sites = [{"rank": n + 1, "label": labels[p.candidate], "lon": float(c_lon[p.candidate]),
              "lat": float(c_lat[p.candidate]), "gain": p.gain,
              "covered_after": p.covered_after} for n, p in enumerate(plan.picks)]
    sites = scorecard.describe_sites(conn, sites)
    summary = finite({
        "threshold_m": req.threshold(), "resolution": req.resolution, "method": plan.method,
        **({} if done.road is None else done.road.summary()),
        "stations_on_record": inputs.on_record,
        "stations_before": len(inputs.codes), "stations_after": len(inputs.codes) + len(sites),
        "total_demand": total,
        "covered_before": plan.covered_before, "covered_after": plan.covered_after,
        "covered_share_before": plan.covered_before / total if total else None,
        "covered_share_after": plan.covered_after / total if total else None,
        "optimal_gap": optimal_gap, "target_share": req.target_share,
        "target_reached": plan.target_reached, "note": note,
        **_certificate(plan, greedy, solver_seconds, req.time_budget_s),
        "sites": sites, "sample_data": inputs.sample, **_basis(inputs),
    })
    run_id, created = _store(conn, "recommendations", req, inputs, summary, res,
                             done.service_areas)
    with conn.transaction():
        for site in sites:
            conn.execute(q.INSERT_SITE, {**site, "run_id": run_id})
    return {"run_id": run_id, "kind": "recommendations", "created_at": created, **summary}


def _basis(inputs: Inputs) -> dict[str, Any]:
    """What the run's demand figures count (workers, or H3 cells), said in words too."""
    zh, en = area_cover.BASIS_WORDS[inputs.basis]
    return {"basis": inputs.basis, "basis_label": f"{zh} {en}"}


def _choose(req: RecommendRequest, matrix: Any, res: analysis.CoverageResult, n_candidates: int,
            say: Progress) -> tuple[recommend.Plan, recommend.Plan, str | None, float | None]:
    """The plan by ``req.method``, greedy's for comparison, a note and the true gap.

    Every plan leaves with a proven bound (``certified``): swap computes it as it
    searches; greedy's is computed for it; an exact plan is measured against the bound
    of the swap plan that warm-started it (HiGHS's own optimality is up to its float
    tolerances, the Lagrangian bound is proven with slack).
    """
    demand, covered, budget = res.demand, res.covered, req.time_budget_s
    note, optimal_gap = None, None
    if req.add is None:
        assert req.target_share is not None
        say(f"fewest sites for {req.target_share:.1%} of demand ({req.method})")
        greedy = recommend.sites_for_share(matrix, demand, covered, req.target_share,
                                           max_sites=n_candidates)
        if req.method == "greedy":
            return greedy, greedy, None, None
        plan = certified.share_plan(matrix, demand, covered, req.target_share, n_candidates,
                                    time_budget=budget)
        return plan, greedy, None, None
    say(f"choosing {req.add} sites ({req.method})")
    greedy = recommend.lazy_greedy(matrix, demand, covered, req.add)
    if req.method == "greedy":
        plan = certified.certify(matrix, demand, covered, greedy, req.add,
                                 time_budget=min(budget, 2.0))
    else:
        plan = certified.swap_plan(matrix, demand, covered, req.add, time_budget=budget)
    best = None
    if req.method == "exact" or n_candidates <= SMALL_INSTANCE:
        # Small instances get the exact optimum too, to report the plan's real gap.
        best = recommend.exact(matrix, demand, covered, req.add, time_limit=EXACT_TIME_LIMIT_S,
                               at_least=plan.added)
    if best is not None and best.covered_after > 0:
        optimal_gap = max(0.0, (best.covered_after - plan.covered_after) / best.covered_after)
    elif req.method == "exact":
        note = (f"the exact solver did not prove an optimum within "
                f"{EXACT_TIME_LIMIT_S:.0f} s; the swap plan is shown")
    if req.method == "exact" and best is not None:
        assert plan.upper_bound is not None
        bound_added = plan.upper_bound - plan.covered_before
        gap = max(0.0, 1 - best.added / bound_added) if bound_added > 0 else 0.0
        plan = dataclasses.replace(best, upper_bound=plan.upper_bound, gap_bound=gap,
                                   bound_source=plan.bound_source)
        optimal_gap = 0.0
    return plan, greedy, note, optimal_gap


def _certificate(plan: recommend.Plan, greedy: recommend.Plan, seconds: float,
                 budget: float) -> dict[str, Any]:
    """What a planner reads to judge the plan: how long, how close to the best, proven."""
    gap = plan.gap_bound if plan.upper_bound is not None else None
    return {
        "solver_seconds": round(seconds, 3), "time_budget_s": budget,
        "upper_bound": plan.upper_bound, "certified_gap": gap,
        "at_least_share_of_best": None if gap is None else max(0.0, 1.0 - gap),
        "bound_source": plan.bound_source, "sites_lower_bound": plan.sites_lower_bound,
        "greedy_covered_after": greedy.covered_after, "greedy_sites": len(greedy.picks),
    }


def get_run(conn: psycopg.Connection[Any], run_id: int) -> dict[str, Any]:
    row = conn.execute(q.GET_RUN, {"id": run_id}).fetchone()
    if row is None:
        raise NotFound(f"no analysis run {run_id}", [("id", "unknown run")])
    keys = ("id", "kind", "params", "inputs", "summary", "created_at", "sample")
    return dict(zip(keys, row, strict=True))


#: What a run's summary says of each site beyond its point (``scorecard.describe_sites``).
SITE_FACTS = ("district_code", "district", "street", "gcj02", "bd09", "amap", "new_workers")

#: A run's cell as stored: its H3 id and area, demand, nearest stations, coverage.
CELL_KEYS = ("cell", "area_code", "demand", "points", "nearest_code", "nearest_m", "second_m",
             "covered", "doubly")


def latest_run_id(conn: psycopg.Connection[Any], area: str | None) -> int | None:
    """The newest stored run of ``area`` (None: any), recommendations first: they
    carry both the cells and the picked sites."""
    row = conn.execute(q.LATEST_RUN, {"area": area}).fetchone()
    return int(row[0]) if row else None


def run_with_cells(conn: psycopg.Connection[Any], run_id: int | None, *, area: str | None,
                   max_cells: int) -> dict[str, Any]:
    """A stored run (:func:`get_run`) with its ``cells`` (:data:`CELL_KEYS` dicts, WGS-84
    H3 ids): the asked run, or the newest of ``area``.

    How other rooms read runs (the coverage map), so the run tables have one
    reader. None stored is a 404 naming ``run``; a run of more than
    ``max_cells`` cells is a 422 naming ``run``, refused before they are read.
    """
    if run_id is None:
        run_id = latest_run_id(conn, area)
        if run_id is None:
            raise NotFound("no coverage run stored for this area: run `geo-service recommend` "
                           "or POST /v1/analysis/recommendations first",
                           [("run", "no stored run for this area")])
    run = get_run(conn, run_id)
    count_row = conn.execute(q.RUN_CELL_COUNT, {"id": run_id}).fetchone()
    n_cells = int(count_row[0]) if count_row else 0
    if n_cells > max_cells:
        raise invalid("run", f"run {run_id} has {n_cells:,} cells; a map draws at most "
                             f"{max_cells:,}: analyse a smaller area")
    run["cells"] = [dict(zip(CELL_KEYS, row, strict=True))
                    for row in conn.execute(q.RUN_CELLS, {"id": run_id})]
    run["service_areas"] = [(code, json.loads(geometry)) for code, geometry in
                            conn.execute(q.RUN_SERVICE_AREAS, {"id": run_id})]
    return run


def run_geojson(conn: psycopg.Connection[Any], run_id: int, what: str) -> dict[str, Any]:
    """Cells (polygons) or recommended sites (points) of a run, as a FeatureCollection.

    A site carries what its run described (district, street, GCJ-02, BD-09, Amap link)
    where the run stored it (runs made before issue 27 did not).
    """
    described = {s.get("rank"): s for s in get_run(conn, run_id)["summary"].get("sites") or []}
    features = []
    if what == "service-areas":
        for code, geometry in conn.execute(q.RUN_SERVICE_AREAS, {"id": run_id}):
            features.append({"type": "Feature", "geometry": json.loads(geometry),
                             "properties": {"station_code": code}})
    elif what == "cells":
        for row in conn.execute(q.RUN_CELLS, {"id": run_id}):
            features.append({"type": "Feature", "geometry": cell_polygon(row[0]),
                             "properties": dict(zip(CELL_KEYS, row, strict=True))})
    else:
        for rank, label, lon, lat, gain, after in conn.execute(q.RUN_SITES, {"id": run_id}):
            features.append({"type": "Feature",
                             "geometry": {"type": "Point", "coordinates": [lon, lat]},
                             "properties": {"rank": rank, "label": label, "gain": gain,
                                            "covered_after": after, **{
                                                k: described.get(rank, {}).get(k)
                                                for k in SITE_FACTS}}})
    return {"type": "FeatureCollection", "features": features}
