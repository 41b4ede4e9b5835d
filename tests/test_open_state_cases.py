"""One table of open-now cases, every implementation run against it (issues 24 item 4, 25).

``tests/data/open_state_cases.json`` holds (rule, zone, host type, compile instant,
instant) cases with the true open state and next change and, where the stored form
cannot say, the ``null`` it must answer instead: past instants (last Tuesday, a month
back, before the compiled window, before the calendar's first year), holidays, make-up
working days, overnight ranges, ``24/7`` with a comment, unknown hours, past the horizon,
provisional calendar years and instants beyond the calendar's last covered year. The
implementations:

* the per-row evaluator ``calendar_open_state``: state, next change, and
  ``provisional_at``;
* ``geo_open_state`` in SQL on rows compiled by the real compile code: state only (SQL
  computes no next change);
* the memory index's ``Hours.state`` on the same rows: state only (nor does it);
* the nearest API on both paths (SQL and the memory index) at each instant (``?at=``):
  state, ``next_change`` (the evaluator's, through ``service.open_and_next``) and
  ``hours_provisional``;
* the phone's ``offline.js`` on a snapshot built from those rows at their compile
  instant: state and its own next change (it carries no provisional flag);

then the planners' coverage ``open_at`` and the nearest API's ``at`` (the app's
``?at=``) at past instants, on both nearest paths.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from geo_service.app import snapshot_service
from geo_service.hours.calendar_hours import (
    calendar_end,
    calendar_open_state,
    follows_workdays,
    provisional_at,
)
from geo_service.hours.compiler import LOOKBACK
from geo_service.infra.settings import Settings
from geo_service.stations import queries as q
from geo_service.stations.nearest_index import open_state
from geo_service.web.app import create_served_app
from tests.conftest import station_body
from tests.helpers import insert_stations
from tests.test_app_offline import run_offline
from tests.test_nearest_memory import _wait_fresh

TABLE = Path(__file__).parent / "data" / "open_state_cases.json"
P = (109.50, 18.25)
SH = "Asia/Shanghai"

Case = dict[str, Any]
Key = tuple[str | None, str, str, bool | None, str]


@cache
def _table() -> dict[str, Any]:
    return dict(json.loads(TABLE.read_text(encoding="utf-8")))


def cases() -> list[Case]:
    return list(_table()["cases"])


def compiled_at(case: Case | None = None) -> dt.datetime:
    """When the case's station was compiled (and the phone's snapshot taken): its own
    ``compiled_at``, else the table's."""
    given = (case or {}).get("compiled_at", _table()["compiled_at"])
    return dt.datetime.fromisoformat(given)


def instant(case: Case) -> dt.datetime:
    return dt.datetime.fromisoformat(case["at"])


def key(case: Case) -> Key:
    return (case["rule"], case.get("tz", SH), case["host_type"], case.get("official_workdays"),
            compiled_at(case).isoformat())


def stored(case: Case) -> bool | None:
    """What compiled rows answer (SQL and memory): the truth unless the table says null."""
    return case.get("stored", case["open"])  # type: ignore[no-any-return]


def phone(case: Case) -> bool | None:
    return case.get("phone", stored(case))  # type: ignore[no-any-return]


def served_next(case: Case) -> str | None:
    """The API's ``next_change``: the true one wherever the stored state is known."""
    return None if stored(case) is None else case["next"]  # type: ignore[no-any-return]


def phone_next(case: Case) -> str | None:
    """The phone's next change: the true one where it knows the state, unless the table
    says null (the change lies past what its snapshot holds)."""
    default = None if phone(case) is None else case["next"]
    return case.get("phone_next", default)  # type: ignore[no-any-return]


def provisional(case: Case) -> bool:
    """The known answer rests on a provisional calendar year (statutory days only)."""
    return bool(case.get("provisional", False))


def _label(case: Case) -> str:
    rule, tz, host, choice, made = key(case)
    return (f"{rule} | {tz} | {host} | workdays {choice} | compiled {made[:16]} | "
            f"{case['at']} ({case['why']})")


def _check(answer: dict[str, Any], want: dict[str, Any]) -> None:
    """Every case answered as wanted; else the list of those that were not, one a line."""
    bad = [f"{label}: want {want[label]}, got {answer.get(label, 'nothing')}"
           for label in want if answer.get(label, "nothing") != want[label]]
    assert not bad, "\n".join(["", *bad])


def test_the_table_never_asks_for_a_wrong_answer() -> None:
    """Every implementation answers the truth or null, and the table covers what the
    issues name: past instants (inside and before the window), each kind of rule, next
    changes over a holiday break and onto a make-up day, provisional years, and instants
    beyond the calendar's last covered year (unknown, never a guess)."""
    assert len({_label(c) for c in cases()}) == len(cases())  # each case reported apart
    for case in cases():
        assert stored(case) in (case["open"], None), _label(case)
        assert phone(case) in (stored(case), None), _label(case)
        assert phone_next(case) in (served_next(case), case["next"], None), _label(case)
        assert case["open"] is not None or not provisional(case), _label(case)
        if case["next"] is not None:
            assert instant(case) < dt.datetime.fromisoformat(case["next"]), _label(case)
    past = [c for c in cases() if instant(c) < compiled_at(c)]
    assert any(stored(c) is not None and c["open"] is not None for c in past)
    assert any(stored(c) is None and c["open"] is not None
               and instant(c) < compiled_at(c) - LOOKBACK for c in past)
    assert any(instant(c) > compiled_at(c) for c in cases())
    rules = {c["rule"] for c in cases()}
    assert {None, '24/7 "comment"', "Mo-Fr 08:00-16:00; PH closed"} <= rules
    assert any(provisional(c) for c in cases())
    for tz in (SH, "Europe/Helsinki"):
        end = calendar_end(tz)
        assert end is not None
        beyond = [c for c in cases() if c.get("tz", SH) == tz and instant(c) >= end]
        assert beyond and all(c["open"] is None or "weekly" in c["why"] for c in beyond), tz
    assert any(c["next"] == calendar_end(SH).astimezone(instant(c).tzinfo).isoformat()  # type: ignore[union-attr]
               for c in cases())
    ahead = [dt.date.fromisoformat(c["next"][:10]) for c in cases()
             if c["next"] is not None and phone_next(c) is not None]
    assert dt.date(2026, 10, 8) in ahead  # the first working day after the break
    assert dt.date(2026, 10, 10) in ahead  # the make-up Saturday


@pytest.fixture
def table_stations(db: psycopg.Connection[Any]) -> dict[Key, str]:
    """One station per distinct (rule, zone, host type, choice, compile instant), compiled
    at that instant by the real write path; their codes."""
    codes: dict[Key, str] = {}
    for case in cases():
        codes.setdefault(key(case), f"T-{len(codes):02d}")
    for made in sorted({k[4] for k in codes}):
        bodies = []
        for (rule, tz, host, choice, when), code in codes.items():
            if when == made:
                i = int(code[2:])
                bodies.append(station_body(code, P[0] + 0.001 * i, P[1], opening_hours=rule,
                                           timezone=tz, host_type=host,
                                           official_workdays=choice))
        insert_stations(db, bodies, now=dt.datetime.fromisoformat(made))
    return codes


def test_the_evaluator_answers_the_table() -> None:
    """``calendar_open_state``, which ``next_change`` comes from: the truth at any instant,
    the true next change, and whether it rests on a provisional year."""
    answer: dict[str, Any] = {}
    want: dict[str, Any] = {}
    for case in cases():
        if case["rule"] is None:
            continue  # no rule, nothing to evaluate: the services answer null themselves
        rule, tz, host, choice, _made = key(case)
        workdays = follows_workdays(host, choice)
        state, change = calendar_open_state(rule, tz, instant(case), workdays=workdays)
        answer[_label(case)] = (state, None if change is None else change.isoformat(),
                                state is not None and provisional_at(rule, tz, instant(case),
                                                                     workdays=workdays))
        want[_label(case)] = (case["open"], case["next"], provisional(case))
    _check(answer, want)


def test_sql_answers_the_table(db: psycopg.Connection[Any],
                               table_stations: dict[Key, str]) -> None:
    """``geo_open_state`` as the nearest query and coverage call it, on the stored rows."""
    answer: dict[str, Any] = {}
    want: dict[str, Any] = {}
    for case in cases():
        row = db.execute(f"SELECT {q.OPEN_STATE} FROM station s WHERE s.code = %(code)s",
                         {"at": instant(case), "code": table_stations[key(case)]}).fetchone()
        assert row is not None
        answer[_label(case)], want[_label(case)] = row[0], stored(case)
    _check(answer, want)


def test_memory_answers_the_table(db: psycopg.Connection[Any],
                                  table_stations: dict[Key, str]) -> None:
    """The memory index's ``Hours.state`` on the rows as the index loads them."""
    with db.cursor(row_factory=dict_row) as cur:
        cur.execute(q.INDEX_STATIONS_BY_ID,
                    {"ids": [r[0] for r in db.execute("SELECT id FROM station")]})
        hours = {r["code"]: open_state.hours_of(r) for r in cur.fetchall()}
    answer: dict[str, Any] = {}
    want: dict[str, Any] = {}
    for case in cases():
        h, at = hours[table_stations[key(case)]], instant(case)
        answer[_label(case)] = h.state(at, open_state.minute_of_week(at, h.tz))
        want[_label(case)] = stored(case)
    _check(answer, want)


@pytest.fixture(params=["sql", "memory"])
def table_client(request: pytest.FixtureRequest, settings: Settings,
                 table_stations: dict[Key, str]) -> Iterator[tuple[TestClient, str]]:
    """An app answering nearest from SQL or from the memory index over the table's
    stations, and which."""
    mode = {"sql": "off", "memory": "on"}[request.param]
    # As served (the fast path in front): memory answers come from it, or the route.
    with TestClient(create_served_app(settings.model_copy(update={"nearest_index": mode})),
                    client=("127.0.0.1", 50000)) as c:
        if mode == "on":
            _wait_fresh(c, since=time.monotonic())
        yield c, request.param


def test_nearest_answers_the_table(table_client: tuple[TestClient, str],
                                   table_stations: dict[Key, str]) -> None:
    """What a courier is told at each instant (``?at=``), from SQL and from the memory
    index: the stored state, the true next change wherever that state is known (null
    otherwise), and ``hours_provisional`` where the answer rests on a provisional year."""
    client, source = table_client
    rows: dict[str, dict[tuple[str, str], Any]] = {}
    for at in sorted({c["at"] for c in cases()}):
        r = client.get("/v1/stations/nearest",
                       params={"lon": P[0], "lat": P[1], "k": 100, "at": at})
        assert r.status_code == 200, r.text
        assert r.headers["X-Nearest-Source"] == source
        rows[at] = {s["code"]: s for s in r.json()["results"]}
    answer: dict[str, Any] = {}
    want: dict[str, Any] = {}
    for case in cases():
        row = rows[case["at"]].get(table_stations[key(case)])
        answer[_label(case)] = row and (row["open_now"], row["next_change"],
                                        row["hours_provisional"])
        want[_label(case)] = (stored(case), served_next(case),
                              stored(case) is not None and provisional(case))
    _check(answer, want)


def test_phone_answers_the_table(db: psycopg.Connection[Any],
                                 table_stations: dict[Key, str]) -> None:
    """``offline.js`` (in node) on the snapshot the phone would get at each compile
    instant: the snapshot endpoint's query and body, as JSON; its state and its own
    next change."""
    with db.cursor(row_factory=dict_row) as cur:
        cur.execute(snapshot_service.NEAR, {"lon": P[0], "lat": P[1], "n": 100})
        rows = cur.fetchall()
    states: dict[tuple[str, str], tuple[Any, Any]] = {}
    for made in sorted({compiled_at(c) for c in cases()}):
        snap = jsonable_encoder(snapshot_service.build(rows, made, truncated=False,
                                                       default_radius_m=5000.0))
        group = [c for c in cases() if compiled_at(c) == made]
        ats = sorted({c["at"] for c in group})
        codes = {table_stations[key(c)] for c in group}  # the others were compiled apart
        out = run_offline(snap, [{"lon": P[0], "lat": P[1], "k": 100, "radius_m": 50_000,
                                  "at": at} for at in ats])
        states |= {(at, r["code"]): (r["open_now"], r["next_change"])
                   for at, a in zip(ats, out["answers"], strict=True) for r in a["rows"]
                   if r["code"] in codes}
    answer: dict[str, Any] = {}
    want: dict[str, Any] = {}
    for case in cases():
        answer[_label(case)] = states.get((case["at"], table_stations[key(case)]), "nothing")
        want[_label(case)] = (phone(case), phone_next(case))
    _check(answer, want)


# --------------------------------------------------------------------------- through the API

OFFICE = "Mo-Fr 08:00-16:00; PH closed"
LAST_TUESDAY = "2026-10-13T10:00:00+08:00"  # a week before the compile instant
MONTHS_AGO = "2026-08-04T10:00:00+08:00"  # a Tuesday before the compiled window


@pytest.fixture
def api_stations(db: psycopg.Connection[Any]) -> None:
    insert_stations(db, [
        station_body("PAST-OFFICE", P[0] + 0.001, P[1], opening_hours=OFFICE),
        station_body("PAST-COMMENT", P[0] + 0.002, P[1], opening_hours='24/7 "comment"'),
    ], now=compiled_at())


@pytest.fixture(params=["sql", "memory"])
def nearest_client(request: pytest.FixtureRequest, settings: Settings,
                   api_stations: None) -> Iterator[tuple[TestClient, str]]:
    """An app answering nearest from SQL or from the memory index, and which."""
    mode = {"sql": "off", "memory": "on"}[request.param]
    # As served (the fast path in front): memory answers come from it, or the route.
    with TestClient(create_served_app(settings.model_copy(update={"nearest_index": mode})),
                    client=("127.0.0.1", 50000)) as c:
        if mode == "on":
            _wait_fresh(c, since=time.monotonic())
        yield c, request.param


def test_nearest_at_a_past_instant(nearest_client: tuple[TestClient, str]) -> None:
    """The app's ``?at=`` goes to nearest as it is: last Tuesday the office is open and
    closes at 16:00 that day (``open_now`` and ``next_change`` agree); months back it is
    unknown, never closed; the comment is unknown at both."""
    client, source = nearest_client

    def _nearest(at: str, **params: Any) -> dict[str, dict[str, Any]]:
        r = client.get("/v1/stations/nearest", params={"lon": P[0], "lat": P[1], "k": 10,
                                                       "at": at, **params})
        assert r.status_code == 200, r.text
        assert r.headers["X-Nearest-Source"] == source
        return {s["code"]: s for s in r.json()["results"]}

    rows = _nearest(LAST_TUESDAY)
    assert rows["PAST-OFFICE"]["open_now"] is True
    assert rows["PAST-OFFICE"]["next_change"].startswith("2026-10-13T16:00:00")
    assert rows["PAST-COMMENT"]["open_now"] is None
    assert set(_nearest(LAST_TUESDAY, open_now="true")) == {"PAST-OFFICE"}
    rows = _nearest(MONTHS_AGO)
    assert rows["PAST-OFFICE"]["open_now"] is None
    assert rows["PAST-OFFICE"]["next_change"] is None
    assert rows["PAST-COMMENT"]["open_now"] is None
    assert set(_nearest(MONTHS_AGO, open_now="true")) == set()
    assert set(_nearest(MONTHS_AGO, open_now="true",
                        include_unknown="true")) == {"PAST-OFFICE", "PAST-COMMENT"}


def test_coverage_open_at_a_past_instant(areas: psycopg.Connection[Any]) -> None:
    """A planner's "covered last Tuesday": the office counts; months back it is unknown,
    so it counts only with ``include_unknown``."""
    from geo_service.coverage.schemas import CoverageRequest
    from geo_service.coverage.service import run_coverage

    areas.execute("INSERT INTO demand_point (external_id, geog, weight, worker_type) VALUES "
                  "('d1', ST_SetSRID(ST_MakePoint(109.50, 18.25), 4326)::geography, 5, "
                  "'delivery')")
    insert_stations(areas, [station_body("PAST-OFFICE", P[0] + 0.001, P[1],
                                         opening_hours=OFFICE)], now=compiled_at())

    def used(**flt: Any) -> int:
        run = run_coverage(areas, CoverageRequest(area="460200", stations=flt))
        row = areas.execute("SELECT inputs FROM analysis_run WHERE id = %s",
                            (run["run_id"],)).fetchone()
        assert row is not None
        return int(row[0]["stations"])

    assert used(open_at=LAST_TUESDAY) == 1
    assert used(open_at="2026-10-01T10:00:00+08:00") == 0  # National Day
    assert used(open_at=MONTHS_AGO) == 0
    assert used(open_at=MONTHS_AGO, include_unknown=True) == 1


def test_migration_marks_time_before_old_windows_unknown(server_url: str) -> None:
    """Rows compiled before 0010 kept no window start: before their earliest stored period
    they read unknown after the upgrade (not closed), inside it as before; weekly rows are
    untouched; a second upgrade and the downgrade change nothing."""
    from geo_service.infra.db import downgrade, migrate
    from tests.test_migrations import _scratch

    scratch = _scratch(server_url)
    url = next(scratch)
    try:
        migrate(url, "0009")
        with psycopg.connect(url, autocommit=True) as conn:
            # As 0009-era code stored them, compiled on 2026-10-20 10:00 China time.
            conn.execute("""
                INSERT INTO station (code, name, geog, host_type, status, opening_hours,
                                     hours_kind, open_minutes, open_periods, unknown_periods,
                                     hours_valid_until)
                VALUES ('OLD-OFFICE', 'a', 'SRID=4326;POINT(109.5 18.25)', 'union_built',
                        'open', 'Mo-Fr 08:00-16:00; PH closed', 'dated', '{}',
                        '{["2026-10-19 10:00+08","2026-10-19 16:00+08"),
                          ["2026-10-20 08:00+08","2026-10-20 16:00+08")}', NULL,
                        '2027-01-01 00:00+08'),
                       ('OLD-COMMENT', 'b', 'SRID=4326;POINT(109.6 18.25)', 'union_built',
                        'open', '24/7 "comment"', 'dated', '{}', '{}',
                        '{["2026-10-19 10:00+08","2027-11-24 10:00+08")}',
                        '2027-11-24 10:00+08'),
                       ('OLD-WEEKLY', 'c', 'SRID=4326;POINT(109.7 18.25)', 'union_built',
                        'open', 'Tu 08:00-16:00', 'weekly', '{[1920,2400)}', NULL, NULL,
                        NULL)""")

        def states() -> list[tuple[str, bool | None, bool | None, str | None]]:
            with psycopg.connect(url) as conn:
                return [(r[0], r[1], r[2], r[3]) for r in conn.execute(
                    """SELECT code,
                              geo_open_state(hours_kind, open_minutes, open_periods,
                                             unknown_periods, hours_valid_until,
                                             '2026-10-13 10:00+08', timezone),
                              geo_open_state(hours_kind, open_minutes, open_periods,
                                             unknown_periods, hours_valid_until,
                                             '2026-10-20 09:00+08', timezone),
                              unknown_periods::text
                       FROM station ORDER BY code""")]

        before = states()
        assert [(c, a, b) for c, a, b, _u in before] == [
            ("OLD-COMMENT", False, None), ("OLD-OFFICE", False, True),
            ("OLD-WEEKLY", True, True)]  # the wrong falses the revision is for
        migrate(url)
        after = states()
        assert [(c, a, b) for c, a, b, _u in after] == [
            ("OLD-COMMENT", None, None), ("OLD-OFFICE", None, True),
            ("OLD-WEEKLY", True, True)]
        assert after[2][3] is None
        downgrade(url, "0009")
        assert states() == after
        migrate(url)
        assert states() == after
    finally:
        next(scratch, None)
