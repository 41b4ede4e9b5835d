"""Rules of the stations room: validation beyond the schema, versions, scope, nearest.

Functions here take a psycopg connection and plain values and return plain
dicts; they do not know about HTTP (the router does) and do not write SQL
text (``queries`` does).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import difflib
import functools
import logging
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.audit import set_actor
from geo_service.domain.catalogue import (
    OPERATIONAL,
    TEN_ONES_MASK,
    amenity_codes,
    amenity_mask,
    ten_ones_count,
    ten_ones_missing,
)
from geo_service.domain.coords import Crs, from_wgs84, to_wgs84
from geo_service.domain.errors import (
    AlreadyExists,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    VersionConflict,
    invalid,
)
from geo_service.domain.links import station_links
from geo_service.domain.params import decode_cursor, encode_cursor
from geo_service.domain.principal import Principal
from geo_service.domain.schemas import STATION_FIELDS
from geo_service.hours.calendar_hours import (
    NO_CALENDAR,
    calendar_open_state,
    compile_station_hours,
    current_label,
    follows_workdays,
    provisional_at,
)
from geo_service.hours.text import hours_label
from geo_service.infra.db import execute_knn
from geo_service.stations import queries as q

log = logging.getLogger(__name__)

#: Lower bound of spheroid/sphere distance ratio on WGS-84 (the true minimum
#: is about 0.9944, the meridian radius at the equator over the mean radius);
#: 0.99 leaves margin. Used to prove the candidate walk found the true k.
SPHEROID_OVER_SPHERE_MIN = 0.99


@dataclass(frozen=True)
class NearestParams:
    """A validated nearest query; coordinates already in WGS-84."""

    lon: float
    lat: float
    k: int
    radius_m: float
    at: dt.datetime
    want: list[str]
    open_now: bool
    host_types: list[str] | None
    statuses: list[str]
    min_ten_ones: int = 0
    #: With ``open_now``: also stations whose hours are unknown at ``at`` (no rule, an
    #: ``unknown`` stretch, past a dated rule's horizon); they answer ``open_now`` null.
    include_unknown: bool = False


@functools.lru_cache(maxsize=4096)
def _mask_parts(mask: int) -> tuple[tuple[str, ...], int, tuple[str, ...]]:
    return tuple(amenity_codes(mask)), ten_ones_count(mask), tuple(ten_ones_missing(mask))


def mask_fields(mask: int) -> tuple[list[str], dict[str, Any]]:
    """``amenities`` and ``ten_ones`` of a bit mask, unfolded once per distinct mask (a few
    hundred in a city; nearest unfolds ten a request) and copied, so no caller shares them."""
    codes, count, missing = _mask_parts(mask)
    return list(codes), {"count": count, "of": 10, "missing": list(missing)}


def public_row(row: dict[str, Any], crs: Crs,
               links: dict[str, str] | None = None) -> dict[str, Any]:
    """Turn a station row into its public dict, coordinates in ``crs``; ``links`` when the
    caller has them already (the memory index: ``links.converted_links``, the same links)."""
    mask = int(row.pop("amenity_mask"))
    row["links"] = links if links is not None else station_links(
        row["code"], row["name"], row["lon"], row["lat"], row["address"])
    lon, lat = from_wgs84(row["lon"], row["lat"], crs)
    row["lon"], row["lat"], row["crs"] = round(lon, 7), round(lat, 7), crs.value
    row["amenities"], row["ten_ones"] = mask_fields(mask)
    row["reported_closed"] = row.get("reported_closed_at") is not None
    row["awards"] = row.get("awards") or []
    row.pop("id", None)
    return row


def _nearest_params(p: NearestParams, limit: int, bound: float | None = None) -> dict[str, Any]:
    return {
        "lon": p.lon, "lat": p.lat, "radius_m": p.radius_m, "at": p.at,
        "want": amenity_mask(p.want),
        "open_now": p.open_now, "include_unknown": p.include_unknown,
        "host_types": p.host_types, "statuses": p.statuses,
        "min_ten_ones": p.min_ten_ones, "ten_mask": TEN_ONES_MASK, "limit": limit,
        "sphere_bound_m": bound,
    }


async def nearest(conn: AsyncConnection[Any], p: NearestParams) -> list[dict[str, Any]]:
    """The k nearest qualifying stations in true (spheroid) distance order.

    The KNN walk orders by sphere distance, so it fetches ``2k + 10``
    candidates and re-orders them by spheroid distance. The result is proven
    exact when even the farthest candidate, shrunk by the worst-case
    spheroid/sphere ratio, is farther than the k-th result; otherwise (rare:
    many stations at nearly equal distance) a radius-bounded second query
    fetches every station that could still qualify.
    """
    limit = 2 * p.k + 10
    async with conn.cursor(row_factory=dict_row) as cur:
        await execute_knn(cur, q.NEAREST_CANDIDATES, _nearest_params(p, limit), prepare=True)
        fetched = await cur.fetchall()
        # Mobile stations at their current stop come with the walk's rows: all of
        # them within the radius, so merging them into the exact top k keeps it exact.
        stops = [r for r in fetched if r["current_stop"] is not None]
        rows = [r for r in fetched if r["current_stop"] is None]
        rows.sort(key=lambda r: (r["distance_m"], r["code"]))
        if len(rows) == limit:
            kth = rows[p.k - 1]["distance_m"]
            farthest_sphere = max(r["sphere_m"] for r in rows)
            if farthest_sphere * SPHEROID_OVER_SPHERE_MIN <= kth:
                bound = kth / SPHEROID_OVER_SPHERE_MIN
                await cur.execute(q.NEAREST_WITHIN, _nearest_params(p, limit, bound))
                rows = await cur.fetchall()
                rows.sort(key=lambda r: (r["distance_m"], r["code"]))
    if stops:
        rows = sorted(rows[: p.k] + stops, key=lambda r: (r["distance_m"], r["code"]))
    return rows[: p.k]


async def nearest_results(conn: AsyncConnection[Any], p: NearestParams,
                          crs: Crs) -> list[dict[str, Any]]:
    """The finished answer rows: :func:`nearest`, each decorated for the client in ``crs``."""
    return [decorate_nearest(r, p.at, crs) for r in await nearest(conn, p)]


@functools.lru_cache(maxsize=8192)
def _next_change(expr: str, tz: str, workdays: bool, minute: dt.datetime,
                 _calendar: str = "") -> dt.datetime | None:
    """Next change of a rule from a whole minute; rules are minute-granular, so exact.

    With the station's calendar, like its stored hours, so the two agree; keyed by the
    calendar's label too, so an entered year is not answered from the cache."""
    return calendar_open_state(expr, tz, minute, workdays=workdays)[1]


def open_and_next(row: dict[str, Any], is_open: bool | None,
                  minute: dt.datetime) -> tuple[bool | None, dt.datetime | None]:
    """``open_now`` and ``next_change`` of a nearest row from the open state the query
    computed (None: unknown) and the query instant truncated to its ``minute``."""
    if row["status"] != "open":
        return False, None
    if is_open is None or not (row.get("current_stop") or row["opening_hours"] is not None):
        return is_open, None
    # A mobile station at a stop changes when it leaves the stop.
    stop = row.get("current_stop")
    hours = stop["opening_hours"] if stop else row["opening_hours"]
    workdays = follows_workdays(row["host_type"], row.get("official_workdays"))
    return is_open, _next_change(hours, row["timezone"], workdays, minute,
                                 current_label(row["timezone"]))


def hours_provisional(row: dict[str, Any], is_open: bool | None,
                      minute: dt.datetime) -> bool:
    """Whether a nearest row's known ``open_now`` rests on a provisional year of the
    holiday calendar (statutory days only, the year's notice not entered yet)."""
    if row["status"] != "open" or is_open is None:
        return False
    stop = row.get("current_stop")
    hours = stop["opening_hours"] if stop else row["opening_hours"]
    if hours is None:
        return False
    workdays = follows_workdays(row["host_type"], row.get("official_workdays"))
    return provisional_at(hours, row["timezone"], minute, workdays=workdays)


def decorate_nearest(row: dict[str, Any], at: dt.datetime, crs: Crs,
                     links: dict[str, str] | None = None) -> dict[str, Any]:
    """Add open-now, next change and rounded distances to a nearest row."""
    row.pop("sphere_m", None)
    minute = at.replace(second=0, microsecond=0)
    row["open_now"], row["next_change"] = open_and_next(row, row.pop("open_sql"), minute)
    row["hours_provisional"] = hours_provisional(row, row["open_now"], minute)
    row.setdefault("current_stop", None)
    row["distance_m"] = round(float(row["distance_m"]), 2)
    bearing = row["bearing_deg"]
    row["bearing_deg"] = None if bearing is None else round(float(bearing), 1)
    return public_row(row, crs, links)


# --- reading ---------------------------------------------------------------------------------


async def get_station(conn: AsyncConnection[Any], code: str, crs: Crs) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.GET_STATION, {"code": code})
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no station with code {code!r}", [("code", "unknown station code")])
    station = public_row(row, crs)
    station["opening_hours_zh"] = hours_label(station["opening_hours"])
    return station


async def station_detail(conn: AsyncConnection[Any], code: str, crs: Crs,
                         at: dt.datetime) -> dict[str, Any]:
    """A station for its page: :func:`get_station` with the hours in plain Chinese and its
    open state at ``at``, computed as a nearest result's is (same SQL, same next change)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.STATION_DETAIL, {"code": code, "at": at})
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no station with code {code!r}", [("code", "unknown station code")])
    minute = at.replace(second=0, microsecond=0)
    row["open_now"], row["next_change"] = open_and_next(row, row.pop("open_sql"), minute)
    row["hours_provisional"] = hours_provisional(row, row["open_now"], minute)
    station = public_row(row, crs)
    station["opening_hours_zh"] = hours_label(station["opening_hours"])
    return station


async def list_stations(
    conn: AsyncConnection[Any], *, crs: Crs, limit: int, cursor: str | None,
    statuses: list[str], want_mask: int, host_types: list[str] | None,
    area: str | None, bbox: list[float] | None,
) -> dict[str, Any]:
    """One page of stations in id order with an opaque cursor to the next."""
    params = {
        "after_id": decode_cursor(cursor)[0], "statuses": statuses, "want": want_mask,
        "host_types": host_types, "area": area, "bbox": bbox, "limit": limit + 1,
    }
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.LIST_STATIONS, params)
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["id"]) if more and rows else None
    items = [public_row(r, crs) for r in rows]
    return {"items": items, "count": len(items), "next_cursor": next_cursor}


# --- writing ---------------------------------------------------------------------------------


def _tstz_ranges(ranges: tuple[tuple[dt.datetime, dt.datetime], ...],
                 before: dt.datetime | None = None) -> str:
    """A ``tstzmultirange`` literal; with ``before``, also all time before it."""
    items = [] if before is None else [f'(,"{before.isoformat()}")']
    items += [f'["{s.isoformat()}","{e.isoformat()}")' for s, e in ranges]
    return "{" + ",".join(items) + "}"


#: The compiled columns of a station whose hours nobody knows (``opening_hours`` NULL):
#: never open by the weekly ranges, no periods, no horizon; ``geo_open_state`` answers NULL.
UNKNOWN_HOURS_COLUMNS: dict[str, Any] = {
    "hours_kind": "unknown", "open_minutes": "{}", "open_periods": None,
    "unknown_periods": None, "hours_valid_until": None,
}


def compiled_hours_columns(
    expr: str | None, tz: str, *, now: dt.datetime | None = None, workdays: bool = False
) -> dict[str, Any]:
    """The stored, SQL-testable forms of an opening_hours rule (multirange literals),
    compiled with the official calendar of the zone's country (``calendar_hours``) and
    the label of that calendar, so a refresh can tell when a new one makes it stale.

    ``None`` (hours unknown) compiles to :data:`UNKNOWN_HOURS_COLUMNS` rather than to
    a guess; a dated rule also stores its ``unknown`` stretches so open-now can say
    "unknown" there instead of "closed", and all time before its compiled window
    (``valid_from``) as unknown too: SQL, the memory index and the phone read one
    three-valued answer from the same columns, so none can say "closed" there.
    """
    if expr is None:
        return {**UNKNOWN_HOURS_COLUMNS, "hours_calendar": NO_CALENDAR}
    station_hours = compile_station_hours(expr, tz, now=now, workdays=workdays)
    compiled = station_hours.compiled
    dated = compiled.kind == "dated"
    return {
        "hours_kind": compiled.kind,
        "open_minutes": "{" + ",".join(f"[{s},{e})" for s, e in compiled.weekly) + "}",
        "open_periods": _tstz_ranges(compiled.periods) if dated else None,
        "unknown_periods": _tstz_ranges(compiled.unknown, compiled.valid_from) if dated
                           else None,
        "hours_valid_until": compiled.valid_until,
        "hours_calendar": station_hours.label,
    }


def to_record(body: dict[str, Any], crs: Crs, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Validated body → the column values written to ``station`` (WGS-84, compiled hours)."""
    rec = dict(body)
    rec["lon"], rec["lat"] = to_wgs84(rec["lon"], rec["lat"], crs)
    workdays = follows_workdays(str(rec["host_type"]), rec.get("official_workdays"))
    rec.update(compiled_hours_columns(rec["opening_hours"], rec["timezone"], now=now,
                                      workdays=workdays))
    rec["amenity_mask"] = amenity_mask(rec.pop("amenities", []))
    for key in ("host_type", "status"):
        rec[key] = str(getattr(rec[key], "value", rec[key]))
    rec.pop("version", None)
    return rec


_PG_TIMEZONES: set[str] = set()


async def check_timezone(conn: AsyncConnection[Any], tz: str) -> None:
    """The zone must be known to PostgreSQL too: open-now evaluates it in SQL.

    Python's tzdata and the server's zone files are separate copies; a zone
    only one of them knows would break every open-now query near the station.
    """
    if not _PG_TIMEZONES:
        async with conn.cursor() as cur:
            await cur.execute(q.PG_TIMEZONES)
            _PG_TIMEZONES.update(name for (name,) in await cur.fetchall())
    if tz not in _PG_TIMEZONES:
        raise invalid("timezone", f"{tz!r} is not a time zone the database knows")


async def fill_admin(conn: AsyncConnection[Any], rec: dict[str, Any]) -> None:
    """Place the point in the admin areas whose polygons cover it.

    Codes a client leaves out are filled; codes that contradict the polygon
    are refused, so a station's codes always agree with where it is (area
    listings, per-district figures and key scopes depend on that).
    """
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.ADMIN_FOR_POINT, {"lon": rec["lon"], "lat": rec["lat"]})
        found = await cur.fetchone()
    for key in ("district_code", "city_code", "province_code"):
        given, actual = rec.get(key), found[key] if found else None
        if given and actual and given != actual:
            raise invalid(key, f"{given} does not contain the point, which lies in {actual}")
    for key, value in (found or {}).items():
        if not rec.get(key):
            rec[key] = value
    if rec.get("street_code"):
        # The lists match any of a station's codes, so a street code of another
        # area would show the station in that area's lists, feed and reports.
        async with conn.cursor() as cur:
            await cur.execute(q.STREET_PROBLEM, rec)
            problem = await cur.fetchone()
        if problem and problem[0]:
            raise invalid("street_code", problem[0])


async def in_scope(conn: AsyncConnection[Any], principal: Principal, row: dict[str, Any]) -> bool:
    """A key scoped to an area may touch only stations that lie in it.

    Where the area has a polygon the point must be inside it (codes could be
    typed by hand); areas without one fall back to the station's codes.
    """
    if principal.area_code is None:
        return True
    params = {"area": principal.area_code, "lon": row["lon"], "lat": row["lat"],
              **{k: row.get(k) for k in ("province_code", "city_code", "district_code",
                                         "street_code")}}
    async with conn.cursor() as cur:
        await cur.execute(q.IN_AREA, params)
        found = await cur.fetchone()
    return bool(found and found[0])


async def require_scope(
    conn: AsyncConnection[Any], principal: Principal, row: dict[str, Any], what: str,
    field: str = "district_code",
) -> None:
    """403 naming ``field`` unless ``row`` (a point, with codes if any) is in the key's area."""
    if not await in_scope(conn, principal, row):
        raise Forbidden(
            f"this key is limited to area {principal.area_code}; the {what} is outside it",
            [(field, f"outside the key's area {principal.area_code}")],
        )


def check_version(current: int, body_version: int | None, if_match: int | None) -> int:
    """The version the client edited from; stale or missing ones are refused."""
    if if_match is not None and if_match != current:
        raise PreconditionFailed(
            f"If-Match names version {if_match} but the station is at version {current}",
            [("If-Match", "stale version")], current_version=current,
        )
    if body_version is not None and body_version != current:
        raise VersionConflict(
            f"edit based on version {body_version} but the station is at version {current}",
            [("version", "stale version")], current_version=current,
        )
    if if_match is None and body_version is None:
        raise PreconditionRequired(
            "send the version you edited, as If-Match or as 'version' in the body",
            [("version", "required for edits")], current_version=current,
        )
    return current


async def begin_station_write(conn: AsyncConnection[Any], principal: Principal | None,
                              reason: str | None = None) -> None:
    """Take the change-feed lock first thing in a station write transaction, and
    name the writer (and the ``reason`` they gave, if any) for the audit trail.

    The row trigger takes the lock anyway; taking it before any row lock means
    two writers can never hold one each and wait for the other's.
    """
    await conn.execute(q.LOCK_CHANGES)
    await set_actor(conn, principal, reason=reason)


async def create_station(
    conn: AsyncConnection[Any], principal: Principal, body: dict[str, Any], crs: Crs
) -> dict[str, Any]:
    # Compiling hours is CPU work (a second for a long dated rule): off the event loop.
    rec = await asyncio.to_thread(to_record, body, crs)
    await check_timezone(conn, rec["timezone"])
    async with conn.transaction():
        await begin_station_write(conn, principal)
        await fill_admin(conn, rec)
        await require_scope(conn, principal, rec, "new station")
        async with conn.cursor() as cur:
            await cur.execute(q.INSERT_STATION, rec)
            if await cur.fetchone() is None:
                raise AlreadyExists(
                    f"a station with code {rec['code']!r} exists",
                    [("code", "already exists")],
                )
    return await get_station(conn, rec["code"], crs)


async def lock_station(conn: AsyncConnection[Any], code: str) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.GET_STATION_FOR_UPDATE, {"code": code})
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no station with code {code!r}", [("code", "unknown station code")])
    return row


async def replace_station(
    conn: AsyncConnection[Any], principal: Principal, code: str, body: dict[str, Any],
    crs: Crs, if_match: int | None, *, reason: str | None = None,
) -> dict[str, Any]:
    """Full replacement (PUT) or, with ``merge``, the caller's already-merged PATCH body;
    ``reason``: why, for the audit trail (the console's close and reopen)."""
    # Compiled off the event loop and before the locks are taken (see create_station).
    rec = await asyncio.to_thread(to_record, {**body, "code": code}, crs)
    async with conn.transaction():
        await begin_station_write(conn, principal, reason)
        current = await lock_station(conn, code)
        await require_scope(conn, principal, current, "station")
        expected = check_version(current["version"], body.get("version"), if_match)
        await check_timezone(conn, rec["timezone"])
        await fill_admin(conn, rec)
        await require_scope(conn, principal, rec, "station's new location")
        rec["expected_version"] = expected
        async with conn.cursor() as cur:
            await cur.execute(q.UPDATE_STATION, rec)
            if await cur.fetchone() is None:  # pragma: no cover - guarded by the row lock
                raise VersionConflict("the station changed meanwhile", [("version", "stale")])
    return await get_station(conn, code, crs)


async def patch_station(
    conn: AsyncConnection[Any], principal: Principal, code: str, patch: dict[str, Any],
    crs: Crs, if_match: int | None, *, reason: str | None = None,
) -> dict[str, Any]:
    """Apply only the fields sent; the rest keep their stored values."""
    async with conn.transaction():
        await begin_station_write(conn, principal, reason)
        current = await lock_station(conn, code)
        base = public_row(dict(current), crs)
        merged = {k: base[k] for k in STATION_FIELDS}
        if ("lon" in patch) != ("lat" in patch):
            raise invalid("lon" if "lat" in patch else "lat", "send lon and lat together")
        if "lon" in patch and not any(k in patch for k in _ADMIN_FIELDS):
            # A moved station is re-placed in the admin areas covering its new point.
            for key in _ADMIN_FIELDS:
                merged[key] = None
        merged.update({k: v for k, v in patch.items() if k != "version"})
        merged["version"] = patch.get("version")
        return await replace_station(conn, principal, code, merged, crs, if_match,
                                     reason=reason)


_ADMIN_FIELDS = (
    "province", "province_code", "city", "city_code", "district", "district_code", "street",
    "street_code",
)


async def delete_station(
    conn: AsyncConnection[Any], principal: Principal, code: str,
    version: int | None, if_match: int | None, *, reason: str | None = None,
) -> dict[str, Any]:
    """Soft delete: status closed and ``deleted_at`` set; the row stays for feeds."""
    async with conn.transaction():
        await begin_station_write(conn, principal, reason)
        current = await lock_station(conn, code)
        await require_scope(conn, principal, current, "station")
        expected = check_version(current["version"], version, if_match)
        async with conn.cursor() as cur:
            await cur.execute(q.SOFT_DELETE, {"code": code, "expected_version": expected})
    return await get_station(conn, code, Crs.WGS84)


def names_alike(a: str, b: str) -> bool:
    """Loose name match for duplicate hints: the sample prefix and spaces do not count."""
    def norm(s: str) -> str:
        return "".join(s.replace("【示例】", "").split()).lower()

    na, nb = norm(a), norm(b)
    return na == nb or difflib.SequenceMatcher(None, na, nb).ratio() >= 0.75



DEFAULT_STATUSES: list[str] = [s.value for s in OPERATIONAL]
