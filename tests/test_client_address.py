"""Who the client is: forwarding headers count only from proxies that settings name (hole 3).

Against the real server (``geo-service serve``, uvicorn): it trusted
``X-Forwarded-For`` from 127.0.0.1 by default, so three forged requests from
the loopback marked a station reported-closed and check-in limits were dodged.
"""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from geo_service.operations.common import client_address
from geo_service.settings import Settings
from tests.conftest import station_body
from tests.helpers import insert_stations, live_server


@pytest.fixture
def station(areas: psycopg.Connection[Any]) -> str:
    insert_stations(areas, [station_body("XFF-1", 109.50, 18.25)])
    return "XFF-1"


def test_forged_forwarded_for_from_the_loopback_is_not_believed(db_url: str,
                                                                 station: str) -> None:
    with live_server(db_url, {"GEO_CHECKIN_RATE_PER_HOUR": "3"}) as base:
        for i in range(3):
            r = httpx.post(f"{base}/v1/stations/{station}/reports", json={"kind": "closed"},
                           headers={"X-Forwarded-For": f"203.0.113.{i}",
                                    "X-Device-Id": f"forged-{i}"})
            assert r.status_code == 201, r.text
        got = httpx.get(f"{base}/v1/stations/{station}").json()
        assert got["reported_closed"] is False  # one client, however many headers
        codes = [httpx.post(f"{base}/v1/stations/{station}/checkins",
                            headers={"X-Forwarded-For": f"198.51.100.{i}",
                                     "X-Device-Id": f"c-{i}"}).status_code for i in range(4)]
        assert codes == [201, 201, 201, 429]


@pytest.mark.parametrize("trusted, peer, forwarded, expected", [
    ("", "127.0.0.1", ["203.0.113.9"], "127.0.0.1"),                  # nothing trusted
    ("10.0.0.0/8", "127.0.0.1", ["203.0.113.9"], "127.0.0.1"),        # peer not a proxy
    ("127.0.0.1", "127.0.0.1", ["203.0.113.9"], "203.0.113.9"),
    ("127.0.0.1", "127.0.0.1", ["1.2.3.4, 203.0.113.9"], "203.0.113.9"),  # forged left entry
    ("127.0.0.1,10.0.0.0/8", "127.0.0.1", ["1.2.3.4, 203.0.113.9, 10.2.3.4"], "203.0.113.9"),
    ("127.0.0.1,10.0.0.0/8", "127.0.0.1", ["1.2.3.4, 203.0.113.9", "10.2.3.4"],
     "203.0.113.9"),                                                    # header given twice
    ("127.0.0.1", "127.0.0.1", [], "127.0.0.1"),
    ("::1", "::1", ["2001:db8::7"], "2001:db8::7"),
], ids=["none", "peer-untrusted", "one-proxy", "forged-left", "two-proxies", "two-headers",
        "no-header", "ipv6"])
def test_rightmost_untrusted_hop(trusted: str, peer: str, forwarded: list[str],
                                 expected: str) -> None:
    settings = Settings(trusted_proxies=trusted)
    assert client_address(peer, forwarded, settings) == expected


def test_a_bad_proxy_list_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings(trusted_proxies="10.0.0.0/33")
