"""CPU per nearest request through the served ASGI callable, in this process (issue 25).

wrk's rate on a shared 2-core machine moves with everyone else's load; the CPU one
request costs the process that answers it does not (much). This builds the app the
server builds (``serving.APP_FACTORY`` of whichever checkout is imported, so a reference
commit run with ``PYTHONPATH`` at its source measures its own code), runs its lifespan,
waits until nearest answers from the memory index, then sends wrk's request shape (a
point of the bench mixture, ``k=10`` and the variant's filters, only a ``Host`` header,
no gzip) straight to the ASGI callable, as uvicorn would, and times ``process_time``
per batch. No sockets, no HTTP parsing: only what the service's code costs.

Prints one JSON object: µs of CPU per request for each batch, by variant. A batch during
which the index was not usable for a moment (an answer from SQL) is void and run again
(counted as ``void_batches``). It imports
nothing from ``bench/`` (whose modules put this checkout's source first on the path):
the queries come in a file, written by ``bench/bench_nearest_refactor.py``, which runs it
for both checkouts::

    GEO_DATABASE_URL=... GEO_NEAREST_INDEX=on .venv/bin/python bench/nearest_cpu.py \\
        --queries FILE [--batches 5]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any


def served_app() -> Any:
    """The ASGI callable a ``geo-service serve`` worker serves (its ``APP_FACTORY``)."""
    import geo_service

    # Where serving.py lives in the imported checkout (the floor-plan move put it in web/;
    # an editable install of another checkout could otherwise answer the import).
    moved = (Path(geo_service.__file__).parent / "web" / "serving.py").exists()
    serving = importlib.import_module("geo_service.web.serving" if moved
                                      else "geo_service.serving")
    module, _, name = serving.APP_FACTORY.partition(":")
    return getattr(importlib.import_module(module), name)()


def scope_of(query: bytes) -> dict[str, Any]:
    """The scope uvicorn makes for wrk's request (wrk sends only ``Host``)."""
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
            "scheme": "http", "method": "GET", "root_path": "", "path": "/v1/stations/nearest",
            "raw_path": b"/v1/stations/nearest", "query_string": query,
            "headers": [(b"host", b"127.0.0.1:8000")], "state": {}}


async def request(app: Any, query: bytes) -> tuple[int, dict[bytes, bytes]]:
    """One request through the ASGI callable; its status and headers."""
    got: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            got["status"], got["headers"] = message["status"], dict(message["headers"])

    await app(scope_of(query), receive, send)
    return got["status"], got["headers"]


async def wait_for_memory(app: Any, deadline: float) -> None:
    """Until nearest answers from the memory index."""
    while (await request(app, b"lat=18.25&lon=109.5&k=10"))[1].get(
            b"x-nearest-source") != b"memory":
        if time.monotonic() > deadline:
            raise SystemExit("the memory index did not answer in time")
        await asyncio.sleep(0.2)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    app = served_app()
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()
        elif message["type"].startswith("lifespan.shutdown"):
            stopped.set()

    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                        "state": {}}, inbox.get, send))
    await started.wait()
    await wait_for_memory(app, time.monotonic() + args.load_timeout)
    out: dict[str, Any] = {"module": sys.modules["geo_service"].__file__, "variants": {}}
    for name, texts in json.loads(Path(args.queries).read_text()).items():
        queries = [q.encode() for q in texts]
        for q in queries[:100]:  # warm-up: caches, first-call paths
            await request(app, q)
        batches: list[float] = []
        while len(batches) < args.batches:
            t0 = time.process_time()
            for q in queries:
                # As between a server's requests: the loop runs its other tasks (the
                # index keeper's), without which the index goes stale.
                await asyncio.sleep(0)
                status, headers = await request(app, q)
                if status != 200:
                    raise SystemExit(f"{status} for {q!r}")
                if headers.get(b"x-nearest-source") != b"memory":
                    break  # the index was not usable for a moment: this batch is void
            else:
                batches.append(round((time.process_time() - t0) / len(queries) * 1e6, 1))
                continue
            out["void_batches"] = out.get("void_batches", 0) + 1
            if out["void_batches"] > args.batches:
                raise SystemExit("the memory index keeps going unusable")
            await wait_for_memory(app, time.monotonic() + args.load_timeout)
        out["variants"][name] = batches
    await inbox.put({"type": "lifespan.shutdown"})
    await stopped.wait()
    await lifespan
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", required=True,
                    help="JSON file: {variant: [query string, ...]} (one batch's requests)")
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--load-timeout", type=float, default=300.0)
    print(json.dumps(asyncio.run(measure(ap.parse_args()))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
