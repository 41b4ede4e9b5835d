"""Schemathesis against the app's own OpenAPI schema on a live server.

No operation may answer 5xx or break its declared schema, whatever the input.
Write operations are called with an admin key so the fuzzer reaches past the
401 into validation and the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from geo_service.auth import create_key
from geo_service.main import create_app
from geo_service.seed import load_seed
from geo_service.settings import Settings
from tests.conftest import SEED
from tests.helpers import live_server as serve


@pytest.fixture(scope="module")
def live_server(db_url: str) -> Iterator[dict[str, str]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE api_key, station, demand_point, admin_area CASCADE")
        load_seed(db_url, SEED)
        key = create_key(conn, name="schemathesis", role="admin")
    with serve(db_url) as base:
        yield {"base": base, "key": f"Bearer {key}"}


@pytest.fixture(scope="module")
def api_schema(live_server: dict[str, str]) -> Any:
    return schemathesis.openapi.from_url(f"{live_server['base']}/openapi.json")


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, read from the app's schema without a database."""
    app = create_app(Settings(database_url="postgresql://unused@localhost/unused"))
    return [(method.upper(), path) for path, item in app.openapi()["paths"].items()
            for method in item]


@pytest.mark.parametrize(("method", "path"), _operations())
def test_no_5xx_and_responses_match_schema(
    method: str, path: str, api_schema: Any, live_server: dict[str, str]
) -> None:
    operation = api_schema[path][method]
    headers = None if method == "GET" else {"Authorization": live_server["key"]}

    @given(case=operation.as_strategy())
    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    run()
