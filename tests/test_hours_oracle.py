"""geo_service's opening-hours answers checked against opening_hours.js, the reference.

Issue 13 asks that evaluation agree with the ``opening_hours`` npm package.  Every value
of ``tests/data/opening_hours_oracle_corpus.txt`` (over a thousand: opening_hours.js's own
test suite, our Chinese station hours, hand-written corners, grammar draws) is evaluated
at dozens of naive Asia/Shanghai instants - midnights, Sunday -> Monday, month ends, new
years, ISO week 53, leap day, and the rule's own change points - by opening_hours.js (one
node process for the whole batch, ``tests/oracle/oh_eval.mjs``) and by what the service
answers: :func:`geo_service.hours.compiler.open_state` and the compiled form the SQL filter stores
(weekly minute ranges or dated periods).  How instants and holidays are chosen:
``tests/oracle/harness.py``.

The rule: 100% agreement except for the committed, explained list of known differences
(``tests/data/opening_hours_oracle_known.tsv``); a new difference fails, and so does a
listed value that no longer differs, so the list stays honest.  Values only one side
accepts are pinned the same way (``tests/data/opening_hours_oracle_rejected.tsv``).

Figures: ``.venv/bin/python -m tests.oracle.report`` (also printed here with ``-s``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.oracle.harness import CORPUS, Outcome, agreement, compare, node_binary, read_corpus

DATA = Path(__file__).parent / "data"
KNOWN = DATA / "opening_hours_oracle_known.tsv"
REJECTED = DATA / "opening_hours_oracle_rejected.tsv"
MIN_INSTANTS = 50

REASONS = {
    "sun-fixed": "without coordinates opening_hours.js puts dawn/sunrise/sunset/dusk at "
                 "05:30/06:00/18:00/18:30, opening-hours-py at 06:00/07:00/19:00/20:00",
    "open-end": "an open end ('17:00+') is unknown for a guessed span in opening_hours.js "
                "(to midnight, 10 h from 17:00, 8 h from 22:00), open to midnight in "
                "opening-hours-py",
    "fallback-by-time": "a '||' fallback applies wherever the rules before it leave closed "
                        "in opening_hours.js, only on days no rule before it selects in "
                        "opening-hours-py",
    "spill-into-selected-day": "hours past midnight survive into a day a rule selects "
                               "unless that rule comes later (opening_hours.js); "
                               "opening-hours-py drops them whatever the order",
    "holiday-and-weekday": "'PH We,Fr' is 'holidays falling on We or Fr' in opening_hours.js, "
                           "'PH,We,Fr' (holidays or We or Fr) in opening-hours-py",
    "weekday-list-spaces": "'Mo, Tu, We' is one weekday list in opening_hours.js, separate "
                           "rules in opening-hours-py (a bare 'Mo' is open all day)",
    "date-offset": "date ranges with day offsets or easter ('Aug Su[-1] +1 day', "
                   "'Dec 25-easter') end on different days in the two libraries",
    "time-only-unknown": "a later time-only 'unknown' rule replaces only its time in "
                         "opening_hours.js, the whole day in opening-hours-py",
    "comment-selector": "a comment used as a selector ('\"text\": off') is unknown in "
                        "opening_hours.js, closed in opening-hours-py",
    "additional-after-fallback": "', off' after a '||' fallback belongs to the fallback in "
                                 "opening_hours.js, to every day in opening-hours-py",
}


def _read_tsv(path: Path) -> dict[str, str]:
    """``value -> key`` from ``key<TAB>value`` lines (``#`` lines are comments)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("\t", 1)
            assert value not in out, f"listed twice: {value!r}"
            out[value] = key
    return out


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    """Both sides over the whole corpus, once (node is required: `make test` installs it)."""
    assert node_binary() is not None, "node is needed for the opening_hours.js oracle"
    rejected = _read_tsv(REJECTED)
    return compare(read_corpus(), frozenset(v for v, side in rejected.items() if side == "js"))


def test_corpus_is_large_distinct_and_documented() -> None:
    values = read_corpus()
    assert len(values) >= 1000
    assert len(set(values)) == len(values)
    header = [line for line in CORPUS.read_text(encoding="utf-8").splitlines()
              if line.startswith("#")]
    assert any("opening_hours.js test/test.js" in line for line in header)


def test_every_reason_is_explained() -> None:
    keys = set(_read_tsv(KNOWN).values())
    assert keys <= set(REASONS), f"reasons without an explanation: {keys - set(REASONS)}"
    assert set(REASONS) <= keys, f"explained but unused: {set(REASONS) - keys}"


@pytest.mark.slow
def test_which_side_refuses_what_is_as_recorded(outcomes: list[Outcome]) -> None:
    both = [o.expr for o in outcomes if o.js_error is not None and o.py_error is not None]
    assert not both, f"the corpus keeps only values one side accepts: {both[:5]}"
    actual = {o.expr: "js" for o in outcomes if o.js_error is not None}
    actual |= {o.expr: "py" for o in outcomes if o.py_error is not None}
    recorded = _read_tsv(REJECTED)
    changed = {v: (recorded.get(v), actual.get(v)) for v in recorded.keys() | actual.keys()
               if recorded.get(v) != actual.get(v)}
    assert not changed, f"refusals changed (recorded, now): {list(changed.items())[:10]}"


@pytest.mark.slow
def test_agreement_with_opening_hours_js(outcomes: list[Outcome]) -> None:
    compared = [o for o in outcomes if o.both_accept]
    assert compared and all(len(o.instants) >= MIN_INSTANTS for o in compared), (
        [o.expr for o in compared if len(o.instants) < MIN_INSTANTS][:5]
    )
    differing = {o.expr: o for o in compared if o.mismatches()}
    known = _read_tsv(KNOWN)

    figures = agreement(compared, known)
    print(
        f"\nopening_hours.js oracle: {len(outcomes)} values, {len(compared)} accepted by both, "
        f"{figures.pairs} (value, instant) pairs, agreement {figures.percent:.2f}% "
        f"({len(compared) - len(differing)} values agree everywhere); without the "
        f"{len(known)} known differences: {figures.clean_pairs} pairs, "
        f"{figures.clean_percent:.2f}%"
    )

    new = []
    for expr, outcome in differing.items():
        if expr not in known:
            i = outcome.mismatches()[0]
            assert outcome.py is not None
            new.append(f"{expr!r} at {outcome.instants[i]:%a %Y-%m-%d %H:%M}: opening_hours.js "
                       f"{outcome.js_states[i]}, open_state {outcome.py.open_state[i]}, "
                       f"stored open {outcome.py.stored_open[i]}")
    assert not new, "new differences from opening_hours.js:\n" + "\n".join(new[:20])
    stale = [v for v in known if v not in differing]
    assert not stale, f"listed as different but now agree (remove them): {stale[:10]}"


@pytest.mark.slow
def test_the_issue_examples(outcomes: list[Outcome]) -> None:
    by_expr = {o.expr: o for o in outcomes}
    # A comment-only state is unknown on both sides, at every instant.
    on_request = by_expr['24/7 "on request"']
    assert on_request.py is not None and not on_request.mismatches()
    assert set(on_request.js_states) == {"unknown"}
    assert set(on_request.py.open_state) == {"unknown"}
    # Saturday's hours running into Sunday morning: a known, explained difference.
    spill = "Mo-Tu,Su 10:00-21:00; We-Sa 10:00-05:00"
    assert _read_tsv(KNOWN)[spill] == "spill-into-selected-day"
    outcome = by_expr[spill]
    sunday_early = [i for i, at in enumerate(outcome.instants)
                    if at.weekday() == 6 and at.hour < 5]
    assert sunday_early and all(outcome.js_states[i] == "open" for i in sunday_early)
    assert set(outcome.mismatches()) == set(sunday_early)
