"""Nearest results equal a brute-force geodesic ranking (pyproj on the WGS-84 spheroid)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod

from geo_service.domain.catalogue import AMENITIES, amenity_mask, ten_ones_count
from geo_service.hours.compiler import open_state
from tests.helpers import insert_stations

GEOD = Geod(ellps="WGS84")
HOURS = ["24/7", "Mo-Fr 08:00-18:00", "Mo-Su 18:00-02:00", "Mo-Sa 09:00-17:00; Su off",
         "Su 22:00-02:00", "Mo-Su 10:00-16:00"]
HOSTS = ["union_built", "party_service_centre", "sanitation_depot", "bank_branch", "mobile"]
STATUSES = ["open"] * 8 + ["temporarily_closed", "planned", "closed", "duplicate"]
CODES = [a.code for a in AMENITIES]


def _random_stations(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        picks = [c for c in CODES if rng.random() < (0.6 if c != "legal_aid" else 0.0)]
        out.append({
            "code": f"R{i:05d}", "name": f"随机驿站 {i}",
            "lon": float(rng.uniform(109.0, 110.0)), "lat": float(rng.uniform(18.0, 19.0)),
            "host_type": HOSTS[int(rng.integers(len(HOSTS)))],
            "status": STATUSES[int(rng.integers(len(STATUSES)))],
            "opening_hours": HOURS[int(rng.integers(len(HOURS)))],
            "amenities": picks,
            # Weekly patterns, checked against the library at fixed instants: the holiday
            # calendar's make-up days are tests/test_holidays.py's.
            "official_workdays": False,
        })
    return out


@pytest.fixture
def random_stations(db: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    stations = _random_stations(3000, seed=7)
    insert_stations(db, stations)
    return stations


def brute_force(stations: list[dict[str, Any]], lat: float, lon: float, k: int, *,
                radius: float = 50_000, want: list[str] = (), at: dt.datetime | None = None,
                hosts: list[str] | None = None, statuses: tuple[str, ...] = (
                    "open", "temporarily_closed"), min_ten: int = 0) -> list[tuple[str, float]]:
    """Filter in Python, distance with pyproj's geodesic, rank, cut to k."""
    keep = []
    wmask = amenity_mask(want)
    for s in stations:
        mask = amenity_mask(s["amenities"])
        if s["status"] not in statuses or mask & wmask != wmask:
            continue
        if hosts is not None and s["host_type"] not in hosts:
            continue
        if ten_ones_count(mask) < min_ten:
            continue
        if at is not None and (s["status"] != "open" or open_state(
                s["opening_hours"], "Asia/Shanghai", at)[0] is not True):
            continue
        keep.append(s)
    if not keep:
        return []
    lons = np.array([s["lon"] for s in keep])
    lats = np.array([s["lat"] for s in keep])
    _, _, dist = GEOD.inv(np.full(len(keep), lon), np.full(len(keep), lat), lons, lats)
    ranked = sorted((float(d), s["code"]) for d, s in zip(dist, keep, strict=True)
                    if d <= radius)
    return [(c, d) for d, c in ranked[:k]]


def _query(client: TestClient, **params: Any) -> list[tuple[str, float]]:
    r = client.get("/v1/stations/nearest", params=params)
    assert r.status_code == 200, r.text
    return [(s["code"], s["distance_m"]) for s in r.json()["results"]]


def _same(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> None:
    assert [c for c, _ in got] == [c for c, _ in want]
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert abs(a - b) < 0.01  # API rounds to centimetres


@pytest.mark.slow  # ~8 s: 1,200 queries against pyproj.Geod
def test_matches_brute_force_on_random_queries(
    client: TestClient, random_stations: list[dict[str, Any]]
) -> None:
    rng = np.random.default_rng(11)
    for _ in range(600):
        lat, lon = float(rng.uniform(17.9, 19.1)), float(rng.uniform(108.9, 110.1))
        k = int(rng.integers(1, 40))
        _same(_query(client, lat=lat, lon=lon, k=k), brute_force(random_stations, lat, lon, k))


@pytest.mark.slow  # ~9 s: brute force under every filter
def test_matches_brute_force_with_filters_and_radius(
    client: TestClient, random_stations: list[dict[str, Any]]
) -> None:
    rng = np.random.default_rng(12)
    tz = dt.timezone(dt.timedelta(hours=8))
    for i in range(600):
        lat, lon = float(rng.uniform(18.0, 19.0)), float(rng.uniform(109.0, 110.0))
        k = int(rng.integers(1, 30))
        want = [c for c in ("microwave", "restroom", "ebike_charging") if rng.random() < 0.5]
        radius = float(rng.choice([500.0, 2_000.0, 8_000.0, 50_000.0]))
        at = dt.datetime(2026, 11, 16, tzinfo=tz) + dt.timedelta(minutes=int(rng.integers(10080)))
        hosts = ["union_built", "mobile"] if i % 3 == 0 else None
        min_ten = int(rng.integers(0, 8)) if i % 4 == 0 else 0
        params: dict[str, Any] = {"lat": lat, "lon": lon, "k": k, "radius_m": radius,
                                  "amenities": ",".join(want), "open_now": "true",
                                  "at": at.isoformat(), "min_ten_ones": min_ten}
        if hosts:
            params["host_type"] = ",".join(hosts)
        expected = brute_force(random_stations, lat, lon, k, radius=radius, want=want, at=at,
                               hosts=hosts, min_ten=min_ten)
        _same(_query(client, **params), expected)


def test_exactly_k_when_k_qualify_even_if_rare(
    client: TestClient, db: psycopg.Connection[Any], random_stations: list[dict[str, Any]]
) -> None:
    # Seven far-apart stations are the only ones with legal aid: a KNN walk
    # that filtered after the LIMIT would return fewer.
    rare = [{"code": f"LEGAL{i}", "name": f"法律援助驿站 {i}", "lon": 109.3 + 0.06 * i,
             "lat": 18.3 + 0.05 * i, "host_type": "union_built", "status": "open",
             "opening_hours": "24/7", "amenities": ["legal_aid"]} for i in range(7)]
    insert_stations(db, rare)
    got = _query(client, lat=18.5, lon=109.5, k=7, amenities="legal_aid")
    assert sorted(c for c, _ in got) == sorted(s["code"] for s in rare)
    got = _query(client, lat=18.5, lon=109.5, k=10, amenities="legal_aid")
    assert len(got) == 7


def test_sphere_order_differs_from_spheroid_order(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    """At the equator a station due north is nearer on the spheroid than one due east
    at a shorter sphere distance; twelve east stations push it out of a naive walk."""
    lat0, lon0 = 0.0, 30.0
    east = []
    for i in range(12):
        lon, lat, _ = GEOD.fwd(lon0, lat0, 90.0, 1002.0 + 0.25 * i)
        east.append({"code": f"E{i:02d}", "name": f"east {i}", "lon": lon, "lat": lat,
                     "host_type": "union_built", "opening_hours": "24/7", "amenities": [],
                 "status": "open"})
    nlon, nlat, _ = GEOD.fwd(lon0, lat0, 0.0, 1000.0)
    north = {"code": "NORTH", "name": "north", "lon": nlon, "lat": nlat,
             "host_type": "union_built", "opening_hours": "24/7"}
    insert_stations(db, [*east, north])
    sphere = db.execute(
        "SELECT code FROM station ORDER BY geog <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
        "::geography LIMIT 12", (lon0, lat0)).fetchall()
    assert ("NORTH",) not in sphere  # the naive walk would miss it
    got = _query(client, lat=lat0, lon=lon0, k=1)
    assert got[0][0] == "NORTH"
    assert abs(got[0][1] - 1000.0) < 0.01


#: Points where PostGIS's geography KNN walk reports an index distance above the
#: operator's own ("index returned tuples in wrong order", a PostgreSQL error): the
#: antimeridian from both sides, the poles, the origin.
EDGE_POINTS = [(0.0, 0.0), (0.0, 90.0), (0.0, -90.0), (180.0, 0.0), (-180.0, 0.0),
               (179.9999999, 0.0), (-179.9999999, 0.0), (0.0, 1e-7), (1e-7, 0.0),
               (90.0, 0.0), (-90.0, 0.0), (180.0, 90.0), (-180.0, -90.0), (0.5, 0.5),
               (-0.5, -0.5), (180.0, 45.0), (-180.0, -45.0), (45.0, 89.9999999)]


def test_edges_of_the_globe_answer_in_order_not_500(
        client: TestClient, db: psycopg.Connection[Any]) -> None:
    """Stations and questions on the antimeridian, at the poles and at (0, 0): the
    nearest list and the phone's snapshot answer 200, in true geodesic order."""
    stations = [{"code": f"E{i:02d}", "name": f"边缘 {i}", "lon": lon, "lat": lat,
                 "host_type": "union_built", "opening_hours": "24/7", "amenities": [],
                 "status": "open"}
                for i, (lon, lat) in enumerate(EDGE_POINTS)]
    insert_stations(db, stations)
    for lon, lat in [(180.0, 0.0), (-180.0, 0.0), (0.0, 0.0), (0.0, 90.0), (90.0, 0.0)]:
        for k in (1, 5, 20):
            got = _query(client, lon=lon, lat=lat, k=k, radius_m=50_000)
            _same(got, brute_force(stations, lat, lon, k))
        r = client.get("/v1/app/snapshot", params={"lon": lon, "lat": lat, "n": 5})
        assert r.status_code == 200, r.text
