"""The default recommender (greedy + swaps) and its certified bound, against brute force.

References: every subset (``recommend.exhaustive``) and HiGHS's MILP (``recommend.exact``).
Pure arrays, no database; each test takes well under a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from geo_service.coverage import bounds, certified, families, swap
from geo_service.coverage import recommend as rec


def random_instance(rng: np.random.Generator, n_c: int, n_d: int, density: float,
                    ) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    dense = rng.random((n_c, n_d)) < density
    weights = rng.integers(0, 6, n_d).astype(float)
    covered = rng.random(n_d) < 0.15
    return sparse.csr_matrix(dense), weights, covered


def check_certificate(plan: rec.Plan) -> None:
    """The figures a response shows agree with each other."""
    assert plan.upper_bound is not None and plan.gap_bound is not None
    bound_added = plan.upper_bound - plan.covered_before
    assert plan.upper_bound >= plan.covered_after
    want = max(0.0, 1 - plan.added / bound_added) if bound_added > 0 else 0.0
    assert plan.gap_bound == pytest.approx(want, abs=1e-12)


def test_swap_matches_exhaustive_optimum_and_never_loses_to_greedy() -> None:
    rng = np.random.default_rng(17)
    hits = trials = greedy_hits = 0
    for _ in range(80):
        n_c, n_d = int(rng.integers(8, 16)), int(rng.integers(20, 60))
        m, w, cov = random_instance(rng, n_c, n_d, float(rng.uniform(0.05, 0.3)))
        n = int(rng.integers(2, 5))
        best = rec.exhaustive(m, w, cov, n)
        greedy = rec.lazy_greedy(m, w, cov, n)
        plan = certified.swap_plan(m, w, cov, n, time_budget=0.05, gap_tolerance=0.0)
        assert plan.method == "swap" and len(plan.picks) <= n
        assert plan.added >= greedy.added - 1e-9  # never below greedy
        assert plan.added <= best.added + 1e-9
        check_certificate(plan)
        assert plan.upper_bound is not None
        assert plan.upper_bound - plan.covered_before >= best.added - 1e-9  # a true bound
        certified_greedy = certified.certify(m, w, cov, greedy, n, time_budget=0.05)
        check_certificate(certified_greedy)
        assert certified_greedy.upper_bound is not None
        assert certified_greedy.upper_bound - greedy.covered_before >= best.added - 1e-9
        trials += 1
        hits += plan.added >= best.added - 1e-9
        greedy_hits += greedy.added >= best.added - 1e-9
    assert hits / trials >= 0.9, (hits, trials)
    assert hits >= greedy_hits  # and the instances are not all easy for greedy either
    assert greedy_hits < trials


@pytest.mark.parametrize("family", [*families.FAMILIES])
@pytest.mark.parametrize("existing", [0, 15])
def test_families_bound_holds_against_highs(family: str, existing: int) -> None:
    d_lon, d_lat, w, c_lon, c_lat = families.make(family, 900, 150, seed=3)
    m = rec.coverage_matrix(c_lon, c_lat, d_lon, d_lat, 1000.0)
    covered = np.zeros(w.size, dtype=bool)
    if existing:
        s_lon, s_lat = families.existing_stations(d_lon, d_lat, existing, seed=3)
        covered = np.asarray(rec.coverage_matrix(s_lon, s_lat, d_lon, d_lat, 1000.0)
                             .sum(axis=0)).ravel() > 0
    opt = rec.exact(m, w, covered, 8, time_limit=60)
    assert opt is not None and opt.optimal_gap is not None and opt.optimal_gap < 1e-9
    greedy = rec.lazy_greedy(m, w, covered, 8)
    plan = certified.swap_plan(m, w, covered, 8, time_budget=0.5)
    check_certificate(plan)
    assert plan.upper_bound is not None
    assert plan.upper_bound - plan.covered_before >= opt.added * (1 - 1e-9)
    assert greedy.added - 1e-9 <= plan.added <= opt.added + 1e-9
    assert plan.added >= 0.99 * opt.added
    # Warm-started with the plan's value as a cut, HiGHS finds the same optimum.
    warm = rec.exact(m, w, covered, 8, time_limit=60, at_least=plan.added)
    assert warm is not None and warm.added == pytest.approx(opt.added, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), p=st.integers(1, 5))
def test_every_multiplier_gives_a_bound(seed: int, p: int) -> None:
    """Weak duality, checked for arbitrary multipliers, not only the tuned ones."""
    rng = np.random.default_rng(seed)
    m, w, cov = random_instance(rng, 10, 25, 0.2)
    best = rec.exhaustive(m, w, cov, p)
    state = rec._State(m, w, cov)
    rows, cols = state.relevant()
    if rows.size == 0:
        return
    inst = swap.Instance.build(state.matrix[rows][:, cols], state.residual[cols])
    lam = rng.uniform(-1, 1.5, inst.w.size) * inst.w  # clipped into [0, w] inside
    assert bounds.lagrangian(inst.a, inst.w, lam, p) >= best.added - 1e-9
    b = bounds.upper_bound(inst.a, inst.w, p, seconds=0.05, lp_seconds=1.0, stop_gap=0.0)
    assert b.value >= best.added - 1e-9


def test_merging_identical_units_keeps_every_value() -> None:
    rng = np.random.default_rng(4)
    dense = rng.random((12, 8)) < 0.3
    dense = np.concatenate([dense, dense[:, :5], dense[:, 2:4]], axis=1)  # repeated units
    w = rng.integers(1, 5, dense.shape[1]).astype(float)
    inst = swap.Instance.build(sparse.csr_matrix(dense), w)
    assert inst.w.size < dense.shape[1] and inst.w.sum() == pytest.approx(w[dense.any(0)].sum()
                                                                          + w[~dense.any(0)].sum())
    for chosen in ([0, 3], [1, 2, 5], [7]):
        direct = w[dense[chosen].any(axis=0)].sum()
        assert inst.value(np.array(chosen, dtype=np.intp)) == pytest.approx(direct)


def test_share_plan_count_and_its_lower_bound() -> None:
    rng = np.random.default_rng(23)
    for _ in range(25):
        m, w, cov = random_instance(rng, 12, 40, 0.15)
        reach = w[cov | (m.getnnz(axis=0) > 0)].sum() / w.sum()
        target = float(rng.uniform(0.3, 1.0) * reach)
        greedy = rec.sites_for_share(m, w, cov, target, max_sites=12)
        plan = certified.share_plan(m, w, cov, target, 12, time_budget=0.1)
        assert plan.target_reached is True and plan.method == "swap_share"
        assert len(plan.picks) <= len(greedy.picks)
        fewest = next(k for k in range(13)
                      if rec.exhaustive(m, w, cov, k).covered_after >= target * w.sum())
        assert len(plan.picks) >= fewest
        assert plan.sites_lower_bound is not None and plan.sites_lower_bound <= fewest


def test_trivial_cases_and_validation() -> None:
    dense = np.array([[1, 1, 0], [0, 0, 1]], dtype=bool)
    w, cov = np.array([1.0, 2.0, 3.0]), np.zeros(3, dtype=bool)
    everything = certified.swap_plan(dense, w, cov, 5)
    assert everything.added == 6.0 and everything.gap_bound == 0.0
    none = certified.swap_plan(dense, w, np.ones(3, dtype=bool), 2)
    assert none.picks == [] and none.gap_bound == 0.0
    with pytest.raises(ValueError, match="time_budget"):
        certified.swap_plan(dense, w, cov, 1, time_budget=0)
    with pytest.raises(ValueError, match="time_budget"):
        certified.swap_plan(dense, w, cov, 1, time_budget=math.nan)
    one = certified.swap_plan(dense, w, cov, 1)
    assert one.added == 3.0 and one.upper_bound is not None and one.upper_bound >= 3.0
