"""The inspection form an inspector fills in on a phone (``/console/stations/{code}/inspect``).

One form, Chinese first, for a 360-pixel-wide screen: the ten ones as three big choices
each (有 / 缺 / 坏 — present, missing, broken, as the inspections API records them), the
other amenities seen as ticks, the hours observed, a score, notes, and photos from the
camera (``capture="environment"``). It works without script (a plain multipart POST);
with script (``/console/assets/inspect.js``, a file: the page's policy allows script
from this service only) a failed or offline submit is kept on the phone and sent when
the signal is back. Each page carries a fresh idempotency key so a submission sent twice
is recorded once.

Errors come back in Chinese, naming the field the inspector sees (the API's English
field problems are translated here by the problem's kind, so the rules stay the API's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pydantic import ValidationError

from geo_service.console.pages import csrf_field, href, notes, page
from geo_service.domain.catalogue import AMENITIES, TEN_ONES
from geo_service.photos.service import INSPECTION_MAX_PHOTOS

#: The most photos one inspection takes through the form (the body limit follows it).
MAX_PHOTOS = INSPECTION_MAX_PHOTOS
#: The three states of a ten-ones item, as the API names them, in the form's order.
STATES = ("present", "missing", "broken")

_T: dict[str, tuple[str, str]] = {
    "title": ("记录巡查", "Record an inspection"),
    "back": ("返回驿站页面", "Back to the station"),
    "intro": ("逐项勾选“十有”设施的现场情况，可拍照上传。信号不好时，已填写的内容会先保存在手机上，"
              "联网后自动提交。",
              "Mark each of the ten ones as you find it and add photos. On a weak signal the "
              "form is kept on the phone and sent when you are back online."),
    "date": ("巡查日期", "Day of the visit"),
    "ten": ("十有设施", "The ten ones"),
    "present": ("有", "Present"), "missing": ("缺", "Missing"), "broken": ("坏", "Broken"),
    "extras": ("其他看到的设施", "Other amenities seen"),
    "hours": ("现场看到的开放时间（可不填；OSM 写法，如 Mo-Fr 08:00-18:00）",
              "Opening hours seen (optional; OSM syntax, e.g. Mo-Fr 08:00-18:00)"),
    "score": ("评分（0–100，可不填）", "Score (0–100, optional)"),
    "remarks": ("备注", "Notes"),
    "photos": ("照片（最多 {n} 张，可直接拍照）", "Photos (up to {n}; a phone offers its camera)"),
    "limits": ("支持 JPEG、PNG、HEIC，单张不超过 {mb} MB、{mp} 百万像素；上传后去除拍摄位置（GPS）"
               "和设备信息。",
               "JPEG, PNG or HEIC, at most {mb} MB and {mp} megapixels each; GPS position and "
               "device data are removed."),
    "submit": ("提交巡查", "Submit the inspection"),
    "recorded": ("已提交：巡查记录已保存。", "Sent: the inspection is recorded."),
    "repeat": ("已提交：这次巡查之前已经保存过，没有重复记录。",
               "Sent: this inspection was already recorded; it was not added twice."),
    "errors": ("请修改以下内容：", "Please correct the following:"),
    "sample": ("示例驿站（样例数据）", "A sample station (sample data)"),
}

#: What the inspector sees each field as, for the error list.
_FIELDS: dict[str, tuple[str, str]] = {
    "inspected_on": _T["date"], "extras": _T["extras"],
    "hours_observed": ("开放时间", "Opening hours"), "score": ("评分", "Score"),
    "remarks": _T["remarks"], "photos": ("照片", "Photos"),
    "idempotency_key": ("提交编号", "Submission key"), "code": ("驿站", "Station"),
    "file": ("照片", "Photos"),
}


def it(lang: str, key: str, **values: Any) -> str:
    """The text ``key`` in ``lang``, values filled in (escaped)."""
    text = _T[key][0 if lang == "zh" else 1]
    return text.format(**{k: escape(str(v)) for k, v in values.items()})


def field_label(lang: str, field: str) -> str:
    """``items.microwave`` → 十有设施·微波炉; a form field → its label."""
    i = 0 if lang == "zh" else 1
    if field.startswith("items."):
        code = field.split(".", 1)[1]
        names = {a.code: (a.label_zh, a.label_en) for a in TEN_ONES}
        return f"{_T['ten'][i]} · {names.get(code, (code, code))[i]}"
    return _FIELDS.get(field, (field, field))[i]


def _value_problem(msg: str) -> tuple[str, str] | None:
    """The schema's own value rules (English, for the API) as the inspector reads them."""
    known = (("in the future", "不能晚于今天（北京时间）", "must not be in the future"),
             ("before 2000", "不能早于 2000-01-01", "must not be before 2000-01-01"),
             ("control characters", "不能含有控制字符", "must not contain control characters"),
             ("ten ones", "属于十有设施，请在上面的十有中填写", "is one of the ten ones"),
             ("unknown amenity", "不是已知的设施", "is not a known amenity"))
    for needle, zh, en in known:
        if needle in msg:
            return zh, en
    return None


def problem_text(lang: str, err: Mapping[str, Any]) -> str:
    """One pydantic error as a short sentence in ``lang`` (the English detail kept for
    the hours, whose compiler explains where the text went wrong)."""
    kind, msg = err["type"], str(err.get("msg", ""))
    ctx = err.get("ctx") or {}
    loc = [str(p) for p in err["loc"]]
    zh_en: tuple[str, str]
    if kind == "missing":
        zh_en = (("请选择：有、缺或坏", "choose present, missing or broken")
                 if loc and loc[0] == "items" else ("必须填写", "is required"))
    elif kind.startswith("date"):
        zh_en = ("日期格式不对，应为 年-月-日", "is not a date (YYYY-MM-DD)")
    elif kind == "literal_error":
        zh_en = ("只能是有、缺或坏", "must be present, missing or broken")
    elif kind in ("float_parsing", "float_type", "finite_number"):
        zh_en = ("应为数字", "must be a number")
    elif kind in ("greater_than_equal", "less_than_equal"):
        zh_en = ("应在 0 到 100 之间", "must be between 0 and 100")
    elif kind in ("string_too_long", "too_long"):
        limit = ctx.get("max_length", "")
        zh_en = (f"太长（最多 {limit}）", f"is too long (at most {limit})")
    elif kind == "string_too_short":
        zh_en = ("不能为空", "must not be empty")
    elif kind == "value_error" and loc and loc[0] == "hours_observed":
        detail = msg.removeprefix("Value error, ")
        zh_en = (f"写法不对（OSM 语法）：{detail}", f"is not valid OSM syntax: {detail}")
    else:
        found = _value_problem(msg)
        zh_en = found if found else (f"不符合要求：{msg}", msg)
    return zh_en[0 if lang == "zh" else 1]


def validation_fields(lang: str, exc: ValidationError) -> list[tuple[str, str]]:
    """A 422 of the inspection schema as (field, problem in ``lang``) pairs, form order."""
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "body"
        out.append((field, problem_text(lang, err)))
    return out


_STYLE = """<style>
form.inspect fieldset{border:1px solid #cfd4da;border-radius:6px;margin:.6rem 0;
 padding:.3rem .6rem .6rem;min-width:0}
form.inspect legend{font-weight:600;padding:0 .3rem}
.opts{display:flex;gap:.4rem}
.opts label,.ticks label{margin:0;font-weight:400;border:1px solid #6b7480;border-radius:6px;
 min-height:44px;display:flex;align-items:center;gap:.4rem;padding:0 .5rem;box-sizing:border-box}
.opts label{flex:1;justify-content:center}
.opts input,.ticks input{width:1.3rem;height:1.3rem;margin:0;flex:none}
.opts label:has(input:checked),.ticks label:has(input:checked){background:#e7f3e9;
 border-color:#2e7d32;font-weight:600}
.ticks{display:grid;grid-template-columns:repeat(auto-fill,minmax(9rem,1fr));gap:.4rem}
form.inspect input,form.inspect textarea{max-width:100%;min-height:44px}
form.inspect button[type=submit]{width:100%;min-height:48px;font-size:1.1em}
form.inspect input[type=file]{padding:.6rem .3rem}
ul.errors{margin:.3rem 0 0;padding-left:1.2rem}
</style>"""


def _radio(lang: str, code: str, state: str, chosen: str | None) -> str:
    ident = f"i-{code}-{state}"
    checked = " checked" if chosen == state else ""
    return (f'<label for="{ident}"><input type="radio" id="{ident}" name="item_{code}" '
            f'value="{state}" required{checked}>{it(lang, state)}</label>')


def _ten(lang: str, values: Mapping[str, Any]) -> str:
    out = []
    for a in TEN_ONES:
        label = escape(a.label_zh if lang == "zh" else a.label_en)
        radios = "".join(_radio(lang, a.code, s, values.get(f"item_{a.code}"))
                         for s in STATES)
        out.append(f'<fieldset id="f-item-{a.code}"><legend>{label}</legend>'
                   f'<div class="opts">{radios}</div></fieldset>')
    return "".join(out)


def _extras(lang: str, chosen: Sequence[str]) -> str:
    ticks = "".join(
        f'<label for="x-{a.code}"><input type="checkbox" id="x-{a.code}" name="extras" '
        f'value="{a.code}"{" checked" if a.code in chosen else ""}>'
        f'{escape(a.label_zh if lang == "zh" else a.label_en)}</label>'
        for a in AMENITIES if not a.ten_ones)
    return (f'<fieldset id="f-extras"><legend>{it(lang, "extras")}</legend>'
            f'<div class="ticks">{ticks}</div></fieldset>')


def _error_list(lang: str, fields: Sequence[tuple[str, str]]) -> str:
    if not fields:
        return ""
    colon = "：" if lang == "zh" else ": "
    items = "".join(f"<li>{escape(field_label(lang, f))}{colon}{escape(p)}</li>"
                    for f, p in fields)
    return (f'<div class="err" role="alert" id="inspect-errors"><p>{it(lang, "errors")}</p>'
            f'<ul class="errors">{items}</ul></div>')


def inspect_page(lang: str, csrf: str, *, who: str, role: str, station: Mapping[str, Any],
                 key: str, today: dt.date, max_mb: float, max_mp: float,
                 values: Mapping[str, Any] | None = None,
                 fields: Sequence[tuple[str, str]] = (), message: str | None = None,
                 error: str | None = None) -> str:
    """The form for ``station``; ``values`` refill it after a refusal, ``fields`` name
    what to correct, ``key`` is this submission's idempotency key."""
    values = values or {}
    code = station["code"]
    action = href(f"/console/stations/{code}/inspect", lang)
    extras = values.get("extras") or []
    text = {k: escape(str(values.get(k) or "")) for k in ("hours_observed", "score", "remarks")}
    day = escape(str(values.get("inspected_on") or today.isoformat()))
    sample = (f'<p class="err" role="note">{it(lang, "sample")}</p>'
              if station.get("sample") else "")
    back = href(f"/console/stations/{code}", lang)
    body = (f'{_STYLE}<p><a href="{escape(back)}">{it(lang, "back")}</a> · '
            f'{escape(code)} · {escape(station["name"])}</p>{sample}'
            f'<p>{it(lang, "intro")}</p>{notes(message, error)}{_error_list(lang, fields)}'
            f'<form class="card inspect" id="inspect-form" method="post" action="{escape(action)}"'
            f' enctype="multipart/form-data">{csrf_field(csrf)}'
            f'<input type="hidden" name="idempotency_key" value="{escape(key)}">'
            f'<label for="inspected_on">{it(lang, "date")}</label>'
            f'<input type="date" id="inspected_on" name="inspected_on" value="{day}" '
            f'max="{today.isoformat()}" required>'
            f'<h2>{it(lang, "ten")}</h2>{_ten(lang, values)}{_extras(lang, extras)}'
            f'<label for="hours_observed">{it(lang, "hours")}</label>'
            f'<input id="hours_observed" name="hours_observed" maxlength="1000" '
            f'value="{text["hours_observed"]}">'
            f'<label for="score">{it(lang, "score")}</label>'
            f'<input id="score" name="score" type="number" min="0" max="100" step="0.1" '
            f'inputmode="decimal" value="{text["score"]}">'
            f'<label for="remarks">{it(lang, "remarks")}</label>'
            f'<textarea id="remarks" name="remarks" rows="4" maxlength="2000">'
            f'{text["remarks"]}</textarea>'
            f'<label for="photos">{it(lang, "photos", n=MAX_PHOTOS)}</label>'
            f'<input type="file" id="photos" name="photos" accept="image/*" '
            f'capture="environment" multiple aria-describedby="photo-limits">'
            f'<p class="small" id="photo-limits">'
            f'{it(lang, "limits", mb=f"{max_mb:g}", mp=f"{max_mp:g}")}</p>'
            f'<button type="submit">{it(lang, "submit")}</button>'
            f'<p id="queue-status" class="msg" role="status" aria-live="polite" hidden></p>'
            '</form>'
            '<script src="/console/assets/inspect.js" defer></script>')
    return page(lang, f'{it(lang, "title")} · {station["name"]}', body,
                path=f"/console/stations/{code}/inspect", who=who, csrf=csrf,
                admin=role == "admin", editor=role == "editor")
