"""The published OpenAPI document, tidied where FastAPI's says more than the API does.

Schemathesis checks that every request the schema allows is accepted. FastAPI
writes an optional header or query parameter typed ``str | None`` as
``anyOf: [string, null]``, but a header or a query string cannot carry a JSON
null: a fuzzer then sends the text ``null`` (``If-Match: null``), which the
parameter's own pattern refuses. An absent parameter is how a client says
"none", so the null branch is dropped from those parameters.

Caps that settings own (``GEO_MAX_K``…) are checked in the handlers and
written into the document here from the running settings, so the schema
states the caps this server enforces, and raising one in settings raises it
in both.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from geo_service.infra.settings import Settings

#: (path, query parameter) → the settings field that caps it.
SETTINGS_CAPS = {
    ("/v1/stations/nearest", "k"): "max_k",
    ("/v1/stations/nearest", "radius_m"): "max_radius_m",
    ("/v1/stations", "limit"): "max_page_size",
    ("/v1/reports", "limit"): "max_page_size",
}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [b for b in branches if b != {"type": "null"}]
    if len(kept) == len(branches):
        return schema
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    if schema.get("default") is not None:
        rest["default"] = schema["default"]
    return {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}


def tidy(document: dict[str, Any]) -> dict[str, Any]:
    """Drop the null branch of every header and query parameter (in place)."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for param in operation.get("parameters", []):
                if param.get("in") in ("header", "query") and "schema" in param:
                    param["schema"] = _without_null(param["schema"])
    return document


def state_caps(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write the settings' caps as ``maximum`` on the parameters they cap (in place)."""
    for (path, name), field in SETTINGS_CAPS.items():
        for param in document["paths"][path]["get"].get("parameters", []):
            if param["name"] == name:
                param["schema"]["maximum"] = getattr(settings, field)
    return document


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the tidied document at ``/openapi.json`` (built once, on first request)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = state_caps(tidy(build()), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
