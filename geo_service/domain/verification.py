"""When a station was last verified on site, and when that makes it overdue: one rule.

Issue 27: the overdue list followed the last inspection only while the compliance map
followed the station's 最近核实日期 (``last_verified_on``, imported from the union's
sheet or set by the latest inspection), so a station a clerk had verified before the
service existed was "overdue" in one place and fine in the other. Every place that
says overdue (``GET /v1/inspections/overdue``, ``geo-service inspections overdue``, the
compliance map, the console) now reads :data:`LAST_VERIFIED_SQL` and judges it with
:func:`is_overdue` (or its SQL twin :data:`OVERDUE_SQL`).
"""

from __future__ import annotations

import datetime as dt

from geo_service.domain.catalogue import OPERATIONAL

#: The later of the imported 最近核实日期 and the latest inspection (NULL: neither),
#: for a query whose station is ``s``. ``greatest`` ignores NULLs.
LAST_VERIFIED_SQL = """greatest(s.last_verified_on,
    (SELECT max(i.inspected_on) FROM inspection i WHERE i.station_id = s.id))"""

#: Only stations that serve are inspected: a planned or closed one is never overdue.
INSPECTED_STATUSES: tuple[str, ...] = tuple(s.value for s in OPERATIONAL)

#: :func:`is_overdue` in SQL over ``verified`` (a :data:`LAST_VERIFIED_SQL` column),
#: with ``%(today)s`` and ``%(days)s`` bound.
OVERDUE_SQL = "({verified} IS NULL OR {verified} < %(today)s::date - %(days)s::int)"


def is_overdue(status: str, last_verified: dt.date | None, today: dt.date, days: int) -> bool:
    """Overdue: a serving station never verified, or last verified more than ``days``
    before ``today`` (China's date). Exactly ``days`` ago is not yet overdue.

    >>> is_overdue("open", dt.date(2025, 1, 1), dt.date(2026, 1, 1), 365)
    False
    >>> is_overdue("open", None, dt.date(2026, 1, 1), 365)
    True
    """
    if status not in INSPECTED_STATUSES:
        return False
    return last_verified is None or last_verified < today - dt.timedelta(days=days)
