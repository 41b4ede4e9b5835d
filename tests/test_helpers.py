"""The test helpers fail loudly: a server that does not come up stops the test there.

``live_server`` used to yield its URL after 100 unanswered probes, so a server
that crashed at start-up surfaced later as a bare connection error.
"""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from tests.helpers import ServerNotHealthy, live_server, spawn_server, stop_server, wait_healthy

#: Nothing listens on port 1: the app starts, its pool never connects.
DEAD_DB = "postgresql://geo@127.0.0.1:1/none?connect_timeout=1"


def test_a_server_that_exits_at_start_is_an_error_with_its_output() -> None:
    with pytest.raises(ServerNotHealthy, match="exited with") as failed, \
            live_server(DEAD_DB, {"GEO_PUBLIC_BASE_URL": "ftp://x.example"}):
        pytest.fail("live_server yielded a server that had exited")
    assert "public_base_url" in str(failed.value)  # the server's own words


def test_a_server_that_never_says_200_is_an_error_naming_the_answer() -> None:
    proc, base, output = spawn_server(DEAD_DB)
    try:
        port = int(base.rsplit(":", 1)[1])
        for _ in range(600):  # start-up takes seconds on a busy machine; not timed here
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.1)
        with pytest.raises(ServerNotHealthy, match="did not say 200") as failed:
            wait_healthy(proc, base, output, timeout_s=1)
        assert "last: 503" in str(failed.value)
    finally:
        stop_server(proc, output)
