"""A project-local PostgreSQL + PostGIS cluster, so `make run` needs no server.

`initdb` and `postgres` refuse to run as root, and CI runs as root: when we
are root the cluster is owned by an unprivileged system user (``postgres``
from the Debian package, or ``geoservice`` created on demand) and every server
command goes through ``runuser``. The server listens only on a Unix socket
inside the project folder, so several checkouts on one machine never collide
on a port.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from geo_service.infra.paths import PROJECT_ROOT

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DB_NAME = "geo"
DB_USER = "geo"


class LocalDbError(RuntimeError):
    """The local cluster could not be prepared or started."""


def _owner() -> str | None:
    """The unprivileged user that owns the cluster when we run as root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "geoservice"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "geoservice"],
        check=True,
    )
    return "geoservice"


@dataclass(frozen=True)
class LocalCluster:
    """Paths and commands of the cluster under ``<root>/.pgdata``."""

    root: Path
    #: Throwaway clusters (the replica tests' primary and standby) take less memory.
    shared_buffers: str = "512MB"

    @classmethod
    def default(cls) -> LocalCluster:
        return cls(PROJECT_ROOT / ".pgdata")

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sockdir(self) -> Path:
        return self.root / "run"

    @property
    def logfile(self) -> Path:
        return self.root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://{DB_USER}@/{DB_NAME}?host={self.sockdir}"

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        owner = _owner()
        cmd = ["runuser", "-u", owner, "--", *args] if owner else args
        return subprocess.run(cmd, check=check, text=True, capture_output=True, cwd="/")

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockdir.mkdir(parents=True, exist_ok=True)
        owner = _owner()
        if owner:
            for path in (self.root, self.sockdir):
                shutil.chown(path, user=owner)
            if self.logfile.exists():
                shutil.chown(self.logfile, user=owner)

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster once; later calls do nothing."""
        if not (PG_BIN / "initdb").exists():
            raise LocalDbError(
                f"{PG_BIN / 'initdb'} not found: install postgresql-15 and "
                "postgresql-15-postgis-3 (make bootstrap does this as root)"
            )
        self._prepare_dirs()
        if self.initialised():
            return
        res = self._run(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", DB_USER, "-A", "trust",
             "-E", "UTF8", "--locale=C.UTF-8"],
            check=False,
        )
        if res.returncode != 0:
            raise LocalDbError(f"initdb failed: {res.stderr.strip()}")

    def running(self) -> bool:
        if not self.initialised():
            return False
        res = self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status"], check=False)
        return res.returncode == 0

    def start(self) -> None:
        """Start the server if it is not running, and make sure the database exists."""
        self.init()
        if not self.running():
            self._prepare_dirs()
            opts = (
                f"-k {self.sockdir} -c listen_addresses='' -c shared_buffers={self.shared_buffers} "
                "-c jit=off -c max_connections=120 -c work_mem=16MB "
                "-c maintenance_work_mem=256MB -c effective_cache_size=4GB"
            )
            res = self._run(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile),
                 "-o", opts, "-w", "-t", "60", "start"],
                check=False,
            )
            if res.returncode != 0:
                tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
                raise LocalDbError(f"postgres did not start: {res.stderr.strip()}\n{tail}")
        self._wait_ready()
        self.ensure_database(DB_NAME)

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            res = subprocess.run(
                [str(PG_BIN / "pg_isready"), "-h", str(self.sockdir), "-U", DB_USER],
                capture_output=True,
            )
            if res.returncode == 0:
                return
            time.sleep(0.2)
        raise LocalDbError("postgres did not become ready")

    def psql(self, sql: str, db: str = "postgres") -> str:
        res = subprocess.run(
            [str(PG_BIN / "psql"), "-h", str(self.sockdir), "-U", DB_USER, "-d", db,
             "-v", "ON_ERROR_STOP=1", "-tAc", sql],
            capture_output=True, text=True,
        )
        if res.returncode != 0:
            raise LocalDbError(res.stderr.strip())
        return res.stdout.strip()

    def ensure_database(self, name: str) -> None:
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        if exists != "1":
            self.psql(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if self.running():
            self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    # -- streaming replication -------------------------------------------------------------

    def ensure_replication(self) -> None:
        """Let a local standby stream from this (running) cluster; idempotent.

        What initdb gives already suffices (``wal_level=replica``,
        ``max_wal_senders=10``, ``local replication all trust`` in pg_hba.conf);
        this checks it, and repairs a cluster whose configuration was changed,
        through ``ALTER SYSTEM`` and pg_hba.conf (a reload, or the next start,
        applies it), so existing ``.pgdata`` folders keep working.
        """
        changed = False
        if self.psql("SHOW wal_level") == "minimal":
            self.psql("ALTER SYSTEM SET wal_level = 'replica'")
            changed = True
        if int(self.psql("SHOW max_wal_senders")) < 4:
            self.psql("ALTER SYSTEM SET max_wal_senders = 10")
            changed = True
        rules = self.psql("SELECT count(*) FROM pg_hba_file_rules WHERE type = 'local' "
                          "AND 'replication' = ANY(database) AND error IS NULL")
        if rules == "0":
            hba = self.data / "pg_hba.conf"
            self._run(["sh", "-c", f"echo 'local replication all trust' >> '{hba}'"])
            self.psql("SELECT pg_reload_conf()")
        if changed:  # wal_level and max_wal_senders need a restart
            self.stop()
            self.start()

    def postmaster_pid(self) -> int | None:
        """The server's process id (``postmaster.pid``), or None when it is not running."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def make_standby(self, root: Path, name: str = "standby1",
                     shared_buffers: str = "64MB") -> LocalCluster:
        """A hot standby of this running cluster under ``root`` (its own data folder and
        socket directory, the same unprivileged owner): ``pg_basebackup -R`` writes
        ``standby.signal`` and a ``primary_conninfo`` over this cluster's Unix socket,
        with ``application_name=name`` (what ``synchronous_standby_names`` and
        ``pg_stat_replication`` call it). Start it with :meth:`start`.
        """
        self.ensure_replication()
        standby = LocalCluster(root, shared_buffers=shared_buffers)
        standby._prepare_dirs()
        if standby.initialised():
            raise LocalDbError(f"{standby.data} already holds a cluster")
        conninfo = f"host={self.sockdir} user={DB_USER} application_name={name}"
        res = self._run(
            [str(PG_BIN / "pg_basebackup"), "-D", str(standby.data), "-R", "-X", "stream",
             "-c", "fast", "-d", conninfo],
            check=False,
        )
        if res.returncode != 0:
            raise LocalDbError(f"pg_basebackup failed: {res.stderr.strip()}")
        # Copied from the primary: a standby must not archive or sync to itself.
        self._run(["sh", "-c", f"echo \"synchronous_standby_names = ''\" >> "
                               f"'{standby.data}/postgresql.auto.conf'"])
        return standby

    def promote(self) -> None:
        """Turn this standby into a primary (``pg_ctl promote``, waiting until it is)."""
        res = self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                         "promote"], check=False)
        if res.returncode != 0:
            raise LocalDbError(f"promote failed: {res.stderr.strip()}")
