"""The console's monthly bulletin page: pick an area and a month, read the figures, download.

An admin's or editor's page (as the API's ``/v1/bulletins`` takes their keys), within
their area. A GET form (area among the person's area and those below it, month) shows
the bulletin's figures as a table, the same :class:`~geo_service.bulletin.model.Bulletin`
the PDF and the workbook are drawn from; two POST forms with the session's CSRF token
download them (drawing takes seconds of CPU and a draw slot: not for any other site to
spend through a signed-in person's browser, as the posters page explains).
"""

from __future__ import annotations

from html import escape
from typing import Any

from geo_service.bulletin.model import COLUMNS, Bulletin, Figures, change, share
from geo_service.console.pages import csrf_field, href, notes, page

_T: dict[str, tuple[str, str]] = {
    "title": ("每月通报", "Monthly bulletin"),
    "intro": ("按月统计所选区域（含其下级区域）的驿站工作：新建、在服务、核实、上图、巡查、"
              "逾期、工人报告、服务人次和覆盖变化，可下载 PDF 或 Excel。月份按自然月计算。",
              "An area's month in figures (the area and those within it): stations built, "
              "serving, verified, on the map; inspections and overdue ones; worker reports; "
              "person-times; coverage change. Download it as PDF or Excel. A month is the "
              "calendar month."),
    "area": ("区域", "Area"),
    "month": ("月份", "Month"),
    "show": ("查看", "Show"),
    "pdf": ("下载 PDF", "Download PDF"),
    "xlsx": ("下载 Excel", "Download Excel"),
    "figures": ("{area} {month} 分区统计", "{area}, {month}: figures by district"),
    "district": ("区域", "Area"),
    "covered": ("覆盖率", "Covered"),
    "change": ("覆盖变化", "Coverage change"),
    "total": ("合计", "Total"),
    "workers": ("按工种服务人次", "Person-times by worker type"),
    "worker": ("工种", "Worker type"),
    "person_times": ("服务人次", "Person-times"),
    "none": ("本月没有签到。", "No check-ins this month."),
    "runs": ("覆盖变化比较的覆盖分析：月末 {after}；上月末 {before}。",
             "Coverage change compares the coverage runs at the month's end: {after}; at "
             "the previous month's end: {before}."),
    "no_run": ("无", "none"),
    "overdue_rule": ("逾期未巡查：在服务的驿站截至月末 {n} 天内没有巡查、也没有核实。",
                     "Overdue: a serving station not inspected or verified in the {n} days "
                     "up to the month's end."),
    "sample": ("示例数据：该区域的驿站和运营数据为示例，并非真实情况；下载的文件也如此标明。",
               "Sample data: this area's stations and operations are made up; the "
               "downloads say so too."),
    "bad_month": ("请按 年-月 选择月份，如 2026-11。", "Choose a month as YYYY-MM, e.g. 2026-11."),
    "bad_area": ("请选择您管辖范围内的区域。", "Choose an area within yours."),
    "unknown_area": ("没有编号为 {code} 的区域。", "There is no area {code}."),
    "busy": ("正在生成的文件已达本服务同时生成的上限，请 {s} 秒后再试。",
             "The service is drawing as many files as it draws at once: try again in {s} "
             "seconds."),
}


def bt(lang: str, key: str, **values: Any) -> str:
    """The page's text ``key`` in ``lang`` (values escaped)."""
    return _T[key][0 if lang == "zh" else 1].format(
        **{k: escape(str(v)) for k, v in values.items()})


def _run(lang: str, run: Any) -> str:
    return bt(lang, "no_run") if run is None else f"#{run.id} ({run.created_at:%Y-%m-%d})"


def _row(lang: str, f: Figures, total: bool = False) -> str:
    cell = "th" if total else "td"
    name = bt(lang, "total") + "：" + escape(f.name) if total else escape(f.name)
    return (f'<tr><{cell} scope="row">{name} <small>({escape(f.code)})</small></{cell}>'
            + "".join(f"<td>{getattr(f, a)}</td>" for a, _zh, _en in COLUMNS)
            + f"<td>{share(f.covered_after)}</td><td>{change(f.coverage_change)}</td></tr>")


def figures_html(lang: str, b: Bulletin) -> str:
    """The bulletin's figures as the page shows them: the table by district, the worker
    types, the coverage runs compared and the overdue rule."""
    en = lang == "en"
    heads = "".join(f'<th scope="col">{en_ if en else zh}</th>' for _a, zh, en_ in COLUMNS)
    head = (f'<tr><th scope="col">{bt(lang, "district")}</th>{heads}'
            f'<th scope="col">{bt(lang, "covered")}</th>'
            f'<th scope="col">{bt(lang, "change")}</th></tr>')
    rows = "".join(_row(lang, d) for d in b.districts) + _row(lang, b.total, total=True)
    caption = bt(lang, "figures", area=b.area_name, month=b.month.label)
    table = (f'<div class="scroll" role="region" aria-label="{caption}" tabindex="0">'
             f'<table class="bulletin"><caption>{caption}</caption><thead>{head}</thead>'
             f"<tbody>{rows}</tbody></table></div>")
    workers = "".join(f'<tr><td>{escape(en_ if en else zh)}</td><td>{n}</td></tr>'
                      for zh, en_, n in b.by_worker)
    worker_table = (f'<h2>{bt(lang, "workers")}</h2>'
                    + (f'<table class="workers"><thead><tr><th scope="col">'
                       f'{bt(lang, "worker")}</th><th scope="col">{bt(lang, "person_times")}'
                       f"</th></tr></thead><tbody>{workers}</tbody></table>"
                       if workers else f"<p>{bt(lang, 'none')}</p>"))
    return (f'<section class="card" id="figures">{table}'
            f'<p class="small">{bt(lang, "runs", after=_run(lang, b.run_after), before=_run(lang, b.run_before))}</p>'  # noqa: E501
            f'<p class="small">{bt(lang, "overdue_rule", n=b.overdue_days)}</p>'
            f"{worker_table}</section>")


def _area_option(lang: str, area: dict[str, Any], chosen: str) -> str:
    name = area["name_en"] if lang == "en" and area.get("name_en") else area["name"]
    selected = " selected" if area["code"] == chosen else ""
    return (f'<option value="{escape(area["code"])}"{selected}>{escape(name)} '
            f'({escape(area["code"])})</option>')


def _download(lang: str, csrf: str, area: str, month: str, fmt: str) -> str:
    return (f'<form class="inline" method="post" action="{href("/console/bulletin", lang)}">'
            + csrf_field(csrf)
            + f'<input type="hidden" name="area" value="{escape(area)}">'
            f'<input type="hidden" name="month" value="{escape(month)}">'
            f'<input type="hidden" name="format" value="{fmt}">'
            f'<button type="submit">{bt(lang, fmt)}</button></form>')


def bulletin_page(lang: str, csrf: str, *, who: str, admin: bool,
                  areas: list[dict[str, Any]], area: str, month: str,
                  bulletin: Bulletin | None = None, error: str | None = None) -> str:
    """The page: the intro, the area and month form, then (once chosen) the figures and
    the two downloads, or the error that stood in the way."""
    options = "".join(_area_option(lang, a, area) for a in areas)
    form = ('<form class="card filters" method="get" action="/console/bulletin">'
            + ('<input type="hidden" name="lang" value="en">' if lang == "en" else "")
            + f'<div><label for="area">{bt(lang, "area")}</label>'
            f'<select id="area" name="area" required>{options}</select></div>'
            f'<div><label for="month">{bt(lang, "month")}</label>'
            f'<input id="month" name="month" type="month" required min="2000-01" '
            f'max="2100-12" pattern="[0-9]{{4}}-[0-9]{{2}}" value="{escape(month)}"></div>'
            f'<div><button type="submit">{bt(lang, "show")}</button></div></form>')
    out = ""
    if bulletin is not None:
        sample = (f'<p class="err">{bt(lang, "sample")}</p>' if bulletin.sample else "")
        out = (sample + '<section class="card">'
               + _download(lang, csrf, bulletin.area_code, bulletin.month.label, "pdf")
               + _download(lang, csrf, bulletin.area_code, bulletin.month.label, "xlsx")
               + "</section>" + figures_html(lang, bulletin))
    path = f"/console/bulletin?area={area}&month={month}" if bulletin else "/console/bulletin"
    body = (notes(None, error) + f'<section class="card"><p>{bt(lang, "intro")}</p></section>'
            + form + out)
    return page(lang, bt(lang, "title"), body, path=path, who=who, csrf=csrf, admin=admin,
                editor=True)
