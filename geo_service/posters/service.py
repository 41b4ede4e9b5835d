"""Which stations a poster request prints, for whom, and the link each QR code carries.

The rows are read here, on a connection the caller gives back before the PDF is
drawn (:func:`geo_service.posters.render.render_pdf` takes seconds of CPU for a
district; no pooled connection waits on it).

What prints: the stations that serve, ``open`` and ``temporarily_closed`` (the
same set the feeds publish and the check-in page accepts; a temporarily closed
station's poster says so, since its wall still needs one). ``planned`` stations
are left out (their check-in page refuses check-ins until they open), and so
are ``closed`` and ``duplicate`` ones; asking for one of those by code is a 409
that says why. An area prints its stations and everything below it (a city:
every district and street), by district code, then name, then code.

The QR code carries the station's absolute check-in URL on the configured public
address (``GEO_PUBLIC_BASE_URL``). A poster lasts years on a wall, so a missing
public address, or one on this machine or a private network, is refused unless
the caller asks for a test print (``allow_local``), whose every page says it
must not be posted.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import quote, urlsplit

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.catalogue import OPERATIONAL, STATUS_ZH, Status
from geo_service.domain.errors import Forbidden, NotFound, PayloadTooLarge, StateConflict
from geo_service.domain.principal import Principal
from geo_service.posters import queries as q
from geo_service.posters.model import Poster
from geo_service.stations.service import in_scope

#: The check-in page's path (operations' ``GET /v1/checkin/{code}``, route checkin_page).
CHECKIN_PATH = "/v1/checkin/{code}"


def checkin_url(base: str, code: str) -> str:
    """The station's check-in page on ``base`` (no final slash), as its QR code carries it."""
    return base + CHECKIN_PATH.format(code=quote(code, safe=""))


def is_local(base: str) -> bool:
    """Whether ``base`` points at this machine or a private network (a phone on the
    street cannot open it): localhost, ``*.local``, loopback, private or link-local IPs."""
    host = (urlsplit(base).hostname or "").lower()
    if not host or host == "localhost" or host.endswith((".localhost", ".local")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def printable_base(configured: str | None, fallback: str | None, *,
                   allow_local: bool) -> tuple[str, bool]:
    """The address the QR codes start with, and whether the print is a test print.

    ``configured`` is ``settings.public_base_url``; ``fallback`` the address this
    request came in on (None on the command line). Without ``allow_local`` only a
    configured, public address prints.
    """
    if configured and not is_local(configured):
        return configured, False
    if not allow_local:
        problem = (f"GEO_PUBLIC_BASE_URL {configured} is a local address"
                   if configured else "GEO_PUBLIC_BASE_URL is not set")
        raise StateConflict(
            f"posters print the public check-in link, and {problem}: set it to the "
            "service's public address, or ask for a test print (allow_local)",
            [("allow_local", "no public address to print; a test print must be asked for")])
    base = configured or fallback
    if not base:
        raise StateConflict("no address to print: set GEO_PUBLIC_BASE_URL or pass --base-url",
                            [("base_url", "missing")])
    return base, True


def posters_of(rows: list[dict[str, Any]], base: str) -> list[Poster]:
    """The posters of the station rows read here, their QR codes on ``base``.

    Separate from reading them so a request is told "no such station" or "not your
    area" before "no public address" (which is about the service, not the request).
    """
    return [Poster(code=r["code"], name=r["name"], address=r["address"],
                   district=r["district"], status=r["status"],
                   opening_hours=r["opening_hours"], amenity_mask=r["amenity_mask"],
                   sample=r["sample"], checkin_url=checkin_url(base, r["code"]))
            for r in rows]


async def station_rows(conn: AsyncConnection[Any], code: str,
                       principal: Principal | None) -> list[dict[str, Any]]:
    """Station ``code``'s row to print: 404 unknown, 403 outside the key's area,
    409 when it does not serve (closed, planned, duplicate)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.STATION, {"code": code})
        row = await cur.fetchone()
    if row is None or row["status"] == Status.DUPLICATE:
        raise NotFound(f"no station {code!r}", [("code", "unknown station code")])
    if principal is not None and not await in_scope(conn, principal, row):
        raise Forbidden(f"this key is limited to area {principal.area_code}; station "
                        f"{code} is outside it",
                        [("code", f"outside the key's area {principal.area_code}")])
    if row["status"] not in OPERATIONAL:
        status = Status(row["status"])
        raise StateConflict(f"station {code} is {status.value} ({STATUS_ZH[status]}): only "
                            "open or temporarily closed stations get a poster",
                            [("code", f"station is {status.value}")])
    return [row]


async def area_rows(conn: AsyncConnection[Any], area: str, principal: Principal | None,
                    max_pages: int) -> list[dict[str, Any]]:
    """The rows of the serving stations in area ``area`` and below it, in print order.

    404 unknown area, 403 outside the key's area, 409 no station to print, 413 more
    than ``max_pages`` stations (naming ``GEO_POSTER_MAX_PAGES``).
    """
    scope = principal.area_code if principal is not None else None
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.AREA, {"area": area, "scope": scope})
        found = await cur.fetchone()
        if found is None:
            raise NotFound(f"no admin area {area!r}", [("code", "unknown admin area code")])
        if not found["allowed"]:
            raise Forbidden(f"this key is limited to area {scope}; area {area} is outside it",
                            [("code", f"outside the key's area {scope}")])
        await cur.execute(q.AREA_STATIONS, {"area": area, "limit": max_pages + 1})
        rows = await cur.fetchall()
    if len(rows) > max_pages:
        raise PayloadTooLarge(
            f"area {area} has more than {max_pages} open stations, the most one poster PDF "
            "holds (GEO_POSTER_MAX_PAGES): print its districts or streets one by one",
            [("code", f"more than {max_pages} stations (GEO_POSTER_MAX_PAGES)")])
    if not rows:
        raise StateConflict(f"area {area} ({found['name']}) has no open or temporarily closed "
                            "station to print", [("code", "no station to print")])
    return rows
