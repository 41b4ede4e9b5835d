"""HTTP for the staff console (issue 26): sign-in, home, password, accounts.

Server-rendered pages (:mod:`geo_service.console.pages`), kept out of the OpenAPI
document: they are for people, not machines. They run in the thread pool on the sync
pool's connection (one transaction per request, committed when the route returns), as
argon2 hashing is slow on purpose and must not hold the event loop.

Cookies
    ``geo_console`` holds the session token: HttpOnly, ``SameSite=Lax``, ``Path=/console``,
    ``Secure`` when the client reached us over HTTPS (directly, or by the
    ``X-Forwarded-Proto`` of a proxy in ``GEO_TRUSTED_PROXIES``). Lax rather than Strict:
    no GET of the console changes anything (every change is a POST with a CSRF token), so
    the cookie a top-level link carries gives another site nothing, while a link to the
    console from mail or chat opens it signed in. ``geo_console_pre`` carries the CSRF
    token of the sign-in form (double submit: there is no session yet to keep it in).

CSRF
    Every POST needs the form's ``csrf_token``: the session's secret (the signed-out
    sign-in form: the ``geo_console_pre`` cookie's value), compared in constant time; and
    an ``Origin``, when the browser sends one, of this service (the rule keyless writes
    follow, ``web.deps.own_origin``). Anything else is a 403 naming the problem, before any
    write.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from html import escape
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg.rows import dict_row

from geo_service.console import pages
from geo_service.console.pages import t
from geo_service.domain import accounts
from geo_service.domain.auth import require_role
from geo_service.domain.errors import GeoServiceError, RateLimited
from geo_service.infra.settings import Settings
from geo_service.operations.common import client_address, client_group, client_https
from geo_service.web.deps import SettingsDep, SyncConnDep, own_origin
from geo_service.web.security_headers import STRICT_CSP

router = APIRouter(prefix="/console", include_in_schema=False)
COOKIE = "geo_console"
PRE_COOKIE = "geo_console_pre"
FormText = Annotated[str, Form(max_length=2000)]
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]
_AREAS = """
SELECT code, name, name_en, level, sample FROM admin_area
WHERE %(scope)s::text IS NULL OR geo_area_within(code, %(scope)s)
ORDER BY code
"""


def policy(settings: Settings) -> accounts.Policy:
    """The ``GEO_CONSOLE_*`` settings as the accounts module takes them."""
    return accounts.Policy(
        idle=dt.timedelta(minutes=settings.console_idle_minutes),
        lifetime=dt.timedelta(hours=settings.console_session_hours),
        lockout_failures=settings.console_lockout_failures,
        lockout=dt.timedelta(minutes=settings.console_lockout_minutes),
        client_failures=settings.console_client_failures,
        client_window=dt.timedelta(minutes=settings.console_client_window_minutes))


def _lang(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "zh"


def _peer(request: Request) -> str:
    return request.client.host if request.client else ""


def _client(request: Request, settings: Settings) -> str:
    address = client_address(_peer(request), request.headers.getlist("x-forwarded-for"),
                             settings)
    return client_group(address, settings.ipv6_prefix)


def _html(body: str, status: int = 200) -> HTMLResponse:
    """A console page: never cached, no script, and ``Referrer-Policy: same-origin``
    instead of the service's ``no-referrer``: under ``no-referrer`` Chromium sends its
    forms' POSTs with ``Origin: null``, which the Origin rule must refuse; same-origin
    still tells other sites nothing."""
    return HTMLResponse(body, status, headers={"Cache-Control": "no-store",
                                                "Content-Security-Policy": STRICT_CSP,
                                                "Referrer-Policy": "same-origin"})


def _cookie(response: Response, request: Request, settings: Settings, name: str,
            value: str | None) -> None:
    """Set (or, with None, delete) a console cookie with the flags of the module docstring."""
    secure = client_https(request.url.scheme, _peer(request),
                          request.headers.getlist("x-forwarded-proto"), settings)
    if value is None:
        response.delete_cookie(name, path="/console", secure=secure, httponly=True,
                               samesite="lax")
    else:
        response.set_cookie(name, value, path="/console", secure=secure, httponly=True,
                            samesite="lax")


def _sign_in_form(request: Request, settings: Settings, status: int = 200, *,
                  name: str = "", message: str | None = None,
                  error: str | None = None) -> HTMLResponse:
    """The sign-in page, with its CSRF token (the visitor's, or a new one)."""
    pre = request.cookies.get(PRE_COOKIE, "")
    if not 30 <= len(pre) <= 64:
        pre = secrets.token_urlsafe(32)
    response = _html(pages.sign_in_page(_lang(request), pre, name=name, message=message,
                                        error=error), status)
    _cookie(response, request, settings, PRE_COOKIE, pre)
    return response


def _home(request: Request) -> RedirectResponse:
    return RedirectResponse("/console/" + ("?lang=en" if _lang(request) == "en" else ""), 303)


def _refused(request: Request, status: int, message: str) -> HTMLResponse:
    return _html(pages.error_page(_lang(request), message), status)


def _forged(request: Request, settings: Settings, expected: str | None,
            sent: str) -> HTMLResponse | None:
    """A 403 page naming what is wrong with a POST's Origin or CSRF token, or None."""
    origin = request.headers.get("origin")
    if origin is not None and not own_origin(request, settings, origin):
        return _refused(request, 403, "refused: Origin is not this service (csrf)")
    if not sent:
        return _refused(request, 403, "refused: csrf_token is missing from the form")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        return _refused(request, 403, "refused: csrf_token is wrong or out of date; "
                                      "reload the page and try again")
    return None


def _session(request: Request, conn: Any, settings: Settings) -> accounts.Session | None:
    return accounts.session_for(conn, request.cookies.get(COOKIE), policy(settings))


def _signed_out(request: Request, settings: Settings) -> Response:
    """A request that needs a session without one: GETs go to the sign-in page."""
    if request.method == "GET":
        return _home(request)
    return _sign_in_form(request, settings, 401, error=t(_lang(request), "signed_out"))


@router.get("/", response_class=HTMLResponse)
def console_home(request: Request, conn: SyncConnDep, settings: SettingsDep) -> Response:
    session = _session(request, conn, settings)
    if session is None:
        signed_out = request.query_params.get("signed_out") == "1"
        return _sign_in_form(request, settings, message=t(_lang(request), "signed_out")
                             if signed_out else None)
    p = session.principal
    area = None
    if p.area_code is not None:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT code, name, name_en, sample FROM admin_area WHERE code = %s",
                        (p.area_code,))
            area = cur.fetchone()
    lang = _lang(request)
    return _html(pages.home_page(lang, session.csrf, who=session.display_name, role=p.role,
                                 area=pages.area_label(lang, area, p.area_code),
                                 ends=session.expires_at.astimezone(
                                     ZoneInfo(settings.default_timezone)),
                                 admin=p.role == "admin"))


@router.post("/sign-in")
def sign_in(request: Request, conn: SyncConnDep, settings: SettingsDep, name: FormText = "",
            password: FormText = "", csrf_token: FormText = "") -> Response:
    """A new session for a right name and password; a cookie planted before is replaced."""
    forged = _forged(request, settings, request.cookies.get(PRE_COOKIE), csrf_token)
    if forged is not None:
        return forged
    lang = _lang(request)
    try:
        token = accounts.sign_in(conn, name=name, password=password,
                                 client=_client(request, settings), policy=policy(settings))
    except RateLimited:
        return _sign_in_form(request, settings, 429, name=name, error=(
            "此地址登录失败次数过多，请稍后再试。" if lang == "zh" else
            "Too many failed sign-ins from this address: try again later."))
    except accounts.SignInRefused:
        return _sign_in_form(request, settings, 401, name=name, error=(
            "账号或密码错误，或账号暂时被锁定。" if lang == "zh" else
            "Wrong name or password, or the account is locked for a while."))
    response = _home(request)
    _cookie(response, request, settings, COOKIE, token)
    _cookie(response, request, settings, PRE_COOKIE, None)
    return response


def _sign_out(request: Request, conn: Any, settings: Settings, csrf_token: str,
              everywhere: bool) -> Response:
    session = _session(request, conn, settings)
    if session is None:
        return _signed_out(request, settings)
    forged = _forged(request, settings, session.csrf, csrf_token)
    if forged is not None:
        return forged
    accounts.sign_out(conn, session, everywhere=everywhere)
    response = RedirectResponse("/console/?signed_out=1" + (
        "&lang=en" if _lang(request) == "en" else ""), 303)
    _cookie(response, request, settings, COOKIE, None)
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
    session = _session(request, conn, settings)
    if session is None:
        return _signed_out(request, settings)
    return _html(pages.password_page(_lang(request), session.csrf, who=session.display_name,
                                     admin=session.principal.role == "admin"))


@router.post("/password")
def change_password(request: Request, conn: SyncConnDep, settings: SettingsDep,
                    current_password: FormText = "", new_password: FormText = "",
                    csrf_token: FormText = "") -> Response:
    """The person's own password: the current one first; the other sessions end."""
    session = _session(request, conn, settings)
    if session is None:
        return _signed_out(request, settings)
    forged = _forged(request, settings, session.csrf, csrf_token)
    if forged is not None:
        return forged
    lang, status, message, error = _lang(request), 200, None, None
    try:
        accounts.change_password(conn, session, current_password, new_password)
        message = t(lang, "password_changed")
    except GeoServiceError as exc:
        status, error = exc.status, _problem(exc)
    return _html(pages.password_page(lang, session.csrf, who=session.display_name,
                                     admin=session.principal.role == "admin",
                                     message=message, error=error), status)


def _problem(exc: GeoServiceError) -> str:
    """An error as one line: the message, and the fields it names."""
    fields = "; ".join(f"{f}: {p}" for f, p in exc.fields)
    return f"{exc.message} ({fields})" if fields else exc.message


def _accounts_page(request: Request, conn: Any, session: accounts.Session, status: int = 200,
                   *, message: str | None = None, error: str | None = None) -> HTMLResponse:
    p = session.principal
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_AREAS, {"scope": p.area_code})
        areas = cur.fetchall()
    return _html(pages.accounts_page(
        _lang(request), session.csrf, who=session.display_name,
        users=accounts.list_users(conn, p), areas=areas, own_id=p.user_id,
        own_area=p.area_code, message=message, error=error), status)


def _admin(request: Request, conn: Any, settings: Settings,
           csrf_token: str | None) -> accounts.Session | Response:
    """The signed-in admin of an accounts request (a POST's CSRF checked), or the refusal."""
    session = _session(request, conn, settings)
    if session is None:
        return _signed_out(request, settings)
    if csrf_token is not None:
        forged = _forged(request, settings, session.csrf, csrf_token)
        if forged is not None:
            return forged
    try:
        require_role(session.principal, "admin")
    except GeoServiceError as exc:
        return _refused(request, exc.status, _problem(exc))
    return session


@router.get("/accounts", response_class=HTMLResponse)
def accounts_list(request: Request, conn: SyncConnDep, settings: SettingsDep) -> Response:
    session = _admin(request, conn, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    return _accounts_page(request, conn, session)


@router.post("/accounts")
def accounts_create(request: Request, conn: SyncConnDep, settings: SettingsDep,
                    name: FormText = "", display_name: FormText = "", role: FormText = "",
                    area_code: FormText = "", password: FormText = "",
                    csrf_token: FormText = "") -> Response:
    """A new account in the admin's own area or below (refused, with the reason, outside)."""
    session = _admin(request, conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    try:
        user = accounts.create_user(conn, name=name.strip(), role=role, password=password,
                                    display_name=display_name.strip() or None,
                                    area_code=area_code or None,
                                    principal=session.principal)
    except GeoServiceError as exc:
        return _accounts_page(request, conn, session, exc.status, error=_problem(exc))
    return _accounts_page(request, conn, session, 201,
                          message=t(_lang(request), "created", name=user["name"]))


@router.post("/accounts/{user_id}/disable")
def accounts_disable(request: Request, conn: SyncConnDep, settings: SettingsDep,
                     user_id: UserId, csrf_token: FormText = "") -> Response:
    session = _admin(request, conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    try:
        user = accounts.disable_user(conn, user_id, session.principal)
    except GeoServiceError as exc:
        return _accounts_page(request, conn, session, exc.status, error=_problem(exc))
    return _accounts_page(request, conn, session,
                          message=t(_lang(request), "done_disable", name=user["name"]))


@router.post("/accounts/{user_id}/reset-password")
def accounts_reset(request: Request, conn: SyncConnDep, settings: SettingsDep,
                   user_id: UserId, csrf_token: FormText = "") -> Response:
    """A one-time password, shown once on this page; the account's sessions end."""
    session = _admin(request, conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    try:
        password, user = accounts.reset_password(conn, user_id, session.principal)
    except GeoServiceError as exc:
        return _accounts_page(request, conn, session, exc.status, error=_problem(exc))
    note = (t(_lang(request), "one_time", name=user["name"])
            + f' <code class="secret">{escape(password)}</code>')
    return _accounts_page(request, conn, session, message=note)
