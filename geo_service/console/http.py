"""What the console's routes share: cookies, CSRF, the session, the page response.

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
from typing import Annotated, Any

from fastapi import Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg.rows import dict_row

from geo_service.console import pages
from geo_service.console.pages import t
from geo_service.domain import accounts
from geo_service.domain.auth import require_role
from geo_service.domain.errors import GeoServiceError
from geo_service.infra.settings import Settings
from geo_service.operations.common import client_address, client_group, client_https
from geo_service.web.deps import own_origin
from geo_service.web.security_headers import STRICT_CSP

COOKIE = "geo_console"
PRE_COOKIE = "geo_console_pre"
FormText = Annotated[str, Form(max_length=2000)]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
_AREAS = """
SELECT code, name, name_en, level, sample FROM admin_area
WHERE %(scope)s::text IS NULL OR geo_area_within(code, %(scope)s)
ORDER BY code
"""


def areas_within(conn: Any, scope: str | None) -> list[dict[str, Any]]:
    """The areas an admin limited to ``scope`` may give an account or a key (all: None)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_AREAS, {"scope": scope})
        rows: list[dict[str, Any]] = cur.fetchall()
    return rows


def policy(settings: Settings) -> accounts.Policy:
    """The ``GEO_CONSOLE_*`` settings as the accounts module takes them."""
    return accounts.Policy(
        idle=dt.timedelta(minutes=settings.console_idle_minutes),
        lifetime=dt.timedelta(hours=settings.console_session_hours),
        lockout_failures=settings.console_lockout_failures,
        lockout=dt.timedelta(minutes=settings.console_lockout_minutes),
        client_failures=settings.console_client_failures,
        client_window=dt.timedelta(minutes=settings.console_client_window_minutes))


def lang(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "zh"


def peer(request: Request) -> str:
    return request.client.host if request.client else ""


def client(request: Request, settings: Settings) -> str:
    address = client_address(peer(request), request.headers.getlist("x-forwarded-for"),
                             settings)
    return client_group(address, settings.ipv6_prefix)


def html(body: str, status: int = 200, csp: str = STRICT_CSP) -> HTMLResponse:
    """A console page: never cached, no script (``csp``: a page that needs its own file of
    script says so), and ``Referrer-Policy: same-origin``
    instead of the service's ``no-referrer``: under ``no-referrer`` Chromium sends its
    forms' POSTs with ``Origin: null``, which the Origin rule must refuse; same-origin
    still tells other sites nothing."""
    return HTMLResponse(body, status, headers={"Cache-Control": "no-store",
                                                "Content-Security-Policy": csp,
                                                "Referrer-Policy": "same-origin"})


def cookie(response: Response, request: Request, settings: Settings, name: str,
            value: str | None) -> None:
    """Set (or, with None, delete) a console cookie with the flags of the module docstring."""
    secure = client_https(request.url.scheme, peer(request),
                          request.headers.getlist("x-forwarded-proto"), settings)
    if value is None:
        response.delete_cookie(name, path="/console", secure=secure, httponly=True,
                               samesite="lax")
    else:
        response.set_cookie(name, value, path="/console", secure=secure, httponly=True,
                            samesite="lax")


def sign_in_form(request: Request, settings: Settings, status: int = 200, *,
                  name: str = "", message: str | None = None,
                  error: str | None = None) -> HTMLResponse:
    """The sign-in page, with its CSRF token (the visitor's, or a new one)."""
    pre = request.cookies.get(PRE_COOKIE, "")
    if not 30 <= len(pre) <= 64:
        pre = secrets.token_urlsafe(32)
    response = html(pages.sign_in_page(lang(request), pre, name=name, message=message,
                                        error=error), status)
    cookie(response, request, settings, PRE_COOKIE, pre)
    return response


def home_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse("/console/" + ("?lang=en" if lang(request) == "en" else ""), 303)


def refused(request: Request, status: int, message: str) -> HTMLResponse:
    return html(pages.error_page(lang(request), message), status)


def forged(request: Request, settings: Settings, expected: str | None,
            sent: str) -> HTMLResponse | None:
    """A 403 page naming what is wrong with a POST's Origin or CSRF token, or None."""
    origin = request.headers.get("origin")
    if origin is not None and not own_origin(request, settings, origin):
        return refused(request, 403, "refused: Origin is not this service (csrf)")
    if not sent:
        return refused(request, 403, "refused: csrf_token is missing from the form")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        return refused(request, 403, "refused: csrf_token is wrong or out of date; "
                                      "reload the page and try again")
    return None


def current_session(request: Request, conn: Any, settings: Settings) -> accounts.Session | None:
    return accounts.session_for(conn, request.cookies.get(COOKIE), policy(settings))


def signed_out(request: Request, settings: Settings) -> Response:
    """A request that needs a session without one: GETs go to the sign-in page."""
    if request.method == "GET":
        return home_redirect(request)
    return sign_in_form(request, settings, 401, error=t(lang(request), "signed_out"))



def problem(exc: GeoServiceError) -> str:
    """An error as one line: the message, and the fields it names."""
    fields = "; ".join(f"{f}: {p}" for f, p in exc.fields)
    return f"{exc.message} ({fields})" if fields else exc.message


def admin_session(request: Request, conn: Any, settings: Settings,
           csrf_token: str | None) -> accounts.Session | Response:
    """The signed-in admin of an accounts request (a POST's CSRF checked), or the refusal."""
    return role_session(request, conn, settings, csrf_token, "admin")


def role_session(request: Request, conn: Any, settings: Settings, csrf_token: str | None,
                 *roles: str) -> accounts.Session | Response:
    """The signed-in person of a request that needs one of ``roles`` (a POST's CSRF
    checked first), or the refusal: the sign-in page, a 403 naming the problem."""
    session = current_session(request, conn, settings)
    if session is None:
        return signed_out(request, settings)
    if csrf_token is not None:
        refusal = forged(request, settings, session.csrf, csrf_token)
        if refusal is not None:
            return refusal
    try:
        require_role(session.principal, *roles)
    except GeoServiceError as exc:
        return refused(request, exc.status, problem(exc))
    return session
