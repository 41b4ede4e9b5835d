"""The ``geo-service`` command: database, migrations, seed, import, keys, users, serve."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geo_service.infra.paths import PROJECT_ROOT
from geo_service.infra.settings import Settings


def _url(settings: Settings) -> str:
    return settings.resolved_database_url()


def cmd_db_start(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.infra.localdb import LocalCluster

    if settings.database_url:
        print("GEO_DATABASE_URL is set: using that server, no local cluster started")
        return 0
    cluster = LocalCluster.default()
    cluster.start()
    print(f"local PostGIS running: {cluster.url}")
    return 0


def cmd_db_stop(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.infra.localdb import LocalCluster
    from geo_service.infra.pgbouncer import LocalPgBouncer

    LocalPgBouncer.default().stop()
    LocalCluster.default().stop()
    return 0


def cmd_db_pgbouncer(args: argparse.Namespace, settings: Settings) -> int:
    """Start the project-local PgBouncer (transaction pooling) and say how to use it."""
    import dataclasses

    from geo_service.infra.pgbouncer import LocalPgBouncer

    bouncer = dataclasses.replace(LocalPgBouncer.default(),
                                  statement_timeout_ms=settings.statement_timeout_ms)
    bouncer.start()
    # The memory index listens on a direct connection: LISTEN needs a session.
    print(f"PgBouncer (transaction pooling) running: {bouncer.url()}\n"
          f"serve through it: GEO_DB_PGBOUNCER=1 GEO_DATABASE_URL='{bouncer.url()}' "
          f"GEO_NEAREST_INDEX_DATABASE_URL='{bouncer.upstream.url}' geo-service serve")
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.infra.db import downgrade, migrate

    if args.downgrade:
        downgrade(_url(settings), args.downgrade)
    else:
        migrate(_url(settings), args.revision)
    print("schema at", args.downgrade or args.revision)
    return 0


def _print_report(report: dict[str, Any]) -> None:
    print(f"{report['format']}: {report['rows']} rows, {report['valid_rows']} valid; "
          f"created {report['created']}, updated {report['updated']}, "
          f"unchanged {report['unchanged']}; written: {report['written']}"
          + (" (dry run)" if report["dry_run"] else ""))
    for p in report["errors"]:
        where = f"row {p['row']}" + (f" (Excel row {p['sheet_row']})"
                                     if p.get("sheet_row") else "")
        print(f"  {where} [{p['code'] or '-'}] {p['field']}: {p['problem']}")
    for d in report["likely_duplicates"]:
        print(f"  likely duplicate: {d['code']} ~ {d['other_code']} ({d['distance_m']} m): "
              f"{d['name']} / {d['other_name']}")
    for k in report.get("skipped", []):
        print(f"  row {k['row']} [{k['code']}] skipped: {k['reason']}")
    for h in report.get("converted_hours", []):
        print(f"  row {h['row']} [{h['code']}] 开放时间 {h['given']!r} -> {h['opening_hours']!r}")


async def _import_file(url: str, path: Path, args: argparse.Namespace,
                       settings: Settings) -> dict[str, Any]:
    from psycopg import AsyncConnection

    from geo_service.coverage.demand import import_demand
    from geo_service.domain.coords import Crs
    from geo_service.imports.readers import Format, guess_format
    from geo_service.imports.run import Mode
    from geo_service.stations import importer

    data = path.read_bytes()
    fmt = Format(args.format) if args.format else guess_format(path.name, data)
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        if args.what == "demand":
            return await import_demand(
                conn, data, fmt, mode=Mode(args.mode), dry_run=args.dry_run,
                max_rows=10_000_000, crs=Crs(args.crs))
        return await importer.import_bytes(
            conn, data, fmt, mode=Mode(args.mode), dry_run=args.dry_run,
            principal=None, max_rows=max(settings.max_import_rows, 10_000_000),
            crs=Crs(args.crs), duplicate_within_m=settings.duplicate_distance_m,
        )


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain.errors import GeoServiceError

    try:
        report = asyncio.run(_import_file(_url(settings), Path(args.file), args, settings))
    except GeoServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    _print_report(report)
    return 0 if report["written"] or args.dry_run else 1


def cmd_template(args: argparse.Namespace, settings: Settings) -> int:
    """Write the station import template (the same bytes as GET /v1/stations:template.xlsx)."""
    import os

    from geo_service.stations.template import FILENAME, template_xlsx

    out = Path(args.out or FILENAME)
    part = out.with_name(f".{out.name}.part")
    try:
        part.write_bytes(template_xlsx())
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)
    print(f"wrote the station import template to {out}: fill the first sheet from row 3 "
          "(row 2 is an example the import skips), then geo-service import stations "
          f"{out.name}")
    return 0


def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.sample.seed import load_seed

    summary = load_seed(_url(settings), PROJECT_ROOT / "seed")
    print(summary)
    return 0


def cmd_sample_remove(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.infra.db import connect
    from geo_service.sample.remove import remove_sample

    with connect(_url(settings)) as conn:
        print(json.dumps(remove_sample(conn)))
    return 0


def _keys(args: argparse.Namespace, settings: Settings,
          work: Callable[[Any], Any]) -> int:
    """Run a key command as the operator (no key: whoever runs this reaches the database)."""
    from geo_service.domain.errors import GeoServiceError
    from geo_service.infra.db import connect

    with connect(_url(settings)) as conn:
        try:
            result = work(conn)
        except GeoServiceError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
    if isinstance(result, tuple):  # (token, key): the token goes to stdout, alone
        token, key = result
        print(token)
        print(f"key {key['id']} ({key['name']}, {key['role']}"
              f"{', area ' + key['area_code'] if key['area_code'] else ''}"
              f"{', expires ' + key['expires_at'].isoformat() if key['expires_at'] else ''}"
              "): store the token now, only a hash is kept", file=sys.stderr)
        return 0
    rows = result if isinstance(result, list) else [result]
    if getattr(args, "json", False):
        print(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return 0
    heads = ("id", "prefix", "name", "role", "area_code", "state", "expires_at",
             "last_used_at", "revoked_at", "replaces_id")
    table = [[_cell(r[h]) for h in heads] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(heads)]
    for line in [list(heads), *table]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain import auth

    return _keys(args, settings, lambda conn: auth.issue_key(
        conn, name=args.name, role=args.role, area_code=args.area,
        expires_in=auth.parse_duration(args.expires_in, "--expires-in")
        if args.expires_in else None))


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain import auth

    return _keys(args, settings, lambda conn: [
        k for k in auth.list_keys(conn, None) if args.all or k["state"] == "active"])


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain import auth

    return _keys(args, settings, lambda conn: auth.revoke_key(conn, args.id, None))


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain import auth

    return _keys(args, settings, lambda conn: auth.rotate_key(
        conn, args.id, None, auth.parse_duration(args.grace, "--grace")))


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    """A station's audit trail, oldest first: who, when, and each change old → new."""
    import psycopg

    from geo_service.domain.audit import station_history
    from geo_service.domain.errors import GeoServiceError

    async def go() -> dict[str, Any]:
        async with await psycopg.AsyncConnection.connect(_url(settings),
                                                         autocommit=True) as conn:
            return await station_history(conn, args.code, after=args.after, limit=args.limit)

    try:
        result = asyncio.run(go())
    except GeoServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, default=str, ensure_ascii=False, indent=2))
        return 0
    for e in result["entries"]:
        via = f" (import {e['import_id']})" if e["import_id"] else ""
        print(f"{e['at']:%Y-%m-%d %H:%M:%S}  #{e['id']}  {e['action']}  by {e['actor']}{via}")
        for field, change in e["changes"].items():
            print(f"    {field}: {_short(change['old'])} → {_short(change['new'])}")
    if result["next_after"]:
        print(f"… more: --after {result['next_after']}")
    return 0


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_hours_refresh(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.hours.calendar_hours import current_label
    from geo_service.infra.db import connect
    from geo_service.stations.maintenance import refresh_hours

    with connect(_url(settings)) as conn:
        done = refresh_hours(conn, within_days=args.within_days)
    print(f"calendar: {current_label(settings.default_timezone)}")
    print(f"recompiled opening hours of {done.recompiled} station(s) and mobile stop(s)")
    for what, names in (("answer changed", done.changed), ("known further ahead", done.extended)):
        if names:
            shown = ", ".join(names[:50]) + (f", … ({len(names)})" if len(names) > 50 else "")
            print(f"{what}: {shown}")
    return 0


def listening_on(settings: Settings, host: str) -> Settings:
    """The settings with the address the server listens on allowed as a link Host:
    clients that reach it by that address get links to it (not for 0.0.0.0 / ::)."""
    name = host.strip("[]").lower()
    if name in ("0.0.0.0", "::", "") or name in settings.allowed_hosts:
        return settings
    return settings.model_copy(update={"allowed_hosts": [*settings.allowed_hosts, name]})


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from geo_service.web import serving
    from geo_service.web.app import create_served_app

    settings = listening_on(settings, args.host)
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    app = None
    if args.workers == 1:
        app = create_served_app(settings)
    else:
        # Each worker builds its app from the environment (settings do not cross a
        # process start); made here first, the privacy key cannot race between them.
        settings.feedback_key()
        os.environ["GEO_ALLOWED_HOSTS"] = ",".join(settings.allowed_hosts)
    try:
        serving.run(
            app, host=args.host, port=args.port, workers=args.workers,
            graceful_timeout_s=args.graceful_timeout, loop="uvloop",
            http=serving.http_protocol(settings.write_coalescing), log_level=args.log_level,
            access_log=False,
            # Never take the client from X-Forwarded-For here (uvicorn trusts it from
            # 127.0.0.1 by default): only settings.trusted_proxies decide, in
            # operations.common.client_address.
            proxy_headers=False, server_header=False,
        )
    except serving.UvicornChanged as exc:
        print(f"error: {exc}; install the uvicorn pyproject.toml pins", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="geo-service", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    db = sub.add_parser("db", help="the project-local PostGIS cluster")
    dbsub = db.add_subparsers(dest="dbcmd", required=True)
    dbsub.add_parser("start").set_defaults(func=cmd_db_start)
    dbsub.add_parser("stop").set_defaults(func=cmd_db_stop)
    dbsub.add_parser("pgbouncer", help="start a PgBouncer in front of the local cluster "
                                       "(transaction pooling, Unix socket)").set_defaults(
        func=cmd_db_pgbouncer)
    dbsub.add_parser("url").set_defaults(func=lambda a, s: print(_url(s)) or 0)

    m = sub.add_parser("migrate", help="apply Alembic migrations")
    m.add_argument("--revision", default="head")
    m.add_argument("--downgrade", metavar="REV", help="downgrade to REV (e.g. base)")
    m.set_defaults(func=cmd_migrate)

    sub.add_parser("seed", help="load the labelled sample data (idempotent)").set_defaults(
        func=cmd_seed)

    sample = sub.add_parser("sample", help="the labelled sample data")
    sample.add_subparsers(dest="samplecmd", required=True).add_parser(
        "remove", help="remove the sample stations (as tombstones in the change feed), their "
                       "stops, inspections, visits, reports, awards and confirmations, the "
                       "sample demand and the runs sample data is in; nothing else").set_defaults(
        func=cmd_sample_remove)

    imp = sub.add_parser("import", help="import data files")
    impsub = imp.add_subparsers(dest="what", required=True)
    for what, help_text in (("stations", "stations from CSV, XLSX or GeoJSON"),
                            ("demand", "weighted demand points from CSV, XLSX or GeoJSON")):
        p_imp = impsub.add_parser(what, help=help_text)
        p_imp.add_argument("file")
        p_imp.add_argument("--format", choices=["csv", "xlsx", "geojson"])
        p_imp.add_argument("--mode", choices=["all_or_nothing", "skip_bad_rows"],
                           default="all_or_nothing")
        p_imp.add_argument("--crs", choices=["wgs84", "gcj02", "bd09"], default="wgs84")
        p_imp.add_argument("--dry-run", action="store_true")
        p_imp.set_defaults(func=cmd_import)

    tp = sub.add_parser("template", help="write the station import template (XLSX, Chinese "
                                         "columns, drop-downs, 说明 sheet)")
    tp.add_argument("-o", "--out", help="file to write (default: station-import-template.xlsx)")
    tp.set_defaults(func=cmd_template)

    keys = sub.add_parser("keys", help="API keys")
    ksub = keys.add_subparsers(dest="keycmd", required=True)
    kc = ksub.add_parser("create", help="create a key and print it once")
    kc.add_argument("--name", required=True)
    kc.add_argument("--role", choices=["admin", "editor", "inspector"], required=True)
    kc.add_argument("--area", help="admin area code the key is limited to")
    kc.add_argument("--expires-in", metavar="DURATION", help="e.g. 90d, 12h, 2w (default: "
                                                              "no expiry)")
    kc.set_defaults(func=cmd_keys_create)
    kl = ksub.add_parser("list", help="keys with their state, expiry and last use")
    kl.add_argument("--all", action="store_true", help="also revoked and expired keys")
    kl.add_argument("--json", action="store_true")
    kl.set_defaults(func=cmd_keys_list)
    kr = ksub.add_parser("revoke", help="revoke a key: its next request gets a 401")
    kr.add_argument("id", type=int)
    kr.add_argument("--json", action="store_true")
    kr.set_defaults(func=cmd_keys_revoke)
    ko = ksub.add_parser("rotate", help="issue a replacement and retire the old key")
    ko.add_argument("id", type=int)
    ko.add_argument("--grace", default="0m", metavar="DURATION",
                    help="how long the old key keeps working (e.g. 1h; default: stops now)")
    ko.set_defaults(func=cmd_keys_rotate)

    hi = sub.add_parser("history", help="a station's audit trail: who changed what, when")
    hi.add_argument("code")
    hi.add_argument("--after", type=int, default=0, help="entries after this id")
    hi.add_argument("--limit", type=int, default=100)
    hi.add_argument("--json", action="store_true")
    hi.set_defaults(func=cmd_history)

    hours = sub.add_parser("hours", help="opening-hours maintenance")
    hsub = hours.add_subparsers(dest="hourscmd", required=True)
    hr = hsub.add_parser("refresh", help="recompile hours nearing their horizon or compiled with "
                                       "an older holiday calendar (daily, and after upgrades)")
    hr.add_argument("--within-days", type=int, default=60)
    hr.set_defaults(func=cmd_hours_refresh)

    from geo_service.coverage.cli import add_commands
    from geo_service.feeds.export_cli import add_parser as add_export_parser
    from geo_service.maps.cli import add_commands as add_map_commands

    add_commands(sub)
    add_export_parser(sub)
    add_map_commands(sub)
    from geo_service.operations.cli import add_commands as add_operations_commands

    add_operations_commands(sub)
    from geo_service.infra.backup import add_commands as add_backup_commands

    add_backup_commands(sub)
    from geo_service.areas.cli import add_commands as add_area_commands

    add_area_commands(sub)
    from geo_service.hours.cli import add_commands as add_calendar_commands

    add_calendar_commands(sub)
    from geo_service.coverage.demand_cli import add_commands as add_demand_commands

    add_demand_commands(sub)
    from geo_service.console.cli import add_commands as add_users_commands

    add_users_commands(sub)
    from geo_service.posters.cli import add_commands as add_poster_commands

    add_poster_commands(sub)
    from geo_service.bulletin.cli import add_commands as add_bulletin_commands

    add_bulletin_commands(sub)
    from geo_service.roads.cli import add_commands as add_road_commands

    add_road_commands(sub)

    s = sub.add_parser("serve", help="serve the API")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--log-level", default="info")
    s.add_argument("--workers", type=int, default=1,
                   help="API processes sharing the port (default 1); about one per core")
    s.add_argument("--graceful-timeout", type=int, default=30, metavar="SECONDS",
                   help="on SIGTERM, wait this long for requests in progress (a streamed "
                        "feed, say) before cancelling them (default 30)")
    s.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    result: int = args.func(args, settings)
    return result

