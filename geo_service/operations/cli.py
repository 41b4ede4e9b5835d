"""``geo-service stops|inspections|visits|reports``: station operations from the command line.

Every command calls the same service function as its API endpoint (no SQL and
no web framework here) and validates its options with the value types and
models of :mod:`geo_service.operations.schemas` that the routers declare
(:func:`valid`); rules no type can state live in the services, so both paths
meet them. A value the API refuses is refused here too, naming the field as
the option the user typed (``--days`` for ``days``, ``CODE`` for the path).
Instants follow :func:`geo_service.domain.params.instant`: no offset means China time.
``--json`` prints exactly the body the API would send; the default is a
readable table, and ``--csv FILE`` also writes the table for a spreadsheet. A
refused input or an unknown code prints ``error: …`` and exits 2, never a
traceback.

Writes act as an admin named ``cli`` without an API key (whoever can run this
command can reach the database anyway) and use the current version of the
station or report, unless ``--version`` names the one the user edited from.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import typing
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from geo_service.infra.settings import Settings
from geo_service.operations.cli_output import Columns, print_table, write_csv

if typing.TYPE_CHECKING:
    from psycopg import AsyncConnection

    from geo_service.domain.principal import Principal

T = TypeVar("T")
Command = Callable[[argparse.Namespace, Settings], int]


# --------------------------------------------------------------------------- plumbing


def valid(kind: Any, value: Any, option: str) -> Any:
    """``value`` read as the API reads a parameter of type ``kind`` (a value type of
    :mod:`geo_service.operations.schemas`); None stays None (the option was not
    given). A refused value is a 422 naming ``option``.
    """
    from pydantic import TypeAdapter, ValidationError

    from geo_service.domain.errors import invalid

    if value is None:
        return None
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as exc:
        raise invalid(option, str(exc.errors()[0]["msg"])) from None


def _guarded(command: Command) -> Command:
    """Refused input, unknown codes and conflicts → ``error: …`` on stderr and exit 2."""

    @functools.wraps(command)
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from psycopg import OperationalError
        from pydantic import ValidationError

        from geo_service.domain.errors import GeoServiceError

        try:
            return command(args, settings)
        except GeoServiceError as exc:
            said = [f"{f}: {p}" for f, p in exc.fields if f"{f}: {p}" not in exc.message]
            print(f"error: {exc.message}" + (f" ({'; '.join(said)})" if said else ""),
                  file=sys.stderr)
        except ValidationError as exc:
            for err in exc.errors()[:5]:
                where = ".".join(str(p) for p in err["loc"]) or "FILE"
                print(f"error: {where}: {err['msg']}", file=sys.stderr)
        except OSError as exc:
            print(f"error: {exc.filename or 'FILE'}: {exc.strerror or exc}", file=sys.stderr)
        except OperationalError as exc:
            print(f"error: database not reachable: {exc}", file=sys.stderr)
            return 1
        return 2

    return run


def _with_db(settings: Settings, work: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
    """Run ``work`` on one autocommit connection, as the API's pool would hand it one."""
    from psycopg import AsyncConnection

    async def go() -> T:
        url = settings.resolved_database_url()
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            return await work(conn)

    return asyncio.run(go())


def _cli_principal() -> Principal:
    """An admin without a key: the key columns of inspections and resolutions are nullable."""
    from geo_service.domain.principal import Principal

    return Principal(key_id=None, name="cli", role="admin",
                     area_code=None)


# --------------------------------------------------------------------------- output


def _emit(args: argparse.Namespace, settings: Settings, result: dict[str, Any],
          rows: Sequence[dict[str, Any]], columns: Columns, head: Sequence[str] = (),
          foot: Sequence[str] = ()) -> int:
    from geo_service.domain.encoding import dumps

    if args.json:
        print(dumps(result).decode())
    else:
        for text in head:
            print(text)
        print_table(rows, columns, ZoneInfo(settings.default_timezone))
        for text in foot:
            print(text)
    if getattr(args, "csv", None):
        write_csv(Path(args.csv), rows, columns)
        print(f"wrote {len(rows)} rows to {args.csv}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- stops

_STOP_COLUMNS: Columns = (("now", "now"), ("seq", "seq"), ("name", "name"), ("lon", "lon"),
                          ("lat", "lat"), ("opening_hours", "opening_hours"),
                          ("valid_from", "from"), ("valid_to", "to"))


def _show_schedule(args: argparse.Namespace, settings: Settings, result: dict[str, Any],
                   what: str) -> int:
    current = result["current_stop"]
    rows = [{**s, "now": "*" if current and s["seq"] == current["seq"] else ""}
            for s in result["stops"]]
    where = f"at stop {current['seq']} {current['name']}" if current else "at no stop"
    at = result["at"].astimezone(ZoneInfo(settings.default_timezone))
    head = [f"{result['code']} (version {result['version']}) {what}; {at:%Y-%m-%d %H:%M %Z}: "
            f"{where}"]
    return _emit(args, settings, result, rows, _STOP_COLUMNS, head)


@_guarded
def cmd_stops_show(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain.coords import Crs
    from geo_service.operations import stops
    from geo_service.operations.schemas import Instant, StationCode

    code = valid(StationCode, args.code, "CODE")
    at = valid(Instant, args.at, "--at")
    crs = valid(Crs, args.crs, "--crs")
    result = _with_db(settings, lambda conn: stops.get_schedule(conn, code, at, crs))
    return _show_schedule(args, settings, result, "schedule")


@_guarded
def cmd_stops_set(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain.coords import Crs
    from geo_service.operations import stops
    from geo_service.operations.common import station_ref
    from geo_service.operations.schemas import ScheduleIn, StationCode

    code = valid(StationCode, args.code, "CODE")
    crs = valid(Crs, args.crs, "--crs")
    body = ScheduleIn.model_validate_json(Path(args.file).read_bytes())
    if args.version is not None:
        body = ScheduleIn(stops=body.stops, version=args.version)

    async def work(conn: AsyncConnection[Any]) -> dict[str, Any]:
        edit = body
        if edit.version is None:
            current = await station_ref(conn, code)
            edit = body.model_copy(update={"version": current["version"]})
        return await stops.replace_schedule(conn, _cli_principal(), code, edit, crs, None)

    return _show_schedule(args, settings, _with_db(settings, work), "schedule replaced")


# --------------------------------------------------------------------------- inspections


@_guarded
def cmd_inspections_overdue(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.operations import inspections as svc
    from geo_service.operations.schemas import AreaCode, Days, OverdueLimit

    area = valid(AreaCode, args.area, "--area")
    days = valid(Days, args.days, "--days")
    limit = valid(OverdueLimit, args.limit, "--limit")
    result = _with_db(settings, lambda conn: svc.overdue(conn, area=area, days=days,
                                                         limit=limit))
    samples = sum(r["sample"] for r in result["stations"])
    head = [f"{result['total']} published stations not verified (inspection or imported "
            f"最近核实日期) within {result['days']} days "
            f"(as of {result['as_of']}); showing {result['count']}"]
    foot = [f"NOTE: {samples} of them are SAMPLE DATA"] if samples else []
    columns = (("code", "code"), ("name", "name"), ("status", "status"),
               ("district", "district"), ("last_inspected_on", "last inspected"),
               ("last_verified_on", "last verified"), ("days_since", "days since"))
    rows = [{**r, "last_inspected_on": r["last_inspected_on"] or "never",
             "last_verified_on": r["last_verified_on"] or "never"}
            for r in result["stations"]]
    return _emit(args, settings, result, rows, columns, head, foot)


@_guarded
def cmd_inspections_trend(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.operations import inspections as svc
    from geo_service.operations.schemas import AreaCode, Period, TrendDate

    area = valid(AreaCode, args.area, "--area")
    period = valid(Period, args.period, "--period")
    start = valid(TrendDate, args.from_, "--from")
    end = valid(TrendDate, args.to, "--to")
    result = _with_db(settings, lambda conn: svc.trend(conn, area=area, period=period,
                                                       start=start, end=end))
    columns = (("district_code", "district"), ("district", "name"), ("period", "period"),
               ("inspections", "inspections"), ("stations", "stations"),
               ("mean_ten_ones", "mean ten-ones"), ("all_ten_share", "all ten"),
               ("mean_score", "mean score"), ("scored", "scored"))
    head = [f"ten-ones compliance per district and {result['period']}"]
    return _emit(args, settings, result, result["rows"], columns, head)


@_guarded
def cmd_inspections_missing(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.operations import inspections as svc
    from geo_service.operations.schemas import AreaCode, Days

    area = valid(AreaCode, args.area, "--area")
    days = valid(Days, args.days, "--days")
    result = _with_db(settings, lambda conn: svc.missing_items(conn, area=area, days=days))
    columns = (("code", "code"), ("label_zh", "item"), ("label_en", "item (en)"),
               ("missing", "missing"), ("broken", "broken"), ("total", "total"))
    head = [f"latest inspections of {result['stations']} published stations"
            + (f" (from the last {result['days']} days)" if result["days"] else "")]
    return _emit(args, settings, result, result["items"], columns, head)


@_guarded
def cmd_inspections_record(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.operations import inspections as svc
    from geo_service.operations.inspection_schemas import InspectionCreate
    from geo_service.operations.schemas import StationCode

    code = valid(StationCode, args.code, "CODE")
    body = InspectionCreate.model_validate_json(Path(args.file).read_bytes())
    result = _with_db(settings, lambda conn: svc.record_inspection(
        conn, _cli_principal(), code, body.model_dump()))
    head = [f"inspection {result['id']} of {result['station_code']} on {result['inspected_on']}: "
            f"{result['ten_ones_count']}/10 present; "
            + (f"applied, station version {result['station_version']}" if result["applied"]
               else "history only (a later inspection exists)")]
    rows = [{"item": code, "state": state} for code, state in result["items"].items()]
    return _emit(args, settings, result, rows, (("item", "item"), ("state", "state")), head)


# --------------------------------------------------------------------------- visits


@_guarded
def cmd_visits_counts(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.operations import visits
    from geo_service.operations.schemas import AreaCode, CountDate, Group, StationCode

    group = valid(Group, args.group, "--group")
    area = valid(AreaCode, args.area, "--area")
    station = valid(StationCode, args.station, "--station")
    start = valid(CountDate, args.from_, "--from")
    end = valid(CountDate, args.to, "--to")
    if args.month is not None:
        start, end = visits.month_range(args.month, given=start is not None or end is not None)
    result = _with_db(settings, lambda conn: visits.visit_counts(
        conn, settings, group=group, area=area, station=station, start=start, end=end))
    scope = "".join(f", {k} {result[k]}" for k in ("area", "station") if result[k])
    head = [f"check-ins (person-times) per {result['group']}, {result['from']} to "
            f"{result['to']} ({result['timezone']}){scope}"]
    foot = [f"total: {result['total']}"]
    columns = (("key", result["group"]), ("label", "label"), ("count", "count"))
    return _emit(args, settings, result, result["rows"], columns, head, foot)


# --------------------------------------------------------------------------- reports

_REPORT_COLUMNS: Columns = (
    ("id", "id"), ("station", "station"), ("station_name", "name"), ("kind", "kind"),
    ("amenity", "amenity"), ("status", "status"), ("version", "version"),
    ("created_at", "reported"), ("comment", "comment"))


@_guarded
def cmd_reports_list(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.operations import reports
    from geo_service.operations.schemas import (
        AreaCode,
        ReportKind,
        ReportLimit,
        ReportStatusFilter,
        StationCode,
    )

    status = valid(ReportStatusFilter, args.status, "--status")
    kind = valid(ReportKind, args.kind, "--kind")
    station = valid(StationCode, args.station, "--station")
    area = valid(AreaCode, args.area, "--area")
    limit = valid(ReportLimit, args.limit, "--limit")
    result = _with_db(settings, lambda conn: reports.list_reports(
        conn, settings, _cli_principal(), status=status, kind=kind, station=station,
        area=area, limit=limit, cursor=None))
    foot = ["(more: raise --limit or narrow the filters)"] if result["next_cursor"] else []
    return _emit(args, settings, result, result["items"], _REPORT_COLUMNS,
                 [f"{result['count']} {status} reports, oldest first"], foot)


@_guarded
def cmd_reports_resolve(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.operations import reports
    from geo_service.operations.schemas import ReportId, ResolutionIn

    report_id = valid(ReportId, args.id, "ID")

    async def work(conn: AsyncConnection[Any]) -> dict[str, Any]:
        version = args.version
        if version is None:
            version = (await reports.get_report(conn, report_id))["version"]
        body = ResolutionIn(action=args.action, note=args.note, version=version)
        return await reports.resolve_report(conn, settings, _cli_principal(), report_id,
                                            body.action, body.note, body.version)

    result = _with_db(settings, work)
    head = [f"report {result['id']} ({result['kind']} at {result['station']}) is now "
            f"{result['status']}, version {result['version']}"]
    columns = (("action", "action"), ("editor", "editor"), ("created_at", "at"),
               ("note", "note"))
    return _emit(args, settings, result, result["resolutions"], columns, head)


# --------------------------------------------------------------------------- parsers


def _output(p: argparse.ArgumentParser, table: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="print the API's JSON body instead")
    if table:
        p.add_argument("--csv", metavar="FILE", help="also write the table as CSV (for Excel)")


def _range(p: argparse.ArgumentParser) -> None:
    p.add_argument("--area", help="admin area code, any level")
    p.add_argument("--from", dest="from_", metavar="DATE", help="first day, inclusive")
    p.add_argument("--to", metavar="DATE", help="last day, inclusive")


def add_commands(sub: Any) -> None:
    """Register ``stops``, ``inspections``, ``visits`` and ``reports`` on ``geo-service``."""
    crs = {"default": "wgs84", "help": "coordinates of the file/answer: wgs84, gcj02 or bd09"}

    stops = sub.add_parser("stops", help="mobile stations' schedules of stops")
    ssub = stops.add_subparsers(dest="stopscmd", required=True)
    show = ssub.add_parser("show", help="a schedule, the current stop marked *")
    show.add_argument("code", metavar="CODE")
    show.add_argument("--at", metavar="ISO", help="instant (default now; no offset: China time)")
    show.add_argument("--crs", **crs)
    _output(show)
    show.set_defaults(func=cmd_stops_show)
    put = ssub.add_parser("set", help='replace a schedule from a JSON file {"stops": [...]}')
    put.add_argument("code", metavar="CODE")
    put.add_argument("file", metavar="FILE.json")
    put.add_argument("--version", help="the station version edited from (default: current)")
    put.add_argument("--crs", **crs)
    _output(put)
    put.set_defaults(func=cmd_stops_set)

    insp = sub.add_parser("inspections", help="inspection planning: overdue, trend, "
                                              "missing items; record one")
    isub = insp.add_subparsers(dest="inspcmd", required=True)
    od = isub.add_parser("overdue", help="stations never inspected or not for --days days")
    od.add_argument("--area", help="admin area code, any level")
    od.add_argument("--days", default=365)
    od.add_argument("--limit", default=50)
    _output(od)
    od.set_defaults(func=cmd_inspections_overdue)
    tr = isub.add_parser("trend", help="ten-ones compliance per district and period")
    _range(tr)
    tr.add_argument("--period", default="month", help="month, quarter or year")
    _output(tr)
    tr.set_defaults(func=cmd_inspections_trend)
    mi = isub.add_parser("missing-items", help="ten-ones items most often missing or broken")
    mi.add_argument("--area", help="admin area code, any level")
    mi.add_argument("--days", help="only latest inspections this recent")
    _output(mi)
    mi.set_defaults(func=cmd_inspections_missing)
    rec = isub.add_parser("record", help="record an inspection from a JSON file (API body)")
    rec.add_argument("code", metavar="CODE")
    rec.add_argument("file", metavar="FILE.json")
    _output(rec, table=False)
    rec.set_defaults(func=cmd_inspections_record)

    vis = sub.add_parser("visits", help="check-ins (person-times served)")
    vsub = vis.add_subparsers(dest="visitscmd", required=True)
    vc = vsub.add_parser("counts", help="check-ins per group, with the total")
    vc.add_argument("--group", default="station",
                    help="station, district, worker_type, day, week or month")
    _range(vc)
    vc.add_argument("--month", metavar="YYYY-MM",
                    help="the whole calendar month (instead of --from/--to)")
    vc.add_argument("--station", metavar="CODE", help="only this station")
    _output(vc)
    vc.set_defaults(func=cmd_visits_counts)

    rep = sub.add_parser("reports", help="worker reports: list and decide")
    rsub = rep.add_subparsers(dest="reportscmd", required=True)
    ls = rsub.add_parser("list", help="reports oldest first")
    ls.add_argument("--status", default="open", help="open, resolved, rejected or all")
    ls.add_argument("--kind", help="closed, amenity_missing, amenity_broken, wrong_location, "
                                   "moved or other")
    ls.add_argument("--area", help="admin area code, any level")
    ls.add_argument("--station", metavar="CODE")
    ls.add_argument("--limit", default=100)
    _output(ls)
    ls.set_defaults(func=cmd_reports_list)
    rs = rsub.add_parser("resolve", help="resolve, reject or reopen a report")
    rs.add_argument("id", metavar="ID")
    rs.add_argument("--action", required=True, help="resolved, rejected or reopened")
    rs.add_argument("--note", metavar="TEXT")
    rs.add_argument("--version", type=int, help="the report version decided on "
                                                "(default: current)")
    _output(rs, table=False)
    rs.set_defaults(func=cmd_reports_resolve)
