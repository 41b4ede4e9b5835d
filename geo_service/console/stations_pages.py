"""The console's station list as HTML: the filter form, the sortable table, the pages.

Server-rendered with no script (the console's strict policy): the filters are a GET
form, each column heading is a link that sorts by it (again: the other way), the pages
are links, and the export is a link carrying the same filters. Rows come from
:func:`geo_service.console.stations_list.list_page`; this module only renders them.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any
from urllib.parse import urlencode

from geo_service.console.pages import notes, page, t
from geo_service.console.stations_list import (
    MAP_FIELDS,
    PAGE_SIZES,
    SERVING,
    SORTS,
    VERIFY_DAYS,
    Filters,
)
from geo_service.domain.catalogue import HOST_TYPE_ZH, STATUS_ZH, HostType, Status

STATUS_EN = {Status.PLANNED: "planned", Status.OPEN: "open",
             Status.TEMPORARILY_CLOSED: "temporarily closed", Status.CLOSED: "closed",
             Status.DUPLICATE: "duplicate"}
HOST_TYPE_EN = {HostType.UNION_BUILT: "union-built", HostType.PARTY_SERVICE_CENTRE:
                "party service centre", HostType.SANITATION_DEPOT: "sanitation depot",
                HostType.ENTERPRISE: "enterprise", HostType.BANK_BRANCH: "bank branch",
                HostType.VOLUNTEER: "volunteer post", HostType.MOBILE: "mobile station"}
LEVELS = {"province": ("省", "Provinces"), "city": ("市", "Cities"),
          "district": ("区县", "Districts"), "street": ("街道、乡镇", "Streets and towns")}

_T: dict[str, tuple[str, str]] = {
    "stations": ("驿站", "Stations"),
    "search": ("搜索（名称、编号或地址）", "Search (name, code or address)"),
    "area": ("区域", "Area"),
    "any_area": ("全部区域", "All areas"),
    "status": ("状态", "Status"),
    "any": ("全部", "Any"),
    "host_type": ("承办类型", "Host type"),
    "ten": ("十个一", "Ten ones"),
    "ten_complete": ("齐全（10/10）", "Complete (10 of 10)"),
    "ten_missing": ("缺项（少于 10 项）", "Missing some (fewer than 10)"),
    "unverified": ("{d} 天未核实", "Not verified for {d} days"),
    "off_map": ("尚未上图（缺上图所需信息）", "Not on the map yet (lacks what maps need)"),
    "per": ("每页", "Per page"),
    "filter": ("筛选", "Filter"),
    "clear": ("清除筛选", "Clear filters"),
    "export": ("导出（工会模板）", "Export (union template)"),
    "export_note": ("导出全部 {n} 座符合条件的驿站（不只本页），可修改后重新导入。",
                    "Exports all {n} matching stations (not only this page); edit and "
                    "import it again."),
    "total": ("共 {n} 座驿站，本页第 {a}–{b} 座。", "{n} stations; {a}–{b} on this page."),
    "none": ("没有符合条件的驿站。", "No stations match."),
    "past_end": ("共 {n} 座驿站，本页之后已没有。", "{n} stations; none after the last page."),
    "col_code": ("编号", "Code"),
    "col_name": ("名称", "Name"),
    "col_district": ("区县 · 街道", "District · street"),
    "col_status": ("状态", "Status"),
    "col_host_type": ("承办类型", "Host type"),
    "col_ten": ("十个一", "Ten ones"),
    "col_verified": ("最近核实", "Last verified"),
    "col_map": ("上图信息", "Map readiness"),
    "col_updated": ("更新时间", "Updated"),
    "never": ("从未核实", "never"),
    "overdue": ("超过 {d} 天", "over {d} days"),
    "ready": ("齐全", "complete"),
    "lacks": ("缺：{what}", "lacks: {what}"),
    "prev": ("上一页", "Previous page"),
    "next": ("下一页", "Next page"),
    "page_of": ("第 {p} / {n} 页", "Page {p} of {n}"),
    "pages": ("分页", "Pages"),
    "sort_by": ("按{col}排序", "Sort by {col}"),
    "rules": ("“{d} 天未核实”：开放或暂停开放的驿站，最近核实日期（导入的最近核实日期"
              "与最近一次巡查，取较晚者）早于 {d} 天前或从未核实。“尚未上图”：开放或暂停开放"
              "的驿站缺少地图平台所需的地址、电话、开放时间、所属区县或服务设施之一"
              "（照片功能上线后还将包括外观照片）。",
              "“Not verified for {d} days”: an open or temporarily closed station whose last "
              "verification (the later of the imported 最近核实日期 and the latest inspection) "
              "is more than {d} days ago, or never. “Not on the map yet”: an open or "
              "temporarily closed station lacking one of what the map platforms need: an "
              "address, a phone, the hours, the district or a service (and, once stations "
              "carry photos, an exterior photo)."),
    "sample_note": ("标“示例”的驿站为示例数据。", "Stations marked “sample” are sample data."),
    "f_address": ("地址", "address"),
    "f_phone": ("电话", "phone"),
    "f_opening_hours": ("开放时间", "hours"),
    "f_district": ("所属区县", "district"),
    "f_amenities": ("服务设施", "services"),
}


def st(lang: str, key: str, **values: Any) -> str:
    """The list's text ``key`` in ``lang`` (values escaped)."""
    text = _T[key][0 if lang == "zh" else 1]
    return text.format(**{k: escape(str(v)) for k, v in values.items()})


def status_label(lang: str, status: str) -> str:
    s = Status(status)
    return STATUS_ZH[s] if lang == "zh" else STATUS_EN[s]


def host_type_label(lang: str, host_type: str) -> str:
    h = HostType(host_type)
    return HOST_TYPE_ZH[h] if lang == "zh" else HOST_TYPE_EN[h]


def list_url(path: str, lang: str, params: dict[str, str]) -> str:
    """``path`` with ``params`` (and ``lang=en``) as its query."""
    kept = dict(params)
    if lang == "en":
        kept["lang"] = "en"
    return path + ("?" + urlencode(kept) if kept else "")


def area_name(lang: str, area: dict[str, Any]) -> str:
    """An area as the pick list names it: its name (English when asked and known), code."""
    name = area["name_en"] if lang == "en" and area.get("name_en") else area["name"]
    return f"{escape(name)} ({escape(area['code'])})"


def _options(values: list[tuple[str, str]], chosen: str | None, any_label: str) -> str:
    return f'<option value="">{any_label}</option>' + "".join(
        f'<option value="{escape(v)}"{" selected" if v == chosen else ""}>{escape(label)}'
        "</option>" for v, label in values)


def _area_select(lang: str, areas: list[dict[str, Any]], chosen: str | None) -> str:
    """The areas the person may pick, one group per level (市, 区县, 街道) in Chinese."""
    groups = []
    for level, (zh, en) in LEVELS.items():
        members = [a for a in areas if a["level"] == level]
        if members:
            opts = "".join(
                f'<option value="{escape(a["code"])}"'
                f'{" selected" if a["code"] == chosen else ""}>{area_name(lang, a)}'
                f'{" · " + t(lang, "sample") if a.get("sample") else ""}</option>'
                for a in members)
            groups.append(f'<optgroup label="{zh if lang == "zh" else en}">{opts}</optgroup>')
    return (f'<label for="f_area">{st(lang, "area")}</label><select id="f_area" name="area">'
            f'<option value="">{st(lang, "any_area")}</option>{"".join(groups)}</select>')


def _filters(lang: str, f: Filters, areas: list[dict[str, Any]]) -> str:
    statuses = [(s.value, status_label(lang, s.value)) for s in Status]
    hosts = [(h.value, host_type_label(lang, h.value)) for h in HostType]
    tens = [("complete", st(lang, "ten_complete")), ("missing", st(lang, "ten_missing"))]
    pers = "".join(f'<option value="{n}"{" selected" if n == f.per else ""}>{n}</option>'
                   for n in sorted(PAGE_SIZES))
    sort = ("-" if f.descending else "") + f.sort
    keep = (f'<input type="hidden" name="sort" value="{escape(sort)}">'
            + ('<input type="hidden" name="lang" value="en">' if lang == "en" else ""))

    def box(name: str, label: str, on: bool) -> str:
        return (f'<label class="check" for="f_{name}"><input id="f_{name}" name="{name}" '
                f'type="checkbox" value="1"{" checked" if on else ""}> {label}</label>')

    return ('<form class="card filters" method="get" action="/console/stations" '
            f'role="search">{keep}'
            f'<div><label for="f_q">{st(lang, "search")}</label><input id="f_q" name="q" '
            f'type="search" maxlength="100" value="{escape(f.q or "")}"></div>'
            f'<div>{_area_select(lang, areas, f.area)}</div>'
            f'<div><label for="f_status">{st(lang, "status")}</label>'
            f'<select id="f_status" name="status">'
            f'{_options(statuses, f.status, st(lang, "any"))}</select></div>'
            f'<div><label for="f_host_type">{st(lang, "host_type")}</label>'
            f'<select id="f_host_type" name="host_type">'
            f'{_options(hosts, f.host_type, st(lang, "any"))}</select></div>'
            f'<div><label for="f_ten">{st(lang, "ten")}</label><select id="f_ten" name="ten">'
            f'{_options(tens, f.ten, st(lang, "any"))}</select></div>'
            f'<div>{box("unverified", st(lang, "unverified", d=VERIFY_DAYS), f.unverified)}'
            f'{box("off_map", st(lang, "off_map"), f.off_map)}</div>'
            f'<div><label for="f_per">{st(lang, "per")}</label><select id="f_per" name="per">'
            f'{pers}</select></div>'
            f'<div><button type="submit">{st(lang, "filter")}</button> '
            f'<a href="{list_url("/console/stations", lang, {})}">{st(lang, "clear")}</a></div>'
            "</form>")


def _heading(lang: str, f: Filters, key: str) -> str:
    """A column heading: a link sorting by it (the other way when it sorts already)."""
    label = st(lang, "col_" + key)
    if key not in SORTS:
        return f'<th scope="col">{label}</th>'
    current = f.sort == key
    sort = ("" if current and f.descending else "-") + key if current else key
    aria = (f' aria-sort="{"descending" if f.descending else "ascending"}"'
            if current else "")
    arrow = (" ▼" if f.descending else " ▲") if current else ""
    url = list_url("/console/stations", lang, f.query(sort=sort, page=1))
    return (f'<th scope="col"{aria}><a href="{escape(url)}" title="'
            f'{st(lang, "sort_by", col=label)}">{label}</a>'
            f'<span aria-hidden="true">{arrow}</span></th>')


def _row(lang: str, r: dict[str, Any], today: dt.date, tz: dt.tzinfo) -> str:
    code = r["code"]
    url = escape(list_url(f"/console/stations/{code}", lang, {}))
    tag = f' <span class="tag">{t(lang, "sample")}</span>' if r["sample"] else ""
    place = " · ".join(escape(p) for p in (r["district"], r["street"]) if p) or "—"
    verified = r["verified_on"]
    serving = r["status"] in SERVING
    late = serving and (verified is None or verified < today - dt.timedelta(days=VERIFY_DAYS))
    when = st(lang, "never") if verified is None else f"{verified:%Y-%m-%d}"
    if late and verified is not None:
        when += f'<br><span class="tag">{st(lang, "overdue", d=VERIFY_DAYS)}</span>'
    missing = [st(lang, "f_" + m) for m in MAP_FIELDS if m in r["map_missing"]]
    on_map = (st(lang, "lacks", what=("、" if lang == "zh" else ", ").join(missing))
              if missing else st(lang, "ready"))
    return (f'<tr><td><a href="{url}">{escape(code)}</a></td>'
            f'<td><a href="{url}">{escape(r["name"])}</a>{tag}</td><td>{place}</td>'
            f'<td>{escape(status_label(lang, r["status"]))}</td>'
            f'<td>{escape(host_type_label(lang, r["host_type"]))}</td>'
            f'<td>{r["ten_ones"]}/10</td><td class="when">{when}</td><td>{on_map}</td>'
            f'<td class="when">{r["updated_at"].astimezone(tz):%Y-%m-%d<br>%H:%M}</td></tr>')


def _pager(lang: str, f: Filters, total: int) -> str:
    last = max(1, -(-total // f.per))
    links = []
    if f.page > 1:
        url = list_url("/console/stations", lang, f.query(page=min(f.page - 1, last)))
        links.append(f'<a rel="prev" href="{escape(url)}">{st(lang, "prev")}</a>')
    links.append(f'<span>{st(lang, "page_of", p=f.page, n=last)}</span>')
    if f.page < last:
        url = list_url("/console/stations", lang, f.query(page=f.page + 1))
        links.append(f'<a rel="next" href="{escape(url)}">{st(lang, "next")}</a>')
    return f'<nav class="pager" aria-label="{st(lang, "pages")}">{" ".join(links)}</nav>'


def stations_page(lang: str, csrf: str, *, who: str, role: str, f: Filters,
                  areas: list[dict[str, Any]], listing: dict[str, Any] | None,
                  today: dt.date, tz: dt.tzinfo, error: str | None = None,
                  status_code: int = 200) -> str:
    """The list page; ``listing`` None (a refused filter) shows the form and the error."""
    body = notes(None, error)
    if role in ("admin", "editor"):
        new = escape(list_url("/console/stations/new", lang, {}))
        body += f'<p><a class="button" href="{new}">{t(lang, "new_station")}</a></p>'
    body += _filters(lang, f, areas)
    if listing is not None:
        rows, total = listing["rows"], listing["total"]
        first = (f.page - 1) * f.per
        export = list_url("/console/stations.xlsx", lang, f.query(page=1, per=PAGE_SIZES[0]))
        summary = (st(lang, "total", n=total, a=first + 1, b=first + len(rows)) if rows
                   else st(lang, "past_end", n=total) if total else st(lang, "none"))
        heads = "".join(_heading(lang, f, k) for k in (
            "code", "name", "district", "status", "host_type", "ten", "verified", "map",
            "updated"))
        table = (f'<div class="scroll" role="region" aria-label="{st(lang, "stations")}" '
                 f'tabindex="0"><table class="stations"><thead><tr>{heads}</tr></thead><tbody>'
                 + "".join(_row(lang, r, today, tz) for r in rows) + "</tbody></table></div>"
                 if rows else "")
        sample = any(r["sample"] for r in rows)
        body += (f'<section class="card"><p role="status">{summary}</p>'
                 + (f'<p><a class="button" href="{escape(export)}" download>'
                    f'{st(lang, "export")}</a> {st(lang, "export_note", n=total)}</p>'
                    if total else "")
                 + table + (_pager(lang, f, total) if total else "")
                 + f'<p class="small">{st(lang, "rules", d=VERIFY_DAYS)}</p>'
                 + (f'<p class="small">{st(lang, "sample_note")}</p>' if sample else "")
                 + "</section>")
    here = list_url("/console/stations", "zh", f.query())
    return page(lang, st(lang, "stations"), body, path=here, who=who, csrf=csrf,
                admin=role == "admin", editor=role == "editor")
