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
from fastapi.testclient import TestClient

from geo_service.infra.settings import Settings
from geo_service.operations.common import client_address, client_hash
from geo_service.web.app import create_app
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


@pytest.mark.parametrize("one, other, same", [
    ("2001:db8:1:2::a", "2001:db8:1:2:ffff:ffff:ffff:fffe", True),  # one /64
    ("2001:db8:1:2::a", "2001:db8:1:3::a", False),                   # the next /64
    ("2001:DB8:1:2::A", "2001:db8:1:2:0:0:0:a", True),               # spellings
    ("::ffff:203.0.113.5", "203.0.113.5", True),                     # IPv4-mapped is IPv4
    ("203.0.113.5", "203.0.113.6", False),                           # IPv4 as before
    ("unknown", "unknown", True),
], ids=["one-64", "next-64", "spelling", "v4-mapped", "ipv4", "not-an-address"])
def test_an_ipv6_client_is_its_64(one: str, other: str, same: bool) -> None:
    """Issue 24, item 11: a host with a /64 had as many budgets as addresses."""
    settings = Settings(feedback_hash_key="k" * 32)
    assert (client_hash(settings, one) == client_hash(settings, other)) is same
    per_address = Settings(feedback_hash_key="k" * 32, ipv6_prefix=128)
    assert client_hash(per_address, "2001:db8:1:2::a") != client_hash(per_address,
                                                                      "2001:db8:1:2::b")
    assert client_hash(per_address, "203.0.113.5") == client_hash(settings, "203.0.113.5")


def test_one_64_is_one_reporter(db_url: str, areas: psycopg.Connection[Any]) -> None:
    """Three devices of one /64 cannot meet the three-independent-reporters rule alone,
    nor spend more than one rate budget; three /64s can."""
    insert_stations(areas, [station_body("V6-1", 109.50, 18.25),
                            station_body("V6-2", 109.51, 18.25)])
    settings = Settings(database_url=db_url, trusted_proxies="127.0.0.1", nearest_index="off",
                        report_rate_per_hour=4)
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        def closed(code: str, address: str, device: str) -> int:
            return client.post(f"/v1/stations/{code}/reports", json={"kind": "closed"},
                               headers={"X-Forwarded-For": address,
                                        "X-Device-Id": device}).status_code

        assert [closed("V6-1", f"2001:db8:1:2::{i}", f"v6-{i}") for i in range(1, 4)] == [201] * 3
        assert client.get("/v1/stations/V6-1").json()["reported_closed"] is False
        assert closed("V6-2", "2001:db8:1:2::99", "v6-99") == 201  # the /64's fourth
        assert closed("V6-2", "2001:db8:1:2::100", "v6-100") == 429
        assert [closed("V6-2", f"2001:db8:1:{n}::1", f"n-{n}") for n in (5, 6, 7)] == [201] * 3
        assert client.get("/v1/stations/V6-2").json()["reported_closed"] is True
