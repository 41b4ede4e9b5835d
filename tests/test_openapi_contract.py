"""Schemathesis against the app's own OpenAPI schema on a live server, every check on.

Each operation runs the examples, coverage and fuzzing phases, in positive and
negative modes, with all of schemathesis's checks: no 5xx, no response that
breaks its declared schema, media type or headers, every request the schema
allows accepted (positive data acceptance) and every request it forbids refused.
Write operations are called with an admin key so the fuzzer reaches past the
401 into validation and the database.

Where a rule truly cannot be written in OpenAPI, that one check is left out for
that one operation, with the reason, in :data:`EXCLUDED`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.specs.openapi.checks import positive_data_acceptance

from geo_service.domain.auth import create_key
from geo_service.infra.settings import Settings
from geo_service.sample.seed import load_seed
from geo_service.web.app import create_app
from tests.conftest import SEED
from tests.helpers import live_server as serve
from tests.helpers import load_test_roads

#: Examples per operation and mode in the fuzzing phase (the coverage phase adds its own).
MAX_EXAMPLES = 25

_OPAQUE_HOURS = "opening_hours is OSM syntax: a grammar no JSON Schema pattern can state"
_BBOX = "bbox corners must be in range and min < max: an order no pattern can state"
_EXISTING = "the body must name things that exist (an area, a station, a report's state)"
_VERSION = "If-Match / version must be the station's current version: state, not schema"
_FILE = "the upload's content (CSV/XLSX/GeoJSON with a header) is not described by the schema"
_PHOTO = "the upload must be a JPEG, PNG or HEIC picture: content no schema describes"

#: (method, path) → checks left out there, and why. Everything else runs every check.
EXCLUDED: dict[tuple[str, str], dict[Callable[..., Any], str]] = {
    ("POST", "/v1/stations"): {positive_data_acceptance: _OPAQUE_HOURS},
    ("PUT", "/v1/stations/{code}"): {positive_data_acceptance: _OPAQUE_HOURS},
    ("PATCH", "/v1/stations/{code}"): {positive_data_acceptance: _OPAQUE_HOURS},
    ("DELETE", "/v1/stations/{code}"): {positive_data_acceptance: _VERSION},
    ("POST", "/v1/stations:import"): {positive_data_acceptance: _FILE},
    ("POST", "/v1/demand:import"): {positive_data_acceptance: _FILE},
    ("POST", "/v1/stations/{code}/photos"): {positive_data_acceptance: _PHOTO},
    ("POST", "/v1/photos"): {positive_data_acceptance: _PHOTO},
    ("POST", "/v1/report-photos"): {positive_data_acceptance: _PHOTO},
    ("POST", "/v1/demand:raster"): {
        positive_data_acceptance: "the upload's content (a GeoTIFF) is not described by the "
                                  "schema"},
    ("GET", "/v1/stations"): {positive_data_acceptance: _BBOX},
    ("GET", "/v1/feeds/stations.geojson"): {positive_data_acceptance: _BBOX},
    ("GET", "/v1/exports/{platform}.{fmt}"): {positive_data_acceptance: _BBOX},
    ("POST", "/v1/analysis/coverage"): {
        positive_data_acceptance: "exactly one of area, polygon, bbox; a region of at most "
                                  "40 degrees (without demand in it: of at most 1,000,000 "
                                  "H3 cells, measured by area)"},
    ("POST", "/v1/analysis/recommendations"): {
        positive_data_acceptance: "as coverage, and exactly one of add, target_share"},
    ("POST", "/v1/analysis/whatif"): {
        positive_data_acceptance: "as coverage, with stations to close that the analysis "
                                  "counts or sites to add"},
    ("PUT", "/v1/stations/{code}/stops"): {positive_data_acceptance: _OPAQUE_HOURS},
    ("POST", "/v1/stations/{code}/inspections"): {positive_data_acceptance: _OPAQUE_HOURS},
    ("GET", "/tiles/{z}/{x}/{y}.mvt"): {positive_data_acceptance: "x and y must be below 2^z"},
    ("POST", "/v1/stations/{code}/awards"): {
        positive_data_acceptance: "a year at most next year: a bound that moves with the "
                                  "calendar, while the schema is built once"},
    ("GET", "/v1/visits/counts"): {
        positive_data_acceptance: "from and to at most 1098 days apart, from before to"},
    ("GET", "/v1/inspections/trend"): {positive_data_acceptance: "from not after to"},
    ("POST", "/v1/stations/{code}/reports"): {
        positive_data_acceptance: "amenity only with the amenity kinds, and then required"},
    ("POST", "/v1/reports/{report_id}/resolution"): {
        positive_data_acceptance: "which actions are allowed depends on the report's state"},
    ("POST", "/v1/keys"): {positive_data_acceptance: _EXISTING},
}


@pytest.fixture(scope="module")
def live_server(db_url: str) -> Iterator[dict[str, str]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE api_key, station, demand_point, admin_area CASCADE")
        load_seed(db_url, SEED)
        load_test_roads(db_url)  # by=walk|ebike answer (without roads they are a 409)
        key = create_key(conn, name="schemathesis", role="admin")
        # Out of the way of the ids the key operations generate (they revoke and rotate).
        conn.execute("UPDATE api_key SET id = 1987654321 WHERE prefix = %s",
                     (key.split("_")[1],))
    with serve(db_url) as base:
        yield {"base": base, "key": f"Bearer {key}", "db_url": db_url}


@pytest.fixture(scope="module")
def api_schema(live_server: dict[str, str]) -> Any:
    return schemathesis.openapi.from_url(f"{live_server['base']}/openapi.json")


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, read from the app's schema without a database."""
    app = create_app(Settings(database_url="postgresql://unused@localhost/unused"))
    return [(method.upper(), path) for path, item in app.openapi()["paths"].items()
            for method in item]


def test_exclusions_name_real_operations() -> None:
    assert set(EXCLUDED) <= set(_operations())


@pytest.mark.slow  # ~50 s for all operations: schemathesis's three phases, two modes each
@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_check_on_every_operation(
    method: str, path: str, api_schema: Any, live_server: dict[str, str]
) -> None:
    operation = api_schema[path][method]
    headers = None if method == "GET" else {"Authorization": live_server["key"]}
    excluded = list(EXCLUDED.get((method, path), {}))

    def check(case: Any) -> None:
        call_headers = headers
        if path.startswith("/v1/keys/"):
            # Revoking or rotating may hit any key id, the shared key's too: each
            # case acts with a key of its own so the other operations keep theirs.
            with psycopg.connect(live_server["db_url"], autocommit=True) as conn:
                call_headers = {"Authorization": "Bearer " + create_key(
                    conn, name="schemathesis-keys", role="admin")}
        case.call_and_validate(headers=call_headers, excluded_checks=excluded)

    test = build_operation_test(
        config=api_schema.config, operation=operation, test_func=check, given_kwargs={},
        feedback=FeedbackSources(),
        explicit_settings=settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                                   suppress_health_check=list(HealthCheck)))
    test()
