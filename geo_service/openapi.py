"""The published OpenAPI document, tidied where FastAPI's says more than the API does.

Schemathesis checks that every request the schema allows is accepted. FastAPI
writes an optional header or query parameter typed ``str | None`` as
``anyOf: [string, null]``, but a header or a query string cannot carry a JSON
null: a fuzzer then sends the text ``null`` (``If-Match: null``), which the
parameter's own pattern refuses. An absent parameter is how a client says
"none", so the null branch is dropped from those parameters.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


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


def install(app: FastAPI) -> None:
    """Serve the tidied document at ``/openapi.json`` (built once, on first request)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = tidy(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
