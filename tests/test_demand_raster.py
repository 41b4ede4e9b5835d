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
           seed: int, n: int = 50) -> np.ndarray:
    """An n×n population raster with some nodata pixels; returns its values."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 80, (n, n))
    values[rng.random((n, n)) < 0.1] = NODATA
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=1,
                       dtype="float64", crs=crs, nodata=NODATA,
                       transform=from_origin(left, top, size, size)) as ds:
        ds.write(values, 1)
    return values


def _inside_sum(db: psycopg.Connection[Any], values: np.ndarray, crs: str, left: float,
                top: float, size: float) -> float:
    n = values.shape[0]
    """The raster's sum over the pixels whose centres lie in sample Sanya, by brute force."""
    row = db.execute("SELECT ST_AsGeoJSON(geom) FROM admin_area WHERE code = '460200'"
                     ).fetchone()
    assert row is not None
    city = shapely.from_geojson(row[0])
    cols, rows = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
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
    """``POST /v1/demand:raster``: a raster of the whole island (300×300 px) is read only
    in the city's window, with the same sums; a district key estimates only inside its
    district; a file that is not a raster is a 422 naming ``file``."""
    path = tmp_path / "pop.tif"
    values = _write(path, "EPSG:4326", 107.5, 20.5, 0.01, seed=4, n=300)
    expected = _inside_sum(areas, values, "EPSG:4326", 107.5, 20.5, 0.01)
    r = client.post("/v1/demand:raster", params={"area": "460200", "share": 0.1},
                    files={"file": ("pop.tif", path.read_bytes())},
                    headers={"Authorization": keys["editor"]})
    assert r.status_code == 200, r.text
    assert r.json()["stored_weight"] == pytest.approx(expected * 0.1, rel=1e-9)
    window = r.json()["window"]
    assert r.json()["raster_size"] == [300, 300] and window[2] * window[3] < 300 * 300 / 20
    r = client.post("/v1/demand:raster", params={"area": "460200"},
                    files={"file": ("pop.tif", path.read_bytes())},
                    headers={"Authorization": keys["tianya_editor"]})
    assert r.status_code == 403 and r.json()["error"]["fields"][0]["field"] == "area"
    for junk in (b"", b"II*\x00junk"):
        r = client.post("/v1/demand:raster", params={"area": "460204"},
                        files={"file": ("x.tif", junk)},
                        headers={"Authorization": keys["tianya_editor"]})
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "file", r.text


def test_console_raster_form_within_the_persons_area(
        client: Any, areas: psycopg.Connection[Any], tmp_path: Path) -> None:
    """The console's raster form: a Tianya editor estimates Tianya's demand and sees it
    counted; the city is outside their area (403 page); an inspector may not (403); a
    form without the CSRF token is refused before anything is read."""
    from geo_service.domain import accounts
    from tests.test_console import PASSWORD, csrf_of, sign_in

    for name, role in (("ed", "editor"), ("insp", "inspector")):
        accounts.create_user(areas, name=name, role=role, area_code="460204",
                             password=PASSWORD)
    path = tmp_path / "pop.tif"
    values = _write(path, "EPSG:4326", 109.40, 18.34, 0.004, seed=5)
    assert sign_in(client, "insp").status_code == 303
    assert client.get("/console/demand").status_code == 403
    client.cookies.clear()
    assert sign_in(client, "ed").status_code == 303
    page = client.get("/console/demand")
    assert page.status_code == 200 and "没有需求数据" in page.text
    token = csrf_of(page.text)

    def post(area: str, csrf: str) -> Any:
        return client.post("/console/demand/raster", data={
            "area": area, "worker_type": "sanitation", "share": "0.5", "csrf_token": csrf},
            files={"file": ("pop.tif", path.read_bytes(), "image/tiff")})

    assert post("460204", "").status_code == 403
    assert post("460200", token).status_code == 403
    assert areas.execute("SELECT count(*) FROM demand_point").fetchone() == (0,)
    done = post("460204", token)
    assert done.status_code == 200 and "已由栅格估算" in done.text
    stored = areas.execute("SELECT sum(weight) FROM demand_point").fetchone()
    assert stored is not None and stored[0] > 0
    row = areas.execute("SELECT ST_AsGeoJSON(geom) FROM admin_area WHERE code = '460204'"
                        ).fetchone()
    assert row is not None
    tianya = shapely.from_geojson(row[0])
    cols, rows = np.meshgrid(np.arange(50) + 0.5, np.arange(50) + 0.5)
    keep = shapely.contains_xy(tianya, 109.40 + cols * 0.004, 18.34 - rows * 0.004)
    assert stored[0] == pytest.approx(values[keep & (values != NODATA)].sum() * 0.5, rel=1e-9)
    assert "人口栅格估算" in client.get("/console/demand", params={"area": "460204"}).text
