"""Demand from a population raster (issue 27): windowed read, any CRS, nodata, sums kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import shapely
from pyproj import Transformer

from geo_service.cli import main

NODATA = -9999.0


def _write(path: Path, crs: str, left: float, top: float, size: float,
           seed: int) -> np.ndarray:
    """A 50×50 population raster with some nodata pixels; returns its values."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 80, (50, 50))
    values[rng.random((50, 50)) < 0.1] = NODATA
    with rasterio.open(path, "w", driver="GTiff", width=50, height=50, count=1,
                       dtype="float64", crs=crs, nodata=NODATA,
                       transform=from_origin(left, top, size, size)) as ds:
        ds.write(values, 1)
    return values


def _inside_sum(db: psycopg.Connection[Any], values: np.ndarray, crs: str, left: float,
                top: float, size: float) -> float:
    """The raster's sum over the pixels whose centres lie in sample Sanya, by brute force."""
    row = db.execute("SELECT ST_AsGeoJSON(geom) FROM admin_area WHERE code = '460200'"
                     ).fetchone()
    assert row is not None
    city = shapely.from_geojson(row[0])
    cols, rows = np.meshgrid(np.arange(50) + 0.5, np.arange(50) + 0.5)
    x, y = left + cols * size, top - rows * size
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    keep = shapely.contains_xy(city, lon, lat) & (values != NODATA)
    return float(values[keep].sum())


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3857"])
def test_raster_sums_into_demand_idempotently(areas: psycopg.Connection[Any], db_url: str,
                                              tmp_path: Path, crs: str,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    if crs == "EPSG:4326":
        left, top, size = 109.40, 18.34, 0.004
    else:
        left, top = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(
            109.40, 18.34)
        size = 400.0
    path = tmp_path / "worldpop.tif"
    values = _write(path, crs, left, top, size, seed=1)
    expected = _inside_sum(areas, values, crs, left, top, size)
    assert 0 < expected < float(values[values != NODATA].sum())  # the polygon cuts it
    assert main(["demand", "raster", str(path), "--area", "460200",
                 "--worker-type", "delivery", "--share", "0.05"]) == 0
    assert "worldpop.tif" in capsys.readouterr().out

    def stored() -> list[tuple[Any, ...]]:
        return areas.execute("SELECT external_id, weight, worker_type, source, "
                             "ST_AsText(geog) FROM demand_point ORDER BY external_id"
                             ).fetchall()

    first = stored()
    assert sum(r[1] for r in first) == pytest.approx(expected * 0.05, rel=1e-9)
    assert {r[2] for r in first} == {"delivery"} and {r[3] for r in first} == {
        "raster:worldpop.tif"}
    assert main(["demand", "raster", str(path), "--area", "460200",
                 "--worker-type", "delivery", "--share", "0.05"]) == 0
    assert "created 0, updated 0" in capsys.readouterr().out
    assert stored() == first
    # Another raster for the area replaces the first one's points, and only those.
    areas.execute("INSERT INTO demand_point (external_id, geog, weight, worker_type) VALUES "
                  "('sheet-1', ST_SetSRID(ST_MakePoint(109.5, 18.25), 4326)::geography, 3, "
                  "'courier')")
    other = _write(path, crs, left, top, size, seed=2)
    assert main(["demand", "raster", str(path), "--area", "460200", "--share", "0.05"]) == 0
    again = stored()
    raster_rows = [r for r in again if r[0].startswith("raster:460200:")]
    assert sum(r[1] for r in raster_rows) == pytest.approx(
        _inside_sum(areas, other, crs, left, top, size) * 0.05, rel=1e-9)
    assert len(again) == len(raster_rows) + 1
    assert main(["demand", "summary", "--area", "460200"]) == 0
    out = capsys.readouterr().out
    assert "population raster (raster:worldpop.tif)" in out and "imported sheet" in out


def test_raster_outside_the_area_and_bad_files(areas: psycopg.Connection[Any], db_url: str,
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    path = tmp_path / "far.tif"
    _write(path, "EPSG:4326", 10.0, 50.0, 0.01, seed=3)
    assert main(["demand", "raster", str(path), "--area", "460200"]) == 0
    assert "does not reach the area" in capsys.readouterr().out
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff")
    assert main(["demand", "raster", str(junk), "--area", "460200"]) == 2
    assert "not a readable raster" in capsys.readouterr().err
    assert main(["demand", "raster", str(path), "--area", "999999"]) == 2
    assert json.dumps(areas.execute("SELECT count(*) FROM demand_point").fetchone()) == "[0]"


def test_raster_upload_through_the_api_within_the_key_area(
        client: Any, keys: dict[str, str], areas: psycopg.Connection[Any],
        tmp_path: Path) -> None:
    """``POST /v1/demand:raster``: the same sums; a district key estimates only inside its
    district; a file that is not a raster is a 422 naming ``file``."""
    path = tmp_path / "pop.tif"
    values = _write(path, "EPSG:4326", 109.40, 18.34, 0.004, seed=4)
    expected = _inside_sum(areas, values, "EPSG:4326", 109.40, 18.34, 0.004)
    r = client.post("/v1/demand:raster", params={"area": "460200", "share": 0.1},
                    files={"file": ("pop.tif", path.read_bytes())},
                    headers={"Authorization": keys["editor"]})
    assert r.status_code == 200, r.text
    assert r.json()["stored_weight"] == pytest.approx(expected * 0.1, rel=1e-9)
    assert r.json()["window"][2] * r.json()["window"][3] <= 2500
    r = client.post("/v1/demand:raster", params={"area": "460200"},
                    files={"file": ("pop.tif", path.read_bytes())},
                    headers={"Authorization": keys["tianya_editor"]})
    assert r.status_code == 403 and r.json()["error"]["fields"][0]["field"] == "area"
    for junk in (b"", b"II*\x00junk"):
        r = client.post("/v1/demand:raster", params={"area": "460204"},
                        files={"file": ("x.tif", junk)},
                        headers={"Authorization": keys["tianya_editor"]})
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "file", r.text
