"""The console's planning page (issue 27): run coverage, read it by district, act on it.

Running an analysis stores runs and adding planned stations writes stations, so both
need the editor or admin role (as ``POST /v1/analysis/*`` does), within the person's
area: the coverage service and ``coverage.planned`` check the area with the session's
principal, the same checks an API key gets. The run form POSTs and redirects to a GET
naming the stored runs (``?coverage=…&plan=…``), so a reload repeats nothing. Removing
the sample data is the admin's, with a confirm step, and runs ``sample.remove``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg import AsyncConnection
from starlette.concurrency import run_in_threadpool

from geo_service.console import http as web
from geo_service.console.http import FormText
from geo_service.console.planning_pages import planning_page, pt, sample_page
from geo_service.coverage import service, whatif
from geo_service.coverage.schemas import CoverageRequest, RecommendRequest
from geo_service.domain import accounts
from geo_service.domain.errors import GeoServiceError, invalid
from geo_service.infra.settings import Settings
from geo_service.operations import inspections
from geo_service.sample.remove import remove_sample
from geo_service.stations import planned
from geo_service.web.deps import ConnDep, SettingsDep, SyncConnDep

router = APIRouter(prefix="/console", include_in_schema=False)
EDITORS = ("admin", "editor")


def _number(value: str, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise invalid(name, "must be a number") from None
    if not low <= number <= high:
        raise invalid(name, f"must be between {low:g} and {high:g}")
    return number


def _run_id(value: str, name: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 2**62:
        raise invalid(name, "must be a run number")
    return int(value)


def _stored(conn: Any, run_id: int | None, kind: str) -> dict[str, Any] | None:
    """A stored run of ``kind``, or None when not asked for."""
    if run_id is None:
        return None
    run = service.get_run(conn, run_id)
    if run["kind"] != kind:
        raise invalid(kind, f"run {run_id} is not a {kind} run")
    return run


def _render(request: Request, conn: Any, session: accounts.Session, status: int = 200, *,
            form: dict[str, str], **extra: Any) -> HTMLResponse:
    """The page for ``form``'s runs and choices (bad values shown as the error)."""
    areas = web.areas_within(conn, session.principal.area_code)
    error = extra.pop("error", None)
    shown: dict[str, Any] = {}
    try:
        shown = {"coverage": _stored(conn, _run_id(form.get("coverage", ""), "coverage"),
                                     "coverage"),
                 "plan": _stored(conn, _run_id(form.get("plan", ""), "plan"),
                                 "recommendations")}
    except GeoServiceError as exc:
        error, status = web.problem(exc), exc.status
    chosen = form.get("area") or (areas[0]["code"] if areas else None)
    try:
        threshold = _number(form.get("threshold_m") or "1000", "threshold_m", 100, 20_000)
        add = int(_number(form.get("add") or "5", "add", 1, 50))
    except GeoServiceError:
        threshold, add = 1000.0, 5
    return web.html(planning_page(
        web.lang(request), session.csrf, who=session.display_name,
        role=session.principal.role, areas=areas, chosen=chosen, threshold=threshold, add=add,
        error=error, **shown, **extra), status)


#: The overdue list on the page: days without a visit, and how many stations it shows.
OVERDUE_DAYS = 365
OVERDUE_SHOWN = 10


async def _overdue(conn: AsyncConnection[Any], session: accounts.Session,
                   area: str | None) -> dict[str, Any] | None:
    """The overdue stations of ``area`` (the person's own when not theirs to see), by
    :func:`geo_service.operations.inspections.overdue`: the API's and the CLI's function."""
    scope = session.principal.area_code
    if area is None or (scope is not None and area != scope):
        area = scope if area is None else area
    try:
        return await inspections.overdue(conn, area=area, days=OVERDUE_DAYS,
                                         limit=OVERDUE_SHOWN)
    except GeoServiceError:
        return None


@router.get("/planning", response_class=HTMLResponse)
async def planning(request: Request, conn: ConnDep, sync_conn: SyncConnDep,
                   settings: SettingsDep, coverage: str = "", plan: str = "", area: str = "",
                   threshold_m: str = "", add: str = "") -> Response:
    session = await run_in_threadpool(web.current_session, request, sync_conn, settings)
    if session is None:
        return web.signed_out(request, settings)
    allowed = {a["code"] for a in await run_in_threadpool(
        web.areas_within, sync_conn, session.principal.area_code)}
    shown = area if area in allowed else session.principal.area_code
    return await run_in_threadpool(
        _render, request, sync_conn, session, form={
            "coverage": coverage, "plan": plan, "area": area, "threshold_m": threshold_m,
            "add": add}, overdue=await _overdue(conn, session, shown))


@router.post("/planning/run")
def planning_run(request: Request, conn: SyncConnDep, settings: SettingsDep,
                 area: FormText = "", threshold_m: FormText = "1000", add: FormText = "5",
                 csrf_token: FormText = "") -> Response:
    """Coverage and recommendations for the area, both stored; then the page shows them."""
    session = web.role_session(request, conn, settings, csrf_token, *EDITORS)
    if not isinstance(session, accounts.Session):
        return session
    form = {"area": area, "threshold_m": threshold_m, "add": add}
    scope = session.principal.area_code
    try:
        reach = _number(threshold_m, "threshold_m", 100, 20_000)
        sites = int(_number(add, "add", 1, 50))
        if not area:
            raise invalid("area", "choose an area")
        ran = service.run_coverage(conn, CoverageRequest(area=area, threshold_m=reach),
                                   scope=scope)
        picked = service.run_recommendations(conn, RecommendRequest(
            area=area, threshold_m=reach, add=sites, time_budget_s=2.0), scope=scope)
    except GeoServiceError as exc:
        return _render(request, conn, session, exc.status, form=form, error=web.problem(exc))
    query = (f"coverage={ran['run_id']}&plan={picked['run_id']}&area={area}"
             f"&threshold_m={reach:.0f}&add={sites}")
    lang = "&lang=en" if web.lang(request) == "en" else ""
    return RedirectResponse(f"/console/planning?{query}{lang}", 303)


def _form(coverage: str, run: str, area: str, threshold_m: str, add: str) -> dict[str, str]:
    return {"coverage": coverage, "plan": run, "area": area, "threshold_m": threshold_m,
            "add": add}


@router.post("/planning/plan")
async def planning_plan(request: Request, conn: ConnDep, sync_conn: SyncConnDep,
                        settings: SettingsDep, run: FormText = "", coverage: FormText = "",
                        area: FormText = "", threshold_m: FormText = "", add: FormText = "",
                        csrf_token: FormText = "") -> Response:
    """The run's sites as planned stations (one transaction, audited under the person)."""
    session = await run_in_threadpool(web.role_session, request, sync_conn, settings,
                                      csrf_token, *EDITORS)
    if not isinstance(session, accounts.Session):
        return session
    form = _form(coverage, run, area, threshold_m, add)
    lang = web.lang(request)
    try:
        run_id = _run_id(run, "run")
        if run_id is None:
            raise invalid("run", "no run given")
        done = await planned.plan_sites(conn, session.principal, run_id)
    except GeoServiceError as exc:
        return await run_in_threadpool(_render, request, sync_conn, session, exc.status,
                                       form=form, error=web.problem(exc))
    message = pt(lang, "planned", n=len(done["created"]), m=len(done["existing"]))
    return await run_in_threadpool(_render, request, sync_conn, session, form=form,
                                   message=message)


@router.post("/planning/whatif")
def planning_whatif(request: Request, conn: SyncConnDep, settings: SettingsDep,
                    run: FormText = "", coverage: FormText = "", area: FormText = "",
                    threshold_m: FormText = "", add: FormText = "", close: FormText = "",
                    with_sites: FormText = "", csrf_token: FormText = "") -> Response:
    """Close the stations named and/or add the run's sites: one before/after table."""
    session = web.role_session(request, conn, settings, csrf_token, *EDITORS)
    if not isinstance(session, accounts.Session):
        return session
    form = _form(coverage, run, area, threshold_m, add)
    try:
        codes = [c.strip() for c in close.replace("，", ",").split(",") if c.strip()]
        body: dict[str, Any] = {"area": area, "close": codes,
                                "threshold_m": _number(threshold_m or "1000", "threshold_m",
                                                       100, 20_000)}
        if with_sites:
            body["add_run"] = _run_id(run, "run")
        try:
            req = whatif.WhatIfRequest.model_validate(body)
        except ValueError as exc:
            raise invalid("close", str(exc).splitlines()[-1][:200]) from None
        result = whatif.run_whatif(conn, req, scope=session.principal.area_code)
    except GeoServiceError as exc:
        return _render(request, conn, session, exc.status, form=form, error=web.problem(exc))
    return _render(request, conn, session, form=form, whatif=result)


def _admin(request: Request, conn: Any, settings: Settings,
           csrf_token: str | None) -> accounts.Session | Response:
    return web.role_session(request, conn, settings, csrf_token, "admin")


@router.get("/planning/sample", response_class=HTMLResponse)
def sample_confirm(request: Request, conn: SyncConnDep, settings: SettingsDep) -> Response:
    """The confirm step: what goes, and the one button that removes it."""
    session = _admin(request, conn, settings, None)
    if not isinstance(session, accounts.Session):
        return session
    return web.html(sample_page(web.lang(request), session.csrf, who=session.display_name))


@router.post("/planning/sample")
def sample_remove(request: Request, conn: SyncConnDep, settings: SettingsDep,
                  csrf_token: FormText = "") -> Response:
    """``geo-service sample remove``, from the console, named after the admin."""
    session = _admin(request, conn, settings, csrf_token)
    if not isinstance(session, accounts.Session):
        return session
    done = remove_sample(conn, session.principal)
    return web.html(sample_page(web.lang(request), session.csrf, who=session.display_name,
                                done=done))
