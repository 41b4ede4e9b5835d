"""Migrations upgrade and downgrade cleanly, and the migrated schema equals the models.

Revisions are history: they carry their own frozen vocabularies rather than
importing them from the application, so the checks here compare what the
migrations made with what the code says now (a vocabulary changed in the code
alone fails them, and asks for a new revision).
"""

from __future__ import annotations

import ast
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine

from geo_service.domain.catalogue import AMENITIES
from geo_service.domain.models import Base
from geo_service.infra.db import downgrade, migrate
from geo_service.infra.settings import PROJECT_ROOT, sqlalchemy_url
from tests.conftest import _with_db

VERSIONS = PROJECT_ROOT / "migrations" / "versions"


def _scratch(server_url: str) -> Iterator[str]:
    name = f"geo_mig_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def scratch_url(server_url: str) -> Iterator[str]:
    yield from _scratch(server_url)


@pytest.fixture
def models_url(server_url: str) -> Iterator[str]:
    """A second scratch database, for the schema the models create by themselves."""
    yield from _scratch(server_url)


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r[0] for r in rows} - {"spatial_ref_sys"}


def _include(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    if type_ == "table" and name == "spatial_ref_sys":
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def test_upgrade_downgrade_upgrade(scratch_url: str) -> None:
    migrate(scratch_url)
    assert {"station", "amenity", "admin_area", "api_key", "demand_point",
            "alembic_version"} <= _tables(scratch_url)
    downgrade(scratch_url, "base")
    assert _tables(scratch_url) == {"alembic_version"}
    with psycopg.connect(scratch_url) as conn:
        fns = conn.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE 'geo\\_%'").fetchone()
        assert fns == (0,)
    migrate(scratch_url)
    migrate(scratch_url)  # a second upgrade is a no-op
    with psycopg.connect(scratch_url) as conn:
        assert conn.execute("SELECT count(*) FROM amenity WHERE ten_ones").fetchone() == (10,)


def test_models_match_migrated_schema(scratch_url: str) -> None:
    migrate(scratch_url)
    engine = create_engine(sqlalchemy_url(scratch_url))
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": _include, "compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diff == []


def _check_constraints(url: str) -> dict[str, list[str]]:
    """The CHECK constraints of each public table, as PostgreSQL prints them back.

    By definition, not name: the migrations' names carry the table twice
    (``ck_visit_ck_visit_worker_type``: the models' naming convention applied
    to an already full name), which the models do not, and renaming them would
    need a revision of its own.
    """
    with psycopg.connect(url) as conn:
        rows = conn.execute("""
            SELECT c.conrelid::regclass::text, pg_get_constraintdef(c.oid)
            FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
            WHERE c.contype = 'c' AND n.nspname = 'public'
            ORDER BY 1, 2""").fetchall()
    found: dict[str, list[str]] = {}
    for table, definition in rows:
        found.setdefault(table, []).append(definition)
    return found


def test_check_constraints_match_the_models(scratch_url: str, models_url: str) -> None:
    """Alembic's comparison does not look inside CHECK constraints, so the
    vocabularies (statuses, worker types, report kinds, award levels, roles...)
    are compared here: the migrated database against one the models create, both
    printed back by PostgreSQL so spelling differences do not count."""
    migrate(scratch_url)
    with psycopg.connect(models_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    engine = create_engine(sqlalchemy_url(models_url))
    Base.metadata.create_all(engine)
    engine.dispose()
    migrated, modelled = _check_constraints(scratch_url), _check_constraints(models_url)
    assert any("'truck_driver'" in d for d in migrated["visit"])  # the vocabularies are there
    assert migrated == modelled


def test_amenity_table_is_the_catalogue(db_url: str) -> None:
    """The first revision froze the catalogue it inserts; the code's catalogue must
    still be what the migrations leave in the table (a new amenity needs a revision)."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT code, bit, label_zh, label_en, ten_ones FROM amenity "
                            "ORDER BY bit").fetchall()
    assert rows == [(a.code, a.bit, a.label_zh, a.label_en, a.ten_ones) for a in AMENITIES]


def _application_imports(path: Path) -> list[str]:
    """Modules of ``geo_service`` a file imports, by statement or by name in a string
    (``importlib.import_module("geo_service.domain.models")``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        found += [n for n in names if n == "geo_service" or n.startswith("geo_service.")]
    return found


def test_no_migration_imports_the_application() -> None:
    """A revision that imports constants from the application changes what it did
    whenever those constants are edited: history rewritten, and databases migrated
    before and after the edit differ under the same revision number. Every value a
    revision needs is written into it (``env.py`` may import the models: it is not
    history, it points autogenerate at them)."""
    revisions = sorted(VERSIONS.glob("*.py"))
    assert len(revisions) >= 5, revisions
    offenders = {p.name: found for p in revisions if (found := _application_imports(p))}
    assert offenders == {}


def test_the_import_check_sees_imports(tmp_path: Path) -> None:
    """The check above can fail: each way of importing the application is caught."""
    sample = tmp_path / "0099_sample.py"
    sample.write_text("import geo_service\n"
                      "from geo_service.domain.models import WORKER_TYPES\n"
                      "import importlib\n"
                      "m = importlib.import_module('geo_service.domain.catalogue')\n"
                      "import geo_services_other\n", encoding="utf-8")
    assert sorted(_application_imports(sample)) == [
        "geo_service", "geo_service.domain.catalogue", "geo_service.domain.models"]
