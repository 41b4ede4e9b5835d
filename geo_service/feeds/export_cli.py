"""``geo-service export``: write a platform bulk-upload file (CSV or XLSX) from the database.

The same reader and writers as ``GET /v1/exports/{platform}.{fmt}``
(:func:`geo_service.feeds.service.published_batches`, ``export_formats``), so a
file made here is byte-for-byte the shape the API serves. The file is written
next to its destination and renamed into place, so a failed export never
leaves half a file under the final name.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import sys
from contextlib import aclosing, nullcontext
from pathlib import Path
from typing import Any

from geo_service.infra.settings import Settings


def add_parser(sub: Any) -> None:
    """Register ``export`` on the ``geo-service`` sub-command parser."""
    from geo_service.feeds.export_formats import ExportFormat, PlatformName

    p = sub.add_parser("export", help="bulk-upload file (CSV/XLSX) for Amap, Tencent, Baidu "
                                      "or generic use")
    p.add_argument("--platform", required=True, choices=[n.value for n in PlatformName],
                   help="amap/tencent: GCJ-02, baidu: BD-09, generic: WGS-84 + English "
                        "headers, union: the import template's columns (edit, re-import)")
    p.add_argument("--format", choices=[f.value for f in ExportFormat],
                   help="default: the suffix of --out, else csv")
    p.add_argument("--out", help="file to write (default: the standard name, e.g. "
                                 "stations-amap-gcj02-20250101.csv, in the current directory)")
    p.add_argument("--area", help="only stations in this admin area (any level)")
    p.add_argument("--bbox", help="minlon,minlat,maxlon,maxlat (WGS-84)")
    p.set_defaults(func=cmd_export)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = Path(args.out).suffix.lower().lstrip(".") if args.out else ""
    return suffix if suffix in ("csv", "xlsx") else "csv"


async def _export(url: str, args: argparse.Namespace, fmt: str, out: Path,
                  bbox: list[float] | None, now: dt.datetime,
                  photo_base: str | None = None) -> tuple[int, int]:
    """Write the file to ``out``; returns (stations, sample stations). Exterior photo URLs
    start with ``photo_base`` (GEO_PUBLIC_BASE_URL; without it the column is empty)."""
    from psycopg import AsyncConnection, IsolationLevel

    from geo_service.feeds.export_formats import PLATFORMS, PlatformName, csv_header, csv_rows
    from geo_service.feeds.service import minute_of, published_batches, write_xlsx

    spec = PLATFORMS[PlatformName(args.platform)]
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        # One snapshot for the whole file: every batch in one REPEATABLE READ transaction
        # (nobody waits on this connection but the file being written).
        await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
        batches = published_batches(lambda: nullcontext(conn), area=args.area, bbox=bbox,
                                    at=minute_of(now), photo_base=photo_base)
        async with conn.transaction():
            with out.open("wb") as f:
                if fmt == "xlsx":
                    book = await write_xlsx(batches, spec, f, area=args.area, bbox=bbox,
                                            generated_at=now)
                    return book.rows, book.samples
                rows = samples = 0
                f.write(csv_header(spec))
                async with aclosing(batches):
                    async for batch in batches:
                        f.write(csv_rows(batch, spec))
                        rows += len(batch)
                        samples += sum(1 for r in batch if r["sample"])
                return rows, samples


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain.coords import Crs
    from geo_service.domain.errors import GeoServiceError
    from geo_service.domain.params import AREA_PATTERN, parse_bbox
    from geo_service.feeds.export_formats import (
        CRS_NAMES,
        PLATFORMS,
        PlatformName,
        TooManyRows,
        china_date,
        export_filename,
    )

    if args.area is not None and not re.fullmatch(AREA_PATTERN, args.area):
        print(f"error: --area {args.area!r} is not an admin area code", file=sys.stderr)
        return 2
    try:
        bbox = parse_bbox(args.bbox, Crs.WGS84)
    except GeoServiceError as exc:
        print(f"error: --bbox: {exc.message}", file=sys.stderr)
        return 2
    spec = PLATFORMS[PlatformName(args.platform)]
    fmt = _format(args)
    now = dt.datetime.now(dt.UTC)
    out = Path(args.out or export_filename(spec, fmt, china_date(now)))
    part = out.with_name(f".{out.name}.part")
    try:
        rows, samples = asyncio.run(
            _export(settings.resolved_database_url(), args, fmt, part, bbox, now,
                    settings.public_base_url))
        os.replace(part, out)
    except TooManyRows as exc:
        print(f"error: {exc}; use --format csv, or --area / --bbox", file=sys.stderr)
        return 2
    finally:
        part.unlink(missing_ok=True)
    print(f"wrote {rows} stations to {out} ({spec.label}, {CRS_NAMES[spec.crs]})")
    if samples:
        print(f"NOTE: {samples} of them are SAMPLE DATA, not real stations")
    return 0
