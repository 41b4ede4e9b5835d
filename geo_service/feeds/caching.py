"""HTTP validators for feeds: ETag and Last-Modified, and the 304 decision.

Every feed is a function of the station table and the request's parameters
(and, for feeds that say whether a station is open now, of the minute it is
generated at). The table's state is summed up by its last change number,
drawn in commit order (migration 0003), so the ETag is
``W/"<seq>-<hash of feed, params, minute>"``: any committed station write
changes it, and nothing else does. ETags are weak because generated bodies
carry their generation time.

``Last-Modified`` has one-second resolution. It is the second of the last
change, or of the minute the open-now values were computed for, whichever is
later; it is withheld while that second is still running, because a second
change within the same second would otherwise hide behind a 304. When a
request sends both, ``If-None-Match`` decides (RFC 9110 §13.2.2).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from psycopg import AsyncConnection

from geo_service.domain.encoding import etag_matches
from geo_service.feeds import queries as q


@dataclass(frozen=True)
class FeedState:
    """What the validators are computed from: the last change and its time."""

    seq: int
    last_modified: dt.datetime | None


async def feed_state(conn: AsyncConnection[Any]) -> FeedState:
    """Read the station table's last change (two index probes)."""
    async with conn.cursor() as cur:
        await cur.execute(q.FEED_STATE, prepare=True)
        row = await cur.fetchone()
    assert row is not None
    return FeedState(seq=int(row[0]), last_modified=row[1])


@dataclass(frozen=True)
class Validators:
    """An ETag and an optional Last-Modified for one feed response."""

    etag: str
    last_modified: dt.datetime | None

    def headers(self) -> dict[str, str]:
        out = {"ETag": self.etag}
        if self.last_modified is not None:
            out["Last-Modified"] = format_datetime(self.last_modified, usegmt=True)
        return out


def validators(
    state: FeedState, feed: str, params: dict[str, Any] | None = None,
    as_of: dt.datetime | None = None, now: dt.datetime | None = None,
) -> Validators:
    """Validators for ``feed`` with ``params`` at ``state``.

    ``as_of`` is the minute the open-now values were computed for, when the
    feed has them; it is part of the ETag and can move Last-Modified forward.
    """
    key = repr((feed, sorted((params or {}).items()), as_of and as_of.isoformat()))
    digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    etag = f'W/"{state.seq}-{digest}"'
    moments = [m for m in (state.last_modified, as_of) if m is not None]
    last = max(moments).astimezone(dt.UTC).replace(microsecond=0) if moments else None
    now = now or dt.datetime.now(dt.UTC)
    if last is not None and now < last + dt.timedelta(seconds=1):
        last = None  # still inside that second: another change could share it
    return Validators(etag=etag, last_modified=last)


def not_modified(
    v: Validators, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """Whether the client's copy is current, so the answer is 304."""
    if if_none_match is not None:
        return etag_matches(if_none_match, v.etag)
    if if_modified_since is None or v.last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False  # an unparsable date is ignored, as RFC 9110 says
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    return v.last_modified <= since
