"""Errors a client can cause, mapped to HTTP status codes in one place.

Services, the command line and the import sheet raise these without knowing HTTP;
:mod:`geo_service.web.handlers` turns them into answers. Handlers never leak
database or stack details: those go to the log, and the client gets a JSON body
that names the field and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

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
