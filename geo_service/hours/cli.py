"""``geo-service calendar enter | show | remove``: a year's holiday arrangement (调休).

Entering stores the year (:mod:`geo_service.hours.arrangements`); ``geo-service hours
refresh`` then recompiles the stations compiled without it. A bad file changes nothing
and exits 2 with every problem listed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geo_service.infra.settings import Settings


def cmd_enter(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.hours.arrangements import ArrangementError, read_arrangement, store_arrangement
    from geo_service.hours.calendars import package_last_year
    from geo_service.infra.db import connect

    try:
        arrangement = read_arrangement(Path(args.file), first_year=package_last_year() + 1)
    except ArrangementError as exc:
        print(f"error: {args.file}: nothing entered:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    with connect(settings.resolved_database_url()) as conn:
        replaced = store_arrangement(conn, arrangement)
    print(f"{'replaced' if replaced else 'entered'} {arrangement.year} "
          f"({arrangement.notice}): {len(arrangement.days_off)} day(s) off, "
          f"{len(arrangement.workdays)} make-up working day(s)")
    print("run `geo-service hours refresh` to apply it to the stored opening hours")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.hours.arrangements import load_arrangements
    from geo_service.hours.calendars import calendar_for, use_arrangements
    from geo_service.infra.db import connect

    with connect(settings.resolved_database_url()) as conn:
        entered = load_arrangements(conn)
    use_arrangements(entered)
    cal = calendar_for("CN")
    print(f"calendar: {cal.label}")
    for a in entered:
        print(f"{a.year}: {a.notice}, {len(a.days_off)} day(s) off, "
              f"{len(a.workdays)} make-up working day(s): "
              + ", ".join(d.isoformat() for d in sorted(a.workdays)))
    if cal.provisional:
        print(f"provisional (statutory days only) from {min(cal.provisional)}")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.hours.arrangements import delete_arrangement
    from geo_service.infra.db import connect

    with connect(settings.resolved_database_url()) as conn:
        found = delete_arrangement(conn, args.year)
    if not found:
        print(f"error: no arrangement entered for {args.year}", file=sys.stderr)
        return 2
    print(f"removed {args.year}; run `geo-service hours refresh` to apply it")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cal = sub.add_parser("calendar", help="public holidays: enter a year's official "
                                          "arrangement before the calendar package has it")
    csub = cal.add_subparsers(dest="calendarcmd", required=True)
    enter = csub.add_parser("enter", help="validate and store a year's days off and make-up "
                                          "working days (TOML: year, notice, days_off, "
                                          "workdays); replaces that year if entered before")
    enter.add_argument("file")
    enter.set_defaults(func=cmd_enter)
    show = csub.add_parser("show", help="the calendar label and the entered years")
    show.set_defaults(func=cmd_show)
    remove = csub.add_parser("remove", help="forget an entered year (provisional again)")
    remove.add_argument("year", type=int)
    remove.set_defaults(func=cmd_remove)
