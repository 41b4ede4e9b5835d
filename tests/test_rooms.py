"""Rooms keep to their job (issue 12), read from the import statements themselves.

Only HTTP modules import FastAPI; no module but ``main.py`` imports a module
that declares routes; stations and coverage do not import each other; the map
renderer takes plain data and imports no database code. Imports inside
functions count too: a CLI importing a router lazily still drags the web layer in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "geo_service"
#: The rooms (packages) whose layout this checks.
ROOMS = ("stations", "coverage", "maps", "feeds", "imports", "operations", "areas")
#: Top-level modules of the HTTP layer besides the routers: they may speak FastAPI.
HTTP_TOP = {"main", "deps", "openapi", "security", "responses", "errors"}
#: Pure code over plain values: no database and no web.
PURE = ("coords.py", "hours.py", "hours_cn.py", "hours_text.py", "calendars.py",
        "calendar_hours.py", "links.py", "params.py", "paths.py", "coverage/analysis.py",
        "coverage/recommend.py", "coverage/swap.py", "coverage/bounds.py",
        "coverage/certified.py", "coverage/families.py", "maps/render.py", "maps/model.py")


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _files(*rooms: str) -> list[Path]:
    return sorted(p for room in rooms for p in (PACKAGE / room).glob("*.py"))


ALL = sorted(PACKAGE.rglob("*.py"))
#: Modules that declare routes (an ``APIRouter``): the HTTP layer.
ROUTERS = {_module(p) for p in ALL if "APIRouter(" in p.read_text(encoding="utf-8")}


def _is_http(path: Path) -> bool:
    """Routers, and the HTTP helpers a room keeps beside them (``feeds/http.py``)."""
    return _module(path) in ROUTERS or path.name == "http.py"


@pytest.mark.parametrize("path", _files(*ROOMS), ids=lambda p: _module(p))
def test_only_http_modules_import_the_web_framework(path: Path) -> None:
    if _is_http(path):
        return
    web = {m for m in _imports(path) if m.split(".")[0] in ("fastapi", "starlette")}
    assert not web, f"{_module(path)} is a service, CLI or data module but imports {web}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: _module(p))
def test_no_module_imports_a_router_but_main(path: Path) -> None:
    if path.name == "main.py":
        return
    routers = _imports(path) & (ROUTERS - {_module(path)})
    assert not routers, f"{_module(path)} imports the routes of {routers}"


def test_stations_and_coverage_do_not_import_each_other() -> None:
    for here, there in (("stations", "coverage"), ("coverage", "stations")):
        for path in _files(here):
            crossing = {m for m in _imports(path) if m.startswith(f"geo_service.{there}")}
            assert not crossing, f"{_module(path)} imports {crossing}"


def test_imports_package_knows_no_room() -> None:
    for path in _files("imports"):
        rooms = {m for m in _imports(path)
                 if m.split(".")[:2][-1] in ("stations", "coverage", "maps", "feeds")}
        assert not rooms, f"{_module(path)} imports {rooms}"


def test_map_renderer_takes_plain_data() -> None:
    allowed = {"geo_service.maps.model", "geo_service.maps.assets", "geo_service.domain.html",
               "geo_service.domain.catalogue", "geo_service.coverage.analysis"}
    ours = {m for m in _imports(PACKAGE / "maps" / "render.py") if m.startswith("geo_service")}
    # Names taken from an allowed module (geo_service.maps.model.Stations) are fine.
    modules = {m for m in ours if not any(m.startswith(f"{a}.") for a in allowed)}
    assert modules <= allowed, modules - allowed
    assert "psycopg" not in {m.split(".")[0] for m in _imports(PACKAGE / "maps" / "render.py")}


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: _module(p))
def test_top_level_services_do_not_import_the_web_framework(path: Path) -> None:
    """Shared modules (auth, audit, params, settings, db, seed, cli…) serve HTTP and the
    command line alike; only the HTTP layer's own modules import FastAPI."""
    if path.stem in HTTP_TOP or _module(path) in ROUTERS:
        return
    web = {m for m in _imports(path) if m.split(".")[0] in ("fastapi", "starlette")}
    assert not web, f"{_module(path)} imports {web}"


@pytest.mark.parametrize("rel", PURE)
def test_pure_modules_touch_no_database(rel: str) -> None:
    bad = {m for m in _imports(PACKAGE / rel)
           if m.split(".")[0] in ("psycopg", "psycopg_pool", "sqlalchemy", "fastapi",
                                  "starlette") or m.startswith("geo_service.infra.db")}
    assert not bad, f"{rel} works on plain values but imports {bad}"


def test_settings_and_the_local_cluster_do_not_import_each_other_at_load() -> None:
    assert not {m for m in _imports(PACKAGE / "localdb.py") if m.startswith("geo_service.infra.settings")}
