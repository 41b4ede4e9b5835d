"""The console's sign-in, home, sign-out (here or everywhere) and password pages."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg.rows import dict_row

from geo_service.console import http as web
from geo_service.console import pages
from geo_service.console.http import FormText
from geo_service.console.pages import t
from geo_service.domain import accounts
from geo_service.domain.errors import GeoServiceError, RateLimited
from geo_service.infra.settings import Settings
from geo_service.web.deps import SettingsDep, SyncConnDep

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def console_home(request: Request, conn: SyncConnDep, settings: SettingsDep) -> Response:
    session = web.current_session(request, conn, settings)
    if session is None:
        signed_out = request.query_params.get("signed_out") == "1"
        return web.sign_in_form(request, settings, message=t(web.lang(request), "signed_out")
                             if signed_out else None)
    p = session.principal
    area = None
    if p.area_code is not None:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT code, name, name_en, sample FROM admin_area WHERE code = %s",
                        (p.area_code,))
            area = cur.fetchone()
    lang = web.lang(request)
    return web.html(pages.home_page(lang, session.csrf, who=session.display_name, role=p.role,
                                 area=pages.area_label(lang, area, p.area_code),
                                 ends=session.expires_at.astimezone(
                                     ZoneInfo(settings.default_timezone)),
                                 admin=p.role == "admin"))


@router.post("/sign-in")
def sign_in(request: Request, conn: SyncConnDep, settings: SettingsDep, name: FormText = "",
            password: FormText = "", csrf_token: FormText = "") -> Response:
    """A new session for a right name and password; a cookie planted before is replaced."""
    forged = web.forged(request, settings, request.cookies.get(web.PRE_COOKIE), csrf_token)
    if forged is not None:
        return forged
    lang = web.lang(request)
    try:
        token = accounts.sign_in(conn, name=name, password=password,
                                 client=web.client(request, settings), policy=web.policy(settings))
    except RateLimited:
        return web.sign_in_form(request, settings, 429, name=name, error=(
            "此地址登录失败次数过多，请稍后再试。" if lang == "zh" else
            "Too many failed sign-ins from this address: try again later."))
    except accounts.SignInRefused:
        return web.sign_in_form(request, settings, 401, name=name, error=(
            "账号或密码错误，或账号暂时被锁定。" if lang == "zh" else
            "Wrong name or password, or the account is locked for a while."))
    response = web.home_redirect(request)
    web.cookie(response, request, settings, web.COOKIE, token)
    web.cookie(response, request, settings, web.PRE_COOKIE, None)
    return response


def _sign_out(request: Request, conn: Any, settings: Settings, csrf_token: str,
              everywhere: bool) -> Response:
    session = web.current_session(request, conn, settings)
    if session is None:
        return web.signed_out(request, settings)
    forged = web.forged(request, settings, session.csrf, csrf_token)
    if forged is not None:
        return forged
    accounts.sign_out(conn, session, everywhere=everywhere)
    response = RedirectResponse("/console/?signed_out=1" + (
        "&lang=en" if web.lang(request) == "en" else ""), 303)
    web.cookie(response, request, settings, web.COOKIE, None)
    return response


@router.post("/sign-out")
def sign_out(request: Request, conn: SyncConnDep, settings: SettingsDep,
             csrf_token: FormText = "") -> Response:
    return _sign_out(request, conn, settings, csrf_token, everywhere=False)


@router.post("/sign-out-everywhere")
def sign_out_everywhere(request: Request, conn: SyncConnDep, settings: SettingsDep,
                        csrf_token: FormText = "") -> Response:
    """Ends every session of the account, on every device."""
    return _sign_out(request, conn, settings, csrf_token, everywhere=True)


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request, conn: SyncConnDep, settings: SettingsDep) -> Response:
    session = web.current_session(request, conn, settings)
    if session is None:
        return web.signed_out(request, settings)
    return web.html(pages.password_page(web.lang(request), session.csrf, who=session.display_name,
                                     admin=session.principal.role == "admin",
                                     editor=session.principal.role == "editor"))


@router.post("/password")
def change_password(request: Request, conn: SyncConnDep, settings: SettingsDep,
                    current_password: FormText = "", new_password: FormText = "",
                    csrf_token: FormText = "") -> Response:
    """The person's own password: the current one first; the other sessions end."""
    session = web.current_session(request, conn, settings)
    if session is None:
        return web.signed_out(request, settings)
    forged = web.forged(request, settings, session.csrf, csrf_token)
    if forged is not None:
        return forged
    lang, status, message, error = web.lang(request), 200, None, None
    try:
        accounts.change_password(conn, session, current_password, new_password)
        message = t(lang, "password_changed")
    except GeoServiceError as exc:
        status, error = exc.status, web.problem(exc)
    return web.html(pages.password_page(lang, session.csrf, who=session.display_name,
                                     admin=session.principal.role == "admin",
                                     editor=session.principal.role == "editor",
                                     message=message, error=error), status)
