"""One map page from the database: load what it shows, then render it.

Shared by ``geo-service maps render`` and the live ``/maps/...`` pages, so a
file written to ``maps/`` and a page served from current data are the same
page for the same data and moment.
"""

from __future__ import annotations

import html
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import psycopg

from geo_service.domain.html import page_csp
from geo_service.maps import data
from geo_service.maps.assets import AssetMode, cdn_origin
from geo_service.maps.model import Basemap, MapOptions


class MapKind(StrEnum):
    """The three maps."""

    STATIONS = "stations"
    COVERAGE = "coverage"
    COMPLIANCE = "compliance"


def make_page(conn: psycopg.Connection[Any], kind: MapKind, area_code: str | None,
              opts: MapOptions, run_id: int | None = None) -> str:
    """The HTML of one map of ``area_code`` (None: everywhere) as of ``opts.at``,
    with its Content-Security-Policy in a ``<meta>`` (see :func:`with_policy`)."""
    return with_policy(_render(conn, kind, area_code, opts, run_id), opts)


def tile_sources(basemap: Basemap) -> list[str]:
    """CSP sources of a basemap's tile servers (``{s}`` expanded to its subdomains)."""
    if not basemap.url:
        return []
    parts = urlsplit(basemap.url)
    hosts = {parts.netloc.replace("{s}", s) for s in basemap.subdomains or " "}
    if any("{" in h or not h for h in hosts):
        return [f"{parts.scheme}:"]  # another placeholder in the host: any host of the scheme
    return sorted(f"{parts.scheme}://{h}" for h in hosts)


def with_policy(page: str, opts: MapOptions) -> str:
    """The page with a ``<meta>`` Content-Security-Policy right after its charset.

    In the page itself, so a file written by ``geo-service maps render`` and
    opened from a shared drive is as protected as a served one: only the page's
    own inline scripts (by hash) and Leaflet from where ``opts.assets`` says
    run, and images come only from the basemap's tile servers. The served
    pages add ``frame-ancestors`` in the header (a meta policy cannot).
    """
    origin = {AssetMode.CDN: [cdn_origin(opts.asset_prefix)], AssetMode.LOCAL: ["'self'"],
              AssetMode.INLINE: []}[opts.assets]
    policy = page_csp(page, scripts=origin, styles=origin,
                      images=[*origin, *tile_sources(opts.basemap)],
                      connect=["'self'"] if opts.streets else [], meta=True)
    tag = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(policy)}">'
    charset = '<meta http-equiv="content-type" content="text/html; charset=UTF-8" />'
    if charset in page:
        return page.replace(charset, f"{charset}\n    {tag}", 1)
    return page.replace("<head>", f"<head>\n{tag}", 1)


def _render(conn: psycopg.Connection[Any], kind: MapKind, area_code: str | None,
            opts: MapOptions, run_id: int | None) -> str:
    # folium (and pandas with it) is imported on the first map, not with the app: it
    # costs each API process ~40 MB of resident memory that nearest never needs.
    from geo_service.maps import render

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
