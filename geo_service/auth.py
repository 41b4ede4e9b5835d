"""API keys: ``gs_<prefix>_<secret>`` bearer tokens, stored as SHA-256 of the secret.

Secrets are 32 random bytes, so a fast hash is enough (no password stretching
needed); comparison is constant-time. The prefix is stored in clear to find
the row without scanning.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import psycopg
from psycopg.rows import dict_row

from geo_service.errors import Forbidden, Unauthorized, invalid
from geo_service.stations.service import Principal

#: admin and editor write stations (optionally within an area); an inspector
#: records inspections for stations in its area.
ROLES = ("admin", "editor", "inspector")

_FIND = """
SELECT id, name, role, area_code, secret_hash FROM api_key
WHERE prefix = %(prefix)s AND revoked_at IS NULL
"""
_INSERT = """
INSERT INTO api_key (prefix, secret_hash, name, role, area_code)
VALUES (%(prefix)s, %(secret_hash)s, %(name)s, %(role)s, %(area_code)s)
RETURNING id
"""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    conn: psycopg.Connection[Any], *, name: str, role: str, area_code: str | None = None
) -> str:
    """Store a new key and return the token; the token itself is never stored."""
    if role not in ROLES:
        raise invalid("role", f"must be one of {', '.join(ROLES)}")
    if area_code is not None:
        found = conn.execute("SELECT 1 FROM admin_area WHERE code = %s", (area_code,)).fetchone()
        if found is None:
            raise invalid("area_code", f"unknown admin area {area_code!r}")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    conn.execute(
        _INSERT,
        {"prefix": prefix, "secret_hash": _hash(secret), "name": name, "role": role,
         "area_code": area_code},
    )
    return f"gs_{prefix}_{secret}"


def _split(authorization: str | None) -> tuple[str, str]:
    """``Bearer gs_<prefix>_<secret>`` → (prefix, secret), or 401."""
    if not authorization:
        raise Unauthorized("this endpoint needs an API key: Authorization: Bearer <key>",
                           [("Authorization", "missing")])
    scheme, _, token = authorization.partition(" ")
    parts = token.strip().split("_", 2)
    if scheme.lower() != "bearer" or len(parts) != 3 or parts[0] != "gs":
        raise Unauthorized("malformed API key", [("Authorization", "not a bearer API key")])
    return parts[1], parts[2]


def _principal(row: dict[str, Any] | None, secret: str) -> Principal:
    if row is None or not hmac.compare_digest(row["secret_hash"], _hash(secret)):
        raise Unauthorized("unknown or revoked API key", [("Authorization", "unknown key")])
    return Principal(key_id=row["id"], name=row["name"], role=row["role"],
                     area_code=row["area_code"])


async def authenticate(conn: psycopg.AsyncConnection[Any], authorization: str | None) -> Principal:
    """Resolve an ``Authorization: Bearer …`` header to a principal, or refuse with 401."""
    prefix, secret = _split(authorization)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_FIND, {"prefix": prefix})
        return _principal(await cur.fetchone(), secret)


def authenticate_sync(conn: psycopg.Connection[Any], authorization: str | None) -> Principal:
    """The same check for endpoints that run in a worker thread."""
    prefix, secret = _split(authorization)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_FIND, {"prefix": prefix})
        return _principal(cur.fetchone(), secret)


def require_role(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise Forbidden(
            f"this operation needs role {' or '.join(roles)}; the key has {principal.role}",
            [("Authorization", "role not allowed")],
        )
