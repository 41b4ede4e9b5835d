"""The console's station form: create, edit, close, reopen, delete (editors and admins).

Every save goes through the service functions behind ``POST/PUT/PATCH/DELETE
/v1/stations`` (:mod:`geo_service.stations.service`) with the session's principal, so
the role, the area scope (the point and the station must lie in the person's area), the
validation, the optimistic version check and the audit trail are the API's. The form
carries the version it was opened at; a stale one comes back as "changed by X at T —
review" with their values beside the clerk's, never a silent overwrite.

Async like the reports queue (the stations service runs on the async pool); the session
and its CSRF check run on the sync pool in a worker thread, as every console page's do.
The form page's policy adds ``script-src 'self'`` and ``connect-src 'self'`` to the
console's strict one, for the map's own file and its point lookups (and the configured
tile host's images, when tiles are configured); every other console page stays scriptless.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from psycopg import AsyncConnection

from geo_service.console import http as web
from geo_service.console import station_map
from geo_service.console.station_fields import (
    FORM_CRS,
    form_values,
    label,
    parse_form,
    service_problems,
    shown,
    submitted_values,
)
from geo_service.console.station_form_pages import confirm_page, form_page
from geo_service.domain import accounts
from geo_service.domain.coords import Crs, from_wgs84, to_wgs84
from geo_service.domain.errors import GeoServiceError, NotFound, VersionConflict
from geo_service.infra.settings import Settings
from geo_service.maps.options import basemap
from geo_service.stations import service
from geo_service.web.deps import CodePath, ConnDep, SettingsDep, SyncConnDep
from geo_service.web.security_headers import STRICT_CSP

router = APIRouter(prefix="/console", include_in_schema=False)
SCRIPT = FilePath(__file__).parents[1] / "static" / "station-form.js"
#: What each action does to the station, and the statuses a close may choose.
ACTIONS = ("close", "reopen", "delete")
CLOSED = ("temporarily_closed", "closed")
#: Fields the station keeps from the stored row when the point and district stay.
_PLACE = ("province", "province_code", "city", "city_code", "district")
#: A coordinate change below this (degrees, ~1 cm) is not a move.
_SAME_POINT = 1e-7


async def _session(request: Request, conn: Any, settings: Settings,
                   csrf: str | None) -> accounts.Session | Response:
    return await run_in_threadpool(web.role_session, request, conn, settings, csrf,
                                   "admin", "editor")


def _tiles(settings: Settings) -> dict[str, Any] | None:
    """The configured basemap (as the courier app picks it up), or None: no tiles."""
    if not (settings.map_tiles_url or settings.map_basemap):
        return None
    bm = basemap(settings.map_basemap, tiles_url=settings.map_tiles_url,
                 attribution=settings.map_tiles_attribution, tiles_crs=settings.map_tiles_crs,
                 offline=True)
    if bm.url is None or bm.crs not in FORM_CRS:
        return None
    return {"url": bm.url, "attribution": bm.attribution, "crs": bm.crs.value,
            "subdomains": bm.subdomains, "max_zoom": bm.max_zoom}


def form_csp(settings: Settings) -> str:
    """The console's strict policy plus this page's script, lookups and tile images."""
    img = "img-src 'self' data:"
    tiles = _tiles(settings)
    if tiles is not None:
        parts = urlsplit(tiles["url"])
        host = parts.netloc
        if "{" in host:  # a subdomain template (webrd0{s}.is.autonavi.com)
            host = "*." + host.split(".", 1)[1]
        img += f" {parts.scheme}://{host}"
    return (STRICT_CSP.replace("img-src 'self' data:", img)
            + "; script-src 'self'; connect-src 'self'")


def _lang_query(request: Request) -> str:
    return "?lang=en" if web.lang(request) == "en" else ""


def _station_page(request: Request, code: str) -> RedirectResponse:
    """After a save: the station's page (``/console/stations/{code}``)."""
    return RedirectResponse(f"/console/stations/{code}{_lang_query(request)}", 303)


async def _in_scope(request: Request, conn: AsyncConnection[Any], session: accounts.Session,
                    code: str) -> dict[str, Any] | Response:
    """The stored station (WGS-84) if the person's area holds it, else the 404 / 403 page."""
    lang = web.lang(request)
    try:
        station = await service.get_station(conn, code, Crs.WGS84)
    except NotFound:
        return web.refused(request, 404, ("没有编码为 {c} 的驿站" if lang == "zh" else
                                           "No station with code {c}").format(c=code))
    if not await service.in_scope(conn, session.principal, station):
        area = session.principal.area_code
        return web.refused(request, 403, (
            f"此驿站不在您的管辖区域（{area}）内，不能修改。" if lang == "zh" else
            f"This station is outside your area ({area}); you cannot change it."))
    return station


async def _map_data(conn: AsyncConnection[Any], settings: Settings, session: accounts.Session,
                    code: str | None, values: dict[str, Any]) -> dict[str, Any]:
    """The map's JSON: its system, the pin (from the form's coordinates), the outline
    and stations of the person's area, the tiles, the point lookup's address."""
    tiles = _tiles(settings)
    map_crs = Crs(tiles["crs"]) if tiles else Crs.WGS84
    pin = None
    try:
        crs = Crs(str(values.get("crs") or "gcj02"))
        lon, lat = float(values.get("lon", "")), float(values.get("lat", ""))
        if crs in FORM_CRS and -180 <= lon <= 180 and -90 <= lat <= 90:
            pin = to_wgs84(lon, lat, crs)
    except ValueError:
        pass
    ctx = await station_map.context(conn, area=session.principal.area_code, code=code,
                                    point=pin, map_crs=map_crs)
    return {"map_crs": map_crs.value, "tiles": tiles, "locate": "/console/locate",
            "pin": list(from_wgs84(*pin, map_crs)) if pin else None, **ctx}


async def _form(request: Request, conn: AsyncConnection[Any], settings: Settings,
                session: accounts.Session, *, code: str | None, values: dict[str, Any],
                errors: dict[str, str] | None = None, status: int = 200,
                conflict: dict[str, Any] | None = None, hours_now: str | None = None,
                deleted_at: str | None = None) -> HTMLResponse:
    p = session.principal
    areas = await station_map.area_options(conn, p.area_code)
    map_data = await _map_data(conn, settings, session, code, values)
    body = form_page(web.lang(request), session.csrf, who=session.display_name,
                     admin=p.role == "admin", code=code, values=values, errors=errors or {},
                     areas=areas, map_data=map_data, conflict=conflict, hours_now=hours_now,
                     deleted_at=deleted_at)
    return web.html(body, status, csp=form_csp(settings))


async def _form_data(request: Request) -> dict[str, Any]:
    """The posted form: one text per field, ``amenities`` as the list of ticked boxes."""
    form = await request.form(max_files=0, max_fields=200)
    data: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    data["amenities"] = [v for v in form.getlist("amenities") if isinstance(v, str)]
    return data


@router.get("/stations/new", response_class=HTMLResponse)
async def new_form(request: Request, conn: ConnDep, sync_conn: SyncConnDep,
                   settings: SettingsDep) -> Response:
    session = await _session(request, sync_conn, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    values = {"crs": "gcj02", "status": "open", "host_type": "union_built",
              "timezone": settings.default_timezone, "amenities": []}
    return await _form(request, conn, settings, session, code=None, values=values)


@router.post("/stations/new")
async def create(request: Request, conn: ConnDep, sync_conn: SyncConnDep,
                 settings: SettingsDep) -> Response:
    """A new station through ``service.create_station``; problems next to their fields."""
    form = await _form_data(request)
    session = await _session(request, sync_conn, settings, str(form.get("csrf_token", "")))
    if not isinstance(session, accounts.Session):
        return session
    parsed = parse_form(form, new=True)
    typed = submitted_values(form)
    if parsed.errors:
        return await _form(request, conn, settings, session, code=None, values=typed,
                           errors=parsed.errors, status=422)
    body = parsed.body
    body["street"] = await station_map.area_name(conn, body.get("street_code"))
    try:
        await service.create_station(conn, session.principal, body, parsed.crs)
    except GeoServiceError as exc:
        return await _form(request, conn, settings, session, code=None, values=typed,
                           errors=service_problems(exc, session.principal.area_code),
                           status=exc.status)
    return _station_page(request, body["code"])


@router.get("/stations/{code}/edit", response_class=HTMLResponse)
async def edit_form(request: Request, code: CodePath, conn: ConnDep, sync_conn: SyncConnDep,
                    settings: SettingsDep) -> Response:
    session = await _session(request, sync_conn, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    stored = await _in_scope(request, conn, session, code)
    if not isinstance(stored, dict):
        return stored
    station = await service.get_station(conn, code, Crs.GCJ02)
    values = {**form_values(station), "crs": Crs.GCJ02.value}
    deleted = station["deleted_at"]
    return await _form(request, conn, settings, session, code=code, values=values,
                       hours_now=station["opening_hours_zh"],
                       deleted_at=station_map.when(deleted, settings.default_timezone)
                       if deleted else None)


async def _conflict(conn: AsyncConnection[Any], settings: Settings, lang: str, code: str,
                    opened: int, crs: Crs, yours: dict[str, Any] | None) -> dict[str, Any]:
    """Who changed the station since version ``opened`` and when (the audit trail), and
    the fields where theirs (stored now) differs from yours (the submitted body)."""
    changes = await station_map.changed_since(conn, code, opened)
    latest = changes[0] if changes else None
    who = "?"
    at = "?"
    if latest is not None:
        who = (f"{latest['display_name']}（{latest['actor']}）" if latest["display_name"]
               else latest["actor"])
        at = station_map.when(latest["at"], settings.default_timezone)
    theirs = await service.get_station(conn, code, crs)
    diffs = []
    for name, mine in (yours or {}).items():
        if name in ("version", "code", *_PLACE, "street"):
            continue
        stored = theirs[name]
        if name == "amenities":
            same = set(mine or []) == set(stored or [])
        elif name in ("lon", "lat"):
            same = abs(float(mine) - float(stored)) < 1e-6
        else:
            same = shown(lang, name, mine) == shown(lang, name, stored)
        if not same:
            diffs.append((name, shown(lang, name, stored), shown(lang, name, mine)))
    return {"who": who, "at": at, "diffs": diffs, "version": theirs["version"]}


@router.post("/stations/{code}/edit")
async def save(request: Request, code: CodePath, conn: ConnDep, sync_conn: SyncConnDep,
               settings: SettingsDep) -> Response:
    """A full replacement through ``service.replace_station`` at the form's version."""
    form = await _form_data(request)
    session = await _session(request, sync_conn, settings, str(form.get("csrf_token", "")))
    if not isinstance(session, accounts.Session):
        return session
    stored = await _in_scope(request, conn, session, code)
    if not isinstance(stored, dict):
        return stored
    parsed = parse_form(form, new=False)
    typed = submitted_values(form)
    if parsed.errors:
        return await _form(request, conn, settings, session, code=code, values=typed,
                           errors=parsed.errors, status=422)
    body = parsed.body
    lon, lat = to_wgs84(body["lon"], body["lat"], parsed.crs)
    still = (abs(lon - stored["lon"]) < _SAME_POINT and abs(lat - stored["lat"]) < _SAME_POINT
             and body.get("district_code") == stored["district_code"])
    for key in _PLACE:  # kept where the point stays; else placed again from the polygons
        body[key] = stored[key] if still else None
    body["street"] = await station_map.area_name(conn, body.get("street_code"))
    opened = body.get("version") or 0
    try:
        await service.replace_station(conn, session.principal, code, body, parsed.crs, None)
    except VersionConflict:
        conflict = await _conflict(conn, settings, web.lang(request), code, opened, parsed.crs,
                                   body)
        typed["version"] = str(conflict["version"])
        return await _form(request, conn, settings, session, code=code, values=typed,
                           status=409, conflict=conflict)
    except GeoServiceError as exc:
        return await _form(request, conn, settings, session, code=code, values=typed,
                           errors=service_problems(exc, session.principal.area_code),
                           status=exc.status)
    return _station_page(request, code)


async def confirm(request: Request, code: str, action: str, conn: AsyncConnection[Any],
                  sync_conn: Any, settings: Settings) -> Response:
    session = await _session(request, sync_conn, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    station = await _in_scope(request, conn, session, code)
    if not isinstance(station, dict):
        return station
    return web.html(confirm_page(web.lang(request), session.csrf, who=session.display_name,
                                 admin=session.principal.role == "admin", action=action,
                                 station=station))


async def act(request: Request, code: str, action: str, conn: AsyncConnection[Any],
              sync_conn: Any, settings: Settings) -> Response:
    """Close (temporarily or for good), reopen or soft-delete, with the reason in the
    audit trail (``audit_log.request``), at the version the page was opened at."""
    form = await _form_data(request)
    session = await _session(request, sync_conn, settings, str(form.get("csrf_token", "")))
    if not isinstance(session, accounts.Session):
        return session
    found = await _in_scope(request, conn, session, code)
    if not isinstance(found, dict):
        return found
    station: dict[str, Any] = found
    lang = web.lang(request)
    reason = str(form.get("reason", "")).strip()
    version_text = str(form.get("version", ""))
    version = int(version_text) if version_text.isdigit() else None

    def again(status: int, error: str | None = None,
              conflict: dict[str, Any] | None = None) -> HTMLResponse:
        return web.html(confirm_page(lang, session.csrf, who=session.display_name,
                                     admin=session.principal.role == "admin", action=action,
                                     station=station, reason=reason, error=error,
                                     conflict=conflict), status)

    if not reason or len(reason) > 500:
        return again(422, ("请填写原因（最多 500 字）" if lang == "zh" else
                           "Give a reason (at most 500 characters)"))
    status = {"reopen": "open"}.get(action, str(form.get("status", "temporarily_closed")))
    if action == "close" and status not in CLOSED:
        return again(422, label(lang, "status") + ("：请从列表中选择" if lang == "zh"
                                                   else ": choose one from the list"))
    p = session.principal
    try:
        if action == "delete":
            await service.delete_station(conn, p, code, version, None, reason=reason)
        else:
            await service.patch_station(conn, p, code, {"status": status, "version": version},
                                        Crs.WGS84, None, reason=reason)
    except VersionConflict:
        conflict = await _conflict(conn, settings, lang, code, version or 0, Crs.WGS84, None)
        station = {**station, "version": conflict["version"]}
        return again(409, conflict=conflict)
    except GeoServiceError as exc:
        return again(exc.status, web.problem(exc))
    return _station_page(request, code)


def _routes(action: str) -> None:
    """``/console/stations/{code}/close`` (and reopen, delete): the confirmation page and
    its POST. Literal paths, not ``{action}``: a parameter there would catch the other
    console pages under a station (its photos, say) and answer them 422."""
    async def confirm_page_route(request: Request, code: CodePath, conn: ConnDep,
                                 sync_conn: SyncConnDep, settings: SettingsDep) -> Response:
        return await confirm(request, code, action, conn, sync_conn, settings)

    async def act_route(request: Request, code: CodePath, conn: ConnDep,
                        sync_conn: SyncConnDep, settings: SettingsDep) -> Response:
        return await act(request, code, action, conn, sync_conn, settings)

    path = f"/stations/{{code}}/{action}"
    router.add_api_route(path, confirm_page_route, methods=["GET"],
                         response_class=HTMLResponse, name=f"console_station_{action}_page")
    router.add_api_route(path, act_route, methods=["POST"], name=f"console_station_{action}")


for _action in ACTIONS:
    _routes(_action)


@router.get("/locate")
async def locate(request: Request, conn: ConnDep, sync_conn: SyncConnDep,
                 settings: SettingsDep,
                 lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
                 lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
                 crs: Annotated[str, Query(pattern="^(wgs84|gcj02)$")] = "wgs84") -> Response:
    """A point of the map or of the form: in WGS-84 and GCJ-02 (the published formulas of
    ``domain/coords.py``), with the district and street that contain it."""
    session = await _session(request, sync_conn, settings, None)
    if not isinstance(session, accounts.Session):
        return JSONResponse({"error": "sign in first"}, 401)
    return JSONResponse(await station_map.locate(conn, lon, lat, Crs(crs)),
                        headers={"Cache-Control": "no-store"})


@cache
def _script() -> bytes:
    return SCRIPT.read_bytes()


@router.get("/assets/station-form.js")
def script() -> Response:
    """The form's map, a file so the page's policy needs no inline script."""
    return Response(_script(), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})
