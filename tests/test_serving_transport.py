"""``serving.CoalescingTransport``: a response's head and body leave in one write, on a
real uvloop socket, and nothing is lost or reordered when writes span loop turns or the
connection closes right after them. And the uvicorn coupling (issue 25): every internal
``serving`` relies on is there in the pinned uvicorn, a change is found and named, the
coalescing then falls back to uvicorn's own protocol (and ``GEO_WRITE_COALESCING=0``
chooses it), and the drain refuses to start."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
import uvloop

from geo_service import cli
from geo_service.infra.settings import Settings
from geo_service.web import serving
from geo_service.web.serving import HTTP_PROTOCOL, CoalescingHttpToolsProtocol, CoalescingTransport
from tests.conftest import station_body
from tests.helpers import (
    INDEX_ON,
    free_port,
    insert_stations,
    live_server,
    wait_nearest_from_memory,
)


class Recording:
    """The real transport, with the writes it was handed recorded."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.calls: list[list[bytes]] = []

    def writelines(self, lines: list[bytes]) -> None:
        self.calls.append(list(lines))
        self.transport.writelines(lines)

    def write(self, data: bytes) -> None:
        self.calls.append([data])
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def _pair() -> tuple[Recording, CoalescingTransport, socket.socket]:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    rec = Recording(transport)
    return rec, CoalescingTransport(rec, loop), theirs  # type: ignore[arg-type]


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    out = bytearray()
    while chunk := sock.recv(65536):
        out += chunk
    return bytes(out)


def test_writes_in_one_turn_leave_together_and_in_order() -> None:
    async def main() -> tuple[list[list[bytes]], bytes]:
        rec, t, theirs = await _pair()
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        t.write(b"hello")
        assert rec.calls == []  # held until the turn ends
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        t.write(b"later")  # a later turn: its own write
        await asyncio.sleep(0.01)
        t.close()
        await asyncio.sleep(0.01)
        return rec.calls, await asyncio.to_thread(_read_all, theirs)

    calls, received = uvloop.run(main())
    assert calls == [[b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", b"hello"], [b"later"]]
    assert received == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhellolater"


def test_close_right_after_a_write_still_sends_it() -> None:
    async def main() -> bytes:
        _, t, theirs = await _pair()
        t.write(b"x" * 200_000)  # more than the socket takes at once
        t.write(b"end")
        t.close()
        assert t.is_closing()
        return await asyncio.to_thread(_read_all, theirs)

    assert uvloop.run(main()) == b"x" * 200_000 + b"end"


def test_a_closing_transport_still_gets_what_was_held() -> None:
    """The real transport is closed under the wrapper (the loop does that itself) while
    it still drains earlier bytes: what the wrapper held for the end of the turn must go
    out after them, not be dropped because the transport is closing."""
    async def main() -> bytes:
        rec, t, theirs = await _pair()
        t.write(b"x" * 2_000_000)  # more than the socket pair holds: the transport buffers
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert rec.calls and rec.transport.get_write_buffer_size() > 0
        t.write(b"end")
        rec.transport.close()  # not through the wrapper; it drains, then closes
        return await asyncio.to_thread(_read_all, theirs)

    assert uvloop.run(main()) == b"x" * 2_000_000 + b"end"


def test_uvicorn_serves_through_it() -> None:
    """The protocol ``geo-service serve`` names, in a real uvicorn: keep-alive requests,
    a buffered and a streamed answer, each complete."""
    assert HTTP_PROTOCOL.endswith(":" + CoalescingHttpToolsProtocol.__name__)
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for part in (b"a" * 70_000, b"b" * 10):
                await send({"type": "http.response.body", "body": part, "more_body": True})
                await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b""})
            return
        body = b"z" * 30_000
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, loop="uvloop",
                            http=HTTP_PROTOCOL, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            for _ in range(3):  # one connection, kept alive
                r = await c.get("/")
                seen.append((r.status_code, len(r.content)))
            r = await c.get("/stream")
            seen.append((r.status_code, r.content == b"a" * 70_000 + b"b" * 10))
        server.should_exit = True
        await task

    uvloop.run(main())
    assert seen == [(200, 30_000)] * 3 + [(200, True)]


def _half_closed_get(base: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``target``, then ``shutdown(SHUT_WR)`` (as ``nc -N`` does), and read the whole
    answer: status, headers, body (empty when nothing came)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        sock.shutdown(socket.SHUT_WR)
        raw = bytearray()
        try:
            while chunk := sock.recv(65536):
                raw += chunk
        except TimeoutError:
            pass
    head, _, body = bytes(raw).partition(b"\r\n\r\n")
    if not head:
        return 0, {}, b""
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_half_closing_clients_get_every_answer(db_url: str, db: psycopg.Connection[Any]) -> None:
    """Issue 24, item 6, on a live ``geo-service serve``: clients that half-close after
    their request get every answer, from the fast path (the memory index, answered in
    the same turn) and from the app (/healthz, which waits for the database), while
    ordinary clients keep getting theirs."""
    insert_stations(db, [station_body("HC-1", 109.5, 18.25)])
    nearest = "/v1/stations/nearest?lat=18.25&lon=109.5&k=3"
    with live_server(db_url, INDEX_ON) as base:
        wait_nearest_from_memory(base, {"lat": 18.25, "lon": 109.5, "k": 3})
        stop = threading.Event()
        ordinary: list[int] = []

        def read() -> None:
            with httpx.Client(base_url=base, timeout=5) as http:
                while not stop.is_set():
                    ordinary.append(http.get("/healthz").status_code)
                    ordinary.append(http.get("/v1/stations/HC-1").status_code)

        reader = threading.Thread(target=read)
        reader.start()
        answers: list[tuple[int, dict[str, str], bytes]] = []
        try:
            with ThreadPoolExecutor(4) as pool:
                # Rounds until the ordinary client has been answered alongside a few times.
                while len(answers) < 40 or len(ordinary) < 6:
                    assert len(answers) < 400, ordinary
                    answers += pool.map(lambda t: _half_closed_get(base, t),
                                        [nearest, "/healthz"] * 10)
        finally:
            stop.set()
            reader.join(10)
    fast = [(status, h.get("x-nearest-source"), len(body) == int(h.get("content-length", -1)))
            for status, h, body in answers[0::2]]
    assert fast == [(200, "memory", True)] * len(fast)
    health = [(status, len(body) == int(h.get("content-length", -1)))
              for status, h, body in answers[1::2]]
    assert health == [(200, True)] * len(health)
    assert set(ordinary) == {200}


# ------------------------------------------------------------------ the uvicorn coupling


def test_the_pinned_uvicorn_has_every_internal_serving_relies_on() -> None:
    """Fails loudly, naming each internal, on a uvicorn whose protocol, server loop,
    supervisor or module-level ``Process`` changed: upgrade ``serving`` with the pin."""
    deps = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    pins = [d for d in deps["project"]["dependencies"] if re.match(r"uvicorn\b", d)]
    assert pins == [f"uvicorn[standard]=={uvicorn.__version__}"], (pins, uvicorn.__version__)
    assert serving.uvicorn_problems(serving.COALESCING_NEEDS) == []
    assert serving.uvicorn_problems(serving.DRAIN_NEEDS) == []
    assert serving.http_protocol(True) == HTTP_PROTOCOL
    assert serving.status(True) == {"write_coalescing": "on"}


@pytest.fixture
def changed_uvicorn(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A uvicorn whose protocol changed as a release might change it: ``eof_received``
    takes an argument, the cycle keeps its state elsewhere, the supervisor builds its
    workers some other way."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
    from uvicorn.supervisors import multiprocess

    def eof_received(self: Any, exc: Any) -> None:
        pass

    def cycle_init(self: Any, scope: Any, transport: Any) -> None:
        self.state = {"transport": transport}

    monkeypatch.setattr(HttpToolsProtocol, "eof_received", eof_received)
    monkeypatch.setattr(RequestResponseCycle, "__init__", cycle_init)
    monkeypatch.delattr(multiprocess, "Process")
    serving.coalescing_problems.cache_clear()
    yield
    serving.coalescing_problems.cache_clear()


@pytest.mark.usefixtures("changed_uvicorn")
def test_a_changed_uvicorn_turns_coalescing_off_loudly(caplog: pytest.LogCaptureFixture) -> None:
    """Each change is named; ``serve`` then uses uvicorn's own protocol with an error in
    the log, and ``/healthz`` says why."""
    assert serving.uvicorn_problems(serving.COALESCING_NEEDS) == [
        "HttpToolsProtocol.eof_received takes (self, exc), not (self)",
        "RequestResponseCycle.__init__ no longer sets more_body, response_complete, transport",
    ]
    with caplog.at_level(logging.ERROR, logger="geo_service.web.serving"):
        assert serving.http_protocol(True) == "httptools"
    assert "write coalescing OFF" in caplog.text and "eof_received" in caplog.text
    said = serving.status(True)
    assert said["write_coalescing"] == "off"
    assert said["problem"].startswith(f"uvicorn {uvicorn.__version__} lacks: ")
    assert "RequestResponseCycle.__init__" in said["problem"]


@pytest.mark.usefixtures("changed_uvicorn")
def test_a_changed_uvicorn_stops_serve_before_it_binds(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The drain's internals missing: ``serve`` exits 2 naming them, with no socket bound
    and no server started (uvicorn's own server would reset requests at every deploy)."""
    assert serving.uvicorn_problems(serving.DRAIN_NEEDS) == [
        "uvicorn.supervisors.multiprocess.Process is gone"]
    monkeypatch.setattr(uvicorn.Config, "bind_socket",
                        lambda self: pytest.fail("bound a socket"))  # type: ignore[misc]
    monkeypatch.setenv("GEO_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert cli.main(["serve", "--port", str(free_port())]) == 2
    assert "multiprocess.Process is gone" in capsys.readouterr().err


def test_write_coalescing_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """``GEO_WRITE_COALESCING=0``: ``serve`` hands uvicorn its own ``httptools`` protocol
    (on: ours) and ``/healthz`` says off, without a problem."""
    given: list[Any] = []
    monkeypatch.setattr(serving, "run", lambda app, **kw: given.append(kw["http"]))
    monkeypatch.setenv("GEO_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert cli.main(["serve", "--port", "1"]) == 0
    monkeypatch.setenv("GEO_WRITE_COALESCING", "0")
    assert Settings().write_coalescing is False
    assert cli.main(["serve", "--port", "1"]) == 0
    assert given == [HTTP_PROTOCOL, "httptools"]
    assert serving.status(False) == {"write_coalescing": "off"}
