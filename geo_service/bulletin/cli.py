"""``geo-service bulletin --area CODE --month 2026-11 [--out DIR]``: the monthly bulletin.

The same figures, rules and files as ``GET /v1/bulletins/{area}/{month}.pdf|.xlsx``
(:mod:`geo_service.bulletin.service`, :mod:`geo_service.bulletin.printing`), acting as
the command line does elsewhere: without a key, so without an area limit. Writes both
the PDF and the workbook into ``--out`` (default: the current folder), each written
beside its destination and renamed into place, and prints the main figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from geo_service.infra.settings import Settings


def add_commands(sub: Any) -> None:
    """Register ``bulletin`` on the ``geo-service`` sub-command parser."""
    p = sub.add_parser("bulletin", help="an area's monthly bulletin (每月通报) as PDF and XLSX")
    p.add_argument("--area", required=True, help="admin area code (and everything below it)")
    p.add_argument("--month", required=True, help="calendar month, YYYY-MM (e.g. 2026-11), "
                                                  "in GEO_DEFAULT_TIMEZONE")
    p.add_argument("--out", default=".", help="folder to write the two files into "
                                              "(default: the current folder)")
    p.set_defaults(func=cmd_bulletin)


async def _read(url: str, area: str, month: Any) -> Any:
    from psycopg import AsyncConnection

    from geo_service.bulletin import service

    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        return await service.read(conn, area, month, None)


def cmd_bulletin(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.bulletin.model import COLUMNS, Month, change, share
    from geo_service.bulletin.printing import Format, draw, filename
    from geo_service.domain.errors import GeoServiceError
    from geo_service.domain.params import AREA_PATTERN

    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    if not re.fullmatch(AREA_PATTERN, args.area):
        print(f"error: --area {args.area!r} is not an admin area code", file=sys.stderr)
        return 2
    out = Path(args.out)
    if not out.is_dir():
        print(f"error: --out {out} is not a folder", file=sys.stderr)
        return 2
    try:
        month = Month.parse(args.month, settings.default_timezone)
        bulletin = asyncio.run(_read(settings.resolved_database_url(), args.area, month))
    except GeoServiceError as exc:
        fields = "; ".join(f"{f}: {p}" for f, p in exc.fields)
        print(f"error: {exc.message}" + (f" ({fields})" if fields else ""), file=sys.stderr)
        return 1
    for fmt in Format:
        target = out / filename(args.area, month.label, fmt)
        part = target.with_name(f".{target.name}.part")
        try:
            part.write_bytes(draw(bulletin, fmt, settings.poster_font_file))
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
        print(f"wrote {target}")
    t = bulletin.total
    print(f"{bulletin.area_name} ({bulletin.area_code}) {month.label}: "
          + ", ".join(f"{en.lower()} {getattr(t, a)}" for a, _zh, en in COLUMNS)
          + f", covered {share(t.covered_after)} ({change(t.coverage_change)})")
    if bulletin.sample:
        print("NOTE: the area holds SAMPLE DATA (示例): the bulletin says so on every sheet")
    return 0
