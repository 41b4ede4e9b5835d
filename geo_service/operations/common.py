"""What the operations rooms share: finding a station by code, hashing who asks, rate limits.

Check-ins, reports and confirmations need no key, so a script could inflate a
station's count or flip it to "reported closed". Each such write stores two
keyed hashes (HMAC-SHA256 with ``settings.feedback_key()``): of the device
id (a cookie the check-in page sets, or ``X-Device-Id``) for de-duplication,
and of the client address for rate limits. Neither can be turned back into an
address or a device without the key, and nothing else about the worker is kept.
Limits are counted in the database, so they hold across server processes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from geo_service.errors import NotFound, RateLimited
from geo_service.settings import IPNetwork, Settings

#: The cookie that identifies a device for de-duplication (random, no personal data).
DEVICE_COOKIE = "geo_device"

STATION_REF = """
SELECT s.id, s.code, s.name, s.status, s.host_type, s.version,
       ST_X(s.geog::geometry) AS lon, ST_Y(s.geog::geometry) AS lat,
       s.province_code, s.city_code, s.district_code, s.street_code
FROM station s WHERE s.code = %(code)s AND s.status <> 'duplicate'
"""


async def station_ref(conn: AsyncConnection[Any], code: str,
                      field: str = "code") -> dict[str, Any]:
    """The station's id, place and area codes; an unknown code is a 404 naming ``field``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(STATION_REF, {"code": code})
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no station {code!r}", [(field, "unknown station code")])
    return row


def keyed_hash(settings: Settings, value: str) -> str:
    """HMAC-SHA256 of ``value`` under the service's feedback key, hex, 32 characters."""
    mac = hmac.new(settings.feedback_key(), value.encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def _trusted(address: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request: Request, settings: Settings) -> str:
    """The caller's address: the TCP peer, or behind proxies that settings name, the
    rightmost ``X-Forwarded-For`` hop that is not one of them.

    Each proxy appends the address it saw; anything further left came from the
    client and could be forged to dodge the limits and the independent-reporters
    rule. The server itself never rewrites the peer from the header (``geo-service
    serve`` runs uvicorn without proxy headers), so this is the only place it is read.
    """
    peer = request.client.host if request.client else "unknown"
    networks = settings.proxy_networks()
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
    hops = [h for h in hops if h]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop[:64]
    return hops[0][:64] if hops else peer


def client_hash(request: Request, settings: Settings) -> str:
    return keyed_hash(settings, "client:" + client_address(request, settings))


def device_hash(request: Request, settings: Settings) -> str | None:
    """Hash of the device id (``X-Device-Id`` header, else the cookie), or None."""
    device = request.headers.get("x-device-id") or request.cookies.get(DEVICE_COOKIE)
    if not device or len(device) > 200:
        return None
    return keyed_hash(settings, "device:" + device)


async def check_rate(conn: AsyncConnection[Any], sources: Sequence[tuple[str, str]],
                     client: str, limit: int, window: dt.timedelta, what: str) -> None:
    """Refuse (429, ``Retry-After``) when ``client`` wrote ``limit`` rows within
    ``window`` to the ``(table, time column)`` sources together (our own identifiers)."""
    union = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {t} AS t FROM {tbl} WHERE client_hash = %(c)s "
                "AND {t} > now() - %(w)s").format(t=sql.Identifier(col),
                                                  tbl=sql.Identifier(table))
        for table, col in sources)
    query = sql.SQL("SELECT count(*), min(t) FROM (SELECT t FROM ({u}) u "
                    "ORDER BY t DESC LIMIT %(n)s) x").format(u=union)
    async with conn.cursor() as cur:
        await cur.execute(query, {"c": client, "w": window, "n": limit})
        row = await cur.fetchone()
    if row and row[0] >= limit:
        oldest: dt.datetime = row[1]
        wait = oldest + window - dt.datetime.now(dt.UTC)
        exc = RateLimited(f"too many {what} from this client: at most {limit} per "
                          f"{int(window.total_seconds() // 60)} minutes",
                          [("client", "rate limit reached")])
        exc.retry_after = max(1, int(wait.total_seconds()) + 1)
        raise exc
