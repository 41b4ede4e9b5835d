"""Writing stations straight to the database for tests that need thousands of them."""

from __future__ import annotations

from typing import Any

import psycopg

from geo_service.coords import Crs
from geo_service.schemas import StationCreate
from geo_service.stations import queries as q
from geo_service.stations.service import to_record


def insert_stations(conn: psycopg.Connection[Any], bodies: list[dict[str, Any]]) -> None:
    """Validate like the API does, compile hours, insert in one transaction."""
    records = [to_record(StationCreate.model_validate(b).model_dump(), Crs.WGS84) for b in bodies]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(q.INSERT_STATION, records)
