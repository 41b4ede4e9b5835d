"""One map page from the database: load what it shows, then render it.

Shared by ``geo-service maps render`` and the live ``/maps/...`` pages, so a
file written to ``maps/`` and a page served from current data are the same
page for the same data and moment.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import psycopg

from geo_service.maps import data, render
from geo_service.maps.options import MapOptions


class MapKind(StrEnum):
    """The three maps."""

    STATIONS = "stations"
    COVERAGE = "coverage"
    COMPLIANCE = "compliance"


def make_page(conn: psycopg.Connection[Any], kind: MapKind, area_code: str | None,
              opts: MapOptions, run_id: int | None = None) -> str:
    """The HTML of one map of ``area_code`` (None: everywhere) as of ``opts.at``."""
    area = data.load_area(conn, area_code)
    if kind is MapKind.COVERAGE:
        run = data.run_for(conn, run_id, area_code, opts.crs)
        if area_code is None and run.area is not None:
            area = data.load_area(conn, run.area)
        stations = data.load_stations(conn, area.code, opts.at, opts.crs)
        districts = data.load_districts(conn, area.code, opts.crs)
        return render.coverage_map(run, stations, districts, area, opts)
    stations = data.load_stations(conn, area.code, opts.at, opts.crs)
    districts = data.load_districts(conn, area.code, opts.crs)
    if kind is MapKind.STATIONS:
        return render.stations_map(stations, districts, area, opts)
    return render.compliance_map(stations, districts, area, opts)
