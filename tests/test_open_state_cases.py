"""One table of open-now cases, every implementation run against it (issue 24, item 4).

``tests/data/open_state_cases.json`` holds (rule, zone, host type, instant) cases with the
true open state and, where the stored form cannot say, the ``null`` it must answer
instead: past instants (last Tuesday, a month back, before the compiled window, before
the calendar's first year), holidays, make-up working days, overnight ranges, ``24/7``
with a comment, unknown hours, past the horizon. The implementations:

* the per-row evaluator ``next_change`` comes from (``calendar_open_state``);
* ``geo_open_state`` in SQL on rows compiled by the real compile code;
* the memory index's ``Hours.state`` on the same rows;
* the phone's ``offline.js`` on a snapshot built from those rows at compile time;

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
from geo_service.hours.calendar_hours import calendar_open_state, follows_workdays
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
Key = tuple[str | None, str, str, bool | None]


@cache
def _table() -> dict[str, Any]:
    return dict(json.loads(TABLE.read_text(encoding="utf-8")))


def cases() -> list[Case]:
    return list(_table()["cases"])


def compiled_at() -> dt.datetime:
    return dt.datetime.fromisoformat(_table()["compiled_at"])


def instant(case: Case) -> dt.datetime:
    return dt.datetime.fromisoformat(case["at"])


def key(case: Case) -> Key:
    return case["rule"], case.get("tz", SH), case["host_type"], case.get("official_workdays")


def stored(case: Case) -> bool | None:
    """What compiled rows answer (SQL and memory): the truth unless the table says null."""
    return case.get("stored", case["open"])  # type: ignore[no-any-return]


def phone(case: Case) -> bool | None:
    return case.get("phone", stored(case))  # type: ignore[no-any-return]


def _label(case: Case) -> str:
    rule, tz, host, choice = key(case)
    return f"{rule} | {tz} | {host} | workdays {choice} | {case['at']} ({case['why']})"


def _check(answer: dict[str, Any], want: dict[str, bool | None]) -> None:
    """Every case answered as wanted; else the list of those that were not, one a line."""
    bad = [f"{label}: want {want[label]}, got {answer.get(label, 'nothing')}"
           for label in want if answer.get(label, "nothing") != want[label]]
    assert not bad, "\n".join(["", *bad])


def test_the_table_never_asks_for_a_wrong_answer() -> None:
    """Every implementation answers the truth or null, and the table covers what the
    issue names: past instants (inside and before the window), and each kind of rule."""
    start = compiled_at()
    assert len({_label(c) for c in cases()}) == len(cases())  # each case reported apart
    for case in cases():
        assert stored(case) in (case["open"], None), _label(case)
        assert phone(case) in (stored(case), None), _label(case)
    past = [c for c in cases() if instant(c) < start]
    assert any(stored(c) is not None and c["open"] is not None for c in past)
    assert any(stored(c) is None and c["open"] is not None for c in past)
    assert any(instant(c) > start for c in cases())
    rules = {c["rule"] for c in cases()}
    assert {None, '24/7 "comment"', "Mo-Fr 08:00-16:00; PH closed"} <= rules


@pytest.fixture
def table_stations(db: psycopg.Connection[Any]) -> dict[Key, str]:
    """One station per distinct (rule, zone, host type, choice), compiled at the table's
    compile instant by the real write path; their codes."""
    codes: dict[Key, str] = {}
    for case in cases():
        codes.setdefault(key(case), f"T-{len(codes):02d}")
    bodies = []
    for (rule, tz, host, choice), code in codes.items():
        i = int(code[2:])
        bodies.append(station_body(code, P[0] + 0.001 * i, P[1], opening_hours=rule,
                                   timezone=tz, host_type=host, official_workdays=choice))
    insert_stations(db, bodies, now=compiled_at())
    return codes


def test_the_evaluator_answers_the_table() -> None:
    """``calendar_open_state``, which ``next_change`` comes from: the truth at any instant."""
    answer: dict[str, Any] = {}
    want: dict[str, bool | None] = {}
    for case in cases():
        if case["rule"] is None:
            continue  # no rule, nothing to evaluate: the services answer null themselves
        rule, tz, host, choice = key(case)
        answer[_label(case)] = calendar_open_state(
            rule, tz, instant(case), workdays=follows_workdays(host, choice))[0]
        want[_label(case)] = case["open"]
    _check(answer, want)


def test_sql_answers_the_table(db: psycopg.Connection[Any],
                               table_stations: dict[Key, str]) -> None:
    """``geo_open_state`` as the nearest query and coverage call it, on the stored rows."""
    answer: dict[str, Any] = {}
    want: dict[str, bool | None] = {}
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
    want: dict[str, bool | None] = {}
    for case in cases():
        h, at = hours[table_stations[key(case)]], instant(case)
        answer[_label(case)] = h.state(at, open_state.minute_of_week(at, h.tz))
        want[_label(case)] = stored(case)
    _check(answer, want)


def test_phone_answers_the_table(db: psycopg.Connection[Any],
                                 table_stations: dict[Key, str]) -> None:
    """``offline.js`` (in node) on the snapshot the phone would get at the compile instant:
    the snapshot endpoint's query and body, as JSON."""
    with db.cursor(row_factory=dict_row) as cur:
        cur.execute(snapshot_service.NEAR, {"lon": P[0], "lat": P[1], "n": 100})
        rows = cur.fetchall()
    snap = jsonable_encoder(snapshot_service.build(rows, compiled_at(), truncated=False,
                                                   default_radius_m=5000.0))
    ats = sorted({c["at"] for c in cases()})
    out = run_offline(snap, [{"lon": P[0], "lat": P[1], "k": 100, "radius_m": 50_000,
                              "at": at} for at in ats])
    states = {(at, r["code"]): r["open_now"]
              for at, a in zip(ats, out["answers"], strict=True) for r in a["rows"]}
    answer: dict[str, Any] = {}
    want: dict[str, bool | None] = {}
    for case in cases():
        answer[_label(case)] = states.get((case["at"], table_stations[key(case)]), "nothing")
        want[_label(case)] = phone(case)
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
