"""Both sides of the opening-hours oracle: instants, opening_hours.js, geo_service.hours.compiler.

Shared by ``tests/test_hours_oracle.py`` (the check) and ``tests/oracle/build_corpus.py``
(which keeps only values at least one side accepts).  Everything happens in naive local
wall-clock time in Asia/Shanghai (no DST since 1991), so a difference is a difference in
evaluation, never in time-zone arithmetic.

Public holidays: opening_hours.js cannot turn its calendar off (without a country it
throws), so it evaluates with China's list (fixed dates: 1 Jan, 8 Mar, 1 May, 4 May,
1 Jun, 1-3 Oct).  geo_service evaluates with ``country=None`` (calendar off: ``PH`` never
matches), which is also stable while the Chinese calendar in ``hours/compiler.py`` is reworked.
Rules that mention ``PH`` are therefore compared only on dates at least two days away
from any of those holidays: there both calendars agree that no holiday is near (one day
of spill-over from the day before plus ``PH +1 day``-style offsets).
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from opening_hours import OpeningHours

from geo_service.hours.compiler import (
    HoursError,
    compile_hours,
    minute_of_week,
    open_state,
    validate_hours,
)

ROOT = Path(__file__).resolve().parents[2]
EVAL_SCRIPT = Path(__file__).with_name("oh_eval.mjs")
CORPUS = ROOT / "tests" / "data" / "opening_hours_oracle_corpus.txt"
TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)

State = Literal["open", "closed", "unknown"]
_STATE_OF = {True: "open", False: "closed", None: "unknown"}

# Every instant lies in one of two windows; dated rules are compiled once per window.  The
# first holds a leap day, the second two new years (2025/26 and 2026/27, where 2026 has an
# ISO week 53: Mon 28 Dec - Sun 3 Jan) and a whole year of month ends and change points.
WINDOWS = (
    (datetime(2024, 2, 25), datetime(2024, 3, 5)),
    (datetime(2025, 12, 20), datetime(2027, 1, 10)),
)

# Days every value is evaluated on, at 00:00, 00:01, 12:00 and 23:59 (and at the rule's own
# clock times on PROBE_DAYS): leap day, both new years, a whole week with the Sunday ->
# Monday wrap on both sides, and month ends.
BOUNDARY_DAYS = (
    date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1),
    date(2025, 12, 28), date(2025, 12, 29), date(2025, 12, 31), date(2026, 1, 1),
    date(2026, 3, 15), date(2026, 3, 16), date(2026, 3, 17), date(2026, 3, 18),
    date(2026, 3, 19), date(2026, 3, 20), date(2026, 3, 21), date(2026, 3, 22),
    date(2026, 3, 23),
    date(2026, 4, 30), date(2026, 5, 1), date(2026, 6, 30), date(2026, 7, 1),
    date(2026, 12, 27), date(2026, 12, 28), date(2026, 12, 31), date(2027, 1, 1),
    date(2027, 1, 3), date(2027, 1, 4),
)
BOUNDARY_TIMES = (time(0, 0), time(0, 1), time(12, 0), time(23, 59))
# Sun 15 Mar .. Mon 23 Mar 2026: every weekday, and both Sunday -> Monday wraps (and no
# holiday of either calendar within two days).
PROBE_DAYS = tuple(date(2026, 3, 15) + timedelta(days=i) for i in range(9))
# Fixed sun times without coordinates: opening_hours.js (dawn 05:30, sunrise 06:00, sunset
# 18:00, dusk 18:30) and opening-hours-py (dawn 06:00, sunrise 07:00, sunset 19:00,
# dusk 20:00).
SUN_MINUTES = (330, 360, 420, 1080, 1110, 1140, 1200)
# opening_hours.js's PH calendar for "cn" (src/holidays/cn.yaml), as (month, day).
JS_CN_HOLIDAYS = ((1, 1), (3, 8), (5, 1), (5, 4), (6, 1), (10, 1), (10, 2), (10, 3))
CHANGE_POINTS_PER_VALUE = 24
FALLBACK_OPEN_STATE_INSTANTS = 24

_CLOCK_RE = re.compile(r"(\d{1,2}):(\d{2})")
_COMMENT_RE = re.compile(r'"[^"]*"')
_PH_RE = re.compile(r"\b[PS]H\b")
_SUN_RE = re.compile(r"sunrise|sunset|dawn|dusk", re.IGNORECASE)


def _code(expr: str) -> str:
    return _COMMENT_RE.sub(" ", expr)


def mentions_holidays(expr: str) -> bool:
    """Whether the rule's meaning depends on a holiday calendar (outside comments)."""
    return _PH_RE.search(_code(expr)) is not None


def _near_js_holiday(day: date) -> bool:
    return any(
        abs((day - date(year, m, d)).days) <= 2
        for m, d in JS_CN_HOLIDAYS
        for year in (day.year - 1, day.year, day.year + 1)
    )


def _change_points(expr: str) -> list[datetime]:
    """Where the Rust library says the rule changes, evenly thinned to a few per value.

    Only used to pick instants (a wrong point costs nothing but a wasted sample), so the
    library's known ``||`` inaccuracy in ``intervals()`` does not matter here.
    """
    points: list[datetime] = []
    try:
        oh = OpeningHours(expr, timezone=None, country=None)
        for start, end in WINDOWS:
            runs = list(itertools.islice(oh.intervals(start, end), 20000))
            points += [lo.replace(tzinfo=None) for lo, _hi, _state, _comment in runs[1:]]
    except Exception:  # rejected by the Rust side: no change points from it
        return []
    if len(points) <= CHANGE_POINTS_PER_VALUE:
        return points
    step = len(points) / CHANGE_POINTS_PER_VALUE
    return [points[int(i * step)] for i in range(CHANGE_POINTS_PER_VALUE)]


def instants_for(expr: str) -> list[datetime]:
    """Naive Shanghai wall-clock instants at which *expr* is compared, sorted.

    Boundary days at fixed times, the rule's own clock times (and one minute before) on
    every day of a probe week, the fixed sun times when it has sun events, and the change
    points the Rust library reports over the whole window (and one minute before each).
    """
    out: set[datetime] = {datetime.combine(d, t) for d in BOUNDARY_DAYS for t in BOUNDARY_TIMES}
    minutes = {(int(h) * 60 + int(m)) % 1440 for h, m in _CLOCK_RE.findall(_code(expr))}
    if _SUN_RE.search(_code(expr)):
        minutes.update(SUN_MINUTES)
    for day in PROBE_DAYS:
        midnight = datetime.combine(day, time())
        for minute in minutes:
            at = midnight + timedelta(minutes=minute)
            out.update((at, at - timedelta(minutes=1)))
    for point in _change_points(expr):
        point = point.replace(second=0, microsecond=0)
        out.update((point, point - timedelta(minutes=1)))
    keep = [at for at in out if any(lo <= at < hi for lo, hi in WINDOWS)]
    if mentions_holidays(expr):
        keep = [at for at in keep if not _near_js_holiday(at.date())]
    return sorted(keep)


def fmt(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M")


# --------------------------------------------------------------------------- reference


def node_binary() -> str | None:
    return shutil.which("node")


def run_reference(requests: Sequence[tuple[str, Sequence[datetime]]]) -> list[dict[str, Any]]:
    """Evaluate every ``(expr, instants)`` with opening_hours.js in ONE node process."""
    node = node_binary()
    if node is None:
        raise RuntimeError("node is not installed")
    payload = "".join(
        json.dumps({"expr": expr, "instants": [fmt(a) for a in instants]}, ensure_ascii=False)
        + "\n"
        for expr, instants in requests
    )
    done = subprocess.run(
        [node, str(EVAL_SCRIPT)],
        input=payload.encode(),
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "TZ": TZ},
        timeout=600,
        check=True,
    )
    answers = [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]
    if len(answers) != len(requests):
        raise RuntimeError(f"oh_eval.mjs answered {len(answers)} of {len(requests)} values")
    return answers


# --------------------------------------------------------------------------- geo_service


def python_accepts(expr: str) -> str | None:
    """None when geo_service accepts *expr*, else its error message."""
    try:
        validate_hours(expr)
    except HoursError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class PythonAnswer:
    """What geo_service answers at each instant, by the two paths the service uses."""

    open_state: list[State | None]
    """:func:`geo_service.hours.compiler.open_state` (API rows), three-valued; None where not asked
    (see :data:`FALLBACK_OPEN_STATE_INSTANTS`)."""
    stored_open: list[bool]
    """The compiled form the SQL filter tests (weekly minute ranges or dated periods)."""
    kind: str


def python_side(expr: str, instants: Sequence[datetime]) -> PythonAnswer:
    """Evaluate *expr* the way the service does, with the holiday calendar off.

    The stored form is checked at every instant.  ``open_state`` is too, except for rules
    with a ``||`` fallback or a time past midnight (``48:00``): there each call also
    rebuilds a timeline to find the next change (3-15 ms measured for ``unknown || 2030
    Mo 10:00-12:00``, where nothing changes for a year), so it is asked at
    :data:`FALLBACK_OPEN_STATE_INSTANTS` evenly spaced instants - the stored form of
    those rules comes from the same ``state()`` calls, sampled at every possible change
    point.
    """
    compiled = [
        compile_hours(expr, TZ, now=lo.replace(tzinfo=ZONE) + timedelta(days=1),
                      horizon_days=(hi - lo).days - 1, country=None)
        for lo, hi in WINDOWS
    ]
    asked = set(range(len(instants)))
    times = _CLOCK_RE.findall(_code(expr))
    slow = "||" in _code(expr) or any(int(h) * 60 + int(m) > 1440 for h, m in times)
    if slow and len(instants) > FALLBACK_OPEN_STATE_INSTANTS:
        step = len(instants) / FALLBACK_OPEN_STATE_INSTANTS
        asked = {int(i * step) for i in range(FALLBACK_OPEN_STATE_INSTANTS)}
    states: list[State | None] = []
    stored: list[bool] = []
    for i, naive in enumerate(instants):
        at = naive.replace(tzinfo=ZONE)
        if i in asked:
            state, _next = open_state(expr, TZ, at, country=None)
            states.append(_STATE_OF[state])  # type: ignore[arg-type]
        else:
            states.append(None)
        shape = compiled[0] if naive < WINDOWS[0][1] else compiled[1]
        if shape.kind == "weekly":
            minute = minute_of_week(at, TZ)
            stored.append(any(lo <= minute < hi for lo, hi in shape.weekly))
        else:
            assert shape.valid_until is not None and at < shape.valid_until
            stored.append(_inside(shape.periods, at.astimezone(UTC)))
    return PythonAnswer(states, stored, compiled[0].kind)


def _inside(periods: Sequence[tuple[datetime, datetime]], at: datetime) -> bool:
    """``at`` in one of the sorted, disjoint half-open *periods* (bisect: years of them)."""
    i = bisect.bisect_right(periods, (at, at)) - 1
    if i + 1 < len(periods) and periods[i + 1][0] == at:
        i += 1
    return i >= 0 and periods[i][0] <= at < periods[i][1]


def read_corpus(path: Path = CORPUS) -> list[str]:
    """The corpus values (one per line; ``#`` lines are provenance comments)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Outcome:
    """One corpus value on both sides."""

    expr: str
    js_error: str | None
    py_error: str | None
    instants: list[datetime]
    js_states: list[State]
    js_comments: list[str | None]
    py: PythonAnswer | None

    @property
    def both_accept(self) -> bool:
        return self.js_error is None and self.py_error is None

    def mismatches(self) -> list[int]:
        """Indices of instants where geo_service's answer differs from opening_hours.js.

        A pair agrees when ``open_state`` gives the same three-valued state and the stored
        (SQL) form says open exactly when opening_hours.js says open.
        """
        if self.py is None:
            return []
        return [
            i for i, js in enumerate(self.js_states)
            if self.py.open_state[i] not in (None, js) or self.py.stored_open[i] != (js == "open")
        ]


def compare(values: Sequence[str], js_rejects: frozenset[str] = frozenset()) -> list[Outcome]:
    """Evaluate every value on both sides (one node process for the whole batch).

    *js_rejects* are values expected to be refused by opening_hours.js: geo_service does
    not evaluate them (the answer would be thrown away); node still checks every value,
    so a changed expectation shows up as a changed rejection.
    """
    py_errors = {v: python_accepts(v) for v in values}
    wanted = {v for v in values if py_errors[v] is None and v not in js_rejects}
    instants = {v: instants_for(v) if v in wanted else [] for v in values}
    # node works on the other core while Python evaluates its side.
    with ThreadPoolExecutor(max_workers=1) as pool:
        reference = pool.submit(run_reference, [(v, instants[v]) for v in values])
        ours = {v: python_side(v, instants[v]) for v in values if v in wanted}
        answers = reference.result()
    out = []
    for value, js in zip(values, answers, strict=True):
        py_error = py_errors[value]
        js_error = None if js["ok"] else str(js["error"])
        both = js_error is None and py_error is None and value in ours
        out.append(Outcome(
            expr=value, js_error=js_error, py_error=py_error,
            instants=instants[value] if both else [],
            js_states=js.get("states", []) if both else [],
            js_comments=js.get("comments", []) if both else [],
            py=ours[value] if both else None,
        ))
    return out


@dataclass(frozen=True)
class Agreement:
    """The agreement figures the test prints and the report writes (one computation)."""

    pairs: int
    differ: int
    clean_pairs: int
    clean_differ: int

    @property
    def percent(self) -> float:
        return 100 * (self.pairs - self.differ) / max(self.pairs, 1)

    @property
    def clean_percent(self) -> float:
        return 100 * (self.clean_pairs - self.clean_differ) / max(self.clean_pairs, 1)


def agreement(compared: Sequence[Outcome], known: Mapping[str, str]) -> Agreement:
    """(value, instant) pairs and differences, overall and outside the *known* values."""
    clean = [o for o in compared if o.expr not in known]
    return Agreement(
        pairs=sum(len(o.instants) for o in compared),
        differ=sum(len(o.mismatches()) for o in compared),
        clean_pairs=sum(len(o.instants) for o in clean),
        clean_differ=sum(len(o.mismatches()) for o in clean),
    )
