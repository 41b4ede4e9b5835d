"""One heavy request must not stall the server: hours compile off the event loop, bounded.

Issue 11, hole 4: a ``PUT …/stops`` with 20 long rules valid until 2029 compiled
years of hours on the event loop (~22 s), and ``/healthz`` waited all along.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import station_body
from tests.helpers import live_server

# Many clock times and a `||` fallback: the slowest kind of rule to compile (every
# written time on every day is a point the rule is evaluated at).
_TIMES = ",".join(f"{h:02d}:{m:02d}-{h:02d}:{m + 1:02d}"
                  for h in range(24) for m in range(0, 58, 2))


def heavy_rule(length: int, variant: int = 0) -> str:
    """A dated rule of about ``length`` characters that is slow to compile; another
    ``variant`` is another rule (compiled again, not answered from the compile caches)."""
    head = f"{('Jan', 'Feb', 'Mar')[variant % 3]}-Nov Mo-Su "
    return (head + _TIMES)[: length - 8].rsplit(",", 1)[0] + ' || "x"'


def _stops(n: int, rule: str, valid_to: str | None = None) -> list[dict[str, Any]]:
    """``n`` stops with the same hours; without ``valid_to`` each has its own 90 days."""
    today = dt.date.today()
    return [{"name": f"stop {i}", "lon": 109.5 + i / 1000, "lat": 18.25, "opening_hours": rule,
             **({"valid_to": valid_to} if valid_to else {
                 "valid_from": (today + dt.timedelta(days=100 * i)).isoformat(),
                 "valid_to": (today + dt.timedelta(days=100 * i + 90)).isoformat()})}
            for i in range(n)]


#: (sent, answered, status) of one request, on one monotonic clock for every thread.
Event = tuple[float, float, int]


def longest_wait(heavy: Event, health: list[Event]) -> float:
    """The longest any /healthz in flight during ``heavy`` waited for its answer."""
    sent, answered, _ = heavy
    return max((b - a for a, b, _ in health if a < answered and b > sent), default=math.inf)


def _timeline(base: str, send: Any, count: int = 2) -> tuple[list[Event], list[Event]]:
    """``count`` heavy requests back to back in one thread while another asks /healthz
    over and over; every request as (sent, answered, status)."""
    heavy: list[Event] = []
    health: list[Event] = []
    done = threading.Event()

    def hammer() -> None:
        try:
            with httpx.Client(timeout=120) as http:
                for _ in range(count):
                    sent = time.monotonic()
                    status = send(http).status_code
                    heavy.append((sent, time.monotonic(), status))
        finally:
            done.set()

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        with httpx.Client(timeout=30) as http:
            while not done.is_set():
                sent = time.monotonic()
                status = http.get(f"{base}/healthz").status_code
                health.append((sent, time.monotonic(), status))
    finally:
        done.wait(600)
        worker.join(120)
    return heavy, health


@pytest.fixture
def served(db_url: str, client: TestClient, keys: dict[str, str]) -> dict[str, str]:
    """A mobile station BUS-9 and a live server (a real event loop, a real socket)."""
    r = client.post("/v1/stations", headers={"Authorization": keys["editor"]},
                    json=station_body("BUS-9", 109.5, 18.25, host_type="mobile"))
    assert r.status_code == 201, r.text
    return {"key": keys["editor"]}


@pytest.mark.parametrize("what", ["stops", "station"])
def test_healthz_answers_while_hours_compile(served: dict[str, str], db_url: str,
                                             what: str) -> None:
    """A schedule near the work bound (4 slow stops) or a station with a 1,000-character
    slow rule takes a second or more of CPU; /healthz must not wait for it."""
    auth = {"Authorization": served["key"]}
    n, version = [0], [1]

    def send(http: httpx.Client) -> httpx.Response:
        n[0] += 1
        if what == "stops":
            r = http.put(f"{base}/v1/stations/BUS-9/stops", headers=auth, json={
                "stops": _stops(4, heavy_rule(200, n[0])), "version": version[0]})
            version[0] = r.json().get("version", version[0])
            return r
        return http.post(f"{base}/v1/stations", headers=auth, json=station_body(
            f"HEAVY-{n[0]}", 109.5, 18.25, opening_hours=heavy_rule(1000, n[0])))

    with live_server(db_url) as base:
        heavy, health = _timeline(base, send, count=3)
    assert len(heavy) == 3 and {status for *_, status in heavy} <= {200, 201}, heavy
    assert health and {status for *_, status in health} == {200}, health
    # Each heavy request is mostly compile (the rest is the key check and the write).
    # Had the compile held the event loop, a /healthz asked meanwhile would have waited
    # for it: 58-80% of the heavy request when tried with the compile moved onto the
    # loop; off the loop the longest wait was 3-9% of it. Both are measured on the same
    # machine at the same moment, so its speed cancels out; no latency is asserted.
    # The compile runs in a thread that holds the GIL in turns with the loop, so on a
    # busy machine one heavy request can see a long wait (0.21 s of 0.42 s, once in CI);
    # the median of three is what tells a held loop (every request waits) from that.
    shares = sorted(longest_wait(event, health) / (event[1] - event[0]) for event in heavy)
    assert shares[1] < 1 / 3, (f"/healthz waited {shares[1]:.0%} of a heavy request "
                               f"(median of {[f'{s:.0%}' for s in shares]}): "
                               "the compile held the event loop")


def test_probe_schedule_is_refused_at_once(client: TestClient, served: dict[str, str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe's request (20 stops, ~490-character rules, valid until 2029-12-31) is
    refused before any hours are compiled, naming what is too big. "Before" is counted:
    the overlap check and the hours compiler are watched, not the clock."""
    from geo_service.operations import stops as stops_module

    calls: list[str] = []
    for name in ("first_overlap", "compiled_hours_columns"):
        real = getattr(stops_module, name)

        def watched(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kw)

        monkeypatch.setattr(stops_module, name, watched)
    auth = {"Authorization": served["key"]}
    r = client.put("/v1/stations/BUS-9/stops", headers=auth,
                   json={"stops": _stops(20, heavy_rule(490), "2029-12-31"), "version": 1})
    assert r.status_code == 422, r.text
    fields = {f["field"] for f in r.json()["error"]["fields"]}
    assert "stops.0.opening_hours" in fields
    # Short rules, but dated years ahead: refused naming the date.
    horizon = dt.date.today() + dt.timedelta(days=800)
    r = client.put("/v1/stations/BUS-9/stops", headers=auth, json={
        "stops": _stops(1, "Mo-Fr 10:00-16:00", horizon.isoformat()), "version": 1})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["fields"][0]["field"] == "stops[0].valid_to"
    # Within the horizon but too much work (seven slow stops): refused naming the schedule.
    r = client.put("/v1/stations/BUS-9/stops", headers=auth,
                   json={"stops": _stops(7, heavy_rule(200)), "version": 1})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["fields"][0]["field"] == "stops"
    assert calls == [], "hours were compiled for a schedule refused by its size"
    assert client.get("/v1/stations/BUS-9/stops").json()["stops"] == []
    # The watch works: an acceptable schedule is checked and compiled.
    r = client.put("/v1/stations/BUS-9/stops", headers=auth,
                   json={"stops": _stops(1, "Mo-Fr 10:00-16:00"), "version": 1})
    assert r.status_code == 200, r.text
    assert set(calls) == {"first_overlap", "compiled_hours_columns"}, calls
