"""Check-ins at a station (person-times served, 人次) and their counts.

A station's QR code links to ``/v1/checkin/{code}``, a small page with one
button per worker type; a tap stores the time, the station and optionally
the worker type. Nothing else about the worker is kept: no name, no phone,
no location, and only keyed hashes of the device cookie and client address
(see :mod:`geo_service.operations.common`).

Two guards keep the count honest without asking anyone to log in:

* one device at one station counts once within ``checkin_dedup_minutes``
  (a device without an id falls back to its client address);
* one client address may store at most ``checkin_rate_per_hour`` check-ins an
  hour over all stations, so a script cannot inflate a count by rotating
  device ids. Behind carrier-grade NAT many phones share an address, so the
  limit is a setting, not a constant.

Both checks and the insert run in one transaction under advisory locks on the
client and on (station, device), so two simultaneous taps cannot both count.
Counts bucket days, ISO weeks (Monday first) and months in the service's
local time zone (Asia/Shanghai), which is how unions report them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import io
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.catalogue import OPERATIONAL
from geo_service.domain.errors import GeoServiceError, invalid
from geo_service.domain.html import json_for_html
from geo_service.infra.settings import Settings
from geo_service.operations import queries as q
from geo_service.operations.common import check_rate, require_area, station_ref

#: Advisory-lock class of the operations writes (two-key form: apart from the
#: change-feed lock, which uses the one-key form).
LOCK_CLASS = 73060
HOUR = dt.timedelta(hours=1)
#: Longest range one counts request may span (three years, leap day included).
MAX_RANGE_DAYS = 3 * 366
#: Bilingual labels of ``models.WORKER_TYPES``, in the order the page shows them.
WORKER_TYPE_LABELS = {
    "sanitation": ("环卫工人", "Sanitation worker"),
    "delivery": ("外卖骑手", "Food delivery rider"),
    "courier": ("快递员", "Courier"),
    "truck_driver": ("货车司机", "Truck driver"),
    "traffic": ("交警、交通协管员", "Traffic police / warden"),
    "other": ("其他户外劳动者", "Other outdoor worker"),
}


class NotAccepting(GeoServiceError):
    """The station exists but is not serving (closed or planned): 409 naming ``code``."""

    status = 409
    code = "not_accepting"


@dataclass(frozen=True)
class Caller:
    """Who sends a check-in, report or confirmation, as keyed hashes only."""

    device: str | None
    client: str


async def lock(conn: AsyncConnection[Any], *keys: str) -> None:
    """Transaction-scoped advisory locks, taken in the order given.

    Every operations write takes its client (rate) key before its station or
    (station, device) key, so two writers never wait on each other in a cycle.
    """
    for key in keys:
        await conn.execute(q.LOCK, {"cls": LOCK_CLASS, "key": key})


async def earlier_within(conn: AsyncConnection[Any], table: str, station_id: int,
                         caller: Caller, window: dt.timedelta) -> dt.datetime | None:
    """Time of the caller's row in ``table`` at this station within ``window``, if any.

    Takes the (table, station, device) lock first so a concurrent request from
    the same device waits for this one and then sees its row. ``table`` is one
    of ours (``visit``, ``confirmation``).
    """
    who = f"device:{caller.device}" if caller.device else f"client:{caller.client}"
    await lock(conn, f"{table}:{station_id}:{who}")
    async with conn.cursor() as cur:
        await cur.execute(q.earlier_query(table, by_device=caller.device is not None),
                          {"station": station_id, "window": window,
                           "device": caller.device, "client": caller.client})
        row = await cur.fetchone()
    return row[0] if row else None


async def check_in(conn: AsyncConnection[Any], settings: Settings, code: str,
                   worker_type: str | None, caller: Caller) -> dict[str, Any]:
    """Count one visit, unless the device checked in here within the de-dup window.

    Only stations that serve (open, temporarily closed) accept check-ins; a
    closed or planned one answers 409 naming ``code``. The rate limit is
    checked before anything is written, and a refused request writes nothing.
    """
    station = await station_ref(conn, code)
    if station["status"] not in OPERATIONAL:
        raise NotAccepting(f"station {code!r} is {station['status']}; it takes no check-ins",
                           [("code", f"station is {station['status']}")])
    result: dict[str, Any] = {"station": code, "worker_type": worker_type, "counted": False,
                              "at": None, "duplicate_of": None}
    window = dt.timedelta(minutes=settings.checkin_dedup_minutes)
    async with conn.transaction():
        await lock(conn, f"rate:visit:{caller.client}")
        await check_rate(conn, [("visit", "at")], caller.client, settings.checkin_rate_per_hour,
                         HOUR, "check-ins")
        result["duplicate_of"] = await earlier_within(conn, "visit", station["id"], caller,
                                                      window)
        if result["duplicate_of"] is None:
            async with conn.cursor() as cur:
                await cur.execute(q.INSERT_VISIT, {"station": station["id"],
                                                   "worker_type": worker_type,
                                                   "device": caller.device,
                                                   "client": caller.client})
                row = await cur.fetchone()
            result.update(counted=True, at=row[0] if row else None)
    return result


# --- counts ----------------------------------------------------------------------------------


def count_range(start: dt.date | None, end: dt.date | None, tz: str, *, group: str = "day",
                today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """Inclusive local dates of a counts request; default up to today.

    Without ``from`` the range starts 29 days before ``to`` (the last 30 days), except
    per month: then it starts on the first of the month before ``to``'s, so the months
    listed are whole calendar months ("November" is all of November, issue 27), and
    only the current month can be cut short (:func:`_time_rows` labels it partial).
    """
    for name, given in (("from", start), ("to", end)):
        if given is not None and not 1970 <= given.year < 2200:
            raise invalid(name, "must be between 1970 and 2199")
    end = end or today or dt.datetime.now(ZoneInfo(tz)).date()
    if start is None and group == "month":
        start = (end.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    start = start or end - dt.timedelta(days=29)
    if start > end:
        raise invalid("from", "must not be after 'to'")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise invalid("to", f"the range may span at most {MAX_RANGE_DAYS} days")
    return start, end


def month_range(month: str, *, given: bool = False) -> tuple[dt.date, dt.date]:
    """First and last day of ``YYYY-MM`` (``--month``), refusing it beside ``--from/--to``."""
    if given:
        raise invalid("--month", "give --month or --from/--to, not both")
    try:
        first = dt.date.fromisoformat(f"{month}-01")
    except ValueError:
        raise invalid("--month", "must be a month as YYYY-MM, e.g. 2026-11") from None
    return first, _next_bucket("month", first) - dt.timedelta(days=1)


def _bucket(group: str, day: dt.date) -> dt.date:
    if group == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1) if group == "month" else day


def _next_bucket(group: str, day: dt.date) -> dt.date:
    if group == "month":
        return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return day + dt.timedelta(days=7 if group == "week" else 1)


def _bucket_key(group: str, start: dt.date) -> tuple[str, str | None]:
    """Key and label of a time bucket: 2026-05-04, 2026-W19 (from Monday 2026-05-04), 2026-05."""
    if group == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}", start.isoformat()
    return (start.isoformat()[:7] if group == "month" else start.isoformat()), None


def _time_rows(group: str, found: dict[Any, int], start: dt.date,
               end: dt.date) -> list[dict[str, Any]]:
    """Every bucket from ``start`` to ``end``, with zero where nobody checked in.

    A week or month the range cuts short says so (``partial``), and a partial month
    is labelled with the days it counts: never a part of a month under its name.
    """
    rows, day = [], _bucket(group, start)
    while day <= end:
        key, label = _bucket_key(group, day)
        after = _next_bucket(group, day)
        first, last = max(day, start), min(after - dt.timedelta(days=1), end)
        partial = (first, last) != (day, after - dt.timedelta(days=1))
        if partial and group == "month":
            label = f"{first.isoformat()} – {last.isoformat()} (partial month)"
        row: dict[str, Any] = {"key": key, "label": label, "count": found.get(day, 0)}
        if group != "day":
            row["partial"] = partial
        rows.append(row)
        day = after
    return rows


def _label(group: str, key: Any, label: Any) -> str | None:
    if group == "worker_type":
        return " / ".join(WORKER_TYPE_LABELS[key]) if key in WORKER_TYPE_LABELS else "not given"
    if group == "district" and key is None:
        return "no district"
    return None if label is None else str(label)


async def visit_counts(conn: AsyncConnection[Any], settings: Settings, *, group: str,
                       area: str | None, station: str | None, start: dt.date | None,
                       end: dt.date | None, today: dt.date | None = None) -> dict[str, Any]:
    """Check-ins per station, district, worker type, local day, ISO week or month.

    Time groups list every bucket of the range (zero included); the others
    list only keys with check-ins, ``key`` null for "no district" / "type not
    given", so the rows of any grouping add up to ``total``. A week or month
    that straddles the range counts only its days inside it and is marked ``partial``.
    """
    tz = settings.default_timezone
    first, last = count_range(start, end, tz, group=group, today=today)
    await require_area(conn, area)
    station_id = (await station_ref(conn, station, "station"))["id"] if station else None
    zone = ZoneInfo(tz)
    params = {
        "start": dt.datetime.combine(first, dt.time(), zone),
        "end": dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone),
        "station": station_id, "area": area, "tz": tz,
    }
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.counts_query(group), params)
        found = await cur.fetchall()
    if group in ("day", "week", "month"):
        rows = _time_rows(group, {r["key"]: r["count"] for r in found}, first, last)
    else:
        rows = [{"key": r["key"], "label": _label(group, r["key"], r["label"]),
                 "count": r["count"]} for r in found]
    return {"group": group, "area": area, "station": station, "from": first, "to": last,
            "timezone": tz, "total": sum(r["count"] for r in rows), "rows": rows}


# --- the QR link and its page -----------------------------------------------------------------


def qr_svg(url: str) -> str | None:
    """The link as a printable QR code (SVG), or None where ``segno`` is not installed."""
    try:
        import segno  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - an optional dependency
        return None
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", scale=8, border=4, xmldecl=False,
                                    nl=False)
    return buf.getvalue().decode()


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,">
<title>签到 Check in · {name}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:28rem;margin:1rem auto;padding:0 1rem}}
button{{display:block;width:100%;margin:.4rem 0;padding:.9rem;font-size:1.1rem;
border:1px solid #888;border-radius:.5rem;background:#f4f4f4}}
#msg{{font-size:1.2rem;margin-top:1rem}}
</style></head><body>
<h1>{name}</h1>
{body}
<p id="msg" role="status"></p>
{app_link}
<script>
const url = {post_url};
const msg = document.getElementById("msg");
const buttons = document.querySelectorAll("button");
const say = {{201: "签到成功，谢谢！ Checked in — thank you!",
  200: "您刚才已签到过。 You already checked in here a moment ago.",
  429: "签到过于频繁，请稍后再试。 Too many check-ins; please try later."}};
async function checkIn(type) {{
  buttons.forEach(b => b.disabled = true);
  try {{
    const r = await fetch(url, {{method: "POST", credentials: "same-origin",
      headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify(type ? {{worker_type: type}} : {{}})}});
    msg.textContent = say[r.status] || ("签到失败 Check-in failed: " +
      ((await r.json()).error || {{}}).message);
  }} catch (e) {{
    msg.textContent = "网络错误，请重试。 Network error; please retry.";
    buttons.forEach(b => b.disabled = false);
  }}
}}
buttons.forEach(b => b.addEventListener("click", () => checkIn(b.dataset.type)));
</script></body></html>
"""
_INTRO = ("<p>请选择您的工种后签到。不记录姓名、电话或位置。<br>"
          "Tap your work to check in. No name, phone or location is kept.</p>")
_CLOSED = ("<p>本站点目前不接受签到（{status}）。<br>"
           "This station is not taking check-ins ({status}).</p>")


def checkin_page(station: dict[str, Any], post_url: str, app_url: str | None = None) -> str:
    """The self-contained check-in page (no external assets), Chinese and English.

    ``app_url`` links the station's page in the courier app (details, navigation,
    reports): the QR code on the wall is how many workers first meet the app.
    """
    if station["status"] in OPERATIONAL:
        buttons = "".join(
            f'<button type="button" data-type="{key}">{zh} {html.escape(en)}</button>'
            for key, (zh, en) in WORKER_TYPE_LABELS.items())
        skip = '<button type="button" data-type="">跳过，直接签到 Skip — just check in</button>'
        body = _INTRO + buttons + skip
    else:
        body = _CLOSED.format(status=html.escape(station["status"]))
    app_link = (f'<p><a href="{html.escape(app_url)}">站点详情、导航与反馈 · Station details, '
                'navigation and reports</a></p>' if app_url else "")
    return _PAGE.format(name=html.escape(station["name"]), body=body,
                        post_url=json_for_html(post_url), app_link=app_link)


async def station_checkin_page(conn: AsyncConnection[Any], code: str, post_url: str,
                               app_url: str | None = None) -> str:
    """The page of a known station (404 naming ``code`` otherwise)."""
    return checkin_page(await station_ref(conn, code), post_url, app_url)


async def checkin_link(conn: AsyncConnection[Any], code: str, url: str) -> dict[str, Any]:
    """A known station's check-in link ``url`` with its QR code (drawn off the event loop)."""
    await station_ref(conn, code)
    return {"station": code, "url": url, "qr_svg": await asyncio.to_thread(qr_svg, url)}
