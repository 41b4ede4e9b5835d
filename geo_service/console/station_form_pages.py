"""The station form (new and edit) and the close / reopen / delete confirmation, as HTML.

Plain fields that work without script, every problem next to its field in the page's
language (``aria-describedby``), the clerk's typed values kept. The map is progressive
enhancement: ``/console/assets/station-form.js`` (a file: the page's policy allows script
from this service only, never inline) draws the area's outline and the stations around
with Leaflet from the project's own assets, and fills the coordinates, district and street
from a click or a dragged pin. Its data travels in a JSON block, which is not script.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from geo_service.console.pages import csrf_field, href, notes, page
from geo_service.console.station_fields import choices, label
from geo_service.domain.catalogue import AMENITIES

_T: dict[str, tuple[str, str]] = {
    "new": ("新建驿站", "New station"),
    "edit": ("编辑驿站：{name}", "Edit station: {name}"),
    "basics": ("基本信息", "Basics"),
    "place": ("位置", "Location"),
    "hours": ("开放时间与联系", "Hours and contact"),
    "ten": ("十个一", "The ten ones"),
    "others": ("其他设施", "Other amenities"),
    "more": ("其他信息", "More"),
    "save": ("保存", "Save"),
    "save_again": ("核对后仍按我的内容保存", "I have checked: save my version"),
    "auto": ("由坐标自动确定", "From the coordinates"),
    "map": ("地图：点击或拖动图钉设置坐标", "Map: click or drag the pin to set the coordinates"),
    "map_note": ("地图显示您管辖区域的边界和附近驿站（无需联网）；点击地图或拖动图钉后，坐标、"
                 "区县和街道会自动填写。没有脚本时请直接填写坐标。",
                 "The map shows your area's border and the stations around (no internet "
                 "needed); click it or drag the pin to fill in the coordinates, district and "
                 "street. Without script, type the coordinates."),
    "hours_note": ("可按习惯填写，如“周一至周五 9:00-17:00；周末休息”“每天8:00-20:00”“24小时”，"
                   "或 OSM 格式。", "Type them as usual (周一至周五 9:00-17:00；周末休息, "
                   "每天8:00-20:00, 24小时) or in OSM syntax."),
    "hours_now": ("当前：{text}", "Now: {text}"),
    "crs_note": ("从高德、腾讯地图复制的坐标是 GCJ-02；GPS 设备的是 WGS-84。",
                 "Coordinates copied from Amap or Tencent are GCJ-02; a GPS device gives "
                 "WGS-84."),
    "fix": ("请修改标出的 {n} 处后再保存。", "Please fix the {n} marked field(s) and save again."),
    "conflict": ("此驿站已被 {who} 于 {at} 修改 — 请核对", "This station was changed by {who} at "
                 "{at} — please review"),
    "conflict_note": ("下表列出对方保存的内容（“对方”）与您填写的内容（“您的”）不同的字段。"
                      "表单中保留的是您的内容；核对后再次保存即按您的内容覆盖，或返回放弃。",
                      "The table lists the fields where what they saved (“theirs”) differs "
                      "from what you typed (“yours”). The form keeps yours; save again to "
                      "apply it over theirs, or go back to drop it."),
    "field": ("字段", "Field"), "theirs": ("对方", "Theirs"), "yours": ("您的", "Yours"),
    "actions": ("其他操作", "Other actions"),
    "close": ("停用驿站", "Close station"), "reopen": ("重新开放", "Reopen station"),
    "delete": ("删除驿站", "Delete station"),
    "close_note": ("停用后驿站仍在列表中，标为“暂停开放”或“已关闭”。",
                   "A closed station stays listed, marked temporarily closed or closed."),
    "reopen_note": ("重新开放后状态改为“开放”。", "Reopening sets the status to open."),
    "delete_note": ("删除为软删除：驿站从查询中消失，导航数据源会收到删除记录；审计记录保留。",
                    "Deleting is a soft delete: the station leaves the searches, the feeds "
                    "carry a deletion record, and the audit trail keeps it."),
    "reason": ("原因（必填，记入审计记录）", "Reason (required, kept in the audit trail)"),
    "new_status": ("停用后的状态", "Status after closing"),
    "confirm": ("确认", "Confirm"),
    "back": ("返回", "Back"),
    "deleted": ("此驿站已删除（{at}）。", "This station was deleted ({at})."),
    "sample": ("示例数据", "Sample data"),
}


def _t(lang: str, key: str, **values: Any) -> str:
    text = _T[key][0 if lang == "zh" else 1]
    return text.format(**{k: escape(str(v)) for k, v in values.items()})


_STYLE = """<style>
form.station fieldset{border:1px solid #cfd4da;border-radius:6px;margin:0 0 1rem;padding:.6rem 1rem}
form.station legend{font-weight:700;padding:0 .3rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(15rem,1fr));gap:0 1.2rem}
.field-err{color:#b3261e;margin:.2rem 0 0;font-size:.95em}
input[aria-invalid=true],select[aria-invalid=true]{border:2px solid #b3261e}
.hint{color:#4a525c;font-size:.9em;margin:.2rem 0 0}
.checks{display:grid;grid-template-columns:repeat(auto-fill,minmax(11rem,1fr));gap:0 1rem}
.checks label{margin:.3rem 0}.radios label{display:inline-block;margin-right:1rem}
.radios input,.checks input{width:auto}
#map{height:22rem;border:1px solid #6b7480;border-radius:4px;background:#eef1f4;margin:.5rem 0}
#map[hidden]{display:none}
.station .leaflet-container{font:inherit}
table.diff td,table.diff th{word-break:break-word}
</style>"""


def _described(name: str, errors: dict[str, str], extra: str = "") -> str:
    ids = " ".join(i for i in ((f"err-{name}" if name in errors else ""), extra) if i)
    invalid = ' aria-invalid="true"' if name in errors else ""
    return (f' aria-describedby="{ids}"' if ids else "") + invalid


def _error(name: str, errors: dict[str, str]) -> str:
    if name not in errors:
        return ""
    return f'<p class="field-err" id="err-{name}">{escape(errors[name])}</p>'


def _input(lang: str, name: str, values: dict[str, Any], errors: dict[str, str], *,
           kind: str = "text", required: bool = False, extra: str = "",
           hint: str = "") -> str:
    hint_html = f'<p class="hint" id="hint-{name}">{hint}</p>' if hint else ""
    return (f'<div><label for="f-{name}">{escape(label(lang, name))}'
            f'{"（必填）" if required and lang == "zh" else " (required)" if required else ""}'
            f'</label><input id="f-{name}" name="{name}" type="{kind}" '
            f'value="{escape(str(values.get(name, "")))}"'
            f'{" required" if required else ""}{extra}'
            f'{_described(name, errors, f"hint-{name}" if hint else "")}>'
            f"{hint_html}{_error(name, errors)}</div>")


def _select(lang: str, name: str, options: list[tuple[str, str]], values: dict[str, Any],
            errors: dict[str, str]) -> str:
    current = str(values.get(name, ""))
    opts = "".join(f'<option value="{escape(v)}"{" selected" if v == current else ""}>'
                   f"{escape(text)}</option>" for v, text in options)
    return (f'<div><label for="f-{name}">{escape(label(lang, name))}</label>'
            f'<select id="f-{name}" name="{name}"{_described(name, errors)}>{opts}</select>'
            f"{_error(name, errors)}</div>")


def _areas(lang: str, areas: list[dict[str, Any]], level: str) -> list[tuple[str, str]]:
    out = [("", _t(lang, "auto"))]
    for a in areas:
        if a["level"] == level:
            name = a["name_en"] if lang == "en" and a.get("name_en") else a["name"]
            out.append((a["code"], f"{name} ({a['code']})"))
    return out


def _amenities(lang: str, values: dict[str, Any], errors: dict[str, str], ten: bool) -> str:
    have = set(values.get("amenities") or [])
    boxes = "".join(
        f'<label class="check"><input type="checkbox" name="amenities" value="{a.code}"'
        f'{" checked" if a.code in have else ""}> '
        f'{escape(a.label_zh if lang == "zh" else a.label_en)}</label>'
        for a in AMENITIES if a.ten_ones == ten)
    legend = _t(lang, "ten" if ten else "others")
    return (f'<fieldset><legend>{legend}</legend><div class="checks">{boxes}</div>'
            + (_error("amenities", errors) if ten else "") + "</fieldset>")


def _conflict(lang: str, conflict: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th scope=\"row\">{escape(label(lang, f))}</th><td>{escape(theirs)}</td>"
        f"<td>{escape(yours)}</td></tr>" for f, theirs, yours in conflict["diffs"])
    table = (f'<div class="scroll"><table class="diff"><thead><tr>'
             f'<th scope="col">{_t(lang, "field")}</th><th scope="col">{_t(lang, "theirs")}'
             f'</th><th scope="col">{_t(lang, "yours")}</th></tr></thead>'
             f"<tbody>{rows}</tbody></table></div>") if rows else ""
    return (f'<section class="card err" role="alert"><h2>'
            f'{_t(lang, "conflict", who=conflict["who"], at=conflict["at"])}</h2>'
            f'<p>{_t(lang, "conflict_note")}</p>{table}</section>')


def form_page(lang: str, csrf: str, *, who: str, admin: bool, code: str | None,
              values: dict[str, Any], errors: dict[str, str], areas: list[dict[str, Any]],
              map_data: dict[str, Any], hours_now: str | None = None,
              conflict: dict[str, Any] | None = None, deleted_at: str | None = None) -> str:
    """The whole form; ``code`` None: a new station."""
    new = code is None
    action = "/console/stations/new" if new else f"/console/stations/{code}/edit"
    title = _t(lang, "new") if new else _t(lang, "edit", name=values.get("name") or code)
    crs_now = str(values.get("crs") or "gcj02")
    crs_radios = "".join(
        f'<label class="check"><input type="radio" name="crs" value="{v}"'
        f'{" checked" if v == crs_now else ""}> {escape(text)}</label>'
        for v, text in choices(lang, "crs"))
    hours_hint = _t(lang, "hours_note") + (
        " " + _t(lang, "hours_now", text=hours_now) if hours_now else "")
    sample = " checked" if values.get("sample") else ""
    data = json.dumps(map_data, ensure_ascii=False).replace("</", "<\\/")
    fields = (
        (_input(lang, "code", values, errors, required=True,
                extra=' maxlength="64" autocomplete="off"') if new else "")
        + _input(lang, "name", values, errors, required=True, extra=' maxlength="200"')
        + _input(lang, "name_en", values, errors, extra=' maxlength="300"')
        + _select(lang, "host_type", choices(lang, "host_type"), values, errors)
        + _select(lang, "status", choices(lang, "status"), values, errors))
    place = (
        _input(lang, "address", values, errors, extra=' maxlength="300"')
        + _select(lang, "district_code", _areas(lang, areas, "district"), values, errors)
        + _select(lang, "street_code", _areas(lang, areas, "street"), values, errors)
        + f'<div><fieldset class="radios"{_described("crs", errors, "hint-crs")}>'
        f'<legend>{escape(label(lang, "crs"))}</legend>{crs_radios}'
        f'<p class="hint" id="hint-crs">{_t(lang, "crs_note")}</p>{_error("crs", errors)}'
        "</fieldset></div>"
        + _input(lang, "lon", values, errors, required=True, extra=' inputmode="decimal"')
        + _input(lang, "lat", values, errors, required=True, extra=' inputmode="decimal"'))
    hours = (
        _input(lang, "opening_hours", values, errors, hint=hours_hint,
               extra=' maxlength="255"')
        + _select(lang, "official_workdays", choices(lang, "official_workdays"), values, errors)
        + _input(lang, "timezone", values, errors, required=True, extra=' maxlength="64"')
        + _input(lang, "phone", values, errors, kind="tel", extra=' maxlength="32"'))
    more = (
        _input(lang, "floor_area_m2", values, errors, extra=' inputmode="decimal"')
        + _input(lang, "seats", values, errors, extra=' inputmode="numeric"')
        + _input(lang, "opened_on", values, errors, kind="date")
        + _input(lang, "last_verified_on", values, errors, kind="date")
        + f'<div><label class="check"><input type="checkbox" id="f-sample" name="sample" '
        f'value="1"{sample}> {_t(lang, "sample")}</label></div>')
    # A problem with no field of its own on the page (the version, say) is told on top.
    placed = {"code", "name", "name_en", "host_type", "status", "address", "district_code",
              "street_code", "crs", "lon", "lat", "opening_hours", "official_workdays",
              "timezone", "phone", "floor_area_m2", "seats", "opened_on", "last_verified_on",
              "amenities"}
    loose = "；".join(f"{label(lang, k)}：{v}" for k, v in errors.items() if k not in placed)
    fix = notes(None, (_t(lang, "fix", n=len(errors)) + (" " + loose if loose else ""))
                if errors else None)
    form = (
        f'<form class="station" method="post" action="{escape(href(action, lang))}" '
        f'novalidate>{csrf_field(csrf)}'
        + (f'<input type="hidden" name="version" value="{escape(str(values.get("version", "")))}">'
           if not new else "")
        + f'<fieldset><legend>{_t(lang, "basics")}</legend><div class="grid">{fields}</div>'
        "</fieldset>"
        + f'<fieldset><legend>{_t(lang, "place")}</legend>'
        f'<p class="hint" id="map-note">{_t(lang, "map_note")}</p>'
        f'<div id="map" hidden aria-label="{_t(lang, "map")}"></div>'
        f'<div class="grid">{place}</div></fieldset>'
        + f'<fieldset><legend>{_t(lang, "hours")}</legend><div class="grid">{hours}</div>'
        "</fieldset>"
        + _amenities(lang, values, errors, True) + _amenities(lang, values, errors, False)
        + f'<fieldset><legend>{_t(lang, "more")}</legend><div class="grid">{more}</div>'
        "</fieldset>"
        + f'<button type="submit">{_t(lang, "save_again" if conflict else "save")}</button>'
        "</form>")
    actions = ""
    if not new:
        base = f"/console/stations/{code}"
        links = [(f"{base}/close", "close"), (f"{base}/reopen", "reopen"),
                 (f"{base}/delete", "delete")]
        actions = (f'<section class="card"><h2>{_t(lang, "actions")}</h2><ul>'
                   + "".join(f'<li><a href="{escape(href(p, lang))}">{_t(lang, k)}</a></li>'
                             for p, k in links) + "</ul></section>")
    gone = (f'<p class="err" role="note">{_t(lang, "deleted", at=deleted_at)}</p>'
            if deleted_at else "")
    body = (_STYLE + gone + (_conflict(lang, conflict) if conflict else "") + fix + form
            + actions
            + f'<script type="application/json" id="map-data">{data}</script>'
            '<link rel="stylesheet" href="/maps/assets/leaflet/dist/leaflet.css">'
            '<script src="/maps/assets/leaflet/dist/leaflet.js" defer></script>'
            '<script src="/console/assets/station-form.js" defer></script>')
    return page(lang, title, body, path=action, who=who, csrf=csrf, admin=admin, editor=True)


def confirm_page(lang: str, csrf: str, *, who: str, admin: bool, action: str,
                 station: dict[str, Any], reason: str = "", error: str | None = None,
                 conflict: dict[str, Any] | None = None) -> str:
    """Close, reopen or delete: what it does, a required reason, one button."""
    code = station["code"]
    path = f"/console/stations/{code}/{action}"
    status = ""
    if action == "close":
        status = _select(lang, "status", [(v, t) for v, t in choices(lang, "status")
                                          if v in ("temporarily_closed", "closed")],
                         {"status": "temporarily_closed"}, {})
        status = status.replace(escape(label(lang, "status")), _t(lang, "new_status"), 1)
    errors = {"reason": error} if error else {}
    form = (f'<form class="card" method="post" action="{escape(href(path, lang))}">'
            f'{csrf_field(csrf)}<input type="hidden" name="version" '
            f'value="{station["version"]}"><p>{_t(lang, action + "_note")}</p>{status}'
            f'<label for="f-reason">{_t(lang, "reason")}</label>'
            f'<textarea id="f-reason" name="reason" rows="3" maxlength="500" required'
            f'{_described("reason", errors)}>{escape(reason)}</textarea>'
            f'{_error("reason", errors)}'
            f'<button type="submit">{_t(lang, "confirm")}</button></form>'
            f'<p><a href="{escape(href(f"/console/stations/{code}/edit", lang))}">'
            f'{_t(lang, "back")}</a></p>')
    title = f'{_t(lang, action)}：{station["name"]}' if lang == "zh" else \
        f'{_t(lang, action)}: {station["name"]}'
    body = _STYLE + (_conflict(lang, conflict) if conflict else "") + form
    return page(lang, title, body, path=path, who=who, csrf=csrf, admin=admin, editor=True)
