"""Several API processes on one socket, and a shutdown that drains them.

``geo-service serve --workers N`` runs uvicorn's own process supervisor (no
gunicorn: one dependency fewer, and uvicorn's supervisor restarts a worker
that dies). The API keeps nothing in a process that another would need — the
database is the only shared state — so any worker can answer any request.

What SIGTERM does (``docker stop``, systemd, Kubernetes), in order:

1. the supervisor closes its copy of the listening socket, and each worker
   accepts what is already queued and closes its copy: once the last copy is
   closed new connections are refused (a load balancer retries them
   elsewhere) rather than left in a queue nobody will accept from and reset
   at exit;
2. a worker waits ``ACCEPT_GRACE_S`` before closing idle connections, so a
   connection accepted just before the signal still gets its request read
   and answered instead of being closed unanswered;
3. every request in progress runs to its end (a streamed feed included),
   bounded by ``--graceful-timeout``; then the pools close and the process
   exits 0.

Both the drain and the write coalescing subclass uvicorn internals, which the
pinned uvicorn (``pyproject.toml``) provides. :data:`DRAIN_NEEDS` and
:data:`COALESCING_NEEDS` list every one of them, and :func:`uvicorn_problems`
checks them against the uvicorn that is installed, at start-up and in
``tests/test_serving_transport.py``. What happens when one is missing differs,
on purpose:

* the coalescing is a speed-up, and uvicorn's own protocol answers every
  request correctly without it: ``serve`` starts with the plain protocol, logs
  an error naming what changed, and ``/healthz`` says so (``serving``);
  ``GEO_WRITE_COALESCING=0`` chooses the plain protocol deliberately;
* the drain is what keeps a deploy from resetting requests in flight, and a
  subclass whose overrides uvicorn no longer calls would lose them silently at
  every restart: ``serve`` refuses to start (exit status 2) and names what
  changed, which only a deliberate uvicorn upgrade can cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import dis
import inspect
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import uvicorn
from uvicorn.lifespan.off import LifespanOff
from uvicorn.lifespan.on import LifespanOn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.supervisors import multiprocess
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger(__name__)

#: How long a stopping worker keeps connections that have not sent a request yet.
ACCEPT_GRACE_S = 0.3
#: Where each worker process builds its app (settings from the environment): the app
#: behind the nearest fast path.
APP_FACTORY = "geo_service.web.app:create_served_app"


class CoalescingTransport:
    """A transport whose writes within one event-loop turn leave as one ``writelines``.

    uvicorn writes a response's head and its body separately, and uvloop sends each at
    once when its buffer is empty: two system calls and, on a loopback or a LAN, two
    segments the client must wake for. Held until the end of the turn (``call_soon``),
    a head and a body sent together — every buffered response — go out in one
    ``writev``; a streamed response's head waits one loop turn at most. Everything
    else is the real transport's.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = [data]
            self._loop.call_soon(self.flush)
        else:
            self._held.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Hand what is held to the real transport (which buffers what the socket
        cannot take yet, as it always does).

        Also when the transport is closing: one closed while it still drains earlier
        bytes sends what it is given after them (asyncio and uvloop drop writes only
        once the connection is lost; a closed uvloop handle raises, ignored here: the
        peer is gone)."""
        held, self._held = self._held, None
        if held:
            with contextlib.suppress(RuntimeError):  # uvloop: the handle is closed
                self._transport.writelines(held)

    def close(self) -> None:
        self.flush()  # a closing transport still sends what it was given first
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`: each buffered
    response leaves in one system call instead of two (nearest from memory at 1M stations,
    16 clients: 2,984 → 3,320 req/s).

    It also answers clients that half-close (send the request, then ``shutdown(SHUT_WR)``,
    as ``nc -N`` and some proxies do). uvicorn's ``eof_received`` lets the loop close the
    transport at the peer's EOF, which drops an answer not yet written (any that waits for
    the database; with the coalescing transport, every one, since writes wait for the end
    of the turn). Here the transport stays open until the requests already received are
    answered, then closes. ``tests/test_serving_transport.py`` runs it in a live server,
    so a uvicorn whose internals (``cycle``, ``pipeline``) change fails there loudly."""

    _peer_done = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def eof_received(self) -> bool:  # type: ignore[override]
        """Keep the transport open (True) while a complete request waits for its answer."""
        self.transport.flush()  # type: ignore[attr-defined]  # held bytes leave before any close
        cycle = self.cycle
        if cycle is None or cycle.response_complete or cycle.more_body:
            return False  # nothing due, or a body that can never be completed: close
        self._peer_done = True
        return True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._peer_done and not self.pipeline and not self.transport.is_closing():
            self.transport.close()  # the peer can send nothing more: the last answer is out


#: The ``http`` protocol ``geo-service serve`` gives uvicorn.
HTTP_PROTOCOL = "geo_service.web.serving:CoalescingHttpToolsProtocol"


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining: the accept queue is emptied as the socket closes, idle
    new connections get a moment to send their request, and a drained shutdown exits 0
    (uvicorn re-raises the signal: status 143)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Connections the kernel completed but nobody accepted yet would be reset when
        # the last copy of the socket closes. Accept them, then close at once: no await
        # in between, so the window in which a new one can slip in is microseconds.
        queued: list[socket.socket] = []
        for sock in sockets or []:
            sock.setblocking(False)
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:  # BlockingIOError: the queue is empty
                    break
                queued.append(conn)
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        loop = asyncio.get_running_loop()
        config, state = self.config, self.server_state
        for conn in queued:
            conn.setblocking(False)
            await loop.connect_accepted_socket(
                lambda: config.http_protocol_class(  # type: ignore[call-arg]
                    config=config, server_state=state, app_state=self.lifespan.state),
                conn)
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


# --------------------------------------------------------------- what uvicorn must provide


@dataclass(frozen=True)
class Need:
    """One uvicorn internal this module overrides or uses: ``name`` on ``owner`` (a class
    or module) exists and, where given, takes exactly ``params``, sets ``self.<x>`` for
    each of ``sets`` and reads each of ``reads`` (an attribute or a global name).

    Checked on the bytecode of the installed uvicorn, so a renamed attribute or a
    changed signature is found without running a server."""

    owner: Any
    name: str
    params: tuple[str, ...] | None = None
    sets: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        where = getattr(self.owner, "__qualname__", None) or self.owner.__name__
        return f"{where}.{self.name}"


#: What :class:`CoalescingHttpToolsProtocol` relies on: the protocol's construction,
#: its per-connection state (``transport``, ``loop``, ``cycle``, ``pipeline``), the hooks
#: it overrides, and a cycle that writes through the protocol's transport.
COALESCING_NEEDS: tuple[Need, ...] = (
    Need(HttpToolsProtocol, "__init__", ("self", "config", "server_state", "app_state", "_loop"),
         sets=("loop", "pipeline", "cycle", "transport")),
    Need(HttpToolsProtocol, "connection_made", ("self", "transport"), sets=("transport",)),
    Need(HttpToolsProtocol, "eof_received", ("self",)),
    Need(HttpToolsProtocol, "on_response_complete", ("self",), reads=("pipeline", "transport")),
    Need(HttpToolsProtocol, "on_headers_complete", ("self",),
         reads=("RequestResponseCycle", "transport")),
    Need(RequestResponseCycle, "__init__",
         sets=("transport", "response_complete", "more_body")),
    Need(RequestResponseCycle, "send", reads=("transport", "write")),
)

#: What the drain relies on: the server's start-up, shutdown and signal re-raise, the
#: protocol class the config loads, the lifespan's state (handed to the protocols of the
#: connections it accepts itself), and the supervisor building its workers by the
#: module-level name ``Process`` (swapped in :func:`run`).
DRAIN_NEEDS: tuple[Need, ...] = (
    Need(uvicorn.Config, "load", ("self",), sets=("http_protocol_class",)),
    Need(uvicorn.Config, "bind_socket", ("self",)),
    Need(uvicorn.Server, "__init__", ("self", "config"),
         sets=("config", "server_state", "_captured_signals")),
    Need(uvicorn.Server, "run", ("self", "sockets")),
    Need(uvicorn.Server, "_serve", ("self", "sockets"), sets=("lifespan",),
         reads=("startup", "main_loop", "shutdown")),
    Need(uvicorn.Server, "startup", ("self", "sockets"), sets=("servers",),
         reads=("http_protocol_class",)),
    Need(uvicorn.Server, "shutdown", ("self", "sockets")),
    Need(uvicorn.Server, "capture_signals", ("self",), reads=("_captured_signals",)),
    Need(LifespanOn, "__init__", ("self", "config"), sets=("state",)),
    Need(LifespanOff, "__init__", ("self", "config"), sets=("state",)),
    Need(multiprocess, "Process"),
    Need(Process, "__init__", ("self", "config", "sockets"), sets=("config", "_server")),
    Need(Process, "server", ("self",), reads=("_server",)),
    Need(Multiprocess, "__init__", ("self", "config", "sockets"), sets=("sockets",)),
    Need(Multiprocess, "init_processes", ("self",), reads=("Process",)),
    Need(Multiprocess, "keep_subprocess_alive", ("self",), reads=("Process",)),
    Need(Multiprocess, "restart_all", ("self",), reads=("Process",)),
    Need(Multiprocess, "handle_term", ("self",)),
    Need(Multiprocess, "handle_int", ("self",)),
)


def _names(func: Callable[..., Any], opnames: frozenset[str]) -> set[str]:
    """The names ``func`` (unwrapped from its decorators) uses with ``opnames``, nested
    functions included (``Server.startup`` builds its protocols in one)."""
    names: set[str] = set()
    codes = [inspect.unwrap(func).__code__]
    while codes:
        code = codes.pop()
        names |= {str(i.argval) for i in dis.get_instructions(code) if i.opname in opnames}
        codes += [c for c in code.co_consts if inspect.iscode(c)]
    return names


_STORES = frozenset({"STORE_ATTR"})
_LOADS = frozenset({"LOAD_ATTR", "LOAD_METHOD", "LOAD_GLOBAL"})


def uvicorn_problems(needs: tuple[Need, ...]) -> list[str]:
    """What of ``needs`` the installed uvicorn lacks, one line each (empty: all there)."""
    problems = []
    for need in needs:
        found = inspect.getattr_static(need.owner, need.name, None)
        if found is None:
            problems.append(f"{need.label} is gone")
            continue
        func = found.fget if isinstance(found, property) else found
        if not need.params and not need.sets and not need.reads:
            continue  # only its existence is relied on
        if not inspect.isfunction(func):
            problems.append(f"{need.label} is no longer a function or property")
            continue
        if need.params is not None:
            params = tuple(inspect.signature(func).parameters)
            if params != need.params:
                problems.append(f"{need.label} takes ({', '.join(params)}), "
                                f"not ({', '.join(need.params)})")
        if missing := sorted(set(need.sets) - _names(func, _STORES)):
            problems.append(f"{need.label} no longer sets {', '.join(missing)}")
        if missing := sorted(set(need.reads) - _names(func, _LOADS)):
            problems.append(f"{need.label} no longer uses {', '.join(missing)}")
    return problems


class UvicornChanged(RuntimeError):
    """The installed uvicorn lacks internals the drain relies on: ``serve`` refuses."""


@cache
def coalescing_problems() -> tuple[str, ...]:
    """What the coalescing protocol misses in this uvicorn (computed once a process)."""
    return tuple(uvicorn_problems(COALESCING_NEEDS))


def http_protocol(coalescing: bool) -> str:
    """The ``http`` protocol ``geo-service serve`` gives uvicorn: ours when the settings
    ask for it (``GEO_WRITE_COALESCING``) and uvicorn still has what it relies on;
    otherwise uvicorn's own ``httptools``, correct but without coalescing and without
    the half-close fix — an error in the log says why when it was not chosen."""
    if not coalescing:
        return "httptools"
    if problems := coalescing_problems():
        log.error("write coalescing OFF: uvicorn %s lacks what it relies on (%s); serving "
                  "with uvicorn's own httptools protocol", uvicorn.__version__,
                  "; ".join(problems))
        return "httptools"
    return HTTP_PROTOCOL


def status(coalescing: bool) -> dict[str, Any]:
    """What ``/healthz`` says of the serving protocol ``geo-service serve`` uses with
    these settings: ``write_coalescing`` on or off, and ``problem`` when it is off
    because uvicorn changed (not by choice)."""
    if not coalescing:
        return {"write_coalescing": "off"}
    if problems := coalescing_problems():
        return {"write_coalescing": "off",
                "problem": f"uvicorn {uvicorn.__version__} lacks: {'; '.join(problems)}"}
    return {"write_coalescing": "on"}


def run(app: Any, *, host: str, port: int, workers: int, graceful_timeout_s: int,
        **options: Any) -> None:
    """Serve ``app`` (one process) or the app :data:`APP_FACTORY` builds in each of
    ``workers`` processes; returns after a drained shutdown.

    Raises :class:`UvicornChanged` before binding anything when the installed uvicorn
    lacks what the drain relies on."""
    if problems := uvicorn_problems(DRAIN_NEEDS):
        raise UvicornChanged(f"uvicorn {uvicorn.__version__} lacks what the SIGTERM drain "
                             f"relies on: {'; '.join(problems)}")
    if workers <= 1:
        config = uvicorn.Config(app, host=host, port=port,
                                timeout_graceful_shutdown=graceful_timeout_s, **options)
        # Bound here, so that shutdown holds the raw socket to empty its accept queue.
        DrainingServer(config).run(sockets=[config.bind_socket()])
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
