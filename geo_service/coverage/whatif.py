"""What if: close stations and/or add sites, before and after per district, in one request.

Issue 27: "what if station X closes" took two runs compared by hand. Here the region's
demand and qualifying stations are loaded once; the analysis runs on them as they are
(before) and with the closed stations taken out and the added sites put in (after), and
the two scorecards are joined per district with their difference. Because both sides
are :func:`~geo_service.coverage.analysis.analyse` over the same inputs, "after" equals a
separate coverage run with those stations excluded (the test holds them equal).

The after state is stored as a coverage run (its added sites as the run's sites), so
``/maps/coverage.html?run=<run_id>`` draws it: one map of the new state, the sites
numbered, beside the table.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import numpy as np
import psycopg
from pydantic import Field, field_validator, model_validator

from geo_service.coverage import analysis, recommend, scorecard
from geo_service.coverage import queries as q
from geo_service.coverage.ranking import rank
from geo_service.coverage.schemas import CoverageRequest
from geo_service.coverage.service import (
    Inputs,
    Progress,
    _analyse,
    _basis,
    _store,
    finite,
    load_inputs,
)
from geo_service.domain.errors import invalid
from geo_service.domain.schemas import Code

#: The child area (district) of the analysed region covering each added site.
SITE_LABELS = """
WITH parts AS (SELECT code, geom FROM admin_area_part WHERE code = ANY(%(labels)s))
SELECT coalesce((SELECT p.code FROM parts p
                 WHERE ST_Covers(p.geom, ST_SetSRID(ST_MakePoint(x, y), 4326))
                 ORDER BY p.code LIMIT 1), '')
FROM unnest(%(lon)s::float8[], %(lat)s::float8[]) WITH ORDINALITY AS t(x, y, i) ORDER BY i
"""
RUN_SITES = """
SELECT ST_X(geog::geometry), ST_Y(geog::geometry) FROM analysis_site
WHERE run_id = %(id)s ORDER BY rank
"""
#: The figures compared per district, as the scorecard names them.
COMPARED = ("stations", "covered_share", "doubly_share", "uncovered_demand")


class WhatIfRequest(CoverageRequest):
    """A coverage request plus the change to try: stations closed, sites added."""

    @field_validator("reach")
    @classmethod
    def _straight(cls, v: str) -> str:
        """A what-if compares straight-line runs (by road: run coverage with reach)."""
        if v != "straight":
            raise ValueError("what-if compares straight-line coverage only; for coverage "
                             "by road, POST /v1/analysis/coverage with reach")
        return v

    close: Annotated[list[Code], Field(max_length=1000)] = Field(
        default=[], description="codes of qualifying stations to close")
    add: Annotated[list[tuple[float, float]], Field(max_length=1000)] = Field(
        default=[], description="[lon, lat] (WGS-84) of sites to add")
    add_run: Annotated[int | None, Field(ge=1, le=2**62)] = Field(
        default=None, description="also add the recommended sites of this run")

    @model_validator(mode="after")
    def _some_change(self) -> WhatIfRequest:
        if not (self.close or self.add or self.add_run is not None):
            raise ValueError("give close, add or add_run: the change to try")
        for lon, lat in self.add:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError("add: each site is [lon, lat] within range")
        return self


def _added(conn: psycopg.Connection[Any], req: WhatIfRequest) -> list[tuple[float, float]]:
    sites = [(float(x), float(y)) for x, y in req.add]
    if req.add_run is not None:
        found = conn.execute(RUN_SITES, {"id": req.add_run}).fetchall()
        if not found:
            raise invalid("add_run", f"run {req.add_run} has no recommended sites")
        sites += [(float(x), float(y)) for x, y in found]
    return sites


def _after(conn: psycopg.Connection[Any], inputs: Inputs, close: list[str],
           sites: list[tuple[float, float]]) -> Inputs:
    """The inputs with ``close`` taken out and ``sites`` added as stations."""
    codes = inputs.codes.tolist()
    unknown = sorted(set(close) - set(codes))
    if unknown:
        raise invalid("close", f"station {unknown[0]!r} is not a qualifying station of this "
                               "analysis (unknown, outside the region or filtered out)")
    keep = ~np.isin(inputs.codes, np.asarray(close, dtype=object))
    labels = [r[0] for r in conn.execute(SITE_LABELS, {
        "labels": inputs.labels, "lon": [s[0] for s in sites], "lat": [s[1] for s in sites],
    }).fetchall()] if sites else []
    n = len(sites)
    return dataclasses.replace(
        inputs,
        codes=np.concatenate([inputs.codes[keep],
                              np.asarray([f"new {i + 1}" for i in range(n)], dtype=object)]),
        s_lon=np.concatenate([inputs.s_lon[keep], np.asarray([s[0] for s in sites], float)]),
        s_lat=np.concatenate([inputs.s_lat[keep], np.asarray([s[1] for s in sites], float)]),
        s_label=np.concatenate([inputs.s_label[keep], np.asarray(labels, dtype=object)]),
        s_ten=np.concatenate([inputs.s_ten[keep], np.zeros(n, int)]),
        s_unverified=np.concatenate([inputs.s_unverified[keep], np.ones(n, bool)]),
    )


def _gains(req: WhatIfRequest, before: analysis.CoverageResult,
           sites: list[tuple[float, float]]) -> list[float]:
    """Workers each added site would cover that no station covered before (each site
    on its own: two added sites reaching the same gap both count it)."""
    if not sites:
        return []
    matrix = recommend.coverage_matrix(np.asarray([s[0] for s in sites], float),
                                       np.asarray([s[1] for s in sites], float),
                                       before.lon, before.lat, req.threshold())
    gap = np.where(before.covered, 0.0, before.demand)
    return [float(v) for v in np.asarray(matrix @ gap).reshape(-1)]


def compare(before: list[dict[str, Any]], after: list[dict[str, Any]],
            names: dict[str, str]) -> list[dict[str, Any]]:
    """One row per district: each compared figure before, after and the difference.

    Rows follow the *before* scorecard's order (worst first), the total last; a
    district only one side has (a site added where no station was) gets zeros there.
    """
    by_area = {r["area"]: r for r in after}
    rows = []
    for b in rank(before, names) + [
            r for r in after if r["area"] not in {x["area"] for x in before}]:
        a = by_area.get(b["area"], {})
        row: dict[str, Any] = {"area": b["area"], "name": b.get("name") or names.get(
            b["area"], b["area"])}
        for key in COMPARED:
            old, new = b.get(key), a.get(key)
            row[f"{key}_before"], row[f"{key}_after"] = old, new
            row[f"{key}_change"] = None if old is None or new is None else new - old
        rows.append(row)
    return rows


def run_whatif(conn: psycopg.Connection[Any], req: WhatIfRequest,
               progress: Progress | None = None, scope: str | None = None) -> dict[str, Any]:
    """Before and after per district; the after state stored as a run for its map."""
    say = progress or (lambda _msg: None)
    inputs = load_inputs(conn, req, scope)
    sites = _added(conn, req)
    changed = _after(conn, inputs, list(req.close), sites)
    say(f"analysing before ({len(inputs.codes)} stations) and after "
        f"({len(changed.codes)} stations)")
    summaries = []
    for state in (inputs, changed):
        res = _analyse(req, state)
        summaries.append((res, finite(analysis.summarise(res, state.s_label, state.s_ten,
                                                         state.s_unverified))))
    (res_before, before), (res_after, after) = summaries
    gains = _gains(req, res_before, sites)
    names = scorecard.area_names(conn, (r["area"] for r in before + after))
    rows = compare(before, after, names)
    facts = scorecard.describe_sites(conn, [
        {"rank": i + 1, "label": f"added {i + 1}", "lon": x, "lat": y, "gain": gains[i],
         "covered_after": float(res_after.demand[res_after.covered].sum())}
        for i, (x, y) in enumerate(sites)])
    stored = req.model_copy(update={"stations": req.stations.model_copy(
        update={"exclude": [*req.stations.exclude, *req.close]})})
    summary = finite({
        "threshold_m": req.threshold(), "resolution": req.resolution,
        "areas": rank(after, names), "gaps": analysis.gap_cells(res_after, req.gaps),
        "sites": facts, "whatif": {"closed": list(req.close), "added": len(sites)},
        "sample_data": inputs.sample, **_basis(inputs),
    })
    run_id, created = _store(conn, "coverage", CoverageRequest.model_validate(
        stored.model_dump(exclude={"close", "add", "add_run"})), changed, summary, res_after)
    with conn.transaction():
        for site in facts:
            conn.execute(q.INSERT_SITE, {**site, "run_id": run_id})
    return {"run_id": run_id, "created_at": created, "threshold_m": req.threshold(),
            "closed": list(req.close), "added": facts, "rows": rows,
            "sample_data": inputs.sample, **_basis(inputs)}
