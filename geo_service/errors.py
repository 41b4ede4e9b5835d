"""Errors a client can cause, mapped to HTTP status codes in one place.

Handlers never leak database or stack details: those go to the log, and the
client gets a JSON body that names the field and the problem.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo_service.responses import JSONResponse

log = logging.getLogger(__name__)
_BACKGROUND: set[asyncio.Task[None]] = set()

#: Bounds of every error body, whatever a handler put in it: a client's input is
#: never echoed back at full length (a 100 MiB XLSX header cell once came back whole).
MAX_MESSAGE_CHARS = 1000
MAX_FIELD_CHARS = 200
MAX_FIELDS = 100


def clip(value: object, limit: int = 80) -> str:
    """``value`` as text of at most about ``limit`` characters, saying how long it was.

    Use it wherever an error message repeats what the client sent.

    >>> clip("x" * 100, 10)
    'xxxxxxxxxx… (100 characters)'
    """
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


class FieldProblem(BaseModel):
    """One thing wrong with one input field."""

    field: str
    problem: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldProblem] = []
    current_version: int | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer has this shape; a refused import also carries its report."""

    error: ErrorDetail
    report: dict[str, Any] | None = None


@dataclass
class GeoServiceError(Exception):
    """Base of the errors a request can end with; subclasses fix the status."""

    message: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    current_version: int | None = None
    report: dict[str, Any] | None = None

    status = 400
    code = "bad_request"

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        fields = [FieldProblem(field=clip(f, MAX_FIELD_CHARS), problem=clip(p, MAX_MESSAGE_CHARS))
                  for f, p in self.fields[:MAX_FIELDS]]
        detail = ErrorDetail(
            code=self.code,
            message=clip(self.message, MAX_MESSAGE_CHARS),
            fields=fields,
            current_version=self.current_version,
        )
        return ErrorBody(error=detail, report=self.report).model_dump(exclude_none=True)


def invalid(field_name: str, problem: str) -> InvalidInput:
    """Shorthand for the most common error: one bad field."""
    return InvalidInput(f"{field_name}: {problem}", [(field_name, problem)])


class InvalidInput(GeoServiceError):
    status = 422
    code = "invalid_input"


class NotFound(GeoServiceError):
    status = 404
    code = "not_found"


class VersionConflict(GeoServiceError):
    """The edit was based on an older version than the stored one (body ``version``)."""

    status = 409
    code = "version_conflict"


class AlreadyExists(GeoServiceError):
    status = 409
    code = "already_exists"


class StateConflict(GeoServiceError):
    """The request is well formed but the resource's state does not allow it (409)."""

    status = 409
    code = "state_conflict"


class PreconditionFailed(GeoServiceError):
    """``If-Match`` named a version that is no longer current."""

    status = 412
    code = "precondition_failed"


class PreconditionRequired(GeoServiceError):
    status = 428
    code = "precondition_required"


class Unauthorized(GeoServiceError):
    status = 401
    code = "unauthorized"


class Forbidden(GeoServiceError):
    status = 403
    code = "forbidden"


class PayloadTooLarge(GeoServiceError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(GeoServiceError):
    """A body the endpoint does not take (a keyless write must be JSON: see
    ``deps.same_site_write``)."""

    status = 415
    code = "unsupported_media_type"


class RateLimited(GeoServiceError):
    """Too many requests from one client; ``retry_after`` seconds go in ``Retry-After``."""

    status = 429
    code = "rate_limited"
    retry_after: int = 60


class Busy(RateLimited):
    """The process is already doing as much of this work as it does at once (429)."""

    code = "busy"
    retry_after = 5


class ServiceUnavailable(GeoServiceError):
    status = 503
    code = "service_unavailable"


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": desc}
    for status, desc in (
        (400, "Bad request"),
        (413, "Request too large"),
        (422, "Invalid input: the body names each field and its problem"),
        (503, "Database unavailable"),
    )
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    **{
        status: {"model": ErrorBody, "description": desc}
        for status, desc in (
            (401, "Missing or unknown API key"),
            (403, "Key lacks the role or the area"),
            (404, "No such station"),
            (409, "Version conflict or code already exists"),
            (412, "If-Match version is stale"),
            (428, "A version (If-Match or body) is required"),
        )
    },
}


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
