"""The audit trail: who changed a station (or a key, or an account), when, and what.

Entries are appended by row triggers (migration 0005) in the writing
transaction, so nothing the application forgets is missing and a rolled back
write leaves none. The application's part is to say who is writing: each
write transaction starts with :data:`SET_ACTOR`, a transaction-local setting
the triggers read (key id or staff account id, the name, and an import's id so all rows of one
import can be found together).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.errors import NotFound
from geo_service.domain.principal import Principal

#: Transaction-local: the triggers of this transaction's writes read it.
SET_ACTOR = "SELECT set_config('geo.actor', %s, true)"

_HISTORY = """
SELECT id, at, key_id, user_id, actor, action, import_id, record_id, request, changes
FROM audit_log
WHERE station_code = %(code)s AND id > %(after)s
ORDER BY id
LIMIT %(limit)s
"""
_KNOWN = "SELECT 1 FROM station WHERE code = %(code)s"


def actor_json(principal: Principal | None, import_id: uuid.UUID | None = None,
               name: str | None = None, reason: str | None = None) -> str:
    """The ``geo.actor`` value for ``principal`` (None: the operator's command line,
    or the keyless writer ``name``). ``reason``: why, in the person's words (the console
    asks for one to close, reopen or delete a station); it fills the entry's ``request``
    column, which says what the write was asked for."""
    return json.dumps({
        "key_id": principal.key_id if principal else None,
        "user_id": principal.user_id if principal else None,
        "name": principal.name if principal else (name or "command line"),
        "import_id": str(import_id) if import_id else None,
        **({"request": reason} if reason else {}),
    })


async def set_actor(conn: AsyncConnection[Any], principal: Principal | None,
                    import_id: uuid.UUID | None = None, name: str | None = None,
                    reason: str | None = None) -> None:
    """Name who writes in this transaction (call inside it, before the writes)."""
    await conn.execute(SET_ACTOR, (actor_json(principal, import_id, name, reason),))


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    at: dt.datetime = row["at"]
    return {
        "id": row["id"], "at": at, "key_id": row["key_id"], "user_id": row["user_id"],
        "actor": row["actor"],
        "action": row["action"], "import_id": str(row["import_id"]) if row["import_id"] else None,
        "record_id": row["record_id"], "reason": row["request"],
        "changes": {k: {"old": v[0], "new": v[1]} for k, v in sorted(row["changes"].items())},
    }


async def station_history(conn: AsyncConnection[Any], code: str, *, after: int = 0,
                          limit: int = 100) -> dict[str, Any]:
    """A station's entries in order, ``limit`` at a time after entry ``after``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_HISTORY, {"code": code, "after": after, "limit": limit + 1})
        rows = await cur.fetchall()
        if not rows:
            await cur.execute(_KNOWN, {"code": code})
            if await cur.fetchone() is None:
                raise NotFound(f"no station {code!r}", [("code", "unknown station code")])
    more = len(rows) > limit
    entries = [_entry(r) for r in rows[:limit]]
    return {"code": code, "entries": entries,
            "next_after": entries[-1]["id"] if more else None}
