"""What a planner reads off a run: districts by name, worst first; sites a planner can find.

Issue 27: the scorecard listed area codes in code order and recommended sites came as
WGS-84 points and H3 cell ids. Here the rows get their district's name and are ranked
worst first, and each site gets its district, street, GCJ-02 / BD-09 coordinates and an
Amap link (the same link builder as the stations', :mod:`geo_service.domain.links`).

The ranking is :func:`geo_service.coverage.ranking.rank` (pure: the coverage map ranks
a stored run's rows with it); here the names and places are read from ``admin_area``
through the connection given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from geo_service.areas.queries import POINT_PLACES
from geo_service.coverage.analysis import TOTAL_AREA
from geo_service.coverage.ranking import rank
from geo_service.domain.links import point_facts

#: Where no street (乡镇/街道) boundary is loaded: no street-level name to give.
NO_STREET = "—"

AREA_NAMES = "SELECT code, name FROM admin_area WHERE code = ANY(%(codes)s)"


def area_names(conn: Any, codes: Iterable[str]) -> dict[str, str]:
    """``{code: name}`` of the admin areas among ``codes`` (unknown codes left out)."""
    wanted = sorted({c for c in codes if c and c != TOTAL_AREA})
    if not wanted:
        return {}
    return {code: name for code, name in conn.execute(AREA_NAMES, {"codes": wanted})}


def named_scorecard(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`~geo_service.coverage.ranking.rank` with the names read from ``admin_area``."""
    return rank(rows, area_names(conn, (str(r.get("area") or "") for r in rows)))


def places(conn: Any, points: list[tuple[float, float]]) -> list[tuple[str | None, str | None,
                                                                      str | None]]:
    """(district code, district name, street name) covering each WGS-84 point."""
    if not points:
        return []
    rows = conn.execute(POINT_PLACES, {"lon": [p[0] for p in points],
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
                    **point_facts(site["lon"], site["lat"], title)})
    return out
