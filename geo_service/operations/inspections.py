"""Inspections and awards: what inspectors found at a station, and the recognitions it carries.

An inspection records each of the ten ones as present, missing or broken, the
extras seen, the hours observed, photo references, remarks and a score. Every
inspection is kept as history; the station's verified amenities
(``amenity_mask``) and ``last_verified_on`` follow its *latest* inspection
(greatest ``inspected_on``, ties by id). The station's mask becomes exactly the
inspection's: ten-ones items present, plus the extras the inspector listed. An
extra the station claimed but the inspector did not see is dropped, because
the inspection is the verified state and a claim nobody verified should not
survive it. A broken item counts as not available (a broken microwave heats
nobody's lunch). A back-dated inspection older than the latest is history only.

Awards are not station edits: adding or removing one changes no version and
does not enter the change feed (feeds do not carry awards).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from geo_service.domain.audit import set_actor
from geo_service.domain.catalogue import OPERATIONAL, TEN_ONES, amenity_codes, amenity_mask
from geo_service.domain.errors import AlreadyExists, Forbidden, NotFound, invalid
from geo_service.domain.params import decode_cursor, encode_cursor
from geo_service.domain.principal import Principal
from geo_service.operations import queries as q
from geo_service.operations.common import require_area, station_ref
from geo_service.operations.inspection_schemas import china_today as china_today
from geo_service.photos import service as photos
from geo_service.stations.service import begin_station_write, in_scope

PUBLISHED = [s.value for s in OPERATIONAL]
#: Cap on trend rows, so one request cannot ask for decades of every district.
MAX_TREND_ROWS = 5000


async def _rows(conn: AsyncConnection[Any], query: str,
                params: dict[str, Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def _scoped_station(conn: AsyncConnection[Any], principal: Principal,
                          code: str) -> dict[str, Any]:
    """The station, if the key's area contains it; otherwise 403 naming the area."""
    station = await station_ref(conn, code)
    if not await in_scope(conn, principal, station):
        raise Forbidden(
            f"this key is limited to area {principal.area_code}; station {code} is outside it",
            [("code", f"outside the key's area {principal.area_code}")],
        )
    return station


# --- inspections -----------------------------------------------------------------------------


def inspection_mask(items: dict[str, str], extras: list[str]) -> int:
    """The amenities an inspection found available: ten-ones items present, plus extras."""
    return amenity_mask([c for c, state in items.items() if state == "present"] + extras)


def public_inspection(row: dict[str, Any], *, with_inspector: bool = False) -> dict[str, Any]:
    """Stored row → API dict: items in the catalogue's order, the mask as amenity codes.

    The inspector (the recording key's name, often a person's) is shown only
    to the key that recorded it: the history is public.
    """
    row["items"] = {a.code: row["items"][a.code] for a in TEN_ONES if a.code in row["items"]}
    row["amenities"] = amenity_codes(int(row.pop("amenity_mask")))
    if not with_inspector:
        row.pop("inspector", None)
    return row


async def record_inspection(conn: AsyncConnection[Any], principal: Principal, code: str,
                            body: dict[str, Any]) -> dict[str, Any]:
    """Store an inspection and, when it is the station's latest, apply it to the station.

    One transaction: the change-feed lock first (every station write takes it,
    so inspections of one station are serialised and "latest" is decided
    without races), then the scope check on the station as it is under the
    lock, the insert, and the station update. The answer says whether the
    inspection became the station's verified state (``applied``) and the
    station's version afterwards (unchanged when nothing visible changed).
    """
    uploaded = [ref for ref in body["photos"] if photos.is_sha(ref)]
    await photos.check_known(conn, uploaded, "photos")
    mask = inspection_mask(body["items"], body["extras"])
    rec = {**body, "items": Jsonb(body["items"]), "amenity_mask": mask,
           "ten_ones_count": sum(s == "present" for s in body["items"].values()),
           "inspector_key_id": principal.key_id, "inspector": principal.name}
    async with conn.transaction():
        await begin_station_write(conn, principal)
        station = await _scoped_station(conn, principal, code)
        rec["station_id"] = station["id"]
        new_id = (await _rows(conn, q.INSERT_INSPECTION, rec))[0]["id"]
        await photos.attach_to_inspection(conn, new_id, uploaded)
        row = (await _rows(conn, q.GET_INSPECTION, {"id": new_id}))[0]
        version = station["version"]
        if row["current"]:
            updated = await _rows(conn, q.APPLY_TO_STATION, rec)
            version = updated[0]["version"] if updated else version
    return {**public_inspection(row, with_inspector=True), "applied": row["current"],
            "station_version": version}


def _after(cursor: str | None) -> tuple[dt.date | None, int]:
    """History cursor (``<day ordinal>.<id>``) → (inspected_on, id) of the last row seen;
    days past the calendar are clamped to it, so every cursor the schema allows decodes."""
    if not cursor:
        return None, 0
    day, last = decode_cursor(cursor, parts=2)
    return dt.date.fromordinal(min(max(day, 1), dt.date.max.toordinal())), last


async def list_inspections(conn: AsyncConnection[Any], code: str, *, limit: int,
                           cursor: str | None) -> dict[str, Any]:
    """One page of a station's inspection history, newest first."""
    after_on, after_id = _after(cursor)
    station = await station_ref(conn, code)
    rows = await _rows(conn, q.LIST_INSPECTIONS, {
        "station_id": station["id"], "after_on": after_on, "after_id": after_id,
        "limit": limit + 1})
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (encode_cursor(rows[-1]["inspected_on"].toordinal(), rows[-1]["id"])
                   if more else None)
    items = [public_inspection(r) for r in rows]
    return {"station_code": station["code"], "inspections": items, "count": len(items),
            "next_cursor": next_cursor}


# --- planners --------------------------------------------------------------------------------


async def overdue(conn: AsyncConnection[Any], *, area: str | None, days: int, limit: int,
                  today: dt.date | None = None) -> dict[str, Any]:
    """Published stations never verified or last verified more than ``days`` ago.

    Verified is the later of the last inspection and the imported 最近核实日期
    (:mod:`geo_service.domain.verification`, the rule the compliance map and the
    console share). Never-verified stations come first, then the longest-unvisited; ``total``
    counts every overdue station, ``stations`` is the first ``limit`` of them.
    """
    today = today or china_today()
    await require_area(conn, area)
    rows = await _rows(conn, q.OVERDUE, {"area": area, "days": days, "limit": limit,
                                         "today": today, "statuses": PUBLISHED})
    total = rows[0]["total"] if rows else 0
    for r in rows:
        del r["total"]
    return {"area": area, "days": days, "as_of": today, "total": total, "count": len(rows),
            "stations": rows}


def period_label(period: str, start: dt.date) -> str:
    """``2025-06``, ``2025-Q2`` or ``2025``."""
    if period == "month":
        return f"{start:%Y-%m}"
    if period == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return str(start.year)


async def trend(conn: AsyncConnection[Any], *, area: str | None, period: str,
                start: dt.date | None, end: dt.date | None) -> dict[str, Any]:
    """Compliance per district and period, over inspections (not stations).

    A station inspected twice in a month counts twice: the figures describe
    what inspectors found, which is what a trend of compliance means.
    """
    if start and end and start > end:
        raise invalid("to", "must not be before 'from'")
    await require_area(conn, area)
    rows = await _rows(conn, q.TREND, {"area": area, "period": period, "start": start,
                                       "end": end, "limit": MAX_TREND_ROWS + 1})
    if len(rows) > MAX_TREND_ROWS:
        raise invalid("from", f"more than {MAX_TREND_ROWS} district-periods: narrow "
                              "'from'/'to' or the area, or use a longer period")
    for r in rows:
        r["period"] = period_label(period, r["period_start"])
    return {"area": area, "period": period, "from": start, "to": end, "count": len(rows),
            "rows": rows}


async def missing_items(conn: AsyncConnection[Any], *, area: str | None, days: int | None,
                        today: dt.date | None = None) -> dict[str, Any]:
    """The ten-ones items most often missing or broken at the latest inspection ("what to buy").

    Only each published station's latest inspection counts (an item bought
    since the previous visit is not missing any more); with ``days``, only
    latest inspections from that many days back.
    """
    today = today or china_today()
    await require_area(conn, area)
    since = today - dt.timedelta(days=days) if days is not None else None
    rows = await _rows(conn, q.MISSING_ITEMS, {"area": area, "since": since,
                                               "statuses": PUBLISHED})
    found = {r["code"]: r for r in rows}
    items = []
    for a in TEN_ONES:
        r = found.get(a.code, {"missing": 0, "broken": 0})
        items.append({"code": a.code, "label_zh": a.label_zh, "label_en": a.label_en,
                      "missing": r["missing"], "broken": r["broken"],
                      "total": r["missing"] + r["broken"]})
    items.sort(key=lambda i: -i["total"])  # stable: ties stay in catalogue order
    return {"area": area, "days": days, "as_of": today,
            "stations": rows[0]["stations"] if rows else 0, "items": items}


# --- awards ----------------------------------------------------------------------------------


async def list_awards(conn: AsyncConnection[Any], code: str) -> dict[str, Any]:
    station = await station_ref(conn, code)
    awards = await _rows(conn, q.LIST_AWARDS, {"station_id": station["id"]})
    return {"station_code": station["code"], "awards": awards, "count": len(awards)}


async def add_award(conn: AsyncConnection[Any], principal: Principal, code: str,
                    body: dict[str, Any]) -> dict[str, Any]:
    """Attach an award; the same title, level and year twice is a 409, not a second row."""
    async with conn.transaction():
        await set_actor(conn, principal)
        station = await _scoped_station(conn, principal, code)
        params = {**body, "station_id": station["id"]}
        await conn.execute(q.LOCK_STATION_ROW, params)
        rows = await _rows(conn, q.INSERT_AWARD, params)
    if not rows:
        raise AlreadyExists(f"station {code} already carries this award",
                            [("title", "already awarded with this level and year")])
    return {"station_code": station["code"], **rows[0]}


async def delete_award(conn: AsyncConnection[Any], principal: Principal, code: str,
                       award_id: int) -> None:
    station = await _scoped_station(conn, principal, code)
    async with conn.transaction(), conn.cursor() as cur:
        await set_actor(conn, principal)
        await cur.execute(q.DELETE_AWARD, {"id": award_id, "station_id": station["id"]})
        if cur.rowcount == 0:
            raise NotFound(f"station {code} has no award {award_id}",
                           [("award_id", "no such award at this station")])
