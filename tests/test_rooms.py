"""The floor plan (issues 12 and 25), read from the import statements themselves.

Layers: ``web/`` is the HTTP layer, ``infra/`` the pools, settings and local cluster,
``domain/`` the vocabulary, errors, keys and audit, ``hours/`` opening hours, and the
rooms (stations, coverage, maps, …) keep their HTTP routes in ``router.py`` or
``routes/``. Checked here:

* which layer may import which (hours and domain import neither infra nor web; infra
  imports no web; a room imports web only from its router modules);
* only the aggregator (``web/api.py``) imports routers;
* no module outside the HTTP layer reaches FastAPI or Starlette, directly or through
  any chain of geo_service modules (``errors`` once imported ``responses``, which
  imports Starlette, so every service raising ``NotFound`` carried the web framework);
* no import cycles among geo_service modules.

Imports inside functions count everywhere except the cycle check: a CLI importing a
router lazily still drags the web layer in. A cycle is judged on module-level imports
(``if TYPE_CHECKING:`` blocks included: a type-only cycle is still two modules that
each need the other), since a function-level import is the deliberate way to defer a
dependency until it is used and cannot fail at import time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "geo_service"
#: The rooms (packages) whose layout this checks.
ROOMS = ("stations", "coverage", "maps", "feeds", "imports", "operations", "areas", "app",
         "admin", "posters", "console", "bulletin", "photos", "roads")
#: The layers of the floor plan, as packages.
LAYERS = ("web", "infra", "domain", "hours", "sample")
#: The one module that imports routers, and the app factory, which also takes the
#: memory index's fast path and its write notes from ``stations/router.py``.
AGGREGATOR = "geo_service.web.api"
APP_FACTORY = "geo_service.web.app"
#: The command line's entry point: ``geo-service serve`` builds the app on demand.
ENTRY_POINT = "geo_service.cli"
WEB = ("fastapi", "starlette")
#: Pure code over plain values: no database and no web.
PURE = ("domain/coords.py", "hours/compiler.py", "hours/chinese.py", "hours/text.py",
        "hours/calendars.py", "hours/calendar_hours.py", "domain/links.py",
        "domain/params.py", "domain/encoding.py", "domain/errors.py", "domain/html.py",
        "domain/principal.py", "infra/paths.py", "coverage/analysis.py",
        "coverage/recommend.py", "coverage/swap.py", "coverage/bounds.py",
        "coverage/certified.py", "coverage/families.py", "maps/render.py", "maps/model.py",
        "posters/model.py", "posters/render.py", "coverage/ranking.py",
        "domain/verification.py", "bulletin/model.py", "bulletin/charts.py",
        "bulletin/render.py", "bulletin/workbook.py")


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def _import_nodes(tree: ast.AST, top_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements of ``tree``: all of them, or only those run at module load
    (the module body and its ``if``/``try`` blocks, not functions or classes)."""
    if not top_only:
        yield from (n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom))
        return
    stack = list(getattr(tree, "body", []))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If | ast.Try | ast.With):
            stack.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.ExceptHandler):
            stack.extend(node.body)


@cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _imports(path: Path, top_only: bool = False) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function; for
    ``from m import n`` both ``m`` and ``m.n`` (``n`` may be a module)."""
    found: set[str] = set()
    for node in _import_nodes(_parsed(path), top_only):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _files(*rooms: str) -> list[Path]:
    return sorted(p for room in rooms for p in (PACKAGE / room).rglob("*.py"))


ALL = sorted(PACKAGE.rglob("*.py"))
MODULES = {_module(p): p for p in ALL}
#: Modules that declare routes (an ``APIRouter``).
ROUTERS = {_module(p) for p in ALL if "APIRouter(" in p.read_text(encoding="utf-8")}


def _is_http(module: str) -> bool:
    """The HTTP layer: ``web/``, the routers, and the HTTP helpers a room keeps beside
    them (``feeds/http.py``)."""
    return (module.startswith("geo_service.web.") or module in ROUTERS
            or module.endswith(".http"))


def _ours(path: Path, top_only: bool = False) -> set[str]:
    """The geo_service modules ``path`` imports (``from geo_service.x import name``
    counts as ``geo_service.x``, or as ``geo_service.x.name`` when that is a module)."""
    return {m for m in _imports(path, top_only) if m in MODULES and m != _module(path)}


@cache
def _graph(top_only: bool) -> dict[str, set[str]]:
    return {name: _ours(path, top_only) for name, path in MODULES.items()}


def _web_path(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A chain of imports from ``start`` to a module importing FastAPI or Starlette."""
    seen = {start}
    queue: list[list[str]] = [[start]]
    while queue:
        chain = queue.pop(0)
        web = sorted(m for m in _imports(MODULES[chain[-1]]) if m.split(".")[0] in WEB)
        if web:
            return [*chain, web[0]]
        for nxt in sorted(graph[chain[-1]] - seen):
            seen.add(nxt)
            queue.append([*chain, nxt])
    return None


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph``, as the modules around it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


# -- the HTTP layer --------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODULES), ids=str)
def test_only_the_http_layer_reaches_the_web_framework(name: str) -> None:
    """Directly or through any chain of geo_service imports (function-level ones too)."""
    if _is_http(name) or name in (ENTRY_POINT, "geo_service.__main__"):
        return
    chain = _web_path(name, _graph(top_only=False))
    assert chain is None, f"{name} reaches the web framework: {' -> '.join(chain)}"


@pytest.mark.parametrize("name", sorted(MODULES), ids=str)
def test_only_the_aggregator_imports_routers(name: str) -> None:
    allowed = {APP_FACTORY: {"geo_service.stations.router"}}.get(name, set())
    if name == AGGREGATOR:
        return
    routers = _ours(MODULES[name]) & (ROUTERS - {name}) - allowed
    assert not routers, f"{name} imports the routes of {routers}"


def test_the_aggregator_includes_every_router() -> None:
    """A router module nobody includes serves nothing; the aggregator lists them all."""
    missing = ROUTERS - _ours(MODULES[AGGREGATOR]) - {AGGREGATOR}
    assert not missing, f"routers not in {AGGREGATOR}: {missing}"


@pytest.mark.parametrize("name", sorted(ROUTERS), ids=str)
def test_routers_are_named_one_way(name: str) -> None:
    """A room's routes are ``<room>/router.py``, or ``<room>/routes/<topic>.py``."""
    parts = name.split(".")
    assert parts[-1] == "router" or parts[-2] == "routes", name


# -- the layers ------------------------------------------------------------------------

def _layer(module: str) -> str:
    """The package of ``module`` right under geo_service/ ("top" for a flat module)."""
    parts = module.split(".")
    package = len(parts) > 2 or (len(parts) == 2 and MODULES[module].name == "__init__.py")
    return parts[1] if package else "top"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if _layer(m) in ("domain", "hours")),
                         ids=str)
def test_domain_and_hours_import_neither_infra_nor_web(name: str) -> None:
    """The kernel and opening hours work for the API, the command line and the tests
    alike; a connection or a pool is handed to them. The calendar command line is the
    exception: it opens its own connection."""
    if name == "geo_service.hours.cli":
        return
    bad = {m for m in _ours(MODULES[name]) if _layer(m) in ("infra", "web", "sample")
           or _layer(m) in ROOMS}
    # The import sheet reads workbooks with the imports room's readers (plain cells).
    bad -= {"geo_service.imports.readers"}
    assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if _layer(m) == "infra"), ids=str)
def test_infra_imports_no_web_and_no_room(name: str) -> None:
    bad = {m for m in _ours(MODULES[name]) if _layer(m) not in ("infra", "domain")}
    assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if _layer(m) in ROOMS), ids=str)
def test_rooms_import_web_only_from_their_routers(name: str) -> None:
    if _is_http(name):
        return
    web = {m for m in _ours(MODULES[name]) if _layer(m) == "web"}
    assert not web, f"{name} is a service, CLI or data module but imports {web}"


def test_every_module_lives_in_a_layer_or_a_room() -> None:
    """Nothing is left flat in geo_service/ but the command line's entry point."""
    flat = {m for m in MODULES if _layer(m) == "top"} - {
        "geo_service", "geo_service.__main__", ENTRY_POINT}
    assert not flat, f"modules outside the floor plan: {flat}"
    assert {_layer(m) for m in MODULES} <= {"top", *LAYERS, *ROOMS}


def test_no_import_cycles() -> None:
    cycle = _cycle(_graph(top_only=True))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# -- rooms (issue 12) ------------------------------------------------------------------

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
               "geo_service.domain.catalogue", "geo_service.coverage.analysis",
               "geo_service.coverage.ranking", "geo_service.domain.verification"}
    ours = {m for m in _imports(PACKAGE / "maps" / "render.py") if m.startswith("geo_service")}
    # Names taken from an allowed module (geo_service.maps.model.Stations) are fine.
    modules = {m for m in ours if not any(m.startswith(f"{a}.") for a in allowed)}
    assert modules <= allowed, modules - allowed
    assert "psycopg" not in {m.split(".")[0] for m in _imports(PACKAGE / "maps" / "render.py")}


@pytest.mark.parametrize("rel", PURE)
def test_pure_modules_touch_no_database(rel: str) -> None:
    bad = {m for m in _imports(PACKAGE / rel)
           if m.split(".")[0] in ("psycopg", "psycopg_pool", "sqlalchemy", *WEB)
           or m.startswith("geo_service.infra.db")}
    assert not bad, f"{rel} works on plain values but imports {bad}"


def test_settings_and_the_local_cluster_do_not_import_each_other_at_load() -> None:
    assert not {m for m in _imports(PACKAGE / "infra" / "localdb.py")
                if m.startswith("geo_service.infra.settings")}
