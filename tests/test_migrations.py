"""Migrations upgrade and downgrade cleanly, and the migrated schema equals the models."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine

from geo_service.db import downgrade, migrate
from geo_service.models import Base
from geo_service.settings import sqlalchemy_url
from tests.conftest import _with_db


@pytest.fixture
def scratch_url(server_url: str) -> Iterator[str]:
    name = f"geo_mig_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
