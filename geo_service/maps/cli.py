"""``geo-service maps render``: write the three maps as HTML files (``maps/`` by default).

The files are the pages ``/maps/...`` serves, made from the same code. By
default they load Leaflet from this service (``/maps/assets/...``), as served
at ``/maps/files/``. With ``--offline`` Leaflet is written into each file, so a
file opens from a shared drive or a USB stick in an office without internet.
A CDN only when asked for: ``--cdn BASE`` names an npm CDN (the project names
none). Each file is
written beside its destination and renamed into place: a failed render never
leaves half a page under the final name.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from geo_service.infra.settings import Settings


def add_commands(sub: Any) -> None:
    """Add the ``maps`` command group to the ``geo-service`` parser."""
    from geo_service.maps.model import BASEMAPS
    from geo_service.maps.pages import MapKind

    maps = sub.add_parser("maps", help="folium maps for planners (HTML files)")
    msub = maps.add_subparsers(dest="mapscmd", required=True)
    r = msub.add_parser("render", help="write the stations, coverage and compliance maps")
    r.add_argument("--area", help="admin area code (any level); default: every station")
    r.add_argument("--run", type=int, help="analysis run for the coverage map "
                                           "(default: the newest of the area)")
    r.add_argument("--out", help="folder to write to (default: maps/ or GEO_MAPS_DIR)")
    r.add_argument("--maps", default=",".join(k.value for k in MapKind),
                   help="which maps, comma-separated (default: all three)")
    r.add_argument("--basemap", choices=list(BASEMAPS),
                   help="osm (WGS-84), amap / tencent (GCJ-02: points are shifted), none; "
                        "default osm, or none with --offline")
    r.add_argument("--tiles", help="a tile URL template instead of a preset, e.g. an "
                                   "intranet tile server: http://tiles.local/{z}/{x}/{y}.png")
    r.add_argument("--attribution", help="attribution of --tiles")
    r.add_argument("--tiles-crs", choices=["wgs84", "gcj02"], default="wgs84",
                   help="the system --tiles is drawn in")
    where = r.add_mutually_exclusive_group()
    where.add_argument("--offline", action="store_true",
                       help="write Leaflet into the files: no outside request but the tiles")
    where.add_argument("--cdn", metavar="BASE",
                       help="load Leaflet from this npm CDN instead of this service, e.g. "
                            "https://cdn.example.org/npm (BASE/leaflet@VERSION/dist/...)")
    r.add_argument("--at", help="the moment shown, ISO 8601 (without an offset: China time); "
                               "default now")
    r.add_argument("--overdue-days", type=int, default=365,
                   help="compliance: inspection overdue after this many days")
    r.add_argument("--min-ten-ones", type=int, default=10,
                   help="compliance: follow up stations with fewer of the ten ones")
    r.add_argument("--ensure-run", action="store_true",
                   help="when the area has no stored run, run recommendations (10 sites) first")
    r.set_defaults(func=cmd_render)


def _ensure_run(conn: Any, area: str | None) -> int | None:
    """Store a recommendations run for the area when it has none; its id, or None."""
    from geo_service.coverage import service
    from geo_service.coverage.schemas import RecommendRequest
    from geo_service.maps.data import sole_city

    if service.latest_run_id(conn, area) is not None:
        return None
    if area is None:
        area = sole_city(conn)
        if area is None:
            return None
    result = service.run_recommendations(conn, RecommendRequest.model_validate(
        {"area": area, "add": 10}))
    return int(result["run_id"])


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cmd_render(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain.errors import GeoServiceError
    from geo_service.domain.params import instant
    from geo_service.infra.db import connect
    from geo_service.maps.assets import AssetMode, AssetsMissingError, check_cdn
    from geo_service.maps.model import MapOptions
    from geo_service.maps.options import basemap, maps_dir
    from geo_service.maps.pages import MapKind, make_page

    try:
        kinds = [MapKind(k.strip()) for k in args.maps.split(",") if k.strip()]
        bm = basemap(args.basemap if not args.tiles else None, tiles_url=args.tiles,
                     attribution=args.attribution, tiles_crs=args.tiles_crs,
                     offline=args.offline)
        if not 0 <= args.min_ten_ones <= 10 or args.overdue_days < 1:
            raise SystemExit("error: --min-ten-ones is 0-10 and --overdue-days at least 1")
        mode = (AssetMode.INLINE if args.offline else AssetMode.CDN if args.cdn
                else AssetMode.LOCAL)
        prefix = check_cdn(args.cdn) if args.cdn else "/maps/assets"
        opts = MapOptions(basemap=bm, assets=mode, asset_prefix=prefix,
                          at=instant(args.at, "--at"),
                          overdue_days=args.overdue_days, min_ten_ones=args.min_ten_ones)
    except (ValueError, GeoServiceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else maps_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    with connect(settings.resolved_database_url()) as conn:
        if args.ensure_run and MapKind.COVERAGE in kinds and args.run is None:
            made = _ensure_run(conn, args.area)
            if made is not None:
                print(f"stored recommendations run {made} for the coverage map")
        for kind in kinds:
            t0 = time.perf_counter()
            try:
                page = make_page(conn, kind, args.area, opts, run_id=args.run)
            except (GeoServiceError, AssetsMissingError) as exc:
                print(f"error: {kind.value} map: {exc}", file=sys.stderr)
                return 2
            path = out / f"{kind.value}.html"
            _write(path, page)
            print(f"wrote {path} ({len(page.encode()) / 1e6:.1f} MB, "
                  f"{time.perf_counter() - t0:.2f} s, basemap {bm.name}, {bm.crs.value})")
    return 0
