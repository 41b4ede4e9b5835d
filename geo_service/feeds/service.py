"""Rules of the feeds room: streamed snapshots, change-feed pages, the status feed,
the platform export files.

Functions take a psycopg connection or pool and plain values and return plain
data or byte chunks; the router adds HTTP. The national GeoJSON export is
streamed from a server-side cursor in batches, so memory stays flat however
many stations there are.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import IO, Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from geo_service.feeds import queries as q
from geo_service.feeds.export_formats import Platform, XlsxExport, csv_header, csv_rows
from geo_service.feeds.features import SAMPLE_NOTE, change_entry, station_features, utc_iso
from geo_service.params import decode_cursor, encode_cursor
from geo_service.responses import dumps

#: Rows per fetch from the server-side cursor of a streamed feed.
BATCH_ROWS = 2000


def minute_of(now: dt.datetime) -> dt.datetime:
    """The whole minute open-now values are computed for (hours are minute-granular)."""
    return now.astimezone(dt.UTC).replace(second=0, microsecond=0)


async def station_batches(
    conn: AsyncConnection[Any], *, area: str | None, bbox: list[float] | None, at: dt.datetime,
) -> AsyncGenerator[list[dict[str, Any]], None]:
    """Published stations (open or temporarily closed) in batches, from a server-side cursor.

    Use it inside ``contextlib.aclosing`` so the cursor and its transaction end
    with the caller, before the connection goes back to the pool.
    """
    async with conn.transaction(), conn.cursor(name="feed", row_factory=dict_row) as cur:
        await cur.execute(q.PUBLISHED_STATIONS, {"area": area, "bbox": bbox, "at": at})
        while rows := await cur.fetchmany(BATCH_ROWS):
            yield rows


def _features_json(rows: list[dict[str, Any]]) -> bytes:
    return b",".join(dumps(f) for f in station_features(rows))


async def stream_feature_collection(
    pool: AsyncConnectionPool[Any], *, area: str | None, bbox: list[float] | None,
    at: dt.datetime, generated_at: dt.datetime,
) -> AsyncIterator[bytes]:
    """A FeatureCollection of the published stations, written as it is read.

    The connection is taken here, not from the request, because the body is
    sent after the endpoint returns; a server-side cursor keeps at most
    :data:`BATCH_ROWS` rows in memory. Encoding a batch takes tens of
    milliseconds, so it runs in a thread rather than stalling other requests.
    """
    head = {"type": "FeatureCollection", "generated_at": utc_iso(generated_at),
            "open_now_at": utc_iso(at), "note": SAMPLE_NOTE}
    yield dumps(head)[:-1] + b',"features":['
    first = True
    async with pool.connection() as conn, aclosing(
        station_batches(conn, area=area, bbox=bbox, at=at)
    ) as batches:
        async for rows in batches:
            chunk = await asyncio.to_thread(_features_json, rows)
            yield chunk if first else b"," + chunk
            first = False
    yield b"]}"


async def changes_page(
    conn: AsyncConnection[Any], *, since: str | None, limit: int, at: dt.datetime,
) -> dict[str, Any]:
    """Every station changed after the cursor, in change order, one page.

    One statement, one snapshot: because change numbers are drawn in commit
    order, what it sees is a prefix of all changes, so the next page starting
    at the returned cursor cannot miss a write that commits later.
    """
    (after,) = decode_cursor(since, "since")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.CHANGES, {"after": after, "limit": limit + 1, "at": at})
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    entries = [change_entry(r) for r in rows]
    last = rows[-1]["change_seq"] if rows else after
    return {
        "since": since,
        "next_cursor": encode_cursor(last),
        "has_more": more,
        "count": len(entries),
        "open_now_at": at,
        "changes": entries,
    }


async def station_status(conn: AsyncConnection[Any], *, at: dt.datetime) -> list[dict[str, Any]]:
    """Open-now and status of every published station: small enough to poll."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.STATION_STATUS, {"at": at})
        rows = await cur.fetchall()
    return [
        {"code": r["code"], "status": r["status"], "open_now": r["open_now"],
         "temporarily_closed": r["status"] == "temporarily_closed", "version": r["version"],
         "updated_at": r["updated_at"]}
        for r in rows
    ]


# --- platform exports (GET /v1/exports/..., geo-service export) ---------------------------


async def csv_chunks(
    conn: AsyncConnection[Any], platform: Platform, *, area: str | None,
    bbox: list[float] | None, at: dt.datetime,
) -> AsyncGenerator[bytes, None]:
    """The CSV export as byte chunks: BOM and header, then one chunk per batch.

    A batch takes ~20 ms to convert and encode, so that runs in a thread: on
    the event loop it would add as much to every concurrent request's latency.
    """
    yield csv_header(platform)
    async with aclosing(station_batches(conn, area=area, bbox=bbox, at=at)) as batches:
        async for rows in batches:
            yield await asyncio.to_thread(csv_rows, rows, platform)


async def write_xlsx(
    conn: AsyncConnection[Any], platform: Platform, out: IO[bytes], *, area: str | None,
    bbox: list[float] | None, generated_at: dt.datetime,
) -> XlsxExport:
    """Write the XLSX export to ``out``; openpyxl runs in a thread, batch by batch."""
    filters: Mapping[str, Any] = {"area": area, "bbox": bbox and ",".join(map(str, bbox))}
    book = await asyncio.to_thread(XlsxExport, platform, generated_at, filters)
    at = minute_of(generated_at)
    try:
        async with aclosing(station_batches(conn, area=area, bbox=bbox, at=at)) as batches:
            async for rows in batches:
                await asyncio.to_thread(book.append, rows)
    except Exception:  # refused or failed: leave no temporary file behind
        book.discard()
        raise
    await asyncio.to_thread(book.save, out)
    return book
