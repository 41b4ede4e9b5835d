"""Print the opening_hours.js oracle figures (the README quotes them).

    .venv/bin/python -m tests.oracle.report

Runs the same comparison as ``tests/test_hours_oracle.py`` and prints: corpus size,
values each side refuses (by kind), values and (value, instant) pairs compared, the
agreement rate with and without the known differences, and the differences per reason.
"""

from __future__ import annotations

import re
import time
from collections import Counter

from tests.oracle.harness import agreement, compare, read_corpus
from tests.test_hours_oracle import KNOWN, REASONS, REJECTED, _read_tsv


def _refusal_kind(side: str, error: str) -> str:
    """A coarse label for why a side refuses a value (for the summary only)."""
    if side == "js":
        if "no holidays (SH)" in error:
            return "SH: opening_hours.js has no school holidays for China"
        if "evaluation" in error:
            return "opening_hours.js parses it but throws when evaluating"
        return "opening_hours.js syntax error"
    if re.search(r"contains control character|empty|too long", error):
        return "geo_service input checks (control characters, blank, length)"
    return "opening-hours-py syntax error (opening_hours.js accepts it, often with a warning)"


def main() -> None:
    started = time.perf_counter()
    values = read_corpus()
    rejected = _read_tsv(REJECTED)
    outcomes = compare(values, frozenset(v for v, s in rejected.items() if s == "js"))
    seconds = time.perf_counter() - started

    refusals: Counter[str] = Counter()
    for o in outcomes:
        if o.js_error is not None:
            refusals[_refusal_kind("js", o.js_error)] += 1
        if o.py_error is not None:
            refusals[_refusal_kind("py", o.py_error)] += 1
    compared = [o for o in outcomes if o.both_accept]
    known = _read_tsv(KNOWN)
    figures = agreement(compared, known)
    clean_values = sum(1 for o in compared if o.expr not in known)
    agree_values = sum(1 for o in compared if not o.mismatches())

    print(f"corpus values: {len(values)} ({seconds:.0f} s)")
    for kind, n in refusals.most_common():
        print(f"  refused, {kind}: {n}")
    print(f"accepted by both: {len(compared)} values, {figures.pairs} (value, instant) pairs, "
          f"{min(len(o.instants) for o in compared)}-{max(len(o.instants) for o in compared)} "
          "instants per value")
    print(f"agreement: {figures.percent:.2f}% of pairs ({figures.differ} differ); "
          f"{agree_values} of {len(compared)} values agree at every instant")
    print(f"without the {len(known)} known differences: {clean_values} values, "
          f"{figures.clean_pairs} pairs, {figures.clean_percent:.2f}% agreement")
    per_reason = Counter(known.values())
    pairs_per_reason: Counter[str] = Counter()
    for o in compared:
        if o.expr in known:
            pairs_per_reason[known[o.expr]] += len(o.mismatches())
    for reason, n in per_reason.most_common():
        print(f"  {reason}: {n} values, {pairs_per_reason[reason]} pairs - {REASONS[reason]}")


if __name__ == "__main__":
    main()
