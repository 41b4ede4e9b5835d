"""The console's worker-reports page: the queue of the signed-in area, grouped by station.

One row per station, kind (and amenity) and status: when it was first and last reported
(local time), the workers' notes, how many independent reporters (devices) said it, and
one form to resolve, reject or reopen the whole row with a note. Rows come from
:func:`geo_service.operations.reports.report_groups`; this module only renders them.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from geo_service.console.pages import csrf_field, notes, page, t
from geo_service.domain.catalogue import AMENITY_BY_CODE
from geo_service.domain.models import REPORT_KINDS

STATUSES = ("open", "resolved", "rejected", "all")
#: A report kind as people read it.
KIND_LABELS: dict[str, tuple[str, str]] = {
    "closed": ("驿站已关闭", "Station closed"),
    "amenity_missing": ("缺少设施", "Amenity missing"),
    "amenity_broken": ("设施损坏", "Amenity broken"),
    "wrong_location": ("位置不对", "Wrong location"),
    "moved": ("已搬迁", "Moved"),
    "other": ("其他", "Other"),
}
_T: dict[str, tuple[str, str]] = {
    "reports": ("工人报告", "Worker reports"),
    "status": ("状态", "Status"),
    "kind": ("类型", "Kind"),
    "any_kind": ("全部类型", "All kinds"),
    "st_open": ("待处理", "open"),
    "st_resolved": ("已处理", "resolved"),
    "st_rejected": ("已驳回", "rejected"),
    "st_all": ("全部", "all"),
    "filter": ("筛选", "Filter"),
    "first": ("首次报告", "First reported"),
    "last": ("最近报告", "Last reported"),
    "notes": ("工人备注", "Workers' notes"),
    "reporters": ("报告设备数", "Devices"),
    "reporters_note": ("“报告设备数”为独立报告人数：同一设备或同一网络地址只算一人；同一设备在 "
                       "{m} 分钟内重复报告同一问题只记一次。时间为{tz}。",
                       "“Devices” counts independent reporters: one device or one network "
                       "address is one reporter, and a device repeating the same report "
                       "within {m} minutes is counted once. Times are {tz}."),
    "decide": ("处理", "Decide"),
    "note": ("处理说明（可选）", "Note (optional)"),
    "act_resolved": ("标为已处理", "Resolve"),
    "act_rejected": ("驳回", "Reject"),
    "act_reopened": ("重新打开", "Reopen"),
    "done_resolved": ("已将 {n} 条报告标为已处理。", "{n} report(s) resolved."),
    "done_rejected": ("已驳回 {n} 条报告。", "{n} report(s) rejected."),
    "done_reopened": ("已重新打开 {n} 条报告。", "{n} report(s) reopened."),
    "none": ("没有符合条件的报告。", "No reports match."),
    "more": ("下一页", "Next page"),
    "closed_warning": ("⚠ 有工人报告此驿站已关闭，尚未处理：请核实。处理前此提醒一直显示。",
                       "⚠ Workers report this station closed and nobody has decided it yet: "
                       "please check. This warning stays until the report is decided."),
    "marked": ("附近驿站查询中已标注“有人报告已关闭”。",
               "Nearest-station results show it as reported closed."),
    "sample_station": ("标“示例”的驿站为示例数据。", "Stations marked “sample” are sample data."),
    "reports_n": ("{n} 条", "{n} report(s)"),
    "latest": ("最近一次：{action}（{who}，{at}）", "Latest: {action} ({who}, {at})"),
    "did_resolved": ("已处理", "resolved"),
    "did_rejected": ("已驳回", "rejected"),
    "did_reopened": ("重新打开", "reopened"),
}


def _t(lang: str, key: str, **values: Any) -> str:
    text = _T[key][0 if lang == "zh" else 1]
    return text.format(**{k: escape(str(v)) for k, v in values.items()})


def kind_label(lang: str, kind: str, amenity: str | None) -> str:
    """The kind in the page's language, with the amenity's name for amenity reports."""
    label = KIND_LABELS[kind][0 if lang == "zh" else 1]
    found = AMENITY_BY_CODE.get(amenity) if amenity else None
    if found is not None:
        label += f"：{found.label_zh}" if lang == "zh" else f": {found.label_en}"
    return escape(label)


def _query(lang: str, **params: str | None) -> str:
    """A query string keeping the filters (and ``lang=en``)."""
    kept = {k: v for k, v in params.items() if v}
    if lang == "en":
        kept["lang"] = "en"
    return "?" + urlencode(kept) if kept else ""


def _filters(lang: str, status: str, kind: str | None) -> str:
    status_opts = "".join(
        f'<option value="{s}"{" selected" if s == status else ""}>{_t(lang, "st_" + s)}'
        "</option>" for s in STATUSES)
    kind_opts = f'<option value="">{_t(lang, "any_kind")}</option>' + "".join(
        f'<option value="{k}"{" selected" if k == kind else ""}>{kind_label(lang, k, None)}'
        "</option>" for k in REPORT_KINDS)
    lang_field = '<input type="hidden" name="lang" value="en">' if lang == "en" else ""
    return ('<form class="card filters" method="get" action="/console/reports">' + lang_field
            + f'<label for="f_status">{_t(lang, "status")}</label>'
            f'<select id="f_status" name="status">{status_opts}</select>'
            f'<label for="f_kind">{_t(lang, "kind")}</label>'
            f'<select id="f_kind" name="kind">{kind_opts}</select>'
            f'<button type="submit">{_t(lang, "filter")}</button></form>')


def _decide_form(lang: str, csrf: str, group: dict[str, Any], status: str,
                 kind: str | None) -> str:
    """One form deciding every report of the row (their ids and versions travel along)."""
    first_id = group["reports"][0][0]
    actions = ("reopened",) if group["status"] != "open" else ("resolved", "rejected")
    hidden = "".join(f'<input type="hidden" name="report" value="{rid}:{version}">'
                     for rid, version in group["reports"])
    keep = "".join(f'<input type="hidden" name="{k}" value="{escape(v)}">'
                   for k, v in (("status", status), ("kind", kind or "")))
    buttons = "".join(f'<button type="submit" name="action" value="{a}"'
                      f'{" class=plain" if a != "resolved" else ""}>{_t(lang, "act_" + a)}'
                      "</button>" for a in actions)
    action = "/console/reports/decide" + _query(lang)
    return (f'<form class="decide" method="post" action="{action}">{csrf_field(csrf)}{hidden}'
            f'{keep}<label for="note-{first_id}">{_t(lang, "note")}</label>'
            f'<textarea id="note-{first_id}" name="note" rows="2" maxlength="1000"></textarea>'
            f'<div class="buttons">{buttons}</div></form>')


def _latest(lang: str, decision: dict[str, Any] | None, tz: ZoneInfo) -> str:
    """The row's latest decision: what, by whom, when, and its note."""
    if decision is None:
        return ""
    at = f"{decision['created_at'].astimezone(tz):%Y-%m-%d %H:%M}"
    text = _t(lang, "latest", action=_T["did_" + decision["action"]][0 if lang == "zh" else 1],
              who=decision["editor"], at=at)
    if decision["note"]:
        text += ("：" if lang == "zh" else ": ") + escape(decision["note"])
    return f'<p class="latest">{text}</p>'


def _station(lang: str, csrf: str, st: dict[str, Any], tz: ZoneInfo, status: str,
             kind: str | None) -> str:
    def when(at: dt.datetime) -> str:
        local = at.astimezone(tz)
        return f"{local:%Y-%m-%d}<br>{local:%H:%M}"

    tag = f' <span class="tag">{t(lang, "sample")}</span>' if st["sample"] else ""
    warning = ""
    if st["open_closed"]:
        warning = (f'<p class="err" role="note">{_t(lang, "closed_warning")}'
                   + (f" {_t(lang, 'marked')}" if st["reported_closed"] else "") + "</p>")
    heads = "".join(f'<th scope="col">{_t(lang, k)}</th>' for k in
                    ("kind", "status", "first", "last", "notes", "reporters", "decide"))
    rows = []
    for g in st["groups"]:
        note_list = "".join(f"<li>{escape(n)}</li>" for n in g["notes"])
        rows.append(
            f'<tr><td>{kind_label(lang, g["kind"], g["amenity"])}<br>'
            f'<small>{_t(lang, "reports_n", n=len(g["reports"]))}</small></td>'
            f'<td class="when">{_t(lang, "st_" + g["status"])}</td>'
            f'<td class="when">{when(g["first"])}</td><td class="when">{when(g["last"])}</td>'
            f'<td>{f"<ul class=notes>{note_list}</ul>" if note_list else "—"}</td>'
            f'<td>{g["reporters"]}</td>'
            f'<td class="decide">{_latest(lang, g["decision"], tz)}'
            f'{_decide_form(lang, csrf, g, status, kind)}</td></tr>')
    label = escape(f'{st["name"]} ({st["code"]})')
    return (f'<section class="card station" aria-labelledby="st-{escape(st["code"])}">'
            f'<h2 id="st-{escape(st["code"])}"><a href="/console/stations/'
            f'{escape(st["code"])}{"?lang=en" if lang == "en" else ""}">{label}</a>{tag}</h2>'
            f"{warning}"
            f'<div class="scroll" role="region" aria-label="{label}" tabindex="0">'
            f'<table class="queue"><thead><tr>{heads}</tr></thead><tbody>{"".join(rows)}'
            "</tbody></table>"
            "</div></section>")


def reports_page(lang: str, csrf: str, *, who: str, admin: bool, queue: dict[str, Any],
                 status: str, kind: str | None, tz: str, dedup_minutes: int,
                 message: str | None = None, error: str | None = None) -> str:
    """The whole page: the filters, one section per station, a link to the next page."""
    zone = ZoneInfo(tz)
    sections = "".join(_station(lang, csrf, st, zone, status, kind) for st in queue["stations"])
    if not sections:
        sections = f'<section class="card"><p>{_t(lang, "none")}</p></section>'
    more = ""
    if queue["next_cursor"]:
        more = (f'<p><a href="/console/reports'
                f'{escape(_query(lang, status=status, kind=kind, cursor=queue["next_cursor"]))}'
                f'">{_t(lang, "more")}</a></p>')
    sample = any(st["sample"] for st in queue["stations"])
    tz_name = "北京时间" if lang == "zh" and tz == "Asia/Shanghai" else tz
    body = (notes(message, error) + _filters(lang, status, kind)
            + f'<p>{_t(lang, "reporters_note", m=dedup_minutes, tz=tz_name)}'
            + (f' {_t(lang, "sample_station")}' if sample else "") + "</p>"
            + sections + more)
    here = "/console/reports" + _query("zh", status=None if status == "open" else status,
                                       kind=kind)
    return page(lang, _t(lang, "reports"), body, path=here, who=who, csrf=csrf, admin=admin,
                editor=True)


def done_message(lang: str, action: str, n: int) -> str:
    return _t(lang, "done_" + action, n=n)
