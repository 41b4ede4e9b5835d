"""Load the labelled sample dataset from ``seed/`` (idempotent: run it twice, nothing changes).

Admin areas are upserted by code; demand points and stations go through the
same importers real files take, so the sample exercises them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection

from geo_service.coverage.demand import import_demand
from geo_service.imports.readers import Format
from geo_service.imports.run import Mode
from geo_service.stations import importer
from geo_service.stations import queries as q


def load_admin_areas(conn: psycopg.Connection[Any], path: Path) -> int:
    doc = json.loads(path.read_text(encoding="utf-8"))
    # Parents before children so the foreign key holds at each step.
    order = {"province": 0, "city": 1, "district": 2, "street": 3}
    features = sorted(doc["features"], key=lambda f: order[f["properties"]["level"]])
    for f in features:
        p = f["properties"]
        conn.execute(q.UPSERT_ADMIN_AREA, {
            "code": p["code"], "name": p["name"], "name_en": p.get("name_en"),
            "level": p["level"], "parent_code": p.get("parent_code"),
            "geometry": json.dumps(f["geometry"]) if f.get("geometry") else None,
            "sample": bool(p.get("sample", False)),
        })
    return len(features)


async def _load(url: str, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Demand and stations through the same importers real files take."""
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        demand = await import_demand(
            conn, (folder / "demand.csv").read_bytes(), Format.CSV,
            mode=Mode.ALL_OR_NOTHING, dry_run=False, max_rows=1_000_000)
        stations = await importer.import_bytes(
            conn, (folder / "stations.csv").read_bytes(), Format.CSV,
            mode=Mode.ALL_OR_NOTHING, dry_run=False, principal=None,
            max_rows=1_000_000,
        )
    return demand, stations


def load_seed(url: str, folder: Path) -> str:
    """Load everything in ``folder``; returns a one-line summary."""
    with psycopg.connect(url) as conn:
        areas = load_admin_areas(conn, folder / "admin_areas.geojson")
    demand_report, report = asyncio.run(_load(url, folder))
    for what, rep in (("demand", demand_report), ("stations", report)):
        if not rep["written"]:
            raise RuntimeError(f"sample {what} refused: {rep['errors'][:5]}")
    demand = demand_report["rows"]
    from geo_service.sample.operations import load_operations

    ops = load_operations(url, folder)
    written = ", ".join(f"{k} {v}" for k, v in ops.items() if v) or "already there"
    return (f"SAMPLE DATA loaded: {areas} admin areas, {demand} demand points, "
            f"stations {report['rows']} (created {report['created']}, updated "
            f"{report['updated']}, unchanged {report['unchanged']}); operations: {written}")
