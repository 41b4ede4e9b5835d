"""The memory index answers nearest exactly as the SQL path does (issue 16).

Thousands of random queries - points in, at the edges of and outside the data, random
filters, ``at`` instants on holidays and in overnight ranges, radii and k - go to two
apps on the same database: one with the index off (SQL, the oracle) and one with it on.
The answers must be the same JSON (distances within 1 cm, bearings within their 0.1°
rounding), also after a burst of concurrent edits once the index has caught up.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.domain.auth import create_key
from geo_service.domain.catalogue import AMENITIES
from geo_service.domain.coords import Crs
from geo_service.infra.settings import Settings
from geo_service.sample.seed import load_seed
from geo_service.stations import service
from geo_service.stations.nearest_index import http
from geo_service.stations.nearest_index.keeper import Keeper, load
from geo_service.stations.service import NearestParams
from geo_service.web.app import create_app, create_served_app
from tests.conftest import Tables, station_body
from tests.helpers import INDEX_ON, insert_stations, live_server, wait_nearest_from_memory

SEED = Path(__file__).parents[1] / "seed"
CODES = [a.code for a in AMENITIES]
HOURS = ["24/7", "Mo-Fr 08:00-18:00", "Mo-Su 18:00-02:00", "Mo-Sa 09:00-17:00; Su off",
         "Fr 22:00-02:00; Sa 10:00-12:00; PH off", "Mo-Fr 09:00-17:00; PH off",
         "PH 22:00-02:00", "Mo-Fr 08:00-18:00 || unknown; PH off", "Mo-Su 10:00-16:00",
         None]
HOSTS = ["union_built", "party_service_centre", "sanitation_depot", "bank_branch", "enterprise",
         "volunteer"]
STATUSES = ["open"] * 8 + ["temporarily_closed", "planned", "closed", "duplicate"]
ZONES = ["Asia/Shanghai"] * 5 + ["Asia/Urumqi"]
# Holidays (National Day, Spring Festival 2026, New Year), make-up workdays, ordinary
# days, and a day past the holiday calendar's horizon (dated rules are unknown there).
DAYS = ["2026-10-01", "2026-10-03", "2026-02-17", "2026-01-01", "2026-02-14", "2026-09-27",
        "2026-12-02", "2026-12-05", "2026-06-15", "2027-03-03"]
#: Names whose JSON and link escaping must come out as the SQL path's (quotes, backslashes,
#: percent signs, URL delimiters, characters outside the BMP, line separators).
ODD_NAMES = ['驿站 "{}" 号', "back\\slash {}", "100% 满意 & more?x=#{}", "🚚 骑手之家 {}",
             "line\u2028sep {}", "  spaced  {}  "]
BOX = (109.0, 18.0, 110.0, 18.9)  # the random stations; the seed is in Sanya inside it


def _stations(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        # Some clustered on one spot: equal distances, ties broken by code.
        if i % 50 < 3:
            lon, lat = 109.5, 18.3
        else:
            lon, lat = float(rng.uniform(BOX[0], BOX[2])), float(rng.uniform(BOX[1], BOX[3]))
        out.append({
            "code": f"M{i:05d}", "name": ODD_NAMES[i % len(ODD_NAMES)].format(i) if i % 7 == 0
            else f"内存驿站 {i}", "lon": lon, "lat": lat,
            "address": None if i % 3 else f"示例路{i}号 \"东门\" 100% & a=b?c#d \\ 🚚",
            "host_type": HOSTS[int(rng.integers(len(HOSTS)))],
            "status": STATUSES[int(rng.integers(len(STATUSES)))],
            "opening_hours": HOURS[int(rng.integers(len(HOURS)))],
            "timezone": ZONES[int(rng.integers(len(ZONES)))],
            "amenities": [c for c in CODES if rng.random() < 0.6],
            "official_workdays": bool(rng.random() < 0.5),
        })
    return out


def _query(rng: np.random.Generator, points: np.ndarray) -> dict[str, Any]:
    where = rng.random()
    if where < 0.4:  # at or right next to a station
        lon, lat = points[int(rng.integers(len(points)))]
        if rng.random() < 0.7:
            lon, lat = lon + rng.normal(0, 0.001), lat + rng.normal(0, 0.001)
    elif where < 0.7:
        lon, lat = rng.uniform(BOX[0], BOX[2]), rng.uniform(BOX[1], BOX[3])
    else:  # beyond the edges of the data, some farther than any radius
        lon, lat = rng.uniform(BOX[0] - 0.6, BOX[2] + 0.6), rng.uniform(BOX[1] - 0.6, BOX[3] + 0.6)
    params: dict[str, Any] = {"lon": round(float(lon), 6), "lat": round(float(lat), 6),
                              "k": int(rng.choice([1, 2, 5, 10, 30]))}
    if rng.random() < 0.7:
        params["radius_m"] = float(rng.choice([300, 2000, 10_000, 30_000, 50_000]))
    day = DAYS[int(rng.integers(len(DAYS)))]
    hm = rng.choice(["00:00", "01:30", "02:00", "08:00", "12:34", "17:59", "18:00", "23:30"])
    params["at"] = f"{day}T{hm}:00+08:00"
    if rng.random() < 0.5:
        # "1" is valid but not canonical: the declared route answers, not the thin one.
        params["open_now"] = "true" if rng.random() < 0.8 else "1"
        params["include_unknown"] = str(rng.random() < 0.5).lower()
    if rng.random() < 0.3:
        params["amenities"] = ",".join(rng.choice(CODES, size=int(rng.integers(1, 3)),
                                                  replace=False))
    if rng.random() < 0.3:
        params["host_type"] = ",".join(rng.choice([*HOSTS, "mobile"], size=2, replace=False))
    if rng.random() < 0.3:
        params["status"] = ",".join(rng.choice(["open", "temporarily_closed", "planned",
                                                "closed", "duplicate"], size=2, replace=False))
    if rng.random() < 0.3:
        params["min_ten_ones"] = int(rng.integers(0, 9))
    if rng.random() < 0.3:  # the point in, and the answer's points in, a phone's system
        params["crs"] = str(rng.choice(["gcj02", "bd09", "wgs84"]))
    return params


def _same(sql: dict[str, Any], mem: dict[str, Any], params: dict[str, Any]) -> None:
    assert sql["query"] == mem["query"], params
    got = [r["code"] for r in mem["results"]]
    want = [r["code"] for r in sql["results"]]
    assert got == want, (params, got, want)
    for a, b in zip(sql["results"], mem["results"], strict=True):
        assert abs(a.pop("distance_m") - b.pop("distance_m")) <= 0.01, params
        ba, bb = a.pop("bearing_deg"), b.pop("bearing_deg")
        assert (ba is None) == (bb is None), params
        if ba is not None:
            assert min(abs(ba - bb), 360 - abs(ba - bb)) <= 0.1 + 1e-9, params
        assert a == b, params


#: What the middleware stack adds, which the fast path (outside it) must add the same way.
STACK_HEADERS = ("content-type", "content-encoding", "vary", "x-content-type-options",
                 "x-frame-options", "referrer-policy", "content-security-policy")


def _same_headers(sql: Any, mem: Any) -> None:
    for name in STACK_HEADERS:
        assert sql.headers.get(name) == mem.headers.get(name), name


#: The points of the city ``memory_city`` last built (kept with its tables).
_CITY_POINTS: dict[str, np.ndarray] = {}


@pytest.fixture
def memory_city(db_url: str, db: psycopg.Connection[Any], settings: Settings,
                tables: Tables) -> np.ndarray:
    """The sample city, 2,500 random stations and mobile ones with stops (written by an
    editor key of its own); built again only when an earlier test wrote to it
    (``tests/conftest.py``, ``KEPT``): the points of stations and stops."""
    if db_url in _CITY_POINTS and tables.unchanged(db, "memory_city"):
        return _CITY_POINTS[db_url]
    load_seed(db_url, SEED)
    stations = _stations(2500, seed=16)
    insert_stations(db, stations)
    editor = f"Bearer {create_key(db, name='editor', role='editor')}"
    stops = _mobile_stations(settings, editor, seed=17)
    _CITY_POINTS[db_url] = np.array([(s["lon"], s["lat"]) for s in stations + stops])
    tables.record(db, "memory_city")
    return _CITY_POINTS[db_url]


def _mobile_stations(settings: Settings, editor: str, seed: int) -> list[dict[str, Any]]:
    """Mobile stations with stops across the box, some kept to dates among ``DAYS``
    (answered at their current stop, as nearest places them); their stops."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as c:
        for i in range(12):
            code = f"BUS{i:02d}"
            lon, lat = (float(rng.uniform(BOX[0], BOX[2])), float(rng.uniform(BOX[1], BOX[3])))
            r = c.post("/v1/stations", headers={"Authorization": editor},
                       json=station_body(code, lon, lat, host_type="mobile",
                                         name=f"流动服务车 {i}", opening_hours="24/7",
                                         amenities=[str(a) for a in
                                                    rng.choice(CODES, 3, replace=False)]))
            assert r.status_code == 201, r.text
            stops = []
            for j in range(3):
                stop = {"name": f"停靠点 {i}-{j}",
                        "lon": round(lon + float(rng.normal(0, 0.05)), 6),
                        "lat": round(lat + float(rng.normal(0, 0.05)), 6),
                        # one stop at a time: the stops' hours never overlap
                        "opening_hours": ["Mo-Su 06:00-11:00", "Mo-Fr 12:00-17:00",
                                          "Mo-Su 17:30-23:30"][j]}
                if j == 2:
                    day = dt.date.fromisoformat(DAYS[int(rng.integers(len(DAYS)))])
                    stop["valid_from"] = str(day - dt.timedelta(days=1))
                    stop["valid_to"] = str(day + dt.timedelta(days=1))
                stops.append(stop)
            r = c.put(f"/v1/stations/{code}/stops", headers={"Authorization": editor},
                      json={"stops": stops, "version": 1})
            assert r.status_code == 200, r.text
            out.extend(stops)
    return out


@pytest.fixture
def two(settings: Settings, memory_city: np.ndarray) -> Iterator[tuple[TestClient, TestClient]]:
    on = settings.model_copy(update={"nearest_index": "on"})
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as sql, \
            TestClient(create_served_app(on), client=("127.0.0.1", 50000)) as mem:
        _wait_fresh(mem, since=time.monotonic())
        yield sql, mem


def _wait_fresh(mem: TestClient, since: float, timeout: float = 30.0) -> dict[str, Any]:
    """Until the index is loaded and has provably applied every commit before ``since``.

    The index is fresh as of ``its clock - lag_s``, its clock read somewhere between this
    request's start and its answer: the start is the bound that proves it (the answer's
    time, late by however long a busy machine took to answer, once passed an index that
    was not yet fresh). ``lag_s`` is rounded to the millisecond, hence the 0.001."""
    deadline = time.monotonic() + timeout
    while True:
        asked = time.monotonic()
        status = dict(mem.get("/healthz").json()["nearest_index"])
        if status["state"] == "ready" and status["lag_s"] is not None \
                and asked - status["lag_s"] - 0.001 > since:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def _compare(sql: TestClient, mem: TestClient, n: int, seed: int, points: np.ndarray,
             headers: dict[str, str] | None = None) -> collections.Counter[str]:
    """Compare ``n`` random queries; what the answers held (so a test can require that
    the comparison reached every kind of row)."""
    rng = np.random.default_rng(seed)
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(n):
        params = _query(rng, points)
        a = sql.get("/v1/stations/nearest", params=params)
        b = mem.get("/v1/stations/nearest", params=params, headers=headers)
        assert a.status_code == b.status_code == 200, (params, a.text, b.text)
        assert a.headers["X-Nearest-Source"] == "sql"
        assert b.headers["X-Nearest-Source"] == "memory", params
        _same_headers(a, b)
        rows = a.json()["results"]
        _same(a.json(), b.json(), params)
        seen["nonempty"] += bool(rows)
        seen["crs " + params.get("crs", "wgs84")] += len(rows)
        for r in rows:
            seen["at a stop"] += r["current_stop"] is not None
            seen["awards"] += bool(r["awards"])
            seen["reported closed"] += r["reported_closed"]
            seen["next change"] += r["next_change"] is not None
            seen["open unknown"] += r["open_now"] is None
            seen["odd name"] += r["code"].startswith("M") and int(r["code"][1:]) % 7 == 0
            seen["odd address"] += "🚚" in (r["address"] or "")
    return seen


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_fast_path_sends_the_stacks_headers(two: tuple[TestClient, TestClient],
                                            encoding: str) -> None:
    """Security headers, gzip and ``Vary`` as the middleware stack sends them, for a
    large answer (gzipped when asked) and a small one (never gzipped)."""
    sql, mem = two
    at = "2026-12-01T10:00:00+08:00"
    large = {"lat": 18.25, "lon": 109.5, "k": 50, "at": at}
    small = {"lat": 18.25, "lon": 109.5, "k": 1, "radius_m": 1, "at": at}  # none that close
    for params in (large, small):
        a = sql.get("/v1/stations/nearest", params=params, headers={"Accept-Encoding": encoding})
        b = mem.get("/v1/stations/nearest", params=params, headers={"Accept-Encoding": encoding})
        assert b.headers["X-Nearest-Source"] == "memory"
        _same_headers(a, b)
        assert b.headers["x-frame-options"] == "DENY"
        assert (len(b.content) >= 1024) == (params is large)
        gzipped = params is large and encoding == "gzip"
        assert b.headers.get("content-encoding") == ("gzip" if gzipped else None)
        _same(a.json(), b.json(), params)


def test_a_failing_fast_path_falls_back_to_the_route(two: tuple[TestClient, TestClient],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path runs outside the app's error handling: a bug in it is logged and the
    declared route answers (here from the index too), never a bare 500."""
    _, mem = two

    def broken(params: object) -> None:
        raise RuntimeError("a bug in the fast path")

    monkeypatch.setattr(http, "nearest_query", broken)
    r = mem.get("/v1/stations/nearest", params={"lat": 18.25, "lon": 109.5, "k": 3})
    assert r.status_code == 200 and r.json()["count"] == 3
    assert r.headers["X-Nearest-Source"] == "memory"


@pytest.mark.slow
def test_memory_answers_equal_sql_answers(two: tuple[TestClient, TestClient],
                                          memory_city: np.ndarray) -> None:
    sql, mem = two
    seen = _compare(sql, mem, 1200, seed=1, points=memory_city)
    assert seen["nonempty"] > 600, seen  # most queries do find stations
    # Every kind of row was compared, in every coordinate system.
    assert all(seen[k] > 0 for k in ("crs wgs84", "crs gcj02", "crs bd09", "at a stop",
                                     "awards", "reported closed", "next change",
                                     "open unknown", "odd name", "odd address")), seen


def _edit_burst(db_url: str, workers: int, edits: int, seed: int) -> None:
    """Concurrent writers: moves, status and amenity changes, soft deletes, new stations,
    awards and check-ins (the last two leave the version, so the change feed, alone)."""
    def work(w: int) -> None:
        rng = np.random.default_rng(seed + w)
        with psycopg.connect(db_url, autocommit=True) as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM station ORDER BY id")]
            for i in range(edits):
                sid = int(rng.choice(ids))
                kind = i % 6
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(73050001)")
                    if kind == 0:
                        conn.execute(
                            "UPDATE station SET geog = ST_SetSRID(ST_MakePoint(%s, %s), 4326), "
                            "version = version + 1 WHERE id = %s",
                            (float(rng.uniform(BOX[0], BOX[2])),
                             float(rng.uniform(BOX[1], BOX[3])), sid))
                    elif kind == 1:
                        conn.execute("UPDATE station SET status = %s, version = version + 1 "
                                     "WHERE id = %s", (str(rng.choice(STATUSES)), sid))
                    elif kind == 2:
                        conn.execute("UPDATE station SET amenity_mask = %s, "
                                     "version = version + 1 WHERE id = %s",
                                     (int(rng.integers(0, 2**14)), sid))
                    elif kind == 3:
                        conn.execute("INSERT INTO station_award (station_id, title, level, year,"
                                     " sample) VALUES (%s, %s, 'city', %s, true) "
                                     "ON CONFLICT DO NOTHING",
                                     (sid, f"最美驿站 {w}-{i}", int(rng.integers(2020, 2027))))
                    elif kind == 4:
                        conn.execute("UPDATE station SET last_confirmed_at = now() "
                                     "WHERE id = %s", (sid,))
                    else:
                        conn.execute("UPDATE station SET status = 'closed', deleted_at = now(), "
                                     "version = version + 1 WHERE id = %s", (sid,))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.mark.slow
def test_memory_equals_sql_after_concurrent_edits(two: tuple[TestClient, TestClient],
                                                  memory_city: np.ndarray, db_url: str,
                                                  db: psycopg.Connection[Any]) -> None:
    sql, mem = two
    _edit_burst(db_url, workers=4, edits=150, seed=5)
    new = _stations(300, seed=99)
    for s in new:
        s["code"] = "N" + s["code"][1:]
    insert_stations(db, new)
    done = time.monotonic()
    (seq,) = db.execute("SELECT max(change_seq) FROM station").fetchone()  # type: ignore[misc]
    status = _wait_fresh(mem, since=done)
    assert status["applied_seq"] >= seq
    points = np.vstack((memory_city, [(s["lon"], s["lat"]) for s in new]))
    _compare(sql, mem, 500, seed=2, points=points, headers={"X-Min-Change-Seq": str(seq)})


def test_min_change_seq_beyond_the_index_goes_to_sql(two: tuple[TestClient, TestClient],
                                                     db: psycopg.Connection[Any]) -> None:
    _, mem = two
    (seq,) = db.execute("SELECT max(change_seq) FROM station").fetchone()  # type: ignore[misc]
    where = {"lon": 109.5, "lat": 18.3}
    r = mem.get("/v1/stations/nearest", params=where, headers={"X-Min-Change-Seq": str(seq)})
    assert r.headers["X-Nearest-Source"] == "memory"
    r = mem.get("/v1/stations/nearest", params=where,
                headers={"X-Min-Change-Seq": str(seq + 1)})
    assert r.status_code == 200 and r.headers["X-Nearest-Source"] == "sql"
    for bad in ("-1", "x", "1.5"):
        r = mem.get("/v1/stations/nearest", params=where, headers={"X-Min-Change-Seq": bad})
        assert r.status_code == 422, r.text
        assert "X-Min-Change-Seq" in r.text


def test_healthz_shows_the_index(two: tuple[TestClient, TestClient]) -> None:
    sql, mem = two
    assert sql.get("/healthz").json()["nearest_index"] == {"state": "off"}
    status = mem.get("/healthz").json()["nearest_index"]
    assert status["state"] == "ready" and status["stations"] > 2500
    assert status["bytes"] > 0 and status["load_s"] is not None
    assert status["process"] == os.getpid()  # the TestClient app runs in this process


async def _until(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_keeper_compacts_reconnects_and_reloads(db_url: str, db: psycopg.Connection[Any]) -> None:
    """Edits past the spare slots rebuild the index; a lost connection sends requests to
    SQL at once and the index comes back by itself; a TRUNCATE reloads everything."""
    stations = _stations(300, seed=3)
    insert_stations(db, stations)
    points = np.array([(s["lon"], s["lat"]) for s in stations])
    rng = np.random.default_rng(4)
    at = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)

    async def agree(keeper: Keeper) -> None:
        index = keeper.usable()
        assert index is not None
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            for _ in range(40):
                lon, lat = points[int(rng.integers(len(points)))] + rng.normal(0, 0.05, 2)
                p = NearestParams(lon=float(lon), lat=float(lat), k=5, radius_m=30_000.0,
                                  at=at, want=[], open_now=bool(rng.random() < 0.5),
                                  host_types=None, statuses=["open", "temporarily_closed"])
                want = await service.nearest_results(conn, p, Crs.WGS84)
                got = index.nearest_results(p, Crs.WGS84)
                assert [r["code"] for r in got] == [r["code"] for r in want]

    async def go() -> None:
        keeper = Keeper(db_url, spare=5)
        keeper.start()
        try:
            await _until(lambda: keeper.usable() is not None)
            first = keeper.index
            for i in range(20):
                db.execute("UPDATE station SET geog = ST_SetSRID(ST_MakePoint(%s, %s), 4326), "
                           "version = version + 1 WHERE code = %s",
                           (109.0 + i / 25, 18.5, f"M{i:05d}"))
            (seq,) = db.execute("SELECT max(change_seq) FROM station").fetchone()  # type: ignore[misc]
            await _until(lambda: keeper.usable(seq) is not None)
            assert keeper.index is not first  # 20 edits > 5 spare slots: rebuilt
            assert keeper.loads == 1 and keeper.error is None  # applied, not reloaded
            assert keeper.index is not None and keeper.index.live_rows() == 300
            await agree(keeper)

            db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE application_name = 'geo_service index'")
            await _until(lambda: keeper.usable() is None, timeout=2.0)
            assert keeper.status().state in ("reconnecting", "loading", "lagging")
            await _until(lambda: keeper.usable() is not None)
            await agree(keeper)

            db.execute("TRUNCATE station_award")
            db.execute("DELETE FROM station WHERE code >= 'M00200'")
            await _until(lambda: keeper.usable() is not None
                         and keeper.index is not None and keeper.index.live_rows() == 200)
            await agree(keeper)
        finally:
            await keeper.stop()

    asyncio.run(go())


def test_notes_after_the_keepers_ping_in_one_batch_are_applied_too(
        db_url: str, db: psycopg.Connection[Any]) -> None:
    """psycopg reads notifications a network packet at a time and yields them one by one:
    the keeper's own ping can arrive in the middle of a batch, with other commits' notes
    after it. Stopping at the ping once dropped the rest of the batch, and the index never
    saw those edits (seen under load as ``applied_seq`` short by a whole 300-row insert
    while the index called itself fresh). The batch here is what psycopg hands over: real
    edits, their real notes, the ping between them."""
    insert_stations(db, _stations(50, seed=7))
    keeper = Keeper(db_url, spare=10)
    keeper.index, keeper.applied_seq = load(db_url, 10)  # a snapshot; nothing follows it
    moved = {"M00001": (108.4, 19.9), "M00002": (108.6, 19.7)}  # far from the others
    notes = []
    for code, (lon, lat) in moved.items():
        sid, seq = db.execute(
            "UPDATE station SET geog = ST_SetSRID(ST_MakePoint(%s, %s), 4326), "
            "version = version + 1 WHERE code = %s RETURNING id, change_seq",
            (lon, lat, code)).fetchone()  # type: ignore[misc]
        notes.append(psycopg.Notify("geo_station", f"s:{sid}:{seq}", 99))
    own = 4242  # the keeper's listening backend
    notes.insert(1, psycopg.Notify("geo_station", "ping:1", own))
    keeper._sent = {1: 123.0}  # ping 1 was sent at monotonic 123.0
    at = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)

    async def go() -> None:
        async def batch() -> Any:
            for n in notes:
                yield n

        await keeper._consume(batch(), own)
        assert keeper.fresh_as_of == 123.0  # fresh as of the ping's sending
        assert keeper.applied_seq == seq, "a note after the ping was lost"
        index = keeper.index
        assert index is not None
        for code, (lon, lat) in moved.items():
            p = NearestParams(lon=lon, lat=lat, k=1, radius_m=1000.0, at=at, want=[],
                              open_now=False, host_types=None,
                              statuses=["open", "temporarily_closed"])
            assert [r["code"] for r in index.nearest_results(p, Crs.WGS84)] == [code]

    asyncio.run(go())


def test_refused_writes_leave_the_memory_index_answering(db_url: str,
                                                         db: psycopg.Connection[Any],
                                                         keys: dict[str, str]) -> None:
    """Issue 24, item 5: a stream of anonymous non-GET requests that write nothing (an
    unknown path, writes without a key) must not send nearest to SQL; a successful write
    by the process still routes its own next read (which then holds the write)."""
    insert_stations(db, [station_body("AB-1", 109.5, 18.25)])
    where = {"lat": 18.25, "lon": 109.5, "k": 3}
    with live_server(db_url, INDEX_ON) as base:
        wait_nearest_from_memory(base, where)
        stop = threading.Event()
        refused: collections.Counter[int] = collections.Counter()

        def abuse() -> None:
            with httpx.Client(base_url=base, timeout=5) as http:
                while not stop.is_set():
                    for method, path in (("POST", "/nope"), ("POST", "/v1/stations"),
                                         ("PATCH", "/v1/stations/AB-1"),
                                         ("DELETE", "/v1/stations/AB-1")):
                        refused[http.request(method, path, json={}).status_code] += 1

        worker = threading.Thread(target=abuse)
        worker.start()
        sources = []
        try:
            with httpx.Client(base_url=base, timeout=5) as http:
                while sum(refused.values()) < 100 or len(sources) < 30:
                    assert worker.is_alive() and len(sources) < 1000, refused
                    r = http.get("/v1/stations/nearest", params=where)
                    assert r.status_code == 200, r.text
                    sources.append(r.headers["X-Nearest-Source"])
                    assert http.get("/healthz").status_code == 200
                    assert http.get("/v1/stations/AB-1").status_code == 200
        finally:
            stop.set()
            worker.join(10)
        assert set(refused) <= {401, 404, 405}, refused
        assert collections.Counter(sources) == {"memory": len(sources)}

        with httpx.Client(base_url=base, timeout=10) as http:
            r = http.post("/v1/stations", json=station_body("AB-2", 109.5, 18.25001),
                          headers={"Authorization": keys["editor"]})
            assert r.status_code == 201, r.text
            r = http.get("/v1/stations/nearest", params=where)
            assert "AB-2" in [s["code"] for s in r.json()["results"]], r.headers


def _pairs(raw: bytes) -> list[Any]:
    """A JSON document with every object as its list of (key, value) pairs, in order."""
    return json.loads(raw, object_pairs_hook=lambda pairs: [tuple(p) for p in pairs])


def _keys(obj: Any) -> Any:
    """The key structure of :func:`_pairs`'s output: keys in order, nested objects too."""
    if isinstance(obj, list) and obj and all(isinstance(p, tuple) for p in obj):
        return [(k, _keys(v)) for k, v in obj]
    if isinstance(obj, list):
        return [_keys(v) for v in obj]
    return None


def test_spliced_rows_are_the_sql_rows_keys(two: tuple[TestClient, TestClient],
                                            memory_city: np.ndarray) -> None:
    """A memory row is spliced from bytes (``nearest_index.blobs.spliced``): valid JSON
    only while no computed key repeats a blob column, and the SQL path's document only
    while the blob holds the SQL row's columns and a stop's keys come in jsonb's order,
    as the SQL path decodes them. Every row has the SQL row's keys, none twice, and every
    nested object (``current_stop``, ``links``, awards) its keys in the SQL path's order.
    The row's own keys differ in order only (the point and the computed keys follow the
    blob's columns), which JSON equality ignores."""
    sql, mem = two
    rng = np.random.default_rng(25)
    compared = stops = 0
    for _ in range(150):
        params = _query(rng, memory_city)
        a = sql.get("/v1/stations/nearest", params=params)
        b = mem.get("/v1/stations/nearest", params=params)
        assert b.headers["X-Nearest-Source"] == "memory", params
        want, got = _pairs(a.content), _pairs(b.content)
        for row_a, row_b in zip(dict(want)["results"], dict(got)["results"], strict=True):
            keys = [k for k, _ in row_b]
            assert len(keys) == len(set(keys)), keys  # a repeated key: invalid splice
            assert set(keys) == {k for k, _ in row_a}, params
            assert dict(_keys(row_b)) == dict(_keys(row_a)), params  # nested: in order
            compared += 1
            stops += dict(row_b)["current_stop"] is not None
    assert compared > 300 and stops > 0, (compared, stops)
