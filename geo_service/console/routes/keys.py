"""The console's API keys page (admins): the keys of the admin's area and below;
issue one (its token shown once), revoke one, rotate one with a grace period."""

from __future__ import annotations

from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from geo_service.console import http as web
from geo_service.console.http import FormText, RowId
from geo_service.console.keys_pages import keys_page
from geo_service.console.pages import t
from geo_service.domain import accounts, auth
from geo_service.domain.errors import GeoServiceError
from geo_service.web.deps import SettingsDep, SyncConnDep

router = APIRouter(prefix="/console", include_in_schema=False)


def _page(request: Request, conn: Any, session: accounts.Session, status: int = 200, *,
          message: str | None = None, error: str | None = None) -> HTMLResponse:
    p = session.principal
    tz = ZoneInfo(request.app.state.settings.default_timezone)
    return web.html(keys_page(
        web.lang(request), session.csrf, who=session.display_name,
        keys=auth.list_keys(conn, p), areas=web.areas_within(conn, p.area_code),
        own_area=p.area_code, tz=tz, message=message, error=error), status)


def _shown_once(request: Request, token: str, key: dict[str, Any]) -> str:
    return (t(web.lang(request), "key_once", name=key["name"])
            + f' <code class="secret">{escape(token)}</code>')


@router.get("/keys", response_class=HTMLResponse)
def keys_list(request: Request, conn: SyncConnDep, settings: SettingsDep) -> Response:
    session = web.admin_session(request, conn, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    return _page(request, conn, session)


@router.post("/keys")
def keys_issue(request: Request, conn: SyncConnDep, settings: SettingsDep,
               name: FormText = "", role: FormText = "", area_code: FormText = "",
               expires_in: FormText = "", csrf_token: FormText = "") -> Response:
    """A new key within the admin's area; the token is on this answer and nowhere else."""
    session = web.admin_session(request, conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    try:
        token, key = auth.issue_key(
            conn, name=name.strip(), role=role, area_code=area_code or None,
            expires_in=auth.parse_duration(expires_in, "expires_in") if expires_in else None,
            principal=session.principal)
    except GeoServiceError as exc:
        return _page(request, conn, session, exc.status, error=web.problem(exc))
    return _page(request, conn, session, 201, message=_shown_once(request, token, key))


@router.post("/keys/{key_id}/revoke")
def keys_revoke(request: Request, conn: SyncConnDep, settings: SettingsDep, key_id: RowId,
                csrf_token: FormText = "") -> Response:
    session = web.admin_session(request, conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    try:
        key = auth.revoke_key(conn, key_id, session.principal)
    except GeoServiceError as exc:
        return _page(request, conn, session, exc.status, error=web.problem(exc))
    return _page(request, conn, session,
                 message=t(web.lang(request), "done_revoke", name=key["name"]))


@router.post("/keys/{key_id}/rotate")
def keys_rotate(request: Request, conn: SyncConnDep, settings: SettingsDep, key_id: RowId,
                grace: FormText = "0m", csrf_token: FormText = "") -> Response:
    """A replacement key (shown once); the old one stops after ``grace``."""
    session = web.admin_session(request, conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    try:
        token, key = auth.rotate_key(conn, key_id, session.principal,
                                     auth.parse_duration(grace, "grace"))
    except GeoServiceError as exc:
        return _page(request, conn, session, exc.status, error=web.problem(exc))
    return _page(request, conn, session, message=_shown_once(request, token, key))
