"""A project-local PgBouncer in front of the project-local cluster, as in production.

Transaction pooling: a client holds a server connection only for one
transaction, so a few dozen PostgreSQL backends serve thousands of API
connections. The service then must not keep anything on a connection between
transactions (see :func:`geo_service.infra.db.connect_kwargs`); ``GEO_DB_PGBOUNCER=1``
tells it so.

Debian 12 ships PgBouncer 1.18, which has no ``max_prepared_statements``
(1.21+): prepared statements cannot survive here, so the service prepares
none. The two server settings the service otherwise sends as startup options
(which PgBouncer refuses) are set by ``connect_query`` on every new server
connection instead.

Like :mod:`geo_service.infra.localdb` it listens only on a Unix socket inside its
own folder (no port collisions between checkouts) and runs as the cluster's
unprivileged owner when we are root.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from geo_service.infra.localdb import DB_USER, LocalCluster, LocalDbError, _owner

PGBOUNCER = Path("/usr/sbin/pgbouncer")


@dataclass(frozen=True)
class LocalPgBouncer:
    """PgBouncer under ``root`` (socket, config, log, pid), in front of ``upstream``."""

    root: Path
    upstream: LocalCluster
    #: Names the socket file ``.s.PGSQL.<port>``; no TCP port is opened.
    port: int = 6432
    pool_size: int = 20
    statement_timeout_ms: int = 15_000

    @classmethod
    def default(cls) -> LocalPgBouncer:
        cluster = LocalCluster.default()
        return cls(cluster.root / "pgbouncer", cluster)

    @property
    def ini(self) -> Path:
        return self.root / "pgbouncer.ini"

    @property
    def pidfile(self) -> Path:
        return self.root / "pgbouncer.pid"

    @property
    def logfile(self) -> Path:
        return self.root / "pgbouncer.log"

    def url(self, dbname: str = "geo") -> str:
        """libpq URL of ``dbname`` through the pooler (any database of the upstream)."""
        return f"postgresql://{DB_USER}@/{dbname}?host={self.root}&port={self.port}"

    def config(self) -> str:
        """The ``pgbouncer.ini`` text (the README's "Running at scale" explains each line)."""
        connect_query = (f"SET statement_timeout = {self.statement_timeout_ms}; "
                         "SET plan_cache_mode = force_generic_plan")
        return f"""\
;; Written by geo_service.infra.pgbouncer; rewritten on every start.
[databases]
;; Any database name: the same-named database on the upstream cluster.
* = host={self.upstream.sockdir} port=5432 connect_query='{connect_query}'

[pgbouncer]
listen_addr =
listen_port = {self.port}
unix_socket_dir = {self.root}
auth_type = trust
auth_file = {self.root / "userlist.txt"}
admin_users = {DB_USER}
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 1000
;; transaction pooling: nothing of a session survives, so nothing to reset
server_reset_query =
logfile = {self.logfile}
pidfile = {self.pidfile}
"""

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        owner = _owner()
        cmd = ["runuser", "-u", owner, "--", *args] if owner else args
        return subprocess.run(cmd, check=check, text=True, capture_output=True, cwd="/")

    def pid(self) -> int | None:
        """The running pooler's pid, or None."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            Path(f"/proc/{pid}").stat()
        except OSError:
            return None
        return pid

    def start(self, timeout_s: float = 15.0) -> None:
        """Write the config and start the pooler (daemonised) unless it already runs."""
        if not PGBOUNCER.exists():
            raise LocalDbError(f"{PGBOUNCER} not found: install Debian's pgbouncer "
                               "(make bootstrap does this as root)")
        self.upstream.start()
        self.root.mkdir(parents=True, exist_ok=True)
        if self.pid() is not None:
            return
        self.ini.write_text(self.config())
        (self.root / "userlist.txt").write_text(f'"{DB_USER}" ""\n')
        owner = _owner()
        if owner:
            for path in (self.root, self.ini, self.root / "userlist.txt"):
                shutil.chown(path, user=owner)
            if self.logfile.exists():
                shutil.chown(self.logfile, user=owner)
        res = self._run([str(PGBOUNCER), "-d", "-q", str(self.ini)], check=False)
        if res.returncode != 0:
            raise LocalDbError(f"pgbouncer did not start: {res.stderr.strip()} "
                               f"{self._log_tail()}")
        socket = self.root / f".s.PGSQL.{self.port}"
        deadline = time.monotonic() + timeout_s
        while not socket.exists():
            if time.monotonic() > deadline:
                raise LocalDbError(f"pgbouncer made no socket in {timeout_s} s "
                                   f"{self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        return self.logfile.read_text()[-2000:] if self.logfile.exists() else ""

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM: PgBouncer's immediate shutdown (the local pooler holds nothing to save)."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
