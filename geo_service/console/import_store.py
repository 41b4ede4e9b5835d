"""The console's import previews, kept server-side until the clerk confirms (migration 0014).

A preview stores the uploaded bytes with its report and fingerprint under a random token
(only its SHA-256 is kept); the confirmation reads the bytes from here, never from the
browser again, and :func:`geo_service.stations.importer.import_bytes` applies them only
if the changes still match the fingerprint. Uploads belong to the account that made them
and expire after :data:`KEEP`; expired ones are deleted whenever a new one is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

#: How long a preview can be confirmed (a clerk checks the preview, not for days).
KEEP = dt.timedelta(hours=2)

_INSERT = """
INSERT INTO import_upload (token_sha256, user_id, filename, format, crs, data, file_sha256,
                           report, fingerprint, expires_at)
VALUES (%(token)s, %(user)s, %(filename)s, %(format)s, %(crs)s, %(data)s, %(sha)s,
        %(report)s, %(fingerprint)s, now() + %(keep)s)
"""
_PURGE = "DELETE FROM import_upload WHERE expires_at < now() - interval '1 day'"
_GET = """
SELECT id, filename, format, crs, data, file_sha256, report, fingerprint, created_at,
       expires_at, applied_at, result, expires_at < now() AS expired
FROM import_upload WHERE token_sha256 = %(token)s AND user_id = %(user)s
"""
_REPORT = """
UPDATE import_upload SET report = %(report)s, fingerprint = %(fingerprint)s, crs = %(crs)s
WHERE id = %(id)s
"""
_APPLIED = "UPDATE import_upload SET applied_at = now(), result = %(result)s WHERE id = %(id)s"


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def fingerprint_of(report: dict[str, Any]) -> str | None:
    preview = report.get("preview")
    return preview["fingerprint"] if preview else None


async def save(conn: AsyncConnection[Any], *, user_id: int, filename: str, fmt: str, crs: str,
               data: bytes, report: dict[str, Any]) -> str:
    """Keep a previewed upload; returns the token for its page's URL."""
    token = secrets.token_urlsafe(24)
    await conn.execute(_PURGE)
    await conn.execute(_INSERT, {
        "token": _hash(token), "user": user_id, "filename": filename[:200], "format": fmt,
        "crs": crs, "data": data, "sha": hashlib.sha256(data).digest(),
        "report": Jsonb(report), "fingerprint": fingerprint_of(report), "keep": KEEP})
    return token


async def load(conn: AsyncConnection[Any], token: str, user_id: int, *,
               lock: bool = False) -> dict[str, Any] | None:
    """The account's upload under ``token`` (locked for a confirmation), or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_GET + (" FOR UPDATE" if lock else ""),
                          {"token": _hash(token), "user": user_id})
        row: dict[str, Any] | None = await cur.fetchone()
    return row


async def replace_report(conn: AsyncConnection[Any], upload_id: int,
                         report: dict[str, Any], crs: str) -> None:
    """A fresh preview of the same bytes (the stations changed since the first, or
    another coordinate system was chosen)."""
    await conn.execute(_REPORT, {"id": upload_id, "report": Jsonb(report), "crs": crs,
                                 "fingerprint": fingerprint_of(report)})


async def mark_applied(conn: AsyncConnection[Any], upload_id: int,
                       result: dict[str, Any]) -> None:
    await conn.execute(_APPLIED, {"id": upload_id, "result": Jsonb(result)})
