"""JSON Schemas (draft 2020-12) of our own feeds, published at ``/v1/feeds/schemas/{name}.json``.

Consumers validate what they ingest against these, and the test suite
validates every feed against them with the ``jsonschema`` library, so a field
added to a feed without its schema (or the reverse) fails a test.
"""

from __future__ import annotations

from typing import Any

from geo_service.domain.catalogue import AMENITY_BY_CODE, HostType, Status
from geo_service.domain.links import LINK_KINDS

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_DATE_OR_NULL = {"type": ["string", "null"], "format": "date"}

_POINT = {
    "type": "object", "required": ["type", "coordinates"], "additionalProperties": False,
    "properties": {
        "type": {"const": "Point"},
        "coordinates": {"type": "array", "minItems": 2, "maxItems": 2, "prefixItems": [
            {"type": "number", "minimum": -180, "maximum": 180},
            {"type": "number", "minimum": -90, "maximum": 90}]},
    },
}

_AMENITY = {
    "type": "object", "required": ["code", "label_zh", "label_en", "ten_ones"],
    "additionalProperties": False,
    "properties": {"code": {"enum": sorted(AMENITY_BY_CODE)}, "label_zh": _STR,
                   "label_en": _STR, "ten_ones": {"type": "boolean"}},
}

_LINKS = {
    "type": "object", "required": list(LINK_KINDS), "additionalProperties": False,
    "properties": {k: {"type": "string", "format": "uri"} for k in LINK_KINDS},
}

_PROPERTIES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "code": _STR, "name": _STR, "name_en": _NSTR, "address": _NSTR,
        "province_code": _NSTR, "city_code": _NSTR, "district": _NSTR,
        "district_code": _NSTR, "phone": _NSTR,
        "host_type": {"enum": [h.value for h in HostType]},
        "status": {"enum": ["open", "temporarily_closed"]},
        "opening_hours": {"type": ["string", "null"],
                          "description": "OpenStreetMap opening_hours syntax; null when the "
                                         "hours are unknown (open_now is then null too)"},
        "timezone": _STR,
        "official_workdays": {
            "type": ["boolean", "null"],
            "description": "follows make-up working days (调休上班) and official days off; "
                           "null = the host type's default (on for bank_branch, "
                           "party_service_centre, union_built)"},
        "open_now": {"type": ["boolean", "null"],
                     "description": "open at the feed's open_now_at; null when the hours "
                                    "cannot tell"},
        "amenities": {"type": "array", "items": {"$ref": "#/$defs/amenity"}},
        "ten_ones_count": {"type": "integer", "minimum": 0, "maximum": 10},
        "ten_ones_missing": {"type": "array", "items": _STR},
        "last_verified_on": _DATE_OR_NULL,
        "updated_at": _TIME,
        "version": {"type": "integer", "minimum": 1},
        "sample": {"type": "boolean", "description": "true for SAMPLE DATA, not a real station"},
        "links": {"$ref": "#/$defs/links"},
        "exterior_photo": {"type": ["string", "null"], "format": "uri",
                           "description": "the absolute URL of the station's exterior photo "
                                          "(外观图片, JPEG) on the service's public address "
                                          "(GEO_PUBLIC_BASE_URL); null when it has none or "
                                          "no public address is set"},
    },
}
_PROPERTIES["required"] = list(_PROPERTIES["properties"])  # type: ignore[call-overload]
# Only scheduled mobile stations carry these two.
_PROPERTIES["properties"].update({  # type: ignore[attr-defined]
    "stops": {"type": "array", "description": "a mobile station's schedule (WGS-84)",
              "items": {"type": "object", "additionalProperties": False,
                        "required": ["seq", "name", "lon", "lat", "opening_hours",
                                     "valid_from", "valid_to"],
                        "properties": {
                            "seq": {"type": "integer", "minimum": 1}, "name": _STR,
                            "lon": {"type": "number", "minimum": -180, "maximum": 180},
                            "lat": {"type": "number", "minimum": -90, "maximum": 90},
                            "opening_hours": _STR, "valid_from": _DATE_OR_NULL,
                            "valid_to": _DATE_OR_NULL}}},
    "current_stop": {"type": ["integer", "null"],
                     "description": "seq of the stop it is at, at open_now_at"},
})

_FEATURE = {
    "type": "object", "required": ["type", "id", "geometry", "properties"],
    "properties": {"type": {"const": "Feature"}, "id": _STR,
                   "geometry": {"$ref": "#/$defs/point"},
                   "properties": {"$ref": "#/$defs/properties"}},
}

_DEFS = {"point": _POINT, "amenity": _AMENITY, "links": _LINKS, "properties": _PROPERTIES,
         "feature": _FEATURE}

_STATIONS = {
    "title": "geo_service stations (GeoJSON FeatureCollection, RFC 7946)",
    "type": "object", "required": ["type", "features", "generated_at", "open_now_at"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "generated_at": _TIME, "open_now_at": _TIME, "note": _STR,
        "roads_extract_date": {"type": ["string", "null"], "format": "date",
                               "description": "date of the OpenStreetMap extract the road "
                                              "network was loaded from; null: none loaded"},
        "features": {"type": "array", "items": {"$ref": "#/$defs/feature"}},
    },
}

_CHANGES = {
    "title": "geo_service change feed page",
    "type": "object",
    "required": ["since", "next_cursor", "has_more", "count", "open_now_at", "changes"],
    "properties": {
        "since": _NSTR, "next_cursor": _STR, "has_more": {"type": "boolean"},
        "count": {"type": "integer", "minimum": 0}, "open_now_at": _TIME,
        "changes": {"type": "array", "items": {
            "type": "object",
            "required": ["seq", "op", "code", "version", "status", "updated_at", "deleted_at",
                         "feature"],
            "properties": {
                "seq": {"type": "integer", "minimum": 1},
                "op": {"enum": ["upsert", "delete"]},
                "code": _STR, "version": {"type": "integer", "minimum": 1},
                "status": {"enum": [s.value for s in Status]},
                "updated_at": _TIME, "deleted_at": {"type": ["string", "null"]},
                "feature": {"oneOf": [{"$ref": "#/$defs/feature"}, {"type": "null"}]},
            },
            "if": {"properties": {"op": {"const": "upsert"}}},
            "then": {"properties": {"feature": {"$ref": "#/$defs/feature"}}},
            "else": {"properties": {"feature": {"type": "null"}}},
        }},
    },
}


def _envelope(title: str, data: dict[str, Any]) -> dict[str, Any]:
    """GBFS-style envelope: last_updated, ttl, version, data."""
    return {
        "title": title, "type": "object",
        "required": ["last_updated", "ttl", "version", "data"],
        "properties": {"last_updated": _TIME, "ttl": {"type": "integer", "minimum": 0},
                       "version": _STR, "data": data},
    }


_STATUS = _envelope("geo_service station status", {
    "type": "object", "required": ["stations"],
    "properties": {"stations": {"type": "array", "items": {
        "type": "object", "additionalProperties": False,
        "required": ["code", "status", "open_now", "temporarily_closed", "version",
                     "updated_at"],
        "properties": {"code": _STR, "status": {"enum": ["open", "temporarily_closed"]},
                       "open_now": {"type": ["boolean", "null"]},
                       "temporarily_closed": {"type": "boolean"},
                       "version": {"type": "integer", "minimum": 1}, "updated_at": _TIME},
    }}},
})

_DISCOVERY = _envelope("geo_service feed discovery", {
    "type": "object", "required": ["feeds"],
    "properties": {"feeds": {"type": "array", "items": {
        "type": "object", "required": ["name", "url", "type"],
        "properties": {"name": _STR, "url": {"type": "string", "format": "uri"},
                       "type": _STR, "schema": {"type": "string", "format": "uri"},
                       "description": _STR},
    }}},
})

SCHEMAS: dict[str, dict[str, Any]] = {
    "stations": _STATIONS, "changes": _CHANGES, "station_status": _STATUS,
    "discovery": _DISCOVERY,
}


def feed_schema(name: str, url: str) -> dict[str, Any]:
    """The schema ``name`` as a standalone document whose ``$id`` is where it is served."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": url,
            **SCHEMAS[name], "$defs": _DEFS}
