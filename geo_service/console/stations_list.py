"""The console's station list: its filters, the two rules it filters by, its SQL and its rows.

A clerk's list of the stations of the signed-in area (the area and everything below it,
matched on the station's area codes as the API's lists match them), searched and
filtered by what union offices are asked about every week: district, status, host type,
how complete the ten ones are, "not verified for 90 days" and "not on the map yet";
sorted by any column, paged, and exported (the union template) as exactly the rows the
filters select. The filters are plain GET parameters, so a list can be shared as a URL;
:func:`parse_filters` reads them and refuses a bad one with a 422 naming the field.

* **verified** is the service's one rule (:mod:`geo_service.domain.verification`): the
  later of the station's 最近核实日期 and its latest inspection; "not verified for 90
  days" is a serving station never verified or last verified more than 90 days before
  today (China's date), exactly as ``GET /v1/inspections/overdue`` judges it.

One rule is kept here (SQL beside the names the page shows):

* **on the map** (上图): what the map platforms' bulk upload needs besides the name and
  the point every station has: an address, a phone, the hours, the district, and at least
  one service (amenity). "Not on the map yet" is a serving station lacking one of them.
  The platforms also ask for an exterior photo (外观图片); stations carry no photos yet,
  so the rule cannot ask for one until they do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.catalogue import OPERATIONAL, TEN_ONES_MASK, HostType, Status
from geo_service.domain.errors import invalid
from geo_service.domain.verification import LAST_VERIFIED_SQL, OVERDUE_SQL
from geo_service.stations.queries import STATION_COLUMNS

#: Days after which a serving station counts as "not verified".
VERIFY_DAYS = 90
#: Page sizes offered; the first is the default.
PAGE_SIZES = (50, 20, 100)
#: The highest page number accepted (a bound on OFFSET, far past any real list).
MAX_PAGE = 10_000
#: Longest search text.
MAX_SEARCH = 100
#: The ten-ones completeness choices: all ten, or fewer than ten (missing at least one).
TEN_CHOICES = ("complete", "missing")
#: Fields a station needs to go on the map platforms, in the order the page names them
#: (name and coordinates are never empty).
MAP_FIELDS = ("address", "phone", "opening_hours", "district", "amenities")
SERVING = tuple(s.value for s in OPERATIONAL)

#: The map fields ``s`` lacks, as a text array (empty: ready for the map).
MAP_MISSING_SQL = """array_remove(ARRAY[
    CASE WHEN coalesce(btrim(s.address), '') = '' THEN 'address' END,
    CASE WHEN coalesce(btrim(s.phone), '') = '' THEN 'phone' END,
    CASE WHEN s.opening_hours IS NULL THEN 'opening_hours' END,
    CASE WHEN s.district_code IS NULL THEN 'district' END,
    CASE WHEN s.amenity_mask = 0 THEN 'amenities' END], NULL)"""
_TEN_COUNT = f"bit_count((s.amenity_mask & {TEN_ONES_MASK})::bit(64))::int"

#: Sort keys → SQL (whitelisted: the only text that reaches ORDER BY).
SORTS: dict[str, str] = {
    "code": "s.code", "name": "s.name", "district": "s.district_code",
    "status": "s.status", "host_type": "s.host_type", "ten": "ten_ones",
    "verified": "verified_on", "updated": "s.updated_at",
}

_FROM = f"""
FROM (SELECT s.*, {_TEN_COUNT} AS ten_ones, {LAST_VERIFIED_SQL} AS verified_on,
             {MAP_MISSING_SQL} AS map_missing
      FROM station s
      WHERE (%(scope)s::text IS NULL
             OR %(scope)s IN (s.province_code, s.city_code, s.district_code, s.street_code))
        AND (%(area)s::text IS NULL
             OR %(area)s IN (s.province_code, s.city_code, s.district_code, s.street_code))
        AND (%(status)s::text IS NULL OR s.status = %(status)s)
        AND (%(host_type)s::text IS NULL OR s.host_type = %(host_type)s)
        AND (%(q)s::text IS NULL OR strpos(lower(s.name), %(q)s) > 0
             OR strpos(lower(s.code), %(q)s) > 0
             OR strpos(lower(coalesce(s.address, '')), %(q)s) > 0)) s
WHERE (%(ten)s::text IS NULL OR (s.ten_ones = 10) = (%(ten)s = 'complete'))
  AND (NOT %(unverified)s OR (s.status = ANY(%(serving)s)
       AND {OVERDUE_SQL.format(verified="s.verified_on")}))
  AND (NOT %(off_map)s OR (s.status = ANY(%(serving)s) AND cardinality(s.map_missing) > 0))
"""
_COUNT = "SELECT count(*)::int " + _FROM
_ROWS = """
SELECT s.code, s.name, s.address, s.district, s.district_code, s.street, s.status,
       s.host_type, s.sample, s.updated_at, s.ten_ones, s.verified_on, s.map_missing
""" + _FROM
# source_crs, hours_text: the union sheet gives back what the clerk's import typed.
_EXPORT = f"SELECT s.id AS station_id, {STATION_COLUMNS}, s.source_crs, s.hours_text " + _FROM


@dataclass(frozen=True)
class Filters:
    """A list request, checked: every field a value the list offers (or None: any)."""

    q: str | None = None
    area: str | None = None
    status: str | None = None
    host_type: str | None = None
    ten: str | None = None
    unverified: bool = False
    off_map: bool = False
    sort: str = "code"
    descending: bool = False
    page: int = 1
    per: int = PAGE_SIZES[0]

    def query(self, **changes: Any) -> dict[str, str]:
        """The GET parameters that give this list back (``changes`` applied), defaults
        left out, so a shared URL stays short."""
        values = {
            "q": self.q or "", "area": self.area or "", "status": self.status or "",
            "host_type": self.host_type or "", "ten": self.ten or "",
            "unverified": "1" if self.unverified else "", "off_map": "1" if self.off_map
            else "", "sort": ("-" if self.descending else "") + self.sort,
            "page": str(self.page), "per": str(self.per)}
        values.update({k: str(v) for k, v in changes.items()})
        defaults = {"sort": "code", "page": "1", "per": str(PAGE_SIZES[0])}
        return {k: v for k, v in values.items() if v and defaults.get(k) != v}


def _choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    if value not in allowed:
        raise invalid(name, f"must be one of {', '.join(allowed)}")
    return value


def _number(params: Mapping[str, str], name: str, default: int, top: int) -> int:
    value = params.get(name, "").strip()
    if not value:
        return default
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= top:
        raise invalid(name, f"must be a whole number from 1 to {top}")
    return int(value)


def parse_filters(params: Mapping[str, str], areas: set[str]) -> Filters:
    """The list's GET parameters, checked; ``areas``: the codes the person may pick (their
    area and those below it). A bad value raises a 422 naming the field."""
    q = params.get("q", "").strip()
    if len(q) > MAX_SEARCH:
        raise invalid("q", f"at most {MAX_SEARCH} characters")
    area = params.get("area", "").strip() or None
    if area is not None and area not in areas:
        raise invalid("area", "not an area within yours")
    sort = params.get("sort", "").strip() or "code"
    key = sort.removeprefix("-")
    if key not in SORTS:
        raise invalid("sort", f"must be one of {', '.join(SORTS)} (- first for descending)")
    per = _number(params, "per", PAGE_SIZES[0], max(PAGE_SIZES))
    if per not in PAGE_SIZES:
        raise invalid("per", f"must be one of {', '.join(map(str, PAGE_SIZES))}")
    for flag in ("unverified", "off_map"):
        if params.get(flag, "") not in ("", "1"):
            raise invalid(flag, "must be 1 or absent")
    return Filters(
        q=q or None, area=area,
        status=_choice(params, "status", tuple(s.value for s in Status)),
        host_type=_choice(params, "host_type", tuple(h.value for h in HostType)),
        ten=_choice(params, "ten", TEN_CHOICES),
        unverified=params.get("unverified") == "1", off_map=params.get("off_map") == "1",
        sort=key, descending=sort.startswith("-"),
        page=_number(params, "page", 1, MAX_PAGE), per=per)


def _params(f: Filters, scope: str | None, today: dt.date) -> dict[str, Any]:
    return {"scope": scope, "area": f.area, "status": f.status, "host_type": f.host_type,
            "q": f.q.lower() if f.q else None, "ten": f.ten, "unverified": f.unverified,
            "off_map": f.off_map, "serving": list(SERVING), "today": today,
            "days": VERIFY_DAYS}


def _order(f: Filters) -> str:
    """ORDER BY of the list and the export: the chosen column, then the code (unique), so
    pages never overlap; never-verified stations count as the oldest."""
    way = "DESC" if f.descending else "ASC"
    nulls = "NULLS LAST" if f.descending else "NULLS FIRST"
    tie = "" if f.sort == "code" else ", s.code"
    return f" ORDER BY {SORTS[f.sort]} {way} {nulls}{tie}"


async def list_page(conn: AsyncConnection[Any], f: Filters, *, scope: str | None,
                    today: dt.date) -> dict[str, Any]:
    """One page of the list: its rows and how many stations match in all."""
    params = _params(f, scope, today)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_COUNT, params)
        total = (await cur.fetchone() or {"count": 0})["count"]
        await cur.execute(_ROWS + _order(f) + " LIMIT %(limit)s OFFSET %(offset)s",
                          {**params, "limit": f.per, "offset": (f.page - 1) * f.per})
        rows = await cur.fetchall()
    return {"rows": rows, "total": total}


async def export_rows(conn: AsyncConnection[Any], f: Filters, *, scope: str | None,
                      today: dt.date) -> list[dict[str, Any]]:
    """Every station the filters select (all pages), in the list's order, as the feed
    rows the union template is written from (``feeds.export_formats``)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_EXPORT + _order(f), _params(f, scope, today))
        return await cur.fetchall()
