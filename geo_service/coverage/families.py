"""Synthetic instance families for the site-selection tests and benchmark.

One family hides what greedy gets wrong: on evenly spread demand greedy is near
optimal, on clusters of mixed sizes and along roads it can be a few percent short
(bench/COVERAGE.md). So recommendations are measured on all of them (issue 17).
Coordinates are around Sanya (109.5 E, 18.25 N), labelled SAMPLE wherever they are
shown; all generators are seeded.

Each returns ``(d_lon, d_lat, weight, c_lon, c_lat)``: demand units with weights
(1-5 workers) and candidate sites (a random subset of demand locations, jittered by up
to ~100 m, as gap-cell centres would be).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["FAMILIES", "clustered", "corridor", "existing_stations", "make", "uniform"]

FloatArray = npt.NDArray[np.float64]
Family = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]

LON0, LAT0 = 109.5, 18.25
#: Half-width of the square around Sanya, degrees (~20 km).
SPAN = 0.18
FAMILIES = ("uniform", "clustered-small", "clustered-mixed", "corridor")


def _candidates(rng: np.random.Generator, lon: FloatArray, lat: FloatArray,
                n: int) -> tuple[FloatArray, FloatArray]:
    idx = rng.choice(lon.size, size=n, replace=n > lon.size)
    jitter = rng.uniform(-0.001, 0.001, (2, n))
    return lon[idx] + jitter[0], lat[idx] + jitter[1]


def _finish(rng: np.random.Generator, lon: FloatArray, lat: FloatArray,
            n_cand: int) -> Family:
    weight = rng.integers(1, 6, lon.size).astype(np.float64)
    c_lon, c_lat = _candidates(rng, lon, lat, n_cand)
    return lon, lat, weight, c_lon, c_lat


def uniform(n_demand: int, n_cand: int, seed: int, span: float = SPAN) -> Family:
    """Demand spread evenly over the square."""
    rng = np.random.default_rng(seed)
    lon = LON0 + rng.uniform(-span, span, n_demand)
    lat = LAT0 + rng.uniform(-span, span, n_demand)
    return _finish(rng, lon, lat, n_cand)


def clustered(n_demand: int, n_cand: int, seed: int, sizes: tuple[float, ...],
              span: float = SPAN) -> Family:
    """Gaussian clusters (standard deviations in metres drawn from ``sizes``), 10 % noise."""
    rng = np.random.default_rng(seed)
    n_clusters = max(2, n_demand // 250)
    centres = np.column_stack([LON0 + rng.uniform(-span, span, n_clusters),
                               LAT0 + rng.uniform(-span, span, n_clusters)])
    sigma_deg = rng.choice(np.asarray(sizes, dtype=np.float64), n_clusters) / 111_000.0
    n_noise = n_demand // 10
    which = rng.integers(0, n_clusters, n_demand - n_noise)
    lon = np.concatenate([centres[which, 0] + rng.normal(0, 1, which.size) * sigma_deg[which],
                          LON0 + rng.uniform(-span, span, n_noise)])
    lat = np.concatenate([centres[which, 1] + rng.normal(0, 1, which.size) * sigma_deg[which],
                          LAT0 + rng.uniform(-span, span, n_noise)])
    return _finish(rng, lon, lat, n_cand)


def corridor(n_demand: int, n_cand: int, seed: int, roads: int = 4,
             span: float = SPAN) -> Family:
    """Points along a few random polylines (roads), within ~150 m of them."""
    rng = np.random.default_rng(seed)
    lon_parts, lat_parts = [], []
    per_road = np.diff(np.linspace(0, n_demand, roads + 1).astype(int))
    for count in per_road.tolist():
        knots = np.column_stack([LON0 + rng.uniform(-span, span, 5),
                                 LAT0 + rng.uniform(-span, span, 5)])
        seg = rng.integers(0, 4, count)
        t = rng.random(count)
        pts = knots[seg] + (knots[seg + 1] - knots[seg]) * t[:, None]
        pts += rng.normal(0, 150 / 111_000, (count, 2))
        lon_parts.append(pts[:, 0])
        lat_parts.append(pts[:, 1])
    return _finish(rng, np.concatenate(lon_parts), np.concatenate(lat_parts), n_cand)


def existing_stations(d_lon: FloatArray, d_lat: FloatArray, n: int,
                      seed: int) -> tuple[FloatArray, FloatArray]:
    """``n`` existing stations placed where demand is (so they cover some of it)."""
    rng = np.random.default_rng(seed + 7)
    idx = rng.choice(d_lon.size, size=n, replace=False)
    return d_lon[idx], d_lat[idx]


def make(family: str, n_demand: int, n_cand: int, seed: int, span: float = SPAN) -> Family:
    """One instance of a named family (see :data:`FAMILIES`) over a square of half-width
    ``span`` degrees around Sanya."""
    if family == "uniform":
        return uniform(n_demand, n_cand, seed, span)
    if family == "clustered-small":
        return clustered(n_demand, n_cand, seed, (150.0, 300.0), span)
    if family == "clustered-mixed":
        return clustered(n_demand, n_cand, seed, (200.0, 600.0, 1500.0), span)
    if family == "corridor":
        return corridor(n_demand, n_cand, seed, span=span)
    raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")
