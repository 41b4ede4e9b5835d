"""Plans within ~1 % of the optimum that say how close they are: the default recommender.

Pure array code: :func:`swap_plan` (N new sites, most demand) and :func:`share_plan`
(fewest sites for X % of demand) run greedy, improve it with the interchange search of
:mod:`geo_service.coverage.swap`, and attach a proven bound from
:mod:`geo_service.coverage.bounds`, all within a time budget. A planner then reads
"at least 99.3 % of the best possible" instead of greedy's textbook 63 %.

Order of work within the budget, and why:

1. greedy (milliseconds) and one local search from it: a good plan at once;
2. the bound: subgradient for a tenth of the budget, which proves easy instances; the
   ``n`` sites its multipliers favour are a second start for the search (on the bench's
   corridor this start is the optimum, found in milliseconds);
3. only if the gap is still above ``gap_tolerance``: HiGHS's LP relaxation until 70 %
   of the budget (small instances: its duals make the bound; its solution, rounded to
   the ``n`` largest sites, is a third start: on city data the LP is often integral,
   i.e. the optimum itself);
4. perturbation restarts (:func:`swap.search`) until the plan meets the bound or
   85 % of the budget is used, then subgradient steps to tighten the bound.

Work stops early once the certified gap is at most ``gap_tolerance`` (0.2 % by default,
like a MIP solver's relative gap). The search is seeded and the restarts stop at the
budget, so on a loaded machine a run may stop at a different (never worse than greedy,
always certified) plan than on an idle one.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import numpy.typing as npt

from geo_service.coverage import bounds, recommend, swap

__all__ = ["DEFAULT_BUDGET_S", "MAX_BUDGET_S", "certify", "share_plan", "swap_plan"]

IntArray = npt.NDArray[np.intp]

#: Default and largest time budget of one answer (seconds).
DEFAULT_BUDGET_S = 3.0
MAX_BUDGET_S = 120.0
#: A plan within this relative gap of its bound is called proven optimal (the bound
#: carries float slack of 1e-7; subgradient stops within 1e-6 of the plan's value).
PROVEN = 1e-5
#: The search stops once the certified gap is this small (as ``mip_rel_gap`` does).
GAP_TOL = 0.002


def _budget(seconds: float) -> float:
    if not (seconds > 0):
        raise ValueError("time_budget must be > 0 seconds")
    return min(float(seconds), MAX_BUDGET_S)


class _Reduced:
    """The instance the search and bound see, and how to go back to candidate indices."""

    def __init__(self, matrix: object, weights: npt.ArrayLike,
                 covered: npt.ArrayLike) -> None:
        self.state = recommend._State(matrix, weights, covered)
        rows, cols = self.state.relevant()
        sub = self.state.matrix[rows][:, cols].tocsr()
        sub.sort_indices()
        # Twin candidates (reaching exactly the same units) are one choice: keep the
        # lowest index, as greedy's tie rule does, so equal plans come out the same.
        first: dict[bytes, int] = {}  # unit set -> position among the kept
        keep: list[int] = []
        self.where: dict[int, int] = {}  # candidate index -> position (twins: the kept one)
        for j, r in enumerate(rows.tolist()):
            key = sub.indices[sub.indptr[j] : sub.indptr[j + 1]].tobytes()
            if key not in first:
                first[key] = len(keep)
                keep.append(j)
            self.where[int(r)] = first[key]
        self.rows = rows[keep]
        self.inst = swap.Instance.build(sub[keep], self.state.residual[cols])

    def local(self, plan: recommend.Plan) -> IntArray:
        return np.array([self.where[p.candidate] for p in plan.picks], dtype=np.intp)

    def plan(self, chosen: IntArray, method: str, **extra: object) -> recommend.Plan:
        ordered = recommend._ordered(self.state, self.rows[chosen], method, None)
        return dataclasses.replace(ordered, gap_bound=None, **extra)  # type: ignore[arg-type]


def _finish(plan: recommend.Plan, bound_added: float, source: str,
            started: float) -> recommend.Plan:
    """Attach the bound: ``upper_bound`` counts demand covered before, like covered_after."""
    added = plan.added
    gap = max(0.0, 1.0 - added / bound_added) if bound_added > 0 else 0.0
    return dataclasses.replace(
        plan, upper_bound=plan.covered_before + bound_added, gap_bound=gap,
        bound_source=source, seconds=time.monotonic() - started)


def _try_start(inst: swap.Instance, bound: bounds.Bound, k: int, best: IntArray,
               best_value: float, deadline: float) -> tuple[IntArray, float]:
    """Local search from the relaxation's ``k`` favourite sites; the better plan of the two."""
    assert bound.x is not None
    start = np.argsort(-bound.x, kind="stable")[:k].astype(np.intp)
    trial = swap.local_search(inst, start, deadline)[0]
    value = inst.value(trial)
    return (trial, value) if value > best_value else (best, best_value)


def swap_plan(matrix: object, weights: npt.ArrayLike, initially_covered: npt.ArrayLike,
              n: int, *, time_budget: float = DEFAULT_BUDGET_S, gap_tolerance: float = GAP_TOL,
              seed: int = 0, restarts: bool = True) -> recommend.Plan:
    """Greedy, then swaps (and restarts) within ``time_budget`` s, with a proven bound.

    Never worse than :func:`recommend.lazy_greedy` (the search starts from it and
    only accepts improvements). Stops early once the certified gap is at most
    ``gap_tolerance``. ``Plan.upper_bound`` is a proven bound on the demand any ``n``
    new sites could cover (existing coverage included), ``Plan.gap_bound`` the
    certified gap ``1 - added / (upper_bound - covered_before)``.
    """
    started = time.monotonic()
    budget = _budget(time_budget)
    deadline = started + budget
    tol = max(float(gap_tolerance), PROVEN)
    greedy = recommend.lazy_greedy(matrix, weights, initially_covered, n)
    red = _Reduced(matrix, weights, initially_covered)
    k = min(int(n), red.rows.size)
    if len(greedy.picks) < k or k == red.rows.size:  # everything reachable is covered
        reach = red.state.residual[red.state.relevant()[1]].sum()
        return _finish(dataclasses.replace(greedy, method="swap"), float(reach) if k else 0.0,
                       "all reachable demand covered", started)
    inst = red.inst

    def at(share: float) -> float:
        return started + share * budget

    best = swap.local_search(inst, red.local(greedy), deadline)[0]
    best_value = inst.value(best)
    # A short subgradient run: its bound is often tight already, and the sites it
    # favours (top of A @ lam) are a second start that often reaches it (bench corridor:
    # the optimum in 3 ms, where the LP took 0.9 s to say the same).
    bound = bounds.upper_bound(inst.a, inst.w, k, target=best_value, stop_gap=tol,
                               seconds=at(0.1) - time.monotonic(), counts=inst.counts(best))
    best, best_value = _try_start(inst, bound, k, best, best_value, deadline)
    if best_value < bound.value * (1 - tol):
        # Still open: HiGHS's LP relaxation until 70 % of the budget (when small enough);
        # its duals may tighten the bound and its rounded solution is a third start.
        lp = bounds.upper_bound(inst.a, inst.w, k, target=best_value, stop_gap=tol,
                                lam=bound.lam, seconds=0.0,
                                lp_seconds=at(0.7) - time.monotonic())
        if lp.value < bound.value:
            bound = lp
        best, best_value = _try_start(inst, lp, k, best, best_value, deadline)
    found = swap.search(inst, best, at(0.85), restarts=restarts, seed=seed,
                        stop_at=bound.value * (1 - tol))
    if found.value > best_value:
        best, best_value = found.chosen, found.value
    if best_value < bound.value * (1 - tol) and time.monotonic() < deadline:
        more = bounds.upper_bound(inst.a, inst.w, k, target=best_value, lam=bound.lam,
                                  stop_gap=tol, seconds=deadline - time.monotonic())
        if more.value < bound.value:
            bound = dataclasses.replace(more, source=f"{bound.source}+lagrangian")
    plan = red.plan(best, "swap")
    if plan.added < greedy.added:  # cannot happen (swaps only improve); never show worse
        plan = dataclasses.replace(greedy, method="swap")
    return _finish(plan, bound.value, bound.source, started)


def certify(matrix: object, weights: npt.ArrayLike, initially_covered: npt.ArrayLike,
            plan: recommend.Plan, n: int, *, time_budget: float = 1.0) -> recommend.Plan:
    """Attach a proven bound on what any ``n`` new sites could cover to a given plan.

    For plans found elsewhere (``method=greedy``): half the budget for subgradient,
    the rest for the LP when that leaves a gap above :data:`GAP_TOL`.
    """
    started = time.monotonic()
    budget = _budget(time_budget)
    red = _Reduced(matrix, weights, initially_covered)
    k = min(int(n), red.rows.size)
    if k == 0 or (plan.optimal_gap == 0.0 and plan.gap_bound == 0.0):
        return _finish(plan, plan.added, "all reachable demand covered", started)
    b = bounds.upper_bound(red.inst.a, red.inst.w, k, target=plan.added, stop_gap=GAP_TOL,
                           seconds=0.5 * budget, lp_seconds=0.5 * budget)
    return _finish(plan, b.value, b.source, started)


def share_plan(matrix: object, weights: npt.ArrayLike, initially_covered: npt.ArrayLike,
               target_share: float, max_sites: int, *,
               time_budget: float = DEFAULT_BUDGET_S, seed: int = 0) -> recommend.Plan:
    """Fewest sites for ``target_share`` of all demand, with a proven lower bound on the count.

    Greedy set cover finds ``K`` sites; the swap search then tries ``K - 1``, ``K - 2``
    ... sites while one such plan still reaches the target; the bound side proves that
    fewer than ``Plan.sites_lower_bound`` sites cannot (see
    :func:`bounds.count_lower_bound`). When they are equal the count is optimal.
    """
    started = time.monotonic()
    deadline = started + _budget(time_budget)
    greedy = recommend.sites_for_share(matrix, weights, initially_covered, target_share,
                                       max_sites)
    done = dataclasses.replace(greedy, method="swap_share", seconds=None)
    if not greedy.target_reached or not greedy.picks:
        lower = 0 if not greedy.picks else None
        return dataclasses.replace(done, sites_lower_bound=lower,
                                   seconds=time.monotonic() - started)
    red = _Reduced(matrix, weights, initially_covered)
    needed = target_share * red.state.total - red.state.before
    inst, best = red.inst, red.local(greedy)
    tol = 1e-9 * max(1.0, red.state.total)
    search_until = started + 0.6 * (deadline - started)
    while best.size > 1 and time.monotonic() < search_until:
        fewer = swap.search(inst, best[:-1], search_until, seed=seed, stop_at=needed - tol)
        if fewer.value < needed - tol:
            break
        best = fewer.chosen
    lower = bounds.count_lower_bound(inst.a, inst.w, needed - tol, best.size,
                                     seconds=max(0.05, deadline - time.monotonic()))
    plan = red.plan(best, "swap_share", target_share=float(target_share),
                    sites_lower_bound=lower)
    if len(plan.picks) > len(greedy.picks) or not plan.target_reached:  # never worse
        plan = dataclasses.replace(greedy, method="swap_share", sites_lower_bound=lower)
    return dataclasses.replace(plan, seconds=time.monotonic() - started)
