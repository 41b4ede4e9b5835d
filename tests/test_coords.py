"""Tests for geo_service.domain.coords against reference values from npm ``gcoord``.

The reference file tests/data/coords_reference.json is produced by
tests/data/make_coords_reference.js (see its header); these tests only read
it, so they run offline without node.

gcoord uses the same outside-China bounding box but applies its GCJ-02 <->
BD-09 step everywhere, so its BD-09 values for points outside China are not
comparable: for those we check identity instead (see
``test_gcoord_shifts_bd09_outside_china_but_we_do_not``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from geo_service.domain import coords
from geo_service.domain.coords import CHINA_BBOX, Crs

REFERENCE_PATH = Path(__file__).parent / "data" / "coords_reference.json"
REFERENCE: dict[str, Any] = json.loads(REFERENCE_PATH.read_text(encoding="utf-8"))

FloatArray = npt.NDArray[np.float64]
ScalarFn = Callable[[float, float], tuple[float, float]]

FORWARD_TOL_DEG = 1e-6
# Same formula as gcoord, so in practice the match is to rounding; this
# catches e.g. a wrong ellipsoid constant, whose effect (~1e-7 deg) the
# 1e-6 contract tolerance would miss.
FORWARD_EXACT_TOL_DEG = 1e-10
ROUND_TRIP_TOL_M = 0.5
# What the implementation actually achieves (iteration stops at 1e-9 deg);
# a regression guard well inside the 0.5 m contract.
PRECISION_TOL_M = 1e-3
EARTH_RADIUS_M = 6_371_008.8
N_RANDOM = 10_000


def _column(records: list[dict[str, Any]], key: str) -> tuple[FloatArray, FloatArray]:
    values = np.array([r[key] for r in records], dtype=np.float64)
    return values[:, 0], values[:, 1]


POINTS: list[dict[str, Any]] = REFERENCE["points"]
OUTSIDE: list[dict[str, Any]] = REFERENCE["outside_points"]
INSIDE_BOX_NOT_CHINA: list[dict[str, Any]] = REFERENCE["inside_box_not_china"]
WGS_LON, WGS_LAT = _column(POINTS, "wgs84")
GCJ_LON, GCJ_LAT = _column(POINTS, "gcj02")
BD_LON, BD_LAT = _column(POINTS, "bd09")


def haversine_m(
    lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike
) -> FloatArray:
    """Great-circle distance in metres (accurate to far below a millimetre here)."""
    lam1, phi1, lam2, phi2 = (
        np.radians(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2)
    )
    h = (
        np.sin((phi2 - phi1) / 2) ** 2
        + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2) ** 2
    )
    out: FloatArray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(h))
    return out


def _apply_scalar(fn: ScalarFn, lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    pairs = [fn(float(x), float(y)) for x, y in zip(lon, lat, strict=True)]
    result = np.array(pairs, dtype=np.float64)
    return result[:, 0], result[:, 1]


def _inside_box(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    min_lon, min_lat, max_lon, max_lat = CHINA_BBOX
    inside: npt.NDArray[np.bool_] = (
        (lon >= min_lon) & (lon <= max_lon) & (lat >= min_lat) & (lat <= max_lat)
    )
    return inside


def _random_box_points() -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(20240601)
    min_lon, min_lat, max_lon, max_lat = CHINA_BBOX
    return rng.uniform(min_lon, max_lon, N_RANDOM), rng.uniform(min_lat, max_lat, N_RANDOM)


# ---------------------------------------------------------------------------
# The reference file itself.
# ---------------------------------------------------------------------------


def test_reference_file_is_what_the_tests_assume() -> None:
    assert REFERENCE["gcoord_version"]
    assert tuple(REFERENCE["china_bbox"]) == CHINA_BBOX
    assert len(POINTS) >= 200
    names = {p["name"] for p in POINTS}
    assert {"Sanya", "Beijing", "Urumqi", "Harbin"} <= names
    # All reference points are inside the box, and so are their images, so
    # the forward and inverse in/out decisions agree for every one of them.
    for lon, lat in ((WGS_LON, WGS_LAT), (GCJ_LON, GCJ_LAT), (BD_LON, BD_LAT)):
        assert _inside_box(lon, lat).all()
    assert {p["name"] for p in OUTSIDE} >= {"Tokyo", "London"}


# ---------------------------------------------------------------------------
# Forward transforms match gcoord.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("crs", "scalar_fn", "ref_lon", "ref_lat"),
    [
        (Crs.GCJ02, coords.wgs84_to_gcj02, GCJ_LON, GCJ_LAT),
        (Crs.BD09, coords.wgs84_to_bd09, BD_LON, BD_LAT),
    ],
)
def test_forward_matches_gcoord(
    crs: Crs, scalar_fn: ScalarFn, ref_lon: FloatArray, ref_lat: FloatArray
) -> None:
    for label, (lon, lat) in {
        "scalar": _apply_scalar(scalar_fn, WGS_LON, WGS_LAT),
        "array": coords.from_wgs84_array(WGS_LON, WGS_LAT, crs),
    }.items():
        dev = max(np.abs(lon - ref_lon).max(), np.abs(lat - ref_lat).max())
        msg = f"{crs.value} {label}: max deviation from gcoord {dev:.3e} deg"
        assert dev < FORWARD_TOL_DEG, msg
        assert dev < FORWARD_EXACT_TOL_DEG, msg


def test_forward_named_points() -> None:
    by_name = {p["name"]: p for p in POINTS}
    for name in ("Sanya", "Beijing", "Urumqi", "Harbin"):
        ref = by_name[name]
        assert coords.wgs84_to_gcj02(*ref["wgs84"]) == pytest.approx(
            ref["gcj02"], abs=FORWARD_TOL_DEG
        )
        assert coords.wgs84_to_bd09(*ref["wgs84"]) == pytest.approx(
            ref["bd09"], abs=FORWARD_TOL_DEG
        )
        assert coords.gcj02_to_bd09(*ref["gcj02"]) == pytest.approx(
            ref["bd09"], abs=FORWARD_TOL_DEG
        )


# ---------------------------------------------------------------------------
# Inverses.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("crs", "scalar_fn", "src_lon", "src_lat"),
    [
        (Crs.GCJ02, coords.gcj02_to_wgs84, GCJ_LON, GCJ_LAT),
        (Crs.BD09, coords.bd09_to_wgs84, BD_LON, BD_LAT),
    ],
)
def test_inverse_of_reference_gives_reference_wgs84(
    crs: Crs, scalar_fn: ScalarFn, src_lon: FloatArray, src_lat: FloatArray
) -> None:
    for label, (lon, lat) in {
        "scalar": _apply_scalar(scalar_fn, src_lon, src_lat),
        "array": coords.to_wgs84_array(src_lon, src_lat, crs),
    }.items():
        err = haversine_m(lon, lat, WGS_LON, WGS_LAT).max()
        assert err < ROUND_TRIP_TOL_M, f"{crs.value}->wgs84 {label}: max error {err:.3e} m"
        assert err < PRECISION_TOL_M, f"{crs.value}->wgs84 {label}: max error {err:.3e} m"


def test_bd09_to_gcj02_of_reference_gives_reference_gcj02() -> None:
    lon, lat = _apply_scalar(coords.bd09_to_gcj02, BD_LON, BD_LAT)
    err = haversine_m(lon, lat, GCJ_LON, GCJ_LAT).max()
    assert err < PRECISION_TOL_M, f"bd09->gcj02: max error {err:.3e} m"


def test_inverse_agrees_with_gcoords_own_inverse() -> None:
    # gcoord stops its GCJ iteration at 1e-6 deg and uses the closed-form
    # BD-09 inverse, so it is only decimetre-accurate: compare at 0.5 m.
    for key, crs in (("gcoord_gcj02_to_wgs84", Crs.GCJ02), ("gcoord_bd09_to_wgs84", Crs.BD09)):
        ref_lon, ref_lat = _column(POINTS, key)
        src_lon, src_lat = (GCJ_LON, GCJ_LAT) if crs is Crs.GCJ02 else (BD_LON, BD_LAT)
        lon, lat = coords.to_wgs84_array(src_lon, src_lat, crs)
        err = haversine_m(lon, lat, ref_lon, ref_lat).max()
        assert err < ROUND_TRIP_TOL_M, f"{key}: max difference {err:.3e} m"


@pytest.mark.parametrize(
    ("forward", "inverse"),
    [
        (coords.wgs84_to_gcj02, coords.gcj02_to_wgs84),
        (coords.wgs84_to_bd09, coords.bd09_to_wgs84),
    ],
)
def test_round_trip_reference_points_scalar(forward: ScalarFn, inverse: ScalarFn) -> None:
    errors = [
        float(haversine_m(lon, lat, *inverse(*forward(lon, lat))))
        for lon, lat in zip(WGS_LON.tolist(), WGS_LAT.tolist(), strict=True)
    ]
    worst = max(errors)
    assert worst < ROUND_TRIP_TOL_M, f"{forward.__name__} round trip: max error {worst:.3e} m"
    assert worst < PRECISION_TOL_M, f"{forward.__name__} round trip: max error {worst:.3e} m"


@pytest.mark.parametrize("crs", [Crs.GCJ02, Crs.BD09])
@pytest.mark.parametrize("mode", ["array", "scalar"])
def test_round_trip_random_points_in_china_box(crs: Crs, mode: str) -> None:
    wgs_lon, wgs_lat = _random_box_points()
    if mode == "array":
        shifted_lon, shifted_lat = coords.from_wgs84_array(wgs_lon, wgs_lat, crs)
        back_lon, back_lat = coords.to_wgs84_array(shifted_lon, shifted_lat, crs)
    else:
        shifted_lon, shifted_lat = _apply_scalar(
            lambda x, y: coords.from_wgs84(x, y, crs), wgs_lon, wgs_lat
        )
        back_lon, back_lat = _apply_scalar(
            lambda x, y: coords.to_wgs84(x, y, crs), shifted_lon, shifted_lat
        )
    # The inverse decides in/out on the shifted point (documented limitation):
    # a point whose image crosses a box edge cannot round-trip. There are
    # only a handful of those within ~1 km of the edges; leave them out.
    flips = _inside_box(wgs_lon, wgs_lat) != _inside_box(shifted_lon, shifted_lat)
    assert flips.sum() < N_RANDOM // 100
    err = haversine_m(wgs_lon, wgs_lat, back_lon, back_lat)[~flips]
    worst = err.max()
    assert worst < ROUND_TRIP_TOL_M, f"{crs.value} {mode}: max round-trip error {worst:.3e} m"
    assert worst < PRECISION_TOL_M, f"{crs.value} {mode}: max round-trip error {worst:.3e} m"


def test_gcj02_bd09_round_trip() -> None:
    for lon, lat in zip(GCJ_LON.tolist(), GCJ_LAT.tolist(), strict=True):
        back = coords.bd09_to_gcj02(*coords.gcj02_to_bd09(lon, lat))
        assert float(haversine_m(lon, lat, *back)) < PRECISION_TOL_M


# ---------------------------------------------------------------------------
# Outside China.
# ---------------------------------------------------------------------------

ALL_SCALAR_FNS: list[ScalarFn] = [
    coords.wgs84_to_gcj02,
    coords.gcj02_to_wgs84,
    coords.gcj02_to_bd09,
    coords.bd09_to_gcj02,
    coords.wgs84_to_bd09,
    coords.bd09_to_wgs84,
]


@pytest.mark.parametrize("fn", ALL_SCALAR_FNS, ids=lambda f: f.__name__)
def test_outside_china_points_unchanged_scalar(fn: ScalarFn) -> None:
    for point in OUTSIDE:
        lon, lat = point["wgs84"]
        assert coords.out_of_china(lon, lat), point["name"]
        assert fn(lon, lat) == (lon, lat), point["name"]


@pytest.mark.parametrize("crs", list(Crs))
def test_outside_china_points_unchanged_array(crs: Crs) -> None:
    lon, lat = _column(OUTSIDE, "wgs84")
    for out_lon, out_lat in (
        coords.from_wgs84_array(lon, lat, crs),
        coords.to_wgs84_array(lon, lat, crs),
    ):
        np.testing.assert_array_equal(out_lon, lon)
        np.testing.assert_array_equal(out_lat, lat)


def test_outside_points_match_gcoord_for_gcj02() -> None:
    for point in OUTSIDE:
        assert point["gcj02"] == point["wgs84"], point["name"]
        assert list(coords.wgs84_to_gcj02(*point["wgs84"])) == point["gcj02"]


def test_gcoord_shifts_bd09_outside_china_but_we_do_not() -> None:
    # Documents the one known difference from gcoord: it applies the BD-09
    # step everywhere; we treat outside points as unshifted in every CRS.
    for point in OUTSIDE:
        assert point["bd09"] != point["wgs84"], point["name"]
        assert list(coords.wgs84_to_bd09(*point["wgs84"])) == point["wgs84"]


def test_bounding_box_shifts_non_chinese_points_inside_it() -> None:
    # Documented limitation of the bounding-box rule (Singapore, Seoul):
    # they are shifted exactly as gcoord shifts them.
    for point in INSIDE_BOX_NOT_CHINA:
        lon, lat = point["wgs84"]
        assert not coords.out_of_china(lon, lat), point["name"]
        assert coords.wgs84_to_gcj02(lon, lat) == pytest.approx(point["gcj02"], abs=FORWARD_TOL_DEG)
        assert coords.wgs84_to_bd09(lon, lat) == pytest.approx(point["bd09"], abs=FORWARD_TOL_DEG)


def test_out_of_china_box_edges() -> None:
    min_lon, min_lat, max_lon, max_lat = CHINA_BBOX
    assert CHINA_BBOX == (72.004, 0.8293, 137.8347, 55.8271)
    # Edges count as inside, as in gcoord.
    for lon, lat in (
        (min_lon, min_lat),
        (max_lon, max_lat),
        (min_lon, max_lat),
        (max_lon, min_lat),
    ):
        assert not coords.out_of_china(lon, lat)
    assert coords.out_of_china(min_lon - 1e-9, 30.0)
    assert coords.out_of_china(max_lon + 1e-9, 30.0)
    assert coords.out_of_china(100.0, min_lat - 1e-9)
    assert coords.out_of_china(100.0, max_lat + 1e-9)
    assert not coords.out_of_china(116.3975, 39.9087)


# ---------------------------------------------------------------------------
# Dispatch by CRS.
# ---------------------------------------------------------------------------


def test_crs_is_a_string_enum() -> None:
    assert [c.value for c in Crs] == ["wgs84", "gcj02", "bd09"]
    assert Crs("gcj02") is Crs.GCJ02
    assert isinstance(Crs.BD09, str)
    assert json.dumps({"crs": Crs.BD09}) == '{"crs": "bd09"}'


@pytest.mark.parametrize(
    ("crs", "from_fn", "to_fn"),
    [
        (Crs.GCJ02, coords.wgs84_to_gcj02, coords.gcj02_to_wgs84),
        (Crs.BD09, coords.wgs84_to_bd09, coords.bd09_to_wgs84),
    ],
)
def test_dispatch_matches_specific_functions(crs: Crs, from_fn: ScalarFn, to_fn: ScalarFn) -> None:
    for point in POINTS[:20]:
        lon, lat = point["wgs84"]
        assert coords.from_wgs84(lon, lat, crs) == from_fn(lon, lat)
        assert coords.from_wgs84(lon, lat, crs.value) == from_fn(lon, lat)
        assert coords.to_wgs84(lon, lat, crs) == to_fn(lon, lat)
        assert coords.to_wgs84(lon, lat, crs.value) == to_fn(lon, lat)


def test_dispatch_wgs84_is_identity() -> None:
    lon, lat = 116.3975, 39.9087
    assert coords.to_wgs84(lon, lat, Crs.WGS84) == (lon, lat)
    assert coords.from_wgs84(lon, lat, Crs.WGS84) == (lon, lat)
    for out_lon, out_lat in (
        coords.to_wgs84_array(WGS_LON, WGS_LAT, Crs.WGS84),
        coords.from_wgs84_array(WGS_LON, WGS_LAT, Crs.WGS84),
    ):
        np.testing.assert_array_equal(out_lon, WGS_LON)
        np.testing.assert_array_equal(out_lat, WGS_LAT)
        assert out_lon is not WGS_LON


@pytest.mark.parametrize(
    "call",
    [
        lambda: coords.to_wgs84(116.0, 39.0, "epsg3857"),
        lambda: coords.from_wgs84(116.0, 39.0, "GCJ-02"),
        lambda: coords.to_wgs84_array(np.array([116.0]), np.array([39.0]), "bd-09"),
    ],
)
def test_unknown_crs_raises(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


# ---------------------------------------------------------------------------
# Array versions: agreement with scalars, shapes, no mutation.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("crs", [Crs.GCJ02, Crs.BD09])
def test_array_and_scalar_versions_agree(crs: Crs) -> None:
    # Forward: same formula, so equal to rounding. Inverse: the array loop
    # runs until every point has converged, so points may get an extra step;
    # both are converged to far below 1e-9 deg.
    fwd_lon, fwd_lat = coords.from_wgs84_array(WGS_LON, WGS_LAT, crs)
    s_lon, s_lat = _apply_scalar(lambda x, y: coords.from_wgs84(x, y, crs), WGS_LON, WGS_LAT)
    np.testing.assert_allclose(fwd_lon, s_lon, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fwd_lat, s_lat, rtol=0, atol=1e-12)
    inv_lon, inv_lat = coords.to_wgs84_array(fwd_lon, fwd_lat, crs)
    s_lon, s_lat = _apply_scalar(lambda x, y: coords.to_wgs84(x, y, crs), fwd_lon, fwd_lat)
    np.testing.assert_allclose(inv_lon, s_lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(inv_lat, s_lat, rtol=0, atol=1e-9)


def test_array_mixed_inside_outside_and_shapes() -> None:
    lon = np.array([[116.3975, 139.6917], [-0.1276, 87.6168]])
    lat = np.array([[39.9087, 35.6895], [51.5072, 43.8256]])
    lon_before, lat_before = lon.copy(), lat.copy()
    out_lon, out_lat = coords.from_wgs84_array(lon, lat, Crs.BD09)
    assert out_lon.shape == out_lat.shape == (2, 2)
    assert out_lon.dtype == out_lat.dtype == np.float64
    np.testing.assert_array_equal(lon, lon_before)  # inputs not modified
    np.testing.assert_array_equal(lat, lat_before)
    assert (out_lon[0, 0], out_lat[0, 0]) == coords.wgs84_to_bd09(116.3975, 39.9087)
    assert (out_lon[1, 1], out_lat[1, 1]) == coords.wgs84_to_bd09(87.6168, 43.8256)
    assert (out_lon[0, 1], out_lat[0, 1]) == (139.6917, 35.6895)
    assert (out_lon[1, 0], out_lat[1, 0]) == (-0.1276, 51.5072)


def test_array_accepts_lists_scalars_broadcasting_and_empty() -> None:
    lon, lat = coords.from_wgs84_array([116.3975, 87.6168], 39.9087, "gcj02")
    assert lon.shape == lat.shape == (2,)
    assert (lon[0], lat[0]) == pytest.approx(coords.wgs84_to_gcj02(116.3975, 39.9087), abs=1e-12)
    lon0, lat0 = coords.to_wgs84_array(116.403744, 39.910103, Crs.GCJ02)
    assert lon0.shape == lat0.shape == ()
    empty_lon, empty_lat = coords.to_wgs84_array(np.array([]), np.array([]), Crs.BD09)
    assert empty_lon.shape == empty_lat.shape == (0,)


def test_nan_propagates_without_hanging() -> None:
    lon, lat = coords.to_wgs84_array(
        np.array([np.nan, GCJ_LON[0]]), np.array([30.0, GCJ_LAT[0]]), Crs.BD09
    )
    assert np.isnan(lon[0]) and np.isnan(lat[0])
    assert float(haversine_m(lon[1], lat[1], *coords.bd09_to_wgs84(GCJ_LON[0], GCJ_LAT[0]))) < 1e-6
    assert all(np.isnan(coords.gcj02_to_wgs84(float("nan"), 30.0)))
