"""API keys: ``gs_<prefix>_<secret>`` bearer tokens, stored as SHA-256 of the secret.

Secrets are 32 random bytes, so a fast hash is enough (no password stretching
needed); comparison is constant-time. The prefix is stored in clear to find
the row without scanning.

A key lives until it is revoked or its optional expiry passes; either way its
next request gets a 401. A key issued with a key (over the API) ends no later
than the issuing key does, by expiry or at the end of its grace period: the
expiry is clamped to that, not refused (the answer's ``expires_at`` says so),
so a key that is about to end cannot hand out longer-lived ones. Rotation
issues a new key with the same name, role, area and end, and retires the old
one at once or after a grace period so the clients using it can switch. A
rotation leaves one live key in the key's line (the keys linked by
``replaces_id``): the new one. Every other key of the line retires when the
rotated key does, and a second rotation during a grace period can shorten that
grace, never lengthen it. ``last_used_at`` is refreshed at most once a
minute (a write per request would cost more than many requests), committed on
its own before the request's work and skipped while another transaction has
the key's row: a threaded route runs in one transaction, and a refresh inside
it held the row for the whole route, so every other request with the key
queued on it holding a pooled connection until the pool ran dry (issue 24).
Every change to a key lands in the audit trail (the secret hash never does).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import re
import secrets
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from geo_service.domain.audit import SET_ACTOR, actor_json
from geo_service.domain.errors import Forbidden, NotFound, StateConflict, Unauthorized, invalid
from geo_service.domain.principal import Principal

#: admin and editor write stations (optionally within an area); an inspector
#: records inspections for stations in its area.
ROLES = ("admin", "editor", "inspector")
#: ``last_used_at`` is written at most this often per key.
TOUCH_EVERY = dt.timedelta(minutes=1)
#: The longest life a key may be given.
MAX_LIFETIME = dt.timedelta(days=3660)

_COLUMNS = ("id, prefix, name, role, area_code, created_at, expires_at, last_used_at, "
            "revoked_at, replaces_id")
_FIND = f"SELECT {_COLUMNS}, secret_hash FROM api_key WHERE prefix = %(prefix)s"
# SKIP LOCKED: a row another transaction holds (a rotation, a revocation) is left for the
# next request rather than waited on; recording use is never worth a wait.
_TOUCH = """
UPDATE api_key SET last_used_at = now()
WHERE id = (SELECT id FROM api_key WHERE id = %(id)s FOR NO KEY UPDATE SKIP LOCKED)
"""
_INSERT = """
INSERT INTO api_key (prefix, secret_hash, name, role, area_code, expires_at, replaces_id)
VALUES (%(prefix)s, %(secret_hash)s, %(name)s, %(role)s, %(area_code)s, %(expires_at)s,
        %(replaces_id)s)
RETURNING id
"""
# Keys an admin may manage: all, or those limited to its area or an area below it.
_MANAGED = f"""
SELECT {_COLUMNS} FROM api_key k
WHERE (%(scope)s::text IS NULL OR geo_area_within(k.area_code, %(scope)s))
  AND (%(id)s::int IS NULL OR k.id = %(id)s)
ORDER BY k.id
"""
_WITHIN = "SELECT geo_area_within(%(area)s, %(scope)s)"
_REVOKE = "UPDATE api_key SET revoked_at = %(at)s WHERE id = %(id)s"
# Serialises rotations of one key; NO KEY: rows being written that refer to the key (an
# inspection, a resolution) take KEY SHARE on it and need not wait.
_LOCK = "SELECT 1 FROM api_key WHERE id = %(id)s FOR NO KEY UPDATE"
# The key's whole line: its ancestors, then everything that replaced any of them. Each
# still working after ``at`` retires at ``at`` (an earlier end is kept).
_RETIRE_LINE = """
WITH RECURSIVE up AS (
    SELECT id, replaces_id FROM api_key WHERE id = %(id)s
    UNION
    SELECT k.id, k.replaces_id FROM api_key k JOIN up ON k.id = up.replaces_id
), line AS (
    SELECT id FROM up
    UNION
    SELECT k.id FROM api_key k JOIN line ON k.replaces_id = line.id
)
UPDATE api_key SET revoked_at = %(at)s
WHERE id IN (SELECT id FROM line)
  AND (revoked_at IS NULL OR revoked_at > %(at)s)
  AND (expires_at IS NULL OR expires_at > %(at)s)
"""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_area(conn: psycopg.Connection[Any], principal: Principal | None,
               area_code: str | None, what: str = "keys") -> None:
    """The new key's (or account's) area exists and lies within the issuing admin's own
    area: the one rule for both, so an admin's reach is the same by key or in person."""
    if area_code is not None:
        found = conn.execute("SELECT 1 FROM admin_area WHERE code = %s", (area_code,)).fetchone()
        if found is None:
            raise invalid("area_code", f"unknown admin area {area_code!r}")
    scope = principal.area_code if principal else None
    if scope is not None:
        row = conn.execute(_WITHIN, {"area": area_code, "scope": scope}).fetchone()
        if not (row and row[0]):
            raise Forbidden(f"this {_whose(principal)} is limited to area {scope}; it can only "
                            f"issue {what} limited to that area or an area within it",
                            [("area_code", f"outside the {_whose(principal)}'s area {scope}")])


def _whose(principal: Principal | None) -> str:
    return "account" if principal is not None and principal.user_id is not None else "key"


def _public(row: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """A key as listed: never its hash; ``state`` says whether it still works."""
    key = {k: row[k] for k in _COLUMNS.split(", ")}
    key["state"] = ("revoked" if row["revoked_at"] and row["revoked_at"] <= now
                    else "expired" if row["expires_at"] and row["expires_at"] <= now
                    else "active")
    return key


def _ends(row: dict[str, Any]) -> dt.datetime | None:
    """When a working key stops: its expiry or a revocation set for later, the earlier."""
    return min((t for t in (row["expires_at"], row["revoked_at"]) if t is not None),
               default=None)


def _no_later_than(expires_at: dt.datetime | None,
                   principal: Principal | None) -> dt.datetime | None:
    """``expires_at`` clamped to the issuing key's own end (None: never expires)."""
    ends = principal.ends_at if principal else None
    if ends is None:
        return expires_at
    return ends if expires_at is None else min(expires_at, ends)


def _lifetime(expires_in: dt.timedelta | None) -> dt.datetime | None:
    if expires_in is None:
        return None
    if not dt.timedelta(minutes=1) <= expires_in <= MAX_LIFETIME:
        raise invalid("expires_in", f"must be between 1 minute and {MAX_LIFETIME.days} days")
    return dt.datetime.now(dt.UTC) + expires_in


def issue_key(conn: psycopg.Connection[Any], *, name: str, role: str,
              area_code: str | None = None, expires_in: dt.timedelta | None = None,
              principal: Principal | None = None,
              replaces_id: int | None = None) -> tuple[str, dict[str, Any]]:
    """Store a new key; returns the token (shown once, never stored) and the key as listed.

    ``principal`` is the admin issuing it (None: the command line): a scoped
    admin issues keys only within its own area, and an admin's key that ends
    makes keys that end no later (see the module docstring).
    """
    return _store(conn, name=name, role=role, area_code=area_code, principal=principal,
                  expires_at=_no_later_than(_lifetime(expires_in), principal),
                  replaces_id=replaces_id)


def _store(conn: psycopg.Connection[Any], *, name: str, role: str, area_code: str | None,
           expires_at: dt.datetime | None, principal: Principal | None,
           replaces_id: int | None) -> tuple[str, dict[str, Any]]:
    if role not in ROLES:
        raise invalid("role", f"must be one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 100 or "\x00" in name:
        raise invalid("name", "1 to 100 characters, no NUL")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with conn.transaction():
        conn.execute(SET_ACTOR, (actor_json(principal),))
        check_area(conn, principal, area_code)
        row = conn.execute(_INSERT, {
            "prefix": prefix, "secret_hash": _hash(secret), "name": name, "role": role,
            "area_code": area_code, "expires_at": expires_at,
            "replaces_id": replaces_id}).fetchone()
        assert row is not None
        key = get_key(conn, row[0], principal)
    return f"gs_{prefix}_{secret}", key


def create_key(conn: psycopg.Connection[Any], *, name: str, role: str,
               area_code: str | None = None, expires_in: dt.timedelta | None = None) -> str:
    """Store a new key and return the token; the token itself is never stored."""
    return issue_key(conn, name=name, role=role, area_code=area_code, expires_in=expires_in)[0]


def list_keys(conn: psycopg.Connection[Any], principal: Principal | None) -> list[dict[str, Any]]:
    """Every key ``principal`` may manage, oldest first."""
    now = dt.datetime.now(dt.UTC)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_MANAGED, {"scope": principal.area_code if principal else None, "id": None})
        return [_public(r, now) for r in cur.fetchall()]


def get_key(conn: psycopg.Connection[Any], key_id: int,
            principal: Principal | None) -> dict[str, Any]:
    """One key; another area's key is a 404, like an unknown id (ids cannot be probed)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_MANAGED, {"scope": principal.area_code if principal else None,
                               "id": key_id})
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no key {key_id}", [("id", "unknown key")])
    return _public(row, dt.datetime.now(dt.UTC))


def revoke_key(conn: psycopg.Connection[Any], key_id: int,
               principal: Principal | None) -> dict[str, Any]:
    """Retire a key now (a key in its grace period too); its next request is a 401."""
    with conn.transaction():
        conn.execute(SET_ACTOR, (actor_json(principal),))
        key = get_key(conn, key_id, principal)
        if key["state"] == "active":
            conn.execute(_REVOKE, {"id": key_id, "at": dt.datetime.now(dt.UTC)})
        return get_key(conn, key_id, principal)


def rotate_key(conn: psycopg.Connection[Any], key_id: int, principal: Principal | None,
               grace: dt.timedelta = dt.timedelta(0)) -> tuple[str, dict[str, Any]]:
    """A new key with the old one's name, role, area and expiry (no later than the
    rotating key's own end); the old one, and every other key of its line, stops
    working after ``grace`` (at once by default) or sooner if it was to end sooner.

    A key in its grace period rotates too: that shortens the grace (never lengthens
    it) and retires the replacement the earlier rotation made along with it, so a
    line never has more than one live replacement (issue 24, item 7).
    """
    if not dt.timedelta(0) <= grace <= dt.timedelta(days=30):
        raise invalid("grace", "must be between 0 and 30 days")
    with conn.transaction():
        conn.execute(SET_ACTOR, (actor_json(principal),))
        get_key(conn, key_id, principal)  # 404 outside the admin's area, before any lock
        conn.execute(_LOCK, {"id": key_id})  # two rotations at once: one after the other
        old = get_key(conn, key_id, principal)
        if old["state"] != "active":
            raise StateConflict(f"key {key_id} is {old['state']}; only an active key rotates",
                                [("id", f"{old['state']} key")])
        retire = dt.datetime.now(dt.UTC) + grace
        conn.execute(_RETIRE_LINE, {"id": key_id, "at": min(retire, _ends(old) or retire)})
        token, new = _store(conn, name=old["name"], role=old["role"],
                            area_code=old["area_code"], principal=principal,
                            expires_at=_no_later_than(old["expires_at"], principal),
                            replaces_id=key_id)
    return token, new


_DURATION = re.compile(r"^\s*([0-9]{1,5})\s*([mhdw])\s*$")


def parse_duration(text: str, field: str) -> dt.timedelta:
    """``90d``, ``12h``, ``30m``, ``2w`` → a timedelta; anything else is a 422 naming ``field``."""
    m = _DURATION.match(text)
    if not m:
        raise invalid(field, "a number and a unit m, h, d or w, e.g. 90d")
    unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
    return dt.timedelta(**{unit: int(m.group(1))})


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


def _principal(row: dict[str, Any] | None, secret: str) -> tuple[Principal, bool]:
    """The key's principal and whether its ``last_used_at`` is due a refresh; 401 when the
    secret is wrong or the key revoked or expired."""
    if row is None or not hmac.compare_digest(row["secret_hash"], _hash(secret)):
        raise Unauthorized("unknown or revoked API key", [("Authorization", "unknown key")])
    now = dt.datetime.now(dt.UTC)
    state = _public(row, now)["state"]
    if state != "active":
        raise Unauthorized(f"this API key is {state}", [("Authorization", f"{state} key")])
    stale = row["last_used_at"] is None or now - row["last_used_at"] > TOUCH_EVERY
    return Principal(key_id=row["id"], name=row["name"], role=row["role"],
                     area_code=row["area_code"], ends_at=_ends(row)), stale


def _apart(autocommit: bool, status: TransactionStatus) -> tuple[bool, bool]:
    """Whether a refresh of ``last_used_at`` can commit on its own, and whether that needs
    a transaction block of its own: an autocommit connection commits each statement; an
    idle one in a transaction per request (the sync routes') commits a block at its end.
    Inside a transaction already begun, the refresh would last as long as it: skipped."""
    idle = status == TransactionStatus.IDLE
    return idle, idle and not autocommit


async def authenticate(conn: psycopg.AsyncConnection[Any], authorization: str | None) -> Principal:
    """Resolve an ``Authorization: Bearer …`` header to a principal, or refuse with 401."""
    prefix, secret = _split(authorization)
    touch, block = _apart(conn.autocommit, conn.info.transaction_status)
    async with (conn.transaction() if block else contextlib.nullcontext()), \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_FIND, {"prefix": prefix})
        principal, stale = _principal(await cur.fetchone(), secret)
        if stale and touch:
            await cur.execute(_TOUCH, {"id": principal.key_id})
    return principal


def authenticate_sync(conn: psycopg.Connection[Any], authorization: str | None) -> Principal:
    """The same check for endpoints that run in a worker thread (whose request is one
    transaction: the check commits before it, see the module docstring)."""
    prefix, secret = _split(authorization)
    touch, block = _apart(conn.autocommit, conn.info.transaction_status)
    with (conn.transaction() if block else contextlib.nullcontext()), \
            conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_FIND, {"prefix": prefix})
        principal, stale = _principal(cur.fetchone(), secret)
        if stale and touch:
            cur.execute(_TOUCH, {"id": principal.key_id})
    return principal


def require_role(principal: Principal, *roles: str) -> None:
    """403 unless ``principal`` (a key or a signed-in person) has one of ``roles``."""
    if principal.role not in roles:
        raise Forbidden(
            f"this operation needs role {' or '.join(roles)}; the {_whose(principal)} has "
            f"{principal.role}",
            [("Authorization", "role not allowed")],
        )
