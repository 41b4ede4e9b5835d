"""The offline snapshot of the phone app: the stations a courier may need with no signal.

The phone answers "nearest open station" itself from this snapshot when the
network is gone, so it carries exactly what the nearest query filters and
orders on (position, status, amenity bits, host type, compiled hours, mobile
stops) and nothing else. Columns, not per-station objects: a key name per
station per field would double the size. Hours go in the form the database
already compiled them to (``hours/compiler.py``): weekly minute ranges for weekly rules,
and for dated rules the open and unknown periods of the next days as minutes
from ``base_minute`` up to a ``horizon``, after which the phone must say
"unknown" (as the server does past a dated rule's horizon).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.catalogue import AMENITIES, TEN_ONES_MASK
from geo_service.domain.params import encode_cursor
from geo_service.infra.db import execute_knn
from geo_service.stations.queries import QUERY_POINT, compact

#: How far ahead dated rules are unrolled: a week of offline use, then "unknown".
WINDOW = dt.timedelta(days=7)
#: Format version of the snapshot; the phone throws away a snapshot it cannot read.
FORMAT = 1
PUBLISHED = ("open", "temporarily_closed")


def _bounds(expr: str, epoch: bool) -> str:
    """A multirange as a flat array ``[lo, hi, lo, hi, …]`` (minutes of the week, or
    minutes since the Unix epoch for timestamp ranges; NULL bounds stay NULL)."""
    x = "floor(extract(epoch FROM v.x) / 60)::int8" if epoch else "v.x::int8"
    return (f"ARRAY(SELECT {x} FROM unnest({expr}) WITH ORDINALITY AS r(r, i), "
            f"LATERAL (VALUES (1, lower(r.r)), (2, upper(r.r))) AS v(j, x) ORDER BY r.i, v.j)")


def _hours_columns(t: str) -> str:
    return f"""{t}.hours_kind, {_bounds(f'{t}.open_minutes', False)} AS minutes,
    {_bounds(f'{t}.open_periods', True)} AS periods"""


_STOPS = f"""CASE WHEN s.scheduled THEN (
    SELECT jsonb_agg(jsonb_build_object(
        'seq', st.seq, 'name', st.name,
        'lon', round(ST_X(st.geog::geometry)::numeric, 7),
        'lat', round(ST_Y(st.geog::geometry)::numeric, 7),
        'valid_from', st.valid_from, 'valid_to', st.valid_to,
        'kind', st.hours_kind, 'minutes', {_bounds('st.open_minutes', False)},
        'periods', {_bounds('st.open_periods', True)}) ORDER BY st.seq)
    FROM station_stop st WHERE st.station_id = s.id) END AS stops"""

_COLUMNS = f"""s.id, s.code, s.name, s.status, s.amenity_mask, s.host_type, s.sample,
    s.timezone, s.scheduled, s.opening_hours, s.reported_closed_at IS NOT NULL AS reported,
    round(ST_X(s.geog::geometry)::numeric, 7)::float8 AS lon,
    round(ST_Y(s.geog::geometry)::numeric, 7)::float8 AS lat,
    {_hours_columns('s')}, {_bounds('s.unknown_periods', True)} AS unknown,
    floor(extract(epoch FROM s.hours_valid_until) / 60)::int8 AS valid_until,
    {_STOPS}"""

_PUBLISHED = "s.status IN ('open', 'temporarily_closed')"

#: The fixed stations nearest the point (the KNN walk, sphere order), then every
#: scheduled mobile station with a stop inside the reach of the farthest of them.
#: One statement, one snapshot: the feed cursor read beside the rows is exact.
NEAR = compact(f"""
WITH fixed AS (
    SELECT {_COLUMNS}, s.geog <-> {QUERY_POINT} AS sphere_m
    FROM station s WHERE {_PUBLISHED} AND NOT s.scheduled
    ORDER BY s.geog <-> {QUERY_POINT} LIMIT %(n)s
), reach AS (
    SELECT CASE WHEN count(*) < %(n)s THEN NULL ELSE max(sphere_m) END AS m FROM fixed
)
SELECT f.*, (SELECT m FROM reach) AS reach_m,
       (SELECT coalesce(max(change_seq), 0) FROM station) AS feed_seq FROM fixed f
UNION ALL
SELECT {_COLUMNS}, NULL, (SELECT m FROM reach), (SELECT coalesce(max(change_seq), 0) FROM station)
FROM station s
WHERE {_PUBLISHED} AND s.scheduled AND EXISTS (
    SELECT 1 FROM station_stop st WHERE st.station_id = s.id
      AND ((SELECT m FROM reach) IS NULL
           OR ST_DWithin(st.geog, {QUERY_POINT}, (SELECT m FROM reach), false)))
""")

#: Every published station of an admin area (any level), in id order, one more than
#: asked so a cut can be told.
AREA = compact(f"""
SELECT {_COLUMNS}, NULL::float8 AS sphere_m, NULL::float8 AS reach_m,
       (SELECT coalesce(max(change_seq), 0) FROM station) AS feed_seq
FROM station s
WHERE {_PUBLISHED}
  AND %(area)s IN (s.province_code, s.city_code, s.district_code, s.street_code)
ORDER BY s.id LIMIT %(n)s + 1
""")


@dataclass(frozen=True)
class Window:
    """The minutes (since the Unix epoch) a snapshot's dated hours cover."""

    base: int
    horizon: int

    def clip(self, flat: list[int | None] | None) -> list[int]:
        """Periods as offsets from ``base``, cut to the window (NULL bounds are open ends)."""
        out: list[int] = []
        for lo, hi in zip((flat or [])[::2], (flat or [])[1::2], strict=True):
            a = self.base if lo is None else max(lo, self.base)
            b = self.horizon if hi is None else min(hi, self.horizon)
            if a < b:
                out += [a - self.base, b - self.base]
        return out


def compact_hours(kind: str, minutes: list[int], periods: list[int | None] | None,
                  unknown: list[int | None] | None, valid_until: int | None,
                  window: Window) -> dict[str, Any] | None:
    """A station's compiled hours as the phone reads them.

    ``{"w": [lo, hi, …]}``: weekly, minutes of the local week from Monday 00:00,
    half-open. ``{"d": [...], "u": [...], "h": m}``: dated, open (``d``) and unknown
    (``u``) periods as minutes from the snapshot's ``base_minute``, known until ``h``
    (the rule's horizon or the snapshot window, whichever comes first). ``None``:
    nobody knows the hours.

    >>> compact_hours("weekly", [0, 60], None, None, None, Window(0, 10))
    {'w': [0, 60]}
    """
    if kind == "weekly":
        return {"w": list(minutes)}
    if kind == "dated":
        h = window.horizon if valid_until is None else min(valid_until, window.horizon)
        h = max(h, window.base)
        cut = Window(window.base, h)
        return {"d": cut.clip(periods), "u": cut.clip(unknown), "h": h - window.base}
    return None


def _stop(stop: dict[str, Any], window: Window) -> dict[str, Any]:
    return {"seq": stop["seq"], "name": stop["name"], "lon": float(stop["lon"]),
            "lat": float(stop["lat"]), "valid_from": stop["valid_from"],
            "valid_to": stop["valid_to"],
            "hours": compact_hours(stop["kind"], stop["minutes"], stop["periods"], None, None,
                                   window)}


def _index(table: list[str], lookup: dict[str, int], value: str) -> int:
    if value not in lookup:
        lookup[value] = len(table)
        table.append(value)
    return lookup[value]


def build(rows: list[dict[str, Any]], now: dt.datetime, *, truncated: bool,
          default_radius_m: float) -> dict[str, Any]:
    """Rows of :data:`NEAR` or :data:`AREA` → the snapshot body (plain data)."""
    base = int(now.timestamp() // 60)
    window = Window(base, base + int(WINDOW.total_seconds() // 60))
    cols: dict[str, list[Any]] = {k: [] for k in (
        "code", "name", "lon", "lat", "status", "amenities", "host_type", "tz", "sample",
        "scheduled", "reported", "rule", "hours")}
    hosts: list[str] = []
    tzs: list[str] = []
    rules: list[str] = []
    seen_r: dict[str, int] = {}
    statuses: list[str] = list(PUBLISHED)
    seen_h: dict[str, int] = {}
    seen_tz: dict[str, int] = {}
    seen_s = {s: i for i, s in enumerate(statuses)}
    stops: dict[str, list[Any]] = {k: [] for k in (
        "station", "seq", "name", "lon", "lat", "valid_from", "valid_to", "hours")}
    for i, r in enumerate(rows):
        for k in ("code", "name", "lon", "lat", "amenity_mask"):
            cols["amenities" if k == "amenity_mask" else k].append(r[k])
        cols["status"].append(_index(statuses, seen_s, r["status"]))
        cols["host_type"].append(_index(hosts, seen_h, r["host_type"]))
        cols["tz"].append(_index(tzs, seen_tz, r["timezone"]))
        cols["sample"].append(int(r["sample"]))
        cols["scheduled"].append(int(r["scheduled"]))
        cols["reported"].append(int(r["reported"]))
        # The rule's text, so the phone can tell whether a change-feed entry changed the
        # hours (then it knows them no more) or left them (its compiled form still holds).
        rule = r["opening_hours"]
        cols["rule"].append(-1 if rule is None else _index(rules, seen_r, rule))
        cols["hours"].append(compact_hours(r["hours_kind"], r["minutes"], r["periods"],
                                           r["unknown"], r["valid_until"], window))
        for stop in r["stops"] or []:
            for k, v in _stop(stop, window).items():
                stops[k].append(v)
            stops["station"].append(i)
    reach = rows[0]["reach_m"] if rows else None
    return {
        "format": FORMAT,
        "as_of": now,
        "base_minute": base,
        "horizon_minute": window.horizon,
        "cursor": encode_cursor(int(rows[0]["feed_seq"]) if rows else 0),
        "count": len(rows),
        "truncated": truncated,
        # Sphere distance of the farthest fixed station, shrunk to a spheroid bound the
        # phone may trust: nearer than this the snapshot holds every station (null: all).
        "complete_within_m": None if reach is None else round(float(reach) * 0.99, 1),
        "sample": any(cols["sample"]),
        "amenity_bits": {a.code: a.bit for a in AMENITIES},
        "ten_ones_mask": TEN_ONES_MASK,
        "default_radius_m": default_radius_m,
        "statuses": statuses, "host_types": hosts, "timezones": tzs, "rules": rules,
        "stations": cols,
        "stops": stops,
    }


async def snapshot(conn: AsyncConnection[Any], *, now: dt.datetime, n: int,
                   default_radius_m: float,
                   area: str | None = None, lon: float | None = None,
                   lat: float | None = None) -> dict[str, Any]:
    """The snapshot around a point (nearest ``n`` fixed stations) or of an admin area."""
    async with conn.cursor(row_factory=dict_row) as cur:
        if area is not None:
            await cur.execute(AREA, {"area": area, "n": n})
        else:
            await execute_knn(cur, NEAR, {"lon": lon, "lat": lat, "n": n})
        rows = await cur.fetchall()
    truncated = area is not None and len(rows) > n
    return build(rows[:n], now, truncated=truncated, default_radius_m=default_radius_m)
