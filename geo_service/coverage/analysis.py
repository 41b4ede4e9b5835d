"""H3 coverage-gap analysis: how much worker demand lies within reach of a rest station.

Planners ask which outdoor workers are beyond a 15-minute walk from a
trade-union rest station. Demand points are binned into H3 cells (scales to
millions of points, maps cleanly); each cell gets its exact nearest and
second-nearest station. Pure numpy, no database or HTTP: testable against
brute force, callable from the service, a CLI or a notebook.

Distance semantics
------------------
* A cell's distance is measured from the H3 cell **centroid**
  (``h3.cell_to_latlng``) to the station: geodesic metres on the WGS-84
  ellipsoid, ``Geod(ellps="WGS84").inv(centroid, station)``.
* All demand in a cell shares that cell's distance (at resolution 9 a point
  is at most ~200 m from its centroid; pick the resolution to suit the reach).
* H3 ring counts are never used as distance: cell sizes vary, metres do not.
* Covered: ``nearest_m <= threshold_m``; doubly: the second-nearest station
  too (resilience if one closes). Ties go to the lower station index.

Exact nearest stations, fast
----------------------------
Stations go on the unit sphere in a k-d tree: chord order is great-circle
order, ``d = 2 R asin(c / 2)``, ``R`` = 6 371 008.8 m. Taking geodetic
latitude as spherical latitude, the map sphere -> ellipsoid stretches every
direction by ``a(1 - e^2) / R ~ 0.9944`` to ``a^2 / (b R) ~ 1.0045`` (radii of
curvature), so, geodesics being shortest paths, geodesic/sphere distance lies
in that range for any pair; we use the looser ``[0.99, 1.01]``. Per query we
refine (``Geod.inv``) those of the ``k`` chord-nearest stations that could
still rank first or second, then check the proof: every other station is at
least ``0.99 x`` the k-th candidate's sphere distance away, so if that
exceeds the second-best geodesic the answer is exact. Otherwise (stations
nearly equidistant, e.g. a remote cell facing a distant cluster) a ball of
sphere radius ``second / 0.99`` is refined in full; that costs one geodesic
per station inside the ~2 % distance band.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
import numpy.typing as npt
from h3.api import basic_int
from pyproj import Geod
from scipy.spatial import cKDTree

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ObjArray = npt.NDArray[np.object_]

EARTH_MEAN_RADIUS_M = 6_371_008.8
#: Proven bounds (with margin) of geodesic / sphere distance on WGS-84.
RATIO_LOW = 0.99
RATIO_HIGH = 1.01
DEFAULT_K = 8
#: ``area`` label of the last row of :func:`summarise`.
TOTAL_AREA = "total"

_GEOD = Geod(ellps="WGS84")
_BLOCK = 1 << 18  # query rows per k-d tree pass: bounds temporary memory
_BALL_PAIRS = 1 << 21  # (query, station) pairs refined per ball batch


@dataclass(frozen=True, eq=False)
class CoverageResult:
    """Coverage per (H3 cell, area) row, sorted by cell then area.

    A cell straddling two districts gives two rows sharing centroid and
    distances, so per-area figures add up exactly to the whole.
    """

    cell: ObjArray
    area: ObjArray
    lon: FloatArray
    lat: FloatArray
    demand: FloatArray
    points: IntArray
    nearest: IntArray
    nearest_m: FloatArray
    second_m: FloatArray
    covered: BoolArray
    doubly: BoolArray
    threshold_m: float
    resolution: int


def _lonlat(prefix: str, lon: Any, lat: Any) -> tuple[FloatArray, FloatArray]:
    x, y = _float_array(f"{prefix}_lon", lon), _float_array(f"{prefix}_lat", lat)
    if x.shape != y.shape or bool(np.any(np.abs(y) > 90.0)):
        raise ValueError(f"{prefix}_lon/_lat must pair up, with latitudes in [-90, 90]")
    return x, y


def _float_array(name: str, values: Any) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or not bool(np.all(np.isfinite(arr))):
        raise ValueError(f"{name} must be a one-dimensional array of finite numbers")
    return arr


def _factorise(name: str, values: Any, n: int) -> tuple[list[str], IntArray]:
    """Sorted distinct labels, each item's code; None/NaN -> "" (a dict beats sorting)."""
    if values is None:
        return [""], np.zeros(n, dtype=np.int64)
    items = np.asarray(values, dtype=object)
    if items.shape != (n,):
        raise ValueError(f"{name} must be one-dimensional with {n} items")
    index: dict[Any, int] = {}
    raw = np.fromiter((index.setdefault(v, len(index)) for v in items.tolist()),
                      dtype=np.int64, count=n)
    normal = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
              for v in index]
    labels = sorted(set(normal))
    position = {label: i for i, label in enumerate(labels)}
    remap = np.array([position[label] for label in normal], dtype=np.int64)
    return labels, remap[raw] if n else raw


def _aggregate(lon: Any, lat: Any, weight: Any, area: Any, resolution: int
               ) -> tuple[ObjArray, IntArray, ObjArray, FloatArray, IntArray]:
    """Unique cells, then per row: index into them, area, demand, points."""
    if isinstance(resolution, bool) or not 0 <= int(resolution) <= 15:
        raise ValueError("resolution must be an integer in [0, 15]")
    x, y = _lonlat("demand", lon, lat)
    n = x.size
    w = np.ones(n) if weight is None else _float_array("demand_weight", weight)
    if w.shape != x.shape or bool(np.any(w < 0.0)):
        raise ValueError("demand_weight must be non-negative, one per demand point")
    labels, codes = _factorise("demand_area", area, n)
    # h3 v4 has no vectorised core; map() over the int API is the fastest loop
    # (~0.7 s per million points) and strings are made for unique cells only.
    cells = np.fromiter(
        map(basic_int.latlng_to_cell, y.tolist(), x.tolist(), itertools.repeat(int(resolution))),
        dtype=np.int64, count=n)
    ucells, cell_code = np.unique(cells, return_inverse=True)
    key = cell_code.astype(np.int64) * len(labels) + codes
    ukey, row_of = np.unique(key, return_inverse=True)
    demand = np.bincount(row_of, weights=w, minlength=ukey.size).astype(np.float64)
    points = np.bincount(row_of, minlength=ukey.size).astype(np.int64)
    row_area = np.asarray(labels, dtype=object)[ukey % len(labels)]
    ustr = np.asarray([h3.int_to_str(c) for c in ucells.tolist()], dtype=object).reshape(-1)
    return ustr, ukey // len(labels), row_area, demand, points


def aggregate_demand(lon: Any, lat: Any, weight: Any, area: Any, resolution: int
                     ) -> tuple[ObjArray, ObjArray, FloatArray, IntArray]:
    """Bin demand points into (H3 cell, area) rows.

    Parameters
    ----------
    lon, lat : array_like
        Demand points, WGS-84 degrees.
    weight, area : array_like or None
        Non-negative weight per point (e.g. workers; None counts points) and
        area label per point (e.g. district code; None/NaN become "").
    resolution : int
        H3 resolution, 0..15.

    Returns
    -------
    cell, area, demand, points
        One row per (cell, area) pair with at least one point, sorted by cell
        then area; ``demand`` sums the weights, ``points`` counts the points,
        so both totals are conserved.
    """
    ucells, cell_code, row_area, demand, points = _aggregate(lon, lat, weight, area, resolution)
    return ucells[cell_code], row_area, demand, points


def _unit_xyz(lon: FloatArray, lat: FloatArray) -> FloatArray:
    lam, phi = np.radians(lon), np.radians(lat)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


def _chord_to_m(chord: FloatArray) -> FloatArray:
    return 2.0 * EARTH_MEAN_RADIUS_M * np.arcsin(np.minimum(chord / 2.0, 1.0))


def _geodesic(x1: FloatArray, y1: FloatArray, x2: FloatArray, y2: FloatArray) -> FloatArray:
    """Geodesic metres, always query -> station so repeated pairs agree bit for bit."""
    _, _, dist = _GEOD.inv(x1, y1, x2, y2)
    return np.asarray(dist, dtype=np.float64)


def _ball_refine(tree: Any, xyz: FloatArray, qlon: FloatArray, qlat: FloatArray,
                 slon: FloatArray, slat: FloatArray, bad: IntArray,
                 out: tuple[IntArray, FloatArray, IntArray, FloatArray]) -> None:
    """Exact top two for rows whose k candidates could not prove the answer."""
    i1, g1, i2, g2 = out
    n = slon.size
    half_angle = np.minimum(g2[bad] / RATIO_LOW / (2.0 * EARTH_MEAN_RADIUS_M), math.pi / 2)
    radius = 2.0 * np.sin(half_angle) * (1.0 + 1e-9) + 1e-12  # chord, with rounding slack
    counts = np.asarray(tree.query_ball_point(xyz[bad], radius, return_length=True,
                                              workers=-1), dtype=np.int64).reshape(-1)
    cum = np.concatenate(([0], np.cumsum(counts)))
    start = 0
    while start < bad.size:  # batches of bounded size: a ball may hold every station
        stop = int(np.searchsorted(cum, cum[start] + _BALL_PAIRS, side="right")) - 1
        stop = min(max(stop, start + 1), bad.size)
        rows = bad[start:stop]
        balls = tree.query_ball_point(xyz[rows], radius[start:stop], workers=-1)
        lens = np.fromiter(map(len, balls), dtype=np.int64, count=rows.size)
        local = np.arange(rows.size, dtype=np.int64)
        # the current top two join the ball, so every row keeps >= 2 distinct stations
        rid = np.concatenate((np.repeat(local, lens), local, local))
        sid = np.concatenate((np.fromiter(itertools.chain.from_iterable(balls), dtype=np.int64,
                                          count=int(lens.sum())), i1[rows], i2[rows]))
        pair = np.unique(rid * n + sid)
        rid, sid = pair // n, pair % n
        g = _geodesic(qlon[rows][rid], qlat[rows][rid], slon[sid], slat[sid])
        order = np.lexsort((sid, g, rid))
        first = np.searchsorted(rid[order], local)
        i1[rows], g1[rows] = sid[order[first]], g[order[first]]
        i2[rows], g2[rows] = sid[order[first + 1]], g[order[first + 1]]
        start = stop


def nearest_two(qlon: Any, qlat: Any, slon: Any, slat: Any, *, k: int = DEFAULT_K
                ) -> tuple[IntArray, FloatArray, IntArray, FloatArray]:
    """Exact geodesic nearest and second-nearest station for each query point.

    Parameters
    ----------
    qlon, qlat, slon, slat : array_like
        Query points and stations, WGS-84 degrees.
    k : int
        Chord-nearest candidates per query before the exactness check (>= 2);
        only speed depends on it, never the answer.

    Returns
    -------
    idx1, d1, idx2, d2
        Station indices (-1 if there are not enough stations) and geodesic
        metres (inf likewise), equal to ranking every station with
        ``Geod(ellps="WGS84").inv(query, station)``; ties go to the lower index.
    """
    qx, qy = _lonlat("query", qlon, qlat)
    sx, sy = _lonlat("station", slon, slat)
    if k < 2:
        raise ValueError("k must be at least 2")
    m, n = qx.size, sx.size
    (i1, i2), (g1, g2) = np.full((2, m), -1, dtype=np.int64), np.full((2, m), np.inf)
    if m == 0 or n == 0:
        return i1, g1, i2, g2
    tree, kk = cKDTree(_unit_xyz(sx, sy)), min(k, n)
    for start in range(0, m, _BLOCK):  # blocks bound the temporary (m, k) arrays
        sl = slice(start, min(m, start + _BLOCK))
        bx, by, xyz = qx[sl], qy[sl], _unit_xyz(qx[sl], qy[sl])
        chord, cand = tree.query(xyz, k=kk, workers=-1)
        sph = _chord_to_m(np.asarray(chord, dtype=np.float64).reshape(-1, kk))
        cand = np.asarray(cand, dtype=np.int64).reshape(-1, kk)
        # A candidate can rank first or second only if 0.99 sph <= 1.01 sph[1]: the
        # best two geodesics are <= max(geo of the two sphere-nearest) <= 1.01 sph[1].
        rows, cols = np.nonzero(RATIO_LOW * sph <= RATIO_HIGH * sph[:, min(1, kk - 1), None])
        geo = np.full(sph.shape, np.inf)
        geo[rows, cols] = _geodesic(bx[rows], by[rows], sx[cand[rows, cols]], sy[cand[rows, cols]])
        order = np.lexsort((cand, geo), axis=-1)[:, :2]
        top, gtop = np.take_along_axis(cand, order, 1), np.take_along_axis(geo, order, 1)
        i1[sl], g1[sl] = top[:, 0], gtop[:, 0]
        if kk >= 2:
            i2[sl], g2[sl] = top[:, 1], gtop[:, 1]
        # other stations exist: proven if 0.99 x the k-th sphere distance > second geodesic
        bad = np.flatnonzero(~(RATIO_LOW * sph[:, -1] > g2[sl]) & (kk < n))
        if bad.size:
            _ball_refine(tree, xyz, bx, by, sx, sy, bad, (i1[sl], g1[sl], i2[sl], g2[sl]))
    return i1, g1, i2, g2


def analyse(demand_lon: Any, demand_lat: Any, demand_weight: Any, demand_area: Any,
            station_lon: Any, station_lat: Any, *, resolution: int = 9,
            threshold_m: float = 1000.0) -> CoverageResult:
    """Coverage of weighted demand by stations, per (H3 cell, area).

    Parameters
    ----------
    demand_lon, demand_lat, demand_weight, demand_area, resolution
        As for :func:`aggregate_demand` (weight and area may be None).
    station_lon, station_lat : array_like
        Stations (WGS-84); ``CoverageResult.nearest`` indexes these arrays.
    threshold_m : float
        Finite, non-negative reach in geodesic metres (:func:`minutes_to_metres`).

    Returns
    -------
    CoverageResult
        Distances from each cell centroid; see the module docstring.
    """
    threshold = float(threshold_m)
    if not math.isfinite(threshold) or threshold < 0.0:
        raise ValueError("threshold_m must be finite and non-negative")
    ucells, cell_code, area, demand, points = _aggregate(
        demand_lon, demand_lat, demand_weight, demand_area, resolution)
    sx, sy = _lonlat("station", station_lon, station_lat)
    centroids = [h3.cell_to_latlng(c) for c in ucells.tolist()]
    clat, clon = np.asarray(centroids, dtype=np.float64).reshape(-1, 2).T
    i1, g1, _, g2 = nearest_two(clon, clat, sx, sy)
    nearest_m, second_m = g1[cell_code], g2[cell_code]
    return CoverageResult(
        cell=ucells[cell_code], area=area,
        lon=clon[cell_code], lat=clat[cell_code], demand=demand, points=points,
        nearest=i1[cell_code], nearest_m=nearest_m, second_m=second_m,
        covered=np.isfinite(nearest_m) & (nearest_m <= threshold),
        doubly=np.isfinite(second_m) & (second_m <= threshold),
        threshold_m=threshold, resolution=int(resolution))


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return numerator / denominator * scale if denominator > 0 else None


def summarise(result: CoverageResult, station_area: Any, station_ten_ones: Any,
              station_unverified: Any) -> list[dict[str, Any]]:
    """Per-area coverage figures, then a total row (``area == TOTAL_AREA``, last).

    Areas are the sorted union of demand-row and station labels; a station
    counts towards the area of its own label (planners are accountable per
    district, whatever the station's catchment). Shares and ratios are None
    where their denominator (demand or stations) is zero. Per-area demand,
    uncovered and covered demand (``covered_share * demand``) and station
    counts add up to the total row.

    Parameters
    ----------
    result : CoverageResult
        From :func:`analyse`.
    station_area, station_ten_ones, station_unverified : array_like
        Per station given to :func:`analyse`: area label (None -> ""), count
        of "ten ones" amenities (10 is compliant), and True where the data is
        not verified on site.
    """
    ten = np.asarray(station_ten_ones, dtype=np.int64).reshape(-1) == 10
    unverified = np.asarray(station_unverified, dtype=bool).reshape(-1)
    n = ten.size
    if unverified.size != n or (result.nearest.size and int(result.nearest.max()) >= n):
        raise ValueError("station arrays must match the stations given to analyse")
    s_labels, s_codes = _factorise("station_area", station_area, n)
    labels = sorted(set(s_labels if n else []) | set(result.area.tolist()))
    if TOTAL_AREA in labels:
        raise ValueError(f"area label {TOTAL_AREA!r} is reserved for the total row")
    pos = {label: i for i, label in enumerate(labels)}
    rcode = np.fromiter(map(pos.__getitem__, result.area.tolist()), np.int64, result.area.size)
    scode = np.asarray([pos[x] for x in s_labels], dtype=np.int64)[s_codes] if n else s_codes
    d, a = result.demand, len(labels)
    per_area = {name: np.bincount(codes, w, a).astype(np.float64).tolist() for name, codes, w in (
        ("demand", rcode, d), ("covered", rcode, np.where(result.covered, d, 0.0)),
        ("doubly", rcode, np.where(result.doubly, d, 0.0)),
        ("uncovered", rcode, np.where(result.covered, 0.0, d)), ("stations", scode, None),
        ("ten", scode, ten.astype(np.float64)), ("unverified", scode, unverified * 1.0))}
    out = []
    for i, area in enumerate([*labels, TOTAL_AREA]):
        f = {k: v[i] if i < a else math.fsum(v) for k, v in per_area.items()}
        stations = round(f["stations"])
        out.append({"area": area, "stations": stations, "demand": f["demand"],
                    "covered_share": _ratio(f["covered"], f["demand"]),
                    "doubly_share": _ratio(f["doubly"], f["demand"]),
                    "uncovered_demand": f["uncovered"],
                    "stations_per_10k_workers": _ratio(stations, f["demand"], 10_000.0),
                    "ten_ones_compliance": _ratio(f["ten"], stations),
                    "unverified": round(f["unverified"])})
    return out


def gap_cells(result: CoverageResult, limit: int | None = None) -> list[dict[str, Any]]:
    """Cells with uncovered demand, largest first (ties by cell id).

    Rows of the same cell (several areas) are summed, so a cell straddling a
    district boundary is ranked by its whole demand. Cells whose uncovered
    demand is zero (only zero-weight points) are left out. ``nearest_m`` is
    None when there is no station at all, so the rows serialise to JSON.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be non-negative")
    gap = np.flatnonzero(~result.covered & (result.demand > 0.0))
    cells, first, inverse = np.unique(result.cell[gap], return_index=True, return_inverse=True)
    unc = np.bincount(inverse.reshape(-1), weights=result.demand[gap], minlength=cells.size)
    order = np.argsort(-unc, kind="stable")[:limit]
    rows = gap[first[order]]
    return [{"cell": str(result.cell[r]), "lon": float(result.lon[r]),
             "lat": float(result.lat[r]), "uncovered_demand": float(u),
             "nearest_m": float(result.nearest_m[r]) if result.nearest[r] >= 0 else None}
            for r, u in zip(rows.tolist(), unc[order].tolist(), strict=True)]


def minutes_to_metres(minutes: float, speed_kmh: float) -> float:
    """Reach in metres of ``minutes`` at ``speed_kmh`` (15 min at 4 km/h -> 1000 m).

    Thresholds are stated to planners as travel time ("a 15-minute walk");
    the analysis needs metres. Straight-line reach, not a network route.
    """
    if not (0 <= minutes < math.inf and 0 <= speed_kmh < math.inf):
        raise ValueError("minutes and speed_kmh must be finite and non-negative")
    return float(minutes) * float(speed_kmh) * 1000.0 / 60.0
