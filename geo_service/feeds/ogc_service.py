"""Rules of the OGC API - Features endpoints: the documents, the filters, the pages.

OGC clients (QGIS, GDAL's ``OAPIF:`` driver, ArcGIS, pygeoapi harvesters)
discover the service through a fixed chain of JSON documents -- landing page,
conformance, collections, queryables -- and then page through
``/collections/stations/items`` by following ``next`` links. The documents
here are plain dicts built from the base URL and database rows; the router
adds HTTP. Features are the same shape as every other feed
(:func:`geo_service.feeds.features.station_feature`), so a QGIS layer and the
national GeoJSON export carry identical attributes.

Example
-------
>>> parse_datetime("2024-05-01T00:00:00Z/..")[1] is None
True
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from geo_service.domain.catalogue import AMENITY_BY_CODE, TEN_ONES_MASK, HostType
from geo_service.domain.coords import CHINA_BBOX, Crs
from geo_service.domain.encoding import dumps
from geo_service.domain.errors import GeoServiceError, clip, invalid
from geo_service.domain.params import AREA_PATTERN, CODE_PATTERN, parse_bbox
from geo_service.feeds import ogc_queries as q
from geo_service.feeds.features import station_features, utc_iso
from geo_service.feeds.queries import PUBLISHED

COLLECTION_ID = "stations"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
# FastAPI writes OpenAPI 3.1, so the oas30 conformance class is not claimed.
OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.1"
GEOJSON = "application/geo+json"
JSON = "application/json"
SCHEMA_JSON = "application/schema+json"

#: Paging: the standard's default and maximum. A larger ``limit`` is capped,
#: not refused (OGC API - Features 1.0, /per/core/limit-response).
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
#: Beyond any real table; keeps OFFSET inside PostgreSQL's bigint.
MAX_OFFSET = 1_000_000_000

_CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf"
_PART3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf"
CONFORMS_TO = (
    f"{_CORE}/core", f"{_CORE}/geojson",
    f"{_PART3}/queryables", f"{_PART3}/queryables-query-parameters",
)

SAMPLE_CAVEAT = ("The stations marked sample=true (all of the bundled data) are SAMPLE DATA "
                 "generated for demonstration; none describes a real station.")

#: Query parameters each operation understands; anything else is refused (400),
#: as OGC API - Features 1.0 /req/core/query-param-unknown asks.
QUERYABLES = ("status", "host_type", "district_code", "city_code", "code",
              "ten_ones_count", "amenity")
DOC_PARAMS = frozenset({"f"})
ITEMS_PARAMS = frozenset({"f", "bbox", "limit", "offset", "datetime", *QUERYABLES})


class UnknownParameter(GeoServiceError):
    """A query parameter the operation does not define (OGC asks for a 400)."""

    status = 400
    code = "unknown_parameter"


def refuse_unknown(names: set[str], allowed: frozenset[str]) -> None:
    """Raise a 400 naming every query parameter outside ``allowed``."""
    unknown = sorted(names - allowed)
    if unknown:
        known = ", ".join(sorted(allowed))
        raise UnknownParameter(
            f"unknown query parameter(s): {', '.join(unknown)}; this operation takes {known}",
            [(name, f"unknown query parameter; allowed: {known}") for name in unknown])


# --- parameters --------------------------------------------------------------------------

_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_OPEN = ("..", "")
_TICK = dt.timedelta(microseconds=1)  # PostgreSQL's timestamp resolution


def _instant(text: str) -> tuple[dt.datetime, dt.datetime]:
    """First and last microsecond an RFC 3339 date-time (or a whole UTC date) covers."""
    try:
        if _INSTANT.fullmatch(text):
            moment = dt.datetime.fromisoformat(text.upper().replace(" ", "T"))
            return moment, moment
        if _DATE.fullmatch(text):
            start = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), dt.UTC)
            return start, start + dt.timedelta(days=1) - _TICK
    except (ValueError, OverflowError):
        raise invalid("datetime", f"{clip(repr(text))} is not a valid date or time") from None
    raise invalid("datetime", f"{clip(repr(text))} is not an RFC 3339 date-time with a time zone, "
                              "e.g. 2024-05-01T08:00:00Z")


def parse_datetime(value: str | None) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    """``datetime`` → inclusive (since, until) on ``updated_at``; ``None`` = no filter.

    Accepts an instant (``2024-05-01T08:00:00Z``; a bare date is that whole
    UTC day), a closed interval ``a/b``, and half-open ``../b``, ``a/..``
    (an empty end counts as ``..``), as OGC API - Features 1.0 §7.15.4 says.
    """
    if value is None:
        return None
    text = value.strip()
    if "/" not in text:
        first, last = _instant(text)
        return first, last
    parts = text.split("/")
    if len(parts) != 2 or all(p in _OPEN for p in parts):
        raise invalid("datetime", "an interval is start/end, with at most one end open (..)")
    since = None if parts[0] in _OPEN else _instant(parts[0])[0]
    until = None if parts[1] in _OPEN else _instant(parts[1])[1]
    if since is not None and until is not None and since > until:
        raise invalid("datetime", "the interval starts after it ends")
    return since, until


def parse_ogc_bbox(value: str | None) -> list[float] | None:
    """``bbox`` in CRS84: four numbers, or six (3D) whose heights are ignored."""
    if value is None:
        return None
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise invalid("bbox", "must be 4 numbers (minlon,minlat,maxlon,maxlat) or 6 "
                              "(minlon,minlat,minheight,maxlon,maxlat,maxheight)")
    if len(parts) == 6:
        try:
            heights = [float(parts[2]), float(parts[5])]
        except ValueError:
            raise invalid("bbox", "heights of a 6-number bbox must be numbers") from None
        if not all(math.isfinite(h) for h in heights) or heights[0] > heights[1]:
            raise invalid("bbox", "heights must be finite with min <= max")
        value = ",".join([parts[0], parts[1], parts[3], parts[4]])
    return parse_bbox(value, Crs.WGS84)


def is_code(value: str) -> bool:
    """Whether ``value`` could be a station code (anything else cannot be a feature id)."""
    return re.fullmatch(CODE_PATTERN, value) is not None


def check_amenity(code: str | None) -> str | None:
    """An amenity filter must name a catalogue amenity (a typo would match nothing)."""
    if code is not None and code not in AMENITY_BY_CODE:
        raise invalid("amenity", f"unknown amenity; allowed: {', '.join(AMENITY_BY_CODE)}")
    return code


@dataclass(frozen=True)
class ItemFilters:
    """The filters of one items request, already validated; ``None`` = not asked."""

    bbox: list[float] | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    status: str | None = None
    host_type: str | None = None
    district_code: str | None = None
    city_code: str | None = None
    code: str | None = None
    ten_ones_count: int | None = None
    amenity: str | None = None

    def sql(self) -> tuple[list[str], dict[str, Any]]:
        """The names of the active ``ogc_queries.FILTERS`` and their parameters."""
        params: dict[str, Any] = {k: v for k, v in asdict(self).items()
                                  if v is not None and k not in ("bbox", "amenity")}
        active = list(params)
        if self.ten_ones_count is not None:
            params["ten_mask"] = TEN_ONES_MASK
        if self.amenity is not None:
            active.append("amenity")
            params["amenity_bit"] = 1 << AMENITY_BY_CODE[self.amenity].bit
        if self.bbox is not None:
            active.append("bbox")
            params.update(zip(("minx", "miny", "maxx", "maxy"), self.bbox, strict=True))
        return active, params


# --- database ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    """One page of items: the rows shown and how many match in all."""

    rows: list[dict[str, Any]]
    number_matched: int


async def items_page(
    conn: AsyncConnection[Any], filters: ItemFilters, *, limit: int, offset: int,
    at: dt.datetime, photo_base: str | None = None,
) -> Page:
    """Published stations matching ``filters``, by id, with the total (one snapshot)."""
    active, params = filters.sql()
    params.update(limit=limit, offset=offset, at=at, photo_base=photo_base)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.items_query(active), params)
        rows = await cur.fetchall()
    matched = int(rows[0]["number_matched"]) if rows else 0
    return Page(rows=[r for r in rows if r["station_id"] is not None], number_matched=matched)


async def item(conn: AsyncConnection[Any], code: str, at: dt.datetime,
               photo_base: str | None = None) -> dict[str, Any] | None:
    """One published station's feed row, or ``None``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.ITEM, {"code": code, "at": at, "photo_base": photo_base})
        return await cur.fetchone()


async def extent(conn: AsyncConnection[Any]) -> dict[str, Any]:
    """The collection's extent: bbox of the published stations and their update times.

    With nothing published the bbox is China's (:data:`geo_service.domain.coords.CHINA_BBOX`),
    so a client still frames the right part of the world.
    """
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.EXTENT)
        row = await cur.fetchone()
    assert row is not None
    bbox = (list(CHINA_BBOX) if row["minx"] is None
            else [row["minx"], row["miny"], row["maxx"], row["maxy"]])
    times = [None if t is None else utc_iso(t) for t in (row["first_update"],
                                                          row["last_update"])]
    return {"spatial": {"bbox": [bbox], "crs": CRS84},
            "temporal": {"interval": [times], "trs": GREGORIAN}}


# --- documents -----------------------------------------------------------------------------

def link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def landing_page(base: str) -> dict[str, Any]:
    """The landing page (/req/core/root-success): where everything else is linked from."""
    return {
        "title": "geo_service: trade-union rest stations for outdoor workers",
        "description": ("OGC API - Features access to the published rest stations "
                        "(工会户外劳动者服务站点 / 爱心驿站) for sanitation workers, delivery "
                        "riders, couriers and truck drivers. " + SAMPLE_CAVEAT),
        "links": [
            link(f"{base}/ogc", "self", JSON, "This document"),
            link(f"{base}/openapi.json", "service-desc", OPENAPI_TYPE,
                 "The API definition (OpenAPI)"),
            link(f"{base}/docs", "service-doc", "text/html", "The API documentation"),
            link(f"{base}/ogc/conformance", "conformance", JSON,
                 "OGC API conformance classes implemented by this server"),
            link(f"{base}/ogc/collections", "data", JSON, "The feature collections"),
        ],
    }


def conformance() -> dict[str, Any]:
    return {"conformsTo": list(CONFORMS_TO)}


def collection(base: str, extent_doc: dict[str, Any]) -> dict[str, Any]:
    """The ``stations`` collection's metadata (/req/core/sfc-md-success)."""
    here = f"{base}/ogc/collections/{COLLECTION_ID}"
    return {
        "id": COLLECTION_ID,
        "title": "Outdoor-worker rest stations (工会户外劳动者服务站点)",
        "description": ("Published stations (open or temporarily closed) as points, with "
                        "their amenities, the ten-ones checklist, opening hours and "
                        "open_now at request time. " + SAMPLE_CAVEAT),
        "links": [
            link(here, "self", JSON, "This collection"),
            link(f"{here}/items", "items", GEOJSON, "The stations as GeoJSON"),
            link(f"{here}/queryables", QUERYABLES_REL, SCHEMA_JSON,
                 "The properties the items can be filtered on"),
        ],
        "extent": extent_doc,
        "itemType": "feature",
        "crs": [CRS84],
    }


def collections(base: str, extent_doc: dict[str, Any]) -> dict[str, Any]:
    return {"links": [link(f"{base}/ogc/collections", "self", JSON, "This document")],
            "collections": [collection(base, extent_doc)]}


def queryables(base: str) -> dict[str, Any]:
    """JSON Schema of the filterable properties (Part 3); each is also a query parameter."""
    area = {"type": "string", "pattern": AREA_PATTERN}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/ogc/collections/{COLLECTION_ID}/queryables",
        "type": "object",
        "title": "Outdoor-worker rest stations",
        "description": "Each property may be given as a query parameter of the items "
                       "request; a feature matches when it equals the value.",
        "properties": {
            "geometry": {"format": "geometry-point", "x-ogc-role": "primary-geometry"},
            "status": {"title": "Status", "type": "string", "enum": list(PUBLISHED)},
            "host_type": {"title": "Host type", "type": "string",
                          "enum": [h.value for h in HostType]},
            "district_code": {"title": "District code (GB/T 2260)", **area},
            "city_code": {"title": "City code (GB/T 2260)", **area},
            "code": {"title": "Station code", "type": "string", "pattern": CODE_PATTERN,
                     "x-ogc-role": "id"},
            "ten_ones_count": {"title": "How many of the ten ones (十个一) it has",
                               "type": "integer", "minimum": 0, "maximum": 10},
            "amenity": {"title": "Has this amenity", "type": "string",
                        "enum": list(AMENITY_BY_CODE),
                        "description": "matches stations offering the amenity; not a "
                                       "feature property (features list `amenities`)"},
        },
        "additionalProperties": False,
    }


def paging(offset: int, limit: int, returned: int, matched: int) -> dict[str, int]:
    """Offsets of the ``next`` and ``prev`` pages, where there are such pages.

    ``next`` starts after the last feature returned: a page cut short by
    :func:`page_body` goes on from where it stopped.
    """
    out = {}
    if returned and offset + returned < matched:
        out["next"] = offset + returned
    if offset > 0:
        out["prev"] = max(0, min(offset, matched) - limit)
    return out


#: Fewer bytes than any published feature takes (one with no address and the shortest
#: name is ~2 KB, its seven deep links included): an items request reads no more rows
#: than ``max_bytes`` of them could fill.
MIN_FEATURE_BYTES = 1000


def rows_within(max_bytes: int) -> int:
    """How many rows a page of at most ``max_bytes`` could need."""
    return max(1, max_bytes // MIN_FEATURE_BYTES)


def page_body(rows: list[dict[str, Any]], head: dict[str, Any],
              links: Callable[[int], list[dict[str, str]]], max_bytes: int) -> tuple[bytes, int]:
    """The items document (``head``, then ``numberReturned``, features, ``links(n)``) with as
    many of ``rows`` as keep it within ``max_bytes``, and at least one; and that many.

    Blocking (tens of milliseconds per thousand features): run it in a thread.
    """
    # The links are longest with every row, or with one fewer (that may add a next link).
    tail = max(len(dumps(links(n))) for n in {len(rows), max(1, len(rows) - 1)})
    tail += len(b'],"links":}')
    start_len = len(dumps({**head, "numberReturned": len(rows)})) + len(b',"features":[')
    budget = max_bytes - tail - start_len
    parts: list[bytes] = []
    used = 0
    for feature in station_features(rows):
        encoded = dumps(feature)
        if parts and used + len(encoded) + 1 > budget:
            break
        parts.append(encoded)
        used += len(encoded) + 1
    n = len(parts)
    start = dumps({**head, "numberReturned": n})[:-1] + b',"features":['
    return start + b",".join(parts) + b'],"links":' + dumps(links(n)) + b"}", n
