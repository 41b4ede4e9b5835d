"""``geo-service coverage`` and ``geo-service recommend``: readable scorecards for planners."""

from __future__ import annotations

import argparse
import math
import sys
import time
import unicodedata
from typing import Any

from geo_service.infra.settings import Settings


def add_region_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--area", help="admin area code (default: the only city-level area)")
    p.add_argument("--bbox", help="minlon,minlat,maxlon,maxlat instead of an area")
    p.add_argument("--resolution", type=int, default=9, help="H3 resolution, 7-10")
    p.add_argument("--threshold-m", type=float, help="covered within this many metres (1000)")
    p.add_argument("--minutes", type=float, help="threshold as travel minutes instead")
    p.add_argument("--mode", choices=["walk", "ebike"], default="walk")
    p.add_argument("--reach", choices=["straight", "walk", "ebike"], default="straight",
                   help="walk/ebike: covered by road within the metres or minutes (needs "
                        "`geo-service roads load`); the scorecard shows the straight share "
                        "beside")
    p.add_argument("--min-ten-ones", type=int, default=0)
    p.add_argument("--amenities", default="", help="comma list the stations must have")
    p.add_argument("--open-at", help="count only stations open at this ISO instant")
    p.add_argument("--include-unknown", action="store_true",
                   help="with --open-at: also count stations whose hours are unknown then")
    p.add_argument("--exclude", default="", help="comma list of station codes to treat as closed")
    p.add_argument("--gaps", type=int, default=10, help="how many gap cells to list")
    p.add_argument("--verified-within", type=int, metavar="DAYS",
                   help="count only stations inspected within this many days")
    p.add_argument("--confirmed-within", type=int, metavar="DAYS",
                   help="count only stations a worker confirmed within this many days")


def _request(args: argparse.Namespace, conn: Any, extra: dict[str, Any]) -> dict[str, Any]:
    area = args.area
    if area is None and args.bbox is None:
        rows = conn.execute("SELECT code FROM admin_area WHERE level = 'city'").fetchall()
        if len(rows) != 1:
            raise SystemExit("error: give --area CODE (or --bbox)")
        area = rows[0][0]
    body: dict[str, Any] = {
        "resolution": args.resolution, "gaps": args.gaps, "reach": args.reach,
        "stations": {"min_ten_ones": args.min_ten_ones,
                     "amenities": [a for a in args.amenities.split(",") if a],
                     "open_at": args.open_at, "include_unknown": args.include_unknown,
                     "exclude": [c for c in args.exclude.split(",") if c],
                     "verified_within_days": args.verified_within,
                     "confirmed_within_days": args.confirmed_within},
        **extra,
    }
    if args.reach == "straight" or args.mode != "walk":  # walk: the default, not a choice
        body["mode"] = args.mode
    if args.bbox:
        body["bbox"] = [float(v) for v in args.bbox.split(",")]
    else:
        body["area"] = area
    if args.threshold_m is not None:
        body["threshold_m"] = args.threshold_m
    if args.minutes is not None:
        body["threshold_minutes"] = args.minutes
    return body


def _progress() -> Any:
    start = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - start:6.1f} s] {msg}", file=sys.stderr, flush=True)

    return say


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:5.1f}%"


def _cells(text: str) -> int:
    """Terminal columns ``text`` takes: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (district names are Chinese)."""
    return text + " " * max(0, width - _cells(text))


def print_scorecard(result: dict[str, Any]) -> None:
    """The scorecard by district name (and code), worst first, the total last."""
    if result.get("sample_data"):
        print("NOTE: computed on SAMPLE DATA, not real stations or workers")
    print(f"run {result['run_id']}: {reach_words(result)}, "
          f"H3 resolution {result['resolution']}; districts worst first")
    by_area = result.get("basis") == "area"
    by_road = result.get("reach", "straight") != "straight"
    if by_area:
        print(f"NOTE: {result['basis_label']}: 'demand' counts H3 cells, not workers")
    unit = "cells" if by_area else "demand"
    gap = "gap cells" if by_area else "gap wkrs"
    head = (f"{pad('district', 22)} {'code':<10} {'stations':>8} {unit:>9} {'covered':>8} "
            f"{'doubly':>8} {gap:>10} {'st/10k':>7} {'10/10':>7} {'unverif.':>8}"
            + (f" {'straight':>8}" if by_road else ""))
    print(head)
    print("-" * len(head))
    for a in result["areas"]:
        per10k = None if by_area else a["stations_per_10k_workers"]  # cells are not workers
        name = a.get("name") or a["area"] or "(none)"
        print(f"{pad(name, 22)} {a['area'] or '(none)':<10} {a['stations']:>8} "
              f"{a['demand']:>9.0f} "
              f"{_pct(a['covered_share']):>8} {_pct(a['doubly_share']):>8} "
              f"{a['uncovered_demand']:>10.0f} {'-' if per10k is None else f'{per10k:.1f}':>7} "
              f"{_pct(a['ten_ones_compliance']):>7} {a['unverified']:>8}"
              + (f" {_pct(a.get('straight_covered_share')):>8}" if by_road else ""))
    if by_road:
        print(f"covered: by road ({result['reach']}); straight: the straight-line share "
              f"within {result['threshold_m']:.0f} m of the same run")
    if result.get("gaps"):
        print("\nlargest gaps (H3 cell, uncovered demand, straight distance to nearest "
              "station):")
        for g in result["gaps"]:
            d = g["nearest_m"]
            print(f"  {g['cell']}  {g['uncovered_demand']:8.0f}  "
                  f"{'none' if d is None else f'{d:,.0f} m'}  ({g['lat']:.5f}, {g['lon']:.5f})")


def reach_words(result: dict[str, Any]) -> str:
    """The run's coverage rule in words: a straight threshold or a limit by road."""
    reach = result.get("reach", "straight")
    if reach == "straight":
        return f"threshold {result['threshold_m']:.0f} m"
    limit_s, limit_m = result.get("reach_limit_s"), result.get("reach_limit_m")
    limit = f"{limit_s / 60:.0f} min" if limit_s is not None else f"{limit_m:.0f} m"
    return f"by road ({reach}) within {limit} (straight: {result['threshold_m']:.0f} m)"


def _within(result: dict[str, Any]) -> str:
    if result.get("reach", "straight") == "straight":
        return f"within {result['threshold_m']:.0f} m"
    return reach_words(result)


METHODS = {"swap": "greedy + swaps", "lazy_greedy": "greedy", "exact": "exact (HiGHS)",
           "swap_share": "greedy + swaps", "greedy_share": "greedy"}


def at_least(share: float) -> str:
    """A proven share, rounded down (never claim more than is proven): '99.3%', '99.98%'."""
    if share >= 0.999:
        return f"{math.floor(share * 10_000 + 1e-9) / 100:.2f}%"
    return f"{math.floor(share * 1000 + 1e-9) / 10:.1f}%"


def method_line(result: dict[str, Any]) -> str:
    """How the plan was found, in how long, and how close to the best it is proven to be."""
    name = METHODS.get(result["method"], result["method"])
    head = f"method: {name}, {result.get('solver_seconds') or 0:.2f} s"
    share, bound = result.get("at_least_share_of_best"), result.get("upper_bound")
    if share is not None and bound is not None:
        greedy = result.get("greedy_covered_after")
        vs = "" if greedy is None else f"; greedy alone: {greedy:.0f}"
        return (f"{head}; proven: at least {at_least(share)} of the best possible "
                f"(upper bound {bound:.0f} covered{vs})")
    lower = result.get("sites_lower_bound")
    if lower is not None:
        return (f"{head}; proven: no fewer than {lower} sites reach the target "
                f"(greedy alone: {result.get('greedy_sites')})")
    return head


def print_plan(result: dict[str, Any]) -> None:
    if result.get("sample_data"):
        print("NOTE: computed on SAMPLE DATA, not real stations or workers")
    total = result["total_demand"]
    print(f"{result['stations_on_record']} stations on record in the area, "
          f"{result['stations_before']} of them qualifying (open, matching the filters); "
          f"{len(result['sites'])} new -> {result['stations_on_record'] + len(result['sites'])}"
          " on record")
    print(f"run {result['run_id']} ({result['method']}): qualifying stations "
          f"{result['stations_before']} -> {result['stations_after']}; demand covered "
          f"{_within(result)}: {result['covered_before']:.0f} / {total:.0f} "
          f"({_pct(result['covered_share_before'])}) -> {result['covered_after']:.0f} "
          f"({_pct(result['covered_share_after'])})")
    print(method_line(result))
    if result.get("basis") == "area":
        print(f"NOTE: {result['basis_label']}: demand and gains count H3 cells, not workers")
    if result.get("optimal_gap") is not None:
        print(f"gap to the exact optimum (HiGHS): {_pct(result['optimal_gap'])}")
    if result.get("target_reached") is False:
        print(f"note: the target share {_pct(result['target_share'])} cannot be reached "
              "with these candidates and this threshold")
    if result.get("note"):
        print(f"note: {result['note']}")
    for s in result["sites"]:
        print(f"  {s['rank']:>3}. {s.get('district') or '—'} ({s.get('district_code') or '—'})"
              f" {s.get('street') or '—'}: +{s['gain']:.0f} workers -> "
              f"{s['covered_after']:.0f}  [{s['label']}]")
        if "gcj02" in s:
            print(f"       WGS-84 {s['lon']:.6f},{s['lat']:.6f} · GCJ-02 {s['gcj02'][0]:.6f},"
                  f"{s['gcj02'][1]:.6f} · BD-09 {s['bd09'][0]:.6f},{s['bd09'][1]:.6f}")
            print(f"       {s['amap']}")


def _run(args: argparse.Namespace, settings: Settings, kind: str,
         extra: dict[str, Any]) -> int:
    """Validate the request, run it against the database, print the table or the error."""
    from pydantic import ValidationError

    from geo_service.coverage import service
    from geo_service.coverage.schemas import CoverageRequest, RecommendRequest
    from geo_service.domain.errors import GeoServiceError
    from geo_service.infra.db import connect

    with connect(settings.resolved_database_url()) as conn:
        try:
            body = _request(args, conn, extra)
            if kind == "coverage":
                result = service.run_coverage(conn, CoverageRequest.model_validate(body),
                                              progress=_progress())
            else:
                result = service.run_recommendations(
                    conn, RecommendRequest.model_validate(body), progress=_progress())
        except (GeoServiceError, ValidationError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    (print_scorecard if kind == "coverage" else print_plan)(result)
    return 0


def cmd_coverage(args: argparse.Namespace, settings: Settings) -> int:
    return _run(args, settings, "coverage", {})


def cmd_recommend(args: argparse.Namespace, settings: Settings) -> int:
    extra: dict[str, Any] = {"method": args.method, "time_budget_s": args.time_budget}
    if args.add is not None:
        extra["add"] = args.add
    if args.target_share is not None:
        extra["target_share"] = args.target_share
    return _run(args, settings, "recommendations", extra)


def add_commands(sub: Any) -> None:
    c = sub.add_parser("coverage", help="H3 coverage-gap scorecard for an area")
    add_region_args(c)
    c.set_defaults(func=cmd_coverage)
    r = sub.add_parser("recommend", help="where the next N stations should go")
    add_region_args(r)
    r.add_argument("--add", type=int, help="how many new sites")
    r.add_argument("--target-share", type=float, help="sites needed to reach this share")
    r.add_argument("--method", choices=["swap", "greedy", "exact"], default="swap",
                   help="swap: greedy + interchange search with a proven bound (default)")
    r.add_argument("--time-budget", type=float, default=3.0, metavar="SECONDS",
                   help="time the swap search and its bound may take (default 3, max 60)")
    r.set_defaults(func=cmd_recommend)
