"""The scorecard as a planner reads it: districts by name, worst first (issue 27).

Pure: the coverage service ranks a fresh run's rows with :func:`rank`, and the coverage
map ranks a stored run's rows with the same function, so the table beside the map and
the API answer list the districts in one order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from geo_service.coverage.analysis import TOTAL_AREA

#: How the total row is named, and the row of what lies outside every district of the
#: region (stations just across its edge that serve it, demand outside every part).
TOTAL_NAME = "合计 Total"
NO_AREA_NAME = "区域外 outside the area"


def _worst_first(row: Mapping[str, Any]) -> tuple[float, float, str]:
    share = row.get("covered_share")
    return (math.inf if share is None else float(share),
            -float(row.get("uncovered_demand") or 0.0), str(row.get("area") or ""))


def rank(rows: Iterable[Mapping[str, Any]], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Scorecard rows with ``name``, sorted worst first; the total row stays last.

    Worst is the lowest covered share, then the most gap workers (uncovered demand);
    a district with no demand (no share) comes after every district with some.

    >>> [r["name"] for r in rank([{"area": "a", "covered_share": 0.9},
    ...                           {"area": "b", "covered_share": 0.4}], {"a": "甲", "b": "乙"})]
    ['乙', '甲']
    """
    named = [{**r, "name": (TOTAL_NAME if r.get("area") == TOTAL_AREA
                            else names.get(str(r.get("area") or ""))
                            or (NO_AREA_NAME if not r.get("area") else str(r["area"])))}
             for r in rows]
    body = sorted((r for r in named if r.get("area") != TOTAL_AREA), key=_worst_first)
    return body + [r for r in named if r.get("area") == TOTAL_AREA]
