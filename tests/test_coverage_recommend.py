"""Tests for geo_service.coverage.recommend: pure arrays, no database.

The references are brute force: every pair through ``Geod.inv`` for the
coverage matrix, every subset for the optimum, a full rescan per round for
greedy.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from scipy import sparse

from geo_service.coverage import recommend as rec

GEOD = Geod(ellps="WGS84")
GREEDY_RATIO = 1 - 1 / math.e


def brute_matrix(
    clon: npt.NDArray[np.float64],
    clat: npt.NDArray[np.float64],
    dlon: npt.NDArray[np.float64],
    dlat: npt.NDArray[np.float64],
    threshold: float,
) -> npt.NDArray[np.bool_]:
    ci, di = np.meshgrid(np.arange(clon.size), np.arange(dlon.size), indexing="ij")
    dist = GEOD.inv(clon[ci.ravel()], clat[ci.ravel()], dlon[di.ravel()], dlat[di.ravel()])[2]
    return np.asarray(dist).reshape(ci.shape) <= threshold


def random_instance(
    rng: np.random.Generator, n_c: int, n_d: int, density: float, integer: bool
) -> tuple[sparse.csr_matrix, npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    dense = rng.random((n_c, n_d)) < density
    weights = rng.integers(0, 4, n_d).astype(float) if integer else rng.random(n_d)
    covered = rng.random(n_d) < 0.2
    return sparse.csr_matrix(dense), weights, covered


def picks(plan: rec.Plan) -> list[int]:
    return [p.candidate for p in plan.picks]


# --- coverage_matrix --------------------------------------------------------


def points_near(
    rng: np.random.Generator, lon0: float, lat0: float, spread: float, n: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    return lon0 + rng.uniform(-spread, spread, n), lat0 + rng.uniform(-spread, spread, n)


@pytest.mark.parametrize(
    ("lon0", "lat0", "spread", "threshold"),
    [
        (116.40, 39.90, 0.05, 1000.0),  # Beijing, walking distance
        (113.26, 23.13, 0.02, 300.0),  # Guangzhou, short
        (87.62, 43.83, 0.5, 20_000.0),  # Urumqi, long
        (179.95, 65.0, 0.2, 5000.0),  # across the antimeridian, high latitude
        (10.0, 89.9, 0.09, 8000.0),  # next to the pole
        (0.0, 0.0, 0.01, 0.0),  # zero threshold: only coincident points
        (100.0, 30.0, 60.0, 6_000_000.0),  # continental distances
    ],
)
def test_coverage_matrix_equals_brute_force(
    lon0: float, lat0: float, spread: float, threshold: float
) -> None:
    rng = np.random.default_rng(7)
    clon, clat = points_near(rng, lon0, lat0, spread, 40)
    clat = np.clip(clat, -90, 90)
    dlon, dlat = points_near(rng, lon0, lat0, spread, 400)
    dlat = np.clip(dlat, -90, 90)
    # Pairs right at the threshold: the refinement must decide them like Geod does.
    az = rng.uniform(-180, 180, 200)
    src = rng.integers(0, clon.size, 200)
    dist = threshold * (1 + rng.choice([-1e-9, 0.0, 1e-9, -0.006, 0.006], 200))
    blon, blat, _ = GEOD.fwd(clon[src], clat[src], az, dist)
    dlon = np.concatenate([dlon, blon, clon[:3]])  # and coincident points
    dlat = np.concatenate([dlat, blat, clat[:3]])
    got = rec.coverage_matrix(clon, clat, dlon, dlat, threshold)
    assert isinstance(got, sparse.csr_matrix)
    assert got.dtype == bool
    assert got.shape == (clon.size, dlon.size)
    assert got.has_sorted_indices
    want = brute_matrix(clon, clat, dlon, dlat, threshold)
    assert np.array_equal(got.toarray(), want)


def test_coverage_matrix_empty_and_invalid() -> None:
    empty = np.array([], dtype=float)
    one = np.array([116.4])
    assert rec.coverage_matrix(empty, empty, one, one / 3, 500).shape == (0, 1)
    assert rec.coverage_matrix(one, one / 3, empty, empty, 500).shape == (1, 0)
    with pytest.raises(ValueError, match="threshold"):
        rec.coverage_matrix(one, one / 3, one, one / 3, -1)
    with pytest.raises(ValueError, match="lat"):
        rec.coverage_matrix(one, [91.0], one, one / 3, 500)
    with pytest.raises(ValueError, match="length"):
        rec.coverage_matrix(one, [1.0, 2.0], one, one / 3, 500)


# --- greedy -----------------------------------------------------------------


@pytest.mark.parametrize("integer", [True, False])
def test_lazy_greedy_picks_what_plain_greedy_picks(integer: bool) -> None:
    rng = np.random.default_rng(11)
    for _ in range(150):
        n_c, n_d = int(rng.integers(1, 40)), int(rng.integers(1, 80))
        m, w, cov = random_instance(rng, n_c, n_d, rng.uniform(0.02, 0.4), integer)
        n = int(rng.integers(0, n_c + 2))
        lazy, plain = rec.lazy_greedy(m, w, cov, n), rec.plain_greedy(m, w, cov, n)
        assert lazy.picks == plain.picks  # candidates, gains and running totals
        assert lazy.covered_after == plain.covered_after


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.frozensets(st.integers(0, 11), max_size=6), min_size=1, max_size=12),
    weights=st.lists(st.integers(0, 3), min_size=12, max_size=12),
    covered=st.lists(st.booleans(), min_size=12, max_size=12),
    n=st.integers(0, 6),
)
def test_lazy_equals_plain_with_many_ties(
    rows: list[frozenset[int]], weights: list[int], covered: list[bool], n: int
) -> None:
    dense = np.zeros((len(rows), 12), dtype=bool)
    for j, row in enumerate(rows):
        dense[j, sorted(row)] = True
    lazy = rec.lazy_greedy(sparse.csr_matrix(dense), weights, covered, n)
    plain = rec.plain_greedy(dense, weights, covered, n)
    assert picks(lazy) == picks(plain)
    # Each pick is the first maximum of the true gains at that moment.
    residual = np.where(covered, 0, np.asarray(weights, dtype=float))
    for p in lazy.picks:
        gains = dense.astype(float) @ residual
        assert p.candidate == int(np.argmax(gains)) and p.gain == gains.max() > 0
        residual[dense[p.candidate]] = 0
    if len(lazy.picks) < n:  # stopped early: nothing left to gain
        assert (dense.astype(float) @ residual).max() == 0
        assert lazy.optimal_gap == 0.0


def test_greedy_is_optimal_for_disjoint_sets_and_n_equal_one() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        n_c, n_d = 10, 40
        owner = rng.integers(-1, n_c, n_d)  # each unit covered by at most one candidate
        dense = owner[None, :] == np.arange(n_c)[:, None]
        w, cov = rng.random(n_d), rng.random(n_d) < 0.2
        for n in (1, 2, 3, 4):
            greedy = rec.lazy_greedy(dense, w, cov, n)
            best = rec.exhaustive(dense, w, cov, n)
            assert greedy.added == pytest.approx(best.added, rel=1e-12)
            value = np.bincount(owner[~cov & (owner >= 0)], w[~cov & (owner >= 0)], n_c)
            top = np.sort(value[value > 0])[::-1][:n]
            assert [p.gain for p in greedy.picks] == pytest.approx(list(top))
        m, w, cov = random_instance(rng, 12, 30, 0.2, integer=False)
        one = rec.lazy_greedy(m, w, cov, 1)
        assert one.added == pytest.approx(rec.exhaustive(m, w, cov, 1).added)


def test_greedy_guarantee_and_exact_optimum_on_small_instances() -> None:
    rng = np.random.default_rng(5)
    for k in range(40):
        m, w, cov = random_instance(rng, 12, 30, rng.uniform(0.08, 0.3), integer=k % 2 == 0)
        n = 3 + k % 2
        greedy, best = rec.lazy_greedy(m, w, cov, n), rec.exhaustive(m, w, cov, n)
        exact = rec.exact(m, w, cov, n)
        assert exact is not None and exact.method == "exact"
        assert exact.added == pytest.approx(best.added, rel=1e-9, abs=1e-12)
        assert greedy.added >= GREEDY_RATIO * best.added - 1e-12
        assert greedy.gap_bound is not None
        if best.added > 0:  # the certified bound really bounds the shortfall
            assert (best.added - greedy.added) / best.added <= greedy.gap_bound + 1e-12


def test_greedy_can_lose_and_exact_finds_the_optimum() -> None:
    # Classic trap: the big set wins round one, the two others together win.
    dense = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 1]], dtype=bool)
    w, cov = np.ones(6), np.zeros(6, dtype=bool)
    greedy = rec.lazy_greedy(dense, w, cov, 2)
    assert picks(greedy) == [0, 1] and greedy.added == 5
    assert greedy.optimal_gap is None and greedy.gap_bound is not None
    assert greedy.gap_bound >= 1 / 6
    for best in (rec.exact(dense, w, cov, 2), rec.exhaustive(dense, w, cov, 2)):
        assert best is not None and picks(best) == [1, 2] and best.added == 6
        assert best.optimal_gap == 0.0


def test_already_covered_demand_gives_no_gain() -> None:
    # Candidate 0 reaches the heaviest unit, but an existing station covers it.
    dense = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 1, 0]], dtype=bool)
    w = np.array([100.0, 2.0, 1.0, 5.0])
    cov = np.array([True, False, False, False])
    plan = rec.lazy_greedy(dense, w, cov, 4)
    assert picks(plan) == [1, 2]  # 0 and 3 (after 2) add nothing: not picked
    assert [p.gain for p in plan.picks] == [2.0, 1.0]
    assert [p.covered_after for p in plan.picks] == [102.0, 103.0]
    assert (plan.covered_before, plan.covered_after, plan.total_demand) == (100.0, 103.0, 108.0)
    assert plan.optimal_gap == 0.0  # everything reachable is covered
    assert rec.lazy_greedy(dense, w, np.ones(4, dtype=bool), 3).picks == []
    for solver in (rec.exhaustive, rec.exact):
        best = solver(dense, w, cov, 4)
        assert best is not None and picks(best) == [1, 2]


def test_progress_and_validation() -> None:
    m, w, cov = random_instance(np.random.default_rng(1), 20, 60, 0.2, integer=False)
    calls: list[tuple[int, int]] = []
    plan = rec.lazy_greedy(m, w, cov, 3, progress=lambda k, n: calls.append((k, n)))
    assert calls == [(1, 3), (2, 3), (3, 3)] and len(plan.picks) == 3
    with pytest.raises(ValueError, match="weights"):
        rec.lazy_greedy(m, -w, cov, 3)
    with pytest.raises(ValueError, match="entries"):
        rec.lazy_greedy(m, w[:-1], cov, 3)
    with pytest.raises(ValueError, match="n must"):
        rec.lazy_greedy(m, w, cov, -1)
    big = sparse.csr_matrix(np.eye(60, dtype=bool))
    with pytest.raises(ValueError, match="too many"):
        rec.exhaustive(big, np.ones(60), np.zeros(60, dtype=bool), 10)


# --- sites_for_share -----------------------------------------------------------


def test_sites_for_share_reaches_a_reachable_target() -> None:
    rng = np.random.default_rng(9)
    for _ in range(30):
        m, w, cov = random_instance(rng, 25, 60, 0.15, integer=False)
        reachable = w[cov | (m.getnnz(axis=0) > 0)].sum() / w.sum()
        target = float(rng.uniform(0, reachable))
        plan = rec.sites_for_share(m, w, cov, target, max_sites=25)
        assert plan.target_reached is True and plan.target_share == target
        assert plan.covered_after >= target * w.sum()
        if plan.picks:  # greedy stops at the first prefix that reaches the target
            assert plan.covered_after - plan.picks[-1].gain < target * w.sum()
            greedy = rec.lazy_greedy(m, w, cov, len(plan.picks))
            assert picks(greedy) == picks(plan)


def test_sites_for_share_reports_an_unreachable_target() -> None:
    dense = np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0]], dtype=bool)
    w, cov = np.ones(4), np.zeros(4, dtype=bool)
    plan = rec.sites_for_share(dense, w, cov, 1.0, max_sites=3)  # unit 3 is out of reach
    assert plan.target_reached is False and picks(plan) == [0, 1]
    assert plan.covered_after == 3.0
    capped = rec.sites_for_share(dense, w, cov, 0.75, max_sites=1)
    assert capped.target_reached is False and picks(capped) == [0]
    done = rec.sites_for_share(dense, w, np.ones(4, dtype=bool), 0.9, max_sites=3)
    assert done.target_reached is True and done.picks == []
    with pytest.raises(ValueError, match="target_share"):
        rec.sites_for_share(dense, w, cov, 1.5, max_sites=3)
