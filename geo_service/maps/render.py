"""The three maps as HTML pages, from the plain data of :mod:`.model` (no database,
no request, no error types here).

folium builds the page: the Leaflet map, the basemap tile layer, the district
outlines (``GeoJson`` with tooltips), the layer control and the scale. The
stations themselves are not folium ``Marker``s: 100,000 of them would be
100,000 blocks of generated JavaScript. The page instead embeds one compact
payload (columns, repeated strings as indexes) that ``static/maps.js`` turns
into clustered markers with lazily built popups. Assets come from
:mod:`geo_service.maps.assets` (CDN, served by us, or inlined).
"""

from __future__ import annotations

import datetime as dt
import html
import math
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import folium
import numpy as np
from branca.element import Element, Figure, MacroElement
from folium.features import GeoJsonTooltip
from jinja2 import Template

from geo_service.coverage.analysis import TOTAL_AREA
from geo_service.coverage.ranking import rank
from geo_service.domain.catalogue import (
    AMENITIES,
    HOST_TYPE_ZH,
    STATUS_ZH,
    TEN_ONES_MASK,
    HostType,
    Status,
)
from geo_service.domain.html import json_for_html
from geo_service.domain.verification import is_overdue
from geo_service.maps.assets import head_html
from geo_service.maps.model import Area, MapOptions, Run, Stations

SAMPLE_NOTE = "示例数据 SAMPLE DATA — generated for demonstration, not real stations"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
#: The service's street basemap (issue 28), relative to the page's own origin.
STREETS_URL = "/tiles/base/{z}/{x}/{y}.mvt"

#: Host type → (zh, en, marker shape in ``maps.css``).
HOST_TYPES: dict[str, tuple[str, str, str]] = {
    h: (HOST_TYPE_ZH[h], en, shape) for h, en, shape in (
        (HostType.UNION_BUILT, "union-built", "circle"),
        (HostType.PARTY_SERVICE_CENTRE, "party service centre", "square"),
        (HostType.SANITATION_DEPOT, "sanitation depot", "triangle"),
        (HostType.ENTERPRISE, "enterprise", "diamond"),
        (HostType.BANK_BRANCH, "bank branch", "hexagon"),
        (HostType.VOLUNTEER, "volunteer", "star"),
        (HostType.MOBILE, "mobile", "pill"))}
STATUSES: dict[str, tuple[str, str]] = {
    s.value: (STATUS_ZH[s], s.value.replace("_", " "))
    for s in (Status.OPEN, Status.TEMPORARILY_CLOSED, Status.PLANNED)}
#: Compliance follow-up reasons: (zh, en, colour); the row's ``reason`` indexes this.
REASONS: list[tuple[str, str, str]] = [
    ("逾期且缺项", "overdue and short of the ten ones", "#7b1fa2"),
    ("核实逾期", "inspection overdue or never", "#d73027"),
    ("十个一缺项", "short of the ten ones", "#fc8d59"),
]

_COLUMNS = ("code", "name", "address", "lon", "lat", "host", "status", "hours", "phone",
            "mask", "verified", "open_now", "district", "sample", "ten", "stops", "awards",
            "reported_closed", "confirmed")


@cache
def _static(name: str) -> str:
    return resources.files("geo_service.maps").joinpath("static", name).read_text("utf-8")


class _Raw(Element):
    """Text put into the page as it is.

    branca compiles the string given to ``Element(...)`` as a Jinja template,
    which would run any ``{{ … }}`` in station names as template code (and cost
    a second pass over megabytes of data). Here the text is a template
    *variable*, never compiled.
    """

    _template = Template("{{ this.text }}")

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class _Layer(MacroElement):
    """Calls ``GEO.<fn>(map, payload)`` once the folium map exists.

    The payload sits in a ``<script type="application/json">`` block of the page
    body (as :class:`_Raw`); the call itself holds no data, so no data passes
    through a template compile.
    """

    _template = Template(
        "{% macro script(this, kwargs) %}\n"
        "GEO.{{ this.fn }}({{ this._parent.get_name() }}, "
        "JSON.parse(document.getElementById('{{ this.block }}').textContent));\n"
        "{% endmacro %}"
    )

    def __init__(self, m: folium.Map, fn: str, payload: dict[str, Any]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        fig = m.get_root()
        assert isinstance(fig, Figure)
        self._name = "GeoLayer"
        self.fn = fn
        self.block = f"geo-payload-{self.get_name()}"
        fig.html.add_child(_Raw(f'<script type="application/json" id="{self.block}">'
                                f"{json_for_html(payload)}</script>"), name=self.block)


def local_time(at: dt.datetime) -> str:
    """``2026-11-30 14:05 (UTC+8)``: how the page says when it was made."""
    return at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M (UTC+8)")


def _bounds(lon: np.ndarray, lat: np.ndarray,
            features: list[dict[str, Any]]) -> list[list[float]] | None:
    """[[south, west], [north, east]] of the points, else of the outlines."""
    if len(lon):
        return [[float(lat.min()), float(lon.min())], [float(lat.max()), float(lon.max())]]
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], int | float):
            xs.append(c[0])
            ys.append(c[1])
        else:
            for part in c:
                walk(part)

    for f in features:
        walk(f["geometry"]["coordinates"])
    if not xs:
        return None
    return [[min(ys), min(xs)], [max(ys), max(xs)]]


def _page(opts: MapOptions, title: str, bounds: list[list[float]] | None) -> folium.Map:
    """An empty folium map with our assets, basemap and scale, fitted to ``bounds``."""
    fig = Figure(title=html.escape(title))
    m = folium.Map(location=[35.0, 105.0], zoom_start=4, tiles=None, control_scale=True,
                   max_zoom=opts.basemap.max_zoom)
    m.add_to(fig)
    # Folium's CDN defaults (jQuery, Bootstrap, Font Awesome…) are not used here.
    m.default_js = []
    m.default_css = []
    # No favicon request (it would be a 404, or an outside request on a file:// page).
    fig.header.add_child(_Raw('<link rel="icon" href="data:,">'), name="geo_icon")
    fig.header.add_child(_Raw(head_html(opts.assets, opts.asset_prefix, streets=opts.streets)),
                         name="geo_assets")
    fig.header.add_child(_Raw(f"<style>{_static('maps.css')}</style>"), name="geo_css")
    fig.header.add_child(_Raw(f"<script>{_static('maps.js')}</script>"), name="geo_js")
    b = opts.basemap
    if b.url:
        folium.TileLayer(tiles=b.url, attr=b.attribution or " ", name=f"底图 basemap ({b.name})",
                         subdomains=b.subdomains, max_zoom=b.max_zoom, control=False).add_to(m)
    elif opts.streets:
        fig.header.add_child(_Raw(f"<script>{_static('basemap.js')}</script>"),
                             name="geo_basemap_js")
        m.add_child(_Layer(m, "baseLayer", {"url": STREETS_URL, "lang": "zh"}))
    if bounds:
        m.fit_bounds(bounds, padding=(20, 20))
    return m


def _districts(m: folium.Map, features: list[dict[str, Any]], labels: dict[str, str],
               value_alias: str) -> None:
    """District outlines with a tooltip naming each and its figure (counts or share).

    folium's tooltip writes property values into the page as HTML, so the
    names are escaped here (an area named ``<img onerror=…>`` stays text).
    """
    if not features:
        return
    fc = {"type": "FeatureCollection", "features": [
        {**f, "properties": {**f["properties"], "name": html.escape(f["properties"]["name"] or ""),
                             "figure": html.escape(labels.get(f["id"], "—"))}}
        for f in features]}
    folium.GeoJson(
        fc, name="区界 district outlines",
        style_function=lambda _f: {"color": "#37474f", "weight": 2, "dashArray": "6 4",
                                   "fillOpacity": 0.02, "fillColor": "#90a4ae"},
        highlight_function=lambda _f: {"weight": 3, "fillOpacity": 0.08},
        tooltip=GeoJsonTooltip(["name", "figure"], aliases=["区 District", value_alias],
                               sticky=True),
        interactive=True,
    ).add_to(m)


def _common(opts: MapOptions, area: Area, sample: bool, title: str) -> dict[str, Any]:
    where = area.name + (f" {area.name_en}" if area.name_en else "")
    crs_note = ("坐标已转换为 GCJ-02 以匹配底图 points shifted to GCJ-02 for this basemap"
                if opts.crs.value == "gcj02" else "WGS-84")
    return {
        "title": title,
        "subtitle": f"{where} · {local_time(opts.at)} · {crs_note}",
        "sample": sample, "sample_note": SAMPLE_NOTE,
        "at": opts.at.astimezone(dt.UTC).isoformat(), "at_label": local_time(opts.at),
        "host_types": HOST_TYPES, "statuses": STATUSES, "max_zoom": opts.basemap.max_zoom,
    }


def _station_payload(st: Stations) -> dict[str, Any]:
    """Stations as rows of plain values; host, status and hours as indexes."""
    hosts = list(HOST_TYPES)
    statuses = list(STATUSES)
    hours: dict[str | None, int] = {}  # None: hours unknown (the popup says so)
    rows = []
    ten = st.ten_ones().tolist()
    lon = np.round(st.lon, 6).tolist()
    lat = np.round(st.lat, 6).tolist()
    for i in range(len(st)):
        h = hours.setdefault(st.opening_hours[i], len(hours))
        v = st.last_verified_on[i]
        rows.append([st.code[i], st.name[i], st.address[i], lon[i], lat[i],
                     hosts.index(st.host_type[i]), statuses.index(st.status[i]), h,
                     st.phone[i], st.amenity_mask[i], v.isoformat() if v else None,
                     st.open_now[i], st.district_code[i], st.sample[i], ten[i],
                     st.stops[i], st.awards[i] or None,
                     st.reported_closed_at[i] is not None,
                     local_time(c) if (c := st.last_confirmed_at[i]) else None])
    return {
        "columns": {name: i for i, name in enumerate(_COLUMNS)},
        "hosts": hosts, "statuses_list": statuses, "hours": list(hours), "rows": rows,
        "catalogue": [[a.code, a.bit, a.label_zh, a.label_en, a.ten_ones] for a in AMENITIES],
        "ten_mask": TEN_ONES_MASK,
    }


def _district_counts(st: Stations, keep: np.ndarray | None = None) -> dict[str, str]:
    """``{district code: "21 座 stations · 18 开放 open · 9 十个一齐全 complete"}``."""
    ten = st.ten_ones()
    out: dict[str, list[int]] = {}
    for i, code in enumerate(st.district_code):
        if code is None or (keep is not None and not keep[i]):
            continue
        c = out.setdefault(code, [0, 0, 0])
        c[0] += 1
        c[1] += st.status[i] == "open"
        c[2] += int(ten[i]) == 10
    return {k: f"{n} 座 stations · {o} 开放 open · {t} 十个一齐全 complete"
            for k, (n, o, t) in out.items()}


def stations_map(st: Stations, districts: list[dict[str, Any]], area: Area,
                 opts: MapOptions) -> str:
    """Every station of the area, coloured by ten-ones completeness, shaped by host type."""
    title = "户外劳动者服务站点 Outdoor-worker stations"
    m = _page(opts, f"{title} · {area.name}", _bounds(st.lon, st.lat, districts))
    _districts(m, districts, _district_counts(st), "站点 Stations")
    payload = {**_common(opts, area, st.any_sample, title), **_station_payload(st),
               "kind": "stations", "legend_title": "十个一完成度 Ten-ones completeness",
               "count": len(st)}
    m.add_child(_Layer(m, "stationsLayer", payload))
    folium.LayerControl(position="topright", collapsed=True).add_to(m)
    return str(m.get_root().render())


def compliance_flags(st: Stations, opts: MapOptions) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """Per station: overdue (:func:`~geo_service.domain.verification.is_overdue`: a
    serving station never verified or not within ``overdue_days``), short of
    ``min_ten_ones``, and the follow-up reason index (-1: nothing to follow up)."""
    today = opts.at.astimezone(LOCAL_TZ).date()
    overdue = np.asarray([is_overdue(s, v, today, opts.overdue_days)
                          for s, v in zip(st.status, st.last_verified_on, strict=True)],
                         dtype=bool)
    short = st.ten_ones() < opts.min_ten_ones
    reason = np.where(overdue & short, 0, np.where(overdue, 1, np.where(short, 2, -1)))
    return overdue, short, reason


def compliance_map(st: Stations, districts: list[dict[str, Any]], area: Area,
                   opts: MapOptions) -> str:
    """Stations to follow up: inspection overdue, or fewer than N of the ten ones."""
    overdue, _short, reason = compliance_flags(st, opts)
    keep = reason >= 0
    title = "站点整改跟进 Stations to follow up"
    m = _page(opts, f"{title} · {area.name}", _bounds(st.lon[keep], st.lat[keep], districts))
    counts: dict[str, int] = {}
    for i, code in enumerate(st.district_code):
        if code is not None and keep[i]:
            counts[code] = counts.get(code, 0) + 1
    _districts(m, districts, {k: f"{v} 座需跟进 to follow up" for k, v in counts.items()},
               "跟进 Follow-up")
    base = _station_payload(st)
    columns = {**base["columns"], "reason": len(_COLUMNS), "overdue": len(_COLUMNS) + 1}
    rows = [[*row, int(reason[i]), bool(overdue[i])]
            for i, row in enumerate(base["rows"]) if keep[i]]
    common = _common(opts, area, st.any_sample, title)
    common["subtitle"] += (f" · 核实期限 inspection due every {opts.overdue_days} 天 days · "
                           f"十个一 ≥ {opts.min_ten_ones}/10 · {int(keep.sum())} / {len(st)} "
                           f"座需跟进 stations to follow up")
    payload = {**common, **base, "columns": columns, "rows": rows, "kind": "compliance",
               "reasons": REASONS, "overdue_days": opts.overdue_days,
               "min_ten_ones": opts.min_ten_ones, "count": int(keep.sum()),
               "legend_title": "跟进原因 Reason"}
    m.add_child(_Layer(m, "stationsLayer", payload))
    folium.LayerControl(position="topright", collapsed=True).add_to(m)
    return str(m.get_root().render())


def _breaks(values: list[float], k: int = 5) -> list[float]:
    """Upper bounds of ``k`` quantile classes of the gap demand (the last is the max)."""
    if not values:
        return [0.0]
    qs = np.quantile(np.asarray(values), np.linspace(0, 1, k + 1)[1:])
    out: list[float] = []
    for q in qs.tolist():
        if not out or q > out[-1]:
            out.append(float(q))
    return out


_METHOD_ZH = {"swap": "贪心+交换 greedy + swaps", "lazy_greedy": "贪心 greedy",
              "exact": "精确求解 exact (HiGHS)", "swap_share": "贪心+交换 greedy + swaps",
              "greedy_share": "贪心 greedy"}


def at_least(share: float) -> str:
    """A proven share, rounded down (never claim more than is proven): '99.3%', '99.98%'."""
    if share >= 0.999:
        return f"{math.floor(share * 10_000 + 1e-9) / 100:.2f}%"
    return f"{math.floor(share * 1000 + 1e-9) / 10:.1f}%"


def plan_note(summary: dict[str, Any]) -> str | None:
    """How a recommendations run chose its sites, how long it took, how close to the best.

    The share is rounded *down* (:func:`at_least`): the page never claims more than is
    proven.
    Runs stored before the certified bound existed carry no such figures: None.
    """
    method = summary.get("method")
    if method is None or "solver_seconds" not in summary:
        return None
    note = (f"选址方法 {_METHOD_ZH.get(method, method)} · 用时 {summary['solver_seconds']:.1f} s")
    share = summary.get("at_least_share_of_best")
    if share is not None:
        pct = at_least(share)
        note += f" · 至少达到最优方案的 {pct} (proven ≥ {pct} of the best possible)"
    elif summary.get("sites_lower_bound") is not None:
        low = summary["sites_lower_bound"]
        note += f" · 至少需要 {low} 个站点 (proven: no fewer than {low} sites reach the target)"
    return note


#: A road reach in words: how the worker goes.
_REACH_ZH = {"walk": ("步行", "on foot"), "ebike": ("电动车", "by e-bike")}


def _share_words(share: float, straight: float | None, reach: str) -> str:
    """A district's covered share; by road with the straight-line share of the same run
    beside it, so the planner sees where the circle lies about the real way."""
    if reach not in _REACH_ZH or straight is None:
        return f"{share * 100:.1f}% 覆盖 covered"
    zh, en = _REACH_ZH[reach]
    return (f"直线覆盖 {straight * 100:.1f}% / {zh}实际覆盖 {share * 100:.1f}% "
            f"(straight-line {straight * 100:.1f}% / {en} by road {share * 100:.1f}%)")


def _reach_subtitle(summary: dict[str, Any]) -> str:
    """The run's coverage rule for the subtitle: the straight radius, or the limit by road."""
    threshold = summary.get("threshold_m")
    reach = summary.get("reach", "straight")
    if reach in _REACH_ZH:
        zh, en = _REACH_ZH[reach]
        limit_s, limit_m = summary.get("reach_limit_s"), summary.get("reach_limit_m")
        limit = f"{limit_s / 60:.0f} 分钟 min" if limit_s is not None else f"{limit_m:.0f} m"
        return f" · {zh}按路网 {limit} {en} by road"
    return f" · 覆盖半径 within {threshold:.0f} m" if threshold else ""


def coverage_map(run: Run, st: Stations, districts: list[dict[str, Any]], area: Area,
                 opts: MapOptions) -> str:
    """A stored run: cells by uncovered demand, covered / doubly covered, picked sites."""
    title = "覆盖缺口与建议选址 Coverage gaps and recommended sites"
    lon = np.asarray([p[1] for c in run.cells for p in c["ring"]], dtype=float)
    lat = np.asarray([p[0] for c in run.cells for p in c["ring"]], dtype=float)
    m = _page(opts, f"{title} · {area.name}", _bounds(lon, lat, districts))
    shares = {}
    unit = "格 H3 cells" if run.summary.get("basis") == "area" else "人"
    reach = run.summary.get("reach", "straight")
    for row in run.summary.get("areas", []):
        share = row.get("covered_share")
        if row.get("area") and share is not None:
            shares[row["area"]] = (_share_words(share, row.get("straight_covered_share"), reach)
                                   + f" · {row.get('uncovered_demand', 0):.0f} {unit}"
                                   "未覆盖 uncovered")
    _districts(m, districts, shares, "覆盖率 Covered share")
    cell_columns = ("cell", "area", "demand", "nearest", "nearest_m", "covered", "doubly",
                    "ring")
    cells = [[c[k] for k in cell_columns] for c in run.cells]
    summary = run.summary
    total = summary.get("total_demand")
    if total is None:
        total = next((a.get("demand") for a in summary.get("areas", [])
                      if a.get("area") == TOTAL_AREA), None)
    common = _common(opts, area, run.sample or st.any_sample, title)
    common["subtitle"] += (f" · run #{run.id} ({run.kind}, {local_time(run.created_at)})"
                           + _reach_subtitle(summary)
                           + f" · H3 res {summary.get('resolution', '?')}")
    if summary.get("basis") == "area":  # no demand data: shares of H3 cells (area_cover)
        common["subtitle"] += f" · {summary.get('basis_label', '')}"
    note = plan_note(summary)
    if note:
        common["subtitle"] += f" · {note}"
    names = {f["id"]: f["properties"]["name"] for f in districts}
    closed = set((summary.get("whatif") or {}).get("closed") or [])
    board = [{"area": r.get("area"), "name": r["name"], "stations": r.get("stations", 0),
              "covered_share": r.get("covered_share"), "doubly_share": r.get("doubly_share"),
              "uncovered_demand": r.get("uncovered_demand", 0.0),
              "straight_covered_share": r.get("straight_covered_share"),
              "total": r.get("area") == TOTAL_AREA}
             for r in rank(summary.get("areas", []), names)]
    payload = {
        **common, "kind": "coverage", "run": run.id, "scorecard": board,
        # by road the table's covered column is the road's, the straight one beside it
        "scorecard_reach": None if reach not in _REACH_ZH else {
            "covered": f"{_REACH_ZH[reach][0]}实际覆盖 By road",
            "straight": "直线覆盖 Straight"},
        "cell_columns": {k: i for i, k in enumerate(cell_columns)}, "cells": cells,
        "breaks": _breaks([c["demand"] for c in run.cells if not c["covered"]]),
        "cell_labels": {"gap": "缺口 gap (uncovered)", "covered": "已覆盖 covered once",
                        "doubly": "双重覆盖 covered twice"},
        "sites": run.sites, "total_demand": total,
        "service_areas": run.service_areas,
        # by road, covered is the road's and the distance the straight line's: say so
        "nearest_label": "最近站点 nearest station" if reach not in _REACH_ZH
        else "最近站点（直线距离） nearest station (straight line)",
        "service_area_label": "站点服务范围（按路网） station service areas by road",
        # A what-if run's closed stations are not drawn: the map shows the state tried.
        "stations": [[x, y, n] for x, y, n, c in zip(np.round(st.lon, 6).tolist(),
                                                      np.round(st.lat, 6).tolist(), st.name,
                                                      st.code, strict=True)
                     if c not in closed],
        "legend_title": "未覆盖需求 Uncovered demand per cell",
    }
    m.add_child(_Layer(m, "coverageLayer", payload))
    return str(m.get_root().render())
