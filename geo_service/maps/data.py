"""What the maps draw, read from PostGIS into plain columns and GeoJSON.

Loading is synchronous (``psycopg.Connection``): the CLI renders with it
directly and the API from a worker thread, as the coverage room does. Every
coordinate leaves here in the basemap's system (:func:`shift_points`,
:func:`shift_geometry`), so the rendering code never has to think about
GCJ-02.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
import psycopg
import shapely
from shapely.geometry import mapping, shape

from geo_service.catalogue import TEN_ONES_MASK
from geo_service.coords import Crs, from_wgs84_array
from geo_service.errors import NotFound, invalid
from geo_service.maps import queries as q

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


@dataclass
class Area:
    """The admin area a map is about (None: everywhere)."""

    code: str | None
    name: str
    name_en: str | None = None


def load_area(conn: psycopg.Connection[Any], code: str | None) -> Area:
    """The area by code; an unknown code is a 404 naming ``area``."""
    if code is None:
        return Area(None, "全部地区", "All areas")
    row = conn.execute(q.AREA, {"code": code}).fetchone()
    if row is None:
        raise NotFound(f"no admin area {code!r}", [("area", "unknown area code")])
    return Area(row[0], row[1], row[2])


@dataclass
class Stations:
    """The stations of a map as columns, coordinates already in the basemap's system."""

    code: list[str]
    name: list[str]
    address: list[str | None]
    lon: np.ndarray
    lat: np.ndarray
    host_type: list[str]
    status: list[str]
    opening_hours: list[str]
    phone: list[str | None]
    amenity_mask: list[int]
    last_verified_on: list[dt.date | None]
    district_code: list[str | None]
    sample: list[bool]
    open_now: list[bool | None]
    #: A scheduled mobile station's stops (seq, name, lon, lat, hours, current), else None.
    stops: list[list[dict[str, Any]] | None]
    #: Awards per station: [{title, level, year}], newest first; None for none.
    awards: list[list[dict[str, Any]] | None]
    #: Worker feedback: marked closed by independent reports; last one-tap confirmation.
    reported_closed_at: list[dt.datetime | None]
    last_confirmed_at: list[dt.datetime | None]

    def __len__(self) -> int:
        return len(self.code)

    @property
    def any_sample(self) -> bool:
        return any(self.sample)

    def ten_ones(self) -> np.ndarray:
        """How many of the ten ones each station has."""
        masks = np.asarray(self.amenity_mask, dtype=np.int64) & TEN_ONES_MASK
        return np.asarray([int(m).bit_count() for m in masks.tolist()], dtype=np.int64)


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


@dataclass
class Run:
    """A stored coverage or recommendations run, ready to draw."""

    id: int
    kind: str
    area: str | None
    created_at: dt.datetime
    sample: bool
    summary: dict[str, Any]
    cells: list[dict[str, Any]]
    sites: list[dict[str, Any]]


def latest_run_id(conn: psycopg.Connection[Any], area: str | None) -> int | None:
    """The newest run of the area, recommendations first (they also carry sites)."""
    row = conn.execute(q.LATEST_RUN, {"area": area}).fetchone()
    return int(row[0]) if row else None


def load_run(conn: psycopg.Connection[Any], run_id: int, crs: Crs) -> Run:
    """A run's cells as hexagons and its sites, in ``crs``.

    A run larger than :data:`MAX_MAP_CELLS` is refused (422 naming ``run``):
    its map would be too heavy to open.
    """
    from geo_service.coverage.service import get_run

    run = get_run(conn, run_id)
    count_row = conn.execute(q.RUN_CELL_COUNT, {"id": run_id}).fetchone()
    n_cells = int(count_row[0]) if count_row else 0
    if n_cells > MAX_MAP_CELLS:
        raise invalid("run", f"run {run_id} has {n_cells:,} cells; a map draws at most "
                             f"{MAX_MAP_CELLS:,}: analyse a smaller area")
    rows = conn.execute(q.RUN_CELLS, {"id": run_id}).fetchall()
    cells = []
    for cell, area_code, demand, points, nearest_code, nearest_m, covered, doubly in rows:
        ring = h3.cell_to_boundary(cell)  # (lat, lng) pairs
        lon, lat = shift_points([p[1] for p in ring], [p[0] for p in ring], crs)
        cells.append({
            "cell": cell, "area": area_code, "demand": float(demand), "points": int(points),
            "nearest": nearest_code,
            "nearest_m": None if nearest_m is None or not np.isfinite(nearest_m)
            else float(nearest_m),
            "covered": bool(covered), "doubly": bool(doubly),
            "ring": np.round(np.column_stack([lat, lon]), 6).tolist(),
        })
    sites = run["summary"].get("sites") or []
    if sites:
        s_lon, s_lat = shift_points([s["lon"] for s in sites], [s["lat"] for s in sites], crs)
        sites = [{**s, "lon": float(x), "lat": float(y)}
                 for s, x, y in zip(sites, s_lon.tolist(), s_lat.tolist(), strict=True)]
    return Run(id=run["id"], kind=run["kind"], area=run["params"].get("area"),
               created_at=run["created_at"], sample=bool(run["sample"]),
               summary=run["summary"], cells=cells, sites=sites)


def run_for(conn: psycopg.Connection[Any], run_id: int | None, area: str | None,
            crs: Crs) -> Run:
    """The asked run, or the newest of the area; none stored is a 404 naming ``run``."""
    if run_id is None:
        run_id = latest_run_id(conn, area)
        if run_id is None:
            raise NotFound("no coverage run stored for this area: run `geo-service recommend` "
                           "or POST /v1/coverage/recommendations first",
                           [("run", "no stored run for this area")])
    return load_run(conn, run_id, crs)

