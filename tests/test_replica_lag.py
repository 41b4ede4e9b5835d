"""The replica monitor's lag arithmetic, without a database (tests/test_replicas.py runs
it against real standbys)."""

from __future__ import annotations

from typing import Any

import pytest

from geo_service.infra.replicas import ReadRouting


def _routing(samples: list[tuple[float, int]]) -> ReadRouting:
    none: Any = None
    routing = ReadRouting(primary_pool=none, primary_sync_pool=none, primary_url="",
                          replicas=[], max_lag_s=5.0, interval_s=0.5, checkout_timeout_s=1.0)
    routing._history.extend(samples)
    return routing


def test_an_idle_primary_makes_no_lag_however_old_the_last_commit() -> None:
    # Nothing written for an hour: the standby has replayed all there is.
    routing = _routing([(100.0, 5000), (100.5, 5000), (101.0, 5000)])
    assert routing._lag(5000, 101.2, since_commit=3600.0) == (0, 0.0)


def test_lag_is_the_time_since_the_primary_passed_the_replayed_position() -> None:
    routing = _routing([(100.0, 5000), (100.5, 5000), (101.0, 7000), (101.5, 9000)])
    # Replayed 5000: the primary passed it at 101.0, so 1.2 s behind at 102.2.
    assert routing._lag(5000, 102.2, since_commit=3600.0) == (4000, pytest.approx(1.2))
    # Replayed 7000: passed at 101.5.
    assert routing._lag(7000, 102.2, since_commit=None) == (2000, pytest.approx(0.7))


def test_a_standby_behind_the_whole_history_falls_back_to_its_last_commit() -> None:
    # Just after start there is one position; a standby behind it is judged by the age
    # of its last replayed commit, which can only overstate the lag.
    routing = _routing([(100.0, 9000)])
    assert routing._lag(5000, 100.1, since_commit=42.0) == (4000, pytest.approx(42.0))
    assert routing._lag(5000, 100.1, since_commit=None) == (4000, pytest.approx(0.1))
