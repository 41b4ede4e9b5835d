"""Greedy + interchange (swap) local search for the maximal covering problem.

Pure array code over the reduced instance (:class:`Instance`): the candidates that reach
still-uncovered demand and the units they reach. Greedy can be several percent short of
the optimum (issue 17 measured 3-6 % on clustered demand around Sanya; 2 % on the
bench's corridor and clustered families, bench/COVERAGE.md); a Teitz-Bart-style
interchange closes most of that: swap one chosen site for one outside while that adds
demand.

Bookkeeping (why a pass is cheap)
---------------------------------
``cnt[i]`` = how many chosen sites cover unit ``i``; a swap changes it only on the two
sites' columns. From ``cnt`` every swap's value follows from three sparse products
rather than a re-evaluation per pair: with ``S`` the chosen set,

* ``gain[k] = sum w_i [cnt_i = 0] a_ki``, what ``k`` adds (one product ``A @ free``);
* ``loss[j] = sum w_i [cnt_i = 1] a_ji`` for ``j`` in S, what dropping ``j`` loses;
* ``E[k, j] = sum w_i [cnt_i = 1, j the one coverer of i] a_ki``, demand ``j`` alone
  covers that ``k`` would keep (``A @ U``, nonzero only where ``k`` and ``j`` overlap);

and swapping ``j`` out for ``k`` changes coverage by exactly ``gain[k] + E[k,j] - loss[j]``.
The best ``j`` for each ``k`` is either one of the few overlapping with it or the one of
least loss, so the whole ``p x C`` neighbourhood is scanned in O(nnz) numpy work, and
the best swap is made (best improvement) until none adds demand.

Restarts: the local optimum is perturbed (a fifth of the sites replaced by random
candidates drawn by their gain) and searched again, keeping the best, while the time
budget lasts (iterated local search). The random generator is seeded: same input, same
answer.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

__all__ = ["Instance", "local_search", "search"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


@dataclass
class Instance:
    """Candidates (rows) x still-uncovered reachable units (columns), as float 0/1."""

    a: sparse.csr_matrix  # candidates x units
    at: sparse.csr_matrix  # units x candidates (the same, transposed)
    w: FloatArray  # weight of each unit, > 0

    @classmethod
    def build(cls, matrix: sparse.csr_matrix, w: FloatArray) -> Instance:
        """Units reached by exactly the same candidates are merged (weights added).

        Nothing can tell such units apart, so every solver and bound is unchanged by
        the merge, and clustered demand shrinks 2-5 times (9,614 units to 2,177 in the
        10,000 x 2,000 clustered-small bench instance, 10,000 to 5,384 on the corridor
        one): the LP then solves in about a second on this machine.
        """
        at = sparse.csr_matrix(matrix, dtype=np.float64).T.tocsr()
        at.sort_indices()
        ind, ptr = at.indices, at.indptr.tolist()
        group: dict[bytes, int] = {}
        which = np.fromiter((group.setdefault(ind[s:e].tobytes(), len(group))
                             for s, e in itertools.pairwise(ptr)), np.intp, len(ptr) - 1)
        weights: FloatArray = np.bincount(which, weights=np.asarray(w, dtype=np.float64),
                                          minlength=len(group)).astype(np.float64)
        first = np.full(len(group), -1, dtype=np.intp)
        first[which[::-1]] = np.arange(which.size)[::-1]  # first unit of each group
        at = at[first]
        return cls(at.T.tocsr(), at, weights)

    @property
    def n_candidates(self) -> int:
        return int(self.a.shape[0])

    def counts(self, chosen: IntArray) -> npt.NDArray[np.int32]:
        """How many chosen sites cover each unit."""
        cnt = np.zeros(self.w.size, dtype=np.int32)
        for j in chosen.tolist():
            cnt[self.a.indices[self.a.indptr[j] : self.a.indptr[j + 1]]] += 1
        return cnt

    def value(self, chosen: IntArray) -> float:
        """Demand covered by ``chosen`` (computed afresh: no drift from updates)."""
        return float(self.w[self.counts(chosen) > 0].sum())


def _best_swap(inst: Instance, chosen: IntArray, in_s: npt.NDArray[np.bool_],
               cnt: npt.NDArray[np.int32]) -> tuple[float, int, int]:
    """The swap (value change, position in ``chosen`` to drop, candidate to add)."""
    a, w = inst.a, inst.w
    free = np.where(cnt == 0, w, 0.0)
    gain = a @ free
    once = np.flatnonzero(cnt == 1)
    # The one chosen site covering each unit covered once: its position in ``chosen``.
    sub = inst.at[once][:, chosen] if once.size else sparse.csr_matrix((0, chosen.size))
    owner = sub.indices  # exactly one nonzero per row
    loss = np.bincount(owner, weights=w[once], minlength=chosen.size)
    u = sparse.csr_matrix((w[once], (once, owner)), shape=(w.size, chosen.size))
    e = sparse.csr_matrix(a @ u)
    e.sum_duplicates()
    least = int(np.argmin(loss))
    best_pair = np.full(a.shape[0], -loss[least])  # value of dropping the least-loss site
    best_pos = np.full(a.shape[0], least, dtype=np.intp)
    if e.nnz:
        vals = e.data - loss[e.indices]
        rows = np.repeat(np.arange(a.shape[0]), np.diff(e.indptr))
        order = np.lexsort((-vals, rows))  # per row, the largest first
        first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        better = vals[first] > best_pair[rows[first]]
        best_pair[rows[first][better]] = vals[first][better]
        best_pos[rows[first][better]] = e.indices[first][better]
    delta = gain + best_pair
    delta[in_s] = -np.inf
    k = int(np.argmax(delta))  # first maximum: lowest candidate index wins ties
    return float(delta[k]), int(best_pos[k]), k


def local_search(inst: Instance, chosen: IntArray, deadline: float) -> tuple[IntArray, int]:
    """Best-improvement swaps from ``chosen`` until none adds demand (or time is up)."""
    chosen = np.array(chosen, dtype=np.intp)
    if chosen.size == 0 or chosen.size >= inst.n_candidates:
        return chosen, 0
    in_s = np.zeros(inst.n_candidates, dtype=bool)
    in_s[chosen] = True
    cnt = inst.counts(chosen)
    tol = 1e-9 * max(1.0, float(inst.w.sum()))
    a = inst.a
    swaps = 0
    while time.monotonic() < deadline:
        delta, pos, k = _best_swap(inst, chosen, in_s, cnt)
        if not delta > tol:
            break
        j = int(chosen[pos])
        cnt[a.indices[a.indptr[j] : a.indptr[j + 1]]] -= 1
        cnt[a.indices[a.indptr[k] : a.indptr[k + 1]]] += 1
        in_s[j], in_s[k] = False, True
        chosen[pos] = k
        swaps += 1
    return chosen, swaps


def _perturb(inst: Instance, chosen: IntArray, rng: np.random.Generator) -> IntArray:
    """Replace a fifth (at least one) of the sites by candidates drawn by their gain."""
    out = chosen.copy()
    drop = rng.choice(out.size, size=max(1, out.size // 5), replace=False)
    keep = np.delete(out, drop)
    free = np.where(inst.counts(keep) == 0, inst.w, 0.0)
    gain = inst.a @ free
    gain[keep] = 0.0
    if gain.sum() <= 0:
        return out
    pick = rng.choice(inst.n_candidates, size=min(drop.size, int((gain > 0).sum())),
                      replace=False, p=gain / gain.sum())
    out = np.concatenate([keep, pick])
    if out.size < chosen.size:  # too few useful candidates: refill with any unchosen
        rest = np.setdiff1d(np.arange(inst.n_candidates), out)[: chosen.size - out.size]
        out = np.concatenate([out, rest])
    return out.astype(np.intp)


@dataclass(frozen=True)
class Search:
    """What :func:`search` found and how."""

    chosen: IntArray
    value: float
    swaps: int
    restarts: int
    start_value: float


def search(inst: Instance, start: IntArray, deadline: float, *, restarts: bool = True,
           seed: int = 0, stop_at: float = np.inf) -> Search:
    """Local search from ``start``, then perturbation restarts until ``deadline``.

    ``stop_at``: a proven upper bound; the search stops once a plan reaches it.
    """
    start = np.asarray(start, dtype=np.intp)
    start_value = inst.value(start)
    best, swaps = local_search(inst, start, deadline)
    best_value = inst.value(best)
    rng = np.random.default_rng(seed)
    runs = 0
    tol = 1e-9 * max(1.0, float(inst.w.sum()))
    while (restarts and best.size and best.size < inst.n_candidates
           and time.monotonic() < deadline and best_value < stop_at - tol):
        trial, more = local_search(inst, _perturb(inst, best, rng), deadline)
        swaps += more
        runs += 1
        value = inst.value(trial)
        if value > best_value + tol:
            best, best_value = trial, value
    return Search(best, best_value, swaps, runs, start_value)
