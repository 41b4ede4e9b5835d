"""What a planner reads off a run: districts by name, worst first; sites a planner can find.

Issue 27: the scorecard listed area codes in code order and recommended sites came as
WGS-84 points and H3 cell ids. Here the rows get their district's name and are ranked
worst first, and each site gets its district, street, GCJ-02 / BD-09 coordinates and an
Amap link (the same link builder as the stations', :mod:`geo_service.domain.links`).

:func:`rank` and :func:`site_facts` are pure (the coverage map ranks a stored run's
rows with the same :func:`rank`); :func:`area_names` and :func:`places` read
``admin_area`` through the connection they are given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from geo_service.coverage.analysis import TOTAL_AREA
from geo_service.domain.links import platform_points, station_links

#: How the total row and a row of demand outside every district are named.
TOTAL_NAME = "合计 Total"
NO_AREA_NAME = "区外 outside the districts"
#: Where no street (乡镇/街道) boundary is loaded: no street-level name to give.
NO_STREET = "—"

AREA_NAMES = "SELECT code, name FROM admin_area WHERE code = ANY(%(codes)s)"

# The district and the street (乡镇/街道) whose boundaries cover each point; NULL
# where none is loaded. The parts table is the split polygons, so the test is cheap.
PLACES = """
SELECT p.i,
       (SELECT a.code FROM admin_area_part ap JOIN admin_area a ON a.code = ap.code
        WHERE a.level = 'district' AND ST_Covers(ap.geom, p.g) ORDER BY a.code LIMIT 1),
       (SELECT a.name FROM admin_area_part ap JOIN admin_area a ON a.code = ap.code
        WHERE a.level = 'district' AND ST_Covers(ap.geom, p.g) ORDER BY a.code LIMIT 1),
       (SELECT a.name FROM admin_area_part ap JOIN admin_area a ON a.code = ap.code
        WHERE a.level = 'street' AND ST_Covers(ap.geom, p.g) ORDER BY a.code LIMIT 1)
FROM (SELECT i, ST_SetSRID(ST_MakePoint(x, y), 4326) AS g
      FROM unnest(%(lon)s::float8[], %(lat)s::float8[]) WITH ORDINALITY AS t(x, y, i)) p
ORDER BY p.i
"""


def area_names(conn: Any, codes: Iterable[str]) -> dict[str, str]:
    """``{code: name}`` of the admin areas among ``codes`` (unknown codes left out)."""
    wanted = sorted({c for c in codes if c and c != TOTAL_AREA})
    if not wanted:
        return {}
    return {code: name for code, name in conn.execute(AREA_NAMES, {"codes": wanted})}


def _worst_first(row: Mapping[str, Any]) -> tuple[float, float, str]:
    share = row.get("covered_share")
    return (math.inf if share is None else float(share),
            -float(row.get("uncovered_demand") or 0.0), str(row.get("area") or ""))


def rank(rows: Iterable[Mapping[str, Any]], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Scorecard rows with ``name``, sorted worst first; the total row stays last.

    Worst is the lowest covered share, then the most gap workers (uncovered demand);
    a district with no demand (no share) comes after every district with some.
    """
    named = [{**r, "name": (TOTAL_NAME if r.get("area") == TOTAL_AREA
                            else names.get(str(r.get("area") or ""))
                            or (NO_AREA_NAME if not r.get("area") else str(r["area"])))}
             for r in rows]
    body = sorted((r for r in named if r.get("area") != TOTAL_AREA), key=_worst_first)
    return body + [r for r in named if r.get("area") == TOTAL_AREA]


def named_scorecard(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`rank` with the names read from ``admin_area``."""
    return rank(rows, area_names(conn, (str(r.get("area") or "") for r in rows)))


def site_facts(lon: float, lat: float, label: str) -> dict[str, Any]:
    """A WGS-84 site's GCJ-02 (Amap, Tencent) and BD-09 (Baidu) points and its Amap link
    (``uri.amap.com/marker``, built as every station's is)."""
    g, b = platform_points(lon, lat)
    return {"gcj02": [round(g[0], 7), round(g[1], 7)], "bd09": [round(b[0], 7), round(b[1], 7)],
            "amap": station_links(label, label, lon, lat, None)["amap"]}


def places(conn: Any, points: list[tuple[float, float]]) -> list[tuple[str | None, str | None,
                                                                      str | None]]:
    """(district code, district name, street name) covering each WGS-84 point."""
    if not points:
        return []
    rows = conn.execute(PLACES, {"lon": [p[0] for p in points],
                                 "lat": [p[1] for p in points]}).fetchall()
    return [(r[1], r[2], r[3]) for r in rows]


def describe_sites(conn: Any, sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recommended sites with what a planner needs to find and judge them.

    Adds ``district_code``, ``district``, ``street`` (the 乡镇/街道 whose boundary
    covers the site, :data:`NO_STREET` where none is loaded: no roads table exists
    to name a nearest road), ``gcj02``, ``bd09``, ``amap`` and ``new_workers`` (the
    workers it newly covers, given the sites ranked before it).
    """
    found = places(conn, [(s["lon"], s["lat"]) for s in sites])
    out = []
    for site, (code, district, street) in zip(sites, found, strict=True):
        title = f"建议站点 {site['rank']}" + (f" · {district}" if district else "")
        out.append({**site, "district_code": code, "district": district,
                    "street": street or NO_STREET, "new_workers": site["gain"],
                    **site_facts(site["lon"], site["lat"], title)})
    return out
