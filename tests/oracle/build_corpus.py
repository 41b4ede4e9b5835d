"""Rebuild ``tests/data/opening_hours_oracle_corpus.txt`` (run by hand, not by the tests).

    .venv/bin/python -m tests.oracle.build_corpus

Sources, in this order (first occurrence wins, duplicates dropped):

1. every value in opening_hours.js's own test suite (``test/test.js`` of the mirror at
   ``/work/.mirror/opening-hours+opening_hours.js/repo``, or ``--test-js PATH``), pulled
   out by running its test definitions with a recorder (``extract_testsuite.cjs``);
2. the project's corpus of Chinese station hours (``tests/data/opening_hours_cn.txt``);
3. hand-written cases for the corners the issue names (below);
4. values drawn, with a fixed seed, from the hypothesis grammar of
   ``tests/test_hours_render.py``, until the corpus has ``--target`` values.

Only values at least one side accepts are kept (a value both refuse tells nothing about
evaluation); values with line breaks cannot be one per line and are dropped.  The header
records the counts, so a reader sees where the values came from.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tests.oracle.harness import CORPUS, ROOT, python_accepts, run_reference

MIRROR = Path("/work/.mirror/opening-hours+opening_hours.js/repo")

HAND_WRITTEN = [
    # The issue's own examples: Saturday's hours run into Sunday morning; a comment-only
    # state (unknown in opening_hours.js).
    "Mo-Tu,Su 10:00-21:00; We-Sa 10:00-05:00",
    '24/7 "on request"',
    '"on request"',
    '24/7 open "on request"',
    '24/7 unknown "on request"',
    # Midnight spill and extended times.
    "Mo-Su 22:00-06:00",
    "Su 22:00-02:00",
    "Sa 20:00-28:00",
    "Fr 22:00-48:00",
    "Mo-Fr 18:00-02:00; Sa 18:00-04:00; Su off",
    "Mo-Su 00:00-24:00",
    "Mo 10:00-10:00",
    "Mo-Fr 10:00+",
    "Fr 23:00-01:00; Sa off",
    "Su 23:59-00:01",
    # Fallback rules.
    "Mo-Fr 08:00-18:00 || closed",
    "Mo-Fr 08:00-18:00 || unknown",
    'Mo-Fr 08:00-18:00 || "by appointment"',
    'Mo-Fr 08:00-18:00 || unknown "by appointment"',
    "Mo-Fr 08:00-12:00 || Sa 09:00-11:00 || 24/7 off",
    "Mo-Fr 22:00-02:00 || Sa-Su 10:00-12:00",
    # Plain states.
    "off", "closed", "unknown", "open", "24/7", "24/7 closed", "24/7 unknown",
    'closed "renovation"', 'off "moved"', 'unknown "call first"',
    # Week, month and year ranges.
    "week 1-26 Mo-Fr 09:00-17:00",
    "week 53 Mo-Su 10:00-12:00",
    "week 01-53/2 Sa 10:00-14:00",
    "Dec 24-Jan 02 off; Mo-Fr 09:00-17:00",
    "Feb 29 10:00-12:00",
    "Feb 28-Mar 01 Mo-Su 08:00-20:00",
    "Jan-Mar Mo-Fr 08:00-12:00; Apr-Dec Mo-Fr 08:00-18:00",
    "Nov-Feb 09:00-16:00; Mar-Oct 08:00-18:00",
    "2025 Mo-Fr 08:00-18:00",
    "2024-2026 Mo-Fr 08:00-18:00; 2027 off",
    "2025 Dec 31 10:00-16:00",
    "2026 Dec 28-2027 Jan 03 off; Mo-Su 09:00-17:00",
    "Mo[1] 10:00-12:00",
    "Su[-1] 10:00-12:00",
    # Public holidays (compared away from holidays, see harness).
    "PH off",
    "Mo-Fr 09:00-17:00; PH off",
    "Mo-Su 08:00-20:00; PH 10:00-16:00",
    "PH 22:00-02:00; Mo-Fr 09:00-17:00",
    "Mo-Fr 08:00-18:00; PH closed || Sa 09:00-12:00",
    # Chinese stations: split shifts, lunch breaks, cooling buses.
    "Mo-Su 10:00-16:00",
    "Mo-Fr 07:00-09:00,11:30-13:30,17:00-19:00",
    "Jun-Sep Mo-Su 10:00-16:00",
    "Mo-Su 06:00-22:00; Jul-Aug Mo-Su 05:00-23:00",
]


def _testsuite_values(test_js: Path | None) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = test_js
        if path is None:
            path = Path(tmp) / "test.js"
            text = subprocess.run(
                ["git", "-C", str(MIRROR), "show", "HEAD:test/test.js"],
                capture_output=True, check=True,
            ).stdout
            path.write_bytes(text)
        out = subprocess.run(
            ["node", str(ROOT / "tests" / "oracle" / "extract_testsuite.cjs"), str(path)],
            capture_output=True, check=True,
        ).stdout.decode()
    return [json.loads(line)["value"] for line in out.splitlines() if line.strip()]


def _grammar_values(count: int) -> list[str]:
    from tests.test_hours_render import opening_hours

    drawn: list[str] = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(opening_hours())
    def draw(value: str) -> None:
        drawn.append(value)

    draw()
    return drawn


def _cn_values() -> list[str]:
    text = (ROOT / "tests" / "data" / "opening_hours_cn.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--test-js", type=Path, help="opening_hours.js test/test.js")
    parser.add_argument("--target", type=int, default=1500)
    args = parser.parse_args()

    sources = {
        "opening_hours.js test/test.js": _testsuite_values(args.test_js),
        "tests/data/opening_hours_cn.txt": _cn_values(),
        "hand-written (tests/oracle/build_corpus.py)": HAND_WRITTEN,
    }
    seen: dict[str, str] = {}
    kept_from: dict[str, int] = {}
    dropped = {"both reject": 0, "line break": 0}

    def offer(source: str, values: list[str]) -> None:
        fresh = [v for v in dict.fromkeys(values) if v not in seen]
        multi = [v for v in fresh if "\n" in v or "\r" in v or v.startswith("#") or not v]
        dropped["line break"] += len(multi)
        fresh = [v for v in fresh if v not in multi]
        js = run_reference([(v, []) for v in fresh])
        for value, answer in zip(fresh, js, strict=True):
            if answer["ok"] or python_accepts(value) is None:
                seen[value] = source
                kept_from[source] = kept_from.get(source, 0) + 1
            else:
                dropped["both reject"] += 1

    for source, values in sources.items():
        offer(source, values)
    grammar = "hypothesis grammar of tests/test_hours_render.py (derandomized)"
    need = args.target - len(seen)
    if need > 0:
        values = _grammar_values(need * 3)
        offer(grammar, [v for v in values if v not in seen][:need])

    header = [
        "# Corpus for the opening_hours.js oracle test (tests/test_hours_oracle.py): one",
        "# OSM opening_hours value per line, each accepted by at least one of opening_hours.js",
        "# and geo_service.hours.compiler. Rebuilt by: "
        ".venv/bin/python -m tests.oracle.build_corpus",
        "# Provenance (values kept per source, first source wins):",
        *(f"#   {n:5d}  {s}" for s, n in kept_from.items()),
        "# opening_hours.js test suite: LGPL-3.0-only, its values are used as test data only.",
        f"# Dropped: {dropped['both reject']} refused by both sides, "
        f"{dropped['line break']} with line breaks or empty.",
    ]
    CORPUS.write_text("\n".join(header + list(seen)) + "\n", encoding="utf-8")
    print(f"{len(seen)} values written to {CORPUS.relative_to(ROOT)}; {kept_from}; {dropped}")


if __name__ == "__main__":
    main()
