"""Sphere and spheroid geometry of the nearest walk.

The k-d tree orders stations by chord on the unit sphere (great-circle order);
answers are in spheroid metres (GeographicLib, the algorithm PostGIS's
``ST_Distance(.., true)`` uses). These helpers convert between the two so the walk can
prove when it has seen the true k nearest.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from pyproj import Geod

from geo_service.stations.service import SPHEROID_OVER_SPHERE_MIN, NearestParams

FloatArray = npt.NDArray[np.float64]

#: The sphere PostGIS measures ``<->`` on (mean radius of WGS-84); only ratios matter.
EARTH_MEAN_RADIUS_M = 6_371_008.8
GEOD = Geod(ellps="WGS84")


def unit_xyz(lon: Any, lat: Any) -> FloatArray:
    """Points on the unit sphere: chord order there is great-circle order."""
    lam, phi = np.radians(lon), np.radians(lat)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


def unit_point(lon: float, lat: float) -> FloatArray:
    """:func:`unit_xyz` of one point, without the array machinery (every request)."""
    lam, phi = math.radians(lon), math.radians(lat)
    return np.array((math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam),
                     math.sin(phi)))


def chord_to_sphere_m(chord: float) -> float:
    return 2.0 * EARTH_MEAN_RADIUS_M * math.asin(min(chord / 2.0, 1.0))


def radius_chord(radius_m: float) -> float:
    """The chord beyond which no station can be within ``radius_m`` on the spheroid."""
    half_angle = min(radius_m / SPHEROID_OVER_SPHERE_MIN / (2.0 * EARTH_MEAN_RADIUS_M),
                     math.pi / 2)
    return 2.0 * math.sin(half_angle) * (1.0 + 1e-9) + 1e-12



def bearing(p: NearestParams, lon: float, lat: float, az: float) -> float | None:
    """``degrees(ST_Azimuth(query, point))``: clockwise from north in [0, 360); NULL for
    the same point."""
    if lon == p.lon and lat == p.lat:
        return None
    return az % 360.0

