"""Proven upper bounds on the maximal-covering optimum, so every plan carries a certified gap.

Pure array code over the reduced instance of :mod:`geo_service.coverage.swap`: a 0/1
matrix ``A`` (candidates x still-uncovered units), unit weights ``w > 0`` and a budget
of ``p`` sites. The integer program is

    max w.y   s.t.  y_i <= sum_j a_ij x_j,  sum_j x_j <= p,  x in {0,1}, 0 <= y <= 1.

Why a Lagrangian bound
----------------------
Relaxing the coverage constraints with multipliers ``lam >= 0`` leaves a problem that
splits and is solved by looking: ``L(lam) = sum_i max(0, w_i - lam_i) + (sum of the p
largest entries of A @ lam)``. *Every* ``lam >= 0`` gives ``L(lam) >= OPT`` (weak
duality), so a bound does not depend on trusting a solver: HiGHS's LP duals, when the
LP is small enough to solve in the time budget, are only a good *guess* for ``lam``;
the bound is ``L`` evaluated here, plus slack for float rounding (all terms are sums of
non-negative numbers, whose relative rounding error is below ``n * 2**-53``). The best
``L`` equals the LP relaxation's value (the subproblem has integral vertices), so on
these instances it is typically within 0-2 % of the optimum. Subgradient steps (Polyak
steps toward the heuristic's value) improve ``lam`` further, each iterate a valid bound.

For "how many sites to reach X %" the same function, monotone in ``p``, proves a
*lower* bound on the count: if ``L(lam; k) < needed`` no ``k`` sites reach the target.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import linprog

__all__ = ["Bound", "count_lower_bound", "lagrangian", "upper_bound"]

FloatArray = npt.NDArray[np.float64]

#: Relative slack added to every bound (float sums of <= 10^8 non-negative terms err
#: by less than 10^8 * 2^-53 ~ 1.1e-8 of the total in the worst case; 1e-7 is safe).
SLACK = 1e-7
#: The LP goes to HiGHS only when it has at most this many nonzeros per second it may
#: take: HiGHS solved the 10,000 x 2,000 bench LPs (100-150k nonzeros after merging)
#: in ~1.5 s; a larger one would use up the time subgradient could have had.
LP_NNZ_PER_S = 100_000


@dataclass(frozen=True)
class Bound:
    """A proven upper bound on the demand any ``p`` sites can newly cover."""

    value: float
    source: str  # "lp-duals", "lp-duals+subgradient", "subgradient", "trivial"
    iterations: int
    lam: FloatArray
    #: The LP relaxation's site values when HiGHS solved it (a start for the search).
    x: FloatArray | None = None


def lagrangian(a: sparse.csr_matrix, w: FloatArray, lam: FloatArray, p: int) -> float:
    """``L(lam)`` with float slack: a proven upper bound for any ``lam`` (clipped to [0, w])."""
    lam = np.clip(lam, 0.0, w)
    c = a @ lam
    return _safe(float((w - lam).sum()) + _top(c, p))


def _top(values: FloatArray, k: int) -> float:
    if k <= 0 or values.size == 0:
        return 0.0
    if k >= values.size:
        return float(values.sum())
    return float(np.partition(values, values.size - k)[values.size - k :].sum())


def _safe(value: float) -> float:
    return value * (1 + SLACK) + 1e-12


def _lp(a: sparse.csr_matrix, w: FloatArray, p: int,
        seconds: float) -> tuple[FloatArray, FloatArray] | None:
    """HiGHS's LP relaxation: duals of the coverage rows (a guess for ``lam``) and x."""
    n_c, n_d = a.shape
    link = sparse.hstack([-a.T.tocsr(), sparse.identity(n_d, format="csr")], format="csr")
    budget = sparse.csr_matrix(np.concatenate([np.ones(n_c), np.zeros(n_d)])[None, :])
    try:
        res = linprog(np.concatenate([np.zeros(n_c), -w]),
                      A_ub=sparse.vstack([link, budget], format="csr"),
                      b_ub=np.concatenate([np.zeros(n_d), [float(p)]]), bounds=(0, 1),
                      method="highs", options={"time_limit": float(seconds)})
    except (ValueError, MemoryError):  # pragma: no cover - solver trouble: subgradient only
        return None
    if res.status != 0 or res.ineqlin is None:
        return None
    lam = np.clip(-np.asarray(res.ineqlin.marginals[:n_d], dtype=np.float64), 0.0, w)
    return lam, np.asarray(res.x[:n_c], dtype=np.float64)


def _subgradient(a: sparse.csr_matrix, at: sparse.csr_matrix, w: FloatArray, p: int,
                 lam: FloatArray, target: float, deadline: float, max_iter: int,
                 stop_gap: float) -> tuple[float, FloatArray, int]:
    """Deflected subgradient descent on ``L`` with Polyak steps; the best (bound, lam).

    Step ``theta * (L - target) / |d|^2`` along ``d = g + d_prev / 2`` (deflection damps
    the zig-zag between the few sites at the top-``p`` boundary); ``theta`` halves after
    20 steps without a better bound. Tuned on the bench's corridor instance, where it
    reaches the LP value in ~600 steps (0.3 s) while plain steps stall 1 % above it.
    """
    best, best_lam = math.inf, lam
    theta, since, it = 1.0, 0, 0
    d = np.zeros_like(w)
    k = min(p, a.shape[0])
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        c = a @ lam
        top = np.argpartition(c, c.size - k)[c.size - k :]
        value = float((w - lam).sum()) + float(c[top].sum())
        if value < best * (1 - 1e-9):
            best, best_lam, since = value, lam, 0
        else:
            since += 1
            if since >= 20:
                theta, since = theta / 2, 0
                if theta < 1e-3:
                    break
        if best - target <= stop_gap * best or time.monotonic() > deadline:
            break
        x = np.zeros(c.size)
        x[top] = 1.0
        d = (at @ x - (w > lam)) + 0.5 * d
        norm = float(d @ d)
        if norm == 0:
            break
        lam = np.clip(lam - theta * max(value - target, 1e-9 * value) / norm * d, 0.0, w)
    # The bound reported is L re-evaluated with float slack, not the loop's value.
    return lagrangian(a, w, best_lam, p), best_lam, it


def upper_bound(a: sparse.csr_matrix, w: FloatArray, p: int, *, target: float = 0.0,
                seconds: float = 1.0, lp_seconds: float = 0.0, stop_gap: float = 1e-6,
                max_iter: int = 100_000, lam: FloatArray | None = None,
                counts: npt.NDArray[np.int32] | None = None) -> Bound:
    """Best proven bound on ``max w.y`` with ``p`` sites: subgradient, then maybe the LP.

    ``target`` is a value known to be reachable (the heuristic's): the search stops
    once the bound is within ``stop_gap`` of it. ``lam`` warm-starts; else ``counts``
    (how often the heuristic's sites cover each unit) gives the start ``w / count``
    (``w`` where uncovered), close to the LP duals when the heuristic is good. When
    ``seconds`` of subgradient leave a larger gap, the LP relaxation is tried for up to
    ``lp_seconds`` (instances small enough to solve in that time, see
    :data:`LP_NNZ_PER_S`; otherwise subgradient gets that time too). ``Bound.x`` scores
    the sites (LP values, or ``A @ lam``): its top ``p`` is a start for the search.
    """
    a = sparse.csr_matrix(a, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    total = _safe(float(w.sum()))
    if p <= 0 or w.size == 0:
        return Bound(0.0, "trivial", 0, np.zeros(w.size))
    if lam is None:
        if counts is not None:
            lam = np.where(counts == 0, w, w / np.maximum(counts, 1))
        else:  # a unit covered by m candidates is worth about w/m to each of them
            lam = w / np.maximum(1.0, np.asarray(a.sum(axis=0)).ravel())
    use_lp = lp_seconds > 0.05 and a.nnz <= LP_NNZ_PER_S * lp_seconds
    started = time.monotonic()
    value, lam, it = _subgradient(a, a.T.tocsr(), w, p, lam, target,
                                  started + seconds + (0 if use_lp else max(0.0, lp_seconds)),
                                  max_iter, stop_gap)
    source, x = "lagrangian", np.asarray(a @ lam, dtype=np.float64)
    lp_seconds -= max(0.0, time.monotonic() - started - seconds)
    if use_lp and value - target > stop_gap * value and lp_seconds > 0.05:
        lp = _lp(a, w, p, lp_seconds)
        if lp is not None:
            x = lp[1]  # the LP's site values are a start for the search either way
            lp_value = lagrangian(a, w, lp[0], p)
            if lp_value < value:
                value, lam, source = lp_value, lp[0], "lp-duals"
    if total <= value:
        return Bound(total, "trivial", it, lam, x)
    return Bound(value, source, it, lam, x)


def count_lower_bound(a: sparse.csr_matrix, w: FloatArray, needed: float, upper: int,
                      *, seconds: float = 1.0) -> int:
    """Fewest sites that could possibly cover ``needed`` (a proven lower bound <= ``upper``).

    ``k`` sites are proven too few when a bound with budget ``k`` is below ``needed``;
    the bound is monotone in ``k``, so a binary search over ``[0, upper]`` finds the
    largest ``k`` proven too few within the time budget (each probe gets its share).
    """
    if needed <= 0:
        return 0
    lo, hi = 0, upper  # invariant: lo sites proven too few (or lo == 0), hi not disproven
    deadline = time.monotonic() + seconds
    lam: FloatArray | None = None
    probes = max(1, math.ceil(math.log2(max(2, upper))))
    while hi - lo > 1 and time.monotonic() < deadline:
        mid = (lo + hi) // 2
        left = max(0.02, (deadline - time.monotonic()) / probes)
        b = upper_bound(a, w, mid, target=needed, seconds=left, lam=lam, stop_gap=-2 * SLACK)
        lam = b.lam
        if b.value < needed * (1 - 2 * SLACK):
            lo = mid
        else:
            hi = mid
    return lo + 1
