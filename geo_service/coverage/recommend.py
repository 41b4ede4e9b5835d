"""Where should the next N rest stations go? (maximal covering location problem).

Pure array code: a boolean coverage matrix (candidate site x demand unit) and
solvers over it. No database, no HTTP; :mod:`geo_service.coverage.service`
feeds it and stores the results.

Why greedy is good enough
-------------------------
Existing stations are fixed, so demand they already cover counts for nothing.
The objective f(S) = weight of still-uncovered demand reached by the new
sites S is monotone (adding a site never loses coverage) and submodular (a
site adds less the more is already covered). For such functions picking, N
times, the site with the largest marginal gain reaches at least
1 - (1 - 1/N)^N > 1 - 1/e (about 63 %) of the optimum (Nemhauser, Wolsey &
Fisher 1978), and no polynomial algorithm does better in general (Feige 1998).
In practice greedy is within a few percent; :func:`exact` solves the integer
program with HiGHS (shipped inside SciPy) when an optimum is required.

Lazy greedy (Minoux 1978) uses submodularity once more: a gain computed in an
earlier round is an upper bound on today's gain, so only the top of a heap of
stale gains needs re-evaluating. Ties go to the lowest candidate index in all
solvers, so lazy and plain greedy pick exactly the same sites.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pyproj import Geod
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.spatial import cKDTree

__all__ = ["Pick", "Plan", "coverage_matrix", "exact", "exhaustive", "lazy_greedy",
           "plain_greedy", "sites_for_share"]

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[int, int], None]

_GEOD = Geod(ellps="WGS84")
_A, _F = 6378137.0, 1 / 298.257223563
_E2 = _F * (2 - _F)
#: Smallest and largest radius of curvature of the WGS-84 ellipsoid (meridian
#: at the equator, both at the poles). See :func:`coverage_matrix`.
_R_MIN = _A * (1 - _E2)
_R_MAX = _A / math.sqrt(1 - _E2)
_REL_MARGIN = 1e-7  # covers float rounding in the unit vectors and chords
_ABS_MARGIN = 1e-12  # chord units (~6 micrometres)
_CHUNK = 4096  # candidates per KD-tree query: bounds peak memory
EXHAUSTIVE_LIMIT = 2_000_000


@dataclass(frozen=True)
class Pick:
    """One chosen site: its candidate index, what it adds, and the running total."""

    candidate: int
    gain: float
    covered_after: float


@dataclass(frozen=True)
class Plan:
    """A set of new sites in pick order (largest marginal gain first).

    ``optimal_gap`` is the relative gap to the optimum (newly covered demand,
    same number of sites) where it is known: 0.0 for :func:`exhaustive`,
    HiGHS's MIP gap for :func:`exact`, 0.0 for greedy only when a bound proves
    it optimal (e.g. nothing reachable was left), otherwise None.
    ``gap_bound`` is a proven upper bound on that gap; for greedy alone it is
    usually loose (20-30 % on city data where the true gap is 0-2 %), see
    :func:`_run_greedy`; :mod:`geo_service.coverage.certified` replaces it by
    ``1 - added / (upper_bound - covered_before)`` with a Lagrangian/LP bound
    (``upper_bound``: no choice of as many sites covers more demand, existing
    coverage included). None for :func:`sites_for_share`, which sets
    ``target_share`` (and, certified, ``sites_lower_bound``: fewer sites cannot
    reach the target) instead. ``seconds``: wall time of the certified solver.
    """

    picks: list[Pick]
    covered_before: float
    covered_after: float
    total_demand: float
    method: str
    optimal_gap: float | None
    gap_bound: float | None = None
    target_share: float | None = None
    upper_bound: float | None = None
    bound_source: str | None = None
    sites_lower_bound: int | None = None
    seconds: float | None = None

    @property
    def added(self) -> float:
        """Demand newly covered by the picks."""
        return self.covered_after - self.covered_before

    @property
    def target_reached(self) -> bool | None:
        """Whether the share target was met (None when there was no target)."""
        target = self.target_share
        return None if target is None else self.covered_after >= target * self.total_demand


def _unit_xyz(lon: FloatArray, lat: FloatArray) -> FloatArray:
    lo, la = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def _coords(lon: npt.ArrayLike, lat: npt.ArrayLike, what: str) -> tuple[FloatArray, FloatArray]:
    lo = np.asarray(lon, dtype=np.float64).ravel()
    la = np.asarray(lat, dtype=np.float64).ravel()
    if lo.shape != la.shape:
        raise ValueError(f"{what} lon and lat differ in length: {lo.size} != {la.size}")
    if not (np.isfinite(lo).all() and np.isfinite(la).all()) or (np.abs(la) > 90).any():
        raise ValueError(f"{what} coordinates must be finite with |lat| <= 90")
    return lo, la


def coverage_matrix(cand_lon: npt.ArrayLike, cand_lat: npt.ArrayLike, dem_lon: npt.ArrayLike,
                    dem_lat: npt.ArrayLike, threshold_m: float) -> sparse.csr_matrix:
    """Which candidate covers which demand unit: geodesic WGS-84 distance <= threshold.

    Exact (every entry agrees with ``pyproj.Geod(ellps="WGS84").inv``) yet fast:
    points are put on the unit sphere at their geodetic lat/lon. Along any
    curve the ellipsoid's line element lies between ``R_MIN`` and ``R_MAX``
    (its extreme radii of curvature) times the sphere's, so the geodesic
    distance d and the sphere angle t satisfy ``R_MIN*t <= d <= R_MAX*t``.
    A KD-tree ball query with ``t = threshold/R_MIN`` therefore finds every
    covered pair; pairs with ``t <= threshold/R_MAX`` are certainly covered,
    and only the ~2 % in between (the ratio is 1.0101) go to ``Geod.inv``.

    Returns
    -------
    scipy.sparse.csr_matrix
        bool, shape (n_candidates, n_demand), sorted indices.
    """
    cl, ca = _coords(cand_lon, cand_lat, "candidate")
    dl, da = _coords(dem_lon, dem_lat, "demand")
    if not (math.isfinite(threshold_m) and threshold_m >= 0):
        raise ValueError("threshold_m must be a finite distance >= 0")
    n_c, n_d = cl.size, dl.size
    if n_c == 0 or n_d == 0:
        return sparse.csr_matrix((n_c, n_d), dtype=bool)

    def chord(angle: float) -> float:
        return 2 * math.sin(angle / 2) if angle < math.pi else 2.0

    outer = chord(threshold_m / _R_MIN) * (1 + _REL_MARGIN) + _ABS_MARGIN
    inner = chord(threshold_m / _R_MAX) * (1 - _REL_MARGIN) - _ABS_MARGIN
    tree, cxyz = cKDTree(_unit_xyz(dl, da)), _unit_xyz(cl, ca)
    blocks = []
    for start in range(0, n_c, _CHUNK):
        stop = min(start + _CHUNK, n_c)
        pairs = cKDTree(cxyz[start:stop]).sparse_distance_matrix(tree, outer, output_type="ndarray")
        i, j = pairs["i"], pairs["j"]
        keep = pairs["v"] <= inner
        band = np.flatnonzero(~keep)
        if band.size:
            gi, gj = i[band] + start, j[band]
            dist = _GEOD.inv(cl[gi], ca[gi], dl[gj], da[gj])[2]
            keep[band] = np.asarray(dist) <= threshold_m
        data, ij = np.ones(int(keep.sum()), dtype=bool), (i[keep], j[keep])
        blocks.append(sparse.csr_matrix((data, ij), shape=(stop - start, n_d), dtype=bool))
    matrix = sparse.vstack(blocks, format="csr", dtype=bool)
    matrix.sort_indices()
    return matrix


class _State:
    """Residual demand (weight of still-uncovered units) and the running total.

    Gains are sums over a row of ``residual`` with covered units zeroed rather
    than removed: the summation order then never changes, so float gains only
    shrink (stale heap keys stay true upper bounds) and every solver computes
    bit-identical gains.
    """

    def __init__(self, matrix: object, weights: npt.ArrayLike, covered: npt.ArrayLike) -> None:
        m = sparse.csr_matrix(matrix, dtype=bool)
        if not (m.has_canonical_format and m.data.all()):
            m = m.copy()
            m.eliminate_zeros()
            m.sum_duplicates()
        w = np.asarray(weights, dtype=np.float64).ravel()
        cov = np.asarray(covered, dtype=bool).ravel()
        n_c, n_d = m.shape
        if w.shape != (n_d,) or cov.shape != (n_d,):
            raise ValueError(f"weights and initially_covered need {n_d} entries (matrix columns)")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("weights must be finite and >= 0 (else coverage is not monotone)")
        self.matrix = m
        self.indptr: npt.NDArray[np.integer] = m.indptr  # int32 kept: no 8-byte copies
        self.indices: npt.NDArray[np.integer] = m.indices
        self.residual: FloatArray = np.where(cov, 0.0, w)
        self.total = float(w.sum())
        self.before = self.covered = float(w[cov].sum())
        self.n_candidates = int(n_c)

    def gain(self, j: int) -> float:
        return float(self.residual[self.indices[self.indptr[j] : self.indptr[j + 1]]].sum())

    def gains(self, rows: Iterable[int]) -> FloatArray:
        return np.array([self.gain(j) for j in rows], dtype=np.float64)

    def take(self, j: int, gain: float) -> Pick:
        self.residual[self.indices[self.indptr[j] : self.indptr[j + 1]]] = 0.0
        self.covered += gain
        return Pick(candidate=int(j), gain=gain, covered_after=self.covered)

    def relevant(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Candidates that can add something, and the demand units they could add."""
        cols = np.flatnonzero((self.residual > 0) & (self.matrix.getnnz(axis=0) > 0))
        rows = np.flatnonzero(self.matrix[:, cols].getnnz(axis=1) > 0)
        return rows, cols

    def plan(self, picks: list[Pick], method: str, gap: float | None, bound: float | None,
             target: float | None = None) -> Plan:
        return Plan(picks, self.before, self.covered, self.total, method, gap, bound, target)


def _check_n(n: int) -> int:
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ValueError("n must be a whole number >= 0")
    return int(n)


def _top(values: FloatArray, k: int) -> float:
    """Sum of the k largest values."""
    if k >= values.size:
        return float(values.sum())
    return float(np.partition(values, values.size - k)[values.size - k :].sum())


def _run_greedy(state: _State, n: int, lazy: bool, progress: Progress | None,
                done: Callable[[], bool] = lambda: False) -> tuple[list[Pick], float | None]:
    """Pick up to n sites; return them with a proven bound on (OPT_n - added) / OPT_n.

    Bounds: any n sites add at most f(S_i) + the n largest gains given S_i,
    for every round i; stale heap keys are upper bounds on gains, so they
    serve too. With n picks there is also f(S_n) >= (1 - (1 - 1/n)^n) OPT_n.
    If gains run out, everything reachable is covered: the bound is 0.
    """
    if n == 0:
        return [], 0.0
    keys = state.gains(range(state.n_candidates))  # upper bounds on current gains
    heap = [(-g, j) for j, g in enumerate(keys.tolist()) if g > 0] if lazy else []
    heapq.heapify(heap)
    fresh_in = np.zeros(state.n_candidates, dtype=np.intp)  # round each key was computed
    picks: list[Pick] = []
    best_ub = math.inf
    while len(picks) < n and not done():
        best_ub = min(best_ub, state.covered - state.before + _top(keys, n))
        best, gain = -1, 0.0
        if lazy:
            while heap:
                neg, j = heap[0]
                if fresh_in[j] == len(picks):  # fresh top beats every upper bound below it
                    best, gain = j, -neg
                    heapq.heappop(heap)
                    break
                fresh_in[j] = len(picks)
                keys[j] = g = state.gain(j)
                if g > 0:
                    heapq.heapreplace(heap, (-g, j))
                else:  # gains never grow again: drop for good
                    heapq.heappop(heap)
        else:
            keys = state.gains(range(state.n_candidates))
            if keys.size and keys.max() > 0:
                best = int(np.argmax(keys))  # first maximum: lowest index wins ties
                gain = float(keys[best])
        if best < 0:
            return picks, 0.0
        picks.append(state.take(best, gain))
        keys[best] = 0.0
        if progress is not None:
            progress(len(picks), n)
    added = state.covered - state.before
    last = state.gains(range(state.n_candidates))
    if last.max(initial=0.0) <= 0:
        return picks, 0.0
    if len(picks) < n:  # stopped by ``done``: no fixed budget to compare with
        return picks, None
    ub = min(best_ub, added + _top(last, n), added / (1 - (1 - 1 / n) ** n))
    return picks, max(0.0, (ub - added) / ub)


def lazy_greedy(matrix: object, weights: npt.ArrayLike, initially_covered: npt.ArrayLike, n: int,
                *, progress: Progress | None = None) -> Plan:
    """Greedy MCLP with lazy gain evaluation: the fast default (>= 1 - 1/e of optimum).

    Parameters
    ----------
    matrix
        bool sparse (n_candidates x n_demand) from :func:`coverage_matrix`.
    weights
        Demand (e.g. outdoor workers) per unit, >= 0.
    initially_covered
        Units covered by existing stations; they count for nothing.
    n
        Sites wanted. Fewer are returned when no candidate adds anything.
    progress
        Called as ``progress(picks_so_far, n)`` after each pick.
    """
    state = _State(matrix, weights, initially_covered)
    picks, bound = _run_greedy(state, _check_n(n), True, progress)
    return state.plan(picks, "lazy_greedy", 0.0 if bound == 0.0 else None, bound)


def plain_greedy(matrix: object, weights: npt.ArrayLike, initially_covered: npt.ArrayLike,
                 n: int, *, progress: Progress | None = None) -> Plan:
    """Reference greedy, O(n * C) gain evaluations; same picks as :func:`lazy_greedy`."""
    state = _State(matrix, weights, initially_covered)
    picks, bound = _run_greedy(state, _check_n(n), False, progress)
    return state.plan(picks, "greedy", 0.0 if bound == 0.0 else None, bound)


def sites_for_share(matrix: object, weights: npt.ArrayLike, initially_covered: npt.ArrayLike,
                    target_share: float, max_sites: int) -> Plan:
    """Fewest sites (greedily) until ``target_share`` of all demand is covered.

    The share counts demand already covered by existing stations. Greedy set
    cover uses at most H(max coverage) ~ ln(units) times the optimal number of
    sites. Picking stops at the target, at ``max_sites`` or when no candidate
    adds anything; ``Plan.target_reached`` says which.
    """
    if not 0 <= target_share <= 1:
        raise ValueError("target_share must be within [0, 1]")
    state = _State(matrix, weights, initially_covered)
    goal = target_share * state.total
    picks, _ = _run_greedy(state, _check_n(max_sites), True, None, lambda: state.covered >= goal)
    return state.plan(picks, "greedy_share", None, None, float(target_share))


def _ordered(state: _State, chosen: Iterable[int], method: str, gap: float | None) -> Plan:
    """Order an optimal set by marginal gain; members that add nothing are dropped."""
    rest = sorted(int(j) for j in chosen)
    picks: list[Pick] = []
    while rest:
        gains = state.gains(rest)
        k = int(np.argmax(gains))
        if gains[k] <= 0:
            break
        picks.append(state.take(rest.pop(k), float(gains[k])))
    return state.plan(picks, method, gap, gap)


def exhaustive(matrix: object, weights: npt.ArrayLike, initially_covered: npt.ArrayLike,
               n: int) -> Plan:
    """Best set of up to n sites by trying every combination (tests, tiny instances).

    Only candidates that reach uncovered demand are enumerated. Raises
    ValueError beyond ``EXHAUSTIVE_LIMIT`` combinations.
    """
    state = _State(matrix, weights, initially_covered)
    rows, cols = state.relevant()
    k = min(_check_n(n), rows.size)
    if math.comb(rows.size, k) > EXHAUSTIVE_LIMIT:
        raise ValueError(f"{rows.size} choose {k} combinations is too many for exhaustive search")
    if k == 0:  # nothing worth covering (or n == 0)
        return _ordered(state, [], "exhaustive", 0.0)
    dense, w = state.matrix[rows][:, cols].toarray(), state.residual[cols]
    combos = itertools.combinations(range(rows.size), k)
    batch = max(1, 4_000_000 // (k * max(1, cols.size)))
    best_value, best = -1.0, np.arange(k)
    for chunk in iter(lambda: list(itertools.islice(combos, batch)), []):
        idx = np.array(chunk, dtype=np.intp)
        values = dense[idx].any(axis=1) @ w
        b = int(np.argmax(values))
        if values[b] > best_value:
            best_value, best = float(values[b]), idx[b]
    return _ordered(state, rows[best], "exhaustive", 0.0)


def exact(matrix: object, weights: npt.ArrayLike, initially_covered: npt.ArrayLike, n: int,
          *, time_limit: float = 30.0, mip_rel_gap: float = 0.0,
          at_least: float | None = None) -> Plan | None:
    """Optimal MCLP by integer programming (HiGHS via ``scipy.optimize.milp``).

    maximise sum w_i y_i  s.t.  y_i <= sum_{j covers i} x_j,  sum x_j <= n,
    x binary, 0 <= y <= 1, over uncovered reachable units and the candidates
    reaching them (the rest cannot change the objective), units reached by the
    same candidates merged into one. Returns None when HiGHS does not prove
    optimality within ``time_limit`` seconds (or fails): the caller falls back
    to a heuristic plan.

    ``at_least``: newly covered demand a known plan reaches (e.g. the swap
    search's). scipy's ``milp`` takes no starting solution, so it enters as the
    cut ``sum w_i y_i >= at_least`` (less 1e-6 relative, so float tolerance
    cannot make the problem infeasible): branches that cannot beat it are cut.
    """
    from geo_service.coverage.swap import Instance  # swap is pure too; no cycle at import

    state = _State(matrix, weights, initially_covered)
    rows, cols = state.relevant()
    k = min(_check_n(n), rows.size)
    if k == 0 or k == rows.size:  # nothing to choose: take none, or every useful site
        return _ordered(state, rows[:k], "exact", 0.0)
    inst = Instance.build(state.matrix[rows][:, cols], state.residual[cols])
    sub, n_x, n_y = inst.a, rows.size, inst.w.size
    link = sparse.hstack([-sub.T, sparse.identity(n_y, format="csr")], format="csr")
    budget = sparse.csr_matrix(np.concatenate([np.ones(n_x), np.zeros(n_y)])[None, :])
    constraints = [LinearConstraint(link, -np.inf, 0.0), LinearConstraint(budget, 0, k)]
    if at_least is not None and at_least > 0:
        cut = sparse.csr_matrix(np.concatenate([np.zeros(n_x), inst.w])[None, :])
        constraints.append(LinearConstraint(cut, at_least * (1 - 1e-6), np.inf))
    res = milp(np.concatenate([np.zeros(n_x), -inst.w]), constraints=constraints,
               integrality=np.concatenate([np.ones(n_x), np.zeros(n_y)]), bounds=Bounds(0, 1),
               options={"time_limit": float(time_limit), "mip_rel_gap": float(mip_rel_gap)})
    if res.status != 0 or res.x is None:  # 1: time or node limit, 2-4: failures
        return None
    gap = max(0.0, float(getattr(res, "mip_gap", 0.0) or 0.0))
    return _ordered(state, rows[res.x[:n_x] > 0.5], "exact", gap)
