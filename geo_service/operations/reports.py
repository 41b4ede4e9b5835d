"""Worker reports, editors' resolutions, and one-tap confirmations.

Anyone may report a problem at a station or confirm that it is as listed; no
key is needed, so both are rate-limited per client address (one shared
budget, ``report_rate_per_hour``) and store only keyed hashes of who sent them.

"Reported closed": when ``reported_closed_threshold`` independent reporters
file open ``closed`` reports on a station within ``reported_closed_window_h``
hours, the station's ``reported_closed_at`` is set, and nearest results show
it as reported closed (shown, not hidden). Reports that share a device or a
client address come from one reporter (see :func:`independent_reporters`):
the device id is whatever the client sends, so counting devices alone would
let one script flip any station, and a phone moving between Wi-Fi and mobile
data stays one reporter. Reports of one station are serialised by an
advisory lock, so concurrent reports cannot both miss the threshold.

Only an editor clears the mark: after a resolution of a ``closed`` report the
mark is recomputed over the station's remaining open ``closed`` reports in
the window, and cleared when they fall short. ``resolved`` means the editor
dealt with the report (e.g. fixed the listing through the station API);
``rejected`` means the report was wrong; ``reopened`` puts it back to open.
Every decision is kept. Another device's confirmation never clears the mark:
one tap of "as listed" should not outvote several reports of "closed"; an
editor decides. Only a reporter taking back its own report (below) can.

One standing word per device: a confirmation and a ``closed`` report say
opposite things about whether a station is open, and a rider who taps one and
then the other within minutes meant the second. Within the de-duplication
window (``checkin_dedup_minutes``, 30 minutes by default) a device's later word
replaces its earlier one (:func:`standing_words`): the earlier row is kept with
``superseded_at`` set, as the record of what was said, and stops counting:
``last_confirmed_at`` goes back to the last standing confirmation, the mark is
recomputed without the replaced report (and may clear: the reporter took it
back), and the editors' open queue no longer lists it. Only callers that send
a device id take part; one address stands for many phones, so words without a
device are never replaced by another's.

Already reported: a device's repeat of its own open report (same station, kind and
amenity) within that window is not stored; the answer is the earlier report with
``counted`` false and ``duplicate_of`` (:func:`earlier_report`), so a rider tapping
"broken" three times files one report. ``closed`` is the exception, already counted
once by the rule above: a repeat is the device's newer standing word and replaces the
earlier one (one row stands, the mark counts the device once). As with standing
words, only callers with a device id are de-duplicated: an address alone stands for
many phones.

Neither flag is an edit of the station: no version bump, no change-feed entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.audit import set_actor
from geo_service.domain.catalogue import AMENITY_BY_CODE
from geo_service.domain.errors import NotFound, VersionConflict, invalid
from geo_service.domain.params import at_most, decode_cursor, encode_cursor
from geo_service.domain.principal import Principal
from geo_service.infra.settings import Settings
from geo_service.operations import queries as q
from geo_service.operations.common import check_rate, require_area, station_ref
from geo_service.operations.visits import HOUR, Caller, earlier_within, lock
from geo_service.photos import service as photos
from geo_service.stations.service import in_scope

AMENITY_KINDS = ("amenity_missing", "amenity_broken")
#: Which action may follow which status.
TRANSITIONS = {"open": ("resolved", "rejected"), "resolved": ("reopened",),
               "rejected": ("reopened",)}


@dataclass(frozen=True)
class Word:
    """One standing word of a device at a station: a confirmation or a ``closed`` report."""

    word: str  # "confirmation" or "closed"
    id: int
    at: dt.datetime


def _rate_key(caller: Caller) -> str:
    return f"rate:feedback:{caller.client}"


def _station_key(station_id: int) -> str:
    return f"reports:{station_id}"


async def check_feedback_rate(conn: AsyncConnection[Any], settings: Settings,
                              client: str) -> None:
    """429 with ``Retry-After`` once the client used its hourly reports + confirmations."""
    await check_rate(conn, [("station_report", "created_at"), ("confirmation", "at")], client,
                     settings.report_rate_per_hour, HOUR, "reports and confirmations")


def independent_reporters(reports: Iterable[tuple[str, str]]) -> int:
    """How many reporters a set of (device, client) pairs stands for.

    Reports that share a device or a client address are one reporter, and so
    are chains of them (a phone seen at two addresses, one of which another
    phone used): the connected components of the device–address graph.

    >>> independent_reporters([("p1", "ip1"), ("p1", "ip9"), ("p9", "ip9"), ("p2", "ip2")])
    2
    """
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for device, client in reports:
        parent[root("device:" + device)] = root("client:" + client)
    return len({root(node) for node in parent})


async def _sync_mark(conn: AsyncConnection[Any], settings: Settings, station_id: int,
                     may_clear: bool) -> None:
    """Set the mark when the threshold is met; with ``may_clear``, clear it when not.

    Runs under the station's report lock, so the reports it counts cannot change meanwhile.
    """
    window = dt.timedelta(hours=settings.reported_closed_window_h)
    async with conn.cursor() as cur:
        await cur.execute(q.CLOSED_REPORTERS, {"station": station_id, "window": window})
        closed = (independent_reporters(await cur.fetchall())
                  >= settings.reported_closed_threshold)
        if closed or may_clear:
            await cur.execute(q.SET_MARK, {"station": station_id, "closed": closed})


async def standing_words(conn: AsyncConnection[Any], settings: Settings, station_id: int,
                         caller: Caller) -> list[Word]:
    """The caller's words at the station that still stand, newest first (none without a
    device id). Read under the station's report lock, so they cannot change meanwhile."""
    if caller.device is None:
        return []
    window = dt.timedelta(minutes=settings.checkin_dedup_minutes)
    async with conn.cursor() as cur:
        await cur.execute(q.STANDING_WORDS, {"station": station_id, "device": caller.device,
                                             "window": window})
        return [Word(*row) for row in await cur.fetchall()]


async def supersede(conn: AsyncConnection[Any], station_id: int, words: list[Word]) -> bool:
    """Mark ``words`` replaced (kept, no longer counted) and take a replaced confirmation
    out of ``last_confirmed_at``; True when a ``closed`` report was among them (the
    caller then recomputes the mark)."""
    confirmations = [w.id for w in words if w.word == "confirmation"]
    closed = [w.id for w in words if w.word == "closed"]
    if confirmations:
        await conn.execute(q.SUPERSEDE_CONFIRMATIONS, {"ids": confirmations})
        await conn.execute(q.STANDING_CONFIRMED, {"station": station_id})
    if closed:
        await conn.execute(q.SUPERSEDE_REPORTS, {"ids": closed})
    return bool(closed)


def check_amenity(kind: str, amenity: str | None) -> None:
    """Amenity reports name a catalogue amenity; other kinds name none."""
    if kind in AMENITY_KINDS:
        if amenity is None:
            raise invalid("amenity", f"required for kind {kind}")
        if amenity not in AMENITY_BY_CODE:
            raise invalid("amenity", f"unknown amenity code {amenity!r}")
    elif amenity is not None:
        raise invalid("amenity", f"only for kinds {' and '.join(AMENITY_KINDS)}")


async def store_report_photo(conn: AsyncConnection[Any], work: photos.PhotoWork,
                             settings: Settings, data: bytes, caller: Caller) -> dict[str, Any]:
    """A worker's photo for a report, kept private until a clerk approves it.

    No key is needed, so uploads count against the client's hourly budget
    (``GEO_REPORT_RATE_PER_HOUR``, apart from its reports): a photo costs far more to
    process and keep than a report row.
    """
    async with conn.transaction():
        await lock(conn, f"rate:photos:{caller.client}")
        await check_rate(conn, [("photo", "created_at")], caller.client,
                         settings.report_rate_per_hour, HOUR, "report photos")
        return await photos.store_upload(conn, work, data, public=False, client=caller.client)


def public_report(row: dict[str, Any]) -> dict[str, Any]:
    """A report as the API shows it: no hashes, no scope-only columns."""
    return {k: v for k, v in row.items() if k not in q.REPORT_SCOPE_ONLY}


def _unknown(report_id: int) -> NotFound:
    return NotFound(f"no report {report_id}", [("id", "unknown report")])


async def _require_visible(conn: AsyncConnection[Any], principal: Principal,
                           row: dict[str, Any], report_id: int) -> None:
    """A report outside the key's area is answered exactly like an unknown id (404).

    A 403 would tell an area editor that the id exists elsewhere, so report
    ids (sequential) could be probed to count other areas' reports.
    """
    if not await in_scope(conn, principal, row):
        raise _unknown(report_id)


async def get_report(conn: AsyncConnection[Any], report_id: int) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.GET_REPORT, {"id": report_id})
        row = await cur.fetchone()
    if row is None:
        raise _unknown(report_id)
    return row


async def earlier_report(conn: AsyncConnection[Any], settings: Settings, station_id: int,
                         body: dict[str, Any], caller: Caller) -> tuple[int, dt.datetime] | None:
    """The caller's open report of the same kind and amenity at the station within the
    de-duplication window (id, when), which a new one would only repeat; None without a
    device id, and for ``closed``, whose repeat replaces the standing word instead. Read
    under the station's report lock, so a concurrent repeat waits."""
    if caller.device is None or body["kind"] == "closed":
        return None
    async with conn.cursor() as cur:
        await cur.execute(q.EARLIER_REPORT, {
            "station": station_id, "device": caller.device, "kind": body["kind"],
            "amenity": body.get("amenity"),
            "window": dt.timedelta(minutes=settings.checkin_dedup_minutes)})
        row = await cur.fetchone()
    return (row[0], row[1]) if row else None


async def create_report(conn: AsyncConnection[Any], settings: Settings, code: str,
                        body: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """Store a report (status open, version 1); a ``closed`` one may mark the station,
    and replaces the device's standing word there (``replaces``: when that was said).
    A repeat of the device's own open report stores nothing (``counted`` false)."""
    check_amenity(body["kind"], body.get("amenity"))
    station = await station_ref(conn, code)
    if body.get("photo"):
        await photos.check_known(conn, [body["photo"]], "photo")
    replaced: list[Word] = []
    async with conn.transaction():
        await set_actor(conn, None, name="worker reports")  # may mark the station
        await lock(conn, _rate_key(caller), _station_key(station["id"]))
        await check_feedback_rate(conn, settings, caller.client)
        earlier = await earlier_report(conn, settings, station["id"], body, caller)
        if earlier is not None:
            return {**public_report(await get_report(conn, earlier[0])), "replaces": None,
                    "counted": False, "duplicate_of": earlier[1]}
        if body["kind"] == "closed":
            replaced = await standing_words(conn, settings, station["id"], caller)
        took_back = await supersede(conn, station["id"], replaced)
        async with conn.cursor() as cur:
            await cur.execute(q.INSERT_REPORT, {
                "station": station["id"], "kind": body["kind"], "amenity": body.get("amenity"),
                "comment": body.get("comment"), "device": caller.device,
                "client": caller.client})
            row = await cur.fetchone()
        assert row is not None
        if body.get("photo"):
            await photos.attach_to_report(conn, row[0], body["photo"])
        if body["kind"] == "closed":
            await _sync_mark(conn, settings, station["id"], may_clear=took_back)
    return {**public_report(await get_report(conn, row[0])),
            "replaces": replaced[0].at if replaced else None, "counted": True,
            "duplicate_of": None}


async def list_reports(conn: AsyncConnection[Any], settings: Settings, principal: Principal,
                       *, status: str, kind: str | None, station: str | None,
                       area: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
    """Reports oldest first (a queue to work through); an area key sees only its area.

    ``status`` is one status or ``all``; ``area`` must be a known admin area
    (404 naming it); a page longer than ``settings.max_page_size`` is refused.
    """
    at_most(limit, settings.max_page_size, "limit")
    await require_area(conn, area)
    params = {"after": decode_cursor(cursor)[0], "status": None if status == "all" else status,
              "kind": kind, "station": station, "area": area, "scope": principal.area_code,
              "limit": limit + 1}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.LIST_REPORTS, params)
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [public_report(r) for r in rows], "count": len(rows),
            "next_cursor": encode_cursor(rows[-1]["id"]) if more and rows else None}


async def report_groups(conn: AsyncConnection[Any], settings: Settings, principal: Principal,
                        *, status: str, kind: str | None, limit: int,
                        cursor: str | None) -> dict[str, Any]:
    """A page of :func:`list_reports` grouped for people: per station (in queue order), per
    kind, amenity and status, with the first and last time, the notes, the reports' ids and
    versions (to decide them together), how many independent reporters (devices; see
    :func:`independent_reporters`) said it, and the latest decision on any of them.
    Replaced words are left out, as the open queue leaves them out. A station with an open
    ``closed`` report is flagged (``open_closed``) whatever the filter, until an editor
    decides it."""
    page = await list_reports(conn, settings, principal, status=status, kind=kind,
                              station=None, area=None, limit=limit, cursor=cursor)
    rows = [r for r in page["items"] if r["superseded_at"] is None]
    async with conn.cursor() as cur:
        await cur.execute(q.REPORT_REPORTERS, {"ids": [r["id"] for r in rows]})
        extra = {row[0]: row[1:] for row in await cur.fetchall()}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.LAST_RESOLUTIONS, {"ids": [r["id"] for r in rows]})
        decided = {row.pop("report_id"): row for row in await cur.fetchall()}
    stations: dict[str, dict[str, Any]] = {}
    for r in rows:
        device, client, sample, open_closed = extra[r["id"]]
        st = stations.setdefault(r["station"], {
            "code": r["station"], "name": r["station_name"], "sample": sample,
            "reported_closed": r["station_reported_closed"], "open_closed": open_closed,
            "groups": {}})
        group = st["groups"].setdefault((r["kind"], r["amenity"], r["status"]), {
            "kind": r["kind"], "amenity": r["amenity"], "status": r["status"],
            "first": r["created_at"], "last": r["created_at"], "notes": [], "reports": [],
            "pairs": [], "decision": None})
        latest = decided.get(r["id"])
        if latest and (group["decision"] is None
                       or latest["created_at"] > group["decision"]["created_at"]):
            group["decision"] = latest
        group["last"] = max(group["last"], r["created_at"])
        group["first"] = min(group["first"], r["created_at"])
        if r["comment"]:
            group["notes"].append(r["comment"])
        group["reports"].append((r["id"], r["version"]))
        group["pairs"].append((device, client))
    for st in stations.values():
        st["groups"] = [{**{k: v for k, v in g.items() if k != "pairs"},
                         "reporters": independent_reporters(g["pairs"])}
                        for g in st["groups"].values()]
    return {"stations": list(stations.values()), "next_cursor": page["next_cursor"]}


async def decide_reports(conn: AsyncConnection[Any], settings: Settings, principal: Principal,
                         items: list[tuple[int, int]], action: str,
                         note: str | None) -> list[dict[str, Any]]:
    """:func:`resolve_report` for each (id, version) of a group, all or none: one
    transaction, so a stale version or a report outside the area leaves every one as it
    was."""
    async with conn.transaction():
        return [await resolve_report(conn, settings, principal, report_id, action, note,
                                     version) for report_id, version in items]


async def report_detail(conn: AsyncConnection[Any], principal: Principal,
                        report_id: int) -> dict[str, Any]:
    """One report with every decision taken on it, oldest first."""
    report = await get_report(conn, report_id)
    await _require_visible(conn, principal, report, report_id)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.RESOLUTIONS, {"id": report_id})
        resolutions = await cur.fetchall()
    return {**public_report(report), "resolutions": resolutions}


async def resolve_report(conn: AsyncConnection[Any], settings: Settings, principal: Principal,
                         report_id: int, action: str, note: str | None,
                         version: int) -> dict[str, Any]:
    """Record an editor's decision; needs the report's current ``version`` (else 409)."""
    async with conn.transaction():
        await set_actor(conn, principal)
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(q.REPORT_STATION, {"id": report_id})
            head = await cur.fetchone()
            if head is None:
                raise _unknown(report_id)
            station_id = head["station_id"]
            await lock(conn, _station_key(station_id))
            await cur.execute(q.LOCK_REPORT, {"id": report_id})
            current = await cur.fetchone()
        assert current is not None  # reports are never deleted
        await _require_visible(conn, principal, current, report_id)
        if version != current["version"]:
            raise VersionConflict(
                f"decision based on version {version} but the report is at version "
                f"{current['version']}", [("version", "stale version")],
                current_version=current["version"])
        if action not in TRANSITIONS[current["status"]]:
            raise invalid("action", f"the report is {current['status']}; allowed: "
                                    f"{', '.join(TRANSITIONS[current['status']])}")
        await conn.execute(q.INSERT_RESOLUTION, {"id": report_id, "action": action,
                                                 "note": note, "key_id": principal.key_id,
                                                 "editor": principal.name})
        await conn.execute(q.UPDATE_REPORT, {"id": report_id,
                                             "status": "open" if action == "reopened" else action})
        if current["kind"] == "closed":
            await _sync_mark(conn, settings, station_id, may_clear=True)
    return await report_detail(conn, principal, report_id)


async def confirm(conn: AsyncConnection[Any], settings: Settings, code: str,
                  caller: Caller) -> dict[str, Any]:
    """One tap of "as listed": refreshes ``last_confirmed_at``; once per device per window.

    A repeat of the device's standing confirmation is not counted (``duplicate_of``); a
    confirmation after its ``closed`` report replaces that report (``replaces``)."""
    station = await station_ref(conn, code)
    result: dict[str, Any] = {"station": code, "counted": False, "at": None,
                              "duplicate_of": None, "replaces": None}
    window = dt.timedelta(minutes=settings.checkin_dedup_minutes)
    async with conn.transaction():
        await set_actor(conn, None, name="worker reports")  # may clear the mark
        await lock(conn, _rate_key(caller), _station_key(station["id"]))
        await check_feedback_rate(conn, settings, caller.client)
        words = await standing_words(conn, settings, station["id"], caller)
        if caller.device is None:
            result["duplicate_of"] = await earlier_within(conn, "confirmation", station["id"],
                                                          caller, window)
        elif words and words[0].word == "confirmation":
            result["duplicate_of"] = words[0].at
        if result["duplicate_of"] is None:
            took_back = await supersede(conn, station["id"], words)
            async with conn.cursor() as cur:
                await cur.execute(q.CONFIRM, {"station": station["id"],
                                              "device": caller.device, "client": caller.client})
                row = await cur.fetchone()
            if took_back:
                await _sync_mark(conn, settings, station["id"], may_clear=True)
            result.update(counted=True, at=row[0] if row else None,
                          replaces=words[0].at if words else None)
    return result
