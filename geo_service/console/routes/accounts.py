"""The console's accounts page: an admin lists, creates, disables and resets the
accounts of its own area and the areas below it (another area's account is a 404)."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from geo_service.console import http as web
from geo_service.console import pages
from geo_service.console.http import FormText, RowId
from geo_service.console.pages import t
from geo_service.domain import accounts
from geo_service.domain.errors import GeoServiceError
from geo_service.web.deps import SettingsDep, SyncConnDep

router = APIRouter(prefix="/console", include_in_schema=False)



def _accounts_page(request: Request, conn: Any, session: accounts.Session, status: int = 200,
                   *, message: str | None = None, error: str | None = None) -> HTMLResponse:
    p = session.principal
    return web.html(pages.accounts_page(
        web.lang(request), session.csrf, who=session.display_name,
        users=accounts.list_users(conn, p), areas=web.areas_within(conn, p.area_code),
        own_id=p.user_id,
        own_area=p.area_code, message=message, error=error), status)


@router.get("/accounts", response_class=HTMLResponse)
def accounts_list(request: Request, conn: SyncConnDep, settings: SettingsDep) -> Response:
    session = web.admin_session(request, conn, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    return _accounts_page(request, conn, session)


@router.post("/accounts")
def accounts_create(request: Request, conn: SyncConnDep, settings: SettingsDep,
                    name: FormText = "", display_name: FormText = "", role: FormText = "",
                    area_code: FormText = "", password: FormText = "",
                    csrf_token: FormText = "") -> Response:
    """A new account in the admin's own area or below (refused, with the reason, outside)."""
    session = web.admin_session(request, conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    try:
        user = accounts.create_user(conn, name=name.strip(), role=role, password=password,
                                    display_name=display_name.strip() or None,
                                    area_code=area_code or None,
                                    principal=session.principal)
    except GeoServiceError as exc:
        return _accounts_page(request, conn, session, exc.status, error=web.problem(exc))
    return _accounts_page(request, conn, session, 201,
                          message=t(web.lang(request), "created", name=user["name"]))


@router.post("/accounts/{user_id}/disable")
def accounts_disable(request: Request, conn: SyncConnDep, settings: SettingsDep,
                     user_id: RowId, csrf_token: FormText = "") -> Response:
    session = web.admin_session(request, conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    try:
        user = accounts.disable_user(conn, user_id, session.principal)
    except GeoServiceError as exc:
        return _accounts_page(request, conn, session, exc.status, error=web.problem(exc))
    return _accounts_page(request, conn, session,
                          message=t(web.lang(request), "done_disable", name=user["name"]))


@router.post("/accounts/{user_id}/reset-password")
def accounts_reset(request: Request, conn: SyncConnDep, settings: SettingsDep,
                   user_id: RowId, csrf_token: FormText = "") -> Response:
    """A one-time password, shown once on this page; the account's sessions end."""
    session = web.admin_session(request, conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    try:
        password, user = accounts.reset_password(conn, user_id, session.principal)
    except GeoServiceError as exc:
        return _accounts_page(request, conn, session, exc.status, error=web.problem(exc))
    note = (t(web.lang(request), "one_time", name=user["name"])
            + f' <code class="secret">{escape(password)}</code>')
    return _accounts_page(request, conn, session, message=note)
