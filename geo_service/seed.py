"""Load the labelled sample dataset from ``seed/`` (idempotent: run it twice, nothing changes).

Admin areas and demand points are upserted by their codes; stations go
through the station importer, so the sample exercises the same path real
imports take.
"""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection

from geo_service.stations import importer
from geo_service.stations import queries as q

_UPSERT_DEMAND = """
INSERT INTO demand_point (external_id, geog, weight, worker_type, source, observed_on, sample)
VALUES (%(id)s, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, %(weight)s,
        %(worker_type)s, %(source)s, %(observed_on)s, %(sample)s)
ON CONFLICT (external_id) DO UPDATE SET
    geog = EXCLUDED.geog, weight = EXCLUDED.weight, worker_type = EXCLUDED.worker_type,
    source = EXCLUDED.source, observed_on = EXCLUDED.observed_on, sample = EXCLUDED.sample
"""


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


def load_demand(conn: psycopg.Connection[Any], path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with conn.cursor() as cur:
        cur.executemany(_UPSERT_DEMAND, [
            {**r, "lon": float(r["lon"]), "lat": float(r["lat"]), "weight": float(r["weight"]),
             "observed_on": r["observed_on"] or None,
             "sample": r.get("sample", "").lower() == "true"}
            for r in rows
        ])
    return len(rows)


async def _stations(url: str, path: Path) -> dict[str, Any]:
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        return await importer.import_bytes(
            conn, path.read_bytes(), importer.Format.CSV, mode=importer.Mode.ALL_OR_NOTHING,
            dry_run=False, principal=None, max_rows=1_000_000,
        )


def load_seed(url: str, folder: Path) -> str:
    """Load everything in ``folder``; returns a one-line summary."""
    with psycopg.connect(url) as conn:
        areas = load_admin_areas(conn, folder / "admin_areas.geojson")
        demand = load_demand(conn, folder / "demand.csv")
    report = asyncio.run(_stations(url, folder / "stations.csv"))
    if not report["written"]:
        raise RuntimeError(f"sample stations refused: {report['errors'][:5]}")
    return (f"SAMPLE DATA loaded: {areas} admin areas, {demand} demand points, "
            f"stations {report['rows']} (created {report['created']}, updated "
            f"{report['updated']}, unchanged {report['unchanged']})")
