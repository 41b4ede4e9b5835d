"""The console's station page as HTML: every field, the ten ones, the hours, the history.

Rendered from :func:`geo_service.console.station_view.station_view`, with no script.
Links (and the poster's form) lead to what other pages do: edit, close, reopen and
delete (``/console/stations/{code}/...``), photos, the poster PDF, the public pages.
The edit links are shown to editors and admins only, as only they may edit.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from geo_service.console import station_display as sf
from geo_service.console.pages import csrf_field, page
from geo_service.console.reports_pages import kind_label
from geo_service.console.stations_list import MAP_FIELDS, SERVING, VERIFY_DAYS
from geo_service.console.stations_pages import list_url, st
from geo_service.domain.catalogue import AMENITY_BY_CODE, TEN_ONES
from geo_service.domain.coords import Crs, from_wgs84
from geo_service.hours.text import hours_label

_T: dict[str, tuple[str, str]] = {
    "back": ("返回驿站列表", "Back to the stations"),
    "actions": ("操作", "Actions"),
    "edit": ("编辑", "Edit"), "close": ("关闭", "Close"), "reopen": ("重新开放", "Reopen"),
    "delete": ("删除", "Delete"), "photos": ("照片", "Photos"),
    "inspect": ("记录巡查", "Record an inspection"),
    "poster": ("打印海报（PDF）", "Print the poster (PDF)"),
    "test_print": ("测试打印（本服务未设置公开地址）", "Test print (no public address is set)"),
    "public": ("公开页面", "Public pages"),
    "app_page": ("骑手应用中的本站", "In the couriers' app"),
    "checkin": ("签到页", "Check-in page"), "api": ("API 数据（JSON）", "API record (JSON)"),
    "amap": ("在高德地图中查看", "Open in Amap"),
    "hours": ("开放时间", "Opening hours"),
    "typed": ("保存的写法（OSM 语法）", "As stored (OSM syntax)"),
    "plain": ("中文说明", "In plain Chinese"),
    "open_now": ("现在营业", "Open now"), "closed_now": ("现在已关门", "Closed now"),
    "unknown_now": ("无法判断现在是否营业", "Cannot tell whether it is open now"),
    "not_open": ("驿站当前状态为“{s}”，不营业", "The station is “{s}”: not open"),
    "next_open": ("将于 {at} 开门", "opens at {at}"),
    "next_close": ("将于 {at} 关门", "closes at {at}"),
    "provisional": ("（今年的放假安排尚未录入，按法定节假日推算）",
                    "(this year's holiday arrangement is not entered yet: statutory days "
                    "only)"),
    "ten": ("十个一", "The ten ones"), "has": ("有", "yes"), "lacks": ("无", "no"),
    "ten_count": ("共 {n}/10 项", "{n} of 10"), "extras": ("其他设施", "Other amenities"),
    "fields": ("全部字段", "Every field"),
    "checks": ("核实与上图", "Verification and map readiness"),
    "verified": ("最近核实（导入日期与巡查取较晚者）",
                 "Last verified (the later of the imported date and the latest inspection)"),
    "never": ("从未核实", "never"),
    "overdue": ("已超过 {d} 天未核实", "not verified for over {d} days"),
    "on_map": ("上图所需信息", "What the maps need"),
    "map_ready": ("齐全", "complete"), "map_lacks": ("缺：{what}", "lacks: {what}"),
    "reports": ("工人报告", "Worker reports"),
    "reports_summary": ("共 {n} 条，其中待处理 {o} 条（列出最近 {k} 条）。",
                        "{n} in all, {o} open (the latest {k} listed)."),
    "reports_more": ("超过 {n} 条，仅统计最早的 {n} 条。", "More than {n}; counted the first {n}."),
    "to_queue": ("到工人报告队列处理", "Work them in the reports queue"),
    "no_reports": ("没有工人报告。", "No worker reports."),
    "closed_reported": ("⚠ 有工人报告此驿站已关闭（{at}），尚未处理。",
                        "⚠ Workers reported this station closed ({at}); not decided yet."),
    "when": ("时间", "When"), "kind": ("类型", "Kind"), "state": ("状态", "Status"),
    "note": ("备注", "Note"), "st_open": ("待处理", "open"),
    "st_resolved": ("已处理", "resolved"), "st_rejected": ("已驳回", "rejected"),
    "inspections": ("巡查记录", "Inspections"), "no_inspections": ("没有巡查记录。", "None yet."),
    "insp_date": ("巡查日期", "Date"), "score": ("评分", "Score"),
    "remarks": ("备注", "Remarks"), "latest": ("（最新）", " (latest)"),
    "visits": ("签到人次（按月）", "Check-ins per month"),
    "month": ("月份", "Month"), "count": ("人次", "Check-ins"),
    "visits_total": ("近 {m} 个月共 {n} 人次。", "{n} in the last {m} months."),
    "history": ("修改记录", "History"),
    "history_note": ("谁在何时改了什么（最新在前）。", "Who changed what, when (newest first)."),
    "who": ("操作人", "Who"), "what": ("内容", "What"),
    "older": ("更早的记录", "Older entries"), "newest": ("最新记录", "Newest entries"),
    "no_history": ("没有修改记录。", "No history."),
    "editors_only": ("修改记录和工人报告仅编辑和管理员可见。",
                     "The history and the worker reports are for editors and admins."),
    "key": ("API 密钥 {name}", "API key {name}"), "empty": ("（空）", "(empty)"),
    "sample": ("示例数据：此驿站不是真实驿站。", "SAMPLE DATA: not a real station."),
    "deleted": ("此驿站已于 {at} 删除。", "This station was deleted on {at}."),
}


def _t(lang: str, key: str, **values: Any) -> str:
    text = _T[key][0 if lang == "zh" else 1]
    return text.format(**{k: escape(str(v)) for k, v in values.items()})


def _card(title: str, inner: str, ident: str) -> str:
    return (f'<section class="card" aria-labelledby="{ident}"><h2 id="{ident}">{title}</h2>'
            f"{inner}</section>")


def _table(heads: list[str], rows: list[list[str]], label: str) -> str:
    head = "".join(f'<th scope="col">{h}</th>' for h in heads)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (f'<div class="scroll" role="region" aria-label="{label}" tabindex="0"><table>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _actions(lang: str, csrf: str, s: dict[str, Any], editor: bool, public: bool,
             role: str) -> str:
    code = s["code"]
    base = f"/console/stations/{code}"
    links = []
    if editor:
        links.append(("edit", base + "/edit"))
        if s["status"] in ("open", "temporarily_closed", "planned"):
            links.append(("close", base + "/close"))
        if s["status"] in ("closed", "temporarily_closed"):
            links.append(("reopen", base + "/reopen"))
        if s["deleted_at"] is None:
            links.append(("delete", base + "/delete"))
    links.append(("photos", base + "/photos"))
    if role in ("admin", "editor", "inspector"):
        links.append(("inspect", base + "/inspect"))
    items = " ".join(f'<a class="button" href="{escape(list_url(h, lang, {}))}">'
                     f"{_t(lang, k)}</a>" for k, h in links)
    test = ("" if public else f'<label class="check" for="poster_test"><input id="poster_test" '
            f'name="test_print" type="checkbox" value="1"> {_t(lang, "test_print")}</label>')
    action = list_url("/console/posters", lang, {})
    poster = (f'<form class="inline" method="post" action="{action}">'
              f'{csrf_field(csrf)}<input type="hidden" name="what" value="station">'
              f'<input type="hidden" name="station" value="{escape(code)}">'
              f'<input type="hidden" name="size" value="A4">{test}'
              f'<button type="submit" class="plain">{_t(lang, "poster")}</button></form>')
    public_links = [(_t(lang, "app_page"), f"/app/s/{code}"),
                    (_t(lang, "checkin"), f"/v1/checkin/{code}"),
                    (_t(lang, "api"), f"/v1/stations/{code}"),
                    (_t(lang, "amap"), s["links"]["amap"])]
    pub = " · ".join(f'<a href="{escape(h)}">{n}</a>' for n, h in public_links)
    return _card(_t(lang, "actions"), f"<p>{items}</p>{poster}"
                 f'<p>{_t(lang, "public")}: {pub}</p>', "h-actions")


def _when(at: dt.datetime | None, tz: dt.tzinfo) -> str:
    return "—" if at is None else f"{at.astimezone(tz):%Y-%m-%d %H:%M}"


def _hours(lang: str, s: dict[str, Any]) -> str:
    tz = ZoneInfo(s["timezone"])
    if s["status"] != "open":
        now = _t(lang, "not_open", s=sf.value_label(lang, "status", s["status"]))
    else:
        now = _t(lang, {True: "open_now", False: "closed_now", None: "unknown_now"}
                 [s["open_now"]])
        if s["next_change"] is not None:
            now += ("，" if lang == "zh" else "; ") + _t(
                lang, "next_close" if s["open_now"] else "next_open",
                at=_when(s["next_change"], tz))
        if s["hours_provisional"]:
            now += _t(lang, "provisional")
    typed = escape(s["opening_hours"]) if s["opening_hours"] else _t(lang, "empty")
    plain = escape(hours_label(s["opening_hours"], english=lang == "en"))
    return _card(_t(lang, "hours"), f'<p class="now" role="status"><strong>{now}</strong></p>'
                 f'<dl><dt>{_t(lang, "typed")}</dt><dd><code>{typed}</code></dd>'
                 f'<dt>{_t(lang, "plain")}</dt><dd>{plain}</dd></dl>', "h-hours")


def _ten(lang: str, s: dict[str, Any]) -> str:
    have = set(s["amenities"])
    items = "".join(
        f'<li class="{"yes" if a.code in have else "no"}"><span aria-hidden="true">'
        f'{"✓" if a.code in have else "✗"}</span> '
        f'{escape(a.label_zh if lang == "zh" else a.label_en)}{"：" if lang == "zh" else ": "}'
        f'<strong>{_t(lang, "has" if a.code in have else "lacks")}</strong></li>'
        for a in TEN_ONES)
    extras = [AMENITY_BY_CODE[c] for c in s["amenities"] if not AMENITY_BY_CODE[c].ten_ones]
    more = ("、" if lang == "zh" else ", ").join(
        escape(a.label_zh if lang == "zh" else a.label_en) for a in extras) or "—"
    colon = "：" if lang == "zh" else ": "
    return _card(_t(lang, "ten"), f'<p>{_t(lang, "ten_count", n=s["ten_ones"]["count"])}</p>'
                 f'<ul class="ten">{items}</ul><p>{_t(lang, "extras")}{colon}{more}</p>',
                 "h-ten")


def _fields(lang: str, s: dict[str, Any], tz: dt.tzinfo) -> str:
    g_lon, g_lat = from_wgs84(s["lon"], s["lat"], Crs.GCJ02)
    rows = [(sf.label(lang, k), sf.value_label(lang, k, s.get(k), tz))
            for k in sf.FIELDS if k not in ("lon", "lat")]
    rows[8:8] = [(sf.label(lang, "wgs84"), f'{s["lon"]:.7f}, {s["lat"]:.7f}'),
                 (sf.label(lang, "gcj02"), f"{g_lon:.7f}, {g_lat:.7f}")]
    body = "".join(f'<tr><th scope="row">{k}</th><td>{v}</td></tr>' for k, v in rows)
    return _card(_t(lang, "fields"), f'<div class="scroll" role="region" aria-label="'
                 f'{_t(lang, "fields")}" tabindex="0"><table class="fields"><tbody>{body}'
                 "</tbody></table></div>", "h-fields")


def _checks(lang: str, view: dict[str, Any]) -> str:
    s, verified = view["station"], view["verified_on"]
    when = _t(lang, "never") if verified is None else f"{verified:%Y-%m-%d}"
    late = s["status"] in SERVING and (
        verified is None or verified < view["today"] - dt.timedelta(days=VERIFY_DAYS))
    if late and verified is not None:
        when += f' <span class="tag">{_t(lang, "overdue", d=VERIFY_DAYS)}</span>'
    missing = [st(lang, "f_" + m) for m in MAP_FIELDS if m in view["map_missing"]]
    on_map = (_t(lang, "map_lacks", what=("、" if lang == "zh" else ", ").join(missing))
              if missing else _t(lang, "map_ready"))
    return _card(_t(lang, "checks"), f'<dl><dt>{_t(lang, "verified")}</dt><dd>{when}</dd>'
                 f'<dt>{_t(lang, "on_map")}</dt><dd>{on_map}</dd></dl>'
                 f'<p class="small">{st(lang, "rules", d=VERIFY_DAYS)}</p>', "h-checks")


def _reports(lang: str, found: dict[str, Any], tz: dt.tzinfo) -> str:
    if not found["total"]:
        return _card(_t(lang, "reports"), f'<p>{_t(lang, "no_reports")}</p>', "h-reports")
    rows = [[_when(r["created_at"], tz), kind_label(lang, r["kind"], r["amenity"]),
             _t(lang, "st_" + r["status"]), escape(r["comment"] or "—")]
            for r in found["recent"]]
    summary = _t(lang, "reports_summary", n=found["total"], o=found["open"], k=len(rows))
    return _card(_t(lang, "reports"), f"<p>{summary}"
                 + (f' {_t(lang, "reports_more", n=found["total"])}' if found["more"] else "")
                 + f' <a href="{list_url("/console/reports", lang, {})}">{_t(lang, "to_queue")}'
                 "</a></p>" + _table([_t(lang, k) for k in ("when", "kind", "state", "note")],
                                     rows, _t(lang, "reports")), "h-reports")


def _inspections(lang: str, items: list[dict[str, Any]]) -> str:
    if not items:
        return _card(_t(lang, "inspections"), f'<p>{_t(lang, "no_inspections")}</p>',
                     "h-insp")
    rows = [[f'{i["inspected_on"]:%Y-%m-%d}' + (_t(lang, "latest") if i["current"] else ""),
             f'{i["ten_ones_count"]}/10', "—" if i["score"] is None else f'{i["score"]:g}',
             escape(i["remarks"] or "—")] for i in items]
    return _card(_t(lang, "inspections"), _table(
        [_t(lang, "insp_date"), _t(lang, "ten"), _t(lang, "score"), _t(lang, "remarks")],
        rows, _t(lang, "inspections")), "h-insp")


def _visits(lang: str, counts: dict[str, Any]) -> str:
    """Check-ins per month, oldest to newest, as one row of figures under the months."""
    months = "".join(f'<th scope="col">{escape(r["key"])}</th>' for r in counts["rows"])
    figures = "".join(f'<td>{r["count"]}</td>' for r in counts["rows"])
    total = _t(lang, "visits_total", n=counts["total"], m=len(counts["rows"]))
    return _card(_t(lang, "visits"), f"<p>{total}</p>"
                 f'<div class="scroll" role="region" aria-label="{_t(lang, "visits")}" '
                 f'tabindex="0"><table><thead><tr><th scope="col">{_t(lang, "month")}</th>'
                 f'{months}</tr></thead><tbody><tr><th scope="row">{_t(lang, "count")}</th>'
                 f"{figures}</tr></tbody></table></div>", "h-visits")


def _who(lang: str, e: dict[str, Any]) -> str:
    if e["user_id"] is not None and e["display_name"]:
        account = escape(e["account"])
        return escape(e["display_name"]) + (f"（{account}）" if lang == "zh" else f" ({account})")
    if e["key_id"] is not None:
        return _t(lang, "key", name=e["actor"])
    return escape(e["actor"])


def _history(lang: str, code: str, found: dict[str, Any], tz: dt.tzinfo,
             before: int | None) -> str:
    if not found["entries"]:
        return _card(_t(lang, "history"), f'<p>{_t(lang, "no_history")}</p>', "h-history")
    rows = [[_when(e["at"], tz), _who(lang, e), sf.describe(lang, e["action"], e["changes"], tz)]
            for e in found["entries"]]
    nav = []
    if before is not None:
        nav.append(f'<a href="{escape(list_url(f"/console/stations/{code}", lang, {}))}#h-history">'
                   f'{_t(lang, "newest")}</a>')
    if found["older"] is not None:
        url = list_url(f"/console/stations/{code}", lang, {"before": str(found["older"])})
        nav.append(f'<a href="{escape(url)}#h-history">{_t(lang, "older")}</a>')
    return _card(_t(lang, "history"), f'<p>{_t(lang, "history_note")}</p>'
                 + _table([_t(lang, "when"), _t(lang, "who"), _t(lang, "what")], rows,
                          _t(lang, "history"))
                 + (f'<p class="pager">{" ".join(nav)}</p>' if nav else ""), "h-history")


def station_page(lang: str, csrf: str, *, who: str, role: str, view: dict[str, Any],
                 tz: dt.tzinfo, public: bool, before: int | None = None) -> str:
    """The whole station page for a person of ``role``."""
    s = view["station"]
    editor = role in ("admin", "editor")
    warn = ""
    if s["sample"]:
        warn += f'<p class="err" role="note">{_t(lang, "sample")}</p>'
    if s["deleted_at"] is not None:
        gone = _t(lang, "deleted", at=_when(s["deleted_at"], tz))
        warn += f'<p class="err" role="note">{gone}</p>'
    if s["reported_closed"]:
        warn += (f'<p class="err" role="note">'
                 f'{_t(lang, "closed_reported", at=_when(s["reported_closed_at"], tz))}</p>')
    head = (f'<p><a href="{escape(list_url("/console/stations", lang, {}))}">'
            f'{_t(lang, "back")}</a> · {escape(s["code"])} · '
            f'{sf.value_label(lang, "status", s["status"])}</p>')
    body = (head + warn + _actions(lang, csrf, s, editor, public, role) + _hours(lang, s)
            + _ten(lang, s) + _checks(lang, view) + _fields(lang, s, tz))
    if editor:
        body += _reports(lang, view["reports"], tz)
    body += _inspections(lang, view["inspections"])
    if view["visits"] is not None:
        body += _visits(lang, view["visits"])
    if editor:
        body += _history(lang, s["code"], view["history"], tz, before)
    else:
        body += f'<p class="small">{_t(lang, "editors_only")}</p>'
    return page(lang, s["name"], body, path=f"/console/stations/{s['code']}", who=who,
                csrf=csrf, admin=role == "admin", editor=role == "editor")
