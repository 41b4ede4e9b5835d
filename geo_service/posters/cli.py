"""``geo-service posters station CODE -o FILE.pdf`` and ``geo-service posters area CODE``.

The same rows, rules and pages as ``GET /v1/posters/...``
(:mod:`geo_service.posters.service`, :mod:`geo_service.posters.render`), acting as
the command line does elsewhere: without a key, so without an area limit. The QR
codes carry ``GEO_PUBLIC_BASE_URL`` (or ``--base-url``); a local address prints
only with ``--allow-local``, every page then marked as a test print. The file is
written beside its destination and renamed into place.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from geo_service.infra.settings import Settings


def add_commands(sub: Any) -> None:
    """Register ``posters`` on the ``geo-service`` sub-command parser."""
    p = sub.add_parser("posters", help="printable QR posters (PDF) of a station or an area")
    psub = p.add_subparsers(dest="posterscmd", required=True)
    for what, help_text in (("station", "one station's poster (one page)"),
                            ("area", "a poster per open station of an admin area and below "
                                     "it, by district then name")):
        c = psub.add_parser(what, help=help_text)
        c.add_argument("code", help="station code" if what == "station" else "admin area code")
        c.add_argument("-o", "--out", help="file to write (default: "
                                           "posters-<station|area>-<code>-<size>.pdf)")
        c.add_argument("--size", choices=["A4", "A5"], default="A4")
        c.add_argument("--base-url", help="the public address the QR codes start with "
                                          "(default: GEO_PUBLIC_BASE_URL)")
        if what == "area":
            c.add_argument("--max-pages", type=int, metavar="N",
                           help="refuse areas with more stations (default: "
                                "GEO_POSTER_MAX_PAGES; ~0.5 MB of memory a page)")
        c.add_argument("--allow-local", action="store_true",
                       help="print a local address too, as a test print marked on each page")
        c.set_defaults(func=cmd_posters, what=what)


async def _rows(url: str, what: str, code: str, max_pages: int) -> list[dict[str, Any]]:
    from psycopg import AsyncConnection

    from geo_service.posters import service

    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        if what == "station":
            return await service.station_rows(conn, code, None)
        return await service.area_rows(conn, code, None, max_pages)


def cmd_posters(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain.errors import GeoServiceError
    from geo_service.domain.params import AREA_PATTERN, CODE_PATTERN
    from geo_service.posters import service
    from geo_service.posters.model import PageSize
    from geo_service.posters.render import render_pdf

    # WeasyPrint logs each page at INFO; the command says what it wrote instead.
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    pattern = CODE_PATTERN if args.what == "station" else AREA_PATTERN
    if not re.fullmatch(pattern, args.code):
        print(f"error: {args.code!r} is not a {args.what} code", file=sys.stderr)
        return 2
    if args.base_url and not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", args.base_url):
        print(f"error: --base-url {args.base_url!r} is not an http(s) address", file=sys.stderr)
        return 2
    size = PageSize(args.size)
    out = Path(args.out or f"posters-{args.what}-{args.code}-{size.value}.pdf")
    part = out.with_name(f".{out.name}.part")
    try:
        max_pages = getattr(args, "max_pages", None) or settings.poster_max_pages
        rows = asyncio.run(_rows(settings.resolved_database_url(), args.what, args.code,
                                 max_pages))
        base, test_print = service.printable_base(
            (args.base_url or settings.public_base_url or "").rstrip("/") or None, None,
            allow_local=args.allow_local)
        posters = service.posters_of(rows, base)
        started = time.perf_counter()
        pdf = render_pdf(posters, size=size,
                         printed_on=dt.datetime.now(ZoneInfo(settings.default_timezone)).date(),
                         hotline=settings.union_hotline, test_print=test_print,
                         font_file=settings.poster_font_file)
        took = time.perf_counter() - started
        part.write_bytes(pdf)
        os.replace(part, out)
    except GeoServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        part.unlink(missing_ok=True)
    print(f"wrote {len(posters)} page(s) to {out} ({size.value}, {took:.1f} s to draw; "
          f"QR codes on {base})")
    if test_print:
        print("NOTE: a TEST PRINT (local address): do not post these", file=sys.stderr)
    if samples := sum(1 for p in posters if p.sample):
        print(f"NOTE: {samples} of them are SAMPLE DATA (示例), not real stations")
    return 0
