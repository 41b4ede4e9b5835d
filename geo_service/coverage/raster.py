"""Demand estimated from a population raster (a GeoTIFF such as WorldPop's).

Why: most unions have no count of where their outdoor workers gather, but a
population-per-pixel raster of their city is a download away. This turns one into demand
points: the pixels inside the area's polygon are summed into H3 cells, and each cell
becomes one point at its centroid weighing ``population × share`` (the share of residents
who are outdoor workers of the given type, 2 % by default).

* Any CRS: pixel centres are reprojected to WGS-84 (pyproj) before they are tested
  against the polygon and binned; the raster is read only in the window of the area's
  bounds (reprojected into the raster's CRS), in strips, never whole.
* Nodata (and NaN, and negative fill values) is skipped.
* The points are labelled ``source = raster:<file name>`` and keyed
  ``raster:<area>:<cell>``: a second raster for the same area replaces the first (points
  it no longer has are removed), and the same raster twice changes nothing.

The write goes through the demand import's own table and upsert
(:data:`geo_service.coverage.queries.DEMAND_UPSERT`), so both paths store alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
import psycopg
from h3.api import basic_int

from geo_service.coverage import queries as q
from geo_service.domain.errors import Forbidden, NotFound, invalid

#: Rows read per strip of the window (bounds memory whatever the window's size).
STRIP_ROWS = 512
#: Most pixels a window may hold (a country-wide raster at 100 m for a province is ~10^9:
#: refused by name rather than read for minutes).
MAX_WINDOW_PIXELS = 400_000_000
DEFAULT_SHARE = 0.02
DEFAULT_RESOLUTION = 9

_AREA = """
SELECT ST_AsGeoJSON(geom), ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)
FROM admin_area WHERE code = %(code)s
"""
_REMOVE_OLD = """
DELETE FROM demand_point
WHERE starts_with(external_id, %(prefix)s)
  AND NOT external_id IN (SELECT external_id FROM _dem)
"""


@dataclass(frozen=True)
class Options:
    """What to make of the raster: for which area, which workers, what share of residents."""

    area: str
    worker_type: str = "other"
    share: float = DEFAULT_SHARE
    resolution: int = DEFAULT_RESOLUTION


def _check(opts: Options) -> None:
    from geo_service.domain.models import WORKER_TYPES

    if opts.worker_type not in WORKER_TYPES:
        raise invalid("worker_type", f"unknown worker type {opts.worker_type!r}; one of "
                                     + ", ".join(WORKER_TYPES))
    if not (0 < opts.share <= 1):
        raise invalid("share", "share must be in (0, 1]: the part of residents counted")
    if not (5 <= opts.resolution <= 10):
        raise invalid("resolution", "H3 resolution must be 5-10")


def _area(conn: psycopg.Connection[Any], code: str) -> tuple[Any, tuple[float, ...]]:
    import shapely

    row = conn.execute(_AREA, {"code": code}).fetchone()
    if row is None:
        raise NotFound(f"no admin area {code!r}", [("area", "unknown area code")])
    if row[0] is None:
        raise invalid("area", f"area {code} has no boundary")
    poly = shapely.from_geojson(row[0])
    shapely.prepare(poly)
    return poly, tuple(float(v) for v in row[1:])


def cell_sums(dataset: Any, polygon: Any, bounds: tuple[float, ...],
              resolution: int) -> tuple[dict[int, float], dict[str, Any]]:
    """Population per H3 cell (int ids) of the pixels whose centres lie in ``polygon``.

    ``dataset`` is an open rasterio dataset; ``bounds`` the polygon's WGS-84 box. Returns
    the sums and what was read (window, pixels read, pixels inside, population inside).
    """
    import shapely
    from pyproj import Transformer
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds

    if dataset.crs is None:
        raise invalid("file", "the raster has no coordinate system (CRS): cannot place it")
    left, bottom, right, top = transform_bounds("EPSG:4326", dataset.crs, *bounds,
                                                densify_pts=21)
    full = Window(0, 0, dataset.width, dataset.height)
    window = from_bounds(left, bottom, right, top, transform=dataset.transform)
    window = window.round_offsets(op="floor").round_lengths(op="ceil")
    col0, row0 = max(0, int(window.col_off)), max(0, int(window.row_off))
    col1 = min(full.width, int(window.col_off + window.width) + 1)
    row1 = min(full.height, int(window.row_off + window.height) + 1)
    seen: dict[str, Any] = {"raster_size": [dataset.width, dataset.height], "window": None,
                            "pixels_read": 0, "pixels_inside": 0, "population": 0.0}
    if col1 <= col0 or row1 <= row0:
        return {}, seen  # the raster does not reach the area
    if (col1 - col0) * (row1 - row0) > MAX_WINDOW_PIXELS:
        raise invalid("file", f"the area's window is {(col1 - col0) * (row1 - row0):,} "
                              f"pixels, more than {MAX_WINDOW_PIXELS:,}: crop the raster")
    seen["window"] = [col0, row0, col1 - col0, row1 - row0]
    to_wgs = None if dataset.crs.to_epsg() == 4326 else Transformer.from_crs(
        dataset.crs.to_wkt(), "EPSG:4326", always_xy=True)
    t = dataset.transform
    sums: dict[int, float] = {}
    for top_row in range(row0, row1, STRIP_ROWS):
        height = min(STRIP_ROWS, row1 - top_row)
        strip = dataset.read(1, window=Window(col0, top_row, col1 - col0, height),
                             masked=True)
        values = np.ma.filled(strip.astype("float64"), np.nan)
        seen["pixels_read"] += values.size
        rows, cols = np.nonzero(np.isfinite(values) & (values > 0))
        if rows.size == 0:
            continue
        pop = values[rows, cols]
        x_pix, y_pix = cols + col0 + 0.5, rows + top_row + 0.5
        x = t.a * x_pix + t.b * y_pix + t.c
        y = t.d * x_pix + t.e * y_pix + t.f
        lon, lat = (x, y) if to_wgs is None else to_wgs.transform(x, y)
        inside = shapely.contains_xy(polygon, lon, lat)
        if not inside.any():
            continue
        lon, lat, pop = np.asarray(lon)[inside], np.asarray(lat)[inside], pop[inside]
        seen["pixels_inside"] += int(pop.size)
        seen["population"] += float(pop.sum())
        cells = np.fromiter((basic_int.latlng_to_cell(la, lo, resolution)
                             for la, lo in zip(lat.tolist(), lon.tolist(), strict=True)),
                            dtype=np.uint64, count=pop.size)
        unique, index = np.unique(cells, return_inverse=True)
        for cell, total in zip(unique.tolist(), np.bincount(index, weights=pop).tolist(),
                               strict=True):
            sums[cell] = sums.get(cell, 0.0) + total
    return sums, seen


def import_raster(conn: psycopg.Connection[Any], source: str | bytes, filename: str,
                  opts: Options, scope: str | None = None) -> dict[str, Any]:
    """Read a GeoTIFF (a path, or its bytes from an upload) into demand points for
    ``opts.area``, replacing earlier raster demand there; returns what was done.

    ``scope`` is the key's or the person's area: ``opts.area`` must be it or lie within it.
    """
    import rasterio
    from pyproj.exceptions import CRSError
    from rasterio.errors import RasterioError
    from rasterio.io import MemoryFile

    _check(opts)
    if isinstance(source, bytes) and not source:
        raise invalid("file", "the file is empty")
    polygon, bounds = _area(conn, opts.area)
    if scope is not None:
        row = conn.execute("SELECT geo_area_within(%s, %s)", (opts.area, scope)).fetchone()
        if not (row and row[0]):
            raise Forbidden(f"limited to area {scope}; area {opts.area} is outside it",
                            [("area", f"outside the key's area {scope}")])
    try:
        if isinstance(source, bytes):
            with MemoryFile(source) as memory, memory.open() as dataset:
                sums, seen = cell_sums(dataset, polygon, bounds, opts.resolution)
        else:
            with rasterio.open(source) as dataset:
                sums, seen = cell_sums(dataset, polygon, bounds, opts.resolution)
    except (RasterioError, CRSError) as exc:
        raise invalid("file", f"not a readable raster (GeoTIFF): {str(exc)[:200]}") from None
    name = os.path.basename(filename)[:150]
    prefix = f"raster:{opts.area}:"
    rows = []
    for n, (cell, population) in enumerate(sorted(sums.items()), start=1):
        text = h3.int_to_str(cell)
        lat, lon = h3.cell_to_latlng(text)
        rows.append((n, prefix + text, lon, lat, population * opts.share, opts.worker_type,
                     f"raster:{name}", None, False))
    report: dict[str, Any] = {
        "area": opts.area, "file": name, "worker_type": opts.worker_type, "share": opts.share,
        "resolution": opts.resolution, **seen, "cells": len(rows),
        "stored_weight": float(sum(r[4] for r in rows)),
    }
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(q.DEMAND_TABLE)
        with cur.copy("COPY _dem FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(q.DEMAND_UPSERT)
        inserted = [r[0] for r in cur.fetchall()]
        cur.execute(_REMOVE_OLD, {"prefix": prefix})
        report.update(created=sum(inserted), updated=len(inserted) - sum(inserted),
                      unchanged=len(rows) - len(inserted), removed=cur.rowcount)
    return report


def describe(report: dict[str, Any]) -> str:
    """One paragraph for the CLI and the console: what was read and stored."""
    window = report["window"]
    read = ("the raster does not reach the area" if window is None else
            f"read a {window[2]}×{window[3]}-pixel window of the "
            f"{report['raster_size'][0]}×{report['raster_size'][1]} raster")
    return (f"{report['file']}: {read}; {report['pixels_inside']:,} pixels inside area "
            f"{report['area']}, population {report['population']:,.0f} × share "
            f"{report['share']:g} = {report['stored_weight']:,.1f} {report['worker_type']} "
            f"workers in {report['cells']:,} H3 cells (res {report['resolution']}); created "
            f"{report['created']}, updated {report['updated']}, unchanged "
            f"{report['unchanged']}, removed {report['removed']}")
