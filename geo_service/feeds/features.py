"""Stations as GeoJSON features: one shape for every feed (GeoJSON, OGC items, change feed).

Pure functions over plain rows (dicts from :mod:`geo_service.feeds.queries`),
so the same feature comes out of a streamed national export, an OGC page and
a change-feed entry, and a consumer can move between them without mapping
fields. Coordinates are WGS-84 ``[lon, lat]`` (RFC 7946) with 7 decimals
(~1 cm); the deep links carry the per-platform coordinate systems.

Example
-------
>>> amenity_items(0b101)[1]["code"]
'microwave'
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from geo_service.domain.catalogue import AMENITIES, ten_ones_count, ten_ones_missing
from geo_service.domain.links import batch_links, station_links
from geo_service.feeds.queries import PUBLISHED

#: RFC 7946 foreign member naming the sample-data caveat on every feed.
SAMPLE_NOTE = "Stations with sample=true are SAMPLE DATA generated for demonstration."


#: One shared dict per amenity; a station's list refers to these (never mutated).
_ITEMS: tuple[tuple[int, dict[str, Any]], ...] = tuple(
    (a.bit, {"code": a.code, "label_zh": a.label_zh, "label_en": a.label_en,
             "ten_ones": a.ten_ones})
    for a in AMENITIES
)


def amenity_items(mask: int) -> list[dict[str, Any]]:
    """The amenities of a mask as codes with their zh/en labels, in catalogue order."""
    return [item for bit, item in _ITEMS if mask >> bit & 1]


def is_published(status: str) -> bool:
    """Whether a consumer should show a station with this status."""
    return status in PUBLISHED


def feature_properties(
    row: dict[str, Any], links: dict[str, str] | None = None
) -> dict[str, Any]:
    """The properties a consumer needs, from a feed row (see ``queries.FEED_COLUMNS``).

    ``links`` may be passed in when computed for a whole batch (:func:`station_features`).
    """
    mask = int(row["amenity_mask"])
    if links is None:
        links = station_links(row["code"], row["name"], row["lon"], row["lat"], row["address"])
    return {
        "code": row["code"],
        "name": row["name"],
        "name_en": row["name_en"],
        "address": row["address"],
        "province_code": row["province_code"],
        "city_code": row["city_code"],
        "district": row["district"],
        "district_code": row["district_code"],
        "phone": row["phone"],
        "host_type": row["host_type"],
        "status": row["status"],
        "opening_hours": row["opening_hours"],
        "timezone": row["timezone"],
        "official_workdays": row["official_workdays"],
        "open_now": row["open_now"],
        "amenities": amenity_items(mask),
        "ten_ones_count": ten_ones_count(mask),
        "ten_ones_missing": ten_ones_missing(mask),
        "last_verified_on": row["last_verified_on"],
        "updated_at": row["updated_at"],
        "version": row["version"],
        "sample": row["sample"],
        "links": links,
        "exterior_photo": row.get("exterior_photo"),
        **stop_properties(row.get("stops")),
    }


def stop_properties(stops: list[dict[str, Any]] | None) -> dict[str, Any]:
    """``stops`` and ``current_stop`` (its seq, or null) of a scheduled mobile station."""
    if not stops:
        return {}
    current = next((s["seq"] for s in stops if s["current"]), None)
    return {"stops": [{k: v for k, v in s.items() if k != "current"} for s in stops],
            "current_stop": current}


def station_feature(
    row: dict[str, Any], links: dict[str, str] | None = None
) -> dict[str, Any]:
    """One station as an RFC 7946 Feature with its code as ``id``."""
    return {
        "type": "Feature",
        "id": row["code"],
        "geometry": {"type": "Point",
                     "coordinates": [round(row["lon"], 7), round(row["lat"], 7)]},
        "properties": feature_properties(row, links),
    }


def station_features(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Features for a batch of rows, with the deep links converted in one array pass."""
    return [station_feature(r, links) for r, links in zip(rows, batch_links(rows), strict=True)]


def change_entry(row: dict[str, Any]) -> dict[str, Any]:
    """A change-feed entry: the station as it is now, or a tombstone when unpublished.

    Each station appears once, at its latest change (as CouchDB's ``_changes``
    does): a consumer that applies entries in order ends with the published set.
    """
    published = is_published(row["status"])
    return {
        "seq": row["change_seq"],
        "op": "upsert" if published else "delete",
        "code": row["code"],
        "version": row["version"],
        "status": row["status"],
        "updated_at": row["updated_at"],
        "deleted_at": row["deleted_at"],
        "feature": station_feature(row) if published else None,
    }


def utc_iso(value: dt.datetime) -> str:
    """RFC 3339 in UTC with a Z, the form feeds and GBFS use for ``last_updated``."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
