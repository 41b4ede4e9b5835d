"""What the maps draw, read from PostGIS into the plain types of :mod:`.model`.

Loading is synchronous (``psycopg.Connection``): the CLI renders with it
directly and the API from a worker thread, as the coverage room does. Every
coordinate leaves here in the basemap's system (:func:`shift_points`,
:func:`shift_geometry`), so the rendering code never has to think about
GCJ-02.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import h3
import numpy as np
import psycopg
import shapely
from shapely.geometry import mapping, shape

from geo_service.coverage.service import run_with_cells
from geo_service.domain.coords import Crs, from_wgs84_array
from geo_service.domain.errors import NotFound
from geo_service.maps import queries as q
from geo_service.maps.model import Area, Run, Stations

#: A coverage map draws every cell of its run; more than this would not open in a browser.
MAX_MAP_CELLS = 200_000


def shift_points(lon: Any, lat: Any, crs: Crs) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 → ``crs`` for arrays of points (a copy; WGS-84 returns them as floats)."""
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    if crs is Crs.WGS84:
        return lon_a, lat_a
    return from_wgs84_array(lon_a, lat_a, crs)


def shift_geometry(geometry: dict[str, Any], crs: Crs) -> dict[str, Any]:
    """A GeoJSON geometry with every vertex moved WGS-84 → ``crs``."""
    if crs is Crs.WGS84:
        return geometry

    def move(xy: np.ndarray) -> np.ndarray:
        x, y = from_wgs84_array(xy[:, 0], xy[:, 1], crs)
        return np.column_stack([x, y])

    return dict(mapping(shapely.transform(shape(geometry), move)))


def load_area(conn: psycopg.Connection[Any], code: str | None) -> Area:
    """The area by code; an unknown code is a 404 naming ``area``."""
    if code is None:
        return Area(None, "全部地区", "All areas")
    row = conn.execute(q.AREA, {"code": code}).fetchone()
    if row is None:
        raise NotFound(f"no admin area {code!r}", [("area", "unknown area code")])
    return Area(row[0], row[1], row[2])


def load_stations(conn: psycopg.Connection[Any], area: str | None, at: dt.datetime,
                  crs: Crs) -> Stations:
    """Open, temporarily closed and planned stations of the area, shifted to ``crs``."""
    rows = conn.execute(q.STATIONS, {"area": area, "at": at,
                                     "statuses": list(q.MAP_STATUSES)}).fetchall()
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * 18
    lon, lat = shift_points(cols[3], cols[4], crs)
    stops = [_shift_stops(v, crs) for v in cols[14]]
    return Stations(
        code=list(cols[0]), name=list(cols[1]), address=list(cols[2]), lon=lon, lat=lat,
        host_type=list(cols[5]), status=list(cols[6]), opening_hours=list(cols[7]),
        phone=list(cols[8]), amenity_mask=[int(m) for m in cols[9]],
        last_verified_on=list(cols[10]), district_code=list(cols[11]), sample=list(cols[12]),
        open_now=list(cols[13]), stops=stops, awards=list(cols[15]),
        reported_closed_at=list(cols[16]), last_confirmed_at=list(cols[17]),
    )


def _shift_stops(stops: list[dict[str, Any]] | None, crs: Crs) -> list[dict[str, Any]] | None:
    if not stops:
        return None
    lon, lat = shift_points([s["lon"] for s in stops], [s["lat"] for s in stops], crs)
    return [{**s, "lon": round(float(x), 6), "lat": round(float(y), 6)}
            for s, x, y in zip(stops, lon.tolist(), lat.tolist(), strict=True)]


def load_districts(conn: psycopg.Connection[Any], area: str | None,
                   crs: Crs) -> list[dict[str, Any]]:
    """The district outlines to draw, as GeoJSON features in ``crs``."""
    out = []
    for code, name, name_en, geometry in conn.execute(q.DISTRICTS, {"area": area}):
        out.append({"type": "Feature", "id": code,
                    "properties": {"code": code, "name": name, "name_en": name_en},
                    "geometry": shift_geometry(json.loads(geometry), crs)})
    return out


def run_for(conn: psycopg.Connection[Any], run_id: int | None, area: str | None,
            crs: Crs) -> Run:
    """The asked run, or the newest of the area, with its cells as hexagons and its
    sites, in ``crs``; read through the coverage room (``run_with_cells``).

    None stored is a 404 naming ``run``; a run larger than
    :data:`MAX_MAP_CELLS` is refused (422 naming ``run``): its map would be too
    heavy to open.
    """
    run = run_with_cells(conn, run_id, area=area, max_cells=MAX_MAP_CELLS)
    cells = []
    for c in run["cells"]:
        ring = h3.cell_to_boundary(c["cell"])  # (lat, lng) pairs
        lon, lat = shift_points([p[1] for p in ring], [p[0] for p in ring], crs)
        nearest_m = c["nearest_m"]
        cells.append({
            "cell": c["cell"], "area": c["area_code"], "demand": float(c["demand"]),
            "points": int(c["points"]), "nearest": c["nearest_code"],
            "nearest_m": None if nearest_m is None or not np.isfinite(nearest_m)
            else float(nearest_m),
            "covered": bool(c["covered"]), "doubly": bool(c["doubly"]),
            "ring": np.round(np.column_stack([lat, lon]), 6).tolist(),
        })
    sites = run["summary"].get("sites") or []
    if sites:
        s_lon, s_lat = shift_points([s["lon"] for s in sites], [s["lat"] for s in sites], crs)
        sites = [{**s, "lon": float(x), "lat": float(y)}
                 for s, x, y in zip(sites, s_lon.tolist(), s_lat.tolist(), strict=True)]
    areas = []
    for code, geometry in run["service_areas"]:  # MultiPolygons: [[[lat, lon], ...], ...]
        shifted = shift_geometry(geometry, crs)["coordinates"]
        areas.append([code, [[[[round(y, 6), round(x, 6)] for x, y in ring] for ring in poly]
                             for poly in shifted]])
    return Run(id=run["id"], kind=run["kind"], area=run["params"].get("area"),
               created_at=run["created_at"], sample=bool(run["sample"]),
               summary=run["summary"], cells=cells, sites=sites, service_areas=areas)


def sole_city(conn: psycopg.Connection[Any]) -> str | None:
    """The code of the only city on record, if there is exactly one (the sample's)."""
    rows = conn.execute(q.CITIES).fetchall()
    return str(rows[0][0]) if len(rows) == 1 else None
