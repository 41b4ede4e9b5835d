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

from geo_service.paths import PROJECT_ROOT

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
                f"-k {self.sockdir} -c listen_addresses='' -c shared_buffers=512MB "
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
