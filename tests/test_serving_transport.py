"""``serving.CoalescingTransport``: a response's head and body leave in one write, on a
real uvloop socket, and nothing is lost or reordered when writes span loop turns or the
connection closes right after them."""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import uvicorn
import uvloop

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
