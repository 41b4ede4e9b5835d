"""The nearest fast path answers byte for byte as the FastAPI route does (issue 25).

Random query strings - plainly valid ones, and ones with coordinates out of range,
junk numbers, repeated parameters, unknown amenities, k and min_ten_ones past their
bounds, unknown crs values, empty values, unicode, unknown parameters - and random
``X-Min-Change-Seq`` and ``Accept-Encoding`` headers go to two apps on the same
database, both with the memory index loaded: one as the server serves it
(``create_served_app``: the FastAPI app behind the fast path), one the FastAPI app alone
(so the route answers everything). Status, every header and the body must be the same
bytes; the fast path must have answered a good share of them itself, and those without
entering FastAPI at all (the point of serving it in front).
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams, State
from starlette.types import Receive, Scope, Send

from geo_service import cli
from geo_service.infra.settings import Settings
from geo_service.sample.seed import load_seed
from geo_service.stations.nearest_index import http
from geo_service.web import serving
from geo_service.web.app import create_app, create_served_app
from tests.helpers import insert_stations
from tests.test_nearest_memory import BOX, CODES, HOSTS, _stations, _wait_fresh

SEED = Path(__file__).parents[1] / "seed"
#: Every answer names its instant; without ``at`` it is "now", which differs between the
#: two requests. A generated ``at`` comes later and wins (the last of a repeated one).
AT = "at=2026-12-01T10:00:00%2B08:00"
#: The same instant with nothing to unquote, as an app writes it: the fast path splits
#: such query strings itself (``http.query_params``) instead of through ``parse_qsl``.
AT_PLAIN = "at=2026-12-01T02:00:00Z"


@pytest.fixture
def both(db_url: str, db: psycopg.Connection[Any],
         settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    """(the app as served, the app without its fast path), both with the index loaded."""
    load_seed(db_url, SEED)
    insert_stations(db, _stations(400, seed=25))
    on = settings.model_copy(update={"nearest_index": "on", "nearest_index_max_lag_s": 30.0})
    with TestClient(create_served_app(on), client=("127.0.0.1", 50000)) as fast, \
            TestClient(create_app(on), client=("127.0.0.1", 50000)) as route:
        since = time.monotonic()
        _wait_fresh(fast, since)
        _wait_fresh(route, since)
        yield fast, route


def _number(lo: float, hi: float) -> st.SearchStrategy[str]:
    return st.one_of(st.floats(lo, hi).map(lambda v: str(round(v, 6))),
                     st.integers(int(lo), int(hi)).map(str))


JUNK = st.one_of(
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e3", "0x10", " 18.2", "18,2", "+5",
                     "05", "-0", "1.", ".5", "true", "1", "0", "yes", "on", "None", "null",
                     "北京", "🚚", "wgs84 ", "WGS84", "%zz", "a=b", "&", "1" * 40]),
    st.text(max_size=8),
)

#: Values the route takes, by parameter (some still refused by a cap or the crs).
VALUES: dict[str, st.SearchStrategy[str]] = {
    "lat": _number(BOX[1] - 0.5, BOX[3] + 0.5),
    "lon": _number(BOX[0] - 0.5, BOX[2] + 0.5),
    "k": st.integers(1, 60).map(str),
    "radius_m": st.one_of(st.sampled_from(["1", "300", "5000", "50000"]), _number(1, 2e5)),
    "amenities": st.lists(st.sampled_from(CODES), max_size=2).map(",".join),
    "host_type": st.lists(st.sampled_from([*HOSTS, "mobile"]), max_size=2).map(",".join),
    "status": st.lists(st.sampled_from(["open", "temporarily_closed", "planned", "closed",
                                        "duplicate"]), max_size=2).map(",".join),
    "open_now": st.sampled_from(["true", "false", "1", "0", "yes", "off"]),
    "include_unknown": st.sampled_from(["true", "false", "on"]),
    "min_ten_ones": st.integers(0, 10).map(str),
    "crs": st.sampled_from(["wgs84", "gcj02", "bd09"]),
    "at": st.sampled_from(["2026-10-01T12:00:00+08:00", "2026-02-17T01:30", "2027-03-03",
                           "2026-12-01T10:00:00Z"]),
    # by road the route answers (the fast path must not answer it in straight order)
    "by": st.sampled_from(["straight", "walk", "ebike"]),
}
#: Values it refuses: out of range, past a bound or a cap, unknown names, bad instants.
BAD: dict[str, st.SearchStrategy[str]] = {
    "lat": _number(-95, 95), "lon": _number(-185, 185),
    "k": st.sampled_from(["0", "-1", "1001", "100000", "5.0"]),
    "radius_m": st.sampled_from(["0", "-1", "1e9", "1e400", "NaN"]),
    "amenities": st.sampled_from(["sauna", "water_dispenser,,", ",", "WATER_DISPENSER"]),
    "host_type": st.sampled_from(["castle", "mobile,"]),
    "status": st.sampled_from(["gone", "open,gone"]),
    "open_now": st.sampled_from(["maybe", "2"]), "include_unknown": st.sampled_from(["2"]),
    "min_ten_ones": st.sampled_from(["-1", "11"]),
    "crs": st.sampled_from(["epsg:4326", "", "WGS84", "mars"]),
    "at": st.sampled_from(["1969-12-31T23:00", "2200-01-01T00:00", "noon", "2026-13-01"]),
    "by": st.sampled_from(["car", "", "WALK"]),
}
NAMES = [*VALUES, "f", "lat[]", "Lat", "线"]


@st.composite
def queries(draw: st.DrawFn) -> str:
    """A query string: usually a valid point in the data's box first, then parameters
    (valid values, refused values, junk, unknown names, repeats), percent-encoded as a
    client would, sometimes with the structure itself broken."""
    pairs: list[tuple[str, str]] = []
    if draw(st.integers(0, 4)):
        pairs += [("lat", draw(_number(BOX[1], BOX[3]))), ("lon", draw(_number(BOX[0], BOX[2])))]
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(NAMES))
        kind = draw(st.integers(0, 9))
        if kind == 0:
            value = draw(JUNK)
        elif kind == 1:
            value = draw(BAD.get(name, JUNK))
        else:
            value = draw(VALUES.get(name, JUNK))
        pairs.append((name, value))
    # Escaped whole, or as an app writes plain values (commas and colons left as they
    # are), so that both of the fast path's ways of reading a query string are compared.
    safe = draw(st.sampled_from(["", ",:"]))
    text = "&".join(f"{quote(n, safe=safe)}={quote(v, safe=safe)}" for n, v in pairs)
    broken = draw(st.sampled_from(["", "", "", "", "", "", "&", "&&", "=", "lat", "&=&"]))
    return f"{AT_PLAIN if safe else AT}&{text}{broken}"


HEADERS = st.fixed_dictionaries({}, optional={
    "Accept-Encoding": st.sampled_from(["gzip", "identity", "gzip, deflate, br", "br"]),
    "X-Min-Change-Seq": st.sampled_from(["0", "1", "999999999999999999", "-1", "x", ""]),
})


EXAMPLES: list[tuple[str, Any]] = [
    (AT, {}),
    (f"{AT}&lat=18.3&lon=109.5", {"Accept-Encoding": "gzip"}),
    (f"{AT}&lat=18.3&lon=109.5&k=50&lat=91", {}),
    (f"{AT}&lat=18.3&lon=109.5&amenities=sauna", {}),
    (f"{AT}&lat=18.3&lon=109.5&k=0", {}),
    (f"{AT}&lat=18.3&lon=109.5&crs=mars", {}),
    (f"{AT}&lat=18.3&lon=109.5&by=walk", {}),
    (f"{AT}&lat=18.3&lon=109.5&by=ebike&k=3", {"Accept-Encoding": "gzip"}),
    (f"{AT}&lat=%E5%8C%97&lon=109.5", {}),
    (f"{AT}&lat=18.3&lon=109.5&k=40&open_now=1", {"Accept-Encoding": "gzip"}),
    # Plain query strings (nothing to unquote), broken ones included.
    (f"{AT_PLAIN}&lat=18.3&lon=109.5&k=10&amenities=microwave,restroom&open_now=true", {}),
    (f"{AT_PLAIN}&&lat=18.3&lon=109.5&lon&k=5=6&=", {}),
    (f"{AT_PLAIN}&lat=18.3&lon=109.5&k=40&status=open,planned&", {"Accept-Encoding": "gzip"}),
    # Two Accept-Encoding headers: the stack reads the first.
    (f"{AT}&lat=18.3&lon=109.5&k=40", [("Accept-Encoding", "identity"),
                                        ("Accept-Encoding", "gzip")]),
    (f"{AT}&lat=18.3&lon=109.5&k=40", [("Accept-Encoding", "gzip"),
                                        ("Accept-Encoding", "identity")]),
]


def test_fast_path_answers_as_the_route(both: tuple[TestClient, TestClient]) -> None:
    fast, route = both
    real, real_call = http.answer, FastAPI.__call__
    tally: collections.Counter[str] = collections.Counter()

    def compare(query: str, headers: Any) -> None:
        url = f"/v1/stations/nearest?{query}"
        answered: list[bool] = []
        entered: list[bool] = []

        def counted(state: State, scope: Scope) -> bytes | None:
            body = real(state, scope)
            answered.append(body is not None)
            return body

        async def fastapi_entered(app: FastAPI, scope: Scope, receive: Receive,
                                  send: Send) -> None:
            entered.append(scope["type"] == "http")
            await real_call(app, scope, receive, send)

        with mock.patch.object(http, "answer", counted), \
                mock.patch.object(FastAPI, "__call__", fastapi_entered):
            a = fast.get(url, headers=headers)
        # Answered by the fast path: FastAPI never saw the request; else the route did.
        assert entered == ([] if answered == [True] else [True]), (query, answered, entered)
        b = route.get(url, headers=headers)
        assert a.status_code == b.status_code, (query, a.text, b.text)
        assert a.headers.raw == b.headers.raw, query
        assert a.content == b.content, query
        assert a.status_code < 500, (query, a.text)
        tally["fast" if answered == [True] else "route"] += 1
        tally[f"status {a.status_code}"] += 1

    check = given(query=queries(), headers=HEADERS)(compare)
    for query, headers in EXAMPLES:
        check = example(query=query, headers=headers)(check)
    settings(max_examples=150, deadline=None, database=None,
             suppress_health_check=[HealthCheck.too_slow])(check)()
    # The comparison means something only if both paths were taken, and both answers
    # and refusals were compared.
    assert tally["fast"] >= 30 and tally["route"] >= 30, tally
    assert tally["status 200"] >= 30 and tally["status 422"] >= 10, tally


def test_the_server_serves_the_fast_path(settings: Settings) -> None:
    """``geo-service serve`` (one process) and each ``--workers`` process serve the app
    behind the fast path, not the bare FastAPI app."""
    module, _, name = serving.APP_FACTORY.partition(":")
    assert f"{module}.{name}" == f"{create_served_app.__module__}.{create_served_app.__name__}"
    served = create_served_app(settings)
    assert isinstance(served, http.NearestFastPath) and isinstance(served.app, FastAPI)
    args = argparse.Namespace(host="127.0.0.1", port=0, workers=1, graceful_timeout=1,
                              log_level="warning")
    with mock.patch.object(serving, "run") as run:
        assert cli.cmd_serve(args, settings) == 0
    assert isinstance(run.call_args.args[0], http.NearestFastPath)


@given(st.text(alphabet="ab=&,.:-_09+%;2 Z线", max_size=24))
@settings(max_examples=400, database=None)
@example("k=5=6&&lat&=&")
@example("a=1&a=2&b=")
def test_query_params_read_as_starlette_reads_them(text: str) -> None:
    """Split directly (a plain string) or through ``parse_qsl``, the parameters are those
    of Starlette's ``QueryParams``, the route's (its last value of a repeated name)."""
    raw = text.encode()
    assert http.query_params(raw) == dict(QueryParams(raw.decode("latin-1")))
