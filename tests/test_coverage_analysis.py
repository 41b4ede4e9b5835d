"""Coverage analysis equals brute force, conserves demand and behaves monotonically.

Pure array tests: no database. Brute force ranks every station with
``pyproj.Geod(ellps="WGS84").inv(query, station)``; ties go to the lower index.
"""

from __future__ import annotations

from typing import Any

import h3
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geo_service.coverage import analysis
from geo_service.coverage.analysis import (
    TOTAL_AREA,
    aggregate_demand,
    analyse,
    gap_cells,
    minutes_to_metres,
    nearest_two,
    summarise,
)

GEOD = Geod(ellps="WGS84")
Arr = np.ndarray[Any, Any]


def brute_two(qlon: Arr, qlat: Arr, slon: Arr, slat: Arr) -> tuple[Arr, Arr, Arr, Arr]:
    m, n = len(qlon), len(slon)
    i1, i2 = np.full(m, -1), np.full(m, -1)
    d1, d2 = np.full(m, np.inf), np.full(m, np.inf)
    if n == 0 or m == 0:
        return i1, d1, i2, d2
    _, _, d = GEOD.inv(np.repeat(qlon, n), np.repeat(qlat, n), np.tile(slon, m), np.tile(slat, m))
    d = np.asarray(d).reshape(m, n)
    order = np.lexsort((np.broadcast_to(np.arange(n), (m, n)), d), axis=-1)
    i1 = order[:, 0]
    d1 = d[np.arange(m), i1]
    if n >= 2:
        i2 = order[:, 1]
        d2 = d[np.arange(m), i2]
    return i1, d1, i2, d2


def assert_same(got: tuple[Arr, ...], want: tuple[Arr, ...]) -> None:
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def china(rng: np.random.Generator, n: int, box: tuple[float, float, float, float]
          ) -> tuple[Arr, Arr]:
    return rng.uniform(box[0], box[2], n), rng.uniform(box[1], box[3], n)


GUANGDONG = (112.0, 21.5, 115.5, 24.5)
HEILONGJIANG_NORTH = (121.0, 52.0, 127.0, 53.5)
ARCTIC = (20.0, 78.0, 30.0, 80.0)  # far beyond China: the ratio bounds hold anywhere


@pytest.mark.parametrize("box", [GUANGDONG, HEILONGJIANG_NORTH, ARCTIC])
@pytest.mark.parametrize("n_stations", [0, 1, 2, 3, 8, 9, 500])
def test_nearest_two_equals_brute_force(box: tuple[float, float, float, float],
                                        n_stations: int) -> None:
    rng = np.random.default_rng(n_stations * 7 + int(box[0]))
    qlon, qlat = china(rng, 2000 if n_stations == 500 else 300, box)
    slon, slat = china(rng, n_stations, box)
    want = brute_two(qlon, qlat, slon, slat)
    for k in (2, 8):  # k=2 fails the candidate proof far more often: the ball path
        assert_same(nearest_two(qlon, qlat, slon, slat, k=k), want)


@pytest.mark.parametrize("k", [2, 3, 8])
def test_nearest_two_clustered_near_equal_and_duplicate_stations(
        k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tight clusters far from the queries fail the k-candidate proof: the ball path."""
    balls: list[int] = []
    refine = analysis._ball_refine

    def counting(*args: Any) -> None:
        balls.append(len(args[6]))
        refine(*args)

    monkeypatch.setattr(analysis, "_ball_refine", counting)
    rng = np.random.default_rng(k)
    centres = np.array([[113.30, 23.10], [113.60, 23.40], [114.05, 22.55]])
    pick = rng.integers(0, 3, 300)
    slon = centres[pick, 0] + rng.normal(0, 0.0005, 300)
    slat = centres[pick, 1] + rng.normal(0, 0.0005, 300)
    slon[200:220], slat[200:220] = slon[0], slat[0]  # exact duplicates: ties by index
    # stations on a circle around a query point: equal up to the ellipsoid's asymmetry
    ring = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    slon = np.concatenate((slon, 113.0 + 0.01 * np.cos(ring)))
    slat = np.concatenate((slat, 22.0 + 0.01 * np.sin(ring)))
    qlon = np.concatenate((rng.uniform(112.0, 115.0, 1500), [113.0, slon[0]]))
    qlat = np.concatenate((rng.uniform(21.5, 24.5, 1500), [22.0, slat[0]]))
    got = nearest_two(qlon, qlat, slon, slat, k=k)
    assert_same(got, brute_two(qlon, qlat, slon, slat))
    assert got[0][-1] == 0 and got[2][-1] == 200 and got[1][-1] == got[3][-1] == 0.0
    assert sum(balls) > 100


def test_nearest_two_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        nearest_two([0.0], [91.0], [0.0], [0.0])
    with pytest.raises(ValueError):
        nearest_two([0.0], [np.nan], [0.0], [0.0])
    with pytest.raises(ValueError):
        nearest_two([0.0], [0.0], [0.0], [0.0], k=1)


def random_demand(rng: np.random.Generator, n: int, box: tuple[float, float, float, float]
                  ) -> tuple[Arr, Arr, Arr, Arr]:
    lon, lat = china(rng, n, box)
    weight = rng.integers(0, 20, n).astype(float)
    area = np.asarray(rng.choice(["440103", "440104", "440105", None], n), dtype=object)
    return lon, lat, weight, area


def test_aggregate_demand_conserves_weight_and_points() -> None:
    rng = np.random.default_rng(1)
    lon, lat, weight, area = random_demand(rng, 5000, (113.2, 23.0, 113.4, 23.2))
    for res in (6, 8, 9):
        cell, row_area, demand, points = aggregate_demand(lon, lat, weight, area, res)
        assert demand.sum() == pytest.approx(weight.sum(), rel=1e-12)
        assert points.sum() == 5000 and points.min() >= 1
        assert all(h3.is_valid_cell(c) and h3.get_resolution(c) == res for c in set(cell))
        assert set(row_area) <= {"440103", "440104", "440105", ""}
        pairs = list(zip(cell.tolist(), row_area.tolist(), strict=True))
        assert len(set(pairs)) == len(pairs) and pairs == sorted(pairs)
        # each point lands in its own cell's row
        first = h3.latlng_to_cell(lat[0], lon[0], res)
        assert (first, area[0] or "") in set(pairs)
    cell, row_area, demand, points = aggregate_demand(lon, lat, None, None, 9)
    assert set(row_area) == {""} and demand.sum() == 5000.0
    empty = aggregate_demand([], [], [], [], 9)
    assert all(len(a) == 0 for a in empty)


def brute_cells(result: Any, slon: Arr, slat: Arr) -> tuple[Arr, Arr, Arr, Arr]:
    cells = sorted(set(result.cell))
    lat, lon = np.array([h3.cell_to_latlng(c) for c in cells]).T
    i1, d1, _, d2 = brute_two(lon, lat, slon, slat)
    where = {c: i for i, c in enumerate(cells)}
    rows = np.array([where[c] for c in result.cell])
    return i1[rows], d1[rows], d2[rows], np.c_[lon, lat][rows]


@pytest.mark.parametrize("n_stations", [0, 1, 2, 250])
def test_analyse_equals_brute_force(n_stations: int) -> None:
    rng = np.random.default_rng(10 + n_stations)
    box = (113.0, 22.8, 113.6, 23.4)
    lon, lat, weight, area = random_demand(rng, 4000, box)
    slon, slat = china(rng, n_stations, box)
    threshold = 1500.0
    result = analyse(lon, lat, weight, area, slon, slat, resolution=8, threshold_m=threshold)
    i1, d1, d2, centroid = brute_cells(result, slon, slat)
    np.testing.assert_array_equal(result.nearest, i1)
    np.testing.assert_allclose(result.nearest_m, d1, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.second_m, d2, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.c_[result.lon, result.lat], centroid)
    np.testing.assert_array_equal(result.covered, d1 <= threshold)
    np.testing.assert_array_equal(result.doubly, d2 <= threshold)
    assert result.resolution == 8 and result.threshold_m == threshold
    assert result.demand.sum() == pytest.approx(weight.sum())


def covered_demand(result: Any) -> float:
    return float(np.where(result.covered, result.demand, 0.0).sum())


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), t1=st.floats(0, 5000), t2=st.floats(0, 5000),
       res=st.integers(6, 9))
def test_covered_demand_grows_with_threshold_and_stations(seed: int, t1: float, t2: float,
                                                          res: int) -> None:
    rng = np.random.default_rng(seed)
    box = (113.2, 23.0, 113.4, 23.2)
    lon, lat, weight, area = random_demand(rng, 400, box)
    slon, slat = china(rng, int(rng.integers(0, 30)), box)
    lo, hi = sorted((t1, t2))
    before = analyse(lon, lat, weight, area, slon, slat, resolution=res, threshold_m=lo)
    wider = analyse(lon, lat, weight, area, slon, slat, resolution=res, threshold_m=hi)
    assert covered_demand(wider) >= covered_demand(before)
    assert np.all(wider.covered >= before.covered) and np.all(wider.doubly >= before.doubly)
    nlon, nlat = china(rng, 1, box)
    more = analyse(lon, lat, weight, area, np.r_[slon, nlon], np.r_[slat, nlat],
                   resolution=res, threshold_m=lo)
    assert covered_demand(more) >= covered_demand(before)
    assert np.all(more.nearest_m <= before.nearest_m) and np.all(more.second_m <= before.second_m)


def test_summarise_areas_add_up_to_total() -> None:
    rng = np.random.default_rng(3)
    box = (113.0, 22.8, 113.6, 23.4)
    lon, lat, weight, area = random_demand(rng, 3000, box)
    slon, slat = china(rng, 60, box)
    s_area = np.asarray(rng.choice(["440103", "440104", "440106", None], 60), dtype=object)
    ten = rng.integers(6, 11, 60)
    unverified = rng.random(60) < 0.3
    result = analyse(lon, lat, weight, area, slon, slat, resolution=8, threshold_m=2000)
    rows = summarise(result, s_area, ten, unverified)
    total, parts = rows[-1], rows[:-1]
    assert total["area"] == TOTAL_AREA
    assert [r["area"] for r in parts] == ["", "440103", "440104", "440105", "440106"]
    assert total["stations"] == 60 == sum(r["stations"] for r in parts)
    assert total["unverified"] == int(unverified.sum()) == sum(r["unverified"] for r in parts)
    for key in ("demand", "uncovered_demand"):
        assert sum(r[key] for r in parts) == pytest.approx(total[key], rel=1e-12)
    covered = [r["covered_share"] * r["demand"] for r in parts if r["demand"] > 0]
    assert sum(covered) == pytest.approx(total["covered_share"] * total["demand"], rel=1e-12)
    assert total["demand"] == pytest.approx(weight.sum())
    assert total["ten_ones_compliance"] == pytest.approx(float(np.mean(ten == 10)))
    assert total["stations_per_10k_workers"] == pytest.approx(60 / weight.sum() * 10_000)
    no_demand = next(r for r in parts if r["area"] == "440106")
    assert no_demand["demand"] == 0 and no_demand["stations_per_10k_workers"] is None
    assert no_demand["covered_share"] is None
    no_stations = next(r for r in parts if r["area"] == "440105")
    assert no_stations["stations"] == 0 and no_stations["ten_ones_compliance"] is None
    for r in parts:
        if r["demand"] > 0:
            assert r["uncovered_demand"] == pytest.approx(r["demand"] * (1 - r["covered_share"]))


def test_summarise_rejects_reserved_label_and_mismatched_stations() -> None:
    result = analyse([113.3], [23.1], [5.0], ["total"], [113.3], [23.1])
    with pytest.raises(ValueError, match="reserved"):
        summarise(result, ["440103"], [10], [False])
    result = analyse([113.3], [23.1], [5.0], ["440103"], [113.301, 113.3], [23.1, 23.1])
    with pytest.raises(ValueError):  # nearest station is index 1: station arrays too short
        summarise(result, ["440103"], [10], [False])
    rows = summarise(result, ["440103", None], [10, 3], [False, True])
    assert rows[-1] == {"area": TOTAL_AREA, "stations": 2, "demand": 5.0, "covered_share": 1.0,
                        "doubly_share": 1.0, "uncovered_demand": 0.0,
                        "stations_per_10k_workers": 4000.0, "ten_ones_compliance": 0.5,
                        "unverified": 1}


def test_gap_cells_ranked_and_aggregated_per_cell() -> None:
    rng = np.random.default_rng(4)
    box = (113.0, 22.8, 113.6, 23.4)
    lon, lat, weight, area = random_demand(rng, 3000, box)
    slon, slat = china(rng, 20, box)
    result = analyse(lon, lat, weight, area, slon, slat, resolution=8, threshold_m=3000)
    gaps = gap_cells(result, None)
    expected: dict[str, float] = {}
    for c, d, cov in zip(result.cell, result.demand, result.covered, strict=True):
        if not cov and d > 0:
            expected[c] = expected.get(c, 0.0) + d
    assert expected  # 20 stations over 0.6 degrees leave gaps: the checks below see some
    assert {g["cell"]: g["uncovered_demand"] for g in gaps} == pytest.approx(expected)
    assert len({g["cell"] for g in gaps}) == len(gaps)
    ranked = [g["uncovered_demand"] for g in gaps]
    assert ranked == sorted(ranked, reverse=True)
    assert all(g["nearest_m"] > 3000 for g in gaps)
    assert gap_cells(result, 5) == gaps[:5] and gap_cells(result, 0) == []
    none = analyse(lon, lat, weight, area, [], [], resolution=8)
    per_cell: dict[str, float] = {}
    for c, d in zip(none.cell, none.demand, strict=True):
        per_cell[c] = per_cell.get(c, 0.0) + d
    top = gap_cells(none, 1)[0]
    assert top["nearest_m"] is None and not none.covered.any()
    assert top["uncovered_demand"] == pytest.approx(max(per_cell.values()))


def test_minutes_to_metres() -> None:
    assert minutes_to_metres(15, 4.0) == 1000
    assert minutes_to_metres(0, 5.0) == 0
    with pytest.raises(ValueError):
        minutes_to_metres(-1, 4.0)
