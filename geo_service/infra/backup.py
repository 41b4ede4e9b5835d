"""Backups and restores of the whole database: ``geo-service backup`` / ``geo-service restore``.

A backup is ``pg_dump --format=custom`` of the service's database, so it
carries what a copy of the tables would lose: the PostGIS extension, the
Alembic revision, and the position of every sequence. The last matters most:
the change feed hands out ``station_change_seq`` numbers, and consumers keep
their cursor; were the sequence restarted, new changes would get numbers below
those cursors and every consumer would skip them.

A restore runs ``pg_restore`` in one transaction (a failure leaves the target
as it was), then migrates to head so an older backup comes up to the running
code. It refuses a target that already holds data unless ``force`` is given:
an operator who mistypes the URL must not replace the live database.

The client tools come from the same major version as the local server
(``/usr/lib/postgresql/15/bin``, falling back to ``PATH``); they connect by
URL like the service does, so no ``runuser`` is needed even as root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_service.infra.db import migrate
from geo_service.infra.localdb import PG_BIN
from geo_service.infra.settings import Settings

#: Tables whose rows come with the schema (migrations, extensions), not from users:
#: a database holding only these is as good as empty.
SCHEMA_TABLES = frozenset({"alembic_version", "amenity"})


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message says why."""


@dataclass(frozen=True)
class Restored:
    """What a restore left in the target database."""

    stations: int
    change_seq: int
    replaced: bool


def pg_tool(name: str) -> str:
    """The path of a PostgreSQL client tool (``pg_dump``, ``pg_restore``)."""
    local = PG_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install postgresql-client-15")
    return found


def _run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        tool = Path(cmd[0]).name
        raise BackupError(f"{tool} failed: {res.stderr.strip() or res.stdout.strip()}")


def backup(url: str, path: Path) -> int:
    """Dump the database at ``url`` into ``path``; returns the file's size in bytes.

    Written beside the target under a temporary name and renamed at the end,
    so an interrupted backup never leaves a truncated file that looks whole.
    """
    partial = path.with_name(path.name + ".partial")
    try:
        _run([pg_tool("pg_dump"), "--format=custom", f"--file={partial}", f"--dbname={url}"])
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path.stat().st_size


def _with_db(url: str, dbname: str) -> str:
    return make_conninfo(url, dbname=dbname)


def ensure_database(url: str) -> bool:
    """Create the database ``url`` names if it is missing; True when it was created.

    Made from ``template0``, so nothing another database's template holds
    (an extension, a table) collides with what the backup brings.
    """
    name = conninfo_to_dict(url).get("dbname")
    if not name:
        raise BackupError("the target URL names no database")
    try:
        admin = psycopg.connect(_with_db(url, "postgres"), autocommit=True)
    except psycopg.OperationalError:
        return False  # no maintenance database to ask: the target must already exist
    with admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
            sql.Identifier(str(name))))
    return True


_USER_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname), c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1
"""


def tables_with_rows(conn: psycopg.Connection[Any]) -> tuple[list[str], bool]:
    """The target's tables that hold user data, and whether it has any tables at all."""
    tables = conn.execute(_USER_TABLES).fetchall()
    filled = []
    for qualified, name in tables:
        if name in SCHEMA_TABLES:
            continue
        row = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {qualified})").fetchone()
        if row and row[0]:
            filled.append(qualified)
    return filled, bool(tables)


def restore(path: Path, url: str, *, force: bool = False) -> Restored:
    """Restore the backup ``path`` into the database ``url`` (created when missing).

    An empty target gets the backup as it is; a target with our schema but
    no data is cleaned first; one holding data is refused unless ``force``.
    """
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    ensure_database(url)
    with psycopg.connect(url, autocommit=True) as conn:
        filled, has_schema = tables_with_rows(conn)
    if filled and not force:
        shown = ", ".join(filled[:5]) + (" …" if len(filled) > 5 else "")
        raise BackupError(f"the target database already holds data ({shown}); restore into "
                          "a new database, or pass --force to replace it")
    cmd = [pg_tool("pg_restore"), "--exit-on-error", "--single-transaction", "--no-owner",
           "--no-acl", f"--dbname={url}"]
    if has_schema:
        cmd += ["--clean", "--if-exists"]
    _run([*cmd, str(path)])
    migrate(url)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*), coalesce(max(change_seq), 0) FROM station").fetchone()
    assert row is not None
    return Restored(stations=int(row[0]), change_seq=int(row[1]), replaced=bool(filled))


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    try:
        size = backup(settings.resolved_database_url(), Path(args.file))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"backup written: {args.file} ({size:,} bytes)")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    url = args.database_url or settings.resolved_database_url()
    try:
        done = restore(Path(args.file), url, force=args.force)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"restored {args.file}: {done.stations} stations, change feed at {done.change_seq}"
          + (" (replaced the data that was there)" if done.replaced else ""))
    return 0


def add_commands(sub: Any) -> None:
    """Register ``backup`` and ``restore`` on ``geo-service``."""
    b = sub.add_parser("backup", help="pg_dump the database into FILE (custom format)")
    b.add_argument("file", metavar="FILE")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="restore FILE into a new (or empty) database")
    r.add_argument("file", metavar="FILE")
    r.add_argument("--database-url", metavar="URL",
                   help="target database, created when missing (default: the service's)")
    r.add_argument("--force", action="store_true",
                   help="replace a target that already holds data")
    r.set_defaults(func=cmd_restore)
