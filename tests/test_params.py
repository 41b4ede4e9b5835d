"""The one rule for instants and the one cursor codec, used by the API and the CLIs."""

from __future__ import annotations

import datetime as dt

import pytest

from geo_service.coverage.schemas import StationFilter
from geo_service.domain.errors import GeoServiceError
from geo_service.domain.params import decode_cursor, encode_cursor, instant, to_instant

CST = dt.timezone(dt.timedelta(hours=8))


def test_a_naive_instant_is_china_time_everywhere() -> None:
    naive = dt.datetime(2026, 12, 1, 12, 0)
    assert instant(naive, "at") == dt.datetime(2026, 12, 1, 12, 0, tzinfo=CST)
    assert instant("2026-12-01T12:00", "at") == dt.datetime(2026, 12, 1, 12, 0, tzinfo=CST)
    # An offset given is kept.
    utc = instant("2026-12-01T04:00:00+00:00", "at")
    assert utc == dt.datetime(2026, 12, 1, 12, 0, tzinfo=CST) and utc.utcoffset() == dt.timedelta(0)
    # The coverage filter applies the same rule (it used to refuse a naive time).
    assert StationFilter(open_at=naive).open_at == instant(naive, "at")


@pytest.mark.parametrize("value, problem", [
    ("1969-12-31T23:00", "must be between 1970 and 2199"),
    ("2200-01-01T00:00+08:00", "must be between 1970 and 2199"),
    ("noon", "must be an ISO 8601 date-time"),
])
def test_instants_out_of_range_name_the_field(value: str, problem: str) -> None:
    with pytest.raises(GeoServiceError) as caught:
        instant(value, "open_at")
    body = caught.value.body()["error"]
    assert body["fields"][0]["field"] == "open_at"
    assert body["fields"][0]["problem"].startswith(problem)
    with pytest.raises(ValueError, match=problem):
        to_instant(value)


def test_none_is_now() -> None:
    before = dt.datetime.now(dt.UTC)
    assert before <= instant(None, "at") <= dt.datetime.now(dt.UTC)


def test_one_cursor_codec() -> None:
    assert decode_cursor(encode_cursor(42)) == (42,)
    assert decode_cursor(encode_cursor(739_000, 17), parts=2) == (739_000, 17)
    assert decode_cursor(None) == (0,) and decode_cursor("", parts=2) == (0, 0)
    for bad, parts in (("abc", 1), ("1.2", 1), ("12", 2), ("١٢", 1), ("9" * 19, 1)):
        with pytest.raises(GeoServiceError) as caught:
            decode_cursor(bad, "since", parts=parts)
        assert caught.value.body()["error"]["fields"][0]["field"] == "since"
