"""Staff accounts: people who sign in to the console, beside the machines' API keys.

An account has the role and area scope of a key (``auth.ROLES``; an area and everything
below it, or the whole country) and becomes the same :class:`Principal` a key does, so
every role and area check treats a person as a key with that role and area, and the
audit trail names the account (``user_id`` and its sign-in name) on every write.

Passwords
    argon2id through argon2-cffi with the library's defaults (RFC 9106's low-memory
    profile: time cost 3, memory 64 MiB, parallelism 4, 16-byte salt, 32-byte hash). A
    stored hash made with other parameters is rehashed at the next good sign-in. At least
    :data:`MIN_PASSWORD` characters (at most :data:`MAX_PASSWORD`: hashing is costly on
    purpose, a megabyte of password should not be). Neither a password nor a session
    token is ever logged or stored in clear.

Sessions
    A 32-byte random token, of which only the SHA-256 is stored (a fast hash is enough
    for 256 random bits). A new token at every sign-in, so a cookie planted before it is
    never promoted (session fixation). A session ends when unused for the idle time, at
    its absolute end, on sign-out (one or all of the account's), when the password changes
    (the other sessions), or at the next request after the account is disabled. Each
    session has its own CSRF secret, compared in constant time.

Sign-in throttling
    After ``lockout_failures`` failed sign-ins in a row an account is locked for
    ``lockout``; a client group (an IPv4 address, an IPv6 /64) is refused after
    ``client_failures`` failures within ``client_window`` whatever names it tries. Every
    failure says the same thing, so the answer never tells whether an account exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from psycopg.rows import dict_row

from geo_service.domain.audit import SET_ACTOR, actor_json
from geo_service.domain.auth import ROLES, check_area
from geo_service.domain.errors import (
    AlreadyExists,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    invalid,
)
from geo_service.domain.principal import Principal

#: The shortest password an account may have (characters).
MIN_PASSWORD = 12
#: The longest (characters): argon2 is slow by design, a huge input is a cheap attack.
MAX_PASSWORD = 256
#: ``last_seen_at`` is written at most this often per session.
TOUCH_EVERY = dt.timedelta(minutes=1)
#: What every failed sign-in says: never whether the account exists or is locked.
SIGN_IN_FAILED = "wrong name or password, or the account is locked for a while"

_HASHER = PasswordHasher()
#: Verified against when the name is unknown, so a miss costs what a hit does.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))

_COLUMNS = ("id, name, display_name, role, area_code, disabled_at, locked_until, "
            "password_changed_at, created_at, updated_at, version")
# Accounts an admin may manage: all, or those of its area and the areas below it.
_MANAGED = f"""
SELECT {_COLUMNS} FROM staff_user u
WHERE (%(scope)s::text IS NULL OR geo_area_within(u.area_code, %(scope)s))
  AND (%(id)s::int IS NULL OR u.id = %(id)s)
ORDER BY u.name
"""
_BY_NAME = f"SELECT {_COLUMNS}, password_hash, failed_count FROM staff_user " \
           "WHERE lower(name) = lower(%(name)s) FOR UPDATE"
_INSERT = """
INSERT INTO staff_user (name, display_name, password_hash, role, area_code)
VALUES (%(name)s, %(display_name)s, %(hash)s, %(role)s, %(area_code)s) RETURNING id
"""
_SET_PASSWORD = """
UPDATE staff_user SET password_hash = %(hash)s, password_changed_at = now(), failed_count = 0,
       locked_until = NULL, updated_at = now(), version = version + 1
WHERE id = %(id)s
"""
_CLIENT_FAILURES = """
SELECT count(*) FROM staff_signin_failure
WHERE client_group = %(client)s AND at > now() - %(window)s::interval
"""
_SESSION = """
SELECT s.id AS session_id, s.user_id, s.created_at, s.last_seen_at, s.expires_at,
       s.csrf_secret, u.name, u.display_name, u.role, u.area_code, u.disabled_at
FROM staff_session s JOIN staff_user u ON u.id = s.user_id
WHERE s.token_hash = %(hash)s
"""


@dataclass(frozen=True)
class Policy:
    """How long sessions last and when sign-ins are refused (the ``GEO_CONSOLE_*``
    settings, handed in: the kernel reads no settings itself)."""

    idle: dt.timedelta = dt.timedelta(minutes=30)
    lifetime: dt.timedelta = dt.timedelta(hours=12)
    lockout_failures: int = 5
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    client_failures: int = 20
    client_window: dt.timedelta = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class Session:
    """A signed-in person: who, as a principal, and the session's CSRF secret."""

    id: int
    principal: Principal
    display_name: str
    csrf: str
    expires_at: dt.datetime


class SignInRefused(Unauthorized):
    """A failed sign-in; the message is the same whatever failed."""

    code = "sign_in_failed"


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def hash_password(password: str, field: str = "password") -> str:
    """The argon2id hash of ``password``, after the length rules (422 naming ``field``)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise invalid(field, f"{MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if "\x00" in password:
        raise invalid(field, "no NUL character")
    return _HASHER.hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_name(name: str, display_name: str) -> None:
    if not 1 <= len(name) <= 64 or not all(c.isalnum() or c in "._-@" for c in name):
        raise invalid("name", "1 to 64 letters, digits or . _ - @")
    if not display_name.strip() or len(display_name) > 100 or "\x00" in display_name:
        raise invalid("display_name", "1 to 100 characters, no NUL")


def create_user(conn: psycopg.Connection[Any], *, name: str, role: str, password: str,
                display_name: str | None = None, area_code: str | None = None,
                principal: Principal | None = None) -> dict[str, Any]:
    """Store a new account; ``principal`` is the admin creating it (None: the command
    line), who can only create accounts within its own area, as with keys."""
    display_name = display_name or name
    _check_name(name, display_name)
    if role not in ROLES:
        raise invalid("role", f"must be one of {', '.join(ROLES)}")
    hashed = hash_password(password)
    with conn.transaction():
        conn.execute(SET_ACTOR, (actor_json(principal),))
        check_area(conn, principal, area_code, "accounts")
        if conn.execute("SELECT 1 FROM staff_user WHERE lower(name) = lower(%s)",
                        (name,)).fetchone():
            raise AlreadyExists(f"an account named {name!r} exists", [("name", "taken")])
        row = conn.execute(_INSERT, {"name": name, "display_name": display_name,
                                     "hash": hashed, "role": role,
                                     "area_code": area_code}).fetchone()
        assert row is not None
        return get_user(conn, row[0], principal)


def list_users(conn: psycopg.Connection[Any],
               principal: Principal | None) -> list[dict[str, Any]]:
    """Every account ``principal`` may manage, by name."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_MANAGED, {"scope": principal.area_code if principal else None, "id": None})
        return cur.fetchall()


def get_user(conn: psycopg.Connection[Any], user_id: int,
             principal: Principal | None) -> dict[str, Any]:
    """One account; another area's is a 404, like an unknown id (ids cannot be probed)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_MANAGED, {"scope": principal.area_code if principal else None,
                               "id": user_id})
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no account {user_id}", [("id", "unknown account")])
    return row


def user_id_by_name(conn: psycopg.Connection[Any], name: str) -> int:
    """The id of the account named ``name`` (any case), for the command line."""
    row = conn.execute("SELECT id FROM staff_user WHERE lower(name) = lower(%s)",
                       (name,)).fetchone()
    if row is None:
        raise NotFound(f"no account named {name!r}", [("name", "unknown account")])
    return int(row[0])


def _managed_other(conn: psycopg.Connection[Any], user_id: int,
                   principal: Principal | None) -> dict[str, Any]:
    """The account, if ``principal`` manages it and it is not ``principal``'s own (an admin
    does not disable or reset itself here: it would lock itself out, or skip the current
    password that a change of its own needs)."""
    user = get_user(conn, user_id, principal)
    if principal is not None and principal.user_id == user_id:
        raise Forbidden("use the password page for your own account",
                        [("id", "your own account")])
    return user


def disable_user(conn: psycopg.Connection[Any], user_id: int,
                 principal: Principal | None) -> dict[str, Any]:
    """Disable an account now: its sessions end (their next request signs nobody in)."""
    with conn.transaction():
        conn.execute(SET_ACTOR, (actor_json(principal),))
        user = _managed_other(conn, user_id, principal)
        if user["disabled_at"] is None:
            conn.execute("UPDATE staff_user SET disabled_at = now(), updated_at = now(), "
                         "version = version + 1 WHERE id = %s", (user_id,))
        conn.execute("DELETE FROM staff_session WHERE user_id = %s", (user_id,))
        return get_user(conn, user_id, principal)


def reset_password(conn: psycopg.Connection[Any], user_id: int, principal: Principal | None,
                   password: str | None = None) -> tuple[str, dict[str, Any]]:
    """Give an account a new password (``password``, or a random one to hand over once);
    its sessions end and a lockout is lifted. Returns the password and the account."""
    password = password or secrets.token_urlsafe(12)
    hashed = hash_password(password)
    with conn.transaction():
        conn.execute(SET_ACTOR, (actor_json(principal),))
        _managed_other(conn, user_id, principal)
        conn.execute(_SET_PASSWORD, {"hash": hashed, "id": user_id})
        conn.execute("DELETE FROM staff_session WHERE user_id = %s", (user_id,))
        return password, get_user(conn, user_id, principal)


def change_password(conn: psycopg.Connection[Any], session: Session, current: str,
                    new: str) -> None:
    """The signed-in person's own change: the current password first; every other
    session of the account ends (this one stays)."""
    with conn.transaction():
        conn.execute(SET_ACTOR, (actor_json(session.principal),))
        row = conn.execute("SELECT password_hash FROM staff_user WHERE id = %s FOR UPDATE",
                           (session.principal.user_id,)).fetchone()
        if row is None or not _verify(row[0], current):
            raise Forbidden("the current password is wrong",
                            [("current_password", "wrong password")])
        if new == current:
            raise invalid("new_password", "the same as the current password")
        conn.execute(_SET_PASSWORD, {"hash": hash_password(new, "new_password"),
                                     "id": session.principal.user_id})
        conn.execute("DELETE FROM staff_session WHERE user_id = %s AND id <> %s",
                     (session.principal.user_id, session.id))


def _failed(conn: psycopg.Connection[Any], client: str) -> SignInRefused:
    conn.execute("INSERT INTO staff_signin_failure (client_group) VALUES (%s)", (client,))
    return SignInRefused(SIGN_IN_FAILED, [("password", "sign-in refused")])


def sign_in(conn: psycopg.Connection[Any], *, name: str, password: str, client: str,
            policy: Policy) -> str:
    """A new session's token for a right name and password, else :class:`SignInRefused`
    (the same message for every reason) or :class:`RateLimited` for a client over its
    failures. The failures are committed before the refusal is raised: call this at the
    start of a connection's transaction (or on an autocommit connection)."""
    refusal: Exception | None = None
    token = ""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("DELETE FROM staff_signin_failure WHERE at < now() - %s::interval",
                    (policy.client_window,))
        cur.execute(_CLIENT_FAILURES, {"client": client, "window": policy.client_window})
        count = cur.fetchone()
        if count is not None and count["count"] >= policy.client_failures:
            raise RateLimited("too many failed sign-ins from this address: try again later",
                              [("name", "too many failed sign-ins")])
        cur.execute(_BY_NAME, {"name": name})
        user = cur.fetchone()
        now = dt.datetime.now(dt.UTC)
        good = _verify(user["password_hash"] if user else _DUMMY_HASH, password)
        if user is None or user["disabled_at"] is not None or (
                user["locked_until"] is not None and user["locked_until"] > now):
            refusal = _failed(conn, client)
        elif not good:
            failures = user["failed_count"] + 1
            locked = failures >= policy.lockout_failures
            cur.execute("UPDATE staff_user SET failed_count = %s, locked_until = %s "
                        "WHERE id = %s", (0 if locked else failures,
                                          now + policy.lockout if locked else None,
                                          user["id"]))
            refusal = _failed(conn, client)
        else:
            if _HASHER.check_needs_rehash(user["password_hash"]):
                cur.execute("UPDATE staff_user SET password_hash = %s WHERE id = %s",
                            (_HASHER.hash(password), user["id"]))
            cur.execute("UPDATE staff_user SET failed_count = 0, locked_until = NULL "
                        "WHERE id = %s AND (failed_count <> 0 OR locked_until IS NOT NULL)",
                        (user["id"],))
            token = secrets.token_urlsafe(32)
            cur.execute("INSERT INTO staff_session (token_hash, user_id, expires_at, "
                        "client_group, csrf_secret) VALUES (%s, %s, %s, %s, %s)",
                        (_token_hash(token), user["id"], now + policy.lifetime, client,
                         secrets.token_urlsafe(32)))
    if refusal is not None:
        raise refusal
    return token


def session_for(conn: psycopg.Connection[Any], token: str | None,
                policy: Policy) -> Session | None:
    """The live session of ``token``, or None (no token, unknown, idle too long, past its
    end, or the account disabled: the session is then deleted)."""
    if not token or len(token) > 100:
        return None
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_SESSION, {"hash": _token_hash(token)})
        row = cur.fetchone()
        if row is None:
            return None
        now = dt.datetime.now(dt.UTC)
        if row["disabled_at"] is not None or row["expires_at"] <= now \
                or now - row["last_seen_at"] > policy.idle:
            cur.execute("DELETE FROM staff_session WHERE id = %s", (row["session_id"],))
            return None
        if now - row["last_seen_at"] > TOUCH_EVERY:
            cur.execute("UPDATE staff_session SET last_seen_at = now() WHERE id = %s",
                        (row["session_id"],))
    principal = Principal(key_id=None, name=row["name"], role=row["role"],
                          area_code=row["area_code"], user_id=row["user_id"])
    return Session(id=row["session_id"], principal=principal,
                   display_name=row["display_name"], csrf=row["csrf_secret"],
                   expires_at=min(row["expires_at"], now + policy.idle))


def csrf_ok(session: Session, sent: str | None) -> bool:
    """Whether a form carried this session's CSRF token (constant-time)."""
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())


def sign_out(conn: psycopg.Connection[Any], session: Session, *, everywhere: bool) -> int:
    """End this session, or every session of the account; how many ended."""
    if everywhere:
        cur = conn.execute("DELETE FROM staff_session WHERE user_id = %s",
                           (session.principal.user_id,))
    else:
        cur = conn.execute("DELETE FROM staff_session WHERE id = %s", (session.id,))
    return cur.rowcount
