"""What the operations rooms share: finding a station by code, hashing who asks, rate limits.

Check-ins, reports and confirmations need no key, so a script could inflate a
station's count or flip it to "reported closed". Each such write stores two
keyed hashes (HMAC-SHA256 with ``settings.feedback_key()``): of the device
id (a cookie the check-in page sets, or ``X-Device-Id``) for de-duplication,
and of the client address (an IPv6 client's /64) for rate limits. Neither can be turned back into an
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

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.errors import NotFound, RateLimited
from geo_service.infra.settings import IPNetwork, Settings
from geo_service.operations import queries as q


async def station_ref(conn: AsyncConnection[Any], code: str,
                      field: str = "code") -> dict[str, Any]:
    """The station's id, place and area codes; an unknown code is a 404 naming ``field``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.STATION_REF, {"code": code})
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no station {code!r}", [(field, "unknown station code")])
    return row


async def require_area(conn: AsyncConnection[Any], area: str | None) -> None:
    """An area filter must name a known admin area (any level); else 404 naming ``area``.

    A filter on a mistyped code would answer an empty list, which reads as
    "nothing there" rather than "no such place".
    """
    if area is None:
        return
    async with conn.cursor() as cur:
        await cur.execute(q.AREA_EXISTS, {"area": area})
        if await cur.fetchone() is None:
            raise NotFound(f"no admin area {area!r}", [("area", "unknown admin area code")])


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


def client_address(peer: str, forwarded_for: Sequence[str], settings: Settings) -> str:
    """The caller's address: the TCP ``peer``, or behind proxies that settings name, the
    rightmost hop of the ``X-Forwarded-For`` headers (each value as received) that is
    not one of them.

    Each proxy appends the address it saw; anything further left came from the
    client and could be forged to dodge the limits and the independent-reporters
    rule. The server itself never rewrites the peer from the header (``geo-service
    serve`` runs uvicorn without proxy headers), so this is the only place it is read.
    """
    networks = settings.proxy_networks()
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in ",".join(forwarded_for).split(",")]
    hops = [h for h in hops if h]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop[:64]
    return hops[0][:64] if hops else peer


def client_https(scheme: str, peer: str, forwarded_proto: Sequence[str],
                 settings: Settings) -> bool:
    """Whether the client reached us over HTTPS: the connection's own ``scheme``, or
    behind a proxy that settings trust, the last ``X-Forwarded-Proto`` that proxy set.

    The header is believed only from a trusted peer, as ``X-Forwarded-For`` is in
    :func:`client_address`: anyone else could claim HTTPS, or deny it.
    """
    if scheme == "https":
        return True
    networks = settings.proxy_networks()
    if not networks or not _trusted(peer, networks):
        return False
    protos = [p.strip().lower() for p in ",".join(forwarded_proto).split(",") if p.strip()]
    return bool(protos) and protos[-1] == "https"


def client_group(address: str, ipv6_prefix: int) -> str:
    """The client as limits count it: an IPv4 address as it is; an IPv6 address as its
    ``/ipv6_prefix`` network; an IPv4-mapped IPv6 address as the IPv4 address.

    One IPv6 host is commonly given a whole /64 and may use any address in it,
    so counted per address it had as many rate budgets as it liked and alone
    met the independent-reporters rule (issue 24, item 11).
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv4Address):
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(ip), ipv6_prefix), strict=False))  # drops a %zone


def client_hash(settings: Settings, address: str) -> str:
    """The keyed hash rate limits and the reporters rule count (see :func:`client_group`)."""
    return keyed_hash(settings, "client:" + client_group(address, settings.ipv6_prefix))


def device_hash(settings: Settings, device: str | None) -> str | None:
    """Hash of the device id the client sent (header or cookie), or None without one."""
    if not device or len(device) > 200:
        return None
    return keyed_hash(settings, "device:" + device)


async def check_rate(conn: AsyncConnection[Any], sources: Sequence[tuple[str, str]],
                     client: str, limit: int, window: dt.timedelta, what: str) -> None:
    """Refuse (429, ``Retry-After``) when ``client`` wrote ``limit`` rows within
    ``window`` to the ``(table, time column)`` sources together (our own identifiers)."""
    async with conn.cursor() as cur:
        await cur.execute(q.rate_query(sources), {"c": client, "w": window, "n": limit})
        row = await cur.fetchone()
    if row and row[0] >= limit:
        oldest: dt.datetime = row[1]
        wait = oldest + window - dt.datetime.now(dt.UTC)
        exc = RateLimited(f"too many {what} from this client: at most {limit} per "
                          f"{int(window.total_seconds() // 60)} minutes",
                          [("client", "rate limit reached")])
        exc.retry_after = max(1, int(wait.total_seconds()) + 1)
        raise exc
