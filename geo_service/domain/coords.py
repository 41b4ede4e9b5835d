"""Conversions between WGS-84, GCJ-02 and BD-09 coordinates.

Why this exists
---------------
Map SDKs used in mainland China do not report WGS-84: Amap (Gaode) and
Tencent use GCJ-02 ("Mars coordinates", an obfuscated WGS-84 with a
position-dependent offset of up to several hundred metres) and Baidu uses
BD-09 (GCJ-02 with a further rotation and offset). The service stores
WGS-84 only, so every coordinate that comes in from, or goes out to, such an
SDK passes through this module.

Formulas
--------
* WGS-84 -> GCJ-02 is the widely published reimplementation of the official
  (unpublished) algorithm: the ``transformLat``/``transformLon``
  polynomials scaled on the Krasovsky 1940 ellipsoid
  (``a = 6378245.0``, ``ee = 0.00669342162296594323``).
* GCJ-02 -> BD-09 is Baidu's rotation with ``x_pi = pi * 3000 / 180``, the
  ``0.00002``/``0.000003`` terms and the ``0.0065``/``0.006`` offsets.
* Neither has a closed-form inverse. GCJ-02 -> WGS-84 is solved by the fixed
  point iteration ``x <- x - (forward(x) - target)``, which converges fast
  because the offset changes slowly with position; BD-09 -> GCJ-02 starts
  from the usual closed-form approximation (off by up to ~0.25 m) and is
  refined by the same iteration. Both stop when a step is below 1e-9 degree
  (~0.1 mm), so round trips are exact to far below a millimetre.

Each formula is written once, with numpy ufuncs: the ``*_array`` functions
run it on float64 arrays, the scalar functions on numpy float64 scalars
(several times faster than one-element arrays).

Outside China
-------------
Points outside China are returned unchanged in every CRS. "Outside" is the
common bounding-box rule (:data:`CHINA_BBOX`): a point is outside if
``lon < 72.004`` or ``lon > 137.8347`` or ``lat < 0.8293`` or
``lat > 55.8271``. This is only a bounding box and is known to be wrong near
borders: Hong Kong, Macau and Taiwan, and neighbouring countries that fall
inside the box (Korea, Mongolia, much of South-East Asia -- even Singapore
-- and western Japan) are shifted by this rule although map platforms may
not shift them. For the inverse transforms the decision is made on the given
(shifted) point with the same box, so a point within about a kilometre of a
box edge may not round-trip (its shifted image can fall on the other side).

Unlike the npm package ``gcoord`` (used for the test reference values),
which applies its GCJ-02 <-> BD-09 step everywhere, this module leaves
outside points unshifted in BD-09 too.

Examples
--------
>>> lon, lat = wgs84_to_gcj02(116.3975, 39.9087)  # Tiananmen, Beijing
>>> round(lon, 6), round(lat, 6)
(116.403744, 39.910103)
>>> lon, lat = to_wgs84(lon, lat, Crs.GCJ02)
>>> round(lon, 9), round(lat, 9)
(116.3975, 39.9087)
"""

from __future__ import annotations

import enum
import math
from typing import Final, Protocol, TypeVar, overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "CHINA_BBOX",
    "Crs",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "from_wgs84_array",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "to_wgs84",
    "to_wgs84_array",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray = npt.NDArray[np.float64]
# The core formulas run unchanged on float64 arrays (bulk) and on numpy
# float64 scalars (single points, ~6x faster than one-element arrays).
_R = TypeVar("_R", FloatArray, np.float64)


class _CoreFn(Protocol):
    def __call__(self, lon: _R, lat: _R, /) -> tuple[_R, _R]: ...


CHINA_BBOX: Final[tuple[float, float, float, float]] = (72.004, 0.8293, 137.8347, 55.8271)
"""Bounding box ``(min lon, min lat, max lon, max lat)`` treated as China."""

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
_A: Final = 6378245.0
_EE: Final = 0.00669342162296594323
# Baidu's "x_pi".
_X_PI: Final = math.pi * 3000.0 / 180.0
# Stop iterating when a step is below this (degrees; 1e-9 deg is ~0.1 mm).
_TOL_DEG: Final = 1e-9
# Convergence normally takes 3-6 steps; this only bounds pathological input.
_MAX_ITER: Final = 50


# (str, Enum) as specified for the service API. ruff's UP042 suggests StrEnum,
# which would also change str(Crs.GCJ02) from "Crs.GCJ02" to "gcj02".
class Crs(str, enum.Enum):  # noqa: UP042
    """Coordinate reference systems reported by map SDKs.

    A ``str`` enum so values can be read straight from request parameters
    and written to JSON.

    Examples
    --------
    >>> Crs("gcj02") is Crs.GCJ02
    True
    """

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


# --------------------------------------------------------------------------
# Core formulas: ungated, on float64 arrays or float64 scalars. Written once.
# --------------------------------------------------------------------------


@overload
def _outside(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]: ...
@overload
def _outside(lon: float, lat: float) -> bool: ...
def _outside(lon: FloatArray | float, lat: FloatArray | float) -> npt.NDArray[np.bool_] | bool:
    min_lon, min_lat, max_lon, max_lat = CHINA_BBOX
    return (lon < min_lon) | (lon > max_lon) | (lat < min_lat) | (lat > max_lat)


def _transform_lat(x: _R, y: _R) -> _R:
    ret: _R = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: _R, y: _R) -> _R:
    ret: _R = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _wgs_to_gcj_core(lon: _R, lat: _R) -> tuple[_R, _R]:
    d_lon = _transform_lon(lon - 105.0, lat - 35.0)
    d_lat = _transform_lat(lon - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lon = d_lon * 180.0 / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    d_lat = d_lat * 180.0 / (_A * (1.0 - _EE) / (magic * sqrt_magic) * np.pi)
    return lon + d_lon, lat + d_lat


def _gcj_to_bd_core(lon: _R, lat: _R) -> tuple[_R, _R]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj_closed_form(lon: _R, lat: _R) -> tuple[_R, _R]:
    # The usual published inverse: evaluates the correction terms at the
    # BD-09 point instead of the (unknown) GCJ-02 point, so it is off by up
    # to ~2e-6 degree (~0.25 m). Only used as the starting guess for _solve.
    x = lon - 0.0065
    y = lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _solve(
    forward: _CoreFn,
    target_lon: _R,
    target_lat: _R,
    lon: _R,
    lat: _R,
) -> tuple[_R, _R]:
    """Find ``p`` with ``forward(p) == target`` starting from ``(lon, lat)``.

    Fixed-point iteration ``p <- p - (forward(p) - target)``. It converges
    because ``forward`` is the identity plus an offset whose derivative is
    far below 1, so every step shrinks the error by that factor. NaN input
    stays NaN and does not keep the loop going.
    """
    for _ in range(_MAX_ITER):
        f_lon, f_lat = forward(lon, lat)
        step_lon = f_lon - target_lon
        step_lat = f_lat - target_lat
        lon = lon - step_lon
        lat = lat - step_lat
        # ">=" is False for NaN, so NaN points count as converged.
        if not np.any((np.abs(step_lon) >= _TOL_DEG) | (np.abs(step_lat) >= _TOL_DEG)):
            break
    return lon, lat


def _gcj_to_wgs_core(lon: _R, lat: _R) -> tuple[_R, _R]:
    return _solve(_wgs_to_gcj_core, lon, lat, lon, lat)


def _bd_to_gcj_core(lon: _R, lat: _R) -> tuple[_R, _R]:
    start_lon, start_lat = _bd_to_gcj_closed_form(lon, lat)
    return _solve(_gcj_to_bd_core, lon, lat, start_lon, start_lat)


def _wgs_to_bd_core(lon: _R, lat: _R) -> tuple[_R, _R]:
    return _gcj_to_bd_core(*_wgs_to_gcj_core(lon, lat))


def _bd_to_wgs_core(lon: _R, lat: _R) -> tuple[_R, _R]:
    return _gcj_to_wgs_core(*_bd_to_gcj_core(lon, lat))


# --------------------------------------------------------------------------
# Gating (outside China -> identity) and scalar wrappers.
# --------------------------------------------------------------------------


def _gated(core: _CoreFn, lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Apply ``core`` to the points inside :data:`CHINA_BBOX`, copy the rest.

    The in/out decision is made once, on the input point, so a composed
    transform (e.g. WGS-84 -> BD-09) never applies only half of its steps.
    Returns new arrays of the broadcast shape of ``lon`` and ``lat``.
    """
    lon_in = np.asarray(lon, dtype=np.float64)
    lat_in = np.asarray(lat, dtype=np.float64)
    shape = np.broadcast_shapes(lon_in.shape, lat_in.shape)
    out_lon: FloatArray = np.array(np.broadcast_to(lon_in, shape), dtype=np.float64)
    out_lat: FloatArray = np.array(np.broadcast_to(lat_in, shape), dtype=np.float64)
    inside = ~_outside(out_lon, out_lat)
    if np.any(inside):
        new_lon, new_lat = core(out_lon[inside], out_lat[inside])
        out_lon[inside] = new_lon
        out_lat[inside] = new_lat
    return out_lon, out_lat


def _gated_scalar(core: _CoreFn, lon: float, lat: float) -> tuple[float, float]:
    """Scalar twin of :func:`_gated`: same core, run on float64 scalars.

    WGS-84 to WGS-84 (every nearest query and answer unless the client asks for a
    Chinese system) returns the floats at once: the identity gives them back inside the
    gate and out, and the gate and numpy scalars cost ~1.5 µs a point."""
    if core is _identity_core:
        return float(lon), float(lat)
    if _outside(lon, lat):
        return float(lon), float(lat)
    new_lon, new_lat = core(np.float64(lon), np.float64(lat))
    return float(new_lon), float(new_lat)


# --------------------------------------------------------------------------
# Public scalar API.
# --------------------------------------------------------------------------


def out_of_china(lon: float, lat: float) -> bool:
    """Tell whether a point lies outside :data:`CHINA_BBOX`.

    Points outside are never shifted. This is a bounding box, not China's
    border: Taiwan, Hong Kong, Macau and parts of neighbouring countries
    count as inside.

    Parameters
    ----------
    lon, lat : float
        Longitude and latitude in degrees (any of the three CRSs).

    Returns
    -------
    bool
        True if the point is outside the box (edges count as inside).

    Examples
    --------
    >>> out_of_china(139.6917, 35.6895)  # Tokyo
    True
    >>> out_of_china(116.3975, 39.9087)  # Beijing
    False
    """
    return bool(_outside(float(lon), float(lat)))


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Convert WGS-84 to GCJ-02 (what Amap and Tencent maps display).

    Needed whenever a stored position is handed to an Amap/Tencent SDK,
    which would otherwise draw it a few hundred metres off.

    Parameters
    ----------
    lon, lat : float
        WGS-84 longitude and latitude in degrees.

    Returns
    -------
    tuple of float
        GCJ-02 ``(lon, lat)``; unchanged if :func:`out_of_china`.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.3975, 39.9087)
    >>> round(lon, 6), round(lat, 6)
    (116.403744, 39.910103)
    """
    return _gated_scalar(_wgs_to_gcj_core, lon, lat)


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Convert GCJ-02 back to WGS-84 by iteration (no closed form exists).

    Used for coordinates reported by Amap/Tencent before they are stored.
    The result reproduces the GCJ-02 input to better than 1e-9 degree when
    transformed forward again.

    Parameters
    ----------
    lon, lat : float
        GCJ-02 longitude and latitude in degrees.

    Returns
    -------
    tuple of float
        WGS-84 ``(lon, lat)``; unchanged if the given GCJ-02 point is
        :func:`out_of_china`.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(87.6168, 43.8256))
    >>> round(lon, 9), round(lat, 9)
    (87.6168, 43.8256)
    """
    return _gated_scalar(_gcj_to_wgs_core, lon, lat)


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """Convert GCJ-02 to BD-09 (Baidu's extra rotation and offset).

    Parameters
    ----------
    lon, lat : float
        GCJ-02 longitude and latitude in degrees.

    Returns
    -------
    tuple of float
        BD-09 ``(lon, lat)``; unchanged if :func:`out_of_china`.

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(116.403744, 39.910103)
    >>> round(lon, 4), round(lat, 4)
    (116.4101, 39.9164)
    """
    return _gated_scalar(_gcj_to_bd_core, lon, lat)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Convert BD-09 to GCJ-02.

    The commonly published closed-form inverse is off by up to ~0.25 m,
    so its result is refined by iteration until the forward transform
    reproduces the input to better than 1e-9 degree.

    Parameters
    ----------
    lon, lat : float
        BD-09 longitude and latitude in degrees.

    Returns
    -------
    tuple of float
        GCJ-02 ``(lon, lat)``; unchanged if the given BD-09 point is
        :func:`out_of_china`.

    Examples
    --------
    >>> lon, lat = bd09_to_gcj02(*gcj02_to_bd09(121.4737, 31.2304))
    >>> round(lon, 9), round(lat, 9)
    (121.4737, 31.2304)
    """
    return _gated_scalar(_bd_to_gcj_core, lon, lat)


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """Convert WGS-84 to BD-09 (what Baidu maps display).

    Parameters
    ----------
    lon, lat : float
        WGS-84 longitude and latitude in degrees.

    Returns
    -------
    tuple of float
        BD-09 ``(lon, lat)``; unchanged if :func:`out_of_china`.

    Examples
    --------
    >>> lon, lat = wgs84_to_bd09(116.3975, 39.9087)
    >>> round(lon, 6), round(lat, 6)
    (116.410117, 39.916443)
    """
    return _gated_scalar(_wgs_to_bd_core, lon, lat)


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Convert BD-09 to WGS-84 (both inverse steps solved by iteration).

    Parameters
    ----------
    lon, lat : float
        BD-09 longitude and latitude in degrees.

    Returns
    -------
    tuple of float
        WGS-84 ``(lon, lat)``; unchanged if the given BD-09 point is
        :func:`out_of_china`.

    Examples
    --------
    >>> lon, lat = bd09_to_wgs84(*wgs84_to_bd09(126.5349, 45.8038))
    >>> round(lon, 9), round(lat, 9)
    (126.5349, 45.8038)
    """
    return _gated_scalar(_bd_to_wgs_core, lon, lat)


# --------------------------------------------------------------------------
# Dispatch by CRS.
# --------------------------------------------------------------------------


def _identity_core(lon: _R, lat: _R) -> tuple[_R, _R]:
    return lon, lat


_TO_WGS84: Final[dict[Crs, _CoreFn]] = {
    Crs.WGS84: _identity_core,
    Crs.GCJ02: _gcj_to_wgs_core,
    Crs.BD09: _bd_to_wgs_core,
}
_FROM_WGS84: Final[dict[Crs, _CoreFn]] = {
    Crs.WGS84: _identity_core,
    Crs.GCJ02: _wgs_to_gcj_core,
    Crs.BD09: _wgs_to_bd_core,
}


def to_wgs84(lon: float, lat: float, crs: Crs | str) -> tuple[float, float]:
    """Convert a point reported in ``crs`` to WGS-84 for storage.

    Parameters
    ----------
    lon, lat : float
        Longitude and latitude in degrees, in ``crs``.
    crs : Crs or str
        The CRS of the input (``Crs.WGS84`` is the identity). Plain strings
        such as ``"gcj02"`` are accepted.

    Returns
    -------
    tuple of float
        WGS-84 ``(lon, lat)``.

    Raises
    ------
    ValueError
        If ``crs`` is not a :class:`Crs` value.

    Examples
    --------
    >>> lon, lat = to_wgs84(116.410117, 39.916443, Crs.BD09)
    >>> round(lon, 5), round(lat, 5)
    (116.3975, 39.9087)
    """
    return _gated_scalar(_TO_WGS84[crs if isinstance(crs, Crs) else Crs(crs)], lon, lat)


def from_wgs84(lon: float, lat: float, crs: Crs | str) -> tuple[float, float]:
    """Convert a stored WGS-84 point to ``crs`` for a client's map SDK.

    Parameters
    ----------
    lon, lat : float
        WGS-84 longitude and latitude in degrees.
    crs : Crs or str
        The target CRS (``Crs.WGS84`` is the identity).

    Returns
    -------
    tuple of float
        ``(lon, lat)`` in ``crs``.

    Raises
    ------
    ValueError
        If ``crs`` is not a :class:`Crs` value.

    Examples
    --------
    >>> lon, lat = from_wgs84(116.3975, 39.9087, "gcj02")
    >>> round(lon, 6), round(lat, 6)
    (116.403744, 39.910103)
    """
    return _gated_scalar(_FROM_WGS84[crs if isinstance(crs, Crs) else Crs(crs)], lon, lat)


def to_wgs84_array(
    lon: npt.ArrayLike, lat: npt.ArrayLike, crs: Crs | str
) -> tuple[FloatArray, FloatArray]:
    """Vectorised :func:`to_wgs84`, for bulk imports.

    Parameters
    ----------
    lon, lat : array_like
        Longitudes and latitudes in degrees, in ``crs``; broadcast together.
    crs : Crs or str
        The CRS of the input.

    Returns
    -------
    tuple of numpy.ndarray
        New float64 arrays ``(lon, lat)`` in WGS-84 with the broadcast shape;
        the inputs are never modified. Points outside :data:`CHINA_BBOX`
        are copied unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> gcj_lon = np.array([116.403744, 0.0])
    >>> gcj_lat = np.array([39.910103, 0.0])
    >>> lon, lat = to_wgs84_array(gcj_lon, gcj_lat, Crs.GCJ02)
    >>> np.round(lon, 4).tolist(), np.round(lat, 4).tolist()
    ([116.3975, 0.0], [39.9087, 0.0])
    """
    return _gated(_TO_WGS84[Crs(crs)], lon, lat)


def from_wgs84_array(
    lon: npt.ArrayLike, lat: npt.ArrayLike, crs: Crs | str
) -> tuple[FloatArray, FloatArray]:
    """Vectorised :func:`from_wgs84`, for bulk exports.

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 longitudes and latitudes in degrees; broadcast together.
    crs : Crs or str
        The target CRS.

    Returns
    -------
    tuple of numpy.ndarray
        New float64 arrays ``(lon, lat)`` in ``crs`` with the broadcast shape;
        the inputs are never modified. Points outside :data:`CHINA_BBOX`
        are copied unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> wgs_lon = np.array([116.3975, 139.6917])  # Beijing, Tokyo
    >>> wgs_lat = np.array([39.9087, 35.6895])
    >>> lon, lat = from_wgs84_array(wgs_lon, wgs_lat, Crs.GCJ02)
    >>> np.round(lon, 6).tolist(), np.round(lat, 6).tolist()
    ([116.403744, 139.6917], [39.910103, 35.6895])
    """
    return _gated(_FROM_WGS84[Crs(crs)], lon, lat)
