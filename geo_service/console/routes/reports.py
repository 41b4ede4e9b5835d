"""The console's worker-reports queue (editors and admins, as ``/v1/reports``).

Who may see and decide reports is the API's rule: an editor or an admin, limited to
their area and everything below it; an inspector may not (the API's ``Editor``
dependency). Decisions go through :func:`geo_service.operations.reports.decide_reports`,
i.e. the API's ``resolve_report`` for each report of a row, audited under the person.

These routes are async, unlike the other console pages: the reports service runs on the
async pool. The session (and its CSRF check) still runs on the sync pool in a worker
thread, as every console page's does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from psycopg import AsyncConnection
from pydantic import ValidationError

from geo_service.console import http as web
from geo_service.console.http import FormText
from geo_service.console.reports_pages import STATUSES, done_message, reports_page
from geo_service.domain import accounts
from geo_service.domain.errors import GeoServiceError, InvalidInput, invalid
from geo_service.domain.models import REPORT_KINDS
from geo_service.infra.settings import Settings
from geo_service.operations import reports
from geo_service.operations.schemas import ResolutionIn
from geo_service.web.deps import ConnDep, SettingsDep, SyncConnDep

router = APIRouter(prefix="/console", include_in_schema=False)
#: Reports per page of the queue (grouped after paging, so a row may continue on the next).
PAGE = 200
#: The most reports one row's form may decide at once.
MAX_ROW = PAGE


def _filters(status: str, kind: str) -> tuple[str, str | None]:
    """The queue's filters from the query or the form; a value not offered is a 422 naming
    its field."""
    if status not in STATUSES:
        raise invalid("status", f"must be one of {', '.join(STATUSES)}")
    if kind and kind not in REPORT_KINDS:
        raise invalid("kind", f"must be one of {', '.join(REPORT_KINDS)}")
    return status, kind or None


def _items(values: list[str], action: str, note: str) -> tuple[list[tuple[int, int]],
                                                                str, str | None]:
    """The form's ``report`` values (``id:version``), action and note, checked by the
    API's own body model (:class:`ResolutionIn`), so the console accepts what it does."""
    if not values:
        raise invalid("report", "no report given")
    if len(values) > MAX_ROW:
        raise invalid("report", f"at most {MAX_ROW} at once")
    items = []
    checked: ResolutionIn | None = None
    for value in values:
        rid, _, version = value.partition(":")
        if not (rid.isdigit() and version.isdigit() and 1 <= int(rid) <= 2**63 - 1):
            raise invalid("report", f"{value[:40]!r} is not id:version")
        try:
            checked = ResolutionIn(action=action, note=note or None,
                                   version=int(version))
        except ValidationError as exc:
            err = exc.errors()[0]
            raise invalid(str(err["loc"][0]), err["msg"]) from None
        items.append((int(rid), checked.version))
    assert checked is not None
    return items, checked.action, checked.note


async def _session(request: Request, conn: Any, settings: Settings,
                   csrf_token: str | None) -> accounts.Session | Response:
    return await run_in_threadpool(web.role_session, request, conn, settings, csrf_token,
                                   "admin", "editor")


async def _page(request: Request, conn: AsyncConnection[Any], settings: Settings,
                session: accounts.Session, status: str, kind: str | None,
                cursor: str | None = None, code: int = 200, *,
                message: str | None = None, error: str | None = None) -> HTMLResponse:
    queue = await reports.report_groups(conn, settings, session.principal, status=status,
                                        kind=kind, limit=PAGE, cursor=cursor)
    p = session.principal
    return web.html(reports_page(
        web.lang(request), session.csrf, who=session.display_name, admin=p.role == "admin",
        queue=queue, status=status, kind=kind, tz=settings.default_timezone,
        dedup_minutes=settings.checkin_dedup_minutes, message=message, error=error), code)


@router.get("/reports", response_class=HTMLResponse)
async def reports_list(request: Request, conn: ConnDep, sync_conn: SyncConnDep,
                       settings: SettingsDep, status: str = "open", kind: str = "",
                       cursor: str = "") -> Response:
    """The queue of the person's area, filtered by status (open first) and kind."""
    session = await _session(request, sync_conn, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    try:
        st, kd = _filters(status, kind)
        return await _page(request, conn, settings, session, st, kd, cursor or None)
    except GeoServiceError as exc:
        return await _page(request, conn, settings, session, "open", None, code=exc.status,
                           error=web.problem(exc))


@router.post("/reports/decide")
async def reports_decide(
        request: Request, conn: ConnDep, sync_conn: SyncConnDep, settings: SettingsDep,
        report: Annotated[list[str] | None, Form(max_length=MAX_ROW + 1)] = None,
        action: FormText = "", note: FormText = "", status: FormText = "open",
        kind: FormText = "", csrf_token: FormText = "") -> Response:
    """Resolve, reject or reopen every report of one row with one note, all or none."""
    session = await _session(request, sync_conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    lang = web.lang(request)
    try:
        st, kd = _filters(status, kind)
    except InvalidInput:
        st, kd = "open", None
    try:
        items, act, text = _items(report or [], action, note)
        await reports.decide_reports(conn, settings, session.principal, items, act, text)
    except GeoServiceError as exc:
        return await _page(request, conn, settings, session, st, kd, code=exc.status,
                           error=web.problem(exc))
    return await _page(request, conn, settings, session, st, kd,
                       message=done_message(lang, act, len(items)))
