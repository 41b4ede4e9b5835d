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

Photos (issue 27). The database holds which photo belongs where, the photo store holds
the bytes, so a backup carries both: the file is a tar archive of ``database.dump``
(the ``pg_dump`` above), ``manifest.json`` (the store's kind and every photo hash it
holds) and, for the local store, ``photos/<sha>.jpg`` (each file once, by hash). A
restore checks every photo's bytes against its name before it writes it into the
store (an altered archive is refused, not half restored). With the S3 store
(``GEO_PHOTO_STORE=s3``) the bucket is backed up by its own versioning, which a
deployment turns on: the archive does not copy the objects, and its manifest lists
the hashes the bucket must hold. A plain ``pg_dump`` file from before photos still
restores.

The client tools come from the same major version as the local server
(``/usr/lib/postgresql/15/bin``, falling back to ``PATH``); they connect by
URL like the service does, so no ``runuser`` is needed even as root.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_service.infra.db import migrate
from geo_service.infra.localdb import PG_BIN
from geo_service.infra.photo_store import SHA_RE, SUFFIXES, LocalStore, PhotoStore, store_for
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
    photos: int = 0


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


DUMP_MEMBER = "database.dump"
MANIFEST_MEMBER = "manifest.json"
PHOTOS_DIR = "photos/"


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def backup(url: str, path: Path, store: PhotoStore | None = None) -> int:
    """Dump the database at ``url`` and the photos of ``store`` into the archive ``path``;
    returns its size in bytes.

    Written beside the target under a temporary name and renamed at the end,
    so an interrupted backup never leaves a truncated file that looks whole.
    """
    partial = path.with_name(path.name + ".partial")
    dump = path.with_name(path.name + ".dump.partial")
    try:
        _run([pg_tool("pg_dump"), "--format=custom", f"--file={dump}", f"--dbname={url}"])
        hashes = sorted(store.hashes()) if store is not None else []
        manifest = {"format": 1, "store": store.kind if store is not None else None,
                    "photos": hashes, "photo_files_included": isinstance(store, LocalStore)}
        with tarfile.open(partial, "w") as archive:
            archive.add(dump, DUMP_MEMBER)
            _add_bytes(archive, MANIFEST_MEMBER, json.dumps(manifest, indent=1).encode())
            if isinstance(store, LocalStore):
                for sha in hashes:
                    file = store.path_of(sha)
                    if file is not None:
                        archive.add(file, PHOTOS_DIR + file.name)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
        dump.unlink(missing_ok=True)
    return path.stat().st_size


def _restore_photos(archive: tarfile.TarFile, store: PhotoStore | None) -> int:
    """Put the archive's photo files into ``store``, each checked against its hash."""
    types = {suffix: content_type for content_type, suffix in SUFFIXES.items()}
    count = 0
    for member in archive.getmembers():
        if not member.isfile() or not member.name.startswith(PHOTOS_DIR):
            continue
        stem, _, suffix = member.name[len(PHOTOS_DIR):].partition(".")
        extracted = archive.extractfile(member)
        if not SHA_RE.fullmatch(stem) or f".{suffix}" not in types or extracted is None:
            raise BackupError(f"unexpected file in the backup: {member.name}")
        data = extracted.read()
        if hashlib.sha256(data).hexdigest() != stem:
            raise BackupError(f"photo {member.name} in the backup does not match its hash")
        if store is None:
            raise BackupError("the backup holds photos and no photo store was given")
        store.put(stem, data, types[f".{suffix}"])
        count += 1
    return count


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


def restore(path: Path, url: str, *, force: bool = False,
            store: PhotoStore | None = None) -> Restored:
    """Restore the backup ``path`` into the database ``url`` (created when missing), and
    its photos into ``store``.

    An empty target gets the backup as it is; a target with our schema but
    no data is cleaned first; one holding data is refused unless ``force``.
    """
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    if not tarfile.is_tarfile(path):  # a plain pg_dump file, from before photos
        return _restore_dump(path, url, force=force)
    with tarfile.open(path) as archive, tempfile.TemporaryDirectory() as tmp:
        try:
            member = archive.getmember(DUMP_MEMBER)
        except KeyError as exc:
            raise BackupError(f"{path}: not a geo-service backup (no {DUMP_MEMBER})") from exc
        source = archive.extractfile(member)
        if source is None:
            raise BackupError(f"{path}: {DUMP_MEMBER} is not a file")
        dump = Path(tmp) / DUMP_MEMBER
        with dump.open("wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
        done = _restore_dump(dump, url, force=force)
        photos = _restore_photos(archive, store)
    return Restored(stations=done.stations, change_seq=done.change_seq,
                    replaced=done.replaced, photos=photos)


def _restore_dump(path: Path, url: str, *, force: bool) -> Restored:
    """:func:`restore` of the database alone, from a ``pg_dump`` custom-format file."""
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
        size = backup(settings.resolved_database_url(), Path(args.file), store_for(settings))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"backup written: {args.file} ({size:,} bytes)")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    url = args.database_url or settings.resolved_database_url()
    try:
        done = restore(Path(args.file), url, force=args.force, store=store_for(settings))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"restored {args.file}: {done.stations} stations, change feed at {done.change_seq}, "
          f"{done.photos} photo files"
          + (" (replaced the data that was there)" if done.replaced else ""))
    return 0


def add_commands(sub: Any) -> None:
    """Register ``backup`` and ``restore`` on ``geo-service``."""
    b = sub.add_parser("backup",
                       help="the database (pg_dump) and the photos into FILE (a tar archive)")
    b.add_argument("file", metavar="FILE")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="restore FILE into a new (or empty) database")
    r.add_argument("file", metavar="FILE")
    r.add_argument("--database-url", metavar="URL",
                   help="target database, created when missing (default: the service's)")
    r.add_argument("--force", action="store_true",
                   help="replace a target that already holds data")
    r.set_defaults(func=cmd_restore)
