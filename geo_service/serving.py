"""Several API processes on one socket, and a shutdown that drains them.

``geo-service serve --workers N`` runs uvicorn's own process supervisor (no
gunicorn: one dependency fewer, and uvicorn's supervisor restarts a worker
that dies). The API keeps nothing in a process that another would need — the
database is the only shared state — so any worker can answer any request.

What SIGTERM does (``docker stop``, systemd, Kubernetes), in order:

1. the supervisor closes its copy of the listening socket, and each worker
   stops accepting: once the last copy is closed new connections are refused
   (a load balancer retries them elsewhere) rather than left in a queue
   nobody will accept from;
2. a worker waits ``ACCEPT_GRACE_S`` before closing idle connections, so a
   connection accepted just before the signal still gets its request read
   and answered instead of being closed unanswered;
3. every request in progress runs to its end (a streamed feed included),
   bounded by ``--graceful-timeout``; then the pools close and the process
   exits 0.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import multiprocess
from uvicorn.supervisors.multiprocess import Multiprocess, Process

#: How long a stopping worker keeps connections that have not sent a request yet.
ACCEPT_GRACE_S = 0.3
#: Where each worker process builds its app (settings from the environment).
APP_FACTORY = "geo_service.main:create_app"


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with a pause between "stop accepting" and "close idle connections",
    and exit status 0 after a drained shutdown (uvicorn re-raises the signal: 143)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        await asyncio.sleep(ACCEPT_GRACE_S)
        await super().shutdown(sockets)

    async def _serve(self, sockets: list[socket.socket] | None = None) -> None:
        await super()._serve(sockets)
        self._captured_signals.clear()  # drained: an orderly exit, not death by signal


class DrainingProcess(Process):
    """A worker process whose server is a :class:`DrainingServer` (built in the child)."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


class DrainingSupervisor(Multiprocess):
    """uvicorn's process supervisor; on SIGTERM/SIGINT it stops listening first."""

    def _stop_listening(self) -> None:
        for sock in self.sockets:
            sock.close()

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()


def run(app: Any, *, host: str, port: int, workers: int, graceful_timeout_s: int,
        **options: Any) -> None:
    """Serve ``app`` (one process) or the app :data:`APP_FACTORY` builds in each of
    ``workers`` processes; returns after a drained shutdown."""
    if workers <= 1:
        config = uvicorn.Config(app, host=host, port=port,
                                timeout_graceful_shutdown=graceful_timeout_s, **options)
        DrainingServer(config).run()
        return
    config = uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, workers=workers,
                            timeout_graceful_shutdown=graceful_timeout_s, **options)
    sock = config.bind_socket()
    # The supervisor makes its workers by the module-level name; ours drain.
    multiprocess.Process = DrainingProcess  # type: ignore[misc]
    try:
        DrainingSupervisor(config, sockets=[sock]).run()
    finally:
        multiprocess.Process = Process  # type: ignore[misc]
        sock.close()
