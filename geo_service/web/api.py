"""The one router aggregator: every room's routes, in the order the app includes them.

The only module that imports routers (tests/test_rooms.py checks it), so a new room
is one line here and the app factory never changes. The order is the order of the
OpenAPI document's paths and of route matching: a literal path (``/v1/stations/nearest``)
comes before the template it also fits (``/v1/stations/{code}``), and the app's
catch-all shell comes last.
"""

from __future__ import annotations

from fastapi import APIRouter

from geo_service.admin.router import router as admin
from geo_service.app.routes.shell import router as app_shell
from geo_service.app.routes.snapshot import router as app_snapshot
from geo_service.app.routes.snapshot import vendor_router as app_vendor
from geo_service.app.routes.vocabulary import router as app_vocabulary
from geo_service.bulletin.router import router as bulletins
from geo_service.console.routes.accounts import router as console_accounts
from geo_service.console.routes.bulletin import router as console_bulletin
from geo_service.console.routes.demand import router as console_demand
from geo_service.console.routes.imports import router as console_imports
from geo_service.console.routes.keys import router as console_keys
from geo_service.console.routes.photos import router as console_photos
from geo_service.console.routes.planning import router as console_planning
from geo_service.console.routes.posters import router as console_posters
from geo_service.console.routes.reports import router as console_reports
from geo_service.console.routes.session import router as console_session
from geo_service.console.routes.station_form import router as console_station_form
from geo_service.console.routes.stations import router as console_stations
from geo_service.coverage.router import demand_router as coverage_demand
from geo_service.coverage.router import router as coverage
from geo_service.feeds.routes.exports import router as feeds_exports
from geo_service.feeds.routes.feeds import router as feeds
from geo_service.feeds.routes.ogc import router as feeds_ogc
from geo_service.feeds.routes.tiles import router as feeds_tiles
from geo_service.maps.router import router as maps
from geo_service.operations.routes.feedback import router as operations_feedback
from geo_service.operations.routes.inspections import router as operations_inspections
from geo_service.operations.routes.stops import router as operations_stops
from geo_service.photos.router import router as photos
from geo_service.posters.router import router as posters
from geo_service.stations.router import router as stations
from geo_service.stations.routes.planned import router as stations_planned
from geo_service.web.routes.docs import router as docs
from geo_service.web.routes.guide import router as guide
from geo_service.web.routes.meta import router as meta

ROUTERS: tuple[APIRouter, ...] = (
    meta,
    docs,
    guide,
    stations,
    coverage_demand,
    coverage,
    stations_planned,
    feeds,
    feeds_exports,
    feeds_ogc,
    feeds_tiles,
    maps,
    operations_stops,
    operations_inspections,
    operations_feedback,
    posters,
    bulletins,
    photos,
    admin,
    console_session,
    console_accounts,
    console_keys,
    console_reports,
    console_posters,
    console_photos,
    console_imports,
    console_planning,
    console_station_form,  # before console_stations: /console/stations/new is no code
    console_stations,
    console_demand,
    console_bulletin,
    app_snapshot,
    app_vocabulary,
    app_vendor,
    app_shell,
)
