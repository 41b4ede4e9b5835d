"""``serving.CoalescingTransport``: a response's head and body leave in one write, on a
real uvloop socket, and nothing is lost or reordered when writes span loop turns or the
connection closes right after them."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import uvicorn
import uvloop

from geo_service.serving import HTTP_PROTOCOL, CoalescingHttpToolsProtocol, CoalescingTransport
from tests.helpers import free_port


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
