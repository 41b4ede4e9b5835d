"""``geo-service demand``: the demand sheet's template and import, a population raster,
and what demand an area holds."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from geo_service.infra.settings import Settings


def cmd_template(args: argparse.Namespace, settings: Settings) -> int:
    """Write the demand template (the same bytes as GET /v1/demand:template.xlsx)."""
    from geo_service.coverage.demand_sheet import FILENAME, template_xlsx

    out = Path(args.out or FILENAME)
    part = out.with_name(f".{out.name}.part")
    try:
        part.write_bytes(template_xlsx())
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)
    print(f"wrote the demand template to {out}: fill the first sheet from row 3 (row 2 is an "
          f"example the import skips), then geo-service demand import {out.name}")
    return 0


async def _import(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from psycopg import AsyncConnection

    from geo_service.coverage.demand import import_demand
    from geo_service.domain.coords import Crs
    from geo_service.imports.readers import Format, guess_format
    from geo_service.imports.run import Mode

    path = Path(args.file)
    data = path.read_bytes()
    fmt = Format(args.format) if args.format else guess_format(path.name, data)
    async with await AsyncConnection.connect(settings.resolved_database_url(),
                                             autocommit=True) as conn:
        return await import_demand(conn, data, fmt, mode=Mode(args.mode), dry_run=args.dry_run,
                                   max_rows=10_000_000, crs=Crs(args.crs))


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Import a demand sheet; print the counts and each problem by Excel row and column."""
    import asyncio

    from geo_service.domain.errors import GeoServiceError

    try:
        report = asyncio.run(_import(args, settings))
    except GeoServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"{report['format']}: {report['rows']} rows, {report['valid_rows']} valid; created "
          f"{report['created']}, updated {report['updated']}, unchanged {report['unchanged']}; "
          f"written: {report['written']}" + (" (dry run)" if report["dry_run"] else ""))
    for p in report["errors"]:
        where = f"Excel row {p['sheet_row']}" if p.get("sheet_row") else f"row {p['row']}"
        print(f"  {where} [{p['code'] or '-'}] {p['field']}: {p['problem']}")
    for k in report.get("skipped", []):
        print(f"  row {k['row']} [{k['code']}] skipped: {k['reason']}")
    return 0 if report["written"] or args.dry_run else 1


def cmd_raster(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.coverage.raster import Options, describe, import_raster
    from geo_service.domain.errors import GeoServiceError
    from geo_service.infra.db import connect

    opts = Options(area=args.area, worker_type=args.worker_type, share=args.share,
                   resolution=args.resolution)
    with connect(settings.resolved_database_url()) as conn:
        try:
            report = import_raster(conn, args.file, args.file, opts)
        except GeoServiceError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
    print(describe(report))
    return 0


def cmd_summary(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.coverage.demand_stock import ORIGIN_WORDS, area_stock
    from geo_service.domain.errors import GeoServiceError
    from geo_service.infra.db import connect

    with connect(settings.resolved_database_url()) as conn:
        try:
            rows = area_stock(conn, args.area)
        except GeoServiceError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
    if not rows:
        print(f"area {args.area} has no demand points: coverage runs there measure area "
              "(按面积覆盖（无需求数据）)")
    for r in rows:
        origin = ORIGIN_WORDS[r["origin"]][1] + (f" ({r['file']})" if r["file"] else "")
        print(f"{origin:<40} {r['worker_type']:<14} {r['points']:>8} points "
              f"{r['workers']:>12,.1f} workers")
    return 0


def add_commands(sub: Any) -> None:
    from geo_service.coverage.raster import DEFAULT_RESOLUTION, DEFAULT_SHARE
    from geo_service.domain.models import WORKER_TYPES

    d = sub.add_parser("demand", help="demand points: template, import, population raster")
    dsub = d.add_subparsers(dest="democmd", required=True)
    t = dsub.add_parser("template", help="write the demand import template (XLSX, Chinese "
                                         "columns, 说明 sheet)")
    t.add_argument("-o", "--out", help="file to write (default: demand-import-template.xlsx)")
    t.set_defaults(func=cmd_template)
    i = dsub.add_parser("import", help="import a demand sheet (编号, 经度, 纬度, 人数, 工种, "
                                       "坐标系 or the English columns): CSV, XLSX or GeoJSON")
    i.add_argument("file")
    i.add_argument("--format", choices=["csv", "xlsx", "geojson"])
    i.add_argument("--mode", choices=["all_or_nothing", "skip_bad_rows"],
                   default="all_or_nothing")
    i.add_argument("--crs", choices=["wgs84", "gcj02", "bd09"], default="wgs84",
                   help="coordinates of rows whose 坐标系 is blank")
    i.add_argument("--dry-run", action="store_true")
    i.set_defaults(func=cmd_import)
    r = dsub.add_parser("raster", help="estimate demand from a population GeoTIFF (e.g. "
                                       "WorldPop), replacing the area's earlier raster demand")
    r.add_argument("file", help="GeoTIFF: population per pixel, any CRS")
    r.add_argument("--area", required=True, help="admin area code whose polygon is summed")
    r.add_argument("--worker-type", default="other", choices=WORKER_TYPES)
    r.add_argument("--share", type=float, default=DEFAULT_SHARE,
                   help=f"share of residents counted as these workers (default {DEFAULT_SHARE})")
    r.add_argument("--resolution", type=int, default=DEFAULT_RESOLUTION,
                   help=f"H3 resolution of the cells (default {DEFAULT_RESOLUTION})")
    r.set_defaults(func=cmd_raster)
    s = dsub.add_parser("summary", help="the demand an area holds, by origin and worker type")
    s.add_argument("--area", required=True)
    s.set_defaults(func=cmd_summary)
