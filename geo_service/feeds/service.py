"""Rules of the feeds room: streamed snapshots, change-feed pages, the status feed,
the platform export files.

Functions take a psycopg connection (or a way to get one) and plain values and
return plain data or byte chunks; the router adds HTTP. The national GeoJSON
feed and the exports are read in keyset batches, each on a connection taken
for it and given back before the batch is used, so memory stays flat however
many stations there are and no connection waits on a client or on encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, aclosing
from typing import IO, Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.encoding import dumps
from geo_service.domain.errors import Busy
from geo_service.domain.params import decode_cursor, encode_cursor
from geo_service.feeds import queries as q
from geo_service.feeds.export_formats import Platform, XlsxExport, csv_header, csv_rows
from geo_service.feeds.features import SAMPLE_NOTE, change_entry, station_features, utc_iso
from geo_service.infra.settings import Settings

#: Rows per keyset batch of a streamed feed or an export (one short statement each).
BATCH_ROWS = 2000


def minute_of(now: dt.datetime) -> dt.datetime:
    """The whole minute open-now values are computed for (hours are minute-granular)."""
    return now.astimezone(dt.UTC).replace(second=0, microsecond=0)


#: Where a batch reads from: a pool's ``connection`` (the API: each batch takes a
#: connection and gives it back) or one connection kept by the caller (the CLI).
Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection[Any]]]
#: Feed rows in batches, as :func:`published_batches` yields them.
Batches = AsyncGenerator[list[dict[str, Any]], None]


async def published_batches(
    connect: Connect, *, area: str | None, bbox: list[float] | None, at: dt.datetime,
    batch_rows: int = BATCH_ROWS, photo_base: str | None = None,
) -> Batches:
    """Published stations (open or temporarily closed) by id, in batches.

    Each batch is one short statement after the previous batch's last id
    (keyset), on a connection taken for it and given back before the batch is
    yielded: a consumer that stops (a client that does not read, a workbook
    being written) holds no connection and no transaction. A station written
    during the read is seen once, as its batch found it; the caller's ETag
    names the state at the start, so the next poll fetches again. The CLI
    passes one connection in a REPEATABLE READ transaction for one snapshot.
    """
    after = 0
    while True:
        async with connect() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(q.PUBLISHED_BATCH, {"area": area, "bbox": bbox, "at": at,
                                                  "after": after, "limit": batch_rows,
                                                  "photo_base": photo_base})
            rows = await cur.fetchall()
        if rows:
            yield rows
        if len(rows) < batch_rows:
            return
        after = rows[-1]["station_id"]


def _features_json(rows: list[dict[str, Any]]) -> bytes:
    return b",".join(dumps(f) for f in station_features(rows))


async def stream_feature_collection(
    batches: Batches, *, at: dt.datetime,
    generated_at: dt.datetime, roads_extract_date: str | None = None,
) -> AsyncIterator[bytes]:
    """A FeatureCollection of the published stations, written as it is read.

    ``batches`` is :func:`published_batches` on the pool, so at most
    :data:`BATCH_ROWS` rows are in memory and no connection waits while the
    client reads. Encoding a batch takes tens of milliseconds, so it runs in a
    thread rather than stalling other requests.
    ``roads_extract_date`` is the date of the road network's OpenStreetMap extract
    that distances by road come from (null: no roads loaded).
    """
    head = {"type": "FeatureCollection", "generated_at": utc_iso(generated_at),
            "open_now_at": utc_iso(at), "note": SAMPLE_NOTE,
            "roads_extract_date": roads_extract_date}
    yield dumps(head)[:-1] + b',"features":['
    first = True
    async with aclosing(batches):
        async for rows in batches:
            chunk = await asyncio.to_thread(_features_json, rows)
            yield chunk if first else b"," + chunk
            first = False
    yield b"]}"


async def changes_page(
    conn: AsyncConnection[Any], *, since: str | None, limit: int, at: dt.datetime,
    photo_base: str | None = None,
) -> dict[str, Any]:
    """Every station changed after the cursor, in change order, one page.

    One statement, one snapshot: because change numbers are drawn in commit
    order, what it sees is a prefix of all changes, so the next page starting
    at the returned cursor cannot miss a write that commits later.
    """
    (after,) = decode_cursor(since, "since")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.CHANGES, {"after": after, "limit": limit + 1, "at": at,
                                      "photo_base": photo_base})
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
    batches: Batches, platform: Platform,
) -> AsyncGenerator[bytes, None]:
    """The CSV export as byte chunks: BOM and header, then one chunk per batch.

    A batch takes ~20 ms to convert and encode, so that runs in a thread: on
    the event loop it would add as much to every concurrent request's latency.
    """
    yield csv_header(platform)
    async with aclosing(batches):
        async for rows in batches:
            yield await asyncio.to_thread(csv_rows, rows, platform)


class BuildSlots:
    """How many XLSX exports this process builds at once (``export_xlsx_concurrency``),
    the API's and the console's together.

    A workbook is seconds of CPU in openpyxl: eight built together took 18–23 s
    each, on the same cores every other request needs. Past the limit an export
    is refused at once with 429 and ``Retry-After`` rather than queued: a
    waiting client would hold a socket and a task for nothing it cannot get by
    asking again. CSV is not limited: it is paced by its reader and holds
    nothing between batches.
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.busy = limit, 0

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        """A slot for one build, or :class:`Busy` (no ``await`` in between: one loop)."""
        if self.busy >= self.limit:
            raise Busy(f"{self.limit} XLSX exports are being built; retry in "
                       f"{Busy.retry_after} s, or ask for csv",
                       [("fmt", "xlsx exports are busy; retry later or use csv")])
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1


def xlsx_slots_of(state: Any, settings: Settings) -> BuildSlots:
    """The app's XLSX build slots (``app.state.xlsx_slots``), made on first use."""
    slots: BuildSlots | None = getattr(state, "xlsx_slots", None)
    if slots is None:
        slots = state.xlsx_slots = BuildSlots(settings.export_xlsx_concurrency)
    return slots


async def write_xlsx(
    batches: Batches, platform: Platform, out: IO[bytes], *,
    area: str | None, bbox: list[float] | None, generated_at: dt.datetime,
    filters: Mapping[str, Any] | None = None, selection: str | None = None,
) -> XlsxExport:
    """Write the XLSX export to ``out``; openpyxl runs in a thread, batch by batch.

    With ``batches`` from :func:`published_batches` on the pool, no connection is
    held while a batch is written (seconds of CPU for a large export). ``filters``
    and ``selection`` (which stations the file holds) are what its README sheet says
    when the rows are not the published stations of ``area``/``bbox`` (the console's
    filtered list).
    """
    if filters is None:
        filters = {"area": area, "bbox": bbox and ",".join(map(str, bbox))}
    book = await asyncio.to_thread(XlsxExport, platform, generated_at, filters, selection)
    try:
        async with aclosing(batches):
            async for rows in batches:
                await asyncio.to_thread(book.append, rows)
    except Exception:  # refused or failed: leave no temporary file behind
        book.discard()
        raise
    await asyncio.to_thread(book.save, out)
    return book
