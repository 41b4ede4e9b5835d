"""``geo-service roads load FILE.osm.pbf [--area CODE]``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from geo_service.infra.settings import Settings


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    import shapely

    from geo_service.infra.db import connect
    from geo_service.roads.loader import read_extract
    from geo_service.roads.store import area_polygon, replace_extract

    path = Path(args.file)
    if not path.is_file():
        print(f"error: no file {path}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with connect(settings.resolved_database_url()) as conn:
        area = None
        if args.area:
            wkb = area_polygon(conn, args.area)
            if wkb is None:
                print(f"error: no admin area {args.area!r} with a boundary (load it first: "
                      "geo-service areas load)", file=sys.stderr)
                return 2
            area = shapely.from_wkb(wkb)
            shapely.prepare(area)
        extract = read_extract(path, walk_speed=settings.roads_walk_speed_mps,
                               ebike_speeds=settings.roads_ebike_speeds_mps, area=area)
        report = replace_extract(conn, extract, path=path, area_code=args.area)
    report["seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(report, ensure_ascii=False))
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    roads = sub.add_parser("roads", help="the road network from an OpenStreetMap extract")
    rsub = roads.add_subparsers(dest="roadscmd", required=True)
    load = rsub.add_parser(
        "load", help="load the walkable and rideable ways of an .osm.pbf extract as a "
                     "routable graph (pgRouting); replaces the loaded extract in one "
                     "transaction")
    load.add_argument("file", help="an .osm.pbf extract (e.g. Geofabrik's China, or a city)")
    load.add_argument("--area", metavar="CODE",
                      help="clip to this admin area's boundary (e.g. 460200)")
    load.set_defaults(func=cmd_load)
