"""The sample operations data: cooling-bus schedules, a year of inspections and visits,
awards, open reports and recent confirmations — all SAMPLE DATA (``sample = true``).

Schedules, awards and reports are written by hand in ``seed/operations.json``.
Inspections, visits and confirmations are synthesised here from the loaded
stations with a fixed random seed, so every load makes the same data:

- **inspections**: every sample station with a ``last_verified_on`` date gets
  its latest inspection on that date, matching its amenities exactly (so the
  rule "the latest inspection drives the verified amenities" already holds),
  and up to three earlier quarterly ones within the year before, each lacking
  a little more (compliance improves over the year); stations without a date
  stay never inspected and show up as overdue;
- **visits**: check-ins at every open or temporarily closed sample station for
  each day from 2025-12-01 to 2026-11-30, Poisson per station and day, between
  08:00 and 20:00 local time, fewer at weekends, worker types drawn from a
  fixed mix (some left blank, as workers may skip the question);
- **confirmations**: one to three in the last three days at a dozen stations.

Each part is skipped when its sample rows are already there: loading twice
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from geo_service.domain.catalogue import AMENITIES
from geo_service.domain.models import WORKER_TYPES
from geo_service.infra.settings import Settings
from geo_service.operations.common import keyed_hash
from geo_service.operations.queries import CLOSED_REPORTERS, INSERT_STOP
from geo_service.operations.reports import independent_reporters
from geo_service.operations.schemas import StopIn
from geo_service.operations.stops import check_schedule
from geo_service.stations.service import compiled_hours_columns

SEED = 20261130
TZ = ZoneInfo("Asia/Shanghai")
VISITS_FROM = dt.date(2025, 12, 1)
VISITS_DAYS = 365
#: Share of check-ins per worker type (in WORKER_TYPES order), and of blank answers.
WORKER_MIX = (0.30, 0.22, 0.18, 0.12, 0.06, 0.12)
BLANK_SHARE = 0.15
INSPECTOR = "示例巡查员 SAMPLE inspector"


def _has(conn: psycopg.Connection[Any], sql: str) -> bool:
    row = conn.execute(sql).fetchone()
    return bool(row and row[0])


def _stops(conn: psycopg.Connection[Any], stops: dict[str, list[dict[str, Any]]],
           ids: dict[str, int]) -> int:
    n = 0
    for code, items in stops.items():
        if code not in ids or _has(conn, f"SELECT count(*) FROM station_stop "
                                         f"WHERE station_id = {int(ids[code])}"):
            continue
        parsed = [StopIn.model_validate(s) for s in items]
        check_schedule(parsed, "Asia/Shanghai", dt.date(2026, 1, 1))
        for seq, stop in enumerate(parsed, start=1):
            conn.execute(INSERT_STOP, {
                "station_id": ids[code], "seq": seq, **stop.model_dump(),
                **compiled_hours_columns(stop.opening_hours, "Asia/Shanghai")})
            n += 1
        conn.execute("UPDATE station SET scheduled = true WHERE id = %s", (ids[code],))
    return n


def _awards(conn: psycopg.Connection[Any], awards: list[dict[str, Any]],
            ids: dict[str, int]) -> int:
    if _has(conn, "SELECT count(*) FROM station_award WHERE sample"):
        return 0
    for a in awards:
        conn.execute("INSERT INTO station_award (station_id, title, level, year, sample) "
                     "VALUES (%s, %s, %s, %s, true)",
                     (ids[a["code"]], a["title"], a["level"], a["year"]))
    return len(awards)


def _inspections(conn: psycopg.Connection[Any], rng: np.random.Generator) -> int:
    if _has(conn, "SELECT count(*) FROM inspection WHERE sample"):
        return 0
    rows = conn.execute(
        "SELECT id, code, amenity_mask, last_verified_on, opening_hours FROM station "
        "WHERE sample AND last_verified_on IS NOT NULL ORDER BY code").fetchall()
    ten = [a for a in AMENITIES if a.ten_ones]
    n = 0
    for station_id, code, mask, last, hours in rows:
        present = [a for a in ten if mask >> a.bit & 1]
        extras = [a.code for a in AMENITIES if not a.ten_ones and mask >> a.bit & 1]
        for k in range(4):
            day = last - dt.timedelta(days=91 * k)
            # Earlier inspections lacked a little more: drop k items at random.
            lost = set(rng.choice(len(present), size=min(k, len(present)), replace=False)
                       .tolist()) if k and present else set()
            have = [a for i, a in enumerate(present) if i not in lost]
            items = {a.code: "present" if a in have else
                     ("broken" if rng.random() < 0.3 else "missing") for a in ten}
            seen = extras if k == 0 else [e for e in extras if rng.random() < 0.8]
            new_mask = sum(1 << a.bit for a in have) | sum(
                1 << a.bit for a in AMENITIES if a.code in seen)
            if k == 0:
                assert new_mask == mask, code  # the latest matches the station
            score = round(float(min(100.0, 55 + 4 * len(have) + rng.normal(0, 3))), 1)
            conn.execute("""
                INSERT INTO inspection (station_id, inspected_on, inspector, items, extras,
                    hours_observed, photos, remarks, score, ten_ones_count, amenity_mask,
                    sample)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, true)""", (
                station_id, day, INSPECTOR, json.dumps(items), seen, hours,
                [f"sample/{code}-{day.isoformat()}-1.jpg"],
                "【示例】季度巡查 quarterly check (SAMPLE)", score, len(have), new_mask))
            n += 1
    return n


def _visits(conn: psycopg.Connection[Any], rng: np.random.Generator) -> int:
    if _has(conn, "SELECT count(*) FROM visit WHERE sample"):
        return 0
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM station WHERE sample AND status IN ('open', 'temporarily_closed') "
        "ORDER BY code").fetchall()]
    if not ids:
        return 0
    days = np.arange(VISITS_DAYS)
    weekday = (np.asarray([(VISITS_FROM + dt.timedelta(days=int(d))).weekday() for d in days]))
    rate = rng.uniform(1.0, 6.0, len(ids))[:, None] * np.where(weekday >= 5, 0.7, 1.0)[None, :]
    counts = rng.poisson(rate)
    flat = np.repeat(np.arange(counts.size), counts.ravel())
    station = np.asarray(ids)[flat // VISITS_DAYS]
    day = flat % VISITS_DAYS
    seconds = rng.integers(8 * 3600, 20 * 3600, flat.size)
    kinds = rng.choice(len(WORKER_TYPES), flat.size, p=WORKER_MIX)
    blank = rng.random(flat.size) < BLANK_SHARE
    start = dt.datetime.combine(VISITS_FROM, dt.time(), TZ)
    buf = io.StringIO()
    null = "\\N"  # COPY's NULL
    for s, d, sec, kind, b in zip(station.tolist(), day.tolist(), seconds.tolist(),
                                  kinds.tolist(), blank.tolist(), strict=True):
        at = start + dt.timedelta(days=d, seconds=sec)
        buf.write(f"{s}\t{at.isoformat()}\t{null if b else WORKER_TYPES[kind]}\tt\n")
    with conn.cursor() as cur, cur.copy(
            "COPY visit (station_id, at, worker_type, sample) FROM STDIN") as copy:
        copy.write(buf.getvalue())
    return int(flat.size)


def _reports(conn: psycopg.Connection[Any], reports: list[dict[str, Any]],
             ids: dict[str, int], settings: Settings, now: dt.datetime) -> int:
    if _has(conn, "SELECT count(*) FROM station_report WHERE sample"):
        return 0
    for r in reports:
        conn.execute("""
            INSERT INTO station_report (station_id, kind, amenity, comment, created_at,
                                        device_hash, sample)
            VALUES (%s, %s, %s, %s, %s, %s, true)""", (
            ids[r["code"]], r["kind"], r.get("amenity"), r.get("comment"),
            now - dt.timedelta(hours=r["hours_ago"]),
            keyed_hash(settings, "device:" + r["device"])))
    # The rule the report endpoint applies (reports.CLOSED_REPORTERS and
    # independent_reporters): enough independent recent "closed" reports.
    window = dt.timedelta(hours=settings.reported_closed_window_h)
    for code in sorted({r["code"] for r in reports if r["kind"] == "closed"}):
        pairs = conn.execute(CLOSED_REPORTERS, {"station": ids[code], "window": window})
        if independent_reporters(pairs.fetchall()) >= settings.reported_closed_threshold:
            conn.execute("UPDATE station SET reported_closed_at = %s WHERE id = %s",
                         (now, ids[code]))
    return len(reports)


def _confirmations(conn: psycopg.Connection[Any], rng: np.random.Generator,
                   now: dt.datetime) -> int:
    if _has(conn, "SELECT count(*) FROM confirmation WHERE sample"):
        return 0
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM station WHERE sample AND status = 'open' ORDER BY code").fetchall()]
    chosen = rng.choice(len(ids), size=min(12, len(ids)), replace=False).tolist()
    n = 0
    for i in sorted(chosen):
        times = sorted(now - dt.timedelta(minutes=int(m))
                       for m in rng.integers(10, 72 * 60, int(rng.integers(1, 4))))
        for at in times:
            conn.execute("INSERT INTO confirmation (station_id, at, sample) VALUES (%s, %s, true)",
                         (ids[i], at))
            n += 1
        conn.execute("UPDATE station SET last_confirmed_at = %s WHERE id = %s", (times[-1], ids[i]))
    return n


def load_operations(url: str, folder: Path, settings: Settings | None = None) -> dict[str, int]:
    """Load the sample operations data in one transaction; counts of rows written."""
    settings = settings or Settings()
    ops = json.loads((folder / "operations.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(SEED)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with psycopg.connect(url) as conn, conn.transaction():
        ids: dict[str, int] = dict(
            conn.execute("SELECT code, id FROM station WHERE sample").fetchall())
        return {
            "stops": _stops(conn, ops["stops"], ids),
            "awards": _awards(conn, ops["awards"], ids),
            "inspections": _inspections(conn, rng),
            "visits": _visits(conn, rng),
            "reports": _reports(conn, ops["reports"], ids, settings, now),
            "confirmations": _confirmations(conn, rng, now),
        }

