"""The exception handlers: every error answer is JSON naming the field and the problem.

The errors themselves are plain exceptions (:mod:`geo_service.domain.errors`), raised
by code that knows nothing of HTTP; this module is the one place they become answers.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo_service.domain.errors import (
    MAX_FIELD_CHARS,
    MAX_FIELDS,
    MAX_MESSAGE_CHARS,
    ErrorBody,
    ErrorDetail,
    FieldProblem,
    GeoServiceError,
    InvalidInput,
    RateLimited,
    ServiceUnavailable,
    clip,
)
from geo_service.web.responses import JSONResponse

log = logging.getLogger(__name__)
_BACKGROUND: set[asyncio.Task[None]] = set()


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def allowed_methods(request: Request, given: str | None = None) -> list[str]:
    """Every method the API documents at this path (plus those Starlette named).

    Starlette answers 405 from the first route whose path matches and lists only its
    methods, so ``GET`` and ``PUT`` on one path from two routes told a client only one.
    The table of path patterns is built once per app from its OpenAPI document.
    """
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(
        request.app.state, "allowed_methods", None)
    if table is None:
        table = []
        for path, item in request.app.openapi().get("paths", {}).items():
            parts = re.split(r"\{[^}]+\}", path)
            regex = "[^/]+".join(re.escape(part) for part in parts)
            table.append((re.compile(f"^{regex}$"), {m.upper() for m in item}))
        request.app.state.allowed_methods = table
    methods = {m.strip() for m in (given or "").split(",") if m.strip()}
    matches = [(compiled, found) for compiled, found in table if compiled.match(request.url.path)]
    # A literal path (/v1/stations/nearest) is documented apart from the template it also
    # fits (/v1/stations/{code}); a client reads the literal one's methods.
    literal = [found for compiled, found in matches if "[^/]+" not in compiled.pattern]
    for served in literal or [found for _compiled, found in matches]:
        methods |= served
    return sorted(methods)


def install_handlers(app: FastAPI) -> None:
    """Register the exception → response mapping on ``app``."""

    @app.exception_handler(GeoServiceError)
    async def _geo(request: Request, exc: GeoServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = []
        for err in exc.errors()[:MAX_FIELDS]:
            msg = clip(err.get("msg", "invalid"), MAX_MESSAGE_CHARS)
            fields.append((clip(_loc_to_field(err.get("loc", ())), MAX_FIELD_CHARS), msg))
        summary = "; ".join(f"{f}: {p}" for f, p in fields[:5])
        return JSONResponse(InvalidInput(summary, fields).body(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            allow = allowed_methods(request, (headers or {}).get("Allow"))
            headers = {**(headers or {}), "Allow": ", ".join(allow)}
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        # FastAPI's own 400s are bodies it could not parse (bad JSON or multipart,
        # JSON nested past the recursion limit): name the body.
        fields = [FieldProblem(field="body", problem=str(exc.detail))] \
            if exc.status_code == 400 else []
        body = ErrorBody(error=ErrorDetail(code=code, message=clip(exc.detail, MAX_MESSAGE_CHARS),
                                           fields=fields))
        return JSONResponse(
            body.model_dump(exclude_none=True), status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        from psycopg import OperationalError
        from psycopg_pool import PoolTimeout

        if isinstance(exc, OperationalError | PoolTimeout):
            log.warning("database unavailable on %s: %s", request.url.path, exc)
            pool = getattr(request.app.state, "pool", None)
            if pool is not None:  # heal the pool in the background: drop dead connections
                task = asyncio.create_task(pool.check())
                _BACKGROUND.add(task)
                task.add_done_callback(_BACKGROUND.discard)
            err: GeoServiceError = ServiceUnavailable("the database is not answering; retry later")
            return JSONResponse(err.body(), status_code=503, headers={"Retry-After": "5"})
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = ErrorBody(error=ErrorDetail(code="internal", message="internal error"))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=500)
