"""Photos of stations, inspections and worker reports: stored once, attached many times.

An upload is processed (:mod:`geo_service.photos.images`: checked, turned upright,
metadata dropped, re-encoded, a thumbnail made) off the event loop, its two files
written to the store (:mod:`geo_service.infra.photo_store`) in a worker thread, and
only then recorded in ``photo``; a failure between the two leaves a file nobody
points at, never a row whose file is missing.

Who sees what. A photo uploaded with a key or by a signed-in person is public: its
URL is published in the station's photo list, the exports and the GeoJSON. A photo
a worker sent with a report shows where that worker stood and may show people, so it
is kept private (served only to staff) until a clerk approves it; a rejected one
stays private.

Station photo writes go through the station's area check (a key or a person scoped
to an area touches only stations inside it) and the audit trail (who added, moved or
removed which photo).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.audit import set_actor
from geo_service.domain.errors import Busy, Forbidden, NotFound, PayloadTooLarge, invalid
from geo_service.domain.principal import Principal
from geo_service.infra.photo_store import JPEG_TYPE, PhotoStore
from geo_service.infra.settings import Settings
from geo_service.photos import images
from geo_service.photos import queries as q
from geo_service.stations.service import begin_station_write, in_scope

KINDS = ("exterior", "interior", "other")
KIND_ZH = {"exterior": "外观", "interior": "室内", "other": "其他"}
SHA_PATTERN = r"^[0-9a-f]{64}$"
#: The most photos one request may carry with an inspection (the console's form posts
#: them with it; the body limit of that path is this many photos' limit).
INSPECTION_MAX_PHOTOS = 4
_SHA = re.compile(SHA_PATTERN)


class Slots:
    """How many uploads this process decodes at once (``GEO_PHOTO_CONCURRENCY``).

    Decoding a 40-megapixel photo takes a second or more of CPU and about half a
    gigabyte while it lasts; past the limit an upload is refused at once with 429 and
    ``Retry-After`` (as poster PDFs and XLSX exports are) rather than queued holding a
    socket and its body. One event loop: no ``await`` between the check and the count.
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.busy = limit, 0

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        if self.busy >= self.limit:
            raise Busy(f"{self.limit} photos are being processed; retry in "
                       f"{Busy.retry_after} s", [("file", "busy: retry later")])
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1


@dataclass(frozen=True)
class PhotoWork:
    """What an upload needs beside its bytes: the store, the limits, the decoding slots
    (one per app, on ``app.state.photos``; the command line builds its own)."""

    store: PhotoStore
    limits: images.Limits
    slots: Slots


def photo_work(settings: Settings, store: PhotoStore) -> PhotoWork:
    return PhotoWork(store=store, slots=Slots(settings.photo_concurrency), limits=images.Limits(
        max_bytes=settings.photo_max_bytes, max_pixels=settings.photo_max_pixels,
        quality=settings.photo_jpeg_quality, thumb_px=settings.photo_thumb_px))


def too_large(limit: int, field: str = "file") -> PayloadTooLarge:
    """An upload past ``GEO_PHOTO_MAX_BYTES``, found while reading it (read with a cap)."""
    return PayloadTooLarge(f"图片太大 (photo too large): more than {limit:,} bytes",
                           [(field, f"图片太大 / larger than {limit:,} bytes")])


def photo_path(sha: str) -> str:
    """The photo's path on this service (``/v1/photos/<sha>.jpg``)."""
    return f"/v1/photos/{sha}.jpg"


def thumb_path(sha: str) -> str:
    return f"/v1/photos/{sha}/thumb.jpg"


def is_sha(value: str) -> bool:
    return bool(_SHA.fullmatch(value))


async def _rows(conn: AsyncConnection[Any], query: str,
                params: dict[str, Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


def _put(store: PhotoStore, done: images.Processed) -> None:
    store.put(done.thumb_sha, done.thumb, JPEG_TYPE)
    store.put(done.sha, done.data, JPEG_TYPE)


async def store_upload(conn: AsyncConnection[Any], work: PhotoWork, data: bytes, *,
                       public: bool, field: str = "file",
                       client: str | None = None) -> dict[str, Any]:
    """Process ``data``, keep its files, record it; the photo's row (``public`` as asked,
    or already public). The same picture twice is one row and one file. ``client``: the
    keyed hash of a worker's address, for the hourly limit of keyless uploads."""
    with work.slots.take():
        done = await asyncio.to_thread(images.process, data, work.limits, field)
    await asyncio.to_thread(_put, work.store, done)
    rows = await _rows(conn, q.UPSERT_PHOTO, {
        "sha": done.sha, "thumb_sha": done.thumb_sha, "width": done.width,
        "height": done.height, "bytes": len(done.data), "public": public,
        "client": client})
    return public_photo(rows[0])


def public_photo(row: dict[str, Any]) -> dict[str, Any]:
    """A photo row as the API shows it: its hash, size, and where to fetch it."""
    sha = row["sha"]
    return {"sha": sha, "url": photo_path(sha), "thumb_url": thumb_path(sha),
            "width": row["width"], "height": row["height"], "bytes": row["bytes"]}


def station_photo(code: str, row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "station_code": code, "kind": row["kind"],
            "position": row["position"], **public_photo(row),
            "uploaded_by": row["uploaded_by"], "created_at": row["created_at"]}


async def _station(conn: AsyncConnection[Any], code: str) -> dict[str, Any]:
    rows = await _rows(conn, q.STATION, {"code": code})
    if not rows:
        raise NotFound(f"no station {code!r}", [("code", "unknown station code")])
    return rows[0]


async def scoped_station(conn: AsyncConnection[Any], principal: Principal,
                         code: str) -> dict[str, Any]:
    """The station, if the key's (or person's) area contains it: 404 unknown, 403 outside."""
    station = await _station(conn, code)
    if not await in_scope(conn, principal, station):
        raise Forbidden(
            f"this key is limited to area {principal.area_code}; station {code} is outside it",
            [("code", f"outside the key's area {principal.area_code}")])
    return station


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise invalid("kind", "must be exterior, interior or other (外观、室内、其他)")
    return kind


async def add_station_photo(conn: AsyncConnection[Any], work: PhotoWork, principal: Principal,
                            code: str, data: bytes, kind: str) -> tuple[dict[str, Any], bool]:
    """Attach an uploaded photo to station ``code``; (the photo, whether it was added).

    The area is checked before the upload is decoded (no CPU spent for a refusal);
    the same picture already on the station is answered, not added twice.
    """
    check_kind(kind)
    station = await scoped_station(conn, principal, code)
    photo = await store_upload(conn, work, data, public=True)
    async with conn.transaction():
        await begin_station_write(conn, principal)
        params = {"station_id": station["id"], "sha": photo["sha"]}
        same = await _rows(conn, q.SAME_STATION_PHOTO, params)
        if same:
            return station_photo(station["code"], same[0]), False
        rows = await _rows(conn, q.INSERT_STATION_PHOTO, {
            **params, "kind": kind, "uploaded_by": principal.name,
            "key_id": principal.key_id, "user_id": principal.user_id})
        if kind == "exterior":
            await conn.execute(q.BUMP_STATION, params)
    return station_photo(station["code"], rows[0]), True


async def list_station_photos(conn: AsyncConnection[Any], code: str) -> dict[str, Any]:
    station = await _station(conn, code)
    rows = await _rows(conn, q.LIST_STATION_PHOTOS, {"station_id": station["id"]})
    photos = [station_photo(station["code"], r) for r in rows]
    return {"station_code": station["code"], "photos": photos, "count": len(photos)}


def _no_photo(code: str, photo_id: int) -> NotFound:
    return NotFound(f"station {code} has no photo {photo_id}",
                    [("photo_id", "no such photo at this station")])


async def delete_station_photo(conn: AsyncConnection[Any], principal: Principal, code: str,
                               photo_id: int) -> None:
    """Soft delete: the row keeps who removed it and when (audit); the file stays, since
    other stations, inspections or caches may hold the same bytes."""
    station = await scoped_station(conn, principal, code)
    params = {"id": photo_id, "station_id": station["id"]}
    async with conn.transaction():
        await begin_station_write(conn, principal)
        kind = await _rows(conn, q.KIND_OF, params)
        if not kind:
            raise _no_photo(code, photo_id)
        await conn.execute(q.SOFT_DELETE, params)
        if kind[0]["kind"] == "exterior":
            await conn.execute(q.BUMP_STATION, params)


async def set_kind(conn: AsyncConnection[Any], principal: Principal, code: str,
                   photo_id: int, kind: str) -> dict[str, Any]:
    """Give a photo another kind; ``exterior`` puts it first of the exterior photos (the
    one the exports publish), any other kind last of its kind."""
    check_kind(kind)
    station = await scoped_station(conn, principal, code)
    params = {"id": photo_id, "station_id": station["id"], "kind": kind}
    async with conn.transaction():
        await begin_station_write(conn, principal)
        before = await _rows(conn, q.KIND_OF, params)
        if not before:
            raise _no_photo(code, photo_id)
        rows = await _rows(conn, q.SET_EXTERIOR if kind == "exterior" else q.SET_KIND, params)
        if "exterior" in (kind, before[0]["kind"]):
            await conn.execute(q.BUMP_STATION, params)
    return station_photo(station["code"], rows[0])


async def photo_row(conn: AsyncConnection[Any], sha: str) -> dict[str, Any] | None:
    rows = await _rows(conn, q.PHOTO, {"sha": sha})
    return rows[0] if rows else None


async def may_see_private(conn: AsyncConnection[Any], sha: str,
                          principal: Principal) -> bool:
    """Whether staff may see a private (pending or rejected report) photo: only where a
    report carrying it is on a station in their area, since it shows where a worker
    stood."""
    rows = await _rows(conn, q.PRIVATE_IN_SCOPE, {"sha": sha, "scope": principal.area_code})
    return bool(rows and rows[0]["exists"])


async def check_known(conn: AsyncConnection[Any], shas: list[str], field: str) -> None:
    """Every hash must be a stored photo; else 422 naming ``field``."""
    if not shas:
        return
    found = {r["sha"] for r in await _rows(conn, q.KNOWN_SHAS, {"shas": shas})}
    missing = [s for s in shas if s not in found]
    if missing:
        raise invalid(field, f"no uploaded photo {missing[0]} (upload it with POST /v1/photos "
                             "first)")


async def attach_to_inspection(conn: AsyncConnection[Any], inspection_id: int,
                               shas: list[str]) -> None:
    """Record the inspection's uploaded photos, in order (inside its transaction)."""
    if shas:
        await conn.execute(q.INSERT_INSPECTION_PHOTOS,
                           {"inspection_id": inspection_id, "shas": shas})


async def attach_to_report(conn: AsyncConnection[Any], report_id: int, sha: str) -> None:
    """A worker report's one photo, pending a clerk's approval."""
    await conn.execute(q.INSERT_REPORT_PHOTO, {"report_id": report_id, "sha": sha})


async def pending_report_photos(conn: AsyncConnection[Any], principal: Principal,
                                limit: int = 100) -> dict[str, Any]:
    """Worker-report photos waiting for a clerk in the clerk's area, oldest first."""
    rows = await _rows(conn, q.PENDING_REPORT_PHOTOS,
                       {"scope": principal.area_code, "limit": limit})
    photos = [{**r, "url": photo_path(r["sha"]), "thumb_url": thumb_path(r["sha"])}
              for r in rows]
    return {"photos": photos, "count": len(photos)}


async def decide_report_photo(conn: AsyncConnection[Any], principal: Principal,
                              report_id: int, approve: bool) -> None:
    """Approve (publish) or reject a pending report photo within the clerk's area."""
    async with conn.transaction():
        await set_actor(conn, principal)
        rows = await _rows(conn, q.DECIDE_REPORT_PHOTO, {
            "report_id": report_id, "approve": approve, "by": principal.name,
            "scope": principal.area_code})
    if not rows:
        raise NotFound(f"no pending photo of report {report_id} in your area",
                       [("report_id", "no pending photo (decided already, or outside "
                                      "your area)")])


async def exterior_shas(conn: AsyncConnection[Any], station_ids: list[int]) -> dict[int, str]:
    """Each station's first exterior photo, for the exports and the GeoJSON."""
    if not station_ids:
        return {}
    rows = await _rows(conn, q.EXTERIOR_OF, {"ids": station_ids})
    return {int(r["station_id"]): r["sha"] for r in rows}
